"""The realistic-head branch of the treatment plan (``tmsnet plan --head-model realistic``).

:func:`compute_realistic` is what :func:`tmsnet.navigation.plan.compute_plan`
calls for ``head_model="realistic"`` (issue 17 item 5):

1. the fMRIPrep anatomical files beside ``--t1w`` (:func:`fmriprep_anatomy`:
   ``desc-brain_mask``, ``label-GM/WM/CSF_probseg``, named as fMRIPrep names
   them from the T1w's own prefix; each can be given instead);
2. the five-tissue head model
   (:func:`tmsnet.physics.head_model.head_model_from_fmriprep`) and its
   volume conductor (:class:`tmsnet.physics.volume_conductor.VolumeConductor`);
3. the coil placement: with ``optimize``, the reciprocity search of positions x
   orientations (:func:`tmsnet.physics.realistic_placement.search_placement`);
   without it, the plain scalp projection of the target patch with the clinical
   orientation (handle 45° from the midline, back and out), solved once
   directly (:func:`baseline_placement`: the search's own baseline);
4. with a motor threshold, the same at M1 and the E-field-matched dose
   (:func:`tmsnet.physics.realistic_dose.realistic_dose`).

The field "at the target" is the patch mean of |E| (V/m per A/µs) over the grey
matter within ``patch_radius_mm`` of the target, from a direct solve. All
positions are in the world frame of the T1w image (RAS mm of its affine).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.navigation.template_head import TEMPLATE_RESOLUTIONS_MM, template_head_model
from tmsnet.physics.coils import Coil
from tmsnet.physics.dose import DoseParameters
from tmsnet.physics.head_model import (
    HEAD_MODELS,
    TISSUE_LABELS,
    Conductivities,
    HeadModel,
    HeadModelParameters,
    head_model_from_fmriprep,
)
from tmsnet.physics.placement import clinical_angle_deg, coil_rotation
from tmsnet.physics.realistic_dose import realistic_dose
from tmsnet.physics.realistic_geometry import HeadSurface, cortical_normals, scalp_projection, target_patch
from tmsnet.physics.realistic_placement import (
    PlacementSearchParameters,
    RealisticPlacement,
    patch_measures,
    search_placement,
    solve_placement,
)
from tmsnet.physics.volume_conductor import VolumeConductor
from tmsnet.utils.params import Parameters, param

__all__ = ["FMRIPREP_ANATOMY", "HEAD_MODELS", "RealisticParameters", "RealisticPlan", "baseline_placement",
           "compute_realistic", "fmriprep_anatomy"]

#: What replaces ``desc-preproc_T1w`` in the T1w's file name for each anatomical file fMRIPrep writes.
FMRIPREP_ANATOMY: dict[str, str] = {"brain_mask": "desc-brain_mask", "gm_probseg": "label-GM_probseg",
                                    "wm_probseg": "label-WM_probseg", "csf_probseg": "label-CSF_probseg"}
_T1W_KEY = "desc-preproc_T1w"
_FLAGS = {"brain_mask": "--brain-mask", "gm_probseg": "--gm-probseg", "wm_probseg": "--wm-probseg",
          "csf_probseg": "--csf-probseg"}
#: How the plan states its frame (the plan JSON and the navigation sidecars).
FRAME_TEXT = ("RAS millimetres in the world frame of the {space} image (its sform/qform affine); the coil "
              "matrix is 4 x 4, columns x, y, z = coil axes (z into the head; a figure-8 coil induces its "
              "field under the centre along y, the handle axis), last column = coil centre on the scalp.")


def _override(role: str) -> Any:
    what = FMRIPREP_ANATOMY[role].split("-", 1)[1].replace("_probseg", " probability map")
    return param(None, kind="path", allow_none=True, flag=_FLAGS[role],
                 help=f"{what} in the T1w's space, realistic head only; none: fMRIPrep's "
                      f"*_{FMRIPREP_ANATOMY[role]} beside --t1w")


@dataclass(frozen=True)
class RealisticParameters(Parameters):
    """Options of the realistic-head plan (files, head rule, conductivities, placement search).

    Attributes
    ----------
    gm_probseg, wm_probseg, csf_probseg : Path or None
        Tissue probability maps; None: fMRIPrep's beside the T1w (the brain
        mask is the plan's ``brain_mask`` argument, found the same way).
    head : HeadModelParameters
        The rule that builds the label volume.
    conductivities : Conductivities
        S/m per tissue (SimNIBS defaults).
    search : PlacementSearchParameters
        Search grid and objective (its ``coil_distance_mm`` is the plan's).
    target_patch : Path or None
        Mask of the target patch (e.g. the target cluster of ``tmsnet target``), in the plan's
        working space; its grey-matter voxels on the head grid (nearest neighbour) are the patch.
        None: the grey matter within ``search.patch_radius_mm`` of the target point.
    template_voxel_mm : {1, 2}
        Voxel size of the template head (:mod:`tmsnet.navigation.template_head`),
        the head of an MNI-space target given without a T1w.
    """

    gm_probseg: Path | None = _override("gm_probseg")
    wm_probseg: Path | None = _override("wm_probseg")
    csf_probseg: Path | None = _override("csf_probseg")
    head: HeadModelParameters = param(default_factory=HeadModelParameters, kind="any", cli=False,
                                      help="the rule that builds the label volume")
    conductivities: Conductivities = param(default_factory=Conductivities, kind="any", cli=False,
                                           help="tissue conductivities")
    search: PlacementSearchParameters = param(default_factory=PlacementSearchParameters, kind="any",
                                              cli=False, help="placement search grid and objective")
    target_patch: Path | None = param(
        None, kind="path", allow_none=True, flag="--target-patch",
        help="realistic head: a mask (NIfTI, in the plan's space: T1w with --t1w, else the MNI template) "
             "of the connectivity-defined patch, e.g. the target cluster; its grey matter replaces the "
             "sphere of --patch-radius around --target as the patch whose field is maximised and reported")
    template_voxel_mm: int = param(TEMPLATE_RESOLUTIONS_MM[0], choices=TEMPLATE_RESOLUTIONS_MM, units="mm",
                                   low=1, high=2,
                                   help="voxel size of the template head, used for an MNI target without "
                                        "--t1w (1 mm to dose on; 2 mm about 8x faster)")

    def check(self) -> None:
        """The nested options are their parameter objects."""
        for name, cls in (("head", HeadModelParameters), ("conductivities", Conductivities),
                          ("search", PlacementSearchParameters)):
            if not isinstance(getattr(self, name), cls):
                raise InvalidParameterError(f"{name} must be {cls.__name__}, got "
                                            f"{type(getattr(self, name)).__name__}.")


def fmriprep_anatomy(t1w: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Path]:
    """The fMRIPrep anatomical files of a ``desc-preproc_T1w`` (each may be given instead).

    Parameters
    ----------
    t1w : str or Path
        ``sub-<label>[_ses-..][_space-..]_desc-preproc_T1w.nii[.gz]``.
    overrides : dict, optional
        Role (``brain_mask``, ``gm_probseg``, ``wm_probseg``, ``csf_probseg``) -> path;
        None values are looked up beside ``t1w``.

    Returns
    -------
    dict
        ``t1w`` and the four roles -> existing paths.

    Raises
    ------
    InputFileNotFoundError
        If the T1w or a file is missing (the message names the file fMRIPrep writes).
    InvalidParameterError
        If the T1w is not named as fMRIPrep names it and a file was not given.
    """
    t1w = Path(t1w)
    if not t1w.is_file():
        raise InputFileNotFoundError(f"The T1w image {t1w} does not exist; give fMRIPrep's desc-preproc_T1w.")
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    out = {"t1w": t1w}
    for role, entity in FMRIPREP_ANATOMY.items():
        if role in given:
            path = Path(given[role])
            if not path.is_file():
                raise InputFileNotFoundError(f"The {role} image {path} ({_FLAGS[role]}) does not exist.")
        elif _T1W_KEY in t1w.name:
            path = t1w.with_name(t1w.name.replace(_T1W_KEY, entity))
            if not path.is_file():
                raise InputFileNotFoundError(
                    f"The realistic head model needs fMRIPrep's {path.name} beside the T1w in {t1w.parent}, "
                    f"and it is not there: give it with {_FLAGS[role]} PATH (or run fMRIPrep's anatomical "
                    "workflow).")
        else:
            raise InvalidParameterError(
                f"{t1w.name} is not named as fMRIPrep names its T1w (*_{_T1W_KEY}.nii.gz), so its "
                f"{role} cannot be found beside it: give {_FLAGS[role]} PATH.")
        out[role] = path
    return out


def _check_target_in_head(labels: np.ndarray, affine: np.ndarray, point_mm: np.ndarray, what: str,
                          space: str) -> None:
    ijk = np.rint(np.linalg.solve(affine, np.append(point_mm, 1.0))[:3]).astype(int)
    inside = bool(np.all(ijk >= 0) and np.all(ijk < labels.shape))
    if not inside or labels[tuple(ijk)] == 0:
        where = "outside the image" if not inside else "outside the head"
        raise InvalidParameterError(
            f"The {what} ({', '.join(f'{v:.1f}' for v in point_mm)} mm {space}) lies {where} of the head "
            "model: check the coordinates and their space (--space, --xfm), and that --t1w is the subject's.")


def _focality_cm3(conductor: VolumeConductor, e_field: np.ndarray) -> tuple[float, float]:
    """Grey-matter volume at or above half the grey-matter maximum of |E| (cm³), and that maximum."""
    in_gm = conductor.labels[conductor.inside] == TISSUE_LABELS["gm"]
    magnitude = np.linalg.norm(e_field[in_gm], axis=1)
    half = 0.5 * float(magnitude.max())
    return float(np.sum(magnitude >= half) * np.prod(conductor.spacing_m * 1e2)), 2.0 * half


def baseline_placement(conductor: VolumeConductor, coil: Coil, target_mm: Any,
                       search: PlacementSearchParameters) -> RealisticPlacement:
    """The plain scalp projection of the target patch with the clinical orientation, solved directly.

    The same placement as the ``baseline`` of
    :func:`~tmsnet.physics.realistic_placement.search_placement` (the scalp point
    nearest the patch centroid, coil +z along the inward scalp normal, handle
    45° back and out), without the search.

    Parameters
    ----------
    conductor : VolumeConductor
        The head.
    coil : Coil
        The coil model.
    target_mm : array, shape (3,)
        Target point (world mm).
    search : PlacementSearchParameters
        Patch radius, objective, coil distance and cortical-normal options.

    Returns
    -------
    RealisticPlacement
        With ``gain`` 1, one check (its own) and ``n_placements`` 1.
    """
    start = time.perf_counter()
    patch = target_patch(conductor.labels, conductor.affine, target_mm, search.patch_radius_mm)
    rows = np.flatnonzero(patch[conductor.inside])
    normals = cortical_normals(conductor.labels, conductor.affine, conductor.voxels[rows],
                               surface=search.normal_surface, smoothing_mm=search.normal_smoothing_mm)
    centre = conductor.cell_centres_m[rows].mean(axis=0) * 1e3
    point, normal = scalp_projection(HeadSurface(conductor.labels, conductor.affine), centre)
    angle = clinical_angle_deg(-normal, normal[0] if abs(normal[0]) > 0.05 else 0.0)
    rotation = coil_rotation(-normal, angle)
    origin = point + search.coil_distance_mm * normal
    solution = solve_placement(conductor, coil, rotation, origin)
    measures = patch_measures(solution.e_field, rows, normals)
    measures["objective"] = measures[search.objective]
    gm = conductor.cell_centres_m[conductor.labels[conductor.inside] == TISSUE_LABELS["gm"]] * 1e3
    baseline = {**measures, "angle_deg": angle, "scalp_point_mm": point.tolist(),
                "rotation": rotation.tolist()}
    return RealisticPlacement(
        target_mm=centre, scalp_point_mm=point, coil_origin_mm=origin, rotation=rotation, angle_deg=angle,
        objective=search.objective, field=measures, baseline=baseline, gain=1.0,
        focality_cm3=_focality_cm3(conductor, solution.e_field)[0],
        scalp_to_cortex_mm=float(np.min(np.linalg.norm(gm - point, axis=1))), checks=[measures],
        n_placements=1, timings_s={"direct solve": time.perf_counter() - start}, patch=patch,
        solution=solution)


@dataclass
class RealisticPlan:
    """The realistic-head part of a treatment plan.

    Attributes
    ----------
    head : HeadModel
        The label volume (written for QC).
    conductivities : Conductivities
        Its conductivities.
    placement : RealisticPlacement
        The planned placement (optimised, or the clinical baseline).
    optimized : bool
        Whether ``placement`` comes from the search.
    m1 : RealisticPlacement or None
        The placement over M1 (with a motor threshold).
    dose : dict
        :func:`tmsnet.physics.realistic_dose.realistic_dose`, or empty.
    files : dict of str to Path
        The anatomical inputs by role.
    patch_radius_mm : float
        Radius of the target patch (mm).
    """

    head: HeadModel
    conductivities: Conductivities
    placement: RealisticPlacement
    optimized: bool
    m1: RealisticPlacement | None = None
    dose: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    patch_radius_mm: float = 5.0

    def coil_matrix(self) -> np.ndarray:
        """4 x 4 coil matrix (columns: coil axes, then the scalp point under the coil centre, mm)."""
        m = np.eye(4)
        m[:3, :3] = self.placement.rotation
        m[:3, 3] = self.placement.scalp_point_mm
        return m

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the placement search's summary, the head model and its files (mm, V/m per A/µs)."""
        p = self.placement.as_dict()
        p.pop("checks")
        return {**p, "optimized": self.optimized, "patch_radius_mm": self.patch_radius_mm,
                "frame": FRAME_TEXT.format(space=self.head.space),
                "tissue_volumes_ml": self.head.tissue_volumes_ml(),
                "voxel_size_mm": self.head.voxel_size_mm.tolist(),
                "conductivities_s_per_m": self.conductivities.as_dict(),
                "anatomy": {k: str(v) for k, v in self.files.items()},
                "m1": None if self.m1 is None else {"scalp_point_mm": self.m1.scalp_point_mm.tolist(),
                                                    "rotation": self.m1.rotation.tolist(),
                                                    "field": self.m1.field}}


#: A target patch whose grey matter lies farther than this from --target is refused (mm).
MAX_PATCH_OFFSET_MM = 30.0


def patch_on_head(path: str | Path, head: HeadModel, target_mm: np.ndarray) -> np.ndarray:
    """The grey-matter voxels of the head that a patch mask covers (nearest neighbour onto its grid).

    Raises
    ------
    InputFileNotFoundError
        If the mask does not exist.
    InvalidParameterError
        If the mask covers no grey matter of the head, or its grey matter lies more than
        :data:`MAX_PATCH_OFFSET_MM` from the target (a mask in another space, most likely).
    """
    import nibabel as nib
    from nilearn.image import resample_to_img

    from tmsnet.io.images import read_volume

    img, _ = read_volume(path, missing=f"The target patch {path} (--target-patch) does not exist.")
    grid = nib.Nifti1Image(head.labels, head.affine)
    on_head = resample_to_img(img, grid, interpolation="nearest", force_resample=True, copy_header=True)
    patch = (np.asarray(on_head.dataobj) > 0) & (head.labels == TISSUE_LABELS["gm"])
    if not patch.any():
        raise InvalidParameterError(
            f"The target patch {path} covers no grey matter of the {head.space} head model: give the "
            "mask in the plan's space (T1w with --t1w, else the MNI template) and over the cortex.")
    xyz = np.argwhere(patch) @ head.affine[:3, :3].T + head.affine[:3, 3]
    offset = float(np.min(np.linalg.norm(xyz - np.asarray(target_mm, dtype=float), axis=1)))
    if offset > MAX_PATCH_OFFSET_MM:
        raise InvalidParameterError(
            f"The target patch {path} lies {offset:.0f} mm from --target (at most {MAX_PATCH_OFFSET_MM:g} "
            "mm): give the patch around the target, in the same space.")
    return patch


def _place(conductor: VolumeConductor, coil: Coil, point: np.ndarray, search: PlacementSearchParameters,
           optimize: bool) -> RealisticPlacement:
    """The search's placement, or the clinical baseline, for a point or a patch mask on the head grid."""
    if optimize:
        return search_placement(conductor, coil, point, parameters=search)
    return baseline_placement(conductor, coil, point, search)


def _head_of(t1w: str | Path | None, params: RealisticParameters,
             brain_mask: str | Path | None) -> tuple[HeadModel, dict[str, Path]]:
    """The subject's head from fMRIPrep's anatomy beside ``t1w``, or the template head without one."""
    if t1w is None:
        return template_head_model(params.template_voxel_mm, parameters=params.head), {}
    files = fmriprep_anatomy(t1w, {"brain_mask": brain_mask, "gm_probseg": params.gm_probseg,
                                   "wm_probseg": params.wm_probseg, "csf_probseg": params.csf_probseg})
    head = head_model_from_fmriprep(files["t1w"], files["brain_mask"], files["gm_probseg"],
                                    files["wm_probseg"], files["csf_probseg"], parameters=params.head)
    return head, files


def compute_realistic(target_mm: Any, coil: Coil, t1w: str | Path | None, params: RealisticParameters, *,
                      brain_mask: str | Path | None = None, optimize: bool = False,
                      coil_distance_mm: float = 0.0, m1_mm: Any = None,
                      dose: DoseParameters | None = None) -> RealisticPlan:
    """The realistic-head placement (and dose) of a target in the T1w's frame (module docstring).

    Parameters
    ----------
    target_mm : array, shape (3,)
        Target (mm, T1w world frame; MNI152NLin2009cAsym without ``t1w``).
    coil : Coil
        The coil model.
    t1w : str, Path or None
        fMRIPrep's ``desc-preproc_T1w``; the other files are found beside it. None:
        the template head (:func:`tmsnet.navigation.template_head.template_head_model`).
    params : RealisticParameters
        Files, head rule, conductivities and search options.
    brain_mask : str or Path, optional
        ``desc-brain_mask`` (default: beside ``t1w``).
    optimize : bool
        Search positions and orientations (else: the clinical baseline only).
    coil_distance_mm : float
        Scalp-to-coil gap (mm).
    m1_mm : array, shape (3,), optional
        Motor hotspot (mm, T1w), for the dose.
    dose : DoseParameters, optional
        Motor threshold and Stokes slope; no dose without a threshold.

    Returns
    -------
    RealisticPlan

    Raises
    ------
    InputFileNotFoundError
        If an anatomical file is missing.
    InvalidParameterError
        If the target or M1 lies outside the head.
    """
    head, files = _head_of(t1w, params, brain_mask)
    target = np.asarray(target_mm, dtype=float)
    _check_target_in_head(head.labels, head.affine, target, "target", str(head.space))
    conductor = VolumeConductor(head.labels, head.affine, params.conductivities)
    search = params.search.replace(coil_distance_mm=coil_distance_mm)
    if params.target_patch is not None:
        files = {**files, "target_patch": Path(params.target_patch)}
    where = target if params.target_patch is None else patch_on_head(params.target_patch, head, target)
    placement = _place(conductor, coil, where, search, optimize)
    plan = RealisticPlan(head, params.conductivities, placement, optimize, files=files,
                         patch_radius_mm=search.patch_radius_mm)
    if dose is not None and dose.mt_percent is not None and m1_mm is not None:
        m1 = np.asarray(m1_mm, dtype=float)
        _check_target_in_head(head.labels, head.affine, m1, "motor hotspot (--m1)", str(head.space))
        plan.m1 = _place(conductor, coil, m1, search, optimize)
        plan.dose = realistic_dose(dose.mt_percent, placement, plan.m1, stokes_slope=dose.stokes_slope,
                                   didt_max_a_per_us=coil.didt_max_a_per_us)
    return plan
