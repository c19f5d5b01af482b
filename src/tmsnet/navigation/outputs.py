"""The treatment plan on disk: writing it, and reading back what its report draws.

:func:`write_plan` writes, under ``OUT/sub-<label>/nibs/`` (prefix
``sub-<label>_space-<space>``):

* ``_desc-plan_target.json``: the plan summary with its provenance;
* the neuronavigation files (:func:`tmsnet.navigation.exports.write_navigation_files`);
* ``_desc-plan_efield.tsv`` + ``.json``: the sphere-model |E| of the planned
  coil on the sphere through the target
  (:func:`tmsnet.physics.placement.field_patch`), one row per sample
  (``u_mm``, ``v_mm``: mm of arc along the coil's x and y axes; ``e``: V/m per
  A/µs), with the target's position, the sphere radius, the half-maximum area
  and the coil orientation sweep in the sidecar (sphere model only);
* realistic head only (``head_model="realistic"``): ``_desc-head_dseg.nii.gz``
  (the five-tissue labels, for QC, :func:`tmsnet.physics.head_model.write_head_model`)
  and ``_desc-efield_magnitude.nii.gz`` (|E| of the planned coil, V/m per A/µs,
  on the label grid), each with a sidecar.

Every file states its frame: the plan JSON's ``coil_matrix`` and
``coordinate_frame``, Brainsight's ``# Coordinate system:`` line, Localite's
``coordinateSpace`` and NIBS-BIDS's ``*_coordsystem.json``.

The report reads these files (:func:`read_plan_field`); it recomputes nothing.
The one-page plan HTML is the report's (:func:`tmsnet.jobs.plan.plan` writes
it after this writer has finished); its sidecar is the plan's provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.io.bids import bids_name, subject_folder
from tmsnet.navigation.plan import TreatmentPlan
from tmsnet.physics.placement import FieldPatch
from tmsnet.utils.docs import add_doc, fill_doc

__all__ = ["EFIELD_MAP_SUFFIX", "HEAD_LABELS_SUFFIX", "PLAN_FIELD_SUFFIX", "PlanField", "plan_page_name",
           "plan_sidecar", "read_plan_field", "write_plan"]

#: Suffix (after ``sub-<label>_space-<space>``) of the plan's field patch table.
PLAN_FIELD_SUFFIX = "_desc-plan_efield.tsv"
#: Suffixes of the realistic head's label volume and |E| map.
HEAD_LABELS_SUFFIX = "_desc-head_dseg.nii.gz"
EFIELD_MAP_SUFFIX = "_desc-efield_magnitude.nii.gz"
_FIELD_COLUMNS = ("u_mm", "v_mm", "e")
_PLAN_DESCRIPTION = "TMS treatment plan (scalp point, coil orientation, depth, dose); decision support."


def plan_page_name(subject: str) -> str:
    """File name of the one-page plan at the top of the output folder."""
    return bids_name({"sub": subject, "desc": "treatment"}, "plan", ".html")


def plan_sidecar(plan: TreatmentPlan) -> dict[str, Any]:
    """The plan's provenance sidecar (parameters, inputs with SHA-256, summary)."""
    from tmsnet.io.provenance import make_sidecar

    return make_sidecar(description=_PLAN_DESCRIPTION, parameters=plan.parameters, inputs=plan.inputs,
                        space=plan.space, extra={"Summary": plan.summary()})


def _field_sidecar(plan: TreatmentPlan, patch: FieldPatch, plan_sidecar: dict[str, Any]) -> dict[str, Any]:
    """The patch's sidecar: the plan's provenance (without its summary) and the patch's facts."""
    side = {k: v for k, v in plan_sidecar.items() if k != "Summary"}
    side["Description"] = ("Sphere-model |E| of the planned coil on the sphere through the target (one row "
                           "per sample of an azimuthal-equidistant grid centred on the coil axis), and the "
                           "coil orientation sweep at the target.")
    side["Parameters"] = {**side.get("Parameters", {}), "grid_mm": patch.grid_mm}
    side.update({
        "u_mm": {"Description": "Arc length along the coil's x axis on the sphere", "Units": "mm"},
        "v_mm": {"Description": "Arc length along the coil's y axis (handle) on the sphere", "Units": "mm"},
        "e": {"Description": "|E| per unit coil current slope", "Units": "V/m per A/us"},
        "Coil": patch.coil,
        "TargetUVmm": [float(v) for v in patch.target_uv_mm],
        "EAtTarget": patch.e_at_target,
        "SphereRadiusmm": patch.radius_mm,
        "HalfMaxAreacm2": patch.half_max_area_cm2,
        "OrientationSweep": {"AngleDeg": plan.placement.sweep_angles_deg.tolist(),
                             "EAtTarget": plan.placement.sweep_e.tolist(),
                             "ChosenAngleDeg": plan.placement.angle_deg,
                             "OrientationRule": plan.placement.orientation},
    })
    return side


def _write_field(plan: TreatmentPlan, path: Path, sidecar: dict[str, Any]) -> Path:
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text
    from tmsnet.io.provenance import sidecar_path_for

    patch = plan.field_patch
    table = pd.DataFrame({"u_mm": patch.u_mm.ravel(), "v_mm": patch.v_mm.ravel(), "e": patch.e.ravel()})
    atomic_write_text(path, table.to_csv(sep="\t", index=False, float_format="%.17g", lineterminator="\n"))
    atomic_write_json(sidecar_path_for(path), _field_sidecar(plan, patch, sidecar))
    return path


def _write_realistic(plan: TreatmentPlan, folder: Path, prefix: str,
                     sidecar: dict[str, Any]) -> dict[str, Path]:
    """The head labels (QC) and the |E| map of the planned coil, each with a sidecar."""
    from tmsnet.io.atomic import atomic_write_json
    from tmsnet.io.provenance import sidecar_path_for
    from tmsnet.physics.head_model import write_head_model
    from tmsnet.physics.realistic_placement import write_field_map

    realistic = plan.realistic
    labels = write_head_model(realistic.head, folder / f"{prefix}{HEAD_LABELS_SUFFIX}",
                              conductivities=realistic.conductivities)
    field_map = write_field_map(realistic.placement.solution, folder / f"{prefix}{EFIELD_MAP_SUFFIX}")
    side = {k: v for k, v in sidecar.items() if k != "Summary"}
    side.update({"Description": "|E| of the planned coil in the realistic head (direct solve), per unit coil "
                                "current slope; zero outside the head.",
                 "Units": "V/m per A/us", "CoilMatrix": plan.coil_matrix.tolist(),
                 "CoordinateFrame": plan.summary()["coordinate_frame"],
                 "TargetPatchMeanE": float(realistic.placement.field["magnitude"])})
    atomic_write_json(sidecar_path_for(field_map), side)
    return {"head_labels": labels, "efield_map": field_map}


add_doc("plan_output", """out_dir : str or Path
    Output folder (created if needed).
subject : str
    BIDS subject label of the file names.
name : str
    Marker name in the navigation files.""")


@fill_doc
def write_plan(plan: TreatmentPlan, out_dir: str | Path, *, subject: str = "01",
               name: str = "target") -> tuple[dict[str, Path], dict[str, Any]]:
    """Write the plan JSON, the field patch and the navigation files, each with a sidecar.

    Parameters
    ----------
    plan : TreatmentPlan
        From :func:`tmsnet.navigation.plan.compute_plan`.
    %(plan_output)s

    Returns
    -------
    written : dict
        Paths by role: ``plan_json``, ``brainsight``, ``localite``,
        ``markers``, ``coordsystem``, ``plan_field`` (when the plan has a
        field patch), ``head_labels`` and ``efield_map`` (realistic head).
    sidecar : dict
        The plan's provenance sidecar (for the one-page plan's sidecar).
    """
    from tmsnet.io.atomic import atomic_write_json, ensure_output_dir
    from tmsnet.navigation.exports import NavigationTarget, write_navigation_files

    out = ensure_output_dir(out_dir)
    sidecar = plan_sidecar(plan)
    entities = {"sub": subject, "space": plan.space}
    nibs = subject_folder(out, entities, "nibs")
    nibs.mkdir(parents=True, exist_ok=True)
    prefix = bids_name(entities)
    written: dict[str, Path] = {}
    plan_json = nibs / bids_name({**entities, "desc": "plan"}, "target", ".json")
    written["plan_json"] = atomic_write_json(plan_json, {**plan.summary(), "Provenance": sidecar})
    matrix = plan.coil_matrix
    nav = NavigationTarget(name=name, scalp_point_mm=matrix[:3, 3], rotation=matrix[:3, :3],
                           target_mm=plan.target_mm, space=plan.space)
    written.update(write_navigation_files([nav], nibs, prefix, sidecar=sidecar))
    if plan.field_patch is not None:
        written["plan_field"] = _write_field(plan, nibs / f"{prefix}{PLAN_FIELD_SUFFIX}", sidecar)
    if plan.realistic is not None:
        written.update(_write_realistic(plan, nibs, prefix, sidecar))
    return written, sidecar


@dataclass
class PlanField:
    """What :func:`read_plan_field` reads back: the field patch and the orientation sweep.

    Attributes
    ----------
    patch : FieldPatch
        |E| on the sphere through the target.
    sweep_angles_deg, sweep_e : numpy.ndarray
        Coil angles of the orientation sweep and |E| at the target for each
        (V/m per A/µs).
    angle_deg : float
        The chosen angle.
    orientation_rule : str
        The rule that chose it (:data:`tmsnet.physics.placement.ORIENTATION_RULES`).
    """

    patch: FieldPatch
    sweep_angles_deg: np.ndarray
    sweep_e: np.ndarray
    angle_deg: float
    orientation_rule: str


def read_plan_field(path: str | Path) -> PlanField:
    """Read a ``*_desc-plan_efield.tsv`` and its sidecar.

    Parameters
    ----------
    path : str or Path
        The table written by :func:`write_plan`.

    Returns
    -------
    PlanField

    Raises
    ------
    InputFileNotFoundError
        If the table or its sidecar is missing.
    InvalidParameterError
        If they are not a field patch (columns, square grid, sidecar keys).
    """
    import json

    from tmsnet.io.provenance import sidecar_path_for

    path = Path(path)
    side_path = sidecar_path_for(path)
    for p in (path, side_path):
        if not p.is_file():
            raise InputFileNotFoundError(f"{p} does not exist; re-run `tmsnet plan`.")
    table = pd.read_csv(path, sep="\t")
    side = json.loads(side_path.read_text(encoding="utf-8"))
    k = int(round(np.sqrt(len(table))))
    if tuple(table.columns) != _FIELD_COLUMNS or k * k != len(table) or k < 2:
        raise InvalidParameterError(f"{path.name} is not a plan field patch (columns {_FIELD_COLUMNS}, "
                                    "one row per sample of a square grid).")
    try:
        u, v, e = (table[c].to_numpy(float).reshape(k, k) for c in _FIELD_COLUMNS)
        patch = FieldPatch(u_mm=u, v_mm=v, e=e, target_uv_mm=tuple(float(x) for x in side["TargetUVmm"]),
                           e_at_target=float(side["EAtTarget"]), radius_mm=float(side["SphereRadiusmm"]),
                           half_max_area_cm2=float(side["HalfMaxAreacm2"]), coil=str(side["Coil"]),
                           grid_mm=float(u[1, 0] - u[0, 0]))
        sweep = side["OrientationSweep"]
        return PlanField(patch=patch, sweep_angles_deg=np.asarray(sweep["AngleDeg"], dtype=float),
                         sweep_e=np.asarray(sweep["EAtTarget"], dtype=float),
                         angle_deg=float(sweep["ChosenAngleDeg"]),
                         orientation_rule=str(sweep["OrientationRule"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidParameterError(f"The sidecar of {path.name} lacks {exc}; re-run `tmsnet plan`.") from exc
