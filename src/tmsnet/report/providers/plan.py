"""Report section of the treatment plan and dose (``tmsnet plan`` / ``tmsnet target --plan``).

Reads ``sub-<label>/nibs/sub-<label>_space-<space>_desc-plan_target.json``
(written by :func:`tmsnet.navigation.outputs.write_plan`; the plan with its
provenance), the field patch beside it (``*_desc-plan_efield.tsv`` + sidecar,
read with :func:`tmsnet.navigation.outputs.read_plan_field`: the sphere-model
|E| of the planned coil on the sphere through the target and the orientation
sweep, computed once by :func:`tmsnet.physics.placement.field_patch`; nothing
is recomputed here) and lists the neuronavigation files. Shows the target in
the plan's space and as given, the scalp point, the coil orientation, the
scalp-to-cortex depth, the protocol and the dose (Stokes et al. 2005/2007
depth adjustment and the E-field-matched output; ``../shared/REFERENCES.md``
sections 1 and 3).

The same provider draws the plan's section of the combined subject report and
the one-page plan (``sub-<label>_desc-treatment_plan.html``: the report with
this provider only, see :func:`tmsnet.jobs.plan.plan`).

A realistic-head plan (``head_model == "realistic"``) shows instead of the
sphere patch three orthogonal slices of its |E| map
(``*_desc-efield_magnitude.nii.gz``) through the target, with the tissue
boundaries of its head labels (``*_desc-head_dseg.nii.gz``, the QC of the head
model), the target patch centre, the coil centre and the handle direction; and
the placement search beside the clinical placement at the scalp projection.

Summary card: the target in each space, the scalp point, depth, protocol and
dose; QC warnings: the plan's own (no motor threshold, intensity above the
stimulator's maximum, ...) and a plan made for a point that is not any of the
subject's targeting results.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.navigation.outputs import (
    EFIELD_MAP_SUFFIX,
    HEAD_LABELS_SUFFIX,
    PLAN_FIELD_SUFFIX,
    PlanField,
    plan_page_name,
    read_plan_field,
)
from tmsnet.physics.head_model import TISSUE_LABELS
from tmsnet.report.html import ReportSection, details_json, key_value_table, plot_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    format_xyz,
    load_json,
    register_section_provider,
    sections_per_file,
)
from tmsnet.utils.docs import fill_doc

__all__ = ["PLAN_TARGET_TOLERANCE_MM", "plan_provider"]

#: A plan whose target is farther than this from every targeting result of the
#: subject (same space, mm) draws a warning.
PLAN_TARGET_TOLERANCE_MM = 1.0

_PLAN_SUFFIX = "_desc-plan_target.json"
_NAVIGATION = (
    ("_desc-brainsight_targets.txt", "Brainsight targets (text)"),
    ("_desc-localite_InstrumentMarker.xml", "Localite InstrumentMarker (XML)"),
    ("_markers.tsv", "NIBS-BIDS markers (TSV)"),
    ("_coordsystem.json", "NIBS-BIDS coordinate system"),
)


def _plot_patch(patch: Any) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    mesh = ax.pcolormesh(patch.u_mm, patch.v_mm, patch.e, shading="auto", cmap="viridis")
    ax.contour(patch.u_mm, patch.v_mm, patch.e, levels=[float(patch.e.max()) / 2], colors="white",
               linewidths=1.0)
    ax.plot(0, 0, "+", color="white", markersize=10, label="coil centre")
    ax.plot(*patch.target_uv_mm, "x", color="#d62728", markersize=10, mew=2, label="target")
    ax.set_aspect("equal")
    ax.set_xlabel("along coil x axis (mm of arc)")
    ax.set_ylabel("along coil y axis (mm of arc)")
    ax.set_title(f"{patch.coil}: |E| at the target's depth (sphere r = {patch.radius_mm:.0f} mm)",
                 fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.colorbar(mesh, ax=ax, label="|E| (V/m per A/µs)")
    fig.tight_layout()
    return fig


#: How the plan page names each orientation rule.
_ORIENTATION_WORDS = {"clinical": "clinical convention: handle 45° from the midline, back and out",
                      "max_field": "largest sphere-model field",
                      "optimized": "optimised: largest field in the target patch of the subject's head"}
_SLICE_NAMES = (("sagittal", 1, 2, "anterior (mm)", "superior (mm)"),
                ("coronal", 0, 2, "right (mm)", "superior (mm)"),
                ("axial", 0, 1, "right (mm)", "anterior (mm)"))


def _slice(volume: np.ndarray, affine: np.ndarray, axis: int, point_mm: np.ndarray) -> tuple[Any, ...]:
    """The slice of ``volume`` normal to world ``axis`` through ``point_mm`` (nearest voxel axes).

    Returns the plane (rows: the second in-plane world axis, columns: the first) and its extent (mm).
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)  # voxel axis of each world axis, with its sign
    ras = nib.orientations.apply_orientation(volume, ornt)
    ras_affine = affine @ nib.orientations.inv_ornt_aff(ornt, volume.shape)
    ijk = np.rint(np.linalg.solve(ras_affine, np.append(point_mm, 1.0))[:3]).astype(int)
    ijk = np.clip(ijk, 0, np.array(ras.shape) - 1)
    plane = np.take(ras, ijk[axis], axis=axis)
    rest = [a for a in range(3) if a != axis]
    zooms = np.abs(np.diag(ras_affine)[:3])
    lo = ras_affine[:3, 3]
    extent = [lo[rest[0]] - zooms[rest[0]] / 2, lo[rest[0]] + zooms[rest[0]] * (ras.shape[rest[0]] - 0.5),
              lo[rest[1]] - zooms[rest[1]] / 2, lo[rest[1]] + zooms[rest[1]] * (ras.shape[rest[1]] - 0.5)]
    return plane.T, extent


def _plot_field_slices(e_img: Any, labels_img: Any, plan: dict[str, Any]) -> Any:
    """|E| in three orthogonal slices through the target, tissue boundaries, target and coil."""
    from matplotlib.figure import Figure

    e = np.asarray(e_img.dataobj, dtype=float)
    labels = np.asarray(labels_img.dataobj) if labels_img is not None else None
    target = np.asarray(plan["target_mm"], dtype=float)
    centre = np.asarray(plan["scalp_point_mm"], dtype=float)
    handle = np.asarray(plan["coil_axes"]["y"], dtype=float)
    vmax = _brain_vmax(e, labels if labels is not None and labels.shape == e.shape else None)
    fig = Figure(figsize=(9.6, 3.4))
    for k, (name, a, b, xlab, ylab) in enumerate(_SLICE_NAMES):
        ax = fig.add_subplot(1, 3, k + 1)
        axis = 3 - a - b
        plane, extent = _slice(e, e_img.affine, axis, target)
        mesh = ax.imshow(plane, origin="lower", extent=extent, cmap="magma", vmin=0, vmax=vmax)
        if labels is not None:
            lab, lab_extent = _slice(labels, labels_img.affine, axis, target)
            for level in (0.5, 3.5):  # the scalp, and the brain (grey and white matter)
                ax.contour(lab, levels=[level], extent=lab_extent, colors="white", linewidths=0.6)
        ax.plot(target[a], target[b], "x", color="#2ca02c", markersize=9, mew=2, label="target")
        ax.plot(centre[a], centre[b], "o", color="#1f77b4", markersize=6, label="coil centre")
        ax.annotate("", xy=(centre[a] + 20 * handle[a], centre[b] + 20 * handle[b]),
                    xytext=(centre[a], centre[b]), arrowprops={"arrowstyle": "->", "color": "#1f77b4"})
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlab, fontsize=8)
        ax.set_ylabel(ylab, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(loc="lower left", fontsize=7)
    fig.colorbar(mesh, ax=fig.axes, label="|E| (V/m per A/µs)", shrink=0.8, extend="max")
    return fig


def _brain_vmax(e: np.ndarray, labels: np.ndarray | None) -> float:
    """Colour limit of |E|: its 99.5th percentile in the brain (GM and WM; the whole head without labels).

    The scalp and skull under the coil carry the head's strongest field; scaled to them the
    cortex, where the dose is read, would be drawn in the dimmest colours. Above the limit
    the colour saturates (the colour bar's arrow).
    """
    inside = e > 0
    if labels is not None and np.any(inside & (labels >= TISSUE_LABELS["gm"])):
        inside &= labels >= TISSUE_LABELS["gm"]
    return float(np.percentile(e[inside], 99.5)) if np.any(inside) else 1.0


def _realistic_figures(folder: Path, stem: str, plan: dict[str, Any]) -> str:
    """The |E| slices of a realistic-head plan, read from its map and labels (nothing recomputed)."""
    import nibabel as nib

    esc = html.escape
    e_path, labels_path = folder / f"{stem}{EFIELD_MAP_SUFFIX}", folder / f"{stem}{HEAD_LABELS_SUFFIX}"
    try:
        e_img = nib.load(str(e_path))
        labels_img = nib.load(str(labels_path)) if labels_path.is_file() else None
        fig = _plot_field_slices(e_img, labels_img, plan)
    except Exception as exc:  # noqa: BLE001 - the figure is optional; the plan table stands alone
        return f'<p class="note">No field figure: {esc(type(exc).__name__)}: {esc(str(exc))}</p>'
    field = float(plan["e_at_target_v_per_m_per_a_per_us"])
    return plot_html(
        fig, alt="Induced field magnitude in the subject's head in three slices through the target",
        caption=(f"|E| per A/µs of the planned coil in the subject's head (five-tissue model), slices "
                 f"through the target; colours up to the 99.5th percentile of |E| in the brain (the "
                 f"stronger field of the scalp and skull under the coil saturates); white: the scalp "
                 f"and the brain boundaries of the head model; "
                 f"green x: target (patch-mean field {field:.3f} V/m per A/µs); blue: coil centre and "
                 "handle direction (coil y axis), projected on each slice."),
        width="48rem", dpi=80)
#: Grid of the interactive field viewer (mm): the written 1 mm map is shown at 2 mm.
_VIEWER_VOXEL_MM = 2.0
#: |E| below this share of its 99.5th percentile is left out of the viewer's overlay.
_VIEWER_FLOOR = 0.1


def _on_viewer_grid(img: Any, interpolation: str) -> Any:
    """``img`` on an isotropic grid of :data:`_VIEWER_VOXEL_MM` (unchanged if already as coarse)."""
    from nilearn.image import resample_img

    if float(np.min(np.linalg.norm(img.affine[:3, :3], axis=0))) >= _VIEWER_VOXEL_MM - 1e-6:
        return img
    target = np.diag([_VIEWER_VOXEL_MM] * 3 + [1.0])
    target[:3, 3] = img.affine[:3, 3]
    shape = np.ceil(np.array(img.shape[:3]) * np.linalg.norm(img.affine[:3, :3], axis=0)
                    / _VIEWER_VOXEL_MM).astype(int)
    return resample_img(img, target_affine=target, target_shape=tuple(shape), interpolation=interpolation,
                        force_resample=True, copy_header=True)


def _on_grid_of(img: Any, reference: Any) -> Any:
    """``img`` resampled (linearly) onto ``reference``'s grid, unless it is on it already."""
    from nilearn.image import resample_to_img

    if img.shape[:3] == reference.shape[:3] and np.allclose(img.affine, reference.affine):
        return img
    return resample_to_img(img, reference, interpolation="continuous", force_resample=True,
                           copy_header=True)


def _realistic_viewer(folder: Path, stem: str, plan: dict[str, Any], anchor: str) -> ReportSection | None:
    """The interactive viewer of a realistic plan: |E| over the head's tissues, target and coil centre."""
    import nibabel as nib

    from tmsnet.report.viewer import ViewerLayer, ViewerPoint, crop_to_nonzero, viewer_section

    e_path, labels_path = folder / f"{stem}{EFIELD_MAP_SUFFIX}", folder / f"{stem}{HEAD_LABELS_SUFFIX}"
    if not (e_path.is_file() and labels_path.is_file()):
        return None
    labels_img = _on_viewer_grid(nib.load(str(labels_path)), "nearest")
    labels = np.asarray(labels_img.dataobj)
    e = np.asarray(_on_grid_of(nib.load(str(e_path)), labels_img).dataobj, dtype=np.float32)
    e = np.where(labels >= TISSUE_LABELS["gm"], e, 0.0)  # the field in the brain (GM and WM)
    vmax = _brain_vmax(e, None)
    shown = nib.Nifti1Image(np.where(e >= _VIEWER_FLOOR * vmax, e, 0.0).astype(np.float32),
                            labels_img.affine)
    tissue = nib.Nifti1Image((labels * 50).astype(np.uint8), labels_img.affine)
    field = float(plan["e_at_target_v_per_m_per_a_per_us"])
    points = [ViewerPoint("target", tuple(plan["target_mm"]), group="target",
                          values={"patch-mean field (V/m per A/µs)": round(field, 4)}),
              ViewerPoint("coil centre (scalp point)", tuple(plan["scalp_point_mm"]), group="coil")]
    layer = ViewerLayer(name="|E|", image=crop_to_nonzero(shown), kind="map", threshold=0.5 * vmax,
                        vmax=vmax, opacity=0.85, units="V/m per A/µs", signed=False)
    intro = ("<p>The induced field |E| (V/m per A/µs of coil current change) of the planned coil in "
             "the brain (grey and white matter) of the head model, over its tissues (grey levels: "
             "scalp, skull, CSF, grey and white matter, darkest to brightest); shown where |E| is at "
             "least half its 99.5th percentile in the brain (the slider changes it). Dots: the target "
             "and the coil centre on the scalp.</p>")
    return viewer_section(
        title=f"Induced field in the head ({plan['space']}, interactive)", anchor=anchor, layers=[layer],
        points=points, background=tissue, intro_html=intro,
        fallback_html="<p>The slices of the treatment plan above show the same field.</p>",
        caption=f"|E| and tissues at {_VIEWER_VOXEL_MM:g} mm (the written map: {e_path.name}).")


#: The sweep figure's y axis spans at least this many % either side of the mean, so that a
#: variation of a fraction of a percent (the sphere model's) is drawn as the flat line it is.
_SWEEP_MIN_HALF_RANGE_PERCENT = 5.0


def _sweep_variation_percent(field: PlanField) -> float:
    e = np.asarray(field.sweep_e, dtype=float)
    return float(100.0 * (e.max() - e.min()) / e.mean())


def _plot_sweep(field: PlanField) -> Any:
    """|E| against angle as % of the sweep's mean, on a y axis no narrower than +-5 %."""
    from matplotlib.figure import Figure

    e = np.asarray(field.sweep_e, dtype=float)
    deviation = 100.0 * (e / e.mean() - 1.0)
    half = max(_SWEEP_MIN_HALF_RANGE_PERCENT, 1.1 * float(np.abs(deviation).max()))
    fig = Figure(figsize=(5.0, 2.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(field.sweep_angles_deg, deviation, color="#1f4e79")
    ax.axvline(field.angle_deg, color="#b7791f", linestyle="--")
    ax.set_ylim(-half, half)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    ax.set_xlabel("coil angle (deg, 0 = coil y axis anterior)")
    ax.set_ylabel("|E| at target\n(% from the mean)")
    fig.tight_layout()
    return fig


def _sweep_caption(field: PlanField) -> str:
    variation = _sweep_variation_percent(field)
    if field.orientation_rule == "clinical":
        return (f"Orientation: |E| at the target varies by {variation:.2f} % over all coil angles in the "
                "sphere model, which therefore cannot choose an orientation. The coil follows the "
                "clinical convention (handle about 45° from the midline, pointing back and out); "
                "dashed: that angle.")
    return (f"Orientation sweep: |E| at the target varies by {variation:.2f} % over all coil angles; "
            "dashed: the angle with the largest sphere-model |E|.")


def _field_figures(path: Path) -> str:
    """The field patch and the orientation sweep, read from the plan's field table."""
    esc = html.escape
    try:
        field = read_plan_field(path)
    except Exception as exc:  # noqa: BLE001 - the figures are optional; the plan table stands alone
        return f'<p class="note">No field figure: {esc(type(exc).__name__)}: {esc(str(exc))}</p>'
    patch = field.patch
    return plot_html(
        _plot_patch(patch),
        alt=f"Induced field magnitude of the {patch.coil} coil at the target's depth, with the target",
        caption=(f"Sphere-model |E| per A/µs on the sphere through the target (centre of the local "
                 f"scalp sphere, radius {patch.radius_mm:.0f} mm), planned coil position and "
                 f"orientation; white: half maximum ({patch.half_max_area_cm2:.0f} cm²); "
                 f"x: target ({patch.e_at_target:.3f} V/m per A/µs)."),
        width="32rem", dpi=80) + plot_html(
        _plot_sweep(field), alt="Field at the target versus coil angle",
        caption=_sweep_caption(field),
        width="30rem", dpi=80)


def _dose_text(plan: dict[str, Any]) -> str:
    dose, proto = plan.get("dose") or {}, plan.get("protocol") or {}
    if not dose:
        return "not computed (no motor threshold given)"
    text = (f"MT {float(dose['mt_percent']):.0f} %MSO; depth-adjusted (Stokes) "
            f"{float(dose['stokes_adjusted_mt_percent']):.0f} %MSO, E-field-matched "
            f"{float(dose['efield_matched_mt_percent']):.0f} %MSO")
    if "session_intensity_percent_mso_stokes" in proto:
        text += (f"; session ({proto.get('name', '')} at {float(proto['intensity_percent_of_mt']):.0f} %): "
                 f"{float(proto['session_intensity_percent_mso_stokes']):.0f} %MSO (Stokes), "
                 f"{float(proto['session_intensity_percent_mso_efield_matched']):.0f} %MSO (E-field matched)")
    return text


def _protocol_text(plan: dict[str, Any]) -> str:
    proto = plan.get("protocol") or {}
    if not proto:
        return "not given"
    return (f"{proto.get('name', '?')}, {proto.get('pulses_per_session', '?')} pulses, "
            f"{float(proto.get('intensity_percent_of_mt', float('nan'))):.0f} % of threshold")


def _targeting_points(context: SubjectContext) -> list[tuple[str, str, np.ndarray]]:
    points = []
    for path in context.find("*_target.json"):
        if path.name.endswith("_desc-plan_target.json") or "_desc-" not in path.name:
            continue
        t = load_json(path)
        if {"x", "y", "z", "space"} <= set(t):
            points.append((str(t.get("method")), str(t["space"]),
                           np.array([float(t[k]) for k in "xyz"])))
    return points


def _consistency_warning(plan: dict[str, Any], points: list[tuple[str, str, np.ndarray]]) -> str | None:
    given = np.asarray(plan["target_input_mm"], dtype=float)
    same = [(m, np.linalg.norm(xyz - given)) for m, s, xyz in points if s == plan["input_space"]]
    if not same:
        return None
    method, distance = min(same, key=lambda item: item[1])
    if distance <= PLAN_TARGET_TOLERANCE_MM:
        return None
    return (f"The treatment plan is for {format_xyz(given)} mm {plan['input_space']}, which is not a "
            f"targeting result of this subject (nearest: {method}, {distance:.1f} mm away): check that "
            "the plan was made for the intended target.")


def _electrode_text(plan: dict[str, Any]) -> str:
    """Where the coil goes: the scalp point and the nearest 10-10 electrode."""
    electrode = plan.get("nearest_electrode_1010") or {}
    where = f"{format_xyz(plan['scalp_point_mm'])} mm {plan['space']}"
    if electrode.get("label"):
        where += f", near 10-10 {electrode['label']}"
        if electrode.get("distance_mm") is not None:
            where += f" ({float(electrode['distance_mm']):.0f} mm)"
    return where


def _card(out: SubjectSections, plan: dict[str, Any], label: str, source: str) -> None:
    """The plan's rows of the summary card: coordinates, facts, warnings."""
    esc = html.escape
    space, given_space = str(plan["space"]), str(plan["input_space"])
    target, given = plan["target_mm"], plan["target_input_mm"]
    coil = plan.get("coil") or {}
    out.add_point(f"{label} target", space, target, source)
    if given_space != space:
        out.add_point(f"{label} target as given", given_space, given, source)
    out.add_point(f"{label} scalp point (coil centre)", space, plan["scalp_point_mm"], source)
    if out.headline_html is None:
        out.headline_html = f'<p class="big">Plan target: {esc(format_xyz(target))} mm {esc(space)}</p>'
    # The target itself (in each space) is in the card's coordinate table.
    out.summary += [
        (f"{label} scalp point", _electrode_text(plan)),
        (f"{label} coil", f"{coil.get('name', '?')}, angle {float(plan['coil_angle_deg']):.0f}° "
                          f"({_ORIENTATION_WORDS.get(plan.get('coil_orientation_rule'), 'as given')}), "
                          f"handle axis (coil y) {format_xyz(plan['coil_axes']['y'], digits=2)}"),
        (f"{label} depth", f"{float(plan['depth_target_mm']):.1f} mm scalp to cortex "
                           f"({plan.get('depth_method', '?')})"),
        (f"{label} protocol", _protocol_text(plan)),
        (f"{label} dose", _dose_text(plan)),
    ]
    out.warnings += [f"Treatment plan: {w}" for w in plan.get("warnings", [])]


def _plan_table(plan: dict[str, Any], name: str) -> str:
    space = plan["space"]
    coil = plan.get("coil") or {}
    sphere = plan.get("local_sphere") or {}
    rows = {
        "Target": f"{format_xyz(plan['target_mm'])} mm {space}",
        "Target as given": f"{format_xyz(plan['target_input_mm'])} mm {plan['input_space']}",
        "Scalp point (coil centre)": _electrode_text(plan),
        "Coil": coil.get("name"),
        "Coil angle (deg, 0 = coil y axis anterior)": plan.get("coil_angle_deg"),
        "Coil x axis": format_xyz(plan["coil_axes"]["x"], digits=3),
        "Coil y axis (handle)": format_xyz(plan["coil_axes"]["y"], digits=3),
        "Coil z axis (into the head)": format_xyz(plan["coil_axes"]["z"], digits=3),
        "Scalp-to-cortex depth (mm)": plan.get("depth_target_mm"),
        "Depth method": plan.get("depth_method"),
        "Scalp-to-target distance (mm)": plan.get("scalp_to_target_mm"),
        "Local scalp sphere radius (mm)": sphere.get("radius_mm"),
        "Field at the target (V/m per A/µs)": plan.get("e_at_target_v_per_m_per_a_per_us"),
        "Induced field direction": format_xyz(plan["induced_field_direction"], digits=3)
        if plan.get("induced_field_direction") else None,
        "Focality (cm², area above half maximum)": plan.get("focality_cm2"),
        "Protocol": _protocol_text(plan),
        "Dose": _dose_text(plan),
        "Head surface": plan.get("head_surface"),
    }
    if plan.get("head_model") == "realistic":
        rows = {k: v for k, v in {**rows, **_realistic_rows(plan)}.items() if v is not None}
    return key_value_table(rows, caption=f"Treatment plan ({name})")


def _realistic_rows(plan: dict[str, Any]) -> dict[str, Any]:
    """The realistic head's rows of the plan table, in the operator's words."""
    r, sphere = plan.get("realistic") or {}, plan.get("sphere_model") or {}
    base = r.get("baseline") or {}
    frame = plan.get("coordinate_frame") or {}
    return {
        "Head model": "subject's head: scalp, skull, CSF, grey and white matter from the T1w and "
                      "fMRIPrep's segmentation",
        "Field at the target (V/m per A/µs)": plan.get("e_at_target_v_per_m_per_a_per_us"),
        "Target patch": f"grey matter within {float(r.get('patch_radius_mm', float('nan'))):.0f} mm of the "
                        f"target ({r.get('patch_voxels', '?')} voxels)",
        "Placement": "optimised (searched positions and orientations)" if r.get("optimized")
                     else "scalp projection, clinical orientation",
        "Coil placements evaluated": r.get("n_placements"),
        "Field of the clinical placement at the scalp projection (V/m per A/µs)": base.get("magnitude"),
        "Gain over the clinical placement (ratio)": r.get("gain"),
        "Focality (cm³ of grey matter at ≥ half the maximum field)": r.get("focality_cm3"),
        "Field at the target, sphere model (V/m per A/µs)": sphere.get("e_at_target_v_per_m_per_a_per_us"),
        "Coordinate frame": frame.get("description"),
    }


def _files_list(context: SubjectContext, path: Path) -> str:
    """The files for the treatment room beside the plan (and the one-page plan, once written)."""
    esc = html.escape
    folder, stem = path.parent, path.name[: -len(_PLAN_SUFFIX)]
    nav = [(what, f"{stem}{suffix}") for suffix, what in _NAVIGATION
           if (folder / f"{stem}{suffix}").is_file()]
    page = context.derivatives_dir / plan_page_name(context.subject)
    if page.is_file():
        nav.append(("One-page plan (HTML, printable)", page.name))
    if not nav:
        return ""
    items = "".join(f"<li>{esc(what)}: <code>{esc(name)}</code></li>" for what, name in nav)
    return f"<h3>Files for the treatment room</h3><ul>{items}</ul>"


#: The operator's names (with units) of the plan's protocol and dose fields; a field not
#: listed keeps its key.
_OPERATOR_NAMES = {
    "name": "Protocol", "pulses_per_session": "Pulses per session", "pattern": "Pattern",
    "train_s": "Train duration (s)", "inter_train_s": "Interval between trains (s)",
    "frequency_hz": "Pulse frequency (Hz)", "duration_s": "Session duration (s)",
    "intensity_percent_of_mt": "Intensity (% of motor threshold)",
    "source": "Source", "mt_percent": "Motor threshold (%MSO)",
    "stokes_slope_percent_per_mm": "Stokes slope (%MSO per mm of extra depth)",
    "stokes_adjusted_mt_percent": "Depth-adjusted threshold, Stokes (%MSO)",
    "efield_matched_mt_percent": "E-field-matched threshold (%MSO)",
    "e_m1_v_per_m_per_a_per_us": "Field at M1 (V/m per A/µs)",
    "e_target_v_per_m_per_a_per_us": "Field at the target (V/m per A/µs)",
    "m1_mm": "M1 hotspot (mm)", "m1_space": "M1 hotspot space",
    "e_m1_at_threshold_v_per_m": "Field at M1 at the motor threshold (V/m)",
    "session_intensity_percent_mso_stokes": "Session intensity, Stokes (%MSO)",
    "session_intensity_percent_mso_efield_matched": "Session intensity, E-field-matched (%MSO)",
}


def _named(fields: dict[str, Any]) -> dict[str, Any]:
    return {_OPERATOR_NAMES.get(key, key): value for key, value in fields.items()}


def _plan_section(context: SubjectContext, path: Path, plan: dict[str, Any], index: int) -> ReportSection:
    esc = html.escape
    stem = path.name[: -len(_PLAN_SUFFIX)]
    figures = (_realistic_figures(path.parent, stem, plan) if plan.get("head_model") == "realistic"
               else _field_figures(path.parent / f"{stem}{PLAN_FIELD_SUFFIX}"))
    body = [_plan_table(plan, path.name), figures,
            key_value_table(_named({**(plan.get("protocol") or {}), **(plan.get("dose") or {})}),
                            caption="Protocol and dose details"),
            _files_list(context, path)]
    if plan.get("disclaimer"):
        body.append(f'<p class="disclaimer"><strong>{esc(str(plan["disclaimer"]))}</strong></p>')
    body.append(details_json({k: v for k, v in plan.items() if k != "Provenance"}, summary="Plan as JSON"))
    return ReportSection(f"Treatment plan and dose ({plan['space']})", "".join(body), f"plan-{index + 1}")


def _plan_viewer(path: Path, plan: dict[str, Any], index: int) -> ReportSection | None:
    if plan.get("head_model") != "realistic":
        return None
    stem = path.name[: -len(_PLAN_SUFFIX)]
    anchor = f"plan-{index + 1}-field"
    try:
        return _realistic_viewer(path.parent, stem, plan, anchor)
    except Exception as exc:  # noqa: BLE001 - the viewer is optional; the slices and the table stand alone
        note = f'<p class="note">No interactive field viewer: {html.escape(type(exc).__name__)}: ' \
               f"{html.escape(str(exc))}</p>"
        return ReportSection("Induced field in the head (interactive)", note, anchor)


@fill_doc
def plan_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the treatment plan(s) of a subject (``*_desc-plan_target.json``).

    %(section_provider)s
    """
    files = context.find(f"*{_PLAN_SUFFIX}")
    points = _targeting_points(context) if files else []

    def draw(out: SubjectSections, index: int, path: Path) -> None:
        plan = load_json(path)
        label = "Plan" if len(files) == 1 else f"Plan {index + 1}"
        source = "treatment plan" if len(files) == 1 else f"treatment plan ({path.name})"
        _card(out, plan, label, source)
        warning = _consistency_warning(plan, points)
        if warning:
            out.warnings.append(warning)
        out.sections.append(_plan_section(context, path, plan, index))
        viewer = _plan_viewer(path, plan, index)
        if viewer is not None:
            out.sections.append(viewer)

    return sections_per_file(files, draw)


register_section_provider("plan", plan_provider, order=20)
