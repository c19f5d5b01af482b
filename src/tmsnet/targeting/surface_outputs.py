"""Write the outputs of the surface job (BIDS-Derivatives names, a sidecar for each).

Under ``sub-<label>/[ses-<label>/]func/``:

* ``<prefix>_hemi-{L,R}_space-<space>_stat-r_desc-sgacc_connectivity.shape.gii``: r with
  the sgACC seed on every vertex of that hemisphere's template mesh (NaN on the vertices
  left out: the medial wall);
* ``<prefix>_space-<space>_desc-<method>_target.json``: the target vertex (hemisphere and
  index), its coordinates on the template surface (mm, space named), for fsaverage spaces
  the same point in MNI152 (FreeSurfer's MNI305 -> MNI152 affine), r, the uncertainty and
  the scan-length advice;
* ``<prefix>_space-<space>_desc-bootstrap_targets.tsv``: every bootstrap target.

All files are written atomically with JSON sidecars (parameters, versions, input
SHA-256). The caller stages the job (:func:`tmsnet.io.staging.staged_output_dir`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_tsv
from tmsnet.io.bids import entity_prefix, parse_entities, subject_folder, write_tmsnet_description
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.spaces import MNI305_SURFACE_SPACES, mni305_to_mni152
from tmsnet.targeting.results import target_summary
from tmsnet.targeting.surface_workflow import HEMISPHERES, SurfaceTargetingResult


def _gifti_bytes(values: np.ndarray, hemisphere: str) -> bytes:
    structure = "CortexLeft" if hemisphere == "L" else "CortexRight"
    array = nib.gifti.GiftiDataArray(values.astype(np.float32), intent="NIFTI_INTENT_CORREL",
                                     datatype="NIFTI_TYPE_FLOAT32")
    image = nib.gifti.GiftiImage(darrays=[array],
                                 meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary":
                                                               structure}))
    return image.to_bytes()


def _hemisphere_map(result: SurfaceTargetingResult, r: np.ndarray, hemisphere: str) -> np.ndarray:
    values = np.full(result.n_mesh_vertices[hemisphere], np.nan)
    on = result.elements.hemisphere == hemisphere
    values[result.elements.vertex[on]] = r[on]
    return values


def surface_target_record(target: Any, result: SurfaceTargetingResult) -> dict[str, Any]:
    """A target's JSON record, with the vertex and the template surface named."""
    record = target_summary(target)
    record.pop("voxel_ijk", None)
    record["hemisphere"] = target.details.get("hemisphere")
    record["vertex"] = target.details.get("vertex")
    record["coordinate_note"] = result.parameters["coordinate_space_note"]
    mni152 = surface_target_mni152(target, result)
    if mni152 is not None:
        record["mni152"] = {"x": round(float(mni152[0]), 2), "y": round(float(mni152[1]), 2),
                            "z": round(float(mni152[2]), 2), "space": MNI152_OF_MNI305,
                            "transform": "FreeSurfer's MNI305 -> MNI152 affine (an affine only: "
                                         "within a few mm)"}
    return record


#: The space FreeSurfer's MNI305 -> MNI152 affine maps to (FSL's MNI152, 6th generation).
MNI152_OF_MNI305 = "MNI152NLin6Asym"


def surface_target_mni152(target: Any, result: SurfaceTargetingResult) -> np.ndarray | None:
    """The target in MNI152 (for ``tmsnet plan`` and the navigators), for fsaverage spaces."""
    if result.space not in MNI305_SURFACE_SPACES:
        return None
    return mni305_to_mni152(np.asarray(target.coordinate_mm, float))


def write_surface_outputs(result: SurfaceTargetingResult, out_dir: str | Path, *,
                          bold: str | Path) -> dict[str, Path]:
    """Write the maps, targets and bootstrap clouds of a surface job.

    Parameters
    ----------
    result : SurfaceTargetingResult
        From :func:`tmsnet.targeting.surface_workflow.compute_surface_targets`.
    out_dir : path
        Existing output (or staging) folder.
    bold : path
        The left BOLD file (its entities name the outputs).

    Returns
    -------
    dict
        Paths by role: ``dataset_description``, ``connectivity_r_L``, ``connectivity_r_R``,
        ``target_<method>``, ``bootstrap_targets`` (with uncertainty).
    """
    entities = parse_entities(bold)
    prefix = entity_prefix(entities)
    func = subject_folder(out_dir, entities, datatype="func")
    func.mkdir(parents=True, exist_ok=True)
    space = result.space

    def sidecar(description: str) -> dict[str, Any]:
        return make_sidecar(description=description, parameters=result.parameters,
                            inputs=result.inputs, space=space,
                            extra={"SeedRegion": result.seed_info,
                                   "SearchRegion": result.search_info})

    written: dict[str, Path] = {"dataset_description": write_tmsnet_description(out_dir)}
    r = result.targets[0].connectivity_r
    for hemi in HEMISPHERES:
        path = func / f"{prefix}_hemi-{hemi}_space-{space}_stat-r_desc-sgacc_connectivity.shape.gii"
        atomic_write_bytes(path, _gifti_bytes(_hemisphere_map(result, r, hemi), hemi))
        atomic_write_json(path.with_name(path.name.removesuffix(".shape.gii") + ".json"), sidecar(
            f"Pearson r with the mean sgACC time series on the {hemi} hemisphere's {space} "
            "mesh (NaN: vertices left out, the medial wall)."))
        written[f"connectivity_r_{hemi}"] = path
    for target in result.targets:
        path = func / f"{prefix}_space-{space}_desc-{target.method}_target.json"
        atomic_write_json(path, {**surface_target_record(target, result),
                                 **sidecar(f"The {target.method} target on the {space} surface.")})
        written[f"target_{target.method}"] = path
    if result.uncertainty:
        cloud = pd.concat([u.cloud.assign(method=m) for m, u in result.uncertainty.items()],
                          ignore_index=True)
        path = func / f"{prefix}_space-{space}_desc-bootstrap_targets.tsv"
        atomic_write_tsv(path, cloud)
        atomic_write_json(sidecar_path_for(path), sidecar(
            "Block-bootstrap targets (mm, template surface) of every method."))
        written["bootstrap_targets"] = path
    return written
