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
(``tmsnet/report/assets/viewer.js``, ``viewer.css``; ``viewer_common.js`` holds what the
volume and the surface viewer share).

:func:`surface_viewer_html` is the surface counterpart (``surface_viewer.js``): both
hemispheres of a template mesh (:class:`ViewerSurface`) with a map per vertex and the
points at their vertices, the meshes and maps inlined as GIFTI text.

Without JavaScript or WebGL2, and when printing, the section shows a static
image instead (``fallback_html``), so the report stays readable and printable.
The page element carries ``data-state`` = ``loading`` / ``ready`` /
``unsupported`` / ``error``, which the browser tests read.
"""

from __future__ import annotations

import base64
import gzip
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import nibabel as nib
import numpy as np

from tmsnet.io.images import crop_to_nonzero
from tmsnet.report.html import (
    ReportSection,
    asset,
    format_value,
    json_script,
    make_anchor,
)

__all__ = [
    "NIIVUE_VERSION",
    "ViewerLayer",
    "ViewerPoint",
    "ViewerSurface",
    "crop_to_nonzero",
    "encode_gifti_mesh",
    "encode_gifti_values",
    "encode_nifti",
    "niivue_source",
    "point_label_image",
    "surface_viewer_html",
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
    signed : bool
        A map with negative values too (the cool colour scale and its colour bar); False
        for a magnitude (e.g. |E|).
    """

    name: str
    image: nib.Nifti1Image
    kind: str = "map"
    color: str = "#0072B2"
    threshold: float | None = None
    vmax: float | None = None
    opacity: float = 0.8
    units: str = ""
    signed: bool = True

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
    hemisphere : {"L", "R"}, optional
        With ``vertex``: in a surface viewer (:func:`surface_viewer_html`) the point is drawn
        at this vertex of this hemisphere's displayed mesh (e.g. the inflated surface), while
        ``xyz_mm`` (listed in the table) stays the position on the template surface.
    vertex : int, optional
        Vertex index on that hemisphere's mesh.
    """

    label: str
    xyz_mm: tuple[float, float, float]
    group: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    hemisphere: str | None = None
    vertex: int | None = None

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
    from tmsnet.report.figures import mni152_template_2mm

    img = mni152_template_2mm()
    data = np.asarray(img.dataobj, dtype=np.float32)
    top = float(np.percentile(data[data > 0], 99.5)) if np.any(data > 0) else 1.0
    scaled = np.clip(data / top * 255.0, 0, 255).astype(np.uint8)
    # Cropped to the head (plus a 2-voxel margin): every voxel costs time in the browser.
    return crop_to_nonzero(nib.Nifti1Image(scaled, img.affine), margin=2)


def _value_range(values: np.ndarray, threshold: float | None,
                 vmax: float | None) -> tuple[float, float]:
    """Threshold and colour limit of a signed map (defaults: 35 % of the 99.5th percentile)."""
    data = np.asarray(values, dtype=np.float32)
    finite = np.abs(data[np.isfinite(data) & (data != 0)])
    if vmax is None:
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    vmax = max(float(vmax), 1e-6)
    threshold = threshold if threshold is not None else 0.35 * vmax
    return float(threshold), vmax


def _map_range(layer: ViewerLayer) -> tuple[float, float]:
    return _value_range(np.asarray(layer.image.dataobj), layer.threshold, layer.vmax)


def _threshold_slider(name: str, threshold: float, vmax: float) -> str:
    """The markup of a map's threshold slider (``|value|`` below it is hidden)."""
    shown = name if name.startswith("|") else f"|{name}|"
    return (f'<label class="viewer-slider">Hide {html.escape(shown)} below '
            f'<input type="range" class="viewer-threshold" min="0" max="{vmax:.4f}" '
            f'step="{vmax / 100:.5f}" value="{threshold:.4f}" disabled> '
            f'<output class="viewer-threshold-value">{threshold:.2f}</output></label>')


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
        (e.g. a :func:`tmsnet.report.html.plot_html` figure of the same map).
    background : Nifti1Image, optional
        Anatomy under the overlays; default nilearn's bundled MNI152 (2 mm).
    caption : str, optional
        Plain-text explanation shown under the viewer.

    Returns
    -------
    html : str
    scripts : tuple of str
        The NiiVue bundle and the page scripts (pass to :class:`ReportSection`).
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
    return body, (niivue_source(), asset("viewer_common.js"), asset("viewer.js")), (asset("viewer.css"),)


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
                         colormap_negative="winter" if layer.signed else "", cal_min=threshold,
                         cal_max=vmax, colorbar=True)
            if not any(c.startswith('<label class="viewer-slider"') for c in controls):
                controls.append(_threshold_slider(layer.name, threshold, vmax))
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


_VOLUME_VIEWS = (
    '<button type="button" class="viewer-view" data-view="multiplanar" disabled>Slices + 3D</button>'
    '<button type="button" class="viewer-view" data-view="render" disabled>3D only</button>'
)


def _viewer_markup(viewer_id: str, config: dict[str, Any], controls: list[str],
                   points: Sequence[ViewerPoint], groups: list[str], fallback_html: str,
                   caption: str | None, *, views: str = _VOLUME_VIEWS,
                   label: str = "Interactive slices and 3D view", root_class: str = "tmsnet-viewer",
                   ) -> str:
    """The viewer's HTML: config script, canvas, controls, point table, fallback and caption."""
    esc = html.escape
    config_id = f"{viewer_id}-config"
    parts = [
        f'<div class="{root_class}" id="{esc(viewer_id, quote=True)}" data-state="loading" '
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
        f'aria-label="{esc(label, quote=True)}: {esc(caption or "brain maps", quote=True)}">'
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


# --------------------------------------------------------------------------- surface viewer

#: Grid (mm) the inlined mesh coordinates are rounded to: far below a screen pixel, and the
#: GIFTI arrays then compress to about 80 % of the unrounded size.
MESH_COORDINATE_STEP_MM = 1.0 / 64.0
#: Gap (mm) left between the hemispheres when their displayed surfaces overlap (inflated).
HEMISPHERE_GAP_MM = 8.0
_HEMISPHERE_NAMES = {"L": "left", "R": "right"}
_GIFTI_STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}
#: Light grey of a hemisphere without background values (RGBA, 0-255).
_MESH_RGBA = (200, 200, 200, 255)
#: Camera presets of the surface viewer (NiiVue's azimuth and elevation, degrees).
#: Azimuth 0 looks from behind, 90 from the left, 180 from the front, 270 from the right;
#: elevation 90 from above (checked on screenshots of the bundled NiiVue).
SURFACE_VIEWS: tuple[tuple[str, float, float], ...] = (
    ("Left lateral", 90.0, 0.0), ("Right lateral", 270.0, 0.0), ("Top", 0.0, 90.0),
    ("Front", 180.0, 0.0))


def _per_vertex(values: Any, n_vertices: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (n_vertices,):
        raise ValueError(f"ViewerSurface {name} must hold one value per vertex ({n_vertices}), "
                         f"got shape {array.shape}.")
    return array


@dataclass(frozen=True, eq=False)
class ViewerSurface:
    """One hemisphere of a surface viewer: a triangle mesh and a map on its vertices.

    Attributes
    ----------
    hemisphere : {"L", "R"}
        The hemisphere.
    coords_mm : ndarray, shape (n_vertices, 3)
        Vertex positions (mm) of the surface to show (e.g. the inflated template mesh).
    faces : ndarray of int, shape (n_faces, 3)
        Vertex indices (0-based) of each triangle.
    values : ndarray, shape (n_vertices,)
        The map (e.g. r); NaN where there is none (the medial wall): drawn without colour.
    background : ndarray, shape (n_vertices,), optional
        Drawn in grey under the map, dark for low values (e.g. minus the sulcal depth, so
        that sulci are dark).
    """

    hemisphere: str
    coords_mm: np.ndarray
    faces: np.ndarray
    values: np.ndarray
    background: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.hemisphere not in _HEMISPHERE_NAMES:
            raise ValueError(f"ViewerSurface hemisphere must be 'L' or 'R', got {self.hemisphere!r}.")
        coords = np.asarray(self.coords_mm, dtype=np.float64)
        if coords.ndim != 2 or coords.shape[1] != 3 or not np.all(np.isfinite(coords)):
            raise ValueError(f"ViewerSurface coords_mm must be finite, shape (n, 3); got {coords.shape}.")
        faces = np.asarray(self.faces)
        if (faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer)
                or faces.min() < 0 or faces.max() >= coords.shape[0]):
            raise ValueError("ViewerSurface faces must be (n_faces, 3) integer indices of its "
                             f"{coords.shape[0]} vertices.")
        object.__setattr__(self, "coords_mm", coords)
        object.__setattr__(self, "faces", faces.astype(np.int32))
        object.__setattr__(self, "values", _per_vertex(self.values, coords.shape[0], "values"))
        if self.background is not None:
            object.__setattr__(self, "background",
                               _per_vertex(self.background, coords.shape[0], "background"))


def _gifti_text(arrays: Sequence[nib.gifti.GiftiDataArray], hemisphere: str) -> str:
    image = nib.gifti.GiftiImage(darrays=list(arrays), meta=nib.gifti.GiftiMetaData(
        {"AnatomicalStructurePrimary": _GIFTI_STRUCTURES[hemisphere]}))
    text = image.to_bytes().decode("ascii")
    # The DOCTYPE names the GIFTI DTD by its URL: no reader needs it, and the page names no URL.
    return re.sub(r"<!DOCTYPE[^>]*>\s*", "", text, count=1)


def encode_gifti_mesh(coords_mm: np.ndarray, faces: np.ndarray, *, hemisphere: str = "L") -> str:
    """A triangle mesh as the text of a GIFTI surface file (what the surface viewer inlines).

    Parameters
    ----------
    coords_mm : ndarray, shape (n_vertices, 3)
        Vertex positions (mm); rounded to :data:`MESH_COORDINATE_STEP_MM` and stored as float32.
    faces : ndarray of int, shape (n_faces, 3)
        Triangles (0-based vertex indices), stored as int32.
    hemisphere : {"L", "R"}
        Written as the file's ``AnatomicalStructurePrimary``.

    Returns
    -------
    str
        GIFTI XML (ASCII) with gzip-compressed base64 arrays, without the DOCTYPE line;
        ``nibabel.gifti.GiftiImage.from_bytes(text.encode())`` reads it back. Deterministic.
    """
    step = MESH_COORDINATE_STEP_MM
    coords = (np.round(np.asarray(coords_mm, dtype=np.float64) / step) * step).astype(np.float32)
    pointset = nib.gifti.GiftiDataArray(coords, intent="NIFTI_INTENT_POINTSET",
                                        datatype="NIFTI_TYPE_FLOAT32", encoding="GIFTI_ENCODING_B64GZ")
    triangles = nib.gifti.GiftiDataArray(np.asarray(faces, dtype=np.int32),
                                         intent="NIFTI_INTENT_TRIANGLE", datatype="NIFTI_TYPE_INT32",
                                         encoding="GIFTI_ENCODING_B64GZ")
    return _gifti_text([pointset, triangles], hemisphere)


def encode_gifti_values(values: np.ndarray, *, hemisphere: str = "L") -> str:
    """Per-vertex values as the text of a GIFTI functional file (float32; NaN/inf -> 0).

    Zero is drawn without colour by the viewer (it lies below every threshold), so the
    vertices without a value stay bare.
    """
    data = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    array = nib.gifti.GiftiDataArray(data, intent="NIFTI_INTENT_NONE", datatype="NIFTI_TYPE_FLOAT32",
                                     encoding="GIFTI_ENCODING_B64GZ")
    return _gifti_text([array], hemisphere)


def _display_offsets(surfaces: Sequence[ViewerSurface]) -> dict[str, float]:
    """The x shift (mm) of each hemisphere: apart by :data:`HEMISPHERE_GAP_MM` where they overlap.

    Inflated surfaces are each centred on x = 0, so they are pulled apart; folded ones
    (pial, midthickness) meet at the midline and stay where they are.
    """
    by = {s.hemisphere: s for s in surfaces}
    offsets = {h: 0.0 for h in by}
    if set(by) == {"L", "R"}:
        overlap = float(by["L"].coords_mm[:, 0].max() - by["R"].coords_mm[:, 0].min())
        if overlap > HEMISPHERE_GAP_MM / 4:
            shift = (overlap + HEMISPHERE_GAP_MM) / 2
            offsets = {"L": -shift, "R": shift}
    return offsets


def _subdivide(points: list[np.ndarray], faces: list[tuple[int, int, int]]
               ) -> list[tuple[int, int, int]]:
    """Split every triangle in four at its edge midpoints (``points`` grows in place)."""
    middle: dict[tuple[int, int], int] = {}

    def mid(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in middle:
            middle[key] = len(points)
            points.append((points[a] + points[b]) / 2.0)
        return middle[key]

    finer = []
    for a, b, c in faces:
        ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
        finer += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
    return finer


@lru_cache(maxsize=1)
def _unit_icosphere() -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere: the icosahedron subdivided twice (162 vertices, 320 triangles)."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t),
             (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    points = [np.asarray(v, dtype=np.float64) for v in verts]
    for _ in range(2):
        faces = _subdivide(points, faces)
    coords = np.array(points)
    return coords / np.linalg.norm(coords, axis=1, keepdims=True), np.array(faces, dtype=np.int32)


def _surface_layers(surface: ViewerSurface, map_name: str, threshold: float, vmax: float, *,
                    colorbar: bool) -> list[dict[str, Any]]:
    """The mesh layers of one hemisphere: the grey background (if any), then the map."""
    layers = []
    if surface.background is not None:
        low, high = (float(v) for v in np.percentile(surface.background, [2.0, 98.0]))
        # shading only: 1/256 of its 2-98 % range is plenty, and compresses far better
        step = max(high - low, 1e-6) / 256.0
        shade = np.round(surface.background / step) * step
        layers.append({"role": "background", "name": "background",
                       "gifti": encode_gifti_values(shade, hemisphere=surface.hemisphere),
                       "colormap": "gray", "cal_min": low, "cal_max": max(high, low + 1e-6),
                       "opacity": 1.0, "colorbar": False})
    layers.append({"role": "map", "name": map_name,
                   "gifti": encode_gifti_values(surface.values, hemisphere=surface.hemisphere),
                   "colormap": "warm", "colormap_negative": "winter", "cal_min": threshold,
                   "cal_max": vmax, "opacity": 1.0, "colorbar": colorbar})
    return layers


def _surface_points(points: Sequence[ViewerPoint], surfaces: Mapping[str, ViewerSurface],
                    offsets: Mapping[str, float], groups: list[str]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Config of the points (shown at their vertex of the displayed mesh) and their spheres."""
    unit, faces = _unit_icosphere()
    records, spheres = [], []
    for index, point in enumerate(points):
        if point.hemisphere not in surfaces or point.vertex is None:
            raise ValueError(f"Point {point.label!r} of a surface viewer needs the hemisphere "
                             f"({sorted(surfaces)}) and vertex it sits on.")
        surface = surfaces[point.hemisphere]
        if not 0 <= int(point.vertex) < surface.coords_mm.shape[0]:
            raise ValueError(f"Point {point.label!r}: vertex {point.vertex} is not on the "
                             f"{surface.coords_mm.shape[0]}-vertex {point.hemisphere} mesh.")
        shown = surface.coords_mm[int(point.vertex)] + np.array([offsets[point.hemisphere], 0.0, 0.0])
        records.append({"label": point.label, "xyz_mm": list(point.xyz_mm), "group": point.group,
                        "values": dict(point.values), "hemisphere": point.hemisphere,
                        "vertex": int(point.vertex), "display_mm": [round(float(v), 3) for v in shown]})
        r, g, b = _rgb(GROUP_COLORS[groups.index(point.group) % len(GROUP_COLORS)])
        spheres.append({"name": point.label, "role": "point", "point": index, "layers": [],
                        "color": [r, g, b, 255],
                        "gifti": encode_gifti_mesh(shown + POINT_RADIUS_MM * unit, faces,
                                                   hemisphere=point.hemisphere)})
    return records, spheres


def _surface_controls(surfaces: Sequence[ViewerSurface], has_points: bool, map_name: str,
                      threshold: float, vmax: float) -> tuple[str, list[str]]:
    """View buttons, and the threshold slider and hemisphere / point toggles."""
    views = "".join(f'<button type="button" class="viewer-view" data-view="{i}" disabled>'
                    f"{html.escape(name)}</button>" for i, (name, _, _) in enumerate(SURFACE_VIEWS))
    controls = [_threshold_slider(map_name, threshold, vmax)]
    for index, surface in enumerate(surfaces):
        controls.append(f'<label><input type="checkbox" class="viewer-mesh" data-mesh="{index}" '
                        f'checked disabled> {_HEMISPHERE_NAMES[surface.hemisphere]} hemisphere</label>')
    if has_points:
        controls.append('<label><input type="checkbox" class="viewer-mesh" data-mesh="points" '
                        'checked disabled> points</label>')
    return views, controls


def surface_viewer_html(
    *,
    viewer_id: str,
    surfaces: Sequence[ViewerSurface],
    points: Sequence[ViewerPoint] = (),
    fallback_html: str,
    map_name: str = "connectivity",
    units: str = "",
    threshold: float | None = None,
    vmax: float | None = None,
    caption: str | None = None,
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """HTML, scripts and styles of one interactive surface viewer (NiiVue meshes, offline).

    Each hemisphere's mesh, its map and its background are inlined as GIFTI text
    (:func:`encode_gifti_mesh`, :func:`encode_gifti_values`) in the viewer's JSON config;
    the points are small spheres (radius :data:`POINT_RADIUS_MM`) at their vertex of the
    displayed mesh. Inflated hemispheres are drawn :data:`HEMISPHERE_GAP_MM` apart.
    Double-clicking the surface shows the nearest vertex (hemisphere, index) and the map there.

    Parameters
    ----------
    viewer_id : str
        Unique element id (letters, digits, ``-``, ``_``; starts with a letter).
    surfaces : sequence of ViewerSurface
        One or both hemispheres.
    points : sequence of ViewerPoint
        Markers, each with ``hemisphere`` and ``vertex``.
    fallback_html : str
        Static content shown without JavaScript/WebGL2 and when printing.
    map_name, units : str
        The map's name (controls, read-out) and its unit (e.g. ``"r"``).
    threshold, vmax : float, optional
        ``|value|`` below ``threshold`` is not coloured; colour scale up to ``vmax``
        (defaults: 35 % of, and, the 99.5th percentile of ``|value|``).
    caption : str, optional
        A sentence under the viewer (plain text).

    Returns
    -------
    tuple of (str, tuple of str, tuple of str)
        As :func:`viewer_html`: the viewer's HTML, its scripts (NiiVue,
        ``viewer_common.js``, ``surface_viewer.js``) and its style sheet, for a
        :class:`ReportSection`.
    """
    if make_anchor(viewer_id) != viewer_id.lower() or not viewer_id[:1].isalpha():
        raise ValueError(f"viewer_id must be a simple identifier, got {viewer_id!r}.")
    hemispheres = [s.hemisphere for s in surfaces]
    if not surfaces or len(set(hemispheres)) != len(hemispheres):
        raise ValueError(f"A surface viewer shows one or two distinct hemispheres, got {hemispheres}.")
    threshold, vmax = _value_range(np.concatenate([s.values for s in surfaces]), threshold, vmax)
    offsets = _display_offsets(surfaces)
    groups = _groups(points)
    records, spheres = _surface_points(points, {s.hemisphere: s for s in surfaces}, offsets, groups)
    # one colour bar for the map: the first hemisphere's
    meshes = [{"name": f"{_HEMISPHERE_NAMES[s.hemisphere]} hemisphere", "role": "hemisphere",
               "hemisphere": s.hemisphere, "offset_mm": [offsets[s.hemisphere], 0.0, 0.0],
               "color": list(_MESH_RGBA),
               "gifti": encode_gifti_mesh(s.coords_mm + [offsets[s.hemisphere], 0.0, 0.0], s.faces,
                                          hemisphere=s.hemisphere),
               "layers": _surface_layers(s, map_name, threshold, vmax, colorbar=index == 0)}
              for index, s in enumerate(surfaces)]
    config = {"kind": "surface", "meshes": meshes + spheres, "points": records,
              "point_radius_mm": POINT_RADIUS_MM,
              "map": {"name": map_name, "units": units, "cal_min": threshold, "cal_max": vmax},
              "views": [{"name": n, "azimuth": a, "elevation": e} for n, a, e in SURFACE_VIEWS]}
    views, controls = _surface_controls(surfaces, bool(points), map_name, threshold, vmax)
    body = _viewer_markup(viewer_id, config, controls, points, groups, fallback_html, caption,
                          views=views, label="Interactive 3D view of the cortical surface",
                          root_class="tmsnet-viewer tmsnet-surface-viewer")
    return body, (niivue_source(), asset("viewer_common.js"), asset("surface_viewer.js")), (
        asset("viewer.css"),)
