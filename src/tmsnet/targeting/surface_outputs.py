"""Write the outputs of the surface job (BIDS-Derivatives names, a sidecar for each).

Under ``sub-<label>/[ses-<label>/]func/``:

* ``<prefix>_hemi-{L,R}_space-<space>_stat-r_desc-sgacc_connectivity.shape.gii``: r with
  the sgACC seed on every vertex of that hemisphere's template mesh (NaN on the vertices
  left out: the medial wall); with the ``seedmap`` method also ``desc-seedmapweighted``, r
  with the seedmap-weighted seed;
* for a CIFTI-2 input (fMRIPrep ``*_space-fsLR_den-91k_bold.dtseries.nii``), each map also
  as a CIFTI-2 dense scalar,
  ``<prefix>_space-<space>[_den-<den>]_stat-r_desc-<map>_connectivity.dscalar.nii``: the
  input's brain-model axis (every grayordinate it lists, in its order) and one scalar row
  named ``<map>_r`` (``sgacc_r``); NaN where r was not computed (cortex vertices left
  out, and every subcortical or cerebellar voxel: the surface job reads only the cortex);
* ``<prefix>_space-<space>_desc-<method>_target.json``: the target vertex (hemisphere and
  index), its coordinates on the template surface (mm, space named), for fsaverage spaces
  the same point in MNI152 (FreeSurfer's MNI305 -> MNI152 affine), r, the uncertainty and
  the scan-length advice;
* ``<prefix>_report.json`` at the top of the folder: the run summary (targets, scan QC,
  warnings) that the report reads, as for volumes;
* ``<prefix>_space-<space>_desc-bootstrap_targets.tsv``: every bootstrap target;
* ``<prefix>_space-<space>_desc-scanlength_stability.tsv``: the scan-length curves, as for
  volumes (:func:`tmsnet.targeting.outputs.scan_length_table`).

All files are written atomically with JSON sidecars (parameters, versions, input
SHA-256). The caller stages the job (:func:`tmsnet.io.staging.staged_output_dir`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel import cifti2

from tmsnet.exceptions import InvalidImageError
from tmsnet.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_tsv
from tmsnet.io.bids import entity_prefix, parse_entities, subject_folder, write_tmsnet_description
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.io.surface import cifti_cortex_models
from tmsnet.spaces import MNI305_SURFACE_SPACES, mni305_to_mni152
from tmsnet.targeting.outputs import SCAN_LENGTH_SIDECAR, report_summary_path, scan_length_table
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


def cifti_dscalar(result: SurfaceTargetingResult, r: np.ndarray,
                  models: cifti2.BrainModelAxis, *, name: str = "sgacc_r",
                  seed: str = "sgACC") -> cifti2.Cifti2Image:
    """A map of the data's vertices as a CIFTI-2 dense scalar on ``models``.

    Parameters
    ----------
    result : SurfaceTargetingResult
        Gives each value's hemisphere and mesh vertex (``result.elements``).
    r : ndarray, shape (n_elements,)
        The map, one value per element of ``result.elements``.
    models : BrainModelAxis
        The brain-model axis of the input dtseries; kept as it is (structures, vertex
        lists, the volume part and its affine).
    name : str
        Name of the map (the scalar axis' one row): ``<desc>_r``.
    seed : str
        The seed the map correlates with, in the row's metadata.

    Returns
    -------
    Cifti2Image
        Shape ``(1, len(models))``, float32; NaN on every grayordinate without a value.

    Raises
    ------
    InvalidImageError
        If ``models`` lacks a cortex structure or declares another mesh size than the result.
    """
    values = np.full(len(models), np.nan, dtype=np.float32)
    for hemi, (columns, model, n_mesh) in cifti_cortex_models(models, "The CIFTI input").items():
        if n_mesh != result.n_mesh_vertices[hemi]:
            raise InvalidImageError(
                f"The CIFTI input declares a {n_mesh}-vertex {model.name[0]} mesh, but the result "
                f"was computed on {result.n_mesh_vertices[hemi]} vertices: was the input file "
                "replaced after the job read it? Run the job again.")
        values[columns] = _hemisphere_map(result, r, hemi)[np.asarray(model.vertex)]
    scalars = cifti2.ScalarAxis([name], meta=[{"Statistic": "Pearson r", "Seed": seed}])
    image = cifti2.Cifti2Image(values[None, :], cifti2.Cifti2Header.from_axes((scalars, models)))
    image.nifti_header.set_intent("ConnDenseScalar")
    return image


def _cifti_models(path: Path) -> cifti2.BrainModelAxis:
    """The brain-model axis (the last axis) of a CIFTI-2 file."""
    models = nib.load(path).header.get_axis(1)
    if not isinstance(models, cifti2.BrainModelAxis):
        raise InvalidImageError(f"{path.name} has no brain-model axis: it is not a dense CIFTI file.")
    return models


def surface_result_summary(result: SurfaceTargetingResult) -> dict[str, Any]:
    """The run summary (what ``--json`` prints and ``<prefix>_report.json`` holds).

    The first target at the top level, every target in ``targets``, the scan QC and the
    warnings: the layout of the volume job's summary.
    """
    records = [surface_target_record(t, result) for t in result.targets]
    return {**records[0], "targets": records, "qc": dict(result.qc),
            "warnings": list(result.warnings),
            "effective_dof": result.parameters.get("effective_dof")}


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
                            "transform": _MNI152_TRANSFORM.get(result.space, _MNI152_TRANSFORM[None])}
    return record


#: The space FreeSurfer's MNI305 -> MNI152 affine maps to (FSL's MNI152, 6th generation); the
#: fsLR midthickness (HCP's MNINonLinear average) lies in that space already.
MNI152_OF_MNI305 = "MNI152NLin6Asym"
#: Surface spaces whose template coordinates are already MNI152NLin6Asym (no transform).
MNI152_SURFACE_SPACES = ("fsLR",)
_MNI152_TRANSFORM = {
    "fsLR": "none: the fsLR midthickness template lies in MNI152NLin6Asym (HCP MNINonLinear)",
    None: "FreeSurfer's MNI305 -> MNI152 affine (an affine only: within a few mm)",
}


def surface_target_mni152(target: Any, result: SurfaceTargetingResult) -> np.ndarray | None:
    """The target in MNI152NLin6Asym (for ``tmsnet plan`` and the navigators).

    fsaverage coordinates (MNI305) go through FreeSurfer's affine; fsLR coordinates already
    are MNI152NLin6Asym; any other space has no transform (None).
    """
    coordinate = np.asarray(target.coordinate_mm, float)
    if result.space in MNI152_SURFACE_SPACES:
        return coordinate.copy()
    if result.space not in MNI305_SURFACE_SPACES:
        return None
    return mni305_to_mni152(coordinate)


def _surface_maps(result: SurfaceTargetingResult) -> list[tuple[str, np.ndarray, str]]:
    """``(desc, r, what)`` of each map to write: the sgACC map, and the seedmap-weighted one."""
    maps = []
    plain = next((t for t in result.targets if t.method != "seedmap"), None)
    if plain is not None:
        maps.append(("sgacc", plain.connectivity_r, "Pearson r with the mean sgACC time series"))
    for target in result.targets:
        if target.method == "seedmap":
            maps.append(("seedmapweighted", target.connectivity_r,
                         "Pearson r with the seedmap-weighted seed (every vertex weighted by the "
                         "surface group seedmap; Fox 2013)"))
    return maps


def _write_dscalar(result: SurfaceTargetingResult, stem: Path, desc: str, r: np.ndarray,
                   what: str, models: cifti2.BrainModelAxis, sidecar: Any) -> Path:
    path = stem.with_name(stem.name + ".dscalar.nii")
    name = f"{desc}_r"
    seed = "sgACC" if desc == "sgacc" else "seedmap-weighted"
    atomic_write_bytes(path, cifti_dscalar(result, r, models, name=name, seed=seed).to_bytes())
    structures = {name: int(len(model)) for name, _, model in models.iter_structures()}
    atomic_write_json(sidecar_path_for(path), sidecar(
        f"{what} on the grayordinates of the input CIFTI file ({len(models)}; scalar map "
        f"{name!r}). NaN: cortex vertices left out (constant or non-finite signal) "
        "and every subcortical or cerebellar voxel (the surface job reads only the two cortex "
        "models).", {"MapNames": [name], "BrainModels": structures,
                      "ValuesComputedFor": ["CIFTI_STRUCTURE_CORTEX_LEFT",
                                                    "CIFTI_STRUCTURE_CORTEX_RIGHT"]}))
    return path


def surface_entities(bold: str | Path | Sequence[str | Path]) -> dict[str, str]:
    """The BIDS entities that name a surface job's outputs.

    The (first) left BOLD file's; for several runs concatenated, without ``run``, as for
    volumes.
    """
    bolds = [bold] if isinstance(bold, str | Path) else list(bold)
    entities = parse_entities(bolds[0])
    if len(bolds) > 1:
        entities.pop("run", None)
    return entities


def _write_maps(result: SurfaceTargetingResult, func: Path, prefix: str, bold: str | Path,
                sidecar: Any) -> dict[str, Path]:
    """Each map as one GIFTI per hemisphere and, for a CIFTI input, as a dscalar."""
    space = result.space
    cifti = result.inputs.get("cifti", result.inputs.get("cifti_1"))
    models = None if cifti is None else _cifti_models(Path(cifti))
    den = parse_entities(bold, keys=("den",)).get("den")
    written: dict[str, Path] = {}
    for desc, r, what in _surface_maps(result):
        role = "connectivity_r" if desc == "sgacc" else f"connectivity_r_{desc}"
        for hemi in HEMISPHERES:
            path = func / f"{prefix}_hemi-{hemi}_space-{space}_stat-r_desc-{desc}_connectivity.shape.gii"
            atomic_write_bytes(path, _gifti_bytes(_hemisphere_map(result, r, hemi), hemi))
            atomic_write_json(sidecar_path_for(path), sidecar(
                f"{what} on the {hemi} hemisphere's {space} mesh (NaN: vertices left out, the "
                "medial wall)."))
            written[f"{role}_{hemi}"] = path
        if models is not None:
            stem = func / (f"{prefix}_space-{space}" + (f"_den-{den}" if den else "")
                           + f"_stat-r_desc-{desc}_connectivity")
            written[f"{role}_dscalar"] = _write_dscalar(result, stem, desc, r, what, models,
                                                         sidecar)
    return written


def write_surface_outputs(result: SurfaceTargetingResult, out_dir: str | Path, *,
                          bold: str | Path | Sequence[str | Path]) -> dict[str, Path]:
    """Write the maps, targets and bootstrap clouds of a surface job.

    Parameters
    ----------
    result : SurfaceTargetingResult
        From :func:`tmsnet.targeting.surface_workflow.compute_surface_targets`.
    out_dir : path
        Existing output (or staging) folder.
    bold : path or list of path
        The left BOLD file, or those of the runs concatenated (:func:`surface_entities` name
        the outputs).

    Returns
    -------
    dict
        Paths by role: ``dataset_description``, ``connectivity_r_L``, ``connectivity_r_R``,
        ``connectivity_r_dscalar`` (CIFTI input only); with the seedmap method also
        ``connectivity_r_seedmapweighted_{L,R,dscalar}``; ``target_<method>``,
        ``bootstrap_targets`` (with uncertainty).
    """
    entities = surface_entities(bold)
    first = bold if isinstance(bold, str | Path) else bold[0]
    prefix = entity_prefix(entities)
    func = subject_folder(out_dir, entities, datatype="func")
    func.mkdir(parents=True, exist_ok=True)
    space = result.space

    def sidecar(description: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return make_sidecar(description=description, parameters=result.parameters,
                            inputs=result.inputs, space=space,
                            extra={"SeedRegion": result.seed_info,
                                   "SearchRegion": result.search_info, **(extra or {})})

    written: dict[str, Path] = {"dataset_description": write_tmsnet_description(out_dir)}
    written.update(_write_maps(result, func, prefix, first, sidecar))
    for target in result.targets:
        path = func / f"{prefix}_space-{space}_desc-{target.method}_target.json"
        # the same layout as a volume target: the record, then its sidecar under "Provenance"
        atomic_write_json(path, {**surface_target_record(target, result), "Provenance":
                                 sidecar(f"The {target.method} target on the {space} surface.")})
        written[f"target_{target.method}"] = path
    summary_path = report_summary_path(out_dir, entities)
    atomic_write_json(summary_path, sidecar("Targeting report (self-contained HTML).",
                                            {"Summary": surface_result_summary(result)}))
    written["report_summary"] = summary_path
    if result.uncertainty:
        cloud = pd.concat([u.cloud.assign(method=m) for m, u in result.uncertainty.items()],
                          ignore_index=True)
        path = func / f"{prefix}_space-{space}_desc-bootstrap_targets.tsv"
        atomic_write_tsv(path, cloud)
        atomic_write_json(sidecar_path_for(path), sidecar(
            "Block-bootstrap targets (mm, template surface) of every method."))
        written["bootstrap_targets"] = path
        table = scan_length_table(result.uncertainty)
        if table is not None:  # the same file as for volumes: the report draws the curve
            path = func / f"{prefix}_space-{space}_desc-scanlength_stability.tsv"
            atomic_write_tsv(path, table)
            atomic_write_json(sidecar_path_for(path), sidecar(*SCAN_LENGTH_SIDECAR))
            written["scan_length"] = path
    return written
