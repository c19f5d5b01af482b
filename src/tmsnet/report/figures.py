"""Figures of the targeting report (matplotlib / nilearn).

Each function returns a :class:`matplotlib.figure.Figure`; encode it with
:func:`tmsnet.report.html.figure_to_base64_png` (which also closes it).
If pyplot has not been imported yet, the non-interactive ``Agg`` backend is
selected so that reports render on headless machines.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from functools import lru_cache

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # pragma: no branch - depends on import order
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from tmsnet.io.images import crop_to_nonzero  # noqa: E402

__all__ = [
    "plot_connectivity_through_target",
    "plot_motion_qc",
    "plot_regions",
    "plot_surface_connectivity",
    "plot_target_and_references_glass_brain",
]

#: Colours chosen to stay distinguishable for common colour-vision deficiencies
#: (Okabe & Ito palette).
TARGET_COLOR = "#009E73"  # bluish green
SEED_COLOR = "#0072B2"  # blue
SEARCH_COLOR = "#E69F00"  # orange
_REFERENCE_COLORS = ("#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000", "#999999",
                     "#882255", "#44AA99", "#117733", "#332288")
_REFERENCE_MARKERS = ("o", "s", "D", "^", "v", "P", "X", "h", "<", ">")
#: How every nilearn cut display of the report looks: white background, coordinates, no crosshair.
_CUTS_STYLE: dict[str, bool] = {"black_bg": False, "annotate": True, "draw_cross": False}


@lru_cache(maxsize=1)
def mni152_template_2mm() -> nib.Nifti1Image:
    """Nilearn's bundled MNI152 template resampled to 2 mm, once per process.

    nilearn ships it at 1 mm and resamples it on every call (about 1 s); the
    report draws it in several figures and the viewer. Not to be modified.
    """
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def _as_float_image(img: nib.Nifti1Image) -> nib.Nifti1Image:
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return nib.Nifti1Image(data, img.affine)


def _target(target_mm: Sequence[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in target_mm)
    return x, y, z


def _fmt(v: float) -> str:
    text = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def plot_connectivity_through_target(
    connectivity_map: nib.Nifti1Image,
    *,
    target_mm: Sequence[float],
    title: str,
    threshold: float | None = None,
    vmax: float | None = None,
    outlines: Sequence[tuple[nib.Nifti1Image, str]] = (),
) -> Figure:
    """Orthogonal cuts of the seed connectivity (r) map through the target.

    Parameters
    ----------
    connectivity_map : Nifti1Image
        3D map of Pearson r in MNI space.
    target_mm : (x, y, z)
        Target in mm; the cuts pass through it and a marker is drawn there.
    title : str
        Title drawn on the figure.
    threshold : float, optional
        Hide voxels with ``|r|`` below this value (default: show all).
    vmax : float, optional
        Colour-scale limit; default the 99.5th percentile of ``|r|`` (>= 0.1).
    outlines : sequence of (Nifti1Image, colour)
        Masks whose outlines are drawn over the map (e.g. the search region and the seed).

    Returns
    -------
    matplotlib.figure.Figure
        Blue/cold colours are negative r (anticorrelation), red/warm positive.
    """
    from nilearn import plotting

    img = _as_float_image(connectivity_map)
    data = np.asarray(img.dataobj)
    finite = np.abs(data[np.isfinite(data) & (data != 0)])
    if vmax is None:
        vmax = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        vmax = max(vmax, 0.1)
    target = _target(target_mm)
    img = crop_to_nonzero(nib.Nifti1Image(np.nan_to_num(data, nan=0.0), img.affine), keep_mm=[target])
    fig = plt.figure(figsize=(10, 3.6), facecolor="white")
    display = plotting.plot_stat_map(
        img,
        cut_coords=target,
        display_mode="ortho",
        figure=fig,
        title=title,
        threshold=threshold if threshold is not None else 1e-6,
        cmap="RdBu_r",
        symmetric_cbar=True,
        vmax=vmax,
        **_CUTS_STYLE,
        colorbar=True,
        cbar_tick_format="%.2f",
    )
    for mask, color in outlines:
        outline = crop_to_nonzero(_as_float_image(mask), keep_mm=[target])  # see plot_regions
        display.add_contours(outline, levels=[0.5], colors=[color], linewidths=1.4)
    display.add_markers(
        [target], marker_color=TARGET_COLOR, marker_size=140, marker="*",
        edgecolors="black", linewidths=0.8,
    )
    fig.text(0.5, 0.0, f"Cuts through the target ({', '.join(_fmt(v) for v in target)}) mm; "
             "green star = target; blue = anticorrelated with the seed, red = correlated "
             "(colour bar: Pearson r)", ha="center", va="bottom", fontsize=9)
    return fig


def _center_of_mass_mm(img: nib.Nifti1Image) -> tuple[float, float, float]:
    data = np.asarray(img.dataobj) > 0
    ijk = np.argwhere(data)
    if ijk.size == 0:
        return 0.0, 0.0, 0.0
    mean = ijk.mean(axis=0)
    xyz = img.affine[:3, :3] @ mean + img.affine[:3, 3]
    return float(xyz[0]), float(xyz[1]), float(xyz[2])


def plot_regions(
    *,
    seed_mask: nib.Nifti1Image,
    search_mask: nib.Nifti1Image,
    target_mm: Sequence[float],
    background: nib.Nifti1Image | None = None,
) -> Figure:
    """Seed ROI, DLPFC search region and the target on anatomical cuts.

    Two rows: sagittal cuts (through the seed and the target) and axial cuts
    (through the seed and the target).

    Parameters
    ----------
    seed_mask : Nifti1Image
        The seed (e.g. sgACC) mask; non-zero voxels are inside.
    search_mask : Nifti1Image
        The DLPFC search region mask.
    target_mm : (x, y, z)
        The target, in mm.
    background : Nifti1Image, optional
        Anatomical background; default nilearn's bundled MNI152 template.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    if background is None:
        background = mni152_template_2mm()
    target = _target(target_mm)
    seed_xyz = _center_of_mass_mm(seed_mask)
    # cropped around the cuts (nilearn works on the whole volume at every contour)
    seed = crop_to_nonzero(_as_float_image(seed_mask), keep_mm=[seed_xyz, target])
    search = crop_to_nonzero(_as_float_image(search_mask), keep_mm=[seed_xyz, target])

    fig = plt.figure(figsize=(10, 6.4), facecolor="white")
    rows = (
        ("x", [seed_xyz[0], target[0]], "Sagittal"),
        ("z", [seed_xyz[2], target[2]], "Axial"),
    )
    for i, (mode, cuts, label) in enumerate(rows):
        bottom = 0.52 - i * 0.47
        axes = fig.add_axes((0.0, bottom, 1.0, 0.43))
        display = plotting.plot_anat(
            background,
            display_mode=mode,
            cut_coords=[round(c) for c in cuts],
            axes=axes,
            figure=fig,
            **_CUTS_STYLE,
            colorbar=False,
            dim=-0.3,
            title=None,
        )
        with warnings.catch_warnings():
            # nilearn takes the min of an all-masked slice when a cut misses a region: harmless
            # (nothing to draw there), but numpy would print "converting a masked element to nan".
            warnings.filterwarnings("ignore", message=".*converting a masked element to nan")
            for img, color in ((search, SEARCH_COLOR), (seed, SEED_COLOR)):
                display.add_contours(img, levels=[0.5], filled=True, colors=[color], transparency=0.45)
                display.add_contours(img, levels=[0.5], colors=[color], linewidths=1.6)
        display.add_markers(
            [target], marker_color=TARGET_COLOR, marker_size=160, marker="*",
            edgecolors="black", linewidths=0.8,
        )
        fig.text(0.005, bottom + 0.445, f"{label} cuts (seed centre, target)",
                 fontsize=10, fontweight="bold", va="bottom")
    handles = [
        Patch(facecolor=SEED_COLOR, alpha=0.6, edgecolor=SEED_COLOR, label="Seed (sgACC)"),
        Patch(facecolor=SEARCH_COLOR, alpha=0.6, edgecolor=SEARCH_COLOR,
              label="DLPFC search region"),
        Line2D([], [], linestyle="", marker="*", markersize=14, markerfacecolor=TARGET_COLOR,
               markeredgecolor="black", label="Target"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=10,
               bbox_to_anchor=(0.5, -0.02))
    return fig


def plot_target_and_references_glass_brain(
    *,
    target_mm: Sequence[float],
    references: pd.DataFrame,
) -> Figure:
    """The personal target and published coordinates on a glass brain.

    Parameters
    ----------
    target_mm : (x, y, z)
        The personal target, in mm.
    references : pandas.DataFrame
        One row per coordinate with columns ``name``, ``x``, ``y``, ``z``
        (``name`` may also be the index). If a ``distance_mm`` column is
        present it is shown in the legend.

    Returns
    -------
    matplotlib.figure.Figure
        Markers are identified by colour and shape in a legend (names are not
        written next to the markers, which would overlap for nearby targets).
    """
    from nilearn import plotting

    refs = references.copy()
    if "name" not in refs.columns:
        refs = refs.reset_index().rename(columns={"index": "name"})
    target = _target(target_mm)
    fig = plt.figure(figsize=(10, 4.6), facecolor="white")
    axes = fig.add_axes((0.0, 0.3, 1.0, 0.68))
    display = plotting.plot_glass_brain(
        None, display_mode="xz", axes=axes, figure=fig, black_bg=False, annotate=True,
        colorbar=False,
    )
    handles = []
    for i, row in enumerate(refs.itertuples(index=False)):
        color = _REFERENCE_COLORS[i % len(_REFERENCE_COLORS)]
        marker = _REFERENCE_MARKERS[i % len(_REFERENCE_MARKERS)]
        xyz = (float(row.x), float(row.y), float(row.z))
        display.add_markers([xyz], marker_color=color, marker_size=55, marker=marker,
                            edgecolors="black", linewidths=0.6)
        label = f"{row.name} ({', '.join(_fmt(v) for v in xyz)})"
        distance = getattr(row, "distance_mm", None)
        if distance is not None and np.isfinite(distance):
            label += f": {distance:.1f} mm from target"
        handles.append(Line2D([], [], linestyle="", marker=marker, markersize=8,
                              markerfacecolor=color, markeredgecolor="black", label=label))
    display.add_markers([target], marker_color=TARGET_COLOR, marker_size=260, marker="*",
                        edgecolors="black", linewidths=1.0)
    handles.insert(0, Line2D([], [], linestyle="", marker="*", markersize=15,
                             markerfacecolor=TARGET_COLOR, markeredgecolor="black",
                             label=f"Personal target ({', '.join(_fmt(v) for v in target)})"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.3), ncol=2,
               frameon=False, fontsize=9, handletextpad=0.3, columnspacing=1.5)
    return fig


def plot_motion_qc(
    *,
    framewise_displacement: np.ndarray,
    t_r: float,
    threshold_mm: float = 0.5,
) -> Figure:
    """Framewise displacement over the scan, with a threshold line.

    Parameters
    ----------
    framewise_displacement : ndarray, shape (n_frames,)
        FD per frame in mm (Power et al. 2012); NaN (e.g. the first frame) is
        left out of the counts.
    t_r : float
        Repetition time in seconds (the x axis is in minutes).
    threshold_mm : float
        Frames above this FD are highlighted and counted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fd = np.asarray(framewise_displacement, dtype=float).ravel()
    minutes = np.arange(fd.size) * float(t_r) / 60.0
    valid = np.isfinite(fd)
    above = valid & (fd > threshold_mm)
    n_valid = int(valid.sum())
    n_above = int(above.sum())
    percent = 100.0 * n_above / n_valid if n_valid else float("nan")
    mean_fd = float(np.nanmean(fd)) if n_valid else float("nan")

    fig = Figure(figsize=(10, 2.8), facecolor="white")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(minutes, fd, color="#333333", linewidth=1.0, label="Framewise displacement")
    ax.axhline(threshold_mm, color="#D55E00", linestyle="--", linewidth=1.2,
               label=f"Threshold {threshold_mm:g} mm")
    if n_above:
        ax.plot(minutes[above], fd[above], linestyle="", marker="o", markersize=4,
                color="#D55E00", label="Frames above threshold")
    ax.set_xlabel("Time (min)")
    ax.set_ylabel("FD (mm)")
    top = np.nanmax(fd) if n_valid else threshold_mm
    ax.set_ylim(0, max(float(top), threshold_mm) * 1.15)
    if fd.size:
        ax.set_xlim(0, max(float(minutes[-1]), 1e-6))
    ax.set_title(
        f"Head motion: {n_above} of {n_valid} frames above {threshold_mm:g} mm "
        f"({percent:.1f} %); mean FD {mean_fd:.2f} mm",
        fontsize=11, loc="left",
    )
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncol=3)
    fig.tight_layout()
    return fig


def plot_surface_connectivity(
    coords_mm: np.ndarray,
    faces: np.ndarray,
    values: np.ndarray,
    *,
    hemisphere: str = "left",
    targets: Sequence[tuple[str, int]] = (),
    background: np.ndarray | None = None,
    title: str | None = None,
    vmax: float = 0.5,
) -> Figure:
    """A map on one hemisphere's surface, lateral view, with the targets' vertices marked.

    Parameters
    ----------
    coords_mm : ndarray, shape (n_vertices, 3)
        The surface to draw (e.g. the inflated template), mm.
    faces : ndarray of int, shape (n_faces, 3)
        Its triangles.
    values : ndarray, shape (n_vertices,)
        The map (e.g. Pearson r with the seed); NaN is drawn as 0 (no colour at ``|r| ~ 0``).
    hemisphere : {"left", "right"}
        Which hemisphere (the lateral view looks at it from that side).
    targets : sequence of (label, vertex)
        Targets to mark: a black dot at the vertex, lifted 5 mm towards the viewer so that
        the surface does not hide it, and the label beside it.
    background : ndarray, shape (n_vertices,), optional
        Grey shading under the map (nilearn's ``bg_map``, e.g. the sulcal depth).
    title : str, optional
        Figure title.
    vmax : float
        Colour-scale limit (symmetric; blue negative, red positive).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    # nilearn centres the mesh it draws (in place: give it a copy); the markers follow it.
    coords = np.asarray(coords_mm, dtype=float)
    coords = coords - coords.mean(axis=0)
    fig = plotting.plot_surf_stat_map(
        [coords.copy(), np.asarray(faces)], np.nan_to_num(np.asarray(values, dtype=float)),
        hemi=hemisphere, view="lateral", bg_map=background, colorbar=True, cmap="RdBu_r",
        vmax=vmax, engine="matplotlib", title=title)
    axes = fig.axes[0]
    # drawn in zorder, not by depth: the surface is one collection whose mean depth would
    # otherwise put it in front of the markers
    axes.computed_zorder = False
    lift = -5.0 if hemisphere == "left" else 5.0
    for label, vertex in targets:
        x, y, z = coords[int(vertex)]
        axes.scatter([x + lift], [y], [z], s=60, c="k", marker="o", depthshade=False, zorder=10)
        axes.text(x + lift, y, z + 4.0, str(label), fontsize=7, zorder=11)
    return fig
