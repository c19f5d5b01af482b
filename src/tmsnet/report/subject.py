"""One report per subject, assembled from every job's section provider.

Each tmsnet job (targeting, plan and dose, connectomes, TMS-EEG...) writes its
outputs into a BIDS-Derivatives folder. This module gathers them into one
self-contained HTML page per subject (:func:`assemble_subject_report`,
:func:`write_subject_report`) by asking each registered *section provider*
what it has to show.

Contract for a section provider
-------------------------------
A provider is a function ``provider(context: SubjectContext)`` registered with
:func:`register_section_provider` (``name``, ``order``: smaller first;
targeting uses 10, plan/dose 20, connectomes 30, TMS-EEG 40 by convention).
It

* reads only the derivatives of ``context.subject`` / ``context.session``
  (:meth:`SubjectContext.find` globs below the subject's folder);
* returns ``None`` (or an empty result) when its job did not run for the
  subject: nothing is shown then;
* otherwise returns a :class:`SubjectSections` (or just a list of
  :class:`~tmsnet.report.html.ReportSection`): sections built with
  :mod:`tmsnet.report.html` (anchors unique: prefix them with the provider
  name), ``summary`` rows ``(label, plain text)`` for the summary card (e.g.
  ``("Scalp point", "(-52.1, 38.0, 60.2) mm T1w")``, ``("Dose", "120 % rMT")``),
  plain-language ``warnings`` (e.g. ``"High motion: ..."``), ``coordinates``
  (:class:`SummaryCoordinate` rows: every target / scalp point in each space,
  shown as one table ``#summary-coordinates`` at the top of the card), and
  optionally a ``headline_html`` (safe HTML; the first one given heads the
  summary card);
* needs no network and inlines everything (figures via
  :func:`~tmsnet.report.html.figure_to_base64_png`; interactive parts via
  ``ReportSection.scripts``, with a static fallback).

A provider that raises is reported in the page (an error section and a
warning), so one failing job does not hide the others.

Modules holding providers are listed in :data:`PROVIDER_MODULES` (one dotted
name per line, like ``_COMMAND_MODULES`` of :mod:`tmsnet.cli`); they register
their providers when imported. Modules that are not installed are skipped.
The job providers live in :mod:`tmsnet.report.providers` (plan and dose,
connectomes, TMS-EEG); the targeting provider is here.

``tmsnet report DERIVATIVES_DIR --participant-label 01`` (see
:mod:`tmsnet.report.commands`) writes one report per subject.
"""

from __future__ import annotations

import html
import importlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet import __version__
from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.report import cohort as _cohort
from tmsnet.report.html import (
    ReportSection,
    details_json,
    figure_html,
    figure_to_base64_png,
    render_report,
    table_html,
)

__all__ = [
    "PROVIDER_MODULES",
    "SubjectContext",
    "SubjectReport",
    "SubjectSections",
    "SummaryCoordinate",
    "assemble_subject_report",
    "build_subject_report",
    "format_xyz",
    "load_json",
    "register_section_provider",
    "save_subject_report",
    "section_providers",
    "targeting_provider",
    "unregister_section_provider",
    "write_subject_report",
]

logger = logging.getLogger(__name__)

#: Modules imported before assembling a report so that their providers register.
PROVIDER_MODULES: tuple[str, ...] = (
    "tmsnet.report.providers.plan",
    "tmsnet.report.providers.connectome",
    "tmsnet.report.providers.tep",
)

_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class SubjectContext:
    """Where a provider finds one subject's derivatives.

    Attributes
    ----------
    derivatives_dir : Path
        The tmsnet derivatives folder (holding ``sub-<label>/``).
    subject : str
        Subject label without ``sub-``.
    session : str or None
        Session label without ``ses-``, or None for all / no sessions.
    """

    derivatives_dir: Path
    subject: str
    session: str | None = None

    @property
    def folder(self) -> Path:
        """``derivatives_dir/sub-<label>[/ses-<label>]``."""
        folder = self.derivatives_dir / f"sub-{self.subject}"
        return folder / f"ses-{self.session}" if self.session else folder

    @property
    def prefix(self) -> str:
        """``sub-<label>[_ses-<label>]``."""
        return f"sub-{self.subject}" + (f"_ses-{self.session}" if self.session else "")

    def find(self, pattern: str) -> list[Path]:
        """Files below :attr:`folder` matching a glob ``pattern`` (recursive), sorted."""
        return sorted(p for p in self.folder.rglob(pattern) if p.is_file())


@dataclass(frozen=True)
class SummaryCoordinate:
    """One point of the summary card's coordinate table.

    Attributes
    ----------
    label : str
        What the point is, e.g. ``"Target (cluster)"`` or ``"Scalp point"``.
    space : str
        Its space, e.g. ``"MNI152NLin2009cAsym"`` or ``"T1w"``.
    xyz_mm : tuple of 3 floats
        Coordinates (mm) in ``space``.
    source : str
        The job (and file) it comes from, e.g. ``"targeting"`` or ``"plan"``.
    """

    label: str
    space: str
    xyz_mm: tuple[float, float, float]
    source: str = ""


@dataclass
class SubjectSections:
    """What one provider contributes to a subject's report.

    Attributes
    ----------
    sections : list of ReportSection
        Sections in display order.
    summary : list of (str, str)
        Rows of the summary card (label, plain-text value).
    warnings : list of str
        Plain-language QC warnings shown in the summary card.
    headline_html : str or None
        Safe HTML for the top of the summary card (e.g. the target).
    coordinates : list of SummaryCoordinate
        Points for the card's coordinate table (targets in each space, scalp point).
    """

    sections: list[ReportSection] = field(default_factory=list)
    summary: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    headline_html: str | None = None
    coordinates: list[SummaryCoordinate] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sections or self.summary or self.warnings or self.headline_html
                    or self.coordinates)


SectionProvider = Callable[[SubjectContext], "SubjectSections | Sequence[ReportSection] | None"]
_PROVIDERS: dict[str, tuple[int, SectionProvider]] = {}


def register_section_provider(
    name: str, func: SectionProvider, *, order: int = 100, replace: bool = False
) -> SectionProvider:
    """Register a section provider (see the module docstring for the contract).

    Parameters
    ----------
    name : str
        Unique name (letters, digits, ``-``, ``_``), e.g. ``"dose"``.
    func : callable
        ``func(context: SubjectContext) -> SubjectSections | list[ReportSection] | None``.
    order : int
        Position in the report (smaller first).
    replace : bool
        Replace a provider already registered under ``name``.

    Returns
    -------
    callable
        ``func`` (so this can be used as a decorator helper).

    Raises
    ------
    InvalidParameterError
        If ``name`` is invalid, already taken (and not ``replace``), or
        ``func`` is not callable.
    """
    if not re.match(r"^[A-Za-z][A-Za-z0-9_-]*$", str(name)):
        raise InvalidParameterError(f"Provider name {name!r} must start with a letter and contain "
                                    "only letters, digits, '-' and '_'.")
    if not callable(func):
        raise InvalidParameterError(f"Provider {name!r} must be callable, got {type(func).__name__}.")
    if name in _PROVIDERS and not replace:
        raise InvalidParameterError(f"A section provider named {name!r} is already registered; "
                                    "pass replace=True to replace it.")
    _PROVIDERS[name] = (int(order), func)
    return func


def unregister_section_provider(name: str) -> None:
    """Remove a provider (no error if it is not registered)."""
    _PROVIDERS.pop(name, None)


def _load_provider_modules() -> None:
    for module in PROVIDER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not (module == exc.name or module.startswith(f"{exc.name}.")):
                raise
            logger.debug("report provider module %s is not installed", module)


def section_providers() -> list[tuple[str, SectionProvider]]:
    """The registered providers ``(name, func)`` in report order."""
    _load_provider_modules()
    return [(name, func) for name, (_, func) in sorted(_PROVIDERS.items(), key=lambda kv: (kv[1][0], kv[0]))]


def _as_sections(result: Any) -> SubjectSections:
    if result is None:
        return SubjectSections()
    if isinstance(result, SubjectSections):
        return result
    sections = list(result)
    if not all(isinstance(s, ReportSection) for s in sections):
        raise TypeError("a provider must return SubjectSections, a list of ReportSection or None")
    return SubjectSections(sections=sections)


# --------------------------------------------------------------------------- targeting provider

#: Bootstrap 95 % radius (mm) above which a target without scan-length advice
#: is flagged as unstable (the cohort report's threshold: about one
#: coil-positioning error and the ~1 cm test-retest goal of Cao 2024,
#: ``../shared/REFERENCES.md`` section 1).
UNSTABLE_P95_RADIUS_MM = _cohort.UNSTABLE_P95_RADIUS_MM


def _target_files(context: SubjectContext) -> list[Path]:
    # The treatment plan writes *_desc-plan_target.json (another schema): not a targeting result.
    return [p for p in context.find("*_target.json")
            if "_desc-" in p.name and not p.name.endswith("_desc-plan_target.json")]


def load_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON output of a tmsnet job.

    Parameters
    ----------
    path : path
        The file.

    Returns
    -------
    dict

    Raises
    ------
    InvalidParameterError
        If the file cannot be read or is not a JSON object.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(f"Cannot read {path}: {exc}. Re-run the job that wrote it.") from exc
    if not isinstance(data, dict):
        raise InvalidParameterError(f"{path} does not hold a JSON object; re-run the job that wrote it.")
    return data


_load_json = load_json


def format_xyz(xyz: Sequence[float], *, digits: int = 1) -> str:
    """``"(x, y, z)"`` with ``digits`` decimals (mm values; the unit is added by the caller)."""
    return "(" + ", ".join(f"{float(v):.{digits}f}" for v in xyz) + ")"


def _stability_facts(t: dict[str, Any], reported: Sequence[str]) -> tuple[str | None, str | None]:
    """Summary text and (if unstable and not yet reported) warning of one target's bootstrap."""
    u = t.get("uncertainty") or {}
    p95 = u.get("p95_radius_mm")
    if p95 is None:
        return None, None
    method = str(t.get("method"))
    text = f"95 % of bootstrap targets within {float(p95):.1f} mm"
    if u.get("share_within_10mm") is not None:
        text += f"; {100 * float(u['share_within_10mm']):.0f} % within 10 mm"
    advice = t.get("scan_length_advice") or {}
    unstable = (not advice["stable"]) if "stable" in advice else float(p95) > UNSTABLE_P95_RADIUS_MM
    if not unstable or any(str(w).startswith(f"Target stability ({method})") for w in reported):
        return text, None
    warning = (f"Unstable target ({method}): resampling the scan moves the target by up to "
               f"{float(p95):.0f} mm (95 % radius of the bootstrap).")
    if advice.get("message"):
        warning += f" {advice['message']}"
    return text, warning


def _plot_bootstrap_cloud(cloud: pd.DataFrame, targets: Sequence[dict[str, Any]]) -> Any:
    """Bootstrap targets of each method in three projections (mm), whole-scan targets as stars."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 3.0))
    axes = fig.subplots(1, 3)
    pairs = (("y", "z", "sagittal"), ("x", "z", "coronal"), ("x", "y", "axial"))
    colors = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#666666")
    for ax, (a, b, name) in zip(axes, pairs, strict=True):
        for k, t in enumerate(targets):
            color = colors[k % len(colors)]
            rows = cloud[cloud["method"].astype(str) == str(t["method"])]
            ax.scatter(rows[a], rows[b], s=6, alpha=0.35, color=color)
            ax.scatter([t[a]], [t[b]], marker="*", s=120, color=color, edgecolor="k",
                       label=str(t["method"]))
        ax.set_xlabel(f"{a} (mm)")
        ax.set_ylabel(f"{b} (mm)")
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
    axes[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _method_distances(targets: Sequence[dict[str, Any]]) -> pd.DataFrame:
    names = [str(t["method"]) for t in targets]
    xyz = np.array([[float(t[k]) for k in "xyz"] for t in targets])
    d = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    return pd.DataFrame(d, index=pd.Index(names, name="distance (mm)"), columns=names)


def targeting_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the targeting job (``tmsnet target``) from its derivatives.

    Reads ``*_desc-<method>_target.json`` (every space found), the
    ``stat-r`` connectivity map, the seed / search masks and the report
    sidecar (QC and warnings) of each run, and shows the targets, an
    interactive viewer (:func:`tmsnet.report.viewer.viewer_section`) and QC.

    Parameters
    ----------
    context : SubjectContext
        The subject's derivatives.

    Returns
    -------
    SubjectSections or None
        None if the subject has no targeting outputs.
    """
    from tmsnet.report.figures import SEARCH_COLOR, SEED_COLOR
    from tmsnet.report.viewer import ViewerLayer, ViewerPoint, plot_viewer_fallback, viewer_section

    files = _target_files(context)
    if not files:
        return None
    esc = html.escape
    out = SubjectSections()
    runs: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    for path in files:
        runs.setdefault(path.name.split("_space-")[0], []).append((path, _load_json(path)))
    for index, (run, targets) in enumerate(runs.items()):
        first = targets[0][1]
        if out.headline_html is None:
            out.headline_html = (
                f'<p class="big" id="target-coordinates" data-x="{float(first["x"]):.2f}" '
                f'data-y="{float(first["y"]):.2f}" data-z="{float(first["z"]):.2f}">'
                f'Target: ({float(first["x"]):.1f}, {float(first["y"]):.1f}, {float(first["z"]):.1f}) mm '
                f'{esc(str(first["space"]))} ({esc(str(first["method"]))})</p>'
            )
        sidecar = context.derivatives_dir / f"{run}_report.json"
        summary = _load_json(sidecar).get("Summary", {}) if sidecar.exists() else {}
        reported = [str(w) for w in summary.get("warnings", [])]
        out.warnings.extend(reported)
        for _, t in targets:
            xyz = (float(t["x"]), float(t["y"]), float(t["z"]))
            out.summary.append((f"Target {t['method']} ({t['space']})",
                                f"{format_xyz(xyz)} mm, r = {float(t['r_at_target']):.3f}"))
            out.coordinates.append(SummaryCoordinate(f"Target ({t['method']})", str(t["space"]), xyz,
                                                     f"targeting ({run})"))
            stability, warning = _stability_facts(t, reported)
            if stability:
                out.summary.append((f"Stability {t['method']}", stability))
            if warning:
                out.warnings.append(warning)
        qc = summary.get("qc", {})
        if qc:
            out.summary.append((f"Scan ({run})", f"{qc.get('n_frames')} frames, "
                                                  f"{float(qc.get('duration_min', float('nan'))):.1f} min"))
        table = pd.DataFrame([{"method": t["method"], "space": t["space"], "x (mm)": t["x"],
                               "y (mm)": t["y"], "z (mm)": t["z"], "r at target": t["r_at_target"],
                               "95 % radius (mm)": (t.get("uncertainty") or {}).get("p95_radius_mm")}
                              for _, t in targets])
        body = table_html(table, caption=f"Targets of {run}")
        space = str(first["space"])
        extra = ""
        clouds = context.find(f"{run}_space-{space}_desc-bootstrap_targets.tsv")
        in_space = [t for _, t in targets if str(t["space"]) == space]
        if clouds:
            cloud = pd.read_csv(clouds[0], sep="\t", na_values=["n/a"])
            if {"method", "x", "y", "z"} <= set(cloud.columns) and len(cloud):
                extra += figure_html(
                    figure_to_base64_png(_plot_bootstrap_cloud(cloud, in_space), dpi=80),
                    alt="Bootstrap cloud of targets of each method in three projections",
                    caption=f"Targets of {len(cloud)} block-bootstrap resamples of the scan (dots) and "
                            f"on the whole scan (stars), {space} mm.")
        if len(in_space) > 1:
            extra += table_html(_method_distances(in_space), caption="Distance between methods (mm)",
                                float_format="{:.1f}")
        maps = sorted(context.find(f"{run}_space-{space}_stat-r_desc-*_connectivity.nii.gz"),
                      key=lambda p: "seedmapweighted" in p.name)
        anchor = f"targeting-{index + 1}"
        if maps:
            r_map = nib.load(maps[0])
            masks = {role: context.find(f"{run}_space-{space}_desc-{role}_mask.nii.gz")
                     for role in ("seed", "search")}
            layers = [ViewerLayer(name="connectivity", image=r_map, kind="map", opacity=0.9, units="r")]
            outlines = []
            for role, color, opacity in (("search", SEARCH_COLOR, 0.25), ("seed", SEED_COLOR, 0.6)):
                if masks[role]:
                    img = nib.load(masks[role][0])
                    layers.append(ViewerLayer(name=f"{role} region" if role == "search" else role,
                                              image=img, kind="mask", color=color, opacity=opacity))
                    outlines.append((img, color))
            points = [ViewerPoint(label=f"target ({t['method']})", xyz_mm=(t["x"], t["y"], t["z"]),
                                  group=str(t["method"]),
                                  values={"method": t["method"], "r_at_target": t["r_at_target"],
                                          "space": t["space"]})
                      for _, t in targets if str(t["space"]) == space]
            fig = plot_viewer_fallback(stat_map=r_map, masks=outlines, points=points)
            fallback = figure_html(figure_to_base64_png(fig, dpi=70),
                                   alt="Seed connectivity map with search region, seed and targets")
            out.sections.append(viewer_section(
                title=f"Targeting: {run}", anchor=anchor, layers=layers, points=points,
                fallback_html=fallback, intro_html=body,
                caption=f"Maps in {space}; the template is nilearn's MNI152 (2 mm).",
            ))
        else:
            out.sections.append(ReportSection(f"Targeting: {run}", body, anchor))
        out.sections[-1].html += extra
        if qc:
            out.sections[-1].html += details_json(qc, summary="Scan quality (JSON)")
    return out


register_section_provider("targeting", targeting_provider, order=10)


# --------------------------------------------------------------------------- assembly

def _check_label(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    text = str(value).removeprefix(f"{what}-")
    if not _LABEL_RE.match(text):
        raise InvalidParameterError(f"{what} label {value!r} must be letters and digits only "
                                    f"(e.g. '01' or '{what}-01').")
    return text


@dataclass
class SubjectReport:
    """One subject's assembled report.

    Attributes
    ----------
    context : SubjectContext
        Whose report, from which folder.
    html : str
        The self-contained HTML document.
    jobs : list of str
        Providers that found something to show, in report order.
    summary : list of (str, str)
        Rows of the summary card.
    warnings : list of str
        Plain-language QC warnings (deduplicated).
    coordinates : list of SummaryCoordinate
        The card's coordinate table.
    providers : list of str
        Providers asked.
    """

    context: SubjectContext
    html: str
    jobs: list[str]
    summary: list[tuple[str, str]]
    warnings: list[str]
    coordinates: list[SummaryCoordinate]
    providers: list[str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready facts (no HTML)."""
        return {
            "subject": self.context.subject,
            "session": self.context.session,
            "jobs": list(self.jobs),
            "summary": {k: v for k, v in self.summary},
            "warnings": list(self.warnings),
            "coordinates": [{"label": c.label, "space": c.space, "x": c.xyz_mm[0], "y": c.xyz_mm[1],
                             "z": c.xyz_mm[2], "units": "mm", "source": c.source}
                            for c in self.coordinates],
            "size_bytes": len(self.html.encode("utf-8")),
        }


def _coordinates_html(rows: Sequence[SummaryCoordinate]) -> str:
    if not rows:
        return ""
    esc = html.escape
    parts = ['<table class="data" id="summary-coordinates"><caption>Coordinates in each space (mm)'
             '</caption><thead><tr><th scope="col">Point</th><th scope="col">Space</th>'
             '<th scope="col">x</th><th scope="col">y</th><th scope="col">z</th>'
             '<th scope="col">From</th></tr></thead><tbody>']
    for c in rows:
        x, y, z = (float(v) for v in c.xyz_mm)
        parts.append(
            f'<tr data-label="{esc(c.label, quote=True)}" data-space="{esc(c.space, quote=True)}" '
            f'data-x="{x:.2f}" data-y="{y:.2f}" data-z="{z:.2f}"><th scope="row">{esc(c.label)}</th>'
            f'<td>{esc(c.space)}</td><td class="num">{x:.1f}</td><td class="num">{y:.1f}</td>'
            f'<td class="num">{z:.1f}</td><td>{esc(c.source)}</td></tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def build_subject_report(
    derivatives_dir: str | Path,
    subject: str,
    *,
    session: str | None = None,
    providers: Sequence[str] | None = None,
) -> SubjectReport:
    """Ask every provider and assemble one subject's report (nothing written).

    Parameters
    ----------
    derivatives_dir : path
        The tmsnet derivatives folder.
    subject : str
        Subject label (``01`` or ``sub-01``).
    session : str, optional
        Session label; default all sessions together. Jobs that write no
        session entity (the treatment plan) are only found without it.
    providers : sequence of str, optional
        Only these registered providers (default all, in order).

    Returns
    -------
    SubjectReport

    Raises
    ------
    InputFileNotFoundError
        If the subject has no folder, or no provider found anything to show.
    InvalidParameterError
        If a label or provider name is invalid.
    """
    context = SubjectContext(Path(derivatives_dir), _check_label(subject, "sub"),
                             _check_label(session, "ses"))
    if not context.folder.is_dir():
        raise InputFileNotFoundError(f"No derivatives for {context.prefix}: {context.folder} does not "
                                     "exist. Run a tmsnet job for this subject first.")
    registered = section_providers()
    if providers is not None:
        known = {name for name, _ in registered}
        unknown = [p for p in providers if p not in known]
        if unknown:
            raise InvalidParameterError(
                f"Unknown section provider(s) {unknown}; registered: {sorted(known)}."
            )
        registered = [(n, f) for n, f in registered if n in providers]
    sections: list[ReportSection] = []
    summary: list[tuple[str, str]] = []
    warnings: list[str] = []
    coordinates: list[SummaryCoordinate] = []
    headline = None
    ran: list[str] = []
    for name, func in registered:
        try:
            part = _as_sections(func(context))
        except Exception as exc:  # noqa: BLE001 - shown in the report, the others still render
            logger.exception("section provider %s failed for %s", name, context.prefix)
            warnings.append(f"The '{name}' section could not be built ({type(exc).__name__}: {exc}).")
            sections.append(ReportSection(
                f"{name} (failed)",
                f'<div class="warnings"><p>This section could not be built: '
                f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p></div>",
                f"{name}-failed"))
            continue
        if not part:
            continue
        ran.append(name)
        sections.extend(part.sections)
        summary.extend(part.summary)
        warnings.extend(part.warnings)
        coordinates.extend(part.coordinates)
        headline = headline or part.headline_html
    if not sections and not summary:
        raise InputFileNotFoundError(f"Nothing to report for {context.prefix} in {context.derivatives_dir}: "
                                     f"no registered job ({[n for n, _ in registered]}) found outputs.")
    warnings = list(dict.fromkeys(warnings))
    esc = html.escape
    rows = [("Jobs in this report", ", ".join(ran) or "none")] + summary
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    if warnings:
        notes = "".join(f"<li>{esc(w)}</li>" for w in warnings)
        qc = f'<div class="warnings" role="alert"><strong>Check before use</strong><ul>{notes}</ul></div>'
    else:
        qc = '<div class="ok">No quality warnings.</div>'
    document = render_report(
        title=f"tmsnet report: {context.prefix}",
        subtitle="Everything tmsnet computed for this subject",
        summary_html=f"{headline or ''}{_coordinates_html(coordinates)}<dl>{items}</dl>{qc}",
        sections=sections,
        footer_html=esc(f"Generated by tmsnet {__version__}."),
    )
    return SubjectReport(context=context, html=document, jobs=ran, summary=summary, warnings=warnings,
                         coordinates=coordinates, providers=[n for n, _ in registered])


def assemble_subject_report(
    derivatives_dir: str | Path,
    subject: str,
    *,
    session: str | None = None,
    providers: Sequence[str] | None = None,
) -> str:
    """One self-contained HTML report of everything tmsnet produced for a subject.

    Parameters
    ----------
    derivatives_dir, subject, session, providers
        See :func:`build_subject_report`.

    Returns
    -------
    str
        The HTML document.
    """
    return build_subject_report(derivatives_dir, subject, session=session, providers=providers).html


def save_subject_report(report: SubjectReport, out_dir: str | Path | None = None) -> Path:
    """Write ``sub-<label>[_ses-<label>]_report.html`` and its JSON sidecar, atomically.

    Parameters
    ----------
    report : SubjectReport
        From :func:`build_subject_report`.
    out_dir : path, optional
        Destination folder (default: the derivatives folder).

    Returns
    -------
    Path
        The report.
    """
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for

    context = report.context
    folder = ensure_output_dir(out_dir) if out_dir is not None else context.derivatives_dir
    path = Path(folder) / f"{context.prefix}_report.html"
    facts = report.as_dict()
    sidecar = make_sidecar(
        description="Per-subject report of every tmsnet job (self-contained HTML).",
        parameters={"subject": context.subject, "session": context.session,
                    "derivatives_dir": str(context.derivatives_dir), "providers": report.providers},
        inputs={}, space=None,
        extra={"Size_bytes": facts["size_bytes"], "Jobs": facts["jobs"], "Warnings": facts["warnings"],
               "Coordinates": facts["coordinates"]},
    )
    atomic_write_text(path, report.html)
    atomic_write_json(sidecar_path_for(path), sidecar)
    return path


def write_subject_report(
    derivatives_dir: str | Path,
    subject: str,
    *,
    session: str | None = None,
    providers: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
) -> Path:
    """Write ``<out_dir>/sub-<label>[_ses-<label>]_report.html`` (+ JSON sidecar), atomically.

    Parameters
    ----------
    derivatives_dir, subject, session, providers
        See :func:`build_subject_report`.
    out_dir : path, optional
        Destination folder (default: ``derivatives_dir``).

    Returns
    -------
    Path
        The report.
    """
    report = build_subject_report(derivatives_dir, subject, session=session, providers=providers)
    return save_subject_report(report, out_dir)
