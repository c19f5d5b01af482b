"""Write a :class:`~tmsnet.targeting.results.TargetingResult` as BIDS-Derivatives.

Layout under the output folder (``<p>`` = ``sub-<label>[_ses-<label>]_task-<label>[_run-<index>]``)::

    dataset_description.json
    <p>_report.json                                     run summary the report reads
    sub-<label>/[ses-<label>/]func/
        <p>_space-<space>_stat-r_desc-<seed>_connectivity.nii.gz (+ .json)   Pearson r
        <p>_space-<space>_stat-z_desc-<seed>_connectivity.nii.gz (+ .json)   Fisher z
        <p>_space-<space>_desc-seed_mask.nii.gz (+ .json)
        <p>_space-<space>_desc-search_mask.nii.gz (+ .json)
        <p>_space-<space>_desc-<method>_target.json     target + provenance
    sub-<label>/[ses-<label>/]nibs/
        <p>_space-<space>_markers.tsv (+ .json)          one row per method (NIBS-BIDS, BEP037)
        <p>_space-<space>_coordsystem.json

Every file is written atomically (temp file + rename) by :mod:`tmsnet.io.atomic`
after all results have been computed, so a failure while computing leaves
nothing behind; each carries its parameters, software versions and SHA-256 of
its inputs (:func:`tmsnet.io.provenance.make_sidecar`). The HTML report is not
written here: the job (:mod:`tmsnet.jobs.target`) draws it from these files.
Names and folders come from :mod:`tmsnet.io.bids`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from tmsnet.io.atomic import (
    atomic_write_json,
    atomic_write_nifti,
    atomic_write_text,
    atomic_write_tsv,
)
from tmsnet.io.bids import (
    DERIVATIVES_NAME,
    bids_label,
    derivatives_description,
    entity_prefix,
    subject_folder,
    write_dataset_description,
)
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.targeting.connectivity import fisher_z
from tmsnet.targeting.results import TargetingResult, result_summary, target_summary
from tmsnet.targeting.uncertainty import MIN_EFFECTIVE_DOF

__all__ = ["markers_table", "report_summary_path", "write_targeting_outputs"]


def report_summary_path(out_dir: str | Path, entities: Mapping[str, str]) -> Path:
    """``out_dir/<prefix>_report.json``: the run summary beside the run's report."""
    return Path(out_dir) / f"{entity_prefix(entities)}_report.json"


def markers_table(result: TargetingResult) -> pd.DataFrame:
    """The targets as a NIBS-BIDS style ``*_markers.tsv`` table (mm, one row per method)."""
    rows = []
    for target in result.targets:
        x, y, z = (round(float(v), 2) for v in target.coordinate_mm)
        rows.append({
            "marker_name": f"dlpfc_{target.method}",
            "target_x": x,
            "target_y": y,
            "target_z": z,
            "method": target.method,
            "r_at_target": round(float(target.r_at_target), 4),
            "p95_radius_mm": (target.details.get("uncertainty") or {}).get("p95_radius_mm"),
        })
    return pd.DataFrame(rows)


def _seed_label(result: TargetingResult) -> str:
    seed = result.parameters["seed"]
    if seed.get("type") == "image":
        return "seedroi"
    return bids_label(seed.get("name", "seed"))


_OutputFile = tuple[str, Path, str, Any, dict[str, Any] | None]


def _map_files(result: TargetingResult, func: Path, space_prefix: str, sidecar) -> list[_OutputFile]:
    seed_label = _seed_label(result)
    r = result.seed_map  # the sgACC map, also when seedmap is the first (or only) method
    params = result.parameters
    files: list[_OutputFile] = [
        ("connectivity_r", func / f"{space_prefix}_stat-r_desc-{seed_label}_connectivity.nii.gz",
         "nifti", result.map_image(r),
         sidecar("Pearson correlation of each voxel's cleaned time series with the mean seed "
                 "time series.", {"Statistic": "r", "Seed": params["seed"]})),
        ("connectivity_z", func / f"{space_prefix}_stat-z_desc-{seed_label}_connectivity.nii.gz",
         "nifti", result.map_image(fisher_z(r)),
         sidecar("Fisher z (arctanh r) of the seed connectivity map.",
                 {"Statistic": "z", "Seed": params["seed"]})),
        ("seed_mask", func / f"{space_prefix}_desc-seed_mask.nii.gz", "nifti",
         result.mask_image(result.seed_mask),
         sidecar("Seed ROI used (voxels with usable signal).", {"Region": params["seed"]})),
        ("search_mask", func / f"{space_prefix}_desc-search_mask.nii.gz", "nifti",
         result.mask_image(result.search_mask),
         sidecar("DLPFC search region used.", {"Region": params["search_region"]})),
    ]
    for target in result.targets:
        if target.method == "seedmap":
            files.append((
                "connectivity_r_seedmap",
                func / f"{space_prefix}_stat-r_desc-seedmapweighted_connectivity.nii.gz",
                "nifti", result.map_image(target.connectivity_r),
                sidecar("Pearson correlation of each voxel with the seedmap-weighted seed (the "
                        "average of all brain voxels weighted by the group seedmap; Fox 2013).",
                        {"Statistic": "r", "Seedmap": params.get("seedmap")})))
    return files


def _uncertainty_files(result: TargetingResult, func: Path, space_prefix: str,
                       sidecar) -> list[_OutputFile]:
    if not result.uncertainty:
        return []
    cloud = pd.concat(
        [u.cloud.assign(method=name) for name, u in result.uncertainty.items()], ignore_index=True
    )[["method", "resample", "x", "y", "z", "distance_mm", "r_at_target"]]
    files: list[_OutputFile] = [(
        "bootstrap_targets", func / f"{space_prefix}_desc-bootstrap_targets.tsv", "tsv", cloud,
        sidecar("Targets of each block-bootstrap resample of the scan (one row per method and "
                "resample); distance_mm is to the method's target on the whole scan.",
                {"x": {"Units": "mm"}, "y": {"Units": "mm"}, "z": {"Units": "mm"},
                 "distance_mm": {"Units": "mm"}}))]
    table = scan_length_table(result.uncertainty)
    if table is not None:
        files.append(("scan_length", func / f"{space_prefix}_desc-scanlength_stability.tsv",
                      "tsv", table, sidecar(*SCAN_LENGTH_SIDECAR)))
    return files


#: Description and column units of the ``desc-scanlength_stability.tsv`` sidecar.
SCAN_LENGTH_SIDECAR = (
    "Bootstrap 95 % radius of the target on the first 25/50/75/100 % of the scan (scan-length "
    "advice); a piece whose effective degrees of freedom (its share of the cleaning's) are "
    f"below {MIN_EFFECTIVE_DOF:g} is not resampled and has no radius.",
    {"minutes": {"Units": "min"}, "p95_radius_mm": {"Units": "mm"},
     "median_distance_mm": {"Units": "mm"},
     "effective_dof": {"Description": "independent time courses of the piece after cleaning"}})


def scan_length_table(uncertainty: dict[str, Any]) -> pd.DataFrame | None:
    """Every method's scan-length curve in one table (``method`` first), None without any.

    Written as ``<prefix>_space-<space>_desc-scanlength_stability.tsv`` by the volume and the
    surface job alike; the report's stability section reads it.
    """
    curves = [u.scan_length.assign(method=name) for name, u in uncertainty.items()
              if u.scan_length is not None]
    if not curves:
        return None
    table = pd.concat(curves, ignore_index=True)
    return table[["method", *[c for c in table.columns if c != "method"]]]


def _target_files(result: TargetingResult, func: Path, nibs: Path, space_prefix: str,
                  sidecar) -> list[_OutputFile]:
    files: list[_OutputFile] = []
    for target in result.targets:
        body = target_summary(target)
        body["Provenance"] = sidecar(f"Personalized DLPFC target, method '{target.method}'.")
        files.append((f"target_{target.method}",
                      func / f"{space_prefix}_desc-{bids_label(target.method)}_target.json",
                      "json", body, None))
    files.append(("markers", nibs / f"{space_prefix}_markers.tsv", "tsv", markers_table(result),
                  sidecar("Stimulation targets (one row per method), NIBS-BIDS (BEP037) style.",
                          {"target_x": {"Units": "mm"}, "target_y": {"Units": "mm"},
                           "target_z": {"Units": "mm"}})))
    files.append(("coordsystem", nibs / f"{space_prefix}_coordsystem.json", "json", {
        "NIBSCoordinateSystem": result.space,
        "NIBSCoordinateUnits": "mm",
        "NIBSCoordinateSystemDescription": (
            f"Template space {result.space} of the fMRIPrep BOLD the targets were computed on."
        ),
    }, None))
    return files


def write_targeting_outputs(
    result: TargetingResult,
    out_dir: str | Path,
    *,
    summary: Mapping[str, Any] | None = None,
    write_summary: bool = True,
) -> dict[str, Path]:
    """Write maps, masks, targets, markers, sidecars and the run summary.

    Parameters
    ----------
    result : TargetingResult
        Output of :func:`tmsnet.targeting.workflow.compute_targets`.
    out_dir : path
        Output folder; must exist and be writable (see
        :func:`tmsnet.io.atomic.ensure_output_dir`).
    summary : mapping, optional
        The run summary recorded in ``<prefix>_report.json`` (default
        :func:`tmsnet.targeting.results.result_summary`; the demo adds its
        planted target to it).
    write_summary : bool
        Write ``<prefix>_report.json`` (the report's input; default True).

    Returns
    -------
    dict
        Paths by role: ``connectivity_r``, ``connectivity_z``, ``seed_mask``,
        ``search_mask``, ``target_<method>``, ``markers``, ``coordsystem`` and
        ``dataset_description``; with the ``seedmap`` method
        ``connectivity_r_seedmap``; with uncertainty ``bootstrap_targets`` and
        ``scan_length`` (TSV).
    """
    out = Path(out_dir)
    space_prefix = f"{entity_prefix(result.entities)}_space-{result.space}"
    func = subject_folder(out, result.entities, datatype="func")
    nibs = subject_folder(out, result.entities, datatype="nibs")

    def sidecar(description: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return make_sidecar(description=description, parameters=result.parameters,
                            inputs=result.inputs, space=result.space, extra=extra)

    # Compute everything first; only then touch the disk.
    files = [*_map_files(result, func, space_prefix, sidecar),
             *_uncertainty_files(result, func, space_prefix, sidecar),
             *_target_files(result, func, nibs, space_prefix, sidecar)]
    if write_summary:
        body = dict(result_summary(result) if summary is None else summary)
        files.append(("", report_summary_path(out, result.entities), "json",
                      sidecar("Targeting report (self-contained HTML).", {"Summary": body}), None))

    written: dict[str, Path] = {
        "dataset_description": write_dataset_description(
            out, derivatives_description(DERIVATIVES_NAME)),
    }
    for role, path, kind, payload, side in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "nifti":
            atomic_write_nifti(path, payload)
        elif kind == "json":
            atomic_write_json(path, payload)
        elif kind == "tsv":
            atomic_write_tsv(path, payload)
        else:
            atomic_write_text(path, payload)
        if side is not None:
            atomic_write_json(sidecar_path_for(path), side)
        if role:  # the run summary is the report's sidecar, not an output role
            written[role] = path
    return written
