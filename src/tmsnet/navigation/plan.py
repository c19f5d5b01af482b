"""Treatment plan: from a target to scalp point, coil orientation, depth, dose, files.

:func:`compute_plan` composes the steps (``../shared/REFERENCES.md`` section 1
"Target -> treatment" and section 3):

1. space: a template target is mapped to T1w with fMRIPrep's transform when a
   T1w image (and the transform) are given; otherwise the plan stays on the
   template head (MNE fsaverage head in MNI152);
2. scalp point above the target (and above M1), scalp-to-cortex distance
   (with a brain mask; otherwise the scalp-to-coordinate distance, stated);
3. coil orientation maximizing the sphere-model |E| at the target, the field
   per A/µs and the focality (:func:`tmsnet.physics.placement.optimize_placement`);
4. nearest 10-10 electrode (MNI);
5. dose: Stokes depth-adjusted threshold and the E-field-matched output
   from the motor threshold (:mod:`tmsnet.physics.dose`);
6. protocol fields (iTBS or 10 Hz presets).

:func:`plan_from_target` also writes the plan (JSON + one-page HTML, each
with a provenance sidecar) and the neuronavigation files
(:mod:`tmsnet.navigation.exports`). It is what ``tmsnet plan`` calls and
what ``tmsnet target --plan`` can call with the target it found.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.physics.coils import load_coil
from tmsnet.physics.dose import STOKES_SLOPE_2005, efield_matched_dose, stokes_adjusted_threshold
from tmsnet.physics.placement import Placement, optimize_placement

__all__ = ["DEFAULT_M1_MNI", "PROTOCOLS", "TreatmentPlan", "compute_plan", "plan_from_target",
           "render_plan_html"]

#: Left M1 hand area, MNI (Mayka et al. 2006, NeuroImage 31:1453, M1 centroid).
DEFAULT_M1_MNI = (-37.0, -21.0, 58.0)

#: Protocol presets (intensity in % of the depth-adjusted motor threshold).
PROTOCOLS: dict[str, dict[str, Any]] = {
    "itbs": {
        "name": "iTBS", "pulses_per_session": 600, "pattern": "triplets at 50 Hz repeated at 5 Hz",
        "train_s": 2.0, "inter_train_s": 8.0, "duration_s": 189, "intensity_percent_of_mt": 120.0,
        "source": "Blumberger et al. 2018 (THREE-D), Lancet 391:1683",
    },
    "10hz": {
        "name": "10 Hz rTMS", "pulses_per_session": 3000, "frequency_hz": 10.0, "train_s": 4.0,
        "inter_train_s": 26.0, "duration_s": 2250, "intensity_percent_of_mt": 120.0,
        "source": "Blumberger et al. 2018 (THREE-D), Lancet 391:1683",
    },
}

_TEMPLATES = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")
_DISCLAIMER = (
    "Decision support only. This plan is computed from a spherical head model and template or "
    "registered coordinates; the treating operator must check the target, the coil position and "
    "orientation on the neuronavigation system, and set the dose from the measured motor threshold "
    "within the local safety rules. tmsnet does not predict treatment response."
)


@dataclass
class TreatmentPlan:
    """Everything the operator needs for one target.

    Attributes
    ----------
    space : str
        Space of the placement coordinates (``T1w`` or a template).
    target_mm, target_input_mm : numpy.ndarray
        Target in ``space``, and as given (in ``input_space``).
    input_space : str
        Space the target was given in.
    placement : Placement
        Scalp point, coil axes, field, focality.
    depth_target_mm, depth_m1_mm : float
        Scalp-to-cortex (or scalp-to-coordinate, see ``depth_method``) distances.
    depth_method : str
        ``"brain-mask"`` or ``"coordinate"``.
    electrode : dict
        Nearest 10-10 label and distance (mm, MNI).
    coil : dict
        Coil summary.
    dose : dict
        Motor threshold, Stokes and E-field-matched outputs (%MSO), or empty.
    protocol : dict
        Protocol fields with the session intensity when a threshold is known.
    head_source : str
        Where the head surface came from.
    warnings : list of str
        Plain-language warnings.
    inputs : dict
        Input files by role.
    parameters : dict
        Parameters used.
    """

    space: str
    target_mm: np.ndarray
    target_input_mm: np.ndarray
    input_space: str
    placement: Placement
    m1_placement: Placement | None
    depth_target_mm: float
    depth_m1_mm: float | None
    depth_method: str
    electrode: dict[str, Any]
    coil: dict[str, Any]
    dose: dict[str, Any]
    protocol: dict[str, Any]
    head_source: str
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (mm; V/m per A/µs; %MSO)."""
        p = self.placement.as_dict()
        return {
            "space": self.space,
            "target_mm": self.target_mm.tolist(),
            "input_space": self.input_space,
            "target_input_mm": self.target_input_mm.tolist(),
            "scalp_point_mm": p["scalp_point_mm"],
            "coil_axes": {"x": p["coil_x_axis"], "y": p["coil_y_axis"], "z": p["coil_z_axis"]},
            "coil_angle_deg": p["angle_deg"],
            "induced_field_direction": p["e_direction_at_target"],
            "e_at_target_v_per_m_per_a_per_us": p["e_at_target_v_per_m_per_a_per_us"],
            "focality_cm2": p["focality_cm2"],
            "scalp_to_target_mm": p["target_depth_mm"],
            "depth_target_mm": self.depth_target_mm,
            "depth_m1_mm": self.depth_m1_mm,
            "depth_method": self.depth_method,
            "local_sphere": {"centre_mm": p["sphere_centre_mm"], "radius_mm": p["sphere_radius_mm"]},
            "nearest_electrode_1010": self.electrode,
            "coil": self.coil,
            "dose": self.dose,
            "protocol": self.protocol,
            "head_surface": self.head_source,
            "warnings": list(self.warnings),
            "disclaimer": _DISCLAIMER,
        }


def _as_point(value: Any, name: str) -> np.ndarray:
    p = np.asarray(value, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InvalidParameterError(f"{name} must be three finite numbers (x, y, z in mm).")
    return p


def compute_plan(
    target_mm: Any,
    space: str,
    *,
    t1w: str | Path | None = None,
    xfm: str | Path | None = None,
    brain_mask: str | Path | None = None,
    mt_percent: float | None = None,
    coil: str | Path = "fig8-70mm",
    m1_mm: Any = DEFAULT_M1_MNI,
    m1_space: str | None = None,
    stokes_slope: float = STOKES_SLOPE_2005,
    coil_distance_mm: float = 0.0,
    projection: str = "nearest",
    protocol: str = "itbs",
    angle_step_deg: float = 5.0,
) -> TreatmentPlan:
    """Compute a treatment plan for one target (nothing written).

    Parameters
    ----------
    target_mm : sequence of 3 floats
        Target (mm) in ``space``.
    space : str
        ``MNI152NLin2009cAsym``, ``MNI152NLin6Asym`` or ``T1w``.
    t1w : path, optional
        The subject's T1w image (not skull-stripped), for the head surface.
        Needed when ``space`` is ``T1w``.
    xfm : path, optional
        fMRIPrep MNI <-> T1w transform (either direction, see
        :mod:`tmsnet.navigation.transforms`); needed to use ``t1w`` with a
        template-space target.
    brain_mask : path, optional
        Brain mask in the placement space, for scalp-to-cortex distances
        (template: nilearn's MNI152 brain mask by default).
    mt_percent : float, optional
        Resting motor threshold (%MSO) for the dose.
    coil : str or path
        Bundled coil name or ``.ccd`` file.
    m1_mm : sequence of 3 floats
        Motor hotspot used for the dose (default: MNI hand area, Mayka 2006).
    m1_space : str, optional
        Space of ``m1_mm`` (default: MNI152NLin2009cAsym for the default
        coordinate, else ``space``).
    stokes_slope : float
        %MSO per mm (3.0 Stokes 2005; 2.8 Stokes 2007).
    coil_distance_mm : float
        Scalp-to-coil gap (hair, cap), mm.
    projection : {"nearest", "centre"}
        Scalp projection method.
    protocol : {"itbs", "10hz"}
        Protocol preset.
    angle_step_deg : float
        Orientation sweep step.

    Returns
    -------
    TreatmentPlan
    """
    import nibabel as nib

    from tmsnet.navigation import scalp as scalp_mod
    from tmsnet.navigation.transforms import mni_to_t1w, t1w_to_mni

    target_in = _as_point(target_mm, "target_mm")
    if space not in (*_TEMPLATES, "T1w"):
        raise SpaceError(f"Unknown space {space!r}; use one of {', '.join((*_TEMPLATES, 'T1w'))}.")
    if protocol not in PROTOCOLS:
        raise InvalidParameterError(f"Unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}.")
    if xfm is not None and t1w is None:
        raise InvalidParameterError(
            "--xfm maps the target to the T1w, but the plan also needs that T1w image for the head "
            "surface: give --t1w too (or drop --xfm to plan on the template head)."
        )
    if space == "T1w" and t1w is None:
        raise InvalidParameterError("A T1w-space target needs the T1w image (--t1w) for the head surface.")
    m1_default = m1_space is None and tuple(float(v) for v in np.ravel(m1_mm)) == DEFAULT_M1_MNI
    m1_in = _as_point(m1_mm, "m1_mm")
    m1_in_space = "MNI152NLin2009cAsym" if m1_default else (m1_space or space)
    warnings: list[str] = []
    to_native = t1w is not None

    def to_work(point: np.ndarray, point_space: str) -> np.ndarray:
        if not to_native or point_space == "T1w":
            if point_space == "T1w" and not to_native:
                raise SpaceError("A T1w point cannot be used on the template head.")
            return point
        if xfm is None:
            raise InvalidParameterError(
                f"The point is in {point_space} but the plan works in T1w: give --xfm (fMRIPrep's "
                "*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5)."
            )
        return mni_to_t1w(point, xfm)

    work_space = "T1w" if to_native else space
    target = to_work(target_in, space)
    m1 = to_work(m1_in, m1_in_space)
    if to_native:
        head = scalp_mod.head_surface_from_t1w(t1w, space="T1w")
        mask_img = nib.load(str(brain_mask)) if brain_mask is not None else None
    else:
        head = scalp_mod.template_head_surface()
        if brain_mask is not None:
            mask_img = nib.load(str(brain_mask))
        else:
            from tmsnet.data import load_brain_mask

            mask_img = load_brain_mask(1)
        if space == "MNI152NLin6Asym":
            warnings.append("The template head is MNI152 (2009c-like); MNI152NLin6Asym coordinates are used "
                            "as-is (templates differ by a few mm).")
    coil_model = load_coil(coil)
    surface_points = head.sample_points(2.0)
    scalp_point = scalp_mod.project_to_scalp(head, target, method=projection)
    placement = optimize_placement(coil_model, target, scalp_point, surface_points,
                                   coil_distance_mm=coil_distance_mm, angle_step_deg=angle_step_deg)
    if mask_img is not None:
        depth_method = "brain-mask"
        depth_t = scalp_mod.scalp_to_cortex_distance(scalp_point, target, mask_img)
    else:
        depth_method = "coordinate"
        depth_t = float(np.linalg.norm(target - scalp_point))
        warnings.append("No brain mask: depths are scalp-to-coordinate distances, not scalp-to-cortex.")
    # Nearest 10-10 label (positions are MNI).
    if work_space in _TEMPLATES:
        scalp_mni = scalp_point
    elif xfm is not None:
        scalp_mni = t1w_to_mni(scalp_point, xfm)
    else:
        scalp_mni = None
    electrode = scalp_mod.nearest_electrode(scalp_mni) if scalp_mni is not None else {
        "label": None, "distance_mm": None, "note": "needs --xfm to compare with MNI electrode positions"}

    dose: dict[str, Any] = {}
    m1_placement = None
    depth_m1 = None
    proto = dict(PROTOCOLS[protocol])
    if mt_percent is not None:
        m1_scalp = scalp_mod.project_to_scalp(head, m1, method=projection)
        m1_placement = optimize_placement(coil_model, m1, m1_scalp, surface_points,
                                          coil_distance_mm=coil_distance_mm,
                                          angle_step_deg=angle_step_deg, focality=False)
        if depth_method == "brain-mask":
            depth_m1 = scalp_mod.scalp_to_cortex_distance(m1_scalp, m1, mask_img)
        else:
            depth_m1 = float(np.linalg.norm(m1 - m1_scalp))
        stokes = stokes_adjusted_threshold(mt_percent, depth_t, depth_m1, slope=stokes_slope)
        matched = efield_matched_dose(mt_percent, m1_placement.e_at_target, placement.e_at_target)
        didt = coil_model.didt_max_a_per_us
        dose = {
            "mt_percent": float(mt_percent),
            "stokes_slope_percent_per_mm": stokes_slope,
            "stokes_adjusted_mt_percent": stokes,
            "efield_matched_mt_percent": matched,
            "e_m1_v_per_m_per_a_per_us": m1_placement.e_at_target,
            "e_target_v_per_m_per_a_per_us": placement.e_at_target,
            "m1_mm": m1.tolist(),
            "m1_space": work_space,
            "e_m1_at_threshold_v_per_m": (m1_placement.e_at_target * didt * mt_percent / 100.0
                                          if didt else None),
        }
        session = proto["intensity_percent_of_mt"] / 100.0
        proto["session_intensity_percent_mso_stokes"] = stokes * session
        proto["session_intensity_percent_mso_efield_matched"] = matched * session
        for label, value in (("Stokes-adjusted", stokes * session), ("E-field-matched", matched * session)):
            if value > 100:
                warnings.append(f"The {label} session intensity ({value:.0f} %MSO) exceeds the stimulator's "
                                "maximum; the target is too deep for this coil at this protocol.")
    else:
        warnings.append("No motor threshold given (--mt): no dose computed.")
    return TreatmentPlan(
        space=work_space, target_mm=target, target_input_mm=target_in, input_space=space,
        placement=placement, m1_placement=m1_placement, depth_target_mm=float(depth_t),
        depth_m1_mm=depth_m1, depth_method=depth_method, electrode=electrode,
        coil=coil_model.summary(), dose=dose, protocol=proto, head_source=head.source,
        warnings=warnings,
        inputs={"t1w": t1w, "xfm": xfm, "brain_mask": brain_mask,
                "coil_file": coil if Path(str(coil)).is_file() else None},
        parameters={"coil": str(coil), "projection": projection, "stokes_slope": stokes_slope,
                    "coil_distance_mm": coil_distance_mm, "angle_step_deg": angle_step_deg,
                    "m1_input_mm": m1_in.tolist(), "m1_input_space": m1_in_space, "protocol": protocol,
                    "mt_percent": mt_percent},
    )


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "\u2013"
    if isinstance(v, list | tuple | np.ndarray):
        return "(" + ", ".join(f"{float(x):.{digits}f}" for x in v) + ")"
    return f"{float(v):.{digits}f}"


def _sweep_figure(plan: TreatmentPlan) -> str:
    from matplotlib.figure import Figure

    from tmsnet.report.html import figure_html, figure_to_base64_png

    fig = Figure(figsize=(5.0, 2.4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(plan.placement.sweep_angles_deg, plan.placement.sweep_e, color="#1f4e79")
    ax.axvline(plan.placement.angle_deg, color="#b7791f", linestyle="--")
    ax.set_xlabel("coil angle (deg, 0 = coil y axis anterior)")
    ax.set_ylabel("|E| at target\n(V/m per A/µs)")
    fig.tight_layout()
    return figure_html(figure_to_base64_png(fig), alt="Field at the target versus coil angle",
                       caption="Orientation sweep: sphere-model |E| at the target for each coil angle; "
                               "dashed: chosen angle.")


def render_plan_html(plan: TreatmentPlan, *, title: str = "TMS treatment plan") -> str:
    """The one-page treatment plan (self-contained HTML, printable to PDF).

    Parameters
    ----------
    plan : TreatmentPlan
        The plan.
    title : str
        Page title.

    Returns
    -------
    str
    """
    from tmsnet.report.html import ReportSection, details_json, key_value_table, render_report

    s = plan.summary()
    esc = html.escape
    dose = s["dose"]
    rows = [
        ("Target", f"{_fmt(s['target_mm'])} mm, {s['space']}"),
        ("Target as given", f"{_fmt(s['target_input_mm'])} mm, {s['input_space']}"),
        ("Scalp point (coil centre)", f"{_fmt(s['scalp_point_mm'])} mm, {s['space']}"),
        ("Nearest 10-10 electrode", f"{s['nearest_electrode_1010'].get('label') or '–'}"
         + (f" ({s['nearest_electrode_1010']['distance_mm']:.0f} mm away)"
            if s['nearest_electrode_1010'].get('distance_mm') is not None else "")),
        ("Coil", f"{s['coil']['name']}, angle {s['coil_angle_deg']:.0f}° (coil y axis "
                 f"{_fmt(s['coil_axes']['y'], 2)})"),
        ("Scalp-to-cortex depth", f"{_fmt(s['depth_target_mm'])} mm ({s['depth_method']})"),
    ]
    if dose:
        rows += [
            ("Motor threshold", f"{dose['mt_percent']:.0f} %MSO"),
            ("Depth-adjusted threshold (Stokes)", f"{dose['stokes_adjusted_mt_percent']:.0f} %MSO"),
            ("E-field-matched threshold", f"{dose['efield_matched_mt_percent']:.0f} %MSO"),
        ]
    proto = s["protocol"]
    rows.append(("Protocol", f"{proto['name']}, {proto['pulses_per_session']} pulses, "
                             f"{proto['intensity_percent_of_mt']:.0f} % of threshold"))
    if "session_intensity_percent_mso_stokes" in proto:
        rows.append(("Session intensity",
                     f"{proto['session_intensity_percent_mso_stokes']:.0f} %MSO (Stokes); "
                                          f"{proto['session_intensity_percent_mso_efield_matched']:.0f} %MSO "
                                          "(E-field matched)"))
    summary_html = "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>"
    if s["warnings"]:
        summary_html += '<div class="warnings"><ul>' + "".join(
            f"<li>{esc(w)}</li>" for w in s["warnings"]) + "</ul></div>"
    summary_html += f'<p class="disclaimer"><strong>{esc(_DISCLAIMER)}</strong></p>'
    field_rows = {
        "e_at_target_v_per_m_per_a_per_us": s["e_at_target_v_per_m_per_a_per_us"],
        "focality_cm2": s["focality_cm2"],
        "scalp_to_target_mm": s["scalp_to_target_mm"],
        "local_sphere_radius_mm": s["local_sphere"]["radius_mm"],
        "induced_field_direction": [round(v, 3) for v in s["induced_field_direction"]],
        "coil_x_axis": [round(v, 3) for v in s["coil_axes"]["x"]],
        "coil_z_axis (into head)": [round(v, 3) for v in s["coil_axes"]["z"]],
    }
    sections = [
        ReportSection("Coil placement and field", key_value_table(field_rows, caption=(
            "Sphere model fitted to the scalp around the scalp point; field per A/µs of coil current "
            "slope; focality = area above half maximum on the sphere through the target."))
            + _sweep_figure(plan),
            "placement"),
        ReportSection("Protocol and dose details", key_value_table({**proto, **dose}), "dose"),
        ReportSection("All values", details_json(s, summary="Plan as JSON"), "values"),
    ]
    footer = ("tmsnet treatment plan. Head surface: " + esc(plan.head_source)
              + ". Dose: Stokes et al. 2005/2007; "
              "E-field: Heller &amp; van Hulsteyn 1992 sphere model.")
    return render_report(title=title, summary_html=summary_html, sections=sections, footer_html=footer,
                         subtitle="Decision support to be checked by the operator")


def plan_from_target(  # noqa: D417 - shared parameters are documented in compute_plan
    target_mm: Any,
    space: str,
    out_dir: str | Path,
    *,
    t1w: str | Path | None = None,
    xfm: str | Path | None = None,
    mt_percent: float | None = None,
    coil: str | Path = "fig8-70mm",
    brain_mask: str | Path | None = None,
    subject: str = "01",
    name: str = "target",
    protocol: str = "itbs",
    stokes_slope: float = STOKES_SLOPE_2005,
    coil_distance_mm: float = 0.0,
    projection: str = "nearest",
    m1_mm: Any = DEFAULT_M1_MNI,
) -> tuple[TreatmentPlan, dict[str, Path]]:
    """Compute the plan and write it (JSON, HTML, navigation files), each with a sidecar.

    Parameters
    ----------
    target_mm, space, t1w, xfm, mt_percent, coil, brain_mask, protocol, stokes_slope,
    coil_distance_mm, projection, m1_mm
        As in :func:`compute_plan`.
    out_dir : str or Path
        Output folder (created if needed).
    subject : str
        BIDS subject label of the file names.
    name : str
        Marker name in the navigation files.

    Returns
    -------
    plan : TreatmentPlan
    written : dict
        Paths by role: ``plan_json``, ``plan_html``, ``brainsight``,
        ``localite``, ``markers``, ``coordsystem``.
    """
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for
    from tmsnet.navigation.exports import NavigationTarget, write_navigation_files

    out = ensure_output_dir(out_dir)
    plan = compute_plan(target_mm, space, t1w=t1w, xfm=xfm, brain_mask=brain_mask, mt_percent=mt_percent,
                        coil=coil, m1_mm=m1_mm, stokes_slope=stokes_slope,
                        coil_distance_mm=coil_distance_mm, projection=projection, protocol=protocol)
    sidecar = make_sidecar(
        description="TMS treatment plan (scalp point, coil orientation, depth, dose); decision support.",
        parameters=plan.parameters, inputs=plan.inputs, space=plan.space,
        extra={"Summary": plan.summary()},
    )
    nibs = out / f"sub-{subject}" / "nibs"
    nibs.mkdir(parents=True, exist_ok=True)
    prefix = f"sub-{subject}_space-{plan.space}"
    html_text = render_plan_html(plan)
    written: dict[str, Path] = {}
    written["plan_json"] = atomic_write_json(nibs / f"{prefix}_desc-plan_target.json",
                                             {**plan.summary(), "Provenance": sidecar})
    written["plan_html"] = atomic_write_text(out / f"sub-{subject}_desc-treatment_plan.html", html_text)
    atomic_write_json(sidecar_path_for(written["plan_html"]), sidecar)
    nav = NavigationTarget(name=name, scalp_point_mm=plan.placement.scalp_point_mm,
                           rotation=plan.placement.rotation, target_mm=plan.target_mm, space=plan.space)
    written.update(write_navigation_files([nav], nibs, prefix, sidecar=sidecar))
    return plan, written
