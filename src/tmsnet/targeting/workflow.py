"""The targeting job: BOLD + confounds -> cleaned data -> seed map -> target(s).

:func:`compute_targets` composes the science functions and returns a
:class:`~tmsnet.targeting.results.TargetingResult` in memory;
:func:`tmsnet.targeting.outputs.write_targeting_outputs` writes it as a
BIDS-Derivatives folder, and :func:`tmsnet.jobs.target.run_target` does both
and draws the report (what the CLI and the BIDS-App call). Every parameter
travels in one object per concern, bundled in :class:`TargetingParameters`;
everything that can fail on bad input (unknown method, bad parameter) is
checked when those objects are built, before the expensive steps.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError, TmsnetError
from tmsnet.fmri.cleaning import BoldCleaningParameters, clean_bold
from tmsnet.io.bids import parse_entities
from tmsnet.io.fmriprep import BoldData, BrainGrid, load_bold, load_confounds_table
from tmsnet.parallel import available_workers
from tmsnet.spaces import PUBLISHED_COORDINATE_NOTE
from tmsnet.targeting.methods import (
    AUTO_METHOD,
    TargetingContext,
    available_methods,
    method_arguments,
    method_spec,
    options_classes,
    resolve_methods,
)
from tmsnet.targeting.references import distances_to_references
from tmsnet.targeting.regions import SearchRegion, SeedRegion, dlpfc_search_mask, seed_mask
from tmsnet.targeting.results import MethodUncertainty, Target, TargetingResult
from tmsnet.targeting.uncertainty import (
    MIN_EFFECTIVE_DOF,
    UncertaintyParameters,
    method_uncertainty,
    minutes_for_effective_dof,
)
from tmsnet.utils.check import validate_type
from tmsnet.utils.docs import fill_doc
from tmsnet.utils.params import parameter_specs, parameters_from_mapping

__all__ = [
    "DEFAULT_METHOD_ORDER",
    "CleanedScan",
    "TargetingParameters",
    "choose_method",
    "compute_targets",
    "load_and_clean",
    "scan_qc",
    "targeting_parameter_classes",
]

#: Framewise displacement above which a frame counts as high-motion (mm; Power 2012).
FD_THRESHOLD_MM = 0.5
#: Mean FD above which the report warns of high motion (mm).
MEAN_FD_WARNING_MM = 0.25
#: Scans shorter than this draw a warning (minutes); see REFERENCES.md section 1
#: (Cao 2024: 28 min + cluster method gives < 1 cm test-retest).
SHORT_SCAN_WARNING_MIN = 10.0
#: Old option names still accepted for one release (``--option seed=...``), with a warning.
DEPRECATED_OPTION_NAMES = {"seed": "seed_region"}
#: The default job (``methods=("auto",)``, what ``tmsnet target`` does without ``--method``):
#: per kind of scan, the methods tried in this order; the first that runs on the scan gives
#: the one target (see :func:`choose_method`). Chosen on planted-truth subjects at several
#: signal levels (issue 15 item 7; docs/validation.md, "The default method";
#: ``benchmarks/bench_accuracy.py --default``; tests/test_default_method.py).
DEFAULT_METHOD_ORDER: dict[str, tuple[str, ...]] = {
    "volume": ("seedmap", "cluster"),
    "surface": ("cluster",),
}
#: Why the first method of each kind is the default: the sentence recorded in ``method_choice``.
DEFAULT_METHOD_REASONS: dict[str, str] = {
    "volume": (
        "it is the default for volume scans: on planted-truth subjects it matched cluster at high "
        "signal and beat it at low signal (median error at signal 0.35: 3.7 against 5.9 mm; on "
        "held-out subjects at SNR 0.3: 9.5 against 24.1 mm), and no bootstrap radius told per "
        "scan which of the two was right; the hierarchical method (--method hierarchical) was "
        "more accurate still on generated scans at low signal (median 2.3 against 5.3 mm at "
        "signal 0.35) but takes about 9 times as long with its uncertainty "
        "(32 against 3.4 s on 2 cores; docs/validation.md, docs/benchmarks.md)"),
    "surface": (
        "it is the default for surface scans: on generated surface subjects it is as accurate as "
        "hierarchical (median 3.4 mm each) at a small part of its cost, and seedmap missed by "
        "12-28 mm at lower signal (docs/validation.md)"),
}


def targeting_parameter_classes() -> tuple[type, ...]:
    """The parameter classes of the job, in order: cleaning, regions, methods, uncertainty."""
    return (BoldCleaningParameters, SeedRegion, SearchRegion, *options_classes(),
            UncertaintyParameters)


@dataclass(frozen=True)
class TargetingParameters:
    """Every parameter of the targeting job, one validated object per concern.

    Attributes
    ----------
    methods : tuple of str
        Targeting methods, in report order (``"all"`` expands to
        :func:`tmsnet.targeting.methods.available_methods`). The default
        ``("auto",)`` lets the job pick one method per scan
        (:data:`DEFAULT_METHOD_ORDER`, :func:`choose_method`) and record which
        one and why (``method_choice``).
    cleaning : BoldCleaningParameters
        The fMRI cleaning.
    seed_region : SeedRegion
        The seed ROI (default: sgACC sphere).
    search_region : SearchRegion
        The DLPFC search region.
    method_options : tuple of Parameters
        Options objects of the methods (e.g. ``ClusterOptions(...)``); a
        method whose options class is absent uses its defaults.
    uncertainty : UncertaintyParameters
        Bootstrap, split-half and scan-length advice.
    """

    methods: tuple[str, ...] = (AUTO_METHOD,)
    cleaning: BoldCleaningParameters = field(default_factory=BoldCleaningParameters)
    seed_region: SeedRegion = field(default_factory=SeedRegion)
    search_region: SearchRegion = field(default_factory=SearchRegion)
    method_options: tuple[Any, ...] = ()
    uncertainty: UncertaintyParameters = field(default_factory=UncertaintyParameters)

    def __post_init__(self) -> None:
        if isinstance(self.methods, str):
            object.__setattr__(self, "methods", (self.methods,))
        object.__setattr__(self, "methods", tuple(resolve_methods(self.methods)))
        validate_type(self.cleaning, BoldCleaningParameters, "cleaning")
        validate_type(self.seed_region, SeedRegion, "seed_region")
        validate_type(self.search_region, SearchRegion, "search_region")
        validate_type(self.uncertainty, UncertaintyParameters, "uncertainty")
        known = options_classes()
        for obj in self.method_options:
            if type(obj) not in known:
                raise InvalidParameterError(
                    f"method_options holds a {type(obj).__name__}, which no registered method "
                    f"reads; give objects of {', '.join(c.__name__ for c in known)}."
                )
        object.__setattr__(self, "method_options", tuple(self.method_options))

    def options_for(self, method: str) -> tuple[Any, ...]:
        """The options objects ``method`` takes (its defaults where none was given)."""
        return method_arguments(method, self.method_options)

    @property
    def chooses_method(self) -> bool:
        """Whether the job picks the method itself (``methods == ("auto",)``, the default)."""
        return self.methods == (AUTO_METHOD,)

    def methods_to_prepare(self, kind: str = "volume") -> tuple[str, ...]:
        """The methods whose inputs a ``kind`` scan loads: the candidates when choosing."""
        return DEFAULT_METHOD_ORDER[kind] if self.chooses_method else self.methods

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> TargetingParameters:
        """Build from flat ``{field: value}`` options (the BIDS-App's ``--option KEY=VALUE``).

        Parameters
        ----------
        options : mapping, optional
            ``methods`` and any field of :func:`targeting_parameter_classes`
            (cleaning, regions, every registered method's options,
            uncertainty); values given as text are read as JSON. Names of
            :data:`DEPRECATED_OPTION_NAMES` still work (DeprecationWarning).

        Raises
        ------
        InvalidParameterError
            Unknown option, or an invalid value.
        """
        flat = dict(options or {})
        for old, new in DEPRECATED_OPTION_NAMES.items():
            if old in flat:
                warnings.warn(f"targeting option {old!r} is deprecated; use {new!r}",
                              DeprecationWarning, stacklevel=2)
                flat.setdefault(new, flat.pop(old))
        methods = flat.pop("methods", cls.methods)
        built: dict[type, Any] = {}
        for concern in targeting_parameter_classes():
            names = set(parameter_specs(concern))
            built[concern] = parameters_from_mapping(
                concern, {key: flat.pop(key) for key in list(flat) if key in names})
        if flat:
            valid = sorted({"methods", *(name for concern in targeting_parameter_classes()
                                         for name in parameter_specs(concern))})
            raise InvalidParameterError(
                f"Unknown targeting option(s) {', '.join(sorted(flat))}; valid: {', '.join(valid)}."
            )
        return cls(methods=tuple([methods] if isinstance(methods, str) else methods),
                   cleaning=built[BoldCleaningParameters], seed_region=built[SeedRegion],
                   search_region=built[SearchRegion], uncertainty=built[UncertaintyParameters],
                   method_options=tuple(built[c] for c in options_classes()))


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
    grid : BrainGrid
        The grid and the brain voxels (the intersection of the runs' masks).
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
    grid: BrainGrid
    space: str
    t_r: float
    run_lengths: list[int]
    n_frames: int
    confounds: pd.DataFrame
    cleaning: dict[str, Any]
    inputs: dict[str, Any]
    entities: dict[str, str]
    n_voxels_excluded: dict[str, int]


def as_list(value: Any) -> list[Any]:
    """One path or several (runs) as a list; None as an empty one."""
    if value is None:
        return []
    if isinstance(value, str | Path):
        return [value]
    return list(value)


def check_same_t_r(t_r: float, first_t_r: float, path: str | Path) -> None:
    """A later run must have the first run's TR (volume and surface runs alike)."""
    if not np.isclose(t_r, first_t_r, rtol=1e-3):
        raise InvalidParameterError(f"Run {Path(path).name} has TR {t_r} s but the first "
                                    f"run {first_t_r} s; process runs with different TRs apart.")


def _check_same_acquisition(data: BoldData, first: BoldData, path: str | Path) -> None:
    """A later run must share the first run's space, grid and TR."""
    from tmsnet.exceptions import GridMismatchError, SpaceError

    if data.space != first.space:
        raise SpaceError(f"Run {Path(path).name} is in {data.space} but the first run is in "
                         f"{first.space}; give runs of one space.")
    if data.reference.shape[:3] != first.reference.shape[:3] or not np.allclose(
            data.reference.affine, first.reference.affine, atol=1e-3):
        raise GridMismatchError(f"Run {Path(path).name} is on another grid than the first run; "
                                "resample the runs to one grid (fMRIPrep --output-spaces).")
    check_same_t_r(data.t_r, first.t_r, path)


def run_inputs(per_run: Sequence[Mapping[str, Any]]) -> dict[str, Path]:
    """Input files by provenance role: ``bold``... for one run, ``bold_1``... for several.

    ``per_run`` holds each run's files by role (volume: ``bold``, ``confounds``, ``mask``;
    surface: ``left``, ``right``, ``sidecar``, ``confounds``).
    """
    if len(per_run) == 1:
        return {role: Path(path) for role, path in per_run[0].items()}
    return {f"{role}_{i}": Path(path) for i, files in enumerate(per_run, 1)
            for role, path in files.items()}


def _volume_run_files(bold: str | Path, table: str | Path, data: BoldData) -> dict[str, Any]:
    files = {"bold": bold, "confounds": table}
    return files if data.mask_path is None else files | {"mask": data.mask_path}


@fill_doc
def load_and_clean(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    cleaning: BoldCleaningParameters | None = None,
    *,
    mask: str | Path | Sequence[str | Path] | None = None,
    space: str | None = None,
    t_r: float | None = None,
    n_jobs: int | None = None,
) -> CleanedScan:
    """Load, validate and clean one scan, or several runs of one session.

    Each run is loaded with :func:`tmsnet.io.fmriprep.load_bold`, cleaned on
    its own with :func:`tmsnet.fmri.cleaning.clean_bold` (confounds, global
    signal, band-pass, smoothing, standardization), then the runs are
    concatenated in time on the voxels all their brain masks share.

    Parameters
    ----------
    %(bold)s
    %(confounds)s
    cleaning : BoldCleaningParameters, optional
        The cleaning (default: its defaults).
    %(mask)s
    %(space)s
    %(t_r)s
    %(n_jobs_smoothing)s

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
    cleaning = BoldCleaningParameters() if cleaning is None else cleaning
    bolds, tables = as_list(bold), as_list(confounds)
    masks = as_list(mask) or [None] * len(bolds)
    if not bolds or len(bolds) != len(tables) or len(masks) != len(bolds):
        raise InvalidParameterError(
            f"Give one confounds file (and at most one mask) per BOLD run: got {len(bolds)} BOLD, "
            f"{len(tables)} confounds and {len(as_list(mask))} mask files."
        )
    loaded: list[BoldData] = []
    cleaned_runs, infos, frames, table_list = [], [], [], []
    excluded = {"nan": 0, "constant": 0}
    for path, table_path, mask_path in zip(bolds, tables, masks, strict=True):
        data = load_bold(path, mask_path=mask_path, space=space, t_r=t_r)
        if loaded:
            _check_same_acquisition(data, loaded[0], path)
        table = load_confounds_table(table_path, n_frames=data.n_frames)
        cleaned, info = clean_bold(data, table, cleaning, n_jobs=n_jobs)
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
    pieces = []
    for data, cleaned in zip(loaded, cleaned_runs, strict=True):
        keep = common[data.mask]
        pieces.append(cleaned if keep.all() else cleaned[:, keep])
    del cleaned_runs
    record = dict(infos[0])
    entities = parse_entities(bolds[0])
    if len(loaded) > 1:
        record["runs"] = infos
        record["n_runs"] = len(loaded)
        record["run_concatenation"] = "each run cleaned and standardized, then concatenated"
        entities.pop("run", None)
    return CleanedScan(
        data=pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=0),
        grid=BrainGrid(first.reference, common),
        space=first.space,
        t_r=float(first.t_r),
        run_lengths=frames,
        n_frames=int(sum(d.n_frames for d in loaded)),
        confounds=pd.concat(table_list, ignore_index=True),
        cleaning=record,
        inputs=run_inputs([_volume_run_files(b, t, d) for b, t, d in zip(bolds, tables, loaded,
                                                                          strict=True)]),
        entities=entities,
        n_voxels_excluded=excluded,
    )


@dataclass
class _Regions:
    """The seed, search region and method inputs of one scan, and the context built on them."""

    context: TargetingContext
    seed3d: np.ndarray
    search3d: np.ndarray
    seed_info: dict[str, Any]
    search_info: dict[str, Any]
    records: dict[str, Any]
    inputs: dict[str, Path]
    unavailable: dict[str, str] = field(default_factory=dict)


def _configured_by_user(parameters: TargetingParameters, name: str) -> bool:
    """Whether options only ``name`` reads among the default methods differ from their defaults."""
    others = {cls for kind in DEFAULT_METHOD_ORDER.values() for other in kind if other != name
              for cls in method_spec(other).options}
    return any(obj != type(obj)() for obj in parameters.options_for(name) if type(obj) not in others)


def _regions_and_context(scan: CleanedScan, parameters: TargetingParameters) -> _Regions:
    """Seed and search masks, each method's prepared inputs, and the shared context.

    When the job chooses the method, a candidate whose inputs cannot be loaded for this scan
    (the bundled group seedmap is in another space, say) is left out with the reason, unless
    the user set its own options (``--seedmap``): then the error is raised as for an explicit
    method.
    """
    grid = scan.grid
    seed3d, seed_info = seed_mask(grid.reference, grid.mask, parameters.seed_region)
    search3d, search_info = dlpfc_search_mask(grid.reference, grid.mask, parameters.search_region)
    # Every method that loads inputs has its record key (None when it does not run).
    records: dict[str, Any] = {name: None for name in available_methods()
                               if method_spec(name).prepare is not None}
    context_fields: dict[str, Any] = {}
    inputs: dict[str, Path] = {}
    unavailable: dict[str, str] = {}
    for name in parameters.methods_to_prepare("volume"):
        spec = method_spec(name)
        if spec.prepare is not None:
            try:
                prepared = spec.prepare(grid, scan.space, *parameters.options_for(name))
            except TmsnetError as error:
                if not parameters.chooses_method or _configured_by_user(parameters, name):
                    raise
                unavailable[name] = str(error)
                continue
            context_fields.update(prepared.context_fields)
            records[name] = prepared.record
            inputs.update(prepared.inputs)
    context = TargetingContext(
        data=scan.data, brain_mask=grid.mask, affine=grid.affine,
        seed_voxels=seed3d[grid.mask], search_voxels=search3d[grid.mask], space=scan.space,
        **context_fields,
    )
    return _Regions(context, seed3d, search3d, seed_info, search_info, records, inputs,
                    unavailable)


def choose_method(context: TargetingContext, parameters: TargetingParameters,
                  unavailable: Mapping[str, str] | None = None) -> Target:
    """The default job's one target: the first of :data:`DEFAULT_METHOD_ORDER` that runs.

    The order depends on the kind of scan (``context.surface`` set: ``"surface"``, else
    ``"volume"``). A method is passed over when its inputs could not be loaded for this
    scan (``unavailable``: name -> why) or when it finds no target (EmptyRegionError), or
    cannot run on this context (InvalidParameterError: e.g. no group seedmap); the next is
    tried.

    Parameters
    ----------
    context : TargetingContext
        The scan's cleaned data and regions (volume or surface).
    parameters : TargetingParameters
        The job's parameters; the methods' options come from them.
    unavailable : mapping, optional
        Methods whose inputs could not be prepared, with the reason.

    Returns
    -------
    Target
        With ``details["method_choice"]``: ``rule`` (``"auto"``), ``scan_kind``,
        ``order``, ``method`` (the one used), ``passed_over`` (name -> why) and
        ``reason`` (one sentence saying why this method was used).

    Raises
    ------
    EmptyRegionError
        If none of the methods finds a target.
    """
    kind = "volume" if context.surface is None else "surface"
    order = DEFAULT_METHOD_ORDER[kind]
    passed_over = {name: why for name, why in (unavailable or {}).items() if name in order}
    for name in order:
        if name in passed_over:
            continue
        try:
            target = method_spec(name).function(context, *parameters.options_for(name))
        except (EmptyRegionError, InvalidParameterError) as error:
            passed_over[name] = str(error)
            continue
        target.details["method_choice"] = {
            "rule": AUTO_METHOD, "scan_kind": kind, "order": list(order), "method": name,
            "passed_over": passed_over, "reason": _choice_reason(kind, order, name, passed_over)}
        return target
    raise EmptyRegionError("None of the default methods found a target: "
                           + "; ".join(f"{k}: {v}" for k, v in passed_over.items()))


def _choice_reason(kind: str, order: Sequence[str], name: str, passed_over: Mapping[str, str]
                   ) -> str:
    """The sentence of ``method_choice``: why ``name`` gave the target of this scan."""
    if name == order[0]:
        return f"Method {name} was used because {DEFAULT_METHOD_REASONS[kind]}."
    skipped = "; ".join(f"{k}: {v}" for k, v in passed_over.items())
    return (f"Method {name} was used because {order[0]}, the first default method for {kind} "
            f"scans, could not be used on this scan ({skipped}).")


def run_methods(context: TargetingContext, parameters: TargetingParameters,
                step: Callable[[str], None] = lambda _: None, done: Callable[[], Any] = lambda: None,
                unavailable: Mapping[str, str] | None = None,
                ) -> tuple[list[Target], dict[str, str]]:
    """Every method on the same context; with several, one that finds nothing is recorded.

    ``step(label)`` and ``done()`` report progress (a tqdm bar's, or nothing). When the
    job chooses the method (``parameters.chooses_method``), the one target of
    :func:`choose_method` (``unavailable``: see there).
    """
    if parameters.chooses_method:
        step(f"method {AUTO_METHOD}")
        target = choose_method(context, parameters, unavailable)
        done()
        return [target], {}
    targets: list[Target] = []
    failed: dict[str, str] = {}
    for name in parameters.methods:
        step(f"method {name}")
        try:
            targets.append(method_spec(name).function(context, *parameters.options_for(name)))
        except EmptyRegionError as error:
            if len(parameters.methods) == 1:
                raise
            failed[name] = str(error)
        done()
    if not targets:
        raise EmptyRegionError(
            "No method found a target: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        )
    return targets, failed


def scan_effective_dof(cleaning: dict[str, Any]) -> float:
    """Effective degrees of freedom of a cleaned scan: the sum over its runs."""
    runs = cleaning.get("runs") or [cleaning]
    return float(sum(run["effective_dof"] for run in runs))


def dof_warning(scan: Any, uncertainty: dict[str, MethodUncertainty]) -> list[str]:
    """Too few degrees of freedom, said once even when no bootstrap ran (it says it otherwise)."""
    dof = scan_effective_dof(scan.cleaning)
    if dof >= MIN_EFFECTIVE_DOF or uncertainty:
        return []
    return [f"Too little data: {dof:.0f} independent time courses are left after cleaning (at "
            f"least {MIN_EFFECTIVE_DOF:.0f} are needed to estimate a target's uncertainty); treat "
            f"the target as unreliable and acquire at least about "
            f"{np.ceil(minutes_for_effective_dof(scan.cleaning)):.0f} min."]


def job_warnings(scan_warnings: list[str], targets: list[Target], failed: dict[str, str],
                 uncertainty: dict[str, MethodUncertainty]) -> list[str]:
    """The job's plain-language warnings: the scan's, failed methods, weak targets, stability."""
    warnings_ = list(scan_warnings)
    for name, message in failed.items():
        warnings_.append(f"Method {name} found no target: {message}")
    weak = [t.method for t in targets if t.r_at_target > -0.1]
    if weak:
        warnings_.append(
            f"Weak anticorrelation at the target ({', '.join(weak)}: r > -0.1): the sgACC "
            "signal may be too noisy in this scan for a reliable personalized target."
        )
    for name, u in uncertainty.items():
        if u.advice is not None and not u.advice["stable"]:
            warnings_.append(f"Target stability ({name}): {u.advice['message']}")
    return warnings_


def _job_record(scan: CleanedScan, regions: _Regions, parameters: TargetingParameters,
                targets: list[Target], failed: dict[str, str]) -> dict[str, Any]:
    """Every parameter of the job as recorded in each sidecar."""
    record = {
        "methods": list(parameters.methods),
        "failed_methods": failed,
        "method_options": {target.method: target.parameters for target in targets},
        "cleaning": scan.cleaning,
        "seed": regions.seed_info,
        "search_region": regions.search_info,
        **regions.records,
        "uncertainty": parameters.uncertainty.record(scan.t_r),
        "run_lengths": scan.run_lengths,
        "space": scan.space,
        "coordinate_space_note": PUBLISHED_COORDINATE_NOTE.format(space=scan.space),
        "excluded_voxels": scan.n_voxels_excluded,
        "n_brain_voxels": int(scan.grid.n_voxels),
    }
    if parameters.chooses_method:  # explicit methods keep their record as it was
        record["method_choice"] = targets[0].details.get("method_choice")
    return record


@fill_doc
def compute_targets(
    bold: str | Path | Sequence[str | Path],
    confounds: str | Path | Sequence[str | Path],
    parameters: TargetingParameters | None = None,
    *,
    mask: str | Path | Sequence[str | Path] | None = None,
    space: str | None = None,
    t_r: float | None = None,
    n_jobs: int | None = None,
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
    %(bold)s
    %(confounds)s
    %(targeting_parameters)s
    %(mask)s
    %(space)s
    %(t_r)s
    %(n_jobs_smoothing)s
    %(progress)s

    Returns
    -------
    TargetingResult
    """
    parameters = TargetingParameters() if parameters is None else parameters
    validate_type(parameters, TargetingParameters, "parameters")
    steps = ["load and clean", "regions", "connectivity", *parameters.methods]
    if parameters.uncertainty.n_bootstrap:
        steps += [f"uncertainty {name}" for name in parameters.methods]
    bar = tqdm(total=len(steps), desc="tmsnet target", unit="step", file=sys.stderr,
               disable=not progress, leave=False)
    try:
        bar.set_postfix_str("loading and cleaning")
        scan = load_and_clean(bold, confounds, parameters.cleaning, mask=mask, space=space,
                              t_r=t_r, n_jobs=n_jobs)
        bar.update()
        bar.set_postfix_str("seed and search region")
        regions = _regions_and_context(scan, parameters)
        bar.update()
        bar.set_postfix_str("seed connectivity")
        regions.context.seed_connectivity()
        bar.update()
        targets, failed = run_methods(regions.context, parameters, bar.set_postfix_str,
                                       bar.update, regions.unavailable)
        uncertainty = estimate_uncertainty(regions.context, scan, targets, parameters, bar,
                                           n_jobs=available_workers(n_jobs))
    finally:
        bar.close()
    return _assemble_result(scan, regions, parameters, targets, failed, uncertainty)


def estimate_uncertainty(context: TargetingContext, scan: Any, targets: list[Target],
                         parameters: TargetingParameters, bar: Any = None, n_jobs: int = 1,
                         ) -> dict[str, MethodUncertainty]:
    """Each target's bootstrap, split-half and scan-length advice (none when n_bootstrap is 0).

    ``scan`` needs ``t_r``, ``run_lengths`` and ``cleaning`` (a volume's
    :class:`CleanedScan` or a surface scan); ``bar`` is an optional tqdm bar; ``n_jobs``
    processes may share the resamples (:func:`~tmsnet.targeting.uncertainty.bootstrap_cloud`).
    """
    uncertainty: dict[str, MethodUncertainty] = {}
    for target in targets if parameters.uncertainty.n_bootstrap else []:
        if bar is not None:
            bar.set_postfix_str(f"uncertainty {target.method}")
        uncertainty[target.method] = method_uncertainty(
            context, target, t_r=scan.t_r, options=parameters.options_for(target.method),
            run_lengths=scan.run_lengths, parameters=parameters.uncertainty,
            effective_dof=scan_effective_dof(scan.cleaning),
            minutes_for_min_dof=minutes_for_effective_dof(scan.cleaning), n_jobs=n_jobs,
        )
        target.details["uncertainty"] = uncertainty[target.method].summary
        target.details["scan_length_advice"] = uncertainty[target.method].advice
        if bar is not None:
            bar.update()
    return uncertainty


def _assemble_result(scan: CleanedScan, regions: _Regions, parameters: TargetingParameters,
                     targets: list[Target], failed: dict[str, str],
                     uncertainty: dict[str, MethodUncertainty]) -> TargetingResult:
    """QC, warnings, inputs and the parameter record around the targets."""
    qc, fd, scan_warnings = scan_qc(scan.confounds, t_r=scan.t_r,
                                    n_frames_used=int(scan.data.shape[0]), n_frames=scan.n_frames)
    inputs = dict(scan.inputs)
    for role, path in (("seed_roi", parameters.seed_region.seed_roi),
                       ("search_roi", parameters.search_region.search_roi)):
        if path is not None:
            inputs[role] = Path(path)
    inputs.update(regions.inputs)
    return TargetingResult(
        targets=targets,
        space=scan.space,
        grid=scan.grid,
        seed_mask=regions.seed3d,
        search_mask=regions.search3d,
        entities=scan.entities,
        parameters=_job_record(scan, regions, parameters, targets, failed),
        inputs=inputs,
        qc=qc,
        framewise_displacement=fd,
        warnings=job_warnings(scan_warnings + dof_warning(scan, uncertainty), targets, failed,
                               uncertainty),
        comparison=distances_to_references(targets[0].coordinate_mm),
        uncertainty=uncertainty,
        seed_connectivity_r=regions.context.seed_connectivity(),
    )
