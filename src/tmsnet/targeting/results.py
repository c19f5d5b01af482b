"""What the targeting job produces, as plain data (a leaf module: it imports no other job code).

:class:`Target` is one method's answer, :class:`MethodUncertainty` how much to
trust it, :class:`TargetingResult` everything the job found for one scan. The
writers (:mod:`tmsnet.targeting.outputs`), the report and the command line read
these types; none of them is imported here, so results flow one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.io.fmriprep import BrainGrid

__all__ = ["MethodUncertainty", "Target", "TargetingResult", "result_summary", "target_summary"]


@dataclass
class Target:
    """One target chosen by one method.

    Attributes
    ----------
    method : str
        Registered method name.
    coordinate_mm : ndarray, shape (3,)
        Target in mm, in ``space``.
    space : str
        Coordinate space of ``coordinate_mm``.
    voxel_ijk : tuple of int
        Grid voxel that represents the target (the target voxel itself, or for a
        centroid the cluster voxel nearest to it).
    r_at_target : float
        Seed correlation at ``voxel_ijk``.
    connectivity_r : ndarray, shape (n_voxels,)
        The map the target was read from (brain voxels).
    details : dict
        Method-specific facts (cluster size, threshold, ...), JSON-able.
    parameters : dict
        The options the method ran with, JSON-able.
    """

    method: str
    coordinate_mm: np.ndarray
    space: str
    voxel_ijk: tuple[int, int, int]
    r_at_target: float
    connectivity_r: np.ndarray = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class MethodUncertainty:
    """Uncertainty of one method's target on one scan.

    Attributes
    ----------
    method : str
    point_mm : ndarray, shape (3,)
        The point estimate (target on all frames).
    cloud : pandas.DataFrame
        One row per bootstrap resample: ``resample``, ``x``, ``y``, ``z`` (mm),
        ``distance_mm`` to the point estimate, ``r_at_target``; resamples where
        the method found no target are absent (counted in ``n_failed``).
    summary : dict
        ``n_resamples``, ``n_failed``, ``block_frames``, ``median_distance_mm``,
        ``p95_radius_mm``, ``share_within_10mm``, ``split_half_distance_mm``,
        ``split_half_first_mm``, ``split_half_second_mm``.
    scan_length : pandas.DataFrame or None
        Per fraction of the scan: ``fraction``, ``n_frames``, ``minutes``,
        ``p95_radius_mm``, ``median_distance_mm``.
    advice : dict or None
        See :func:`tmsnet.targeting.uncertainty.scan_length_advice`.
    """

    method: str
    point_mm: np.ndarray
    cloud: pd.DataFrame
    summary: dict[str, Any]
    scan_length: pd.DataFrame | None = None
    advice: dict[str, Any] | None = field(default=None)


@dataclass
class TargetingResult:
    """Everything the targeting job found, ready to be written or reported.

    Attributes
    ----------
    targets : list of Target
        One per method, in the order asked.
    space : str
        Coordinate space of every coordinate and map.
    grid : BrainGrid
        The voxel grid and the brain voxels the maps are defined on.
    seed_mask, search_mask : ndarray of bool, 3D
        The seed ROI and search region actually used.
    entities : dict
        BIDS entities of the input (``sub``, ``ses``, ``task``, ``run``...).
    parameters : dict
        Every parameter of the job (cleaning, regions, methods), as recorded.
    inputs : dict
        Input files by role (``bold``, ``confounds``, ``mask``...).
    qc : dict
        Scan quality figures (frames, duration, mean FD, % frames above 0.5 mm).
    framewise_displacement : ndarray
        FD per frame (mm), NaN where unknown; for the report's motion plot.
    warnings : list of str
        Plain-language QC warnings for the report and the CLI.
    comparison : pandas.DataFrame
        Published coordinates with their distance (mm) to the first target.
    uncertainty : dict
        Method name -> :class:`MethodUncertainty` (empty when the bootstrap is off).
    seed_connectivity_r : ndarray, shape (n_voxels,), optional
        Pearson r of every brain voxel with the mean seed time series (the sgACC map),
        whichever methods ran; None falls back to the first target's map.
    """

    targets: list[Target]
    space: str
    grid: BrainGrid
    seed_mask: np.ndarray
    search_mask: np.ndarray
    entities: dict[str, str]
    parameters: dict[str, Any]
    inputs: dict[str, Path]
    qc: dict[str, Any]
    framewise_displacement: np.ndarray
    warnings: list[str]
    comparison: pd.DataFrame
    uncertainty: dict[str, MethodUncertainty] = field(default_factory=dict)
    seed_connectivity_r: np.ndarray | None = field(default=None, repr=False)

    @property
    def seed_map(self) -> np.ndarray:
        """The sgACC (seed) map, whichever methods ran.

        :attr:`seed_connectivity_r`, else the first non-seedmap target's map, else the first
        target's.
        """
        if self.seed_connectivity_r is not None:
            return self.seed_connectivity_r
        plain = next((t for t in self.targets if t.method != "seedmap"), self.targets[0])
        return plain.connectivity_r

    def map_image(self, values: np.ndarray) -> nib.Nifti1Image:
        """A 3D float32 image of per-brain-voxel ``values`` (0 outside the brain)."""
        return self.grid.map_image(values)

    def mask_image(self, mask: np.ndarray) -> nib.Nifti1Image:
        """A 3D uint8 image of a boolean mask on the result's grid."""
        return self.grid.mask_image(mask)


#: Entries of ``Target.details`` the summary lifts to its top level (one copy, not in ``details``).
_TOP_LEVEL_DETAILS = ("uncertainty", "scan_length_advice", "method_choice")


def target_summary(target: Target) -> dict[str, Any]:
    """The JSON summary of one target (what ``--json`` prints and ``*_target.json`` holds).

    A target of the default job (the method chosen by the job) also has ``method_choice``:
    which method was used and why (:func:`tmsnet.targeting.workflow.choose_method`).
    """
    x, y, z = (round(float(v), 2) for v in target.coordinate_mm)
    summary = {
        "x": x,
        "y": y,
        "z": z,
        "space": target.space,
        "units": "mm",
        "method": target.method,
        "r_at_target": round(float(target.r_at_target), 4),
        "uncertainty": target.details.get("uncertainty"),
        "scan_length_advice": target.details.get("scan_length_advice"),
        "voxel_ijk": list(target.voxel_ijk),
        # one copy of the uncertainty and the advice: at the top level, not again in details
        "details": {k: v for k, v in target.details.items() if k not in _TOP_LEVEL_DETAILS},
        "parameters": target.parameters,
    }
    if "method_choice" in target.details:  # only when the job chose (explicit: as before)
        summary["method_choice"] = target.details["method_choice"]
    return summary


def result_summary(result: TargetingResult) -> dict[str, Any]:
    """One JSON-able object: the first target at top level, all targets in ``targets``."""
    summaries = [target_summary(t) for t in result.targets]
    summary = dict(summaries[0])
    summary["targets"] = summaries
    summary["qc"] = result.qc
    summary["warnings"] = result.warnings
    summary["global_signal_regression"] = result.parameters["cleaning"].get("global_signal")
    return summary
