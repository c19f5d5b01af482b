"""Building blocks of self-contained HTML reports.

A report is a list of :class:`ReportSection` objects rendered by
:func:`render_report` into one HTML document: inline CSS (with print rules),
images inlined as base64 PNG and no external resources, so the file can be
mailed, archived, opened offline or printed as it is.

JavaScript is optional and always inline: a section may carry ``scripts``
(e.g. the NiiVue viewer of :mod:`tmsnet.report.viewer`), which
:func:`render_report` writes once each (identical scripts are deduplicated)
at the end of the page. Every section must stay readable without them (a
static image as fallback) and print cleanly (``@media print`` rules here hide
interactive parts, marked ``class="screen-only"``, and show their static
fallbacks, marked ``class="print-fallback"``).

Every helper here escapes the strings it is given (``html.escape``); a
section's ``html`` is taken as already safe, so build it from these helpers.
Style sheets and page scripts are package files in ``tmsnet/report/assets/``
(read with :func:`asset`), not Python strings. Jobs add sections through a
section provider (see :mod:`tmsnet.report.subject`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.io.atomic import json_compatible
from tmsnet.utils.docs import add_doc, fill_doc

__all__ = [
    "ReportSection",
    "asset",
    "details_json",
    "figure_html",
    "figure_to_base64_png",
    "format_value",
    "image_tag",
    "inline_script",
    "json_script",
    "key_value_table",
    "make_anchor",
    "plot_html",
    "render_report",
    "table_html",
    "to_jsonable",
]

_PNG_PREFIX = "data:image/png;base64,"
_ANCHOR_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass
class ReportSection:
    """One section of a report.

    Attributes
    ----------
    title : str
        Heading text (plain text; escaped when rendered).
    html : str
        Body HTML, already escaped / built with the helpers of this module.
    anchor : str
        ``id`` of the section, used by the table of contents. Must start with a
        letter and contain only letters, digits, ``-`` and ``_``.
    scripts : tuple of str
        JavaScript sources the section needs (inlined once per report, in
        order, after the sections). The section's HTML must work without them.
    styles : tuple of str
        Extra CSS the section needs (inlined once per report).
    """

    title: str
    html: str
    anchor: str
    scripts: tuple[str, ...] = field(default=())
    styles: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not _ANCHOR_RE.match(self.anchor):
            raise ValueError(
                f"Section anchor {self.anchor!r} must start with a letter and contain only "
                "letters, digits, '-' and '_' (use make_anchor(title))."
            )
        self.scripts = tuple(self.scripts)
        self.styles = tuple(self.styles)


def make_anchor(text: str) -> str:
    """A valid section anchor derived from ``text``.

    Parameters
    ----------
    text : str
        Any text, e.g. a section title.

    Returns
    -------
    str
        Lower-case slug such as ``"data-quality"``; ``"section"`` if nothing is left.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"section-{slug}" if slug else "section"
    return slug


#: Padding (inches) around the drawn content, as matplotlib's ``bbox_inches="tight"``.
_TIGHT_PAD_INCHES = 0.1


def _save_cropped_png(fig: Any, buffer: io.BytesIO, *, dpi: int) -> bool:
    """Draw ``fig`` once and write the tight crop of that drawing as a PNG.

    ``savefig(bbox_inches="tight")`` draws a figure twice (once to measure the
    content, once to save it). Here the figure is drawn once on an Agg canvas, the
    content's bounding box is measured on that drawing and the pixels inside it
    (padded by :data:`_TIGHT_PAD_INCHES`, in the face colour beyond the figure's
    edge) are encoded: the same picture (to a pixel of size), half the drawing.
    Returns False (nothing written) when the content reaches beyond the figure, whose
    pixels this drawing does not hold; the caller then saves tightly.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgba as matplotlib_colors_rgba
    from PIL import Image

    if not hasattr(fig, "get_tightbbox"):
        return False
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    old_dpi = fig.dpi
    fig.set_dpi(dpi)
    try:
        canvas.draw()
        content = fig.get_tightbbox(canvas.get_renderer())
        width, height = fig.get_size_inches()
        if content.x0 < 0 or content.y0 < 0 or content.x1 > width or content.y1 > height:
            return False
        box = content.padded(_TIGHT_PAD_INCHES)
        rgba = np.asarray(canvas.buffer_rgba())
        n_rows, n_cols = rgba.shape[:2]
        # inches from the bottom-left -> pixel rows from the top; the padding may reach
        # past the figure's edge, where savefig shows the face colour
        left, right = int(round(box.x0 * dpi)), int(round(box.x1 * dpi))
        top, bottom = n_rows - int(round(box.y1 * dpi)), n_rows - int(round(box.y0 * dpi))
        face = np.round(np.asarray(matplotlib_colors_rgba(fig.get_facecolor())) * 255)
        out = np.empty((bottom - top, right - left, 4), dtype=np.uint8)
        out[...] = face.astype(np.uint8)
        r0, c0 = max(top, 0), max(left, 0)
        r1, c1 = min(bottom, n_rows), min(right, n_cols)
        out[r0 - top:r1 - top, c0 - left:c1 - left] = rgba[r0:r1, c0:c1]
        Image.fromarray(out, "RGBA").save(buffer, format="png")
    finally:
        fig.set_dpi(old_dpi)
    return True


def figure_to_base64_png(fig: Any, *, dpi: int = 100) -> str:
    """Encode a matplotlib figure as a PNG data URI and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (anything with a matplotlib ``savefig`` works, e.g. a nilearn
        display's ``frame_axes.figure``).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    str
        ``"data:image/png;base64,..."``.
    """
    buffer = io.BytesIO()
    facecolor = fig.get_facecolor() if hasattr(fig, "get_facecolor") else "white"
    try:
        if not _save_cropped_png(fig, buffer, dpi=dpi):
            fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor=facecolor)
    finally:
        # Close only through pyplot if pyplot is in use; figures built with
        # matplotlib.figure.Figure directly are not tracked by it.
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close(fig)
    return _PNG_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_tag(data_uri: str, *, alt: str, width: str = "100%") -> str:
    """An ``<img>`` element for an inlined image.

    Parameters
    ----------
    data_uri : str
        ``data:image/...`` URI, e.g. from :func:`figure_to_base64_png`.
    alt : str
        Text alternative describing what the image shows (required, non-empty).
    width : str
        CSS width, e.g. ``"100%"`` or ``"40rem"``.

    Returns
    -------
    str
        The ``<img>`` element.

    Raises
    ------
    ValueError
        If ``alt`` is empty or ``data_uri`` is not an inline image (external
        images would break the self-contained report).
    """
    if not alt or not alt.strip():
        raise ValueError("Every report image needs a non-empty alt text.")
    if not data_uri.startswith("data:image/"):
        raise ValueError("Report images must be inline data URIs (data:image/...).")
    return (
        f'<img src="{html.escape(data_uri, quote=True)}" alt="{html.escape(alt, quote=True)}" '
        f'style="width: {html.escape(width, quote=True)}; max-width: 100%; height: auto;">'
    )


add_doc("figure_options", """alt : str
    Text alternative (required).
caption : str, optional
    Plain-text caption shown under the image.
width : str
    CSS width of the image.""")


@fill_doc
def figure_html(data_uri: str, *, alt: str, caption: str | None = None, width: str = "100%") -> str:
    """An image in a ``<figure>`` with an optional ``<figcaption>``.

    Parameters
    ----------
    data_uri : str
        Inline image URI.
    %(figure_options)s

    Returns
    -------
    str
        HTML.
    """
    parts = ['<figure class="figure">', image_tag(data_uri, alt=alt, width=width)]
    if caption:
        parts.append(f"<figcaption>{html.escape(caption)}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


@fill_doc
def plot_html(fig: Any, *, alt: str, caption: str | None = None, width: str = "100%", dpi: int = 100) -> str:
    """A matplotlib figure inlined as PNG (:func:`figure_to_base64_png`, which closes it) in a ``<figure>``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    %(figure_options)s
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    str
        The ``<figure>`` element (see :func:`figure_html`).
    """
    return figure_html(figure_to_base64_png(fig, dpi=dpi), alt=alt, caption=caption, width=width)


def format_value(value: Any, *, float_format: str = "{:.2f}") -> str:
    """Plain-text rendering of one table cell (not yet escaped).

    Parameters
    ----------
    value : object
        Cell value. Floats use ``float_format``; NaN/None become an en dash;
        mappings and sequences become compact JSON.
    float_format : str
        ``str.format`` pattern for floats.

    Returns
    -------
    str
    """
    if value is None:
        return "\u2013"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return "\u2013"
        return float_format.format(float(value))
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return json.dumps(to_jsonable(value), separators=(", ", ": "))
    return str(value)


def table_html(
    df: pd.DataFrame,
    *,
    float_format: str = "{:.2f}",
    caption: str | None = None,
    index: bool | None = None,
) -> str:
    """Render a DataFrame as an accessible HTML table.

    Parameters
    ----------
    df : pandas.DataFrame
        The data; column names become ``<th scope="col">`` headers.
    float_format : str
        ``str.format`` pattern for float cells.
    caption : str, optional
        Plain-text ``<caption>``.
    index : bool, optional
        Whether to show the index as row headers (``<th scope="row">``).
        Default: only when it is not a plain 0..n-1 range.

    Returns
    -------
    str
        HTML (all cell text escaped).
    """
    if index is None:
        index = not (
            isinstance(df.index, pd.RangeIndex)
            and df.index.start == 0
            and df.index.step == 1
            and df.index.name is None
        )
    esc = html.escape
    parts = ['<table class="data">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append("<thead><tr>")
    if index:
        parts.append(f'<th scope="col">{esc(str(df.index.name or ""))}</th>')
    for column in df.columns:
        parts.append(f'<th scope="col">{esc(str(column))}</th>')
    parts.append("</tr></thead><tbody>")
    for label, row in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        parts.append("<tr>")
        if index:
            parts.append(f'<th scope="row">{esc(format_value(label, float_format=float_format))}</th>')
        for value in row:
            numeric = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            cls = ' class="num"' if numeric else ""
            parts.append(f"<td{cls}>{esc(format_value(value, float_format=float_format))}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def key_value_table(
    mapping: Mapping[str, Any],
    *,
    caption: str | None = None,
    float_format: str = "{:.3g}",
    labels: Mapping[str, str] | None = None,
) -> str:
    """A two-column table (key, value) of a mapping.

    Parameters
    ----------
    mapping : mapping
        Keys and values; nested values are shown as compact JSON.
    caption : str, optional
        Plain-text caption.
    float_format : str
        ``str.format`` pattern for floats.
    labels : mapping, optional
        Readable names for some keys (shown with the key in parentheses).

    Returns
    -------
    str
        HTML.
    """
    labels = labels or {}
    esc = html.escape
    parts = ['<table class="kv">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    parts.append('<thead><tr><th scope="col">Item</th><th scope="col">Value</th></tr></thead>')
    parts.append("<tbody>")
    for key, value in mapping.items():
        key = str(key)
        name = esc(labels[key]) + f' <code>{esc(key)}</code>' if key in labels else f"<code>{esc(key)}</code>"
        text = esc(format_value(value, float_format=float_format))
        parts.append(f'<tr><th scope="row">{name}</th><td>{text}</td></tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


_SCRIPT_CLOSE_RE = re.compile(r"</(script)", re.IGNORECASE)


def inline_script(source: str, *, element_id: str | None = None) -> str:
    """A ``<script>`` element holding ``source`` inline.

    Parameters
    ----------
    source : str
        JavaScript source. Any ``</script`` inside it (e.g. in a string) is
        written with an escaped slash so it cannot end the element early.
    element_id : str, optional
        ``id`` attribute of the element.

    Returns
    -------
    str
        The ``<script>`` element.

    Raises
    ------
    ValueError
        If the source contains ``<!--``, which would change how the HTML
        parser reads the rest of the element.
    """
    if "<!--" in source:
        raise ValueError("Inline scripts must not contain '<!--'; escape it in the source.")
    body = _SCRIPT_CLOSE_RE.sub(r"<\\/\1", source)
    attr = f' id="{html.escape(element_id, quote=True)}"' if element_id else ""
    return f"<script{attr}>\n{body}\n</script>"


def json_script(obj: Any, *, element_id: str) -> str:
    """Data for a page script: ``<script type="application/json" id=...>``.

    Parameters
    ----------
    obj : object
        JSON-able structure (see :func:`to_jsonable`).
    element_id : str
        ``id`` the page script reads it by
        (``JSON.parse(document.getElementById(id).textContent)``).

    Returns
    -------
    str
        HTML; ``<``, ``>`` and ``&`` are written as JSON unicode escapes.
    """
    text = json.dumps(to_jsonable(obj), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        f'<script type="application/json" id="{html.escape(element_id, quote=True)}">'
        f"{text}</script>"
    )


def to_jsonable(obj: Any) -> Any:
    """Nested data as plain JSON types (see :func:`tmsnet.io.atomic.json_compatible`)."""
    return json_compatible(obj)


def details_json(obj: Any, *, summary: str, open_: bool = False) -> str:
    """A collapsible ``<details>`` block holding pretty-printed JSON.

    Parameters
    ----------
    obj : object
        JSON-able structure (see :func:`to_jsonable`).
    summary : str
        Plain-text label of the block.
    open_ : bool
        Whether the block starts expanded.

    Returns
    -------
    str
        HTML.
    """
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, ensure_ascii=False)
    attr = " open" if open_ else ""
    return (
        f"<details{attr}><summary>{html.escape(summary)}</summary>"
        f'<pre class="json">{html.escape(text)}</pre></details>'
    )


@cache
def asset(name: str) -> str:
    """The text of a report asset shipped in ``tmsnet/report/assets/`` (CSS, JavaScript).

    Parameters
    ----------
    name : str
        File name, e.g. ``"report.css"`` or ``"viewer.js"``.

    Returns
    -------
    str
        The file's text (cached).
    """
    return resources.files("tmsnet.report").joinpath("assets", name).read_text(encoding="utf-8")


def render_report(
    *,
    title: str,
    summary_html: str,
    sections: Sequence[ReportSection],
    footer_html: str = "",
    subtitle: str | None = None,
    scripts: Sequence[str] = (),
    styles: Sequence[str] = (),
) -> str:
    """Assemble a complete, self-contained HTML document.

    Parameters
    ----------
    title : str
        Plain-text title (``<title>`` and ``<h1>``).
    summary_html : str
        Body of the summary card shown first (already safe HTML).
    sections : sequence of ReportSection
        Sections in display order; each gets a table-of-contents entry.
    footer_html : str
        Footer body (already safe HTML).
    subtitle : str, optional
        Plain-text line under the title.
    scripts : sequence of str
        JavaScript sources for the whole page, inlined after the sections'
        own :attr:`ReportSection.scripts`; each distinct source is written once.
    styles : sequence of str
        Extra CSS for the whole page (with the sections' own styles, each
        distinct one written once).

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ValueError
        If two sections share an anchor (or use the reserved ``summary``/``contents``).
    """
    anchors = [s.anchor for s in sections]
    reserved = {"summary", "contents"}
    duplicates = {a for a in anchors if anchors.count(a) > 1 or a in reserved}
    if duplicates:
        raise ValueError(f"Section anchors must be unique and not reserved: {sorted(duplicates)}")
    esc = html.escape
    toc = "".join(
        f'<li><a href="#{esc(s.anchor, quote=True)}">{esc(s.title)}</a></li>' for s in sections
    )
    body = "\n".join(
        f'<section class="report-section" id="{esc(s.anchor, quote=True)}" '
        f'aria-labelledby="{esc(s.anchor, quote=True)}-title">\n'
        f'<h2 id="{esc(s.anchor, quote=True)}-title">{esc(s.title)}</h2>\n{s.html}\n</section>'
        for s in sections
    )
    subtitle_html = f'<p class="subtitle">{esc(subtitle)}</p>' if subtitle else ""
    all_styles = _unique([*(c for s in sections for c in s.styles), *styles])
    all_scripts = _unique([*(j for s in sections for j in s.scripts), *scripts])
    extra_css = "".join(f"\n<style>{css}</style>" for css in all_styles)
    script_html = "".join(inline_script(js) + "\n" for js in all_scripts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{asset('report.css')}</style>{extra_css}\n</head>\n<body>\n"
        f"<header>\n<h1>{esc(title)}</h1>\n{subtitle_html}\n</header>\n<main>\n"
        '<section class="summary" id="summary" aria-labelledby="summary-title">\n'
        f'<h2 id="summary-title">Summary</h2>\n{summary_html}\n</section>\n'
        '<nav class="toc" id="contents" aria-labelledby="contents-title">\n'
        f'<h2 id="contents-title">Contents</h2>\n<ol>{toc}</ol>\n</nav>\n'
        f"{body}\n</main>\n<footer>\n{footer_html}\n</footer>\n{script_html}</body>\n</html>\n"
    )


def _unique(items: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out
