"""Treatment plan: from a target to scalp point, coil orientation, depth, dose.

:func:`compute_plan` composes the steps (``../shared/REFERENCES.md`` section 1
"Target -> treatment" and section 3); nothing is written:

1. space: a template target is mapped to T1w with fMRIPrep's transform when a
   T1w image (and the transform) are given; otherwise the plan stays on the
   template head (MNE fsaverage head in MNI152);
2. scalp point above the target (and above M1), scalp-to-cortex distance
   (with a brain mask; otherwise the scalp-to-coordinate distance, stated);
3. coil orientation by the clinical convention (handle 45° from the midline, back
   and out: the sphere model cannot tell orientations apart, see
   :mod:`tmsnet.physics.placement`), the field per A/µs and the focality
   (:func:`tmsnet.physics.placement.optimize_placement`),
   and the field on the sphere through the target
   (:func:`tmsnet.physics.placement.field_patch`, the report's figure);
4. nearest 10-10 electrode (MNI);
5. dose: Stokes depth-adjusted threshold and the E-field-matched output
   from the motor threshold (:func:`tmsnet.physics.dose.compute_dose`);
6. protocol fields (iTBS or 10 Hz presets).

With ``head_model="realistic"`` (``--head-model realistic``), steps 3 and 5 are
those of the voxel head built from fMRIPrep's anatomy beside the T1w, or, for
an MNI target without a T1w, of the template head
(:mod:`tmsnet.navigation.template_head`; the plan warns that it is a population
average) (:func:`tmsnet.navigation.realistic_plan.compute_realistic`):
the clinical orientation at the plain scalp projection solved directly, or with
``optimize`` the searched position and orientation with the largest field in
the target patch, and the E-field-matched dose from the realistic field. The
spherical model stays the default; its values remain in the plan for
comparison (``sphere_model``).

The parameters travel in one object, :class:`PlanParameters` (with its
:class:`~tmsnet.physics.dose.DoseParameters`). The plan is written by
:func:`tmsnet.navigation.outputs.write_plan` and composed with its report by
:func:`tmsnet.jobs.plan.plan` (what ``tmsnet plan`` and ``tmsnet target
--plan`` call).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.navigation.realistic_plan import (
    FRAME_TEXT,
    HEAD_MODELS,
    RealisticParameters,
    RealisticPlan,
    compute_realistic,
    fmriprep_anatomy,
)
from tmsnet.physics.coils import Coil, check_coil, coil_param, load_coil
from tmsnet.physics.dose import DEFAULT_M1_MNI, DoseParameters, compute_dose
from tmsnet.physics.placement import (
    DEFAULT_ANGLE_STEP_DEG,
    ORIENTATION_RULES,
    FieldPatch,
    Placement,
    field_patch,
    optimize_placement,
)
from tmsnet.utils.docs import add_doc, fill_doc
from tmsnet.utils.params import Parameters, param

__all__ = ["DEFAULT_M1_MNI", "DISCLAIMER", "PROTOCOLS", "REALISTIC_DISCLAIMER", "PlanParameters",
           "TreatmentPlan", "compute_plan"]

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
    "Decision support only. This plan is computed from {model} and template or "
    "registered coordinates; the treating operator must check the target, the coil position and "
    "orientation on the neuronavigation system, and set the dose from the measured motor threshold "
    "within the local safety rules. tmsnet does not predict treatment response."
)
#: What every plan says about itself (in the plan JSON and on its page); the sphere-model plan's.
DISCLAIMER = _DISCLAIMER.format(model="a spherical head model")
#: The realistic-head plan's.
REALISTIC_DISCLAIMER = _DISCLAIMER.format(
    model="a five-tissue voxel head built from the T1w and its fMRIPrep segmentation (skull and CSF "
          "as layers of set thickness, not segmented)")


@dataclass(frozen=True)
class PlanParameters(Parameters):
    """Parameters of a treatment plan (``tmsnet plan``, ``tmsnet target --plan``).

    Attributes
    ----------
    coil : str
        Bundled coil name or SimNIBS ``.ccd`` path.
    protocol : {"itbs", "10hz"}
        Protocol preset (:data:`PROTOCOLS`).
    coil_distance_mm : float
        Scalp-to-coil gap (hair, cap), mm.
    projection : {"nearest", "centre"}
        Scalp projection: nearest scalp point, or along the line from the head centre.
    angle_step_deg : float
        Step of the coil orientation sweep (degrees, in (0, 180]).
    orientation : {"clinical", "max_field"}
        How the coil angle is chosen (:mod:`tmsnet.physics.placement`): the clinical
        convention (handle 45° from the midline, back and out; default, because the sphere
        model cannot tell orientations apart) or the sweep's maximum of |E|.
    head_model : {"sphere", "realistic"}
        The spherical head (default) or the voxel head from fMRIPrep anatomy
        (needs the T1w; :mod:`tmsnet.navigation.realistic_plan`).
    optimize : bool
        Search coil positions and orientations for the largest field in the
        target patch (realistic head only).
    dose : DoseParameters
        Motor threshold, Stokes slope and motor hotspot.
    realistic : RealisticParameters
        Anatomical files, head rule, conductivities and search options of the
        realistic head.
    """

    coil: str = coil_param()
    protocol: str = param("itbs", choices=tuple(PROTOCOLS), help="protocol preset")
    coil_distance_mm: float = param(0.0, flag="--coil-distance", units="mm", low=0,
                                    help="scalp-to-coil gap (hair, cap)", high=50)
    projection: str = param("nearest", choices=("nearest", "centre"),
                            help="scalp projection: nearest scalp point or along the line from the head "
                                 "centre")
    angle_step_deg: float = param(DEFAULT_ANGLE_STEP_DEG, flag="--angle-step", units="deg", low=0,
                                  low_inclusive=False, high=180, help="step of the coil orientation sweep")
    orientation: str = param(ORIENTATION_RULES[0], choices=ORIENTATION_RULES,
                             help="coil angle: clinical convention (handle 45 deg back and out) or the "
                                  "sweep's maximum |E|")
    head_model: str = param(HEAD_MODELS[0], choices=HEAD_MODELS,
                            help="head model of the field: the sphere, or the voxel head built from the "
                                 "fMRIPrep anatomy beside --t1w")
    optimize: bool = param(False, help="search coil positions and orientations for the largest field in "
                                       "the target patch (--head-model realistic)")
    dose: DoseParameters = param(default_factory=DoseParameters, kind="any", cli=False,
                                 help="motor threshold, Stokes slope and motor hotspot")
    realistic: RealisticParameters = param(default_factory=RealisticParameters, kind="any", cli=False,
                                           help="files, head rule, conductivities and search of the "
                                                "realistic head")

    def check(self) -> None:
        """The coil is a name or a path; nested options are their objects; ``optimize`` needs the head."""
        object.__setattr__(self, "coil", check_coil(self.coil))
        if not isinstance(self.dose, DoseParameters):
            raise InvalidParameterError(f"dose must be DoseParameters, got {type(self.dose).__name__}.")
        if not isinstance(self.realistic, RealisticParameters):
            raise InvalidParameterError(
                f"realistic must be RealisticParameters, got {type(self.realistic).__name__}.")
        if self.optimize and self.head_model != "realistic":
            raise InvalidParameterError(
                "--optimize searches coil placements in the subject's head: add --head-model realistic "
                "(and --t1w); the sphere model cannot tell coil orientations apart.")


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
        Scalp point, coil axes, field, focality, orientation sweep.
    m1_placement : Placement or None
        The placement over M1 (with a motor threshold).
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
    field_patch : FieldPatch or None
        |E| of the planned coil on the sphere through the target.
    warnings : list of str
        Plain-language warnings.
    inputs : dict
        Input files by role.
    parameters : dict
        Parameters used (provenance form: the hotspot as given and its space).
    realistic : RealisticPlan or None
        The realistic-head placement, field and dose (``head_model="realistic"``);
        then the summary's placement, field, depth and dose are its own.
    sphere_model : dict
        With ``realistic``: the sphere model's placement, field, depth and dose, for comparison.
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
    field_patch: FieldPatch | None = None
    warnings: list[str] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    realistic: RealisticPlan | None = None
    sphere_model: dict[str, Any] = field(default_factory=dict)

    @property
    def head_model(self) -> str:
        """``"sphere"`` or ``"realistic"``."""
        return "sphere" if self.realistic is None else "realistic"

    @property
    def coil_matrix(self) -> np.ndarray:
        """The planned 4 x 4 coil matrix (coil axes as columns, scalp point; mm, :attr:`space`)."""
        if self.realistic is not None:
            return self.realistic.coil_matrix()
        m = np.eye(4)
        m[:3, :3] = self.placement.rotation
        m[:3, 3] = self.placement.scalp_point_mm
        return m

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (mm; V/m per A/µs; %MSO)."""
        s = self._sphere_summary()
        s["head_model"] = self.head_model
        if self.realistic is not None:
            s.update(self._realistic_summary(s))
        matrix = self.coil_matrix
        s["coil_matrix"] = matrix.tolist()
        s["coordinate_frame"] = {"space": self.space, "units": "mm", "axes": "RAS",
                                 "description": FRAME_TEXT.format(space=self.space)}
        return s

    def _realistic_summary(self, sphere: dict[str, Any]) -> dict[str, Any]:
        """The summary keys whose values come from the realistic head (the sphere's in ``sphere_model``)."""
        r = self.realistic.placement
        direction = np.asarray(r.field["vector"], dtype=float)
        rule = "optimized" if self.realistic.optimized else "clinical"
        return {
            "sphere_model": self.sphere_model,
            "scalp_point_mm": r.scalp_point_mm.tolist(),
            "coil_axes": {"x": r.rotation[:, 0].tolist(), "y": r.rotation[:, 1].tolist(),
                          "z": r.rotation[:, 2].tolist()},
            "coil_angle_deg": r.angle_deg, "coil_orientation_rule": rule, "sweep_variation_percent": None,
            "induced_field_direction": (direction / max(np.linalg.norm(direction), 1e-30)).tolist(),
            "e_at_target_v_per_m_per_a_per_us": float(r.field["magnitude"]),
            "focality_cm2": None, "focality_cm3": r.focality_cm3,
            "scalp_to_target_mm": float(np.linalg.norm(r.scalp_point_mm - self.target_mm)),
            "realistic": self.realistic.summary(), "disclaimer": REALISTIC_DISCLAIMER,
        }

    def _sphere_summary(self) -> dict[str, Any]:
        p = self.placement.as_dict()
        return {
            "space": self.space,
            "target_mm": self.target_mm.tolist(),
            "input_space": self.input_space,
            "target_input_mm": self.target_input_mm.tolist(),
            "scalp_point_mm": p["scalp_point_mm"],
            "coil_axes": {"x": p["coil_x_axis"], "y": p["coil_y_axis"], "z": p["coil_z_axis"]},
            "coil_angle_deg": p["angle_deg"],
            "coil_orientation_rule": p["orientation_rule"],
            "sweep_variation_percent": p["sweep_variation_percent"],
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
            "disclaimer": DISCLAIMER,
        }


def _as_point(value: Any, name: str) -> np.ndarray:
    p = np.asarray(value, dtype=np.float64).reshape(-1)
    if p.shape != (3,) or not np.all(np.isfinite(p)):
        raise InvalidParameterError(f"{name} must be three finite numbers (x, y, z in mm).")
    return p


def _check_inputs(space: str, t1w: Any, xfm: Any) -> None:
    if space not in (*_TEMPLATES, "T1w"):
        raise SpaceError(f"Unknown space {space!r}; use one of {', '.join((*_TEMPLATES, 'T1w'))}.")
    if xfm is not None and t1w is None:
        raise InvalidParameterError(
            "--xfm maps the target to the T1w, but the plan also needs that T1w image for the head "
            "surface: give --t1w too (or drop --xfm to plan on the template head)."
        )
    if space == "T1w" and t1w is None:
        raise InvalidParameterError("A T1w-space target needs the T1w image (--t1w) for the head surface.")


def _to_work(point: np.ndarray, point_space: str, *, native: bool, xfm: Any) -> np.ndarray:
    """A point in the plan's working space (T1w when ``native``, else the template)."""
    from tmsnet.navigation.transforms import mni_to_t1w

    if not native or point_space == "T1w":
        if point_space == "T1w" and not native:
            raise SpaceError("A T1w point cannot be used on the template head.")
        return point
    if xfm is None:
        raise InvalidParameterError(
            f"The point is in {point_space} but the plan works in T1w: give --xfm (fMRIPrep's "
            "*_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5)."
        )
    return mni_to_t1w(point, xfm)


#: Scalp-to-target distance beyond which the plan warns (mm): DLPFC targets lie ~15-25 mm deep,
#: and the field of a figure-8 coil halves within ~1.5 cm of the cortex (Deng 2013, d_1/2).
DEEP_TARGET_WARNING_MM = 30.0


def plausibility_warnings(target_mm: np.ndarray, space: str, depth_mm: float) -> list[str]:
    """Plain-language warnings for a target a clinician could be misled by.

    Parameters
    ----------
    target_mm : ndarray, shape (3,)
        The target as given (mm) in ``space``.
    space : str
        Its space; the hemisphere is judged in the template spaces only (x > 0 is right).
    depth_mm : float
        Distance from the scalp point to the target itself (mm).

    Returns
    -------
    list of str
    """
    warnings = []
    if space != "T1w" and float(target_mm[0]) > 0:
        warnings.append(
            f"The target is in the right hemisphere (x = {float(target_mm[0]):+.0f} mm, {space}); the "
            "standard depression targets are in the left DLPFC. Check that this side is intended.")
    if depth_mm > DEEP_TARGET_WARNING_MM:
        warnings.append(
            f"The target lies {depth_mm:.0f} mm below the scalp: the coil's field falls off steeply "
            f"with depth (more than {DEEP_TARGET_WARNING_MM:.0f} mm is unusual for a cortical target), "
            "so the field and dose at this point are not a plausible treatment plan.")
    return warnings


def _head_and_mask(space: str, t1w: Any, brain_mask: Any, warnings: list[str]) -> tuple[Any, Any]:
    """The head surface and the brain mask (or None) of the working space."""
    import nibabel as nib

    from tmsnet.navigation import scalp as scalp_mod

    if t1w is not None:
        head = scalp_mod.head_surface_from_t1w(t1w, space="T1w")
        return head, (nib.load(str(brain_mask)) if brain_mask is not None else None)
    head = scalp_mod.template_head_surface()
    if brain_mask is not None:
        mask_img = nib.load(str(brain_mask))
    else:
        from tmsnet.data import load_brain_mask

        mask_img = load_brain_mask(1)
    if space == "MNI152NLin6Asym":
        warnings.append("The template head is MNI152 (2009c-like); MNI152NLin6Asym coordinates are used "
                        "as-is (templates differ by a few mm).")
    return head, mask_img


def _depth(scalp_point: np.ndarray, point: np.ndarray, mask_img: Any) -> float:
    """Scalp-to-cortex distance with a brain mask, else scalp-to-coordinate (mm)."""
    from tmsnet.navigation import scalp as scalp_mod

    if mask_img is not None:
        return scalp_mod.scalp_to_cortex_distance(scalp_point, point, mask_img)
    return float(np.linalg.norm(point - scalp_point))


def _electrode(scalp_point: np.ndarray, work_space: str, xfm: Any) -> dict[str, Any]:
    """Nearest 10-10 label (positions are MNI)."""
    from tmsnet.navigation import scalp as scalp_mod
    from tmsnet.navigation.transforms import t1w_to_mni

    if work_space in _TEMPLATES:
        scalp_mni = scalp_point
    elif xfm is not None:
        scalp_mni = t1w_to_mni(scalp_point, xfm)
    else:
        scalp_mni = None
    if scalp_mni is None:
        return {"label": None, "distance_mm": None,
                "note": "needs --xfm to compare with MNI electrode positions"}
    return scalp_mod.nearest_electrode(scalp_mni)


@dataclass
class _Site:
    """What the dose needs of the plan's working geometry."""

    head: Any
    surface_points: np.ndarray
    mask_img: Any
    work_space: str
    placement: Placement
    depth_target_mm: float


def _plan_dose(params: PlanParameters, coil_model: Coil, m1: np.ndarray, site: _Site,
               warnings: list[str]) -> tuple[dict[str, Any], dict[str, Any], Placement | None, float | None]:
    """Dose dict, protocol dict, M1 placement and M1 depth (empty / None without a threshold)."""
    from tmsnet.navigation import scalp as scalp_mod

    proto = dict(PROTOCOLS[params.protocol])
    mt_percent = params.dose.mt_percent
    if mt_percent is None:
        warnings.append("No motor threshold given (--mt): no dose computed.")
        return {}, proto, None, None
    m1_scalp = scalp_mod.project_to_scalp(site.head, m1, method=params.projection)
    m1_placement = optimize_placement(coil_model, m1, m1_scalp, site.surface_points,
                                      coil_distance_mm=params.coil_distance_mm,
                                      angle_step_deg=params.angle_step_deg, focality=False,
                                      orientation=params.orientation)
    depth_m1 = _depth(m1_scalp, m1, site.mask_img)
    result = compute_dose(mt_percent, depth_target_mm=site.depth_target_mm, depth_m1_mm=depth_m1,
                          e_target=site.placement.e_at_target, e_m1=m1_placement.e_at_target,
                          stokes_slope=params.dose.stokes_slope,
                          didt_max_a_per_us=coil_model.didt_max_a_per_us)
    dose = _dose_fields(result.as_dict(), m1, site.work_space)
    return dose, _session(proto, dose, warnings), m1_placement, depth_m1


def _dose_fields(result: dict[str, Any], m1: np.ndarray, space: str) -> dict[str, Any]:
    """The plan's dose dict from :meth:`tmsnet.physics.dose.DoseResult.as_dict` (or the realistic dose)."""
    return {
        "mt_percent": result["mt_percent"],
        "stokes_slope_percent_per_mm": result["stokes_slope"],
        "stokes_adjusted_mt_percent": result["stokes_percent"],
        "efield_matched_mt_percent": result["efield_matched_percent"],
        "e_m1_v_per_m_per_a_per_us": result["e_m1"],
        "e_target_v_per_m_per_a_per_us": result["e_target"],
        "m1_mm": m1.tolist(),
        "m1_space": space,
        "e_m1_at_threshold_v_per_m": result["e_m1_at_threshold_v_per_m"],
    }


def _session(proto: dict[str, Any], dose: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The protocol with the session intensities of a dose (warnings above the stimulator's maximum)."""
    stokes, matched = dose["stokes_adjusted_mt_percent"], dose["efield_matched_mt_percent"]
    session = proto["intensity_percent_of_mt"] / 100.0
    proto["session_intensity_percent_mso_stokes"] = stokes * session
    proto["session_intensity_percent_mso_efield_matched"] = matched * session
    for label, value in (("Stokes-adjusted", stokes * session), ("E-field-matched", matched * session)):
        if value > 100:
            warnings.append(f"The {label} session intensity ({value:.0f} %MSO) exceeds the stimulator's "
                            "maximum; the target is too deep for this coil at this protocol.")
    return proto


add_doc("plan_target", """target_mm : sequence of 3 floats
    Target (mm) in ``space``.
space : str
    ``MNI152NLin2009cAsym``, ``MNI152NLin6Asym`` or ``T1w``.""")
add_doc("plan_params", """params : PlanParameters, optional
    Coil, protocol, projection, orientation sweep and dose (default: the
    defaults, no motor threshold).""")
add_doc("plan_head", """t1w : path, optional
    The subject's T1w image (not skull-stripped), for the head surface.
    Needed when ``space`` is ``T1w``.
xfm : path, optional
    fMRIPrep MNI <-> T1w transform (either direction, see
    :mod:`tmsnet.navigation.transforms`); needed to use ``t1w`` with a
    template-space target.
brain_mask : path, optional
    Brain mask in the placement space, for scalp-to-cortex distances
    (template: nilearn's MNI152 brain mask by default).""")


@fill_doc
def compute_plan(
    target_mm: Any,
    space: str,
    params: PlanParameters | None = None,
    *,
    t1w: str | Path | None = None,
    xfm: str | Path | None = None,
    brain_mask: str | Path | None = None,
) -> TreatmentPlan:
    """Compute a treatment plan for one target (nothing written).

    Parameters
    ----------
    %(plan_target)s
    %(plan_params)s
    %(plan_head)s

    Returns
    -------
    TreatmentPlan
    """
    from tmsnet.navigation import scalp as scalp_mod

    params = params or PlanParameters()
    target_in = _as_point(target_mm, "--target (target_mm)")
    _check_inputs(space, t1w, xfm)
    realistic = params.head_model == "realistic"
    if realistic and t1w is not None:
        brain_mask = _anatomy(t1w, brain_mask, params.realistic)["brain_mask"]
    m1_in = _as_point(params.dose.m1_mm, "--m1 (m1_mm)")
    m1_in_space = "MNI152NLin2009cAsym" if params.dose.m1_is_default else (params.dose.m1_space or space)
    warnings: list[str] = []
    native = t1w is not None
    work_space = "T1w" if native else space
    target = _to_work(target_in, space, native=native, xfm=xfm)
    m1 = _to_work(m1_in, m1_in_space, native=native, xfm=xfm)
    coil_model = load_coil(params.coil)
    result = None
    if realistic:  # first: its refusals (a target outside the head) are the plainest
        result = compute_realistic(target, coil_model, t1w, params.realistic, brain_mask=brain_mask,
                                   optimize=params.optimize, coil_distance_mm=params.coil_distance_mm,
                                   m1_mm=m1, dose=params.dose)
    head, mask_img = _head_and_mask(space, t1w, brain_mask, warnings)
    surface_points = head.sample_points(2.0)
    scalp_point = scalp_mod.project_to_scalp(head, target, method=params.projection)
    placement = optimize_placement(coil_model, target, scalp_point, surface_points,
                                   coil_distance_mm=params.coil_distance_mm,
                                   angle_step_deg=params.angle_step_deg,
                                   orientation=params.orientation)
    depth_method = "brain-mask" if mask_img is not None else "coordinate"
    depth_t = _depth(scalp_point, target, mask_img)
    if mask_img is None:
        warnings.append("No brain mask: depths are scalp-to-coordinate distances, not scalp-to-cortex.")
    warnings += plausibility_warnings(target_in, space, float(np.linalg.norm(scalp_point - target)))
    electrode = _electrode(scalp_point, work_space, xfm)
    site = _Site(head, surface_points, mask_img, work_space, placement, depth_t)
    dose, proto, m1_placement, depth_m1 = _plan_dose(params, coil_model, m1, site,
                                                     [] if realistic else warnings)
    plan = TreatmentPlan(
        space=work_space, target_mm=target, target_input_mm=target_in, input_space=space,
        placement=placement, m1_placement=m1_placement, depth_target_mm=float(depth_t),
        depth_m1_mm=depth_m1, depth_method=depth_method, electrode=electrode,
        coil=coil_model.summary(), dose=dose, protocol=proto, head_source=head.source,
        field_patch=field_patch(coil_model, placement), warnings=warnings,
        inputs={"t1w": t1w, "xfm": xfm, "brain_mask": brain_mask,
                "coil_file": params.coil if Path(params.coil).is_file() else None},
        parameters={"coil": params.coil, "projection": params.projection,
                    "stokes_slope": params.dose.stokes_slope, "coil_distance_mm": params.coil_distance_mm,
                    "angle_step_deg": params.angle_step_deg, "m1_input_mm": m1_in.tolist(),
                    "m1_input_space": m1_in_space, "protocol": params.protocol,
                    "mt_percent": params.dose.mt_percent,
                    **({"head_model": "realistic", "optimize": params.optimize,
                        "realistic": params.realistic.as_dict()} if realistic else {})},
    )
    if result is not None:
        _with_realistic(plan, result, params.protocol, m1, xfm)
        if t1w is None:
            plan.warnings.append(
                "Realistic head: the template head (nilearn's MNI152 tissues, MNE's fsaverage scalp), a "
                "population average, not this person's head; give --t1w for the person's own head.")
    return plan


_SPHERE_KEPT = ("scalp_point_mm", "coil_axes", "coil_angle_deg", "coil_orientation_rule",
                "e_at_target_v_per_m_per_a_per_us", "focality_cm2", "depth_target_mm", "depth_method",
                "dose")


def _anatomy(t1w: Any, brain_mask: Any, realistic: RealisticParameters) -> dict[str, Path]:
    """The fMRIPrep files beside ``t1w``, refused early (before any computing) when missing."""
    return fmriprep_anatomy(t1w, {"brain_mask": brain_mask, "gm_probseg": realistic.gm_probseg,
                                  "wm_probseg": realistic.wm_probseg, "csf_probseg": realistic.csf_probseg})


def _with_realistic(plan: TreatmentPlan, result: RealisticPlan, protocol: str, m1: np.ndarray,
                    xfm: Any) -> None:
    """Replace the sphere model's placement, depth and dose of ``plan`` by the realistic head's."""
    sphere = plan.summary()
    plan.sphere_model = {k: sphere[k] for k in _SPHERE_KEPT}
    plan.realistic, plan.field_patch = result, None
    plan.depth_target_mm = result.placement.scalp_to_cortex_mm
    plan.depth_method = "head-model grey matter"
    plan.electrode = _electrode(result.placement.scalp_point_mm, plan.space, xfm)
    if result.dose:
        plan.dose = {**_dose_fields(result.dose, m1, plan.space), "head_model": "realistic",
                     "field_measure": result.dose["field_measure"]}
        plan.depth_m1_mm = result.m1.scalp_to_cortex_mm
        plan.protocol = _session(dict(PROTOCOLS[protocol]), plan.dose, plan.warnings)
    plan.inputs.update({k: v for k, v in result.files.items()
                        if k.endswith("_probseg") or k == "target_patch"})
