"""The targeting job: BOLD + confounds -> cleaned data -> seed map -> target(s).

:func:`compute_targets` composes the science functions and returns a
:class:`TargetingResult` in memory;
:func:`tmsnet.targeting.outputs.write_targeting_outputs` writes it as a
BIDS-Derivatives folder (every file atomically, each with a JSON sidecar);
:func:`run_targeting` does both and is what the CLI calls. Everything that can
fail on bad input (unknown method, unwritable output folder, bad files) is
checked before the expensive steps.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tmsnet.data import COMPARISON_TARGETS, reference_coordinates
from tmsnet.exceptions import InvalidParameterError
from tmsnet.fmri.cleaning import clean_bold
from tmsnet.io.fmriprep import BoldData, load_bold, load_confounds_table
from tmsnet.spaces import PUBLISHED_COORDINATE_NOTE
from tmsnet.targeting.methods import Target, TargetingContext, get_method
from tmsnet.targeting.regions import DEFAULT_SEARCH_RADIUS_MM, dlpfc_search_mask, seed_mask

#: Framewise displacement above which a frame counts as high-motion (mm; Power 2012).
FD_THRESHOLD_MM = 0.5
#: Mean FD above which the report warns of high motion (mm).
MEAN_FD_WARNING_MM = 0.25
#: Scans shorter than this draw a warning (minutes); see REFERENCES.md section 1
#: (Cao 2024: 28 min + cluster method gives < 1 cm test-retest).
SHORT_SCAN_WARNING_MIN = 10.0

_ENTITY_RE = re.compile(r"(?:^|_)(sub|ses|task|acq|run)-([A-Za-z0-9]+)")


@dataclass
class TargetingResult:
    """Everything the targeting job found, ready to be written or reported.

    Attributes
    ----------
    targets : list of Target
        One per method, in the order asked.
    space : str
        Coordinate space of every coordinate and map.
    reference : Nifti1Image
        3D image holding the grid (shape, affine, header) of the maps.
    brain_mask : ndarray of bool
        Brain voxels the maps are defined on.
    seed_mask, search_mask : ndarray of bool, 3D
        The seed ROI and search region actually used.
    entities : dict
        BIDS entities of the input (``sub``, ``ses``, ``task``, ``run``...).
    parameters : dict
        Every parameter of the job (cleaning, regions, methods).
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
    truth : dict or None
        Planted target of a simulated subject (demo), if known.
    """

    targets: list[Target]
    space: str
    reference: nib.Nifti1Image
    brain_mask: np.ndarray
    seed_mask: np.ndarray
    search_mask: np.ndarray
    entities: dict[str, str]
    parameters: dict[str, Any]
    inputs: dict[str, Path]
    qc: dict[str, Any]
    framewise_displacement: np.ndarray
    warnings: list[str]
    comparison: pd.DataFrame
    truth: dict[str, Any] | None = field(default=None)

    def map_image(self, values: np.ndarray) -> nib.Nifti1Image:
        """A 3D float32 image of per-brain-voxel ``values`` (0 outside the brain)."""
        volume = np.zeros(self.brain_mask.shape, dtype=np.float32)
        volume[self.brain_mask] = values
        return nib.Nifti1Image(volume, self.reference.affine)

    def mask_image(self, mask: np.ndarray) -> nib.Nifti1Image:
        """A 3D uint8 image of a boolean mask on the result's grid."""
        return nib.Nifti1Image(mask.astype(np.uint8), self.reference.affine)


def bids_entities(path: str | Path) -> dict[str, str]:
    """The ``sub``/``ses``/``task``/``acq``/``run`` entities of a BIDS file name."""
    return {key: value for key, value in _ENTITY_RE.findall(Path(path).name)}


def distances_to_references(coordinate_mm: Sequence[float]) -> pd.DataFrame:
    """Distance (mm) from a coordinate to each published comparison coordinate.

    Parameters
    ----------
    coordinate_mm : (x, y, z)
        A target in mm (template space).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``x``, ``y``, ``z``, ``distance_mm``, ``source``;
        rows are :data:`tmsnet.data.COMPARISON_TARGETS`.
    """
    refs = reference_coordinates().loc[list(COMPARISON_TARGETS)]
    xyz = refs[["x", "y", "z"]].to_numpy(dtype=float)
    distance = np.linalg.norm(xyz - np.asarray(coordinate_mm, dtype=float), axis=1)
    table = refs[["x", "y", "z", "source"]].copy()
    table.insert(3, "distance_mm", np.round(distance, 2))
    return table.reset_index()


def scan_qc(
    confounds: pd.DataFrame, *, t_r: float, n_frames_used: int, n_frames: int
) -> tuple[dict[str, Any], np.ndarray, list[str]]:
    """Basic scan quality figures and plain-language warnings.

    Parameters
    ----------
    confounds : pandas.DataFrame
        fMRIPrep confounds; ``framewise_displacement`` is used when present.
    t_r : float
        Repetition time (s).
    n_frames_used : int
        Frames left after discarding and scrubbing.
    n_frames : int
        Frames in the scan.

    Returns
    -------
    qc : dict
    fd : ndarray
        FD per frame (mm), NaN where missing.
    warnings : list of str
    """
    if "framewise_displacement" in confounds.columns:
        fd = confounds["framewise_displacement"].to_numpy(dtype=float)
    else:
        fd = np.full(n_frames, np.nan)
    valid = np.isfinite(fd)
    mean_fd = float(np.mean(fd[valid])) if valid.any() else None
    percent_above = (
        float(100.0 * np.mean(fd[valid] > FD_THRESHOLD_MM)) if valid.any() else None
    )
    duration_min = n_frames * t_r / 60.0
    qc = {
        "n_frames": int(n_frames),
        "n_frames_used": int(n_frames_used),
        "t_r_s": float(t_r),
        "duration_min": round(duration_min, 2),
        "mean_framewise_displacement_mm": None if mean_fd is None else round(mean_fd, 4),
        "percent_frames_fd_above_0_5mm": None if percent_above is None else round(percent_above, 2),
    }
    warnings: list[str] = []
    if duration_min < SHORT_SCAN_WARNING_MIN:
        warnings.append(
            f"Short scan: {duration_min:.1f} min. Targets from less than "
            f"{SHORT_SCAN_WARNING_MIN:g} min of resting-state data move more between sessions; "
            "consider a longer acquisition."
        )
    if mean_fd is None:
        warnings.append("No framewise_displacement column: head motion could not be assessed.")
    elif mean_fd > MEAN_FD_WARNING_MM:
        warnings.append(
            f"High motion: mean framewise displacement {mean_fd:.2f} mm "
            f"(above {MEAN_FD_WARNING_MM} mm). Interpret the target with caution."
        )
    if percent_above is not None and percent_above > 20.0:
        warnings.append(
            f"{percent_above:.0f} % of frames move more than {FD_THRESHOLD_MM} mm; consider "
            "the 'scrubbing' confound strategy."
        )
    return qc, fd, warnings


def compute_targets(
    bold: str | Path,
    confounds: str | Path,
    *,
    mask: str | Path | None = None,
    space: str | None = None,
    t_r: float | None = None,
    methods: Sequence[str] = ("cluster",),
    confound_strategy: str = "simple",
    global_signal_regression: bool = True,
    low_pass_hz: float | None = 0.1,
    high_pass_hz: float | None = 0.01,
    smoothing_fwhm_mm: float | None = 6.0,
    discard_frames: int = 0,
    seed: str = "sgacc",
    seed_coordinates_mm: Sequence[Sequence[float]] | None = None,
    seed_radius_mm: float | None = None,
    seed_roi: str | Path | None = None,
    search_roi: str | Path | None = None,
    search_radius_mm: float = DEFAULT_SEARCH_RADIUS_MM,
    gray_matter_only: bool = True,
    cluster_percentile: float = 10.0,
    weighted_centroid: bool = False,
    progress: bool = True,
) -> TargetingResult:
    """Find the personalized DLPFC target(s) of one resting-state scan.

    Pipeline (REFERENCES.md section 1): load and validate the fMRIPrep BOLD,
    brain mask and confounds; smooth, regress confounds (strategy and global
    signal regression explicit), band-pass; build the seed (sgACC 10 mm sphere
    at MNI (6, 16, -10), Fox et al. 2012) and the search region (20 mm spheres
    at the four standard DLPFC targets, intersected with gray matter);
    correlate the seed with every voxel; apply each method.

    Parameters
    ----------
    bold, confounds : path
        fMRIPrep ``*_desc-preproc_bold.nii.gz`` (4D, template space) and
        ``*_desc-confounds_timeseries.tsv``.
    mask : path, optional
        Brain mask on the BOLD grid; default fMRIPrep's mask beside the BOLD.
    space : str, optional
        Template space of the BOLD, if its file name has no ``space-`` entity.
    t_r : float, optional
        Repetition time (s) if neither the header nor the sidecar has it.
    methods : sequence of str
        Targeting methods to run on the same cleaned data (``peak``, ``cluster``).
    confound_strategy : str
        Confound strategy (see :mod:`tmsnet.fmri.cleaning`); default ``"simple"``.
    global_signal_regression : bool
        Regress the global signal (default True); recorded in every sidecar.
    low_pass_hz, high_pass_hz : float or None
        Band-pass edges (Hz); default 0.01-0.1 Hz.
    smoothing_fwhm_mm : float or None
        Gaussian smoothing FWHM (mm); default 6 mm.
    discard_frames : int
        Initial frames to drop (non-steady state).
    seed, seed_coordinates_mm, seed_radius_mm, seed_roi
        Seed ROI definition (see :func:`tmsnet.targeting.regions.seed_mask`).
    search_roi, search_radius_mm, gray_matter_only
        Search region definition (see
        :func:`tmsnet.targeting.regions.dlpfc_search_mask`).
    cluster_percentile, weighted_centroid
        Options of the ``cluster`` method.
    progress : bool
        Show progress on stderr.

    Returns
    -------
    TargetingResult
    """
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise InvalidParameterError("Give at least one targeting method.")
    method_functions = {name: get_method(name) for name in methods}  # fail fast
    method_options: dict[str, dict[str, Any]] = {
        "cluster": {"percentile": cluster_percentile, "weighted": weighted_centroid},
    }

    steps = ["load", "clean", "regions", "connectivity", *methods]
    bar = tqdm(total=len(steps), desc="tmsnet target", unit="step", file=sys.stderr,
               disable=not progress, leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label)

    try:
        step("loading BOLD")
        data: BoldData = load_bold(bold, mask_path=mask, space=space, t_r=t_r)
        table = load_confounds_table(confounds, n_frames=data.n_frames)
        bar.update()
        step("cleaning")
        cleaned, cleaning_info = clean_bold(
            data,
            table,
            strategy=confound_strategy,
            global_signal=global_signal_regression,
            low_pass_hz=low_pass_hz,
            high_pass_hz=high_pass_hz,
            smoothing_fwhm_mm=smoothing_fwhm_mm,
            discard_frames=discard_frames,
        )
        bar.update()
        step("seed and search region")
        seed3d, seed_info = seed_mask(
            data.reference, data.mask, seed=seed, seed_coordinates_mm=seed_coordinates_mm,
            seed_radius_mm=seed_radius_mm, seed_roi=seed_roi,
        )
        search3d, search_info = dlpfc_search_mask(
            data.reference, data.mask, radius_mm=search_radius_mm,
            restrict_to_gray_matter=gray_matter_only, search_roi=search_roi,
        )
        context = TargetingContext(
            data=cleaned, brain_mask=data.mask, affine=data.reference.affine,
            seed_voxels=seed3d[data.mask], search_voxels=search3d[data.mask], space=data.space,
        )
        bar.update()
        step("seed connectivity")
        context.seed_connectivity()
        bar.update()
        targets = []
        for name, function in method_functions.items():
            step(f"method {name}")
            targets.append(function(context, **method_options.get(name, {})))
            bar.update()
    finally:
        bar.close()

    qc, fd, warnings = scan_qc(
        table, t_r=data.t_r, n_frames_used=cleaned.shape[0], n_frames=data.n_frames
    )
    weak = [t.method for t in targets if t.r_at_target > -0.1]
    if weak:
        warnings.append(
            f"Weak anticorrelation at the target ({', '.join(weak)}: r > -0.1): the sgACC "
            "signal may be too noisy in this scan for a reliable personalized target."
        )
    inputs = {"bold": Path(bold), "confounds": Path(confounds)}
    if data.mask_path is not None:
        inputs["mask"] = Path(data.mask_path)
    for role, path in (("seed_roi", seed_roi), ("search_roi", search_roi)):
        if path is not None:
            inputs[role] = Path(path)
    parameters = {
        "methods": methods,
        "method_options": {name: target.parameters for name, target in zip(methods, targets,
                                                                          strict=True)},
        "cleaning": cleaning_info,
        "seed": seed_info,
        "search_region": search_info,
        "space": data.space,
        "coordinate_space_note": PUBLISHED_COORDINATE_NOTE.format(space=data.space),
        "excluded_voxels": data.n_voxels_excluded,
        "n_brain_voxels": int(data.mask.sum()),
    }
    return TargetingResult(
        targets=targets,
        space=data.space,
        reference=data.reference,
        brain_mask=data.mask,
        seed_mask=seed3d,
        search_mask=search3d,
        entities=bids_entities(bold),
        parameters=parameters,
        inputs=inputs,
        qc=qc,
        framewise_displacement=fd,
        warnings=warnings,
        comparison=distances_to_references(targets[0].coordinate_mm),
    )


def target_summary(target: Target) -> dict[str, Any]:
    """The JSON summary of one target (what ``--json`` prints and ``*_target.json`` holds)."""
    x, y, z = (round(float(v), 2) for v in target.coordinate_mm)
    return {
        "x": x,
        "y": y,
        "z": z,
        "space": target.space,
        "units": "mm",
        "method": target.method,
        "r_at_target": round(float(target.r_at_target), 4),
        "voxel_ijk": list(target.voxel_ijk),
        "details": target.details,
        "parameters": target.parameters,
    }


def result_summary(result: TargetingResult) -> dict[str, Any]:
    """One JSON-able object: the first target at top level, all targets in ``targets``."""
    summaries = [target_summary(t) for t in result.targets]
    summary = dict(summaries[0])
    summary["targets"] = summaries
    summary["qc"] = result.qc
    summary["warnings"] = result.warnings
    summary["global_signal_regression"] = result.parameters["cleaning"].get("global_signal")
    if result.truth is not None:
        summary["planted_target_mm"] = result.truth.get("target_mm")
        summary["error_mm"] = {
            t.method: round(float(np.linalg.norm(t.coordinate_mm - result.truth["target_mm"])), 2)
            for t in result.targets
        }
    return summary


def run_targeting(
    bold: str | Path,
    confounds: str | Path,
    *,
    out_dir: str | Path,
    report: bool = True,
    truth: dict[str, Any] | None = None,
    **options: Any,
) -> tuple[TargetingResult, dict[str, Path]]:
    """Compute the target(s) of one scan and write them under ``out_dir``.

    Parameters
    ----------
    bold, confounds : path
        See :func:`compute_targets`.
    out_dir : path
        Output folder (a BIDS-Derivatives dataset); created if needed. Checked
        for writability before any computation.
    report : bool
        Also write the HTML report (default True).
    truth : dict, optional
        Planted target of a simulated subject, shown in the demo report.
    **options
        Passed to :func:`compute_targets`.

    Returns
    -------
    result : TargetingResult
    written : dict
        Output paths by role.
    """
    from tmsnet.io.atomic import ensure_output_dir
    from tmsnet.targeting.outputs import write_targeting_outputs

    out = ensure_output_dir(out_dir)
    result = compute_targets(bold, confounds, **options)
    result.truth = truth
    written = write_targeting_outputs(result, out, report=report)
    return result, written
