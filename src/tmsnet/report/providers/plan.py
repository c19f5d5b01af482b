"""Report section of the treatment plan and dose (``tmsnet plan`` / ``tmsnet target --plan``).

Reads ``sub-<label>/nibs/sub-<label>_space-<space>_desc-plan_target.json``
(written by :func:`tmsnet.navigation.plan.plan_from_target`; the plan with
its provenance) and lists the neuronavigation files beside it. Shows the
target in the plan's space and as given, the scalp point, the coil
orientation, the scalp-to-cortex depth, the dose (Stokes et al. 2005/2007
depth adjustment and the E-field-matched output; ``../shared/REFERENCES.md``
sections 1 and 3) and a figure of the sphere-model field on the sphere
through the target under the planned coil (:func:`plan_field_patch`: the
same kernel and placement as the plan, Heller & van Hulsteyn 1992).

Summary card: the target in each space, the scalp point, depth and dose; QC
warnings: the plan's own (no motor threshold, intensity above the
stimulator's maximum, ...) and a plan made for a point that is not any of the
subject's targeting results.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.report.html import ReportSection, details_json, figure_html, figure_to_base64_png, key_value_table
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    SummaryCoordinate,
    format_xyz,
    load_json,
    register_section_provider,
)

__all__ = ["PLAN_TARGET_TOLERANCE_MM", "FieldPatch", "plan_field_patch", "plan_provider"]

#: A plan whose target is farther than this from every targeting result of the
#: subject (same space, mm) draws a warning.
PLAN_TARGET_TOLERANCE_MM = 1.0

_NAVIGATION = (
    ("_desc-brainsight_targets.txt", "Brainsight targets (text)"),
    ("_desc-localite_InstrumentMarker.xml", "Localite InstrumentMarker (XML)"),
    ("_markers.tsv", "NIBS-BIDS markers (TSV)"),
    ("_coordsystem.json", "NIBS-BIDS coordinate system"),
)


@dataclass
class FieldPatch:
    """|E| of the planned coil on the sphere through the target.

    Attributes
    ----------
    u_mm, v_mm : numpy.ndarray, shape (k, k)
        Arc-length coordinates on that sphere around the coil axis (mm), ``u``
        along the coil's x axis and ``v`` along its y axis.
    e : numpy.ndarray, shape (k, k)
        |E| (V/m per A/µs of coil current slope).
    target_uv_mm : tuple of float
        The target in the same coordinates.
    e_at_target : float
        |E| at the target (V/m per A/µs); equals the plan's
        ``e_at_target_v_per_m_per_a_per_us``.
    radius_mm : float
        Radius of the sphere (local scalp sphere centre to target).
    half_max_area_cm2 : float
        Area of the patch with |E| >= half its maximum (cm²); the plan's
        focality on a coarser grid.
    coil : str
        Coil name.
    """

    u_mm: np.ndarray
    v_mm: np.ndarray
    e: np.ndarray
    target_uv_mm: tuple[float, float]
    e_at_target: float
    radius_mm: float
    half_max_area_cm2: float
    coil: str


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-9:
        raise InvalidParameterError(f"The plan's {what} has zero length; re-run `tmsnet plan`.")
    return v / n


def plan_field_patch(plan: dict[str, Any], *, grid_mm: float = 2.0, half_width_mm: float = 50.0,
                     coil: Any = None) -> FieldPatch:
    """Sphere-model |E| of a written plan's coil placement around the target.

    The placement is rebuilt from the plan JSON alone: the coil axes
    (``coil_axes``, columns of the rotation), the coil origin (scalp point
    moved ``coil_distance_mm`` outwards from the local sphere centre, as in
    :func:`tmsnet.physics.placement.optimize_placement`) and the local sphere
    (``local_sphere``). The field is sampled on the sphere through the target
    with an azimuthal-equidistant grid centred on the coil axis.

    Parameters
    ----------
    plan : dict
        Content of ``*_desc-plan_target.json``.
    grid_mm : float
        Sampling step (mm of arc).
    half_width_mm : float
        Half width of the sampled patch (mm of arc).
    coil : Coil, optional
        The coil model; default: loaded from the plan's parameters
        (bundled name or ``.ccd`` path).

    Returns
    -------
    FieldPatch

    Raises
    ------
    InvalidParameterError
        If the plan lacks the placement fields or they are degenerate.
    """
    from tmsnet.physics.coils import load_coil
    from tmsnet.physics.efield import efield, transform_dipoles

    if grid_mm <= 0 or half_width_mm <= grid_mm:
        raise InvalidParameterError("Need grid_mm > 0 and half_width_mm > grid_mm.")
    try:
        target = np.asarray(plan["target_mm"], dtype=float).reshape(3)
        scalp = np.asarray(plan["scalp_point_mm"], dtype=float).reshape(3)
        centre = np.asarray(plan["local_sphere"]["centre_mm"], dtype=float).reshape(3)
        rotation = np.column_stack([np.asarray(plan["coil_axes"][k], dtype=float) for k in "xyz"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"The plan JSON lacks the coil placement ({exc}); re-run `tmsnet plan`.") from exc
    params = (plan.get("Provenance") or {}).get("Parameters") or {}
    if coil is None:
        coil = load_coil(params.get("coil") or plan["coil"]["name"])
    outward = _unit(scalp - centre, "scalp point")
    origin = scalp + float(params.get("coil_distance_mm") or 0.0) * outward
    radius = float(np.linalg.norm(target - centre))
    e1 = _unit(rotation[:, 0] - np.dot(rotation[:, 0], outward) * outward, "coil x axis")
    e2 = np.cross(outward, e1)
    k = int(np.ceil(half_width_mm / grid_mm))
    axis = np.arange(-k, k + 1) * grid_mm
    uu, vv = np.meshgrid(axis, axis, indexing="ij")
    rho = np.hypot(uu, vv)
    theta = rho / radius
    phi = np.arctan2(vv, uu)
    dirs = (np.cos(theta)[..., None] * outward + (np.sin(theta) * np.cos(phi))[..., None] * e1
            + (np.sin(theta) * np.sin(phi))[..., None] * e2)
    points = np.concatenate([dirs.reshape(-1, 3) * radius, (target - centre)[None, :]])
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, rotation, (origin - centre) * 1e-3)
    e_all = np.linalg.norm(efield(points * 1e-3, pos, mom), axis=1)
    e = e_all[:-1].reshape(uu.shape)
    d = _unit(target - centre, "target")
    t_theta = float(np.arccos(np.clip(np.dot(d, outward), -1.0, 1.0)))
    t_phi = float(np.arctan2(np.dot(d, e2), np.dot(d, e1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(rho > 0, radius * np.sin(theta) / np.where(rho > 0, rho, 1.0), 1.0)
    area = float(np.sum(jac[e >= e.max() / 2]) * grid_mm**2) / 100.0
    return FieldPatch(u_mm=uu, v_mm=vv, e=e,
                      target_uv_mm=(radius * t_theta * np.cos(t_phi), radius * t_theta * np.sin(t_phi)),
                      e_at_target=float(e_all[-1]), radius_mm=radius, half_max_area_cm2=area,
                      coil=str(coil.name))


def _plot_patch(patch: FieldPatch) -> Any:
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


def plan_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the treatment plan(s) of a subject.

    Parameters
    ----------
    context : SubjectContext
        The subject's derivatives.

    Returns
    -------
    SubjectSections or None
        None if the subject has no ``*_desc-plan_target.json``.
    """
    files = context.find("*_desc-plan_target.json")
    if not files:
        return None
    esc = html.escape
    out = SubjectSections()
    points = _targeting_points(context)
    for index, path in enumerate(files):
        plan = load_json(path)
        space, given_space = str(plan["space"]), str(plan["input_space"])
        target, given = plan["target_mm"], plan["target_input_mm"]
        scalp = plan["scalp_point_mm"]
        electrode = plan.get("nearest_electrode_1010") or {}
        coil = plan.get("coil") or {}
        label = "Plan" if len(files) == 1 else f"Plan {index + 1}"
        source = "treatment plan" if len(files) == 1 else f"treatment plan ({path.name})"
        out.coordinates.append(SummaryCoordinate(f"{label} target", space, tuple(target), source))
        if given_space != space:
            out.coordinates.append(SummaryCoordinate(f"{label} target as given", given_space, tuple(given),
                                                     source))
        out.coordinates.append(SummaryCoordinate(f"{label} scalp point (coil centre)", space, tuple(scalp),
                                                 source))
        if out.headline_html is None:
            out.headline_html = (f'<p class="big">Plan target: {esc(format_xyz(target))} mm {esc(space)}</p>')
        where = f"{format_xyz(scalp)} mm {space}"
        if electrode.get("label"):
            where += f", near 10-10 {electrode['label']}"
            if electrode.get("distance_mm") is not None:
                where += f" ({float(electrode['distance_mm']):.0f} mm)"
        # The target itself (in each space) is in the card's coordinate table.
        out.summary += [
            (f"{label} scalp point", where),
            (f"{label} coil", f"{coil.get('name', '?')}, angle {float(plan['coil_angle_deg']):.0f}°, "
                              f"handle axis (coil y) {format_xyz(plan['coil_axes']['y'], digits=2)}"),
            (f"{label} depth", f"{float(plan['depth_target_mm']):.1f} mm scalp to cortex "
                               f"({plan.get('depth_method', '?')})"),
            (f"{label} dose", _dose_text(plan)),
        ]
        out.warnings += [f"Treatment plan: {w}" for w in plan.get("warnings", [])]
        warning = _consistency_warning(plan, points)
        if warning:
            out.warnings.append(warning)

        rows = {
            "Target": f"{format_xyz(target)} mm {space}",
            "Target as given": f"{format_xyz(given)} mm {given_space}",
            "Scalp point (coil centre)": where,
            "Coil": coil.get("name"),
            "Coil angle (deg, 0 = coil y axis anterior)": plan.get("coil_angle_deg"),
            "Coil x axis": format_xyz(plan["coil_axes"]["x"], digits=3),
            "Coil y axis (handle)": format_xyz(plan["coil_axes"]["y"], digits=3),
            "Coil z axis (into the head)": format_xyz(plan["coil_axes"]["z"], digits=3),
            "Scalp-to-cortex depth (mm)": plan.get("depth_target_mm"),
            "Depth method": plan.get("depth_method"),
            "Scalp-to-target distance (mm)": plan.get("scalp_to_target_mm"),
            "|E| at target (V/m per A/µs)": plan.get("e_at_target_v_per_m_per_a_per_us"),
            "Focality (cm², area above half maximum)": plan.get("focality_cm2"),
            "Dose": _dose_text(plan),
            "Head surface": plan.get("head_surface"),
        }
        body = [key_value_table(rows, caption=f"Treatment plan ({path.name})")]
        try:
            patch = plan_field_patch(plan)
        except Exception as exc:  # noqa: BLE001 - the figure is optional; the plan table stands alone
            body.append(f'<p class="note">No field figure: {esc(type(exc).__name__)}: {esc(str(exc))}</p>')
        else:
            body.append(figure_html(
                figure_to_base64_png(_plot_patch(patch), dpi=80),
                alt=f"Induced field magnitude of the {patch.coil} coil at the target's depth, with the "
                    "target",
                caption=(f"Sphere-model |E| per A/µs on the sphere through the target (centre of the local "
                         f"scalp sphere, radius {patch.radius_mm:.0f} mm), planned coil position and "
                         f"orientation; white: half maximum ({patch.half_max_area_cm2:.0f} cm²); "
                         f"x: target ({patch.e_at_target:.3f} V/m per A/µs)."),
                width="32rem"))
        folder = path.parent
        stem = path.name[: -len("_desc-plan_target.json")]
        nav = [(what, f"{stem}{suffix}") for suffix, what in _NAVIGATION
               if (folder / f"{stem}{suffix}").is_file()]
        page = context.derivatives_dir / f"sub-{context.subject}_desc-treatment_plan.html"
        if page.is_file():
            nav.append(("One-page plan (HTML, printable)", page.name))
        if nav:
            items = "".join(f"<li>{esc(what)}: <code>{esc(name)}</code></li>" for what, name in nav)
            body.append(f"<h3>Files for the treatment room</h3><ul>{items}</ul>")
        if plan.get("disclaimer"):
            body.append(f'<p class="disclaimer">{esc(str(plan["disclaimer"]))}</p>')
        body.append(details_json({k: v for k, v in plan.items() if k != "Provenance"},
                                 summary="Plan as JSON"))
        out.sections.append(ReportSection(f"Treatment plan and dose ({space})", "".join(body),
                                          f"plan-{index + 1}"))
    return out


register_section_provider("plan", plan_provider, order=20)

