"""How much to trust a target: block bootstrap, split-half and scan-length advice.

A target is a statistic of a noisy scan. Resampling the scan's own frames shows
how far the target would move with another stretch of the same person's data:

* **Block bootstrap over time** (Künsch 1989, moving blocks): draw blocks of
  ``block_frames`` contiguous frames (never crossing a run boundary) with
  replacement until the resample is as long as the scan, rerun the method, and
  collect the cloud of targets. Blocks keep the temporal autocorrelation of
  the band-passed data inside each block (default length 30 s). Summaries:
  median distance to the point estimate, the 95th percentile of those
  distances (the *95 % radius*) and the share of resamples within 10 mm.
* **Split-half**: the method on the first and on the second half of the frames,
  and the distance between the two targets (a test-retest proxy).
* **Effective degrees of freedom**: band-pass and confound regression leave a
  scan fewer independent time courses than frames (``effective_dof`` of the
  cleaning record; 2.4 for 64 frames of TR 2 s with 27 regressors, 74 for 300).
  Resampling frames cannot create information the cleaning removed: below
  :data:`MIN_EFFECTIVE_DOF` every resample sees the same few components and
  the radius is falsely small (issue 14: "stable to 4.5 mm" 15 mm from the
  truth). There the advice says so and never reports the target as stable.
* **Scan-length advice**: the same bootstrap on the first 25/50/75/100 % of
  the frames gives the 95 % radius as a function of scan minutes; the law
  ``radius = a * minutes ** -1/2`` (the sampling error of a correlation falls
  as the square root of the number of frames), anchored at the full scan's
  radius, gives the minutes needed for the radius to fall to a tolerance (5 mm
  by default); the curve checks the law (``curve_exponent``). A piece whose share of
  the effective degrees of freedom is below :data:`MIN_EFFECTIVE_DOF` (the first 25 % of
  a 10-min scan: about 18) is listed without a radius and not resampled: its radius
  would be falsely small, as the scan's own would be.

Every resample reuses the cleaned data of the point estimate (no reload, no
re-cleaning): a resample is a frame index into the cleaned array, restricted to
the voxels the methods read (seed and search region; the seedmap-weighted seed
is linear in the frames and is resampled with them). The runs themselves, all of
them in one pool of processes for a method that reclusters every resample, are
:mod:`tmsnet.targeting.resampling`'s.

References: REFERENCES.md section 1 ("Reliability facts to beat": Ning 2019,
Cash 2021, Cao 2024).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.targeting.methods import TargetingContext, method_arguments
from tmsnet.targeting.resampling import Found, Piece, targets_of
from tmsnet.targeting.results import MethodUncertainty, Target
from tmsnet.utils.params import Parameters, param

#: Default bootstrap block length in seconds (converted to frames with the TR).
DEFAULT_BLOCK_S = 30.0
#: Default fractions of the scan for the scan-length curve.
DEFAULT_SCAN_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
#: Default stability tolerance of the scan-length advice (mm).
DEFAULT_TOLERANCE_MM = 5.0
#: Fewest whole blocks the scan must hold for a block bootstrap: with fewer, the
#: resamples are near copies of the scan and the radius shrinks towards 0 mm.
MIN_BOOTSTRAP_BLOCKS = 4
#: Fewest effective degrees of freedom (independent time courses left by the cleaning)
#: for which the bootstrap radius is reported as a stability; calibrated in
#: benchmarks/bench_short_scans.py (coverage of the planted truth against the dof).
MIN_EFFECTIVE_DOF = 30.0
#: A scan-length curve whose radius falls more slowly than minutes ** this (the law: -0.5)
#: makes the 1/sqrt(minutes) advice a lower bound, and the message says so.
SLOW_DECLINE_EXPONENT = -0.25
#: Beyond this many minutes the advice says "more than N hours" rather than a number
#: (an a/sqrt(minutes) extrapolation that far is not a scanning plan).
MAX_ADVISED_MINUTES = 120.0
#: Radius (mm) for the "share of resamples within" summary.
WITHIN_MM = 10.0
#: Shortest piece (frames) a method is run on.
MIN_FRAMES_PER_PIECE = 20


def _fractions(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        fractions = tuple(float(f) for f in value)
    except (TypeError, ValueError):
        fractions = ()
    if not fractions or not all(0 < f <= 1 for f in fractions):
        raise InvalidParameterError(
            f"scan_length_fractions must be fractions in (0, 1] (or None to skip the scan-length "
            f"advice), got {value!r}.")
    return fractions


@dataclass(frozen=True)
class UncertaintyParameters(Parameters):
    """How each target's uncertainty is estimated (block bootstrap, split-half, scan-length advice)."""

    n_bootstrap: int = param(100, low=0,
                             help="block-bootstrap resamples per method (0 = no uncertainty)", high=100_000)
    bootstrap_block_frames: int | None = param(
        None, kind="int", low=1, allow_none=True,
        help="bootstrap block length in frames (default: 30 s worth)", high=100_000)
    scan_length_advice: bool = param(
        True, flag="--no-scan-length",
        help="scan-length advice (bootstrap of 25/50/75% of the scan)")
    scan_length_fractions: tuple | None = param(
        DEFAULT_SCAN_FRACTIONS, cli=False, kind="any", allow_none=True,
        help="fractions of the scan for the scan-length advice (None skips it)")
    scan_length_resamples: int | None = param(
        None, cli=False, kind="int", low=1, allow_none=True,
        help="resamples per scan fraction (default: max(10, n_bootstrap // 2))", high=100_000)
    stability_tolerance_mm: float = param(
        DEFAULT_TOLERANCE_MM, flag="--stability-tolerance", low=0, low_inclusive=False,
        units="mm", help="scan-length advice: 95% radius wanted", high=100)
    random_seed: int = param(0, help="seed of the bootstrap (same seed, same result)", low=0, high=2**32 - 1)

    def check(self) -> None:
        """Scan fractions in (0, 1]."""
        object.__setattr__(self, "scan_length_fractions", _fractions(self.scan_length_fractions))

    @property
    def fractions(self) -> tuple[float, ...] | None:
        """The scan fractions in effect (None when the advice is off)."""
        return self.scan_length_fractions if self.scan_length_advice else None

    def block_frames(self, t_r: float) -> int:
        """The block length in frames for a scan of repetition time ``t_r`` (s)."""
        if self.bootstrap_block_frames is None:
            return default_block_frames(t_r)
        return int(self.bootstrap_block_frames)

    def record(self, t_r: float) -> dict[str, Any]:
        """What the result's parameters record about the uncertainty estimate."""
        fractions = self.fractions
        return {
            "n_bootstrap": int(self.n_bootstrap),
            "block_frames": self.block_frames(t_r),
            "scan_length_fractions": None if fractions is None else [float(f) for f in fractions],
            "stability_tolerance_mm": float(self.stability_tolerance_mm),
            "random_seed": int(self.random_seed),
            "method": "moving-block bootstrap over time (blocks within runs); split-half; "
                      "radius = a / sqrt(minutes) fit for the scan-length advice",
        }


def default_block_frames(t_r: float, *, block_s: float = DEFAULT_BLOCK_S) -> int:
    """Bootstrap block length in frames: ``block_s`` seconds, at least 2 frames."""
    if t_r <= 0:
        raise InvalidParameterError(f"t_r must be > 0 s, got {t_r}.")
    return max(2, int(round(block_s / t_r)))


def block_bootstrap_indices(
    run_lengths: Sequence[int],
    *,
    block_frames: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Frame indices of one moving-block bootstrap resample.

    Parameters
    ----------
    run_lengths : sequence of int
        Frames of each run, in the order they are concatenated; blocks never
        cross a run boundary.
    block_frames : int
        Frames per block (a run shorter than that is one block).
    rng : numpy.random.Generator
        Source of the block starts.

    Returns
    -------
    ndarray of int, shape (sum(run_lengths),)
    """
    if block_frames < 1:
        raise InvalidParameterError(f"block_frames must be >= 1, got {block_frames}.")
    lengths = np.asarray(run_lengths, dtype=int)
    total = int(lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    starts, block_of = [], []  # every possible block start, and that block's length
    for offset, length in zip(offsets, lengths, strict=True):
        b = min(block_frames, length)
        starts.append(offset + np.arange(length - b + 1))
        block_of.append(np.full(length - b + 1, b))
    all_starts, block_of = np.concatenate(starts), np.concatenate(block_of)
    pieces = []
    n = 0
    while n < total:
        k = int(rng.integers(all_starts.size))
        piece = np.arange(all_starts[k], all_starts[k] + block_of[k])
        pieces.append(piece)
        n += piece.size
    return np.concatenate(pieces)[:total]


def analysis_voxels(context: TargetingContext) -> np.ndarray:
    """Brain voxels the methods read: the seed and the search region."""
    return context.seed_voxels | context.search_voxels


def analysis_context(context: TargetingContext) -> TargetingContext:
    """The context restricted to :func:`analysis_voxels` (itself if it already is)."""
    keep = analysis_voxels(context)
    return context if keep.all() else context.subset(voxels=keep)


def _distances(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.sqrt(((points - centre) ** 2).sum(axis=1)) if points.size else np.zeros(0)


def _frames_of(run_lengths: Sequence[int], fraction: float) -> list[int]:
    """The first ``fraction`` of every run (so every run contributes)."""
    return [max(1, int(round(length * fraction))) for length in run_lengths]


def _take_first(run_lengths: Sequence[int], kept: Sequence[int]) -> np.ndarray:
    offsets = np.concatenate([[0], np.cumsum(run_lengths)[:-1]])
    return np.concatenate([o + np.arange(k) for o, k in zip(offsets, kept, strict=True)])


def _run_lengths(context: TargetingContext, run_lengths: Sequence[int] | None) -> list[int]:
    lengths = [int(context.data.shape[0])] if run_lengths is None else [int(n) for n in run_lengths]
    if sum(lengths) != context.data.shape[0]:
        raise InvalidParameterError(
            f"run_lengths sum to {sum(lengths)} but the data have {context.data.shape[0]} frames."
        )
    return lengths


def _bootstrap_piece(lengths: Sequence[int], *, n_resamples: int, block_frames: int,
                     random_seed: int, frames: np.ndarray | None = None,
                     point: bool = False) -> Piece:
    """A piece and its ``n_resamples`` block-bootstrap draws (seeded by ``random_seed``)."""
    if n_resamples < 1:
        raise InvalidParameterError(f"n_resamples must be >= 1, got {n_resamples}.")
    rng = np.random.default_rng(random_seed)
    draws = [block_bootstrap_indices(lengths, block_frames=block_frames, rng=rng)
             for _ in range(n_resamples)]
    return Piece(frames=frames, draws=draws, point=point)


def _cloud(values: list[Found]) -> pd.DataFrame:
    rows = [{"resample": k, "x": f[0], "y": f[1], "z": f[2], "r_at_target": f[3]}
            for k, f in enumerate(values) if f is not None]
    return pd.DataFrame(rows, columns=["resample", "x", "y", "z", "r_at_target"])


def _point(value: Found) -> np.ndarray | None:
    return None if value is None else np.asarray(value[:3], dtype=float)


def bootstrap_cloud(
    context: TargetingContext,
    method: str,
    *,
    options: Sequence[Any] = (),
    run_lengths: Sequence[int] | None = None,
    n_resamples: int = 100,
    block_frames: int = 15,
    random_seed: int = 0,
    compute_point: bool = True,
    progress: bool = False,
    n_jobs: int = 1,
) -> tuple[np.ndarray | None, pd.DataFrame, int]:
    """Point estimate and bootstrap cloud of one method's target.

    Parameters
    ----------
    context : TargetingContext
        Cleaned data of the scan (any number of voxels; only the seed and
        search region are used).
    method : str
        Registered method name.
    options : sequence of Parameters
        The method's options objects (see
        :func:`tmsnet.targeting.methods.method_arguments`; missing ones take
        their defaults).
    run_lengths : sequence of int, optional
        Frames per run (default: one run of all frames).
    n_resamples : int
        Bootstrap resamples (>= 1).
    block_frames : int
        Frames per block.
    random_seed : int
        Seed of the resampling (same seed, same cloud).
    compute_point : bool
        Also run the method on all frames (False when the caller has the
        point estimate already).
    progress : bool
        Show a progress bar on stderr.
    n_jobs : int
        Processes forked for the resamples of a method that recomputes everything on each
        (hierarchical; :func:`tmsnet.targeting.resampling.targets_of`). The methods that read
        batched seed maps (:data:`~tmsnet.targeting.resampling.RESAMPLED_MAPS`) run here.
        The cloud is the same.

    Returns
    -------
    point_mm : ndarray, shape (3,) or None
        Target on all frames (None if the method finds none or
        ``compute_point`` is False).
    cloud : pandas.DataFrame
        Columns ``resample``, ``x``, ``y``, ``z``, ``r_at_target``.
    n_failed : int
        Resamples where the method found no target.
    """
    options = method_arguments(method, options)
    piece = _bootstrap_piece(_run_lengths(context, run_lengths), n_resamples=n_resamples,
                             block_frames=block_frames, random_seed=random_seed,
                             point=compute_point)
    [(point, values)] = targets_of(method, analysis_context(context), options, [piece],
                                   n_jobs=n_jobs, progress=progress)
    cloud = _cloud(values)
    return _point(point), cloud, n_resamples - len(cloud)


def cloud_summary(cloud: pd.DataFrame, point_mm: np.ndarray, *, n_resamples: int,
                  within_mm: float = WITHIN_MM) -> dict[str, Any]:
    """Median distance, 95 % radius and share within ``within_mm`` of a target cloud."""
    d = _distances(cloud[["x", "y", "z"]].to_numpy(float), np.asarray(point_mm, float))
    n_ok = int(d.size)
    return {
        "n_resamples": int(n_resamples),
        "n_failed": int(n_resamples - n_ok),
        "median_distance_mm": float(np.median(d)) if n_ok else None,
        "p95_radius_mm": float(np.percentile(d, 95)) if n_ok else None,
        "share_within_10mm": float(np.mean(d <= within_mm)) if n_ok else None,
    }


def _half_pieces(lengths: Sequence[int]) -> list[Piece]:
    """The first and the second half of every run, pooled (none when too short)."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    first = np.concatenate([o + np.arange(n // 2) for o, n in zip(offsets, lengths, strict=True)])
    second = np.concatenate([o + np.arange(n // 2, n) for o, n in zip(offsets, lengths, strict=True)])
    if first.size < MIN_FRAMES_PER_PIECE:
        return []
    return [Piece(frames=first, point=True), Piece(frames=second, point=True)]


def _split_half_summary(values: list[tuple[Found, list[Found]]]) -> dict[str, Any]:
    if not values:
        return {"split_half_distance_mm": None, "split_half_first_mm": None, "split_half_second_mm": None}
    a, b = (_point(point) for point, _ in values)
    return {
        "split_half_distance_mm": None if a is None or b is None else float(np.linalg.norm(a - b)),
        "split_half_first_mm": None if a is None else [float(v) for v in a],
        "split_half_second_mm": None if b is None else [float(v) for v in b],
    }


def split_half(
    context: TargetingContext,
    method: str,
    *,
    options: Sequence[Any] = (),
    run_lengths: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Targets of the first and second half of the frames and their distance (mm).

    With several runs, each run is halved and the first halves are pooled
    against the second halves.
    """
    options = method_arguments(method, options)
    pieces = _half_pieces(_run_lengths(context, run_lengths))
    return _split_half_summary(targets_of(method, analysis_context(context), options, pieces))


@dataclass(frozen=True)
class _CurveStep:
    """One row of the scan-length curve: a first part of the scan, resampled or not."""

    fraction: float
    kept: list[int]
    piece_dof: float | None
    piece: Piece | None  # None: too few degrees of freedom to resample


def piece_effective_dof(effective_dof: float | None, n_frames: int, n_piece: int) -> float | None:
    """Effective degrees of freedom of ``n_piece`` of the ``n_frames`` cleaned frames.

    The cleaning's dof spread evenly over its frames: ``effective_dof * n_piece / n_frames``.
    The exact value, that of the cleaning operator's rows of the piece, differs by the
    filter's edge effects and by how the confounds' loss falls on the piece: measured for
    the first 25/50/75 % of 150-600 frames at TR 2 s (0.01-0.1 Hz, 0-36 regressors), the
    share lies within 20 % of it wherever the exact value is 25 or more, near the floor of
    :data:`MIN_EFFECTIVE_DOF` (18.2 exact against
    17.8 for the first 75 of 300 frames of the sample subject's cleaning;
    ``tests/test_scan_length_pieces.py``). It decides only which pieces of the
    scan-length curve are resampled, not the scan's own advice (its dof is exact).
    """
    return None if effective_dof is None else float(effective_dof) * n_piece / n_frames


def _curve_steps(lengths: Sequence[int], fractions: Sequence[float], *, n_resamples: int,
                 block_frames: int, random_seed: int,
                 effective_dof: float | None) -> list[_CurveStep]:
    """The pieces of the scan-length curve (first ``fraction`` of every run)."""
    fractions = sorted({float(f) for f in fractions})
    if not fractions or fractions[0] <= 0 or fractions[-1] > 1:
        raise InvalidParameterError(f"fractions must lie in (0, 1], got {fractions}.")
    steps = []
    for i, fraction in enumerate(fractions):
        kept = _frames_of(lengths, fraction)
        if sum(kept) < MIN_FRAMES_PER_PIECE:
            continue
        dof = piece_effective_dof(effective_dof, sum(lengths), sum(kept))
        piece = None if dof is not None and dof < MIN_EFFECTIVE_DOF else _bootstrap_piece(
            kept, n_resamples=n_resamples, block_frames=min(block_frames, max(kept)),
            random_seed=random_seed + 1000 * (i + 1), frames=_take_first(lengths, kept),
            point=True)
        steps.append(_CurveStep(fraction=fraction, kept=kept, piece_dof=dof, piece=piece))
    return steps


#: Columns of the scan-length curve.
CURVE_COLUMNS = ["fraction", "n_frames", "minutes", "effective_dof", "p95_radius_mm",
                 "median_distance_mm", "n_failed"]


def _curve_row(step: _CurveStep, values: tuple[Found, list[Found]] | None, t_r: float) -> dict:
    p95 = median = None
    n_failed = 0
    if values is not None:
        point, cloud = _point(values[0]), _cloud(values[1])
        n_failed = len(values[1]) - len(cloud)
        if point is not None and not cloud.empty:
            d = _distances(cloud[["x", "y", "z"]].to_numpy(float), point)
            p95, median = float(np.percentile(d, 95)), float(np.median(d))
    return {"fraction": step.fraction, "n_frames": int(sum(step.kept)),
            "minutes": sum(step.kept) * t_r / 60.0, "effective_dof": step.piece_dof,
            "p95_radius_mm": p95, "median_distance_mm": median, "n_failed": int(n_failed)}


def _curve(steps: list[_CurveStep], values: list[tuple[Found, list[Found]]], t_r: float
           ) -> pd.DataFrame:
    """The curve's rows from the targets of the resampled steps (in order)."""
    found = iter(values)
    rows = [_curve_row(step, None if step.piece is None else next(found), t_r) for step in steps]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def scan_length_curve(
    context: TargetingContext,
    method: str,
    *,
    t_r: float,
    options: Sequence[Any] = (),
    run_lengths: Sequence[int] | None = None,
    fractions: Sequence[float] = DEFAULT_SCAN_FRACTIONS,
    n_resamples: int = 50,
    block_frames: int = 15,
    random_seed: int = 0,
    effective_dof: float | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """The bootstrap 95 % radius on shortened copies of the scan.

    Each copy keeps the first ``fraction`` of the frames of every run; its
    point estimate and bootstrap cloud are computed on that copy alone
    (:func:`bootstrap_cloud`, with ``n_jobs``). A copy whose share of the scan's
    ``effective_dof`` (:func:`piece_effective_dof`) is below :data:`MIN_EFFECTIVE_DOF`
    is not resampled: its radius would be falsely small (the same floor as the
    scan's own advice), and its row has no radius.

    Returns
    -------
    pandas.DataFrame
        ``fraction``, ``n_frames``, ``minutes``, ``effective_dof`` (None when
        ``effective_dof`` is not given), ``p95_radius_mm``, ``median_distance_mm``,
        ``n_failed``.
    """
    options = method_arguments(method, options)
    steps = _curve_steps(_run_lengths(context, run_lengths), fractions, n_resamples=n_resamples,
                         block_frames=block_frames, random_seed=random_seed,
                         effective_dof=effective_dof)
    pieces = [step.piece for step in steps if step.piece is not None]
    values = targets_of(method, analysis_context(context), options, pieces, n_jobs=n_jobs)
    return _curve(steps, values, t_r)


def scan_length_advice(
    curve: pd.DataFrame,
    *,
    current_minutes: float,
    current_radius_mm: float | None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    effective_dof: float | None = None,
    minutes_for_min_dof: float | None = None,
) -> dict[str, Any]:
    """Minutes of scan needed for the 95 % radius to reach ``tolerance_mm``.

    The sampling error of a correlation falls as the square root of the number of
    frames, so ``radius = a / sqrt(minutes)``, anchored at the full scan's own
    measurement (``a = radius * sqrt(current_minutes)``): the advice can never
    contradict the radius it is printed beside (5.3 mm at 10 min gives 11.2 min
    for 5 mm). The shorter pieces of the scan-length curve are a check of that law:
    ``curve_exponent`` is the fitted slope of log radius on log minutes (-0.5 when
    the law holds); when the radius falls more slowly than the law (slope above
    -0.25) the advice says the estimate is a lower bound.

    Parameters
    ----------
    curve : pandas.DataFrame
        Output of :func:`scan_length_curve`.
    current_minutes : float
        Length of the scan used for the target (minutes).
    current_radius_mm : float or None
        95 % radius of the full scan's bootstrap.
    tolerance_mm : float
        Stability wanted (mm).
    effective_dof : float, optional
        Effective degrees of freedom of the cleaned scan; below
        :data:`MIN_EFFECTIVE_DOF` the target is never called stable.
    minutes_for_min_dof : float, optional
        Scan minutes that would give :data:`MIN_EFFECTIVE_DOF` (for the message).

    Returns
    -------
    dict
        ``tolerance_mm``, ``current_minutes``, ``stable_to_mm`` (the current 95 %
        radius; None when the scan cannot support it), ``required_minutes`` (None if
        the curve is unusable), ``additional_minutes`` (>= 0), ``effective_dof``,
        ``uncertainty_supported``, ``stable`` (bool) and ``message`` (one
        plain-language sentence for the report).
    """
    if tolerance_mm <= 0:
        raise InvalidParameterError(f"tolerance_mm must be > 0, got {tolerance_mm}.")
    if effective_dof is not None and effective_dof < MIN_EFFECTIVE_DOF:
        return _unsupported_advice(current_minutes, tolerance_mm, effective_dof,
                                   minutes_for_min_dof)
    exponent = _curve_exponent(curve)
    radius = current_radius_mm
    required = (None if radius is None or radius <= 0 or current_minutes <= 0
                else float(current_minutes * (radius / tolerance_mm) ** 2))
    stable = radius is not None and radius <= tolerance_mm
    additional = None if required is None else max(0.0, required - current_minutes)
    if radius is None:
        message = (f"This scan: {current_minutes:.1f} min; the target could not be resampled, so "
                   "its stability is unknown.")
    elif stable:
        message = (f"This scan: {current_minutes:.1f} min, stable to {radius:.1f} mm "
                   f"(95 % of resampled targets within {radius:.1f} mm; tolerance {tolerance_mm:g} mm).")
    elif additional is not None and required > MAX_ADVISED_MINUTES:
        message = (f"This scan: {current_minutes:.1f} min, stable to {radius:.1f} mm only. At this "
                   f"signal level more than {MAX_ADVISED_MINUTES / 60:.0f} hours of data would be "
                   f"needed for {tolerance_mm:g} mm (fit: about {required:.0f} min): treat the target "
                   "as uncertain and look at the bootstrap cloud, or compare methods.")
    elif additional is not None:
        slower = exponent is not None and exponent > SLOW_DECLINE_EXPONENT
        message = (f"This scan: {current_minutes:.1f} min, stable to {radius:.1f} mm only. For "
                   f"{tolerance_mm:g} mm, acquire {'at least' if slower else 'about'} "
                   f"{required:.0f} min in all: at least {np.ceil(additional):.0f} more minutes"
                   + (" (the radius fell more slowly than 1/sqrt(minutes) over this scan's "
                      "pieces, so more may be needed)." if slower else "."))
    else:
        message = (f"This scan: {current_minutes:.1f} min, stable to {radius:.1f} mm only; more "
                   "data are needed.")
    return {
        "tolerance_mm": float(tolerance_mm),
        "current_minutes": float(current_minutes),
        "stable_to_mm": None if radius is None else float(radius),
        "required_minutes": required,
        "additional_minutes": additional,
        "curve_exponent": exponent,
        "effective_dof": None if effective_dof is None else float(effective_dof),
        "uncertainty_supported": True,
        "stable": bool(stable),
        "message": message,
    }


def _curve_exponent(curve: pd.DataFrame) -> float | None:
    """Least-squares slope of log radius on log minutes over the scan-length curve."""
    ok = curve.dropna(subset=["p95_radius_mm"])
    ok = ok[(ok["p95_radius_mm"] > 0) & (ok["minutes"] > 0)]
    if len(ok) < 2 or np.ptp(np.log(ok["minutes"].to_numpy(float))) == 0:
        return None
    slope = np.polyfit(np.log(ok["minutes"].to_numpy(float)),
                       np.log(ok["p95_radius_mm"].to_numpy(float)), 1)[0]
    return float(slope)


def _unsupported_advice(current_minutes: float, tolerance_mm: float, effective_dof: float,
                        minutes_for_min_dof: float | None) -> dict[str, Any]:
    """The advice for a scan whose cleaning left too few degrees of freedom to resample."""
    more = ("" if minutes_for_min_dof is None else
            f" Acquire at least about {np.ceil(minutes_for_min_dof):.0f} min with these settings"
            " (more for a stable target).")
    message = (f"This scan: {current_minutes:.1f} min leaves only {effective_dof:.0f} independent "
               f"time courses after band-pass and confound regression (at least "
               f"{MIN_EFFECTIVE_DOF:.0f} are needed): its uncertainty cannot be estimated, so the "
               f"target is NOT known to be stable and may be far from the true one.{more}")
    return {
        "tolerance_mm": float(tolerance_mm),
        "current_minutes": float(current_minutes),
        "stable_to_mm": None,
        "required_minutes": minutes_for_min_dof,
        "additional_minutes": (None if minutes_for_min_dof is None
                               else max(0.0, minutes_for_min_dof - current_minutes)),
        "effective_dof": float(effective_dof),
        "uncertainty_supported": False,
        "stable": False,
        "message": message,
    }


def minutes_for_effective_dof(cleaning: dict[str, Any], dof: float = MIN_EFFECTIVE_DOF) -> float:
    """Scan minutes at which the cleaning of ``cleaning`` (a run's record) leaves ``dof``.

    A band-pass ``[f_low, f_high]`` keeps about ``2 (f_high - f_low) t_r`` of each frame's
    dimension (1 without a low-pass); the independent confounds then remove one each:
    ``dof(n) ~ beta n - k``, so ``n = (dof + k) / beta``. Within 10 % of the measured
    ``effective_dof`` from 150 to 300 frames at TR 2 s (tests/test_short_scans.py).
    """
    t_r = float(cleaning["t_r_s"])
    high = cleaning.get("low_pass_hz") or 0.5 / t_r
    low = cleaning.get("high_pass_hz") or 0.0
    beta = min(1.0, 2.0 * (high - low) * t_r)
    k = float(cleaning.get("n_confounds_independent") or 0)
    return (dof + k) / beta * t_r / 60.0


def check_block_count(block_frames: int, run_lengths: Sequence[int]) -> int:
    """Refuse a bootstrap block length that leaves fewer than :data:`MIN_BOOTSTRAP_BLOCKS` blocks.

    Parameters
    ----------
    block_frames : int
        Block length (frames).
    run_lengths : sequence of int
        Frames of each run (blocks never cross a run boundary).

    Returns
    -------
    int
        The number of whole blocks the runs hold.

    Raises
    ------
    InvalidParameterError
        If the runs hold fewer than :data:`MIN_BOOTSTRAP_BLOCKS` whole blocks.
    """
    n_blocks = int(sum(length // block_frames for length in run_lengths))
    if n_blocks < MIN_BOOTSTRAP_BLOCKS:
        longest = max(1, max(run_lengths) // MIN_BOOTSTRAP_BLOCKS)
        raise InvalidParameterError(
            f"--bootstrap-block-frames {block_frames} leaves {n_blocks} whole block(s) in a scan of "
            f"{sum(run_lengths)} frames; the block bootstrap needs at least {MIN_BOOTSTRAP_BLOCKS} "
            f"or its radius is meaningless: use at most {longest} frames, or --n-bootstrap 0 to "
            "skip the uncertainty.")
    return n_blocks


def method_uncertainty(
    context: TargetingContext,
    target: Target,
    *,
    t_r: float,
    options: Sequence[Any] = (),
    run_lengths: Sequence[int] | None = None,
    parameters: UncertaintyParameters | None = None,
    effective_dof: float | None = None,
    minutes_for_min_dof: float | None = None,
    progress: bool = False,
    n_jobs: int = 1,
) -> MethodUncertainty:
    """Bootstrap cloud, split-half and scan-length advice of one method's target.

    Parameters
    ----------
    context : TargetingContext
        The cleaned data the target was computed on.
    target : Target
        The point estimate (its ``method`` names the method to rerun).
    t_r : float
        Repetition time (s), for minutes and the default block length.
    options : sequence of Parameters
        The method's options objects (as used for the point estimate).
    run_lengths : sequence of int, optional
        Frames per run, if runs were concatenated.
    parameters : UncertaintyParameters, optional
        Resamples (``n_bootstrap`` >= 1 here), block length, scan fractions,
        tolerance and random seed; default its defaults.
    effective_dof, minutes_for_min_dof : float, optional
        See :func:`scan_length_advice`; recorded in the summary as well.
    progress : bool
        Progress bar on stderr.
    n_jobs : int
        Processes for the resamples (see :func:`bootstrap_cloud`).

    Returns
    -------
    MethodUncertainty
    """
    parameters = UncertaintyParameters() if parameters is None else parameters
    options = method_arguments(target.method, options)
    lengths = _run_lengths(context, run_lengths)
    n_resamples = parameters.n_bootstrap
    block = parameters.block_frames(t_r)
    check_block_count(block, lengths)
    context = analysis_context(context)  # once, for the bootstrap, split-half and scan length
    main = _bootstrap_piece(lengths, n_resamples=n_resamples, block_frames=block,
                            random_seed=parameters.random_seed)
    halves = _half_pieces(lengths)
    shorter = [f for f in parameters.fractions or () if f < 1.0]
    steps = _curve_steps(
        lengths, shorter, n_resamples=parameters.scan_length_resamples or max(10, n_resamples // 2),
        block_frames=block, random_seed=parameters.random_seed, effective_dof=effective_dof,
    ) if shorter else []
    pieces = [main, *halves, *(step.piece for step in steps if step.piece is not None)]
    values = targets_of(target.method, context, options, pieces, n_jobs=n_jobs, progress=progress)
    point = np.asarray(target.coordinate_mm, dtype=float)
    cloud = _cloud(values[0][1])
    cloud = cloud.assign(distance_mm=_distances(cloud[["x", "y", "z"]].to_numpy(float), point)
                         if not cloud.empty else pd.Series(dtype=float))
    summary = cloud_summary(cloud, point, n_resamples=n_resamples)
    summary.update(block_frames=block, block_s=block * t_r, random_seed=int(parameters.random_seed),
                   effective_dof=None if effective_dof is None else float(effective_dof),
                   uncertainty_supported=effective_dof is None or effective_dof >= MIN_EFFECTIVE_DOF)
    summary.update(_split_half_summary(values[1:1 + len(halves)]))
    curve = advice = None
    if parameters.fractions:
        minutes = context.data.shape[0] * t_r / 60.0
        curve = _full_scan_curve(_curve(steps, values[1 + len(halves):], t_r), summary,
                                 n_frames=int(context.data.shape[0]), minutes=minutes,
                                 effective_dof=effective_dof)
        advice = scan_length_advice(curve, current_minutes=minutes,
                                    current_radius_mm=summary["p95_radius_mm"],
                                    tolerance_mm=parameters.stability_tolerance_mm,
                                    effective_dof=effective_dof,
                                    minutes_for_min_dof=minutes_for_min_dof)
    return MethodUncertainty(method=target.method, point_mm=point, cloud=cloud, summary=summary,
                             scan_length=curve, advice=advice)


def _full_scan_curve(curve: pd.DataFrame, summary: dict[str, Any], *, n_frames: int,
                     minutes: float, effective_dof: float | None) -> pd.DataFrame:
    """The curve with the full scan's row: the main bootstrap (no second bootstrap of all frames)."""
    full = pd.DataFrame([{"fraction": 1.0, "n_frames": n_frames, "minutes": minutes,
                          "effective_dof": None if effective_dof is None else float(effective_dof),
                          "p95_radius_mm": summary["p95_radius_mm"],
                          "median_distance_mm": summary["median_distance_mm"],
                          "n_failed": int(summary["n_failed"])}], columns=CURVE_COLUMNS)
    return full if curve.empty else pd.concat([curve, full], ignore_index=True)
