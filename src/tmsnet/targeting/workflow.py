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
from tmsnet.exceptions import EmptyRegionError, InvalidParameterError
from tmsnet.fmri.cleaning import clean_bold
from tmsnet.io.fmriprep import BoldData, load_bold, load_confounds_table
from tmsnet.spaces import PUBLISHED_COORDINATE_NOTE
from tmsnet.targeting.methods import Target, TargetingContext, get_method
from tmsnet.targeting.regions import DEFAULT_SEARCH_RADIUS_MM, dlpfc_search_mask, seed_mask
from tmsnet.targeting.uncertainty import (
    DEFAULT_SCAN_FRACTIONS,
    DEFAULT_TOLERANCE_MM,
    MethodUncertainty,
    default_block_frames,
    method_uncertainty,
)

#: What ``--method all`` runs, in report order (the first is the headline target).
ALL_METHODS = ("cluster", "seedmap", "hierarchical", "peak")
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
    uncertainty : dict
        Method name -> :class:`tmsnet.targeting.uncertainty.MethodUncertainty`
        (empty when the bootstrap is off).
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
    uncertainty: dict[str, MethodUncertainty] = field(default_factory=dict)

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


@dataclass
class CleanedScan:
    """The cleaned data of one scan (one run, or several runs concatenated).

    Attributes
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Cleaned, standardized time series (float32) of the brain voxels; runs
        are cleaned separately, then concatenated in time.
    reference : Nifti1Image
        3D image holding the grid.
    mask : ndarray of bool, 3D
        Brain voxels (the intersection of the runs' masks).
    space : str
        Template space.
    t_r : float
        Repetition time (s).
    run_lengths : list of int
        Frames each run contributes to ``data`` (after discarding/scrubbing).
    n_frames : int
        Frames acquired, all runs together.
    confounds : pandas.DataFrame
        The runs' confound tables, concatenated.
    cleaning : dict
        Cleaning parameters and facts (one run), or those of the first run with
        ``runs`` holding each run's (several runs).
    inputs : dict
        ``bold``/``confounds``/``mask`` paths; with several runs ``bold_1``,
        ``confounds_1``, ``mask_1``, ``bold_2``... (one provenance role each).
    entities : dict
        BIDS entities of the scan (``run`` dropped when runs are concatenated).
    n_voxels_excluded : dict
        Voxels dropped from the mask (NaN, constant), summed over runs.
    """

    data: np.ndarray
    reference: nib.Nifti1Image
    mask: np.ndarray
    space: str
    t_r: float
    run_lengths: list[int]
    n_frames: int
    confounds: pd.DataFrame
    cleaning: dict[str, Any]
    inputs: dict[str, Any]
    entities: dict[str, str]
    n_voxels_excluded: dict[str, int]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [value]
    return list(value)


def load_and_clean(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    *,
    mask: str | Path | Sequence[str | Path] | None = None,
    space: str | None = None,
    t_r: float | None = None,
    confound_strategy: str = "simple",
    global_signal_regression: bool = True,
    low_pass_hz: float | None = 0.1,
    high_pass_hz: float | None = 0.01,
    smoothing_fwhm_mm: float | None = 6.0,
    discard_frames: int = 0,
    n_threads: int | None = None,
) -> CleanedScan:
    """Load, validate and clean one scan, or several runs of one session.

    Each run is loaded with :func:`tmsnet.io.fmriprep.load_bold`, cleaned on
    its own with :func:`tmsnet.fmri.cleaning.clean_bold` (confounds, global
    signal, band-pass, smoothing, standardization), then the runs are
    concatenated in time on the voxels all their brain masks share.

    Parameters
    ----------
    bold, confounds : path or sequence of paths
        One run, or the runs of one session in acquisition order (same number
        of BOLD and confounds files, same grid, space and TR).
    mask : path or sequence of paths, optional
        Brain mask(s); default fMRIPrep's mask beside each BOLD.
    space, t_r
        See :func:`tmsnet.io.fmriprep.load_bold`.
    confound_strategy, global_signal_regression, low_pass_hz, high_pass_hz, smoothing_fwhm_mm, discard_frames
        See :func:`tmsnet.fmri.cleaning.clean_bold`.
    n_threads : int, optional
        Threads for the smoothing (default: available CPUs, at most 8); set 1
        when several subjects run in parallel processes.

    Returns
    -------
    CleanedScan

    Raises
    ------
    InvalidParameterError
        If the numbers of BOLD, confounds and mask files differ, or the runs
        have different TRs.
    GridMismatchError, SpaceError
        If the runs are on different grids or in different spaces.
    """
    from tmsnet.exceptions import GridMismatchError, SpaceError

    bolds, tables = _as_list(bold), _as_list(confounds)
    masks = _as_list(mask) or [None] * len(bolds)
    if not bolds or len(bolds) != len(tables) or len(masks) != len(bolds):
        raise InvalidParameterError(
            f"Give one confounds file (and at most one mask) per BOLD run: got {len(bolds)} BOLD, "
            f"{len(tables)} confounds and {len(_as_list(mask))} mask files."
        )
    loaded: list[BoldData] = []
    cleaned_runs: list[np.ndarray] = []
    pieces, infos, frames, table_list = [], [], [], []
    excluded = {"nan": 0, "constant": 0}
    for path, table_path, mask_path in zip(bolds, tables, masks, strict=True):
        data = load_bold(path, mask_path=mask_path, space=space, t_r=t_r)
        first = loaded[0] if loaded else data
        if data.space != first.space:
            raise SpaceError(f"Run {Path(path).name} is in {data.space} but the first run is in "
                             f"{first.space}; give runs of one space.")
        if data.reference.shape[:3] != first.reference.shape[:3] or not np.allclose(
                data.reference.affine, first.reference.affine, atol=1e-3):
            raise GridMismatchError(f"Run {Path(path).name} is on another grid than the first run; "
                                    "resample the runs to one grid (fMRIPrep --output-spaces).")
        if not np.isclose(data.t_r, first.t_r, rtol=1e-3):
            raise InvalidParameterError(f"Run {Path(path).name} has TR {data.t_r} s but the first "
                                        f"run {first.t_r} s; process runs with different TRs apart.")
        table = load_confounds_table(table_path, n_frames=data.n_frames)
        cleaned, info = clean_bold(
            data, table, strategy=confound_strategy, global_signal=global_signal_regression,
            low_pass_hz=low_pass_hz, high_pass_hz=high_pass_hz,
            smoothing_fwhm_mm=smoothing_fwhm_mm, discard_frames=discard_frames,
            n_threads=n_threads,
        )
        data.data = np.empty((0, 0), dtype=np.float32)  # free the raw run before the next one
        loaded.append(data)
        cleaned_runs.append(cleaned)
        infos.append(info)
        frames.append(int(cleaned.shape[0]))
        table_list.append(table)
        for key in excluded:
            excluded[key] += int(data.n_voxels_excluded.get(key, 0))
    first = loaded[0]
    common = np.logical_and.reduce([d.mask for d in loaded])
    for data, cleaned in zip(loaded, cleaned_runs, strict=True):
        keep = common[data.mask]
        pieces.append(cleaned if keep.all() else cleaned[:, keep])
    del cleaned_runs
    cleaning = dict(infos[0])
    inputs: dict[str, Any] = {"bold": Path(bolds[0]), "confounds": Path(tables[0])}
    if first.mask_path is not None:
        inputs["mask"] = Path(first.mask_path)
    entities = bids_entities(bolds[0])
    if len(loaded) > 1:
        cleaning["runs"] = infos
        cleaning["n_runs"] = len(loaded)
        cleaning["run_concatenation"] = "each run cleaned and standardized, then concatenated"
        # One provenance role per run (bold_1, confounds_1, mask_1, ...).
        inputs = {}
        for i, (path, table_path, data) in enumerate(zip(bolds, tables, loaded, strict=True), 1):
            inputs[f"bold_{i}"] = Path(path)
            inputs[f"confounds_{i}"] = Path(table_path)
            if data.mask_path is not None:
                inputs[f"mask_{i}"] = Path(data.mask_path)
        entities.pop("run", None)
    return CleanedScan(
        data=pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0),
        reference=first.reference,
        mask=common,
        space=first.space,
        t_r=float(first.t_r),
        run_lengths=frames,
        n_frames=int(sum(d.n_frames for d in loaded)),
        confounds=pd.concat(table_list, ignore_index=True),
        cleaning=cleaning,
        inputs=inputs,
        entities=entities,
        n_voxels_excluded=excluded,
    )


def compute_targets(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    *,
    mask: str | Path | Sequence[str | Path] | None = None,
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
    seedmap: str | Path | None = None,
    seedmap_rule: str = "cluster",
    hierarchical_threshold: float = 0.5,
    hierarchical_min_voxels: int = 51,
    n_bootstrap: int = 100,
    bootstrap_block_frames: int | None = None,
    scan_length_fractions: Sequence[float] | None = DEFAULT_SCAN_FRACTIONS,
    stability_tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    random_seed: int = 0,
    n_threads: int | None = None,
    progress: bool = True,
) -> TargetingResult:
    """Find the personalized DLPFC target(s) of one resting-state scan.

    Pipeline (REFERENCES.md section 1): load and validate the fMRIPrep BOLD,
    brain mask and confounds; smooth, regress confounds (strategy and global
    signal regression explicit), band-pass; build the seed (sgACC 10 mm sphere
    at MNI (6, 16, -10), Fox et al. 2012) and the search region (20 mm spheres
    at the four standard DLPFC targets, intersected with gray matter);
    correlate the seed with every voxel; apply each method to the same cleaned
    data; then estimate each target's uncertainty (block bootstrap, split-half,
    scan-length advice; :mod:`tmsnet.targeting.uncertainty`) on the same data.

    Parameters
    ----------
    bold, confounds : path or sequence of paths
        fMRIPrep ``*_desc-preproc_bold.nii.gz`` (4D, template space) and
        ``*_desc-confounds_timeseries.tsv``; sequences for several runs of one
        session (each cleaned, then concatenated; see :func:`load_and_clean`).
    mask : path or sequence of paths, optional
        Brain mask(s) on the BOLD grid; default fMRIPrep's mask beside the BOLD.
    space : str, optional
        Template space of the BOLD, if its file name has no ``space-`` entity.
    t_r : float, optional
        Repetition time (s) if neither the header nor the sidecar has it.
    methods : sequence of str
        Targeting methods to run on the same cleaned data (``peak``,
        ``cluster``, ``seedmap``, ``hierarchical``).
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
        Options of the ``cluster`` rule (also used by ``seedmap``).
    seedmap : path, optional
        Group seedmap for the ``seedmap`` method; default the bundled
        sample-cohort seedmap (:data:`tmsnet.targeting.seedmap.BUNDLED_SEEDMAP`).
    seedmap_rule : {"cluster", "peak"}
        How the ``seedmap`` method reads its map.
    hierarchical_threshold, hierarchical_min_voxels
        Options of the ``hierarchical`` method (dendrogram cut on ``1 - |rho|``,
        smallest DLPFC cluster).
    n_bootstrap : int
        Block-bootstrap resamples per method (default 100); 0 turns the
        uncertainty estimates off.
    bootstrap_block_frames : int, optional
        Bootstrap block length in frames (default: 30 s worth).
    scan_length_fractions : sequence of float or None
        Fractions of the scan for the scan-length advice (default
        25/50/75/100 %); None skips it.
    stability_tolerance_mm : float
        The stability the scan-length advice aims at (default 5 mm).
    random_seed : int
        Seed of every random step (bootstrap); same seed, same result.
    n_threads : int, optional
        Threads for the smoothing (see :func:`load_and_clean`); results do not
        depend on it.
    progress : bool
        Show progress on stderr.

    Returns
    -------
    TargetingResult
    """
    from tmsnet.targeting.seedmap import load_seedmap_weights

    methods = list(dict.fromkeys(methods))
    if not methods:
        raise InvalidParameterError("Give at least one targeting method.")
    method_functions = {name: get_method(name) for name in methods}  # fail fast
    if n_bootstrap < 0:
        raise InvalidParameterError(f"n_bootstrap must be >= 0 (0 = off), got {n_bootstrap}.")
    if bootstrap_block_frames is not None and bootstrap_block_frames < 1:
        raise InvalidParameterError(f"bootstrap_block_frames must be >= 1, got {bootstrap_block_frames}.")
    if stability_tolerance_mm <= 0:
        raise InvalidParameterError(f"stability_tolerance_mm must be > 0, got {stability_tolerance_mm}.")
    method_options: dict[str, dict[str, Any]] = {
        "cluster": {"percentile": cluster_percentile, "weighted": weighted_centroid},
        "seedmap": {"rule": seedmap_rule, "percentile": cluster_percentile,
                    "weighted": weighted_centroid},
        "hierarchical": {"distance_threshold": hierarchical_threshold,
                         "min_cluster_voxels": hierarchical_min_voxels},
    }

    steps = ["load and clean", "regions", "connectivity", *methods]
    if n_bootstrap:
        steps += [f"uncertainty {name}" for name in methods]
    bar = tqdm(total=len(steps), desc="tmsnet target", unit="step", file=sys.stderr,
               disable=not progress, leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label)

    uncertainty: dict[str, MethodUncertainty] = {}
    try:
        step("loading and cleaning")
        scan = load_and_clean(
            bold, confounds, mask=mask, space=space, t_r=t_r,
            confound_strategy=confound_strategy, global_signal_regression=global_signal_regression,
            low_pass_hz=low_pass_hz, high_pass_hz=high_pass_hz,
            smoothing_fwhm_mm=smoothing_fwhm_mm, discard_frames=discard_frames,
            n_threads=n_threads,
        )
        bar.update()
        step("seed and search region")
        seed3d, seed_info = seed_mask(
            scan.reference, scan.mask, seed=seed, seed_coordinates_mm=seed_coordinates_mm,
            seed_radius_mm=seed_radius_mm, seed_roi=seed_roi,
        )
        search3d, search_info = dlpfc_search_mask(
            scan.reference, scan.mask, radius_mm=search_radius_mm,
            restrict_to_gray_matter=gray_matter_only, search_roi=search_roi,
        )
        weights, seedmap_info = None, None
        if "seedmap" in methods:
            weights, seedmap_info = load_seedmap_weights(
                seedmap, reference=scan.reference, brain_mask=scan.mask, space=scan.space)
        context = TargetingContext(
            data=scan.data, brain_mask=scan.mask, affine=scan.reference.affine,
            seed_voxels=seed3d[scan.mask], search_voxels=search3d[scan.mask], space=scan.space,
            seed_weights=weights,
        )
        bar.update()
        step("seed connectivity")
        context.seed_connectivity()
        bar.update()
        targets = []
        failed: dict[str, str] = {}
        for name, function in method_functions.items():
            step(f"method {name}")
            try:
                targets.append(function(context, **method_options.get(name, {})))
            except EmptyRegionError as error:
                # With several methods, one that finds nothing does not sink the others.
                if len(method_functions) == 1:
                    raise
                failed[name] = str(error)
            bar.update()
        if not targets:
            raise EmptyRegionError(
                "No method found a target: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
            )
        for target in targets if n_bootstrap else []:
            step(f"uncertainty {target.method}")
            uncertainty[target.method] = method_uncertainty(
                context, target, t_r=scan.t_r, options=method_options.get(target.method, {}),
                run_lengths=scan.run_lengths, n_resamples=n_bootstrap,
                block_frames=bootstrap_block_frames, random_seed=random_seed,
                scan_fractions=scan_length_fractions, tolerance_mm=stability_tolerance_mm,
            )
            target.details["uncertainty"] = uncertainty[target.method].summary
            target.details["scan_length_advice"] = uncertainty[target.method].advice
            bar.update()
    finally:
        bar.close()

    n_used = int(scan.data.shape[0])
    qc, fd, warnings = scan_qc(scan.confounds, t_r=scan.t_r, n_frames_used=n_used,
                               n_frames=scan.n_frames)
    for name, message in failed.items():
        warnings.append(f"Method {name} found no target: {message}")
    weak = [t.method for t in targets if t.r_at_target > -0.1]
    if weak:
        warnings.append(
            f"Weak anticorrelation at the target ({', '.join(weak)}: r > -0.1): the sgACC "
            "signal may be too noisy in this scan for a reliable personalized target."
        )
    for name, u in uncertainty.items():
        advice = u.advice
        if advice is not None and not advice["stable"]:
            warnings.append(f"Target stability ({name}): {advice['message']}")
    inputs = dict(scan.inputs)
    for role, path in (("seed_roi", seed_roi), ("search_roi", search_roi)):
        if path is not None:
            inputs[role] = Path(path)
    if seedmap_info is not None:
        inputs["seedmap"] = Path(seedmap_info["path"])
    parameters = {
        "methods": methods,
        "failed_methods": failed,
        "method_options": {target.method: target.parameters for target in targets},
        "cleaning": scan.cleaning,
        "seed": seed_info,
        "search_region": search_info,
        "seedmap": seedmap_info,
        "uncertainty": {
            "n_bootstrap": int(n_bootstrap),
            "block_frames": (default_block_frames(scan.t_r) if bootstrap_block_frames is None
                             else int(bootstrap_block_frames)),
            "scan_length_fractions": None if scan_length_fractions is None
            else [float(f) for f in scan_length_fractions],
            "stability_tolerance_mm": float(stability_tolerance_mm),
            "random_seed": int(random_seed),
            "method": "moving-block bootstrap over time (blocks within runs); split-half; "
                      "radius = a / sqrt(minutes) fit for the scan-length advice",
        },
        "run_lengths": scan.run_lengths,
        "space": scan.space,
        "coordinate_space_note": PUBLISHED_COORDINATE_NOTE.format(space=scan.space),
        "excluded_voxels": scan.n_voxels_excluded,
        "n_brain_voxels": int(scan.mask.sum()),
    }
    return TargetingResult(
        targets=targets,
        space=scan.space,
        reference=scan.reference,
        brain_mask=scan.mask,
        seed_mask=seed3d,
        search_mask=search3d,
        entities=scan.entities,
        parameters=parameters,
        inputs=inputs,
        qc=qc,
        framewise_displacement=fd,
        warnings=warnings,
        comparison=distances_to_references(targets[0].coordinate_mm),
        uncertainty=uncertainty,
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
        "uncertainty": target.details.get("uncertainty"),
        "scan_length_advice": target.details.get("scan_length_advice"),
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
