"""Interactive slice / 3D viewer for reports (NiiVue, inlined, offline).

The viewer is `NiiVue <https://github.com/niivue/niivue>`_ (BSD-2-Clause), a
maintained WebGL2 viewer for neuroimaging. Its prebuilt UMD bundle from the npm
registry (``@niivue/niivue`` 0.69.0, ``dist/niivue.umd.js``) ships in
``tmsnet/data/js/`` with its licence and those of the libraries it bundles
(``tmsnet/data/js/LICENSE-niivue.txt``, ``THIRD_PARTY_LICENSES-niivue.txt``).
It is written into the report once, inline, and every image the viewer shows
is an inline gzipped NIfTI (base64), so the page needs no network.

A viewer shows, on nilearn's bundled MNI152 template:

* :class:`ViewerLayer` overlays: a statistical ``"map"`` (e.g. seed
  connectivity r, positive and negative colour scales, adjustable threshold)
  and binary ``"mask"`` layers (seed, search region) in one colour each;
* :class:`ViewerPoint` markers (targets): small labelled spheres, listed in a
  table whose buttons move the crosshair to them. Clicking a marker (or its
  button) shows the point's values and the maps' values under the crosshair.

The page script and its style sheet are package files
(``tmsnet/report/assets/viewer.js``, ``viewer.css``).

Without JavaScript or WebGL2, and when printing, the section shows a static
image instead (``fallback_html``), so the report stays readable and printable.
The page element carries ``data-state`` = ``loading`` / ``ready`` /
``unsupported`` / ``error``, which the browser tests read.
"""

from __future__ import annotations

import base64
import gzip
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np

from tmsnet.report.html import (
    ReportSection,
    asset,
    format_value,
    json_script,
    make_anchor,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "NIIVUE_VERSION",
    "ViewerLayer",
    "ViewerPoint",
    "crop_to_nonzero",
    "encode_nifti",
    "niivue_source",
    "plot_viewer_fallback",
    "point_label_image",
    "viewer_html",
    "viewer_section",
]

#: Version of the vendored NiiVue bundle (npm ``@niivue/niivue``).
NIIVUE_VERSION = "0.69.0"

#: Okabe & Ito colours (colour-vision-deficiency safe), as in :mod:`tmsnet.report.figures`.
GROUP_COLORS = ("#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#0072B2",
                "#E69F00", "#882255", "#44AA99")

#: Radius of the sphere drawn for each point (mm).
POINT_RADIUS_MM = 4.0


@dataclass(frozen=True)
class ViewerLayer:
    """One overlay image of a viewer.

    Attributes
    ----------
    name : str
        Name shown in the layer controls and in the crosshair read-out.
    image : Nifti1Image
        3D image in the viewer's template space (mm).
    kind : {"map", "mask"}
        ``"map"``: a signed statistical map shown with a warm (positive) and a
        cool (negative) colour scale, ``|value|`` between ``threshold`` and
        ``vmax``; ``"mask"``: non-zero voxels filled in ``color``.
    color : str
        ``#rrggbb`` colour of a mask.
    threshold : float, optional
        Map values with ``|value|`` below this are transparent (default 35 %
        of ``vmax``).
    vmax : float, optional
        Colour-scale limit of a map (default the 99.5th percentile of ``|value|``).
    opacity : float
        Layer opacity in [0, 1].
    units : str
        Unit / statistic of the values, shown in the read-out (e.g. ``"r"``).
    """

    name: str
    image: nib.Nifti1Image
    kind: str = "map"
    color: str = "#0072B2"
    threshold: float | None = None
    vmax: float | None = None
    opacity: float = 0.8
    units: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("map", "mask"):
            raise ValueError(f"ViewerLayer kind must be 'map' or 'mask', got {self.kind!r}.")
        if not (0.0 <= self.opacity <= 1.0):
            raise ValueError(f"ViewerLayer opacity must be in [0, 1], got {self.opacity}.")
        _rgb(self.color)


@dataclass(frozen=True)
class ViewerPoint:
    """One marker (e.g. a target) of a viewer.

    Attributes
    ----------
    label : str
        Name of the point (e.g. ``"cluster"`` or ``"sub-01 cluster"``).
    xyz_mm : (x, y, z)
        Position in mm, in the viewer's template space.
    group : str
        Points of one group share a colour (e.g. the method).
    values : mapping
        What clicking the point shows (name -> value; e.g. ``r_at_target``).
    """

    label: str
    xyz_mm: tuple[float, float, float]
    group: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        xyz = tuple(float(v) for v in self.xyz_mm)
        if len(xyz) != 3 or not np.all(np.isfinite(xyz)):
            raise ValueError(f"ViewerPoint {self.label!r} needs three finite mm coordinates, "
                             f"got {self.xyz_mm!r}.")
        object.__setattr__(self, "xyz_mm", xyz)


def _rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    if len(text) != 6:
        raise ValueError(f"Colours must be '#rrggbb', got {color!r}.")
    try:
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        raise ValueError(f"Colours must be '#rrggbb', got {color!r}.") from None


@lru_cache(maxsize=1)
def niivue_source() -> str:
    """The vendored NiiVue UMD bundle (defines ``window.niivue``).

    Returns
    -------
    str
        JavaScript source (about 2.3 MB).
    """
    path = resources.files("tmsnet.data").joinpath("js", "niivue.umd.js")
    return path.read_text(encoding="utf-8")


def encode_nifti(img: nib.Nifti1Image, *, dtype: Any = np.float32) -> str:
    """A 3D image as a base64 string of a gzipped NIfTI-1 file.

    Parameters
    ----------
    img : Nifti1Image
        3D image (a 4D image with one volume is squeezed).
    dtype : numpy dtype
        On-disk type. Integer types of float data are scaled by nibabel
        (``scl_slope``), which NiiVue applies when reading.

    Returns
    -------
    str
        base64 text (deterministic: gzip time stamp 0).
    """
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"The viewer shows 3D images; got shape {data.shape}.")
    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    out = nib.Nifti1Image(data, img.affine)
    out.set_data_dtype(dtype)
    out.header.set_xyzt_units("mm")
    raw = out.to_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def point_label_image(
    points: Sequence[ViewerPoint],
    reference: nib.Nifti1Image,
    *,
    radius_mm: float = POINT_RADIUS_MM,
) -> nib.Nifti1Image:
    """Spheres labelled 1..n (0 elsewhere) at the points, on a reference grid.

    Parameters
    ----------
    points : sequence of ViewerPoint
        Markers; point ``i`` gets label ``i + 1`` (later points win where
        spheres overlap).
    reference : Nifti1Image
        Grid (shape, affine) of the label image.
    radius_mm : float
        Sphere radius (mm); the voxel nearest each point is always labelled.

    Returns
    -------
    Nifti1Image
        uint16 label image.
    """
    shape = reference.shape[:3]
    affine = reference.affine
    labels = np.zeros(shape, dtype=np.uint16)
    ijk = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ ijk + affine[:3, 3:4]).T.reshape(*shape, 3)
    inverse = np.linalg.inv(affine)
    for index, point in enumerate(points, start=1):
        p = np.asarray(point.xyz_mm)
        inside = np.sum((xyz - p) ** 2, axis=-1) <= radius_mm**2
        labels[inside] = index
        nearest = np.rint(inverse[:3, :3] @ p + inverse[:3, 3]).astype(int)
        if np.all(nearest >= 0) and np.all(nearest < np.asarray(shape)):
            labels[tuple(nearest)] = index
    return nib.Nifti1Image(labels, affine)


@lru_cache(maxsize=1)
def _template() -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=2)
    data = np.asarray(img.dataobj, dtype=np.float32)
    top = float(np.percentile(data[data > 0], 99.5)) if np.any(data > 0) else 1.0
    scaled = np.clip(data / top * 255.0, 0, 255).astype(np.uint8)
    # Crop to the head (plus a 2-voxel margin): every voxel costs time in the browser.
    ijk = np.argwhere(scaled > 0)
    lo = np.maximum(ijk.min(axis=0) - 2, 0)
    hi = np.minimum(ijk.max(axis=0) + 3, scaled.shape)
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ lo + img.affine[:3, 3]
    return nib.Nifti1Image(scaled[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]], affine)


def crop_to_nonzero(img: nib.Nifti1Image, *, margin: int = 1) -> nib.Nifti1Image:
    """The smallest box of ``img`` holding its non-zero voxels (plus ``margin`` voxels).

    Zero voxels of an overlay are transparent, so cropping changes nothing on
    screen but saves bytes and browser time. The affine is shifted so every
    voxel keeps its mm position.

    Parameters
    ----------
    img : Nifti1Image
        3D image.
    margin : int
        Voxels kept around the box.

    Returns
    -------
    Nifti1Image
        Cropped image (a single voxel if ``img`` is all zero).
    """
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    ijk = np.argwhere(np.nan_to_num(data) != 0)
    if ijk.size == 0:
        lo, hi = np.zeros(3, dtype=int), np.ones(3, dtype=int)
    else:
        lo = np.maximum(ijk.min(axis=0) - margin, 0)
        hi = np.minimum(ijk.max(axis=0) + 1 + margin, data.shape[:3])
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ lo + img.affine[:3, 3]
    return nib.Nifti1Image(np.ascontiguousarray(data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]), affine)


def _map_range(layer: ViewerLayer) -> tuple[float, float]:
    data = np.asarray(layer.image.dataobj, dtype=np.float32)
    finite = np.abs(data[np.isfinite(data) & (data != 0)])
    vmax = layer.vmax
    if vmax is None:
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    vmax = max(float(vmax), 1e-6)
    threshold = layer.threshold if layer.threshold is not None else 0.35 * vmax
    return float(threshold), vmax


def _mask_colormap(color: str) -> dict[str, list[int]]:
    r, g, b = _rgb(color)
    return {"R": [0, r], "G": [0, g], "B": [0, b], "A": [0, 255], "I": [0, 255]}


def _label_colormap(points: Sequence[ViewerPoint], groups: list[str]) -> dict[str, list[Any]]:
    lut: dict[str, list[Any]] = {"R": [0], "G": [0], "B": [0], "A": [0], "I": [0],
                                 "labels": [""]}
    for index, point in enumerate(points, start=1):
        r, g, b = _rgb(GROUP_COLORS[groups.index(point.group) % len(GROUP_COLORS)])
        for key, value in (("R", r), ("G", g), ("B", b), ("A", 255), ("I", index),
                           ("labels", point.label)):
            lut[key].append(value)
    return lut


def _point_table(viewer_id: str, points: Sequence[ViewerPoint], groups: list[str]) -> str:
    esc = html.escape
    keys: list[str] = []
    for point in points:
        for key in point.values:
            if key not in keys:
                keys.append(str(key))
    head = "".join(f'<th scope="col">{esc(k)}</th>' for k in keys)
    rows = []
    for index, point in enumerate(points):
        color = GROUP_COLORS[groups.index(point.group) % len(GROUP_COLORS)]
        x, y, z = point.xyz_mm
        cells = "".join(
            f"<td>{esc(format_value(point.values.get(k), float_format='{:.3g}'))}</td>" for k in keys
        )
        rows.append(
            f'<tr data-point="{index}">'
            f'<th scope="row"><span class="swatch" style="background:{color}"></span>'
            f"{esc(point.label)}</th>"
            f'<td class="num">{x:.1f}, {y:.1f}, {z:.1f}</td>{cells}'
            f'<td class="screen-only"><button type="button" class="viewer-goto" data-point="{index}" '
            f'aria-controls="{esc(viewer_id, quote=True)}-canvas" disabled>Show</button></td></tr>'
        )
    return (
        '<table class="data viewer-points"><caption>Points shown in the viewer (mm)</caption>'
        f'<thead><tr><th scope="col">point</th><th scope="col">x, y, z (mm)</th>{head}'
        '<th scope="col" class="screen-only">viewer</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )




def viewer_html(
    *,
    viewer_id: str,
    layers: Sequence[ViewerLayer],
    points: Sequence[ViewerPoint] = (),
    fallback_html: str,
    background: nib.Nifti1Image | None = None,
    caption: str | None = None,
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """HTML, scripts and styles of one interactive viewer.

    Parameters
    ----------
    viewer_id : str
        Unique element id (letters, digits, ``-``, ``_``; starts with a letter).
    layers : sequence of ViewerLayer
        Overlays, bottom to top. At most one ``"map"`` gets the threshold slider.
    points : sequence of ViewerPoint
        Markers (targets), drawn as spheres of :data:`POINT_RADIUS_MM`.
    fallback_html : str
        Static content shown without JavaScript/WebGL2 and when printing
        (e.g. :func:`tmsnet.report.html.figure_html` of :func:`plot_viewer_fallback`).
    background : Nifti1Image, optional
        Anatomy under the overlays; default nilearn's bundled MNI152 (2 mm).
    caption : str, optional
        Plain-text explanation shown under the viewer.

    Returns
    -------
    html : str
    scripts : tuple of str
        The NiiVue bundle and the page script (pass to :class:`ReportSection`).
    styles : tuple of str
    """
    if make_anchor(viewer_id) != viewer_id.lower() or not viewer_id[:1].isalpha():
        raise ValueError(f"viewer_id must be a simple identifier, got {viewer_id!r}.")
    background = background if background is not None else _template()
    groups = _groups(points)
    config_layers: list[dict[str, Any]] = [{
        "name": "anatomy", "role": "background", "data": encode_nifti(background, dtype=np.uint8),
        "colormap": "gray", "opacity": 1.0, "cal_min": 0, "cal_max": 255, "colorbar": False,
    }]
    overlays, colormaps, controls = _overlay_configs(layers)
    config_layers.extend(overlays)
    if points:
        config_layers.append(_points_config(points, groups, background))
        controls.append(
            f'<label><input type="checkbox" class="viewer-layer" data-layer="{len(layers) + 1}" '
            'checked disabled> points</label>'
        )
    config = {
        "layers": config_layers,
        "colormaps": colormaps,
        "points": [{"label": p.label, "xyz_mm": list(p.xyz_mm), "group": p.group,
                    "values": dict(p.values)} for p in points],
    }
    body = _viewer_markup(viewer_id, config, controls, points, groups, fallback_html, caption)
    return body, (niivue_source(), asset("viewer.js")), (asset("viewer.css"),)


def _groups(points: Sequence[ViewerPoint]) -> list[str]:
    """The points' groups in order of first appearance (index into :data:`GROUP_COLORS`)."""
    groups: list[str] = []
    for point in points:
        if point.group not in groups:
            groups.append(point.group)
    return groups


def _overlay_configs(layers: Sequence[ViewerLayer]
                     ) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """Viewer config entries of the overlays, their mask colormaps, and their control markup."""
    esc = html.escape
    entries: list[dict[str, Any]] = []
    colormaps: dict[str, Any] = {}
    controls: list[str] = []
    # data-layer is the position in config["layers"] (= NiiVue's volume index; 0 is the anatomy).
    for index, layer in enumerate(layers):
        entry: dict[str, Any] = {"name": layer.name, "role": layer.kind, "opacity": layer.opacity,
                                 "units": layer.units}
        if layer.kind == "map":
            threshold, vmax = _map_range(layer)
            entry.update(data=encode_nifti(crop_to_nonzero(layer.image), dtype=np.int16), colormap="warm",
                         colormap_negative="winter", cal_min=threshold, cal_max=vmax,
                         colorbar=True)
            if not any(c.startswith('<label class="viewer-slider"') for c in controls):
                controls.append(
                    f'<label class="viewer-slider">Hide |{esc(layer.name)}| below '
                    f'<input type="range" class="viewer-threshold" min="0" max="{vmax:.4f}" '
                    f'step="{vmax / 100:.5f}" value="{threshold:.4f}" disabled> '
                    f'<output class="viewer-threshold-value">{threshold:.2f}</output></label>'
                )
        else:
            key = f"tmsnet{layer.color.lstrip('#').lower()}"
            colormaps[key] = _mask_colormap(layer.color)
            entry.update(data=encode_nifti(crop_to_nonzero(layer.image), dtype=np.uint8), colormap=key,
                         cal_min=0.5, cal_max=1.0, colorbar=False)
        entries.append(entry)
        swatch = layer.color if layer.kind == "mask" else "#888888"
        controls.append(
            f'<label><input type="checkbox" class="viewer-layer" data-layer="{index + 1}" checked '
            f'disabled> <span class="swatch" style="background:{swatch}"></span>{esc(layer.name)}</label>'
        )
    return entries, colormaps, controls


def _points_config(points: Sequence[ViewerPoint], groups: list[str],
                   background: nib.Nifti1Image) -> dict[str, Any]:
    """Viewer config entry of the points: a label image of spheres on the background's grid."""
    labels = crop_to_nonzero(point_label_image(points, background))
    return {
        "name": "points", "role": "points", "data": encode_nifti(labels, dtype=np.uint16),
        "colormap": "gray", "opacity": 1.0, "cal_min": 0, "cal_max": len(points),
        "colorbar": False, "label_colormap": _label_colormap(points, groups),
    }


def _viewer_markup(viewer_id: str, config: dict[str, Any], controls: list[str],
                   points: Sequence[ViewerPoint], groups: list[str], fallback_html: str,
                   caption: str | None) -> str:
    """The viewer's HTML: config script, canvas, controls, point table, fallback and caption."""
    esc = html.escape
    config_id = f"{viewer_id}-config"
    views = (
        '<button type="button" class="viewer-view" data-view="multiplanar" disabled>Slices + 3D</button>'
        '<button type="button" class="viewer-view" data-view="render" disabled>3D only</button>'
    )
    parts = [
        f'<div class="tmsnet-viewer" id="{esc(viewer_id, quote=True)}" data-state="loading" '
        f'data-config="{esc(config_id, quote=True)}">',
        json_script(config, element_id=config_id),
        '<p class="viewer-status screen-only" role="status">Interactive viewer loading (needs '
        'JavaScript and WebGL2)...</p>',
        '<noscript><p>JavaScript is off: the interactive viewer is replaced by the static images '
        'below.</p></noscript>',
        '<div class="viewer-live screen-only" hidden>',
        # NiiVue sizes the canvas to its parent, so the parent carries the height.
        '<div class="viewer-canvas-box">'
        f'<canvas id="{esc(viewer_id, quote=True)}-canvas" role="img" '
        f'aria-label="Interactive slices and 3D view: {esc(caption or "brain maps", quote=True)}">'
        "</canvas></div>",
        f'<div class="viewer-controls">{views}{"".join(controls)}</div>',
        '<div class="viewer-info" aria-live="polite"></div>',
        "</div>",
        _point_table(viewer_id, points, groups) if points else "",
        f'<div class="viewer-fallback print-fallback">{fallback_html}</div>',
    ]
    if caption:
        parts.append(f'<p class="viewer-caption">{esc(caption)}</p>')
    parts.append("</div>")
    return "".join(parts)


def viewer_section(
    *,
    title: str,
    anchor: str,
    layers: Sequence[ViewerLayer],
    points: Sequence[ViewerPoint] = (),
    fallback_html: str,
    intro_html: str = "",
    background: nib.Nifti1Image | None = None,
    caption: str | None = None,
) -> ReportSection:
    """A report section holding one viewer (see :func:`viewer_html`).

    Parameters
    ----------
    title, anchor : str
        Section heading and id; the viewer's id is ``<anchor>-viewer``.
    layers, points, fallback_html, background, caption
        See :func:`viewer_html`.
    intro_html : str
        Safe HTML shown above the viewer.

    Returns
    -------
    ReportSection
    """
    body, scripts, styles = viewer_html(
        viewer_id=f"{anchor}-viewer", layers=layers, points=points, fallback_html=fallback_html,
        background=background, caption=caption,
    )
    return ReportSection(title, intro_html + body, anchor, scripts=scripts, styles=styles)


def plot_viewer_fallback(
    *,
    stat_map: nib.Nifti1Image | None,
    masks: Sequence[tuple[nib.Nifti1Image, str]] = (),
    points: Sequence[ViewerPoint] = (),
    title: str | None = None,
) -> Figure:
    """Static stand-in of a viewer: orthogonal cuts through the first point.

    Parameters
    ----------
    stat_map : Nifti1Image or None
        Signed map (blue negative, red positive); None for anatomy only.
    masks : sequence of (Nifti1Image, colour)
        Mask outlines to draw.
    points : sequence of ViewerPoint
        Markers (coloured by group as in the viewer).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from nilearn import plotting

    cut = points[0].xyz_mm if points else (0.0, 0.0, 0.0)
    fig = plt.figure(figsize=(9, 3.2), facecolor="white")
    if stat_map is not None:
        data = np.nan_to_num(np.asarray(stat_map.dataobj, dtype=np.float32))
        finite = np.abs(data[data != 0])
        vmax = max(float(np.percentile(finite, 99.5)) if finite.size else 1.0, 1e-3)
        display = plotting.plot_stat_map(
            nib.Nifti1Image(data, stat_map.affine), cut_coords=cut, display_mode="ortho",
            figure=fig, title=title, threshold=0.2 * vmax, cmap="RdBu_r", symmetric_cbar=True,
            vmax=vmax, black_bg=False, draw_cross=False, colorbar=True, cbar_tick_format="%.2f",
        )
    else:
        display = plotting.plot_anat(cut_coords=cut, display_mode="ortho", figure=fig, title=title,
                                     black_bg=False, draw_cross=False, dim=-0.3)
    for img, color in masks:
        mask = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
        display.add_contours(mask, levels=[0.5], colors=[color], linewidths=1.4)
    groups = _groups(points)
    for point in points:
        color = GROUP_COLORS[groups.index(point.group) % len(GROUP_COLORS)]
        display.add_markers([point.xyz_mm], marker_color=color, marker_size=90, marker="o",
                            edgecolors="black", linewidths=0.8)
    return fig
