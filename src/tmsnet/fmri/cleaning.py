"""Denoising of a BOLD run before connectivity: every choice explicit and recorded.

Pipeline of :func:`clean_bold` (the order of ``nilearn.signal.clean``, with
smoothing first as nilearn's maskers do):

1. drop the first ``discard_frames`` frames (data and confounds);
2. select confounds and censored frames from the fMRIPrep table
   (:func:`select_confounds`);
3. spatial Gaussian smoothing of every kept frame within the brain mask;
4. per voxel: interpolate censored frames, detrend (mean + linear),
   Butterworth band-pass, censor, regress the (equally treated) confounds,
   z-score -- exactly the steps and order of ``nilearn.signal.clean``.

Confound selection: why not ``nilearn.interfaces.fmriprep.load_confounds``
--------------------------------------------------------------------------
nilearn's loaders locate the TSV (and require its JSON sidecar) from the BOLD
file name and reject names that do not follow fMRIPrep's pattern; a user's
arbitrarily named confounds file would need a temporary folder of symlinks
with fake fMRIPrep names and a JSON next to it -- fragile. They also take a
path, while the table has already been read and checked against the BOLD
(:func:`tmsnet.io.fmriprep.load_confounds_table`). tmsnet therefore selects the
columns itself with nilearn's definitions (``nilearn.interfaces.fmriprep``,
``load_confounds_strategy`` presets and ``load_confounds_components``), and
the test-suite checks the result against ``load_confounds_strategy`` on an
fMRIPrep-named copy:

``"simple"`` (nilearn preset "simple"; Fox et al. 2005)
    24 motion parameters ("full": ``trans_*``/``rot_*``, their
    ``_derivative1``, ``_power2`` and ``_derivative1_power2``) + ``csf`` and
    ``white_matter`` ("basic").
``"scrubbing"`` (nilearn preset "scrubbing"; Power et al. 2012)
    24 motion parameters + 8 WM/CSF terms ("full") and censoring of frames
    with ``framewise_displacement`` > ``fd_threshold_mm`` (0.5 mm) or
    ``std_dvars`` > ``std_dvars_threshold`` (1.5), plus any segment of fewer
    than 5 frames left between censored frames or at the run's ends.
``"minimal"`` (``load_confounds(strategy=("motion", "wm_csf"),
motion="basic", wm_csf="basic")``)
    6 motion parameters + ``csf`` + ``white_matter``.
``"none"``
    no nuisance regressor (filtering and detrending only).

``global_signal=True`` adds ``global_signal`` ("basic") to any strategy.
Global signal regression changes anticorrelations and therefore targets, so
it is a parameter of its own, recorded in the returned parameters. As in
nilearn, frames flagged by fMRIPrep's ``non_steady_state_outlier_XX`` columns
are always censored; the NaN that derivatives have in the first row are
replaced by the second row's values; confounds are demeaned over kept frames.
High-pass filtering is left to the Butterworth filter: fMRIPrep's
``cosine_XX`` regressors (nilearn's "high_pass" component) are not used, as
they would duplicate it.

Temporal cleaning: why not ``nilearn.signal.clean`` itself
----------------------------------------------------------
``nilearn.signal.clean`` (nilearn 0.14) band-passes a 2D array one column at a
time in Python (``butterworth(copy=False)``): about 14 s per 20,000 voxels,
i.e. minutes for a brain. Its censored-frame interpolation also indexes with
``~sample_mask`` on integer indices, so a censored frame whose mirror frame
(``n - 1 - i``) is censored too keeps its raw (high-motion) value through the
filter. tmsnet performs the same steps in the same order -- cubic-spline
interpolation of censored frames, mean + linear detrending, nilearn's own
``nilearn.signal.butterworth`` (order 5, ``sosfiltfilt``, odd padding),
censoring, projection out of the equally processed and z-scored confounds
(pivoted QR), z-scoring -- but notes that all steps before the final scaling
are linear and identical for every voxel. They are applied once to the
identity matrix, giving an ``(n_kept, n_frames)`` operator, and the brain is
cleaned with one float32 matrix product per block of voxels (a per-voxel
offset is removed first so rounding does not scale with the BOLD mean).
Censored frames at the start or end of the run are dropped before filtering,
as nilearn does with ``extrapolate=False`` (extrapolated spline values are
unreliable; nilearn issue #4024). The test-suite checks equality with
``nilearn.signal.clean`` to 5e-5 (z units).

Smoothing
---------
Gaussian kernel of the requested FWHM, ``sigma = FWHM / (sqrt(8 ln 2) *
voxel size)`` per axis, applied as three 1D ``scipy.ndimage.gaussian_filter1d``
passes truncated at 4 sigma -- identical to nilearn's ``smooth_img``. Each
frame is smoothed in float32 on the mask's bounding box (plus the kernel
radius), in threads (scipy releases the GIL), instead of ``smooth_img`` on the
whole 4D image, which would make a float64 copy of ~270 M values. Only in-mask
data are held, so values outside the mask are zero; each smoothed value is
divided by the smoothed mask at that voxel (normalised convolution), i.e. it
is the kernel-weighted mean of in-mask neighbours. This differs from
smoothing the zero-filled masked image only by a constant factor per voxel,
which detrending/z-scoring and correlations ignore, and it keeps signal
amplitudes right at the brain's edge. (nilearn maskers smooth the unmasked
image and so blend in non-brain signal at the edge; tmsnet does not.)

Speed (issue 16): with numba (a dependency) the three passes run as compiled
loops that do scipy's arithmetic exactly -- float64 sums in ``correlate1d``'s
order, ``mode="reflect"`` at the box's faces, float32 rounding between passes
-- but only on the rows a mask voxel depends on (about 0.87 M outputs a 2 mm
frame instead of 3 x 0.69 M), vectorised and without the GIL. The result is
bit-identical to the scipy path (``TMSNET_DISABLE_NUMBA=1`` selects it;
tests/test_cleaning_fast_path.py compares the two) and 2-4 times faster in the
job on the 2-core machine (docs/benchmarks.md, issue 16).
Smoothing the ~100-dimensional temporal subspace left after band-pass and
regression instead of every frame was considered and not used: the
Butterworth band-pass is not a projection, and at float32 precision (singular
values above 1e-7 of the largest) the cleaning operator of a 300-frame, TR 2 s
scan has rank ~214, so the saving would be 30 % of the smoothing at the price
of a second matrix product, and no longer exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from nilearn.signal import butterworth
from scipy import linalg
from scipy.interpolate import CubicSpline
from scipy.ndimage import gaussian_filter1d

try:  # numba is a dependency; without it smoothing takes the (slower) scipy path
    import numba
except ImportError:  # pragma: no cover
    numba = None

from tmsnet.exceptions import (
    ConfoundsError,
    InvalidParameterError,
    ScanTooShortError,
    UnknownMethodError,
)
from tmsnet.io.fmriprep import MIN_DURATION_MIN, MIN_FRAMES, BoldData, check_scan_length
from tmsnet.parallel import available_workers
from tmsnet.utils.check import validate_type
from tmsnet.utils.compiled import numba_allowed
from tmsnet.utils.params import Parameters, param

__all__ = [
    "CONFOUND_STRATEGIES",
    "BoldCleaningParameters",
    "DEFAULT_STD_DVARS_THRESHOLD",
    "SCRUB_MIN_SEGMENT",
    "STRATEGY_DESCRIPTIONS",
    "clean_bold",
    "fwhm_to_sigma_voxels",
    "scrub_outliers",
    "select_confounds",
    "smooth_in_mask",
]

#: Confound strategies (see the module docstring for each definition).
CONFOUND_STRATEGIES: tuple[str, ...] = ("simple", "scrubbing", "minimal", "none")

STRATEGY_DESCRIPTIONS: dict[str, str] = {
    "simple": "24 motion parameters (full) + csf + white_matter (nilearn preset 'simple')",
    "scrubbing": (
        "24 motion parameters (full) + 8 WM/CSF terms (full) + censoring of frames with "
        "FD > fd_threshold_mm or std_dvars > std_dvars_threshold and of segments shorter "
        "than 5 frames (nilearn preset 'scrubbing')"
    ),
    "minimal": "6 motion parameters + csf + white_matter",
    "none": "no nuisance regressors",
}

#: nilearn's "scrubbing" preset threshold on fMRIPrep's ``std_dvars``.
DEFAULT_STD_DVARS_THRESHOLD = 1.5
#: nilearn's minimal segment length (frames) kept between censored frames.
SCRUB_MIN_SEGMENT = 5
#: Butterworth order used by ``nilearn.signal.butterworth`` (and hence here).
BUTTERWORTH_ORDER = 5
#: Gaussian kernels are truncated at this many sigmas (scipy/nilearn default).
GAUSSIAN_TRUNCATE = 4.0

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_WM_CSF = ("csf", "white_matter")
_FULL_SUFFIXES = ("derivative1", "power2", "derivative1_power2")
_COMPONENTS: dict[str, dict[str, str | None]] = {
    "simple": {"motion": "full", "wm_csf": "basic"},
    "scrubbing": {"motion": "full", "wm_csf": "full"},
    "minimal": {"motion": "basic", "wm_csf": "basic"},
    "none": {"motion": None, "wm_csf": None},
}
_VOXEL_BLOCK = 16384
#: Whether smoothing runs the compiled passes (``TMSNET_DISABLE_NUMBA=1``: scipy's).
_HAVE_NUMBA = numba is not None and numba_allowed()
_EPS = np.finfo(np.float64).eps


# ------------------------------------------------------------------ confound selection


def _with_suffixes(names: tuple[str, ...], model: str | None) -> list[str]:
    if model is None:
        return []
    columns = list(names)
    if model == "full":
        columns += [f"{n}_{s}" for n in names for s in _FULL_SUFFIXES]
    return columns


def _check_strategy(strategy: str) -> None:
    if strategy not in CONFOUND_STRATEGIES:
        raise UnknownMethodError(
            f"Unknown confound strategy {strategy!r}; choose one of "
            f"{', '.join(CONFOUND_STRATEGIES)}."
        )


def _missing_columns_error(
    table: pd.DataFrame, missing: dict[str, list[str]], strategy: str, global_signal: bool
) -> ConfoundsError:
    listed = "; ".join(f"{part}: {', '.join(cols)}" for part, cols in missing.items())
    all_missing = [c for cols in missing.values() for c in cols]
    hints = []
    if set(missing) == {"global signal"}:
        hints.append(
            "run without global signal regression (global_signal=False, --no-gsr), or use the "
            "confounds file fMRIPrep wrote (it has 'global_signal')"
        )
    elif all_missing and all(c.endswith(_FULL_SUFFIXES) for c in all_missing):
        hints.append(
            "the derivative/quadratic expansions are missing: use strategy 'minimal' (6 motion "
            "parameters + csf + white_matter), or the confounds file of a current fMRIPrep"
        )
    else:
        hints.append("use the *_desc-confounds_timeseries.tsv fMRIPrep (>= 1.2) wrote for this run")
        if strategy != "none":
            hints.append("or strategy 'none' to skip nuisance regression")
    if any(c in table.columns for c in ("FramewiseDisplacement", "GlobalSignal", "X", "RotX")):
        hints.append("(the column names look like fMRIPrep < 1.2, which tmsnet does not read)")
    gsr = " with global signal regression" if global_signal else ""
    return ConfoundsError(
        f"The confounds table lacks columns required by strategy {strategy!r}{gsr}: {listed}. "
        f"Fix: {'; '.join(hints)}."
    )


def scrub_outliers(outliers: np.ndarray, n_frames: int, min_segment: int) -> np.ndarray:
    """Add to ``outliers`` every run of kept frames shorter than ``min_segment``.

    Same rule as nilearn's ``optimize_scrub`` (Power et al. 2012): segments
    at the start, between two outliers, or at the end that hold fewer than
    ``min_segment`` frames are censored too.

    Parameters
    ----------
    outliers : ndarray of int
        Sorted indices of outlier frames.
    n_frames : int
        Number of frames in the run.
    min_segment : int
        Minimal number of consecutive kept frames (0 disables the rule).

    Returns
    -------
    ndarray of int
        Sorted indices of censored frames.
    """
    outliers = np.unique(np.asarray(outliers, dtype=np.int64))
    if min_segment <= 0 or outliers.size == 0:
        return outliers
    censored = np.zeros(n_frames, dtype=bool)
    censored[outliers] = True
    bounds = np.concatenate(([-1], outliers, [n_frames]))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if 0 < b - a - 1 < min_segment:
            censored[a + 1 : b] = True
    return np.flatnonzero(censored)


def _censored_frames(
    table: pd.DataFrame,
    *,
    scrub: bool,
    fd_threshold_mm: float,
    std_dvars_threshold: float,
    min_segment: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    n = len(table)
    nss_cols = [c for c in table.columns if "non_steady_state" in str(c)]
    nss = np.zeros(n, dtype=bool)
    for c in nss_cols:
        nss |= np.nan_to_num(pd.to_numeric(table[c], errors="coerce").to_numpy(float)) != 0
    details: dict[str, Any] = {"non_steady_state_frames": np.flatnonzero(nss).tolist()}
    censored = nss.copy()
    if scrub:
        fd = pd.to_numeric(table["framewise_displacement"], errors="coerce").to_numpy(float)
        dvars = pd.to_numeric(table["std_dvars"], errors="coerce").to_numpy(float)
        with np.errstate(invalid="ignore"):
            outliers = np.flatnonzero((fd > fd_threshold_mm) | (dvars > std_dvars_threshold))
        details["motion_outlier_frames"] = outliers.tolist()
        scrubbed = scrub_outliers(outliers, n, min_segment)
        details["short_segment_frames"] = sorted(set(scrubbed.tolist()) - set(outliers.tolist()))
        censored[scrubbed] = True
    return np.flatnonzero(censored), details


def select_confounds(
    table: pd.DataFrame,
    *,
    strategy: str = "simple",
    global_signal: bool = True,
    fd_threshold_mm: float = 0.5,
    std_dvars_threshold: float | None = None,
    scrub_min_segment: int = SCRUB_MIN_SEGMENT,
) -> tuple[np.ndarray | None, list[str], np.ndarray | None]:
    """Pick confound regressors and censored frames from an fMRIPrep table.

    Parameters
    ----------
    table : pandas.DataFrame
        fMRIPrep confounds, one row per frame (``n/a`` read as NaN).
    strategy : {"simple", "scrubbing", "minimal", "none"}
        Nuisance model (definitions in the module docstring).
    global_signal : bool
        Add ``global_signal`` to the regressors (global signal regression).
    fd_threshold_mm : float
        "scrubbing" only: censor frames with framewise displacement above
        this (mm).
    std_dvars_threshold : float or None
        "scrubbing" only: censor frames with standardised DVARS above this;
        None means nilearn's preset value :data:`DEFAULT_STD_DVARS_THRESHOLD`
        (1.5); ``math.inf`` censors on FD only.
    scrub_min_segment : int
        "scrubbing" only: shortest run of kept frames (nilearn: 5).

    Returns
    -------
    confounds : ndarray of float64, shape (n_frames, k), or None
        Demeaned regressors (None when there is none).
    names : list of str
        Column names of ``confounds``.
    sample_mask : ndarray of int or None
        Indices of kept frames; None when no frame is censored.

    Raises
    ------
    UnknownMethodError
        Unknown strategy.
    ConfoundsError
        Required columns missing or holding NaN beyond the first row.
    """
    _check_strategy(strategy)
    if fd_threshold_mm is None or not fd_threshold_mm > 0:
        raise InvalidParameterError(f"fd_threshold_mm must be > 0 mm, got {fd_threshold_mm!r}.")
    dvars_threshold = (
        DEFAULT_STD_DVARS_THRESHOLD if std_dvars_threshold is None else float(std_dvars_threshold)
    )
    components = _COMPONENTS[strategy]
    wanted: dict[str, list[str]] = {
        "motion": _with_suffixes(_MOTION, components["motion"]),
        "WM/CSF": _with_suffixes(_WM_CSF, components["wm_csf"]),
        "global signal": ["global_signal"] if global_signal else [],
    }
    scrub = strategy == "scrubbing"
    if scrub:
        wanted["scrubbing"] = ["framewise_displacement", "std_dvars"]
    missing = {
        part: [c for c in cols if c not in table.columns] for part, cols in wanted.items()
    }
    missing = {part: cols for part, cols in missing.items() if cols}
    if missing:
        raise _missing_columns_error(table, missing, strategy, global_signal)

    sample_censored, _ = _censored_frames(
        table, scrub=scrub, fd_threshold_mm=fd_threshold_mm,
        std_dvars_threshold=dvars_threshold, min_segment=scrub_min_segment,
    )
    n = len(table)
    sample_mask = None
    if sample_censored.size:
        sample_mask = np.setdiff1d(np.arange(n), sample_censored)

    names = [c for part in ("motion", "WM/CSF", "global signal") for c in wanted[part]]
    if not names:
        return None, [], sample_mask
    return _confound_values(table, names, sample_mask), names, sample_mask


def _confound_values(table: pd.DataFrame, names: list[str],
                     sample_mask: np.ndarray | None) -> np.ndarray:
    """The regressors as float64, first-row NaN filled (nilearn), demeaned over kept frames."""
    n = len(table)
    try:
        values = table[names].apply(pd.to_numeric, errors="raise").to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ConfoundsError(
            f"Confound columns {names} must be numeric ({exc}); use fMRIPrep's "
            "*_desc-confounds_timeseries.tsv."
        ) from exc
    values = values.copy()
    if n > 1:  # derivatives are n/a in the first row: take the second row's value (nilearn)
        first_nan = np.isnan(values[0])
        values[0, first_nan] = values[1, first_nan]
    bad = np.isnan(values) | np.isinf(values)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        rows = np.flatnonzero(bad.any(axis=1))[:10].tolist()
        raise ConfoundsError(
            f"Confound columns {cols} have missing or infinite values (rows {rows}...). Use the "
            "confounds file fMRIPrep wrote for this run, or another strategy without them."
        )
    kept = slice(None) if sample_mask is None or sample_mask.size == 0 else sample_mask
    values -= values[kept].mean(axis=0)
    return values


# --------------------------------------------------------------------------- smoothing


def fwhm_to_sigma_voxels(fwhm_mm: float, affine: np.ndarray) -> np.ndarray:
    """Gaussian sigma per grid axis, in voxels, for an FWHM in mm.

    ``sigma = FWHM / (sqrt(8 ln 2) * voxel size)``, voxel size being the
    norm of each affine column (as ``nilearn.image.smooth_img``).

    Parameters
    ----------
    fwhm_mm : float
        Full width at half maximum (mm).
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine (mm).

    Returns
    -------
    ndarray, shape (3,)
        Sigma along each axis (voxels).
    """
    vox = np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))
    return float(fwhm_mm) / (math.sqrt(8.0 * math.log(2.0)) * vox)


def _smoothing_box(mask: np.ndarray, sigma: np.ndarray) -> tuple[slice, ...]:
    """The mask's bounding box plus the kernel radius on each side, within the grid."""
    radius = np.array([int(GAUSSIAN_TRUNCATE * s + 0.5) for s in sigma])
    nz = np.nonzero(mask)
    lo = np.maximum(np.array([a.min() for a in nz]) - radius, 0)
    hi = np.minimum(np.array([a.max() for a in nz]) + 1 + radius, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _gaussian_passes(volume: np.ndarray, sigma: np.ndarray) -> None:
    """The three 1D passes of ``nilearn.image.smooth_img``, in place (the reference path)."""
    for axis, s in enumerate(sigma):
        if s > 0:
            gaussian_filter1d(volume, s, axis=axis, output=volume, truncate=GAUSSIAN_TRUNCATE)


def _gaussian_weights(sigma: float) -> np.ndarray:
    """The float64 taps ``gaussian_filter1d`` uses (its impulse response), centre in the middle.

    Read from scipy itself (a unit impulse filtered with zero padding: each tap is
    ``1.0 * w``, exact), so the compiled passes multiply by the very same numbers.
    """
    if not sigma > 0:  # the axis is not filtered: the identity
        return np.ones(1)
    radius = int(GAUSSIAN_TRUNCATE * float(sigma) + 0.5)
    impulse = np.zeros(4 * radius + 1)
    impulse[2 * radius] = 1.0
    response = gaussian_filter1d(impulse, sigma, mode="constant", truncate=GAUSSIAN_TRUNCATE)
    return np.ascontiguousarray(response[radius : 3 * radius + 1])


def _reflect_index(n: int, radius: int) -> np.ndarray:
    """``index[p]`` is the grid index read at ``p - radius`` (scipy's ``mode="reflect"``)."""
    p = np.arange(-radius, n + radius)
    m = np.mod(p, 2 * n)
    return np.where(m >= n, 2 * n - 1 - m, m).astype(np.int64)


class _CompiledSmoothing:
    """The passes of :func:`_gaussian_passes` as compiled loops, where the mask needs them.

    Every output of a pass is computed as ``scipy.ndimage.correlate1d`` computes it
    for a symmetric kernel: in float64, ``x[k] w_0`` plus ``(x[k-t] + x[k+t]) w_t``
    for ``t`` from the radius down to 1, reflected at the box's edges, rounded to
    float32 before the next pass. The results are therefore bit-identical to the
    reference path (tests/test_cleaning_fast_path.py), but each pass is evaluated
    only on the rows its successor reads: pass 3 (last axis) at the mask's voxels,
    pass 2 on those rows widened by the last axis' radius, pass 1 on the rows that
    pass 2 reads. For a 2 mm brain mask that is about 0.87 M outputs a frame instead
    of 3 x 0.69 M for the whole box, with vector instructions and no GIL.
    """

    def __init__(self, sub_mask: np.ndarray, idx: np.ndarray, sigma: np.ndarray,
                 inv_weight: np.ndarray) -> None:
        self.shape = np.array(sub_mask.shape, dtype=np.int64)
        self.idx = idx.astype(np.int64)
        self.weights = tuple(_gaussian_weights(s) for s in sigma)
        radii = [(w.size - 1) // 2 for w in self.weights]
        self.ext = tuple(_reflect_index(n, r) for n, r in zip(sub_mask.shape, radii, strict=True))
        self.domains = _pass_domains(sub_mask, radii[2], self.ext[1], radii[1])
        self.row_ptr = np.concatenate(([0], np.cumsum(sub_mask.sum(axis=2).ravel()))).astype(np.int64)
        self.k_index = np.nonzero(sub_mask)[2].astype(np.int64)
        self.inv_weight = inv_weight
        empty = np.empty(0, dtype=np.int64)  # compile (or load the cache) before any thread runs
        self(np.empty((0, idx.size), np.float32), empty, np.empty((0, idx.size), np.float32), empty)

    def __call__(self, data: np.ndarray, rows: np.ndarray, out: np.ndarray,
                 out_rows: np.ndarray) -> None:
        """Smooth ``data[rows]`` into ``out[out_rows]``."""
        _numba_smooth_rows(data, rows.astype(np.int64), out, out_rows.astype(np.int64), self.shape,
                           self.idx, *self.weights, *self.ext, self.domains, self.row_ptr,
                           self.k_index, self.inv_weight)


def _pass_domains(sub_mask: np.ndarray, radius_z: int, ext_y: np.ndarray,
                  radius_y: int) -> np.ndarray:
    """Per ``(i, j)`` row, the range ``[lo, hi)`` along the last axis each pass computes.

    Rows 4-5: the mask's extent (pass 3 reads out the mask there); rows 2-3: that
    extent widened by ``radius_z`` (what pass 3 reads of pass 2); rows 0-1: the
    union of the rows 2-3 of every row ``j`` whose pass 2 reads row ``j'`` of pass 1.
    Empty ranges have ``lo >= hi``.
    """
    n_z = sub_mask.shape[2]
    has = sub_mask.any(axis=2)
    mask_lo = np.where(has, np.argmax(sub_mask, axis=2), 0)
    mask_hi = np.where(has, n_z - np.argmax(sub_mask[:, :, ::-1], axis=2), 0)
    lo2 = np.where(has, np.maximum(mask_lo - radius_z, 0), 0)
    hi2 = np.where(has, np.minimum(mask_hi + radius_z, n_z), 0)
    lo1 = np.full(has.shape, n_z, dtype=np.int64)
    hi1 = np.zeros(has.shape, dtype=np.int64)
    ii, jj = np.nonzero(has)
    for t in range(-radius_y, radius_y + 1):
        read = (ii, ext_y[jj + t + radius_y])
        np.minimum.at(lo1, read, lo2[ii, jj])
        np.maximum.at(hi1, read, hi2[ii, jj])
    return np.ascontiguousarray(np.stack([lo1, hi1, lo2, hi2, mask_lo, mask_hi]), dtype=np.int64)


if numba is not None:  # pragma: no branch - numba is a dependency

    @numba.njit(nogil=True, cache=True)
    def _numba_outer_pass(src, dst, w, ext, axis, lo, hi, acc):  # noqa: D103
        # Pass along axis 0 or 1 of src (X, Y, Z) into dst, on the rows [lo, hi) of each (i, j).
        r = (w.shape[0] - 1) // 2
        wc = w[r]
        for i in range(src.shape[0]):
            for j in range(src.shape[1]):
                k0 = lo[i, j]
                n = hi[i, j] - k0
                if n <= 0:
                    continue
                centre = src[i, j, k0 : k0 + n]
                a_row = acc[:n]
                for k in range(n):
                    a_row[k] = np.float64(centre[k]) * wc
                for t in range(r, 0, -1):
                    if axis == 0:
                        left = src[ext[i + r - t], j, k0 : k0 + n]
                        right = src[ext[i + r + t], j, k0 : k0 + n]
                    else:
                        left = src[i, ext[j + r - t], k0 : k0 + n]
                        right = src[i, ext[j + r + t], k0 : k0 + n]
                    wt = w[r - t]
                    for k in range(n):
                        a_row[k] += (np.float64(left[k]) + np.float64(right[k])) * wt
                target = dst[i, j, k0 : k0 + n]
                for k in range(n):
                    target[k] = np.float32(a_row[k])

    @numba.njit(nogil=True, cache=True)
    def _numba_last_pass(src, w, ext, lo, hi, row_ptr, k_index, inv_weight, out, acc,
                         line):  # noqa: D103
        # Pass along axis 2 on the mask's extent of each row, read out at the mask's voxels.
        r = (w.shape[0] - 1) // 2
        wc = w[r]
        n_y = src.shape[1]
        for i in range(src.shape[0]):
            for j in range(n_y):
                p0 = row_ptr[i * n_y + j]
                p1 = row_ptr[i * n_y + j + 1]
                if p1 == p0:
                    continue
                k0 = lo[i, j]
                n = hi[i, j] - k0
                row = src[i, j]
                for p in range(n + 2 * r):
                    line[p] = np.float64(row[ext[k0 + p]])
                a_row = acc[:n]
                centre = line[r : r + n]
                for k in range(n):
                    a_row[k] = centre[k] * wc
                for t in range(r, 0, -1):
                    left = line[r - t : r - t + n]
                    right = line[r + t : r + t + n]
                    wt = w[r - t]
                    for k in range(n):
                        a_row[k] += (left[k] + right[k]) * wt
                for p in range(p0, p1):
                    out[p] = np.float32(a_row[k_index[p] - k0]) * inv_weight[p]

    @numba.njit(nogil=True, cache=True)
    def _numba_smooth_rows(data, rows, out, out_rows, shape, idx, w0, w1, w2, e0, e1, e2,
                           domains, row_ptr, k_index, inv_weight):  # noqa: D103
        scattered = np.zeros((shape[0], shape[1], shape[2]), dtype=np.float32)
        first = np.empty_like(scattered)
        second = np.empty_like(scattered)
        flat = scattered.reshape(-1)
        acc = np.empty(shape[2], dtype=np.float64)
        line = np.empty(shape[2] + w2.shape[0], dtype=np.float64)
        for f in range(rows.shape[0]):
            values = data[rows[f]]
            for n in range(idx.shape[0]):  # only mask voxels are ever written: zeros elsewhere
                flat[idx[n]] = values[n]
            _numba_outer_pass(scattered, first, w0, e0, 0, domains[0], domains[1], acc)
            _numba_outer_pass(first, second, w1, e1, 1, domains[2], domains[3], acc)
            _numba_last_pass(second, w2, e2, domains[4], domains[5], row_ptr, k_index,
                             inv_weight, out[out_rows[f]], acc, line)


def smooth_in_mask(
    data: np.ndarray,
    mask: np.ndarray,
    affine: np.ndarray,
    fwhm_mm: float,
    *,
    rows: np.ndarray | None = None,
    out: np.ndarray | None = None,
    out_rows: np.ndarray | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Gaussian smoothing of in-mask time series, frame by frame, in float32.

    Each frame is put back on the 3D grid (cropped to the mask's bounding box
    plus the kernel radius), filtered by three 1D Gaussian passes exactly as
    ``nilearn.image.smooth_img`` (truncate 4 sigma, ``mode="reflect"``), read
    at the mask voxels, and divided by the equally smoothed mask (normalised
    convolution: a weighted mean of in-mask neighbours).

    Parameters
    ----------
    data : ndarray of float32, shape (n_frames, n_voxels)
        In-mask values, voxels in the C order of ``mask.nonzero()``.
    mask : ndarray of bool, shape (X, Y, Z)
        The mask the columns of ``data`` belong to.
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine (mm) of the grid.
    fwhm_mm : float
        Kernel FWHM (mm).
    rows : ndarray of int, optional
        Rows of ``data`` to smooth (default: all).
    out : ndarray of float32, shape (n_out, n_voxels), optional
        Output buffer (must not be ``data``); default a new
        ``(len(rows), n_voxels)`` array.
    out_rows : ndarray of int, optional
        Row of ``out`` receiving each smoothed row (default
        ``range(len(rows))``).
    n_jobs : int, optional
        Worker threads (default: available CPUs, at most 8).

    Returns
    -------
    ndarray of float32
        ``out``, holding the smoothed rows.
    """
    rows = np.arange(data.shape[0]) if rows is None else np.asarray(rows)
    if out is None:
        out = np.empty((rows.size, data.shape[1]), dtype=np.float32)
    out_rows = np.arange(rows.size) if out_rows is None else np.asarray(out_rows)
    if out_rows.shape != rows.shape:
        raise InvalidParameterError("smooth_in_mask: rows and out_rows must have the same length.")
    if rows.size == 0:
        return out
    sigma = fwhm_to_sigma_voxels(fwhm_mm, affine)
    sub_mask = mask[_smoothing_box(mask, sigma)]
    idx = np.flatnonzero(sub_mask)  # C order inside the box == C order of mask.nonzero()
    weights = np.zeros(sub_mask.shape, dtype=np.float32)
    weights.flat[idx] = 1.0
    _gaussian_passes(weights, sigma)
    inv_weight = (1.0 / weights.ravel()[idx]).astype(np.float32)
    compiled = (_HAVE_NUMBA and data.dtype == np.float32 and out.dtype == np.float32
                and data.flags.c_contiguous and out.flags.c_contiguous and out.ndim == 2)
    if compiled:
        plan = _CompiledSmoothing(sub_mask, idx, sigma, inv_weight)

        def work(block: np.ndarray) -> None:
            plan(data, rows[block], out, out_rows[block])
    else:
        def work(block: np.ndarray) -> None:
            volume = np.zeros(sub_mask.shape, dtype=np.float32)
            flat = volume.reshape(-1)
            for i in block:
                flat.fill(0.0)
                flat[idx] = data[rows[i]]
                _gaussian_passes(volume, sigma)
                row = out[out_rows[i]]
                np.take(flat, idx, out=row)
                row *= inv_weight

    blocks = np.array_split(np.arange(rows.size), min(available_workers(n_jobs), rows.size))
    if len(blocks) == 1:
        work(blocks[0])
    else:
        with ThreadPoolExecutor(len(blocks)) as pool:
            list(pool.map(work, blocks))
    return out


# ------------------------------------------------------------------- temporal cleaning


def _detrend(x: np.ndarray) -> None:
    """Remove mean and linear trend of each column, in place (nilearn's _detrend)."""
    x -= x.mean(axis=0)
    n = x.shape[0]
    if n < 2:
        return
    ramp = np.arange(n, dtype=x.dtype)
    ramp -= ramp.mean()
    ramp /= np.sqrt((ramp**2).sum())
    x -= np.outer(ramp, ramp @ x)


def _zscore(x: np.ndarray) -> None:
    """``zscore_sample`` of nilearn, in place: mean 0, sample std (ddof=1) 1."""
    x -= x.mean(axis=0)
    if x.shape[0] < 2:
        return
    std = x.std(axis=0, ddof=1)
    std[std < _EPS] = 1.0
    x /= std


class _TemporalPipeline:
    """The per-voxel steps of ``nilearn.signal.clean`` as one linear operator.

    Interpolation of censored frames (cubic spline), detrending, Butterworth
    filtering (``sosfiltfilt`` with odd padding), censoring and projection
    onto the orthogonal complement of the confounds are all linear maps of a
    voxel's time series, identical for every voxel. Their composition is
    therefore a matrix ``M`` of shape (n_kept, n_window), obtained by running
    the steps once on the identity matrix; the final demeaning of z-scoring
    is folded in too. Cleaning the brain is then one matrix product per block
    of voxels followed by the per-voxel division by the standard deviation.
    """

    def __init__(
        self,
        *,
        n_window: int,
        kept: np.ndarray,
        t_r: float,
        low_pass: float | None,
        high_pass: float | None,
        detrend: bool,
        standardize: str | None,
        confounds: np.ndarray | None,
    ) -> None:
        self.kept = kept
        self.censored = np.setdiff1d(np.arange(n_window), kept)
        self.t_r = t_r
        self.low_pass = low_pass
        self.high_pass = high_pass
        self.filtering = low_pass is not None or high_pass is not None
        self.detrend = detrend
        self.standardize = standardize
        self.q = None if confounds is None else self._confound_basis(confounds)
        operator = self.apply_steps(np.eye(n_window))
        if standardize == "zscore_sample":
            operator -= operator.mean(axis=0)
        self.operator = operator
        self.operator32 = np.ascontiguousarray(operator, dtype=np.float32)
        # Response to a constant series (0 when detrending or high-pass removes it).
        ones_response = operator.sum(axis=1)
        self.ones_response = (
            ones_response if np.abs(ones_response).max() > 1e-9 * n_window else None
        )

    def effective_dof(self) -> float:
        """Independent time courses the cleaning leaves: ``(sum s^2)^2 / sum s^4``.

        ``s`` are the singular values of the operator (n_kept x n_window). For a
        projection (regression alone) this is its rank, ``n_frames - n_regressors``;
        a band-pass keeps about ``2 (f_high - f_low) n_frames t_r`` of the
        frames' dimensions, and the confounds then remove theirs. It is what the
        bootstrap can resample: below a few dozen, every resample sees the same
        few components (see :data:`tmsnet.targeting.uncertainty.MIN_EFFECTIVE_DOF`).
        """
        s2 = linalg.svdvals(self.operator) ** 2
        total = float(np.sum(s2 * s2))
        return float(np.sum(s2) ** 2 / total) if total > 0 else 0.0

    def _interpolate_or_censor(self, x: np.ndarray) -> np.ndarray:
        if self.censored.size == 0:
            return x
        if not self.filtering:
            return x[self.kept]
        times = np.arange(x.shape[0], dtype=np.float64) * self.t_r
        spline = CubicSpline(times[self.kept], x[self.kept], axis=0)
        x[self.censored] = spline(times[self.censored])
        return x

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if not self.filtering:
            return x
        x = butterworth(x, sampling_rate=1.0 / self.t_r, low_pass=self.low_pass,
                        high_pass=self.high_pass, order=BUTTERWORTH_ORDER, copy=True)
        return x[self.kept] if self.censored.size else x

    def _confound_basis(self, confounds: np.ndarray) -> np.ndarray | None:
        c = self._interpolate_or_censor(np.array(confounds, dtype=np.float64))
        if self.detrend:
            _detrend(c)
        c = self._filter(c)
        _zscore(c)
        q, r, _ = linalg.qr(c, mode="economic", pivoting=True)
        q = q[:, np.abs(np.diag(r)) > _EPS * 100.0]
        return q if q.shape[1] else None

    def apply_steps(self, x: np.ndarray) -> np.ndarray:
        """All linear steps (everything but z-scoring) on float64 columns."""
        x = self._interpolate_or_censor(np.array(x, dtype=np.float64))
        if self.detrend:
            _detrend(x)
        x = self._filter(x)
        if self.q is not None:
            x -= self.q @ (self.q.T @ x)
        return x

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """Clean a (n_window, n) float32 block; returns (n_kept, n) float32.

        Each voxel's first value is subtracted before the float32 product (and
        its image under the operator added back if that is not zero), so that
        rounding errors scale with the signal's fluctuations, not its mean
        (BOLD means are 100-10,000 times larger than the fluctuations).
        """
        offset = np.array(block[0], dtype=np.float32)
        y = self.operator32 @ (block - offset)
        if self.ones_response is not None:
            y += np.outer(self.ones_response, offset).astype(np.float32)
        if self.standardize == "zscore_sample" and y.shape[0] > 1:
            std = np.sqrt(np.einsum("ij,ij->j", y, y, dtype=np.float64) / (y.shape[0] - 1))
            std[std < _EPS] = 1.0
            y *= (1.0 / std).astype(np.float32)
        return y


def _check_nyquist(low_pass: float | None, high_pass: float | None, t_r: float) -> None:
    """Band edges below the Nyquist frequency of this scan (the rest is checked by the parameters)."""
    nyquist = 0.5 / t_r
    for name, value in (("low_pass_hz", low_pass), ("high_pass_hz", high_pass)):
        if value is not None and value >= nyquist:
            raise InvalidParameterError(
                f"{name}={value:g} Hz is at or above the Nyquist frequency {nyquist:g} Hz of "
                f"this scan (TR {t_r:g} s); lower it or pass None to skip that edge."
            )


def _normalise_standardize(standardize: Any) -> str | None:
    if standardize is True:
        return "zscore_sample"
    if standardize is False or standardize is None:
        return None
    if standardize == "zscore_sample":
        return standardize
    raise InvalidParameterError(
        f"standardize must be 'zscore_sample' or None, got {standardize!r}."
    )


def _no_smoothing_if_zero(value: float | None) -> float | None:
    """``--smoothing-fwhm 0`` means no smoothing (None)."""
    return value or None


@dataclass(frozen=True)
class BoldCleaningParameters(Parameters):
    """Every choice of :func:`clean_bold`, validated once (defaults declared here only).

    The same object serves the targeting job, group seedmaps and connectomes,
    so the cleaning of an individual map and of the maps it is compared with
    cannot drift apart.
    """

    confound_strategy: str = param(
        "simple", help="confound strategy: simple, scrubbing, minimal or none",
        kind="str")
    global_signal_regression: bool = param(
        True, flag="--no-gsr",
        help="regress the global signal (recorded in every sidecar)")
    confounds_all_columns: bool = param(
        False, help="every column of the confounds file is a regressor (a plain matrix "
                    "without fMRIPrep column names; the strategy is then not used)")
    low_pass_hz: float | None = param(0.1, flag="--low-pass", help="low-pass edge", units="Hz",
                                      allow_none=True, low=0, low_inclusive=False, high=10)
    high_pass_hz: float | None = param(0.01, flag="--high-pass", help="high-pass edge", units="Hz",
                                       allow_none=True, low=0, low_inclusive=False, high=10)
    smoothing_fwhm_mm: float | None = param(
        6.0, flag="--smoothing-fwhm", help="Gaussian smoothing FWHM, 0 = none", units="mm",
        low=0, allow_none=True, from_cli=_no_smoothing_if_zero, high=50)
    discard_frames: int = param(0, help="initial frames to drop (non-steady state)", low=0, high=100_000)
    detrend: bool = param(True, cli=False,
                          help="remove mean and linear trend before filtering")
    standardize: str | None = param("zscore_sample", cli=False, kind="any", allow_none=True,
                                    help="final scaling of each voxel's time series "
                                         "('zscore_sample' or None)")
    fd_threshold_mm: float = param(0.5, cli=False, units="mm", low=0, low_inclusive=False,
                                   help="scrubbing: censor frames with framewise displacement "
                                        "above this", high=100)
    std_dvars_threshold: float | None = param(
        None, cli=False, allow_none=True, kind="any",
        help="scrubbing: censor frames with std_dvars above this (None = nilearn's 1.5; "
             "inf = FD only)")
    min_frames: int = param(MIN_FRAMES, cli=False, low=1,
                            help="fewest frames left after discarding and censoring", high=100_000)
    min_duration_min: float = param(MIN_DURATION_MIN, cli=False, units="min", low=0,
                                    help="shortest duration of the frames left", high=1000)

    def check(self) -> None:
        """Known strategy, ``standardize`` value, and a band with high below low."""
        _check_strategy(self.confound_strategy)
        object.__setattr__(self, "standardize", _normalise_standardize(self.standardize))
        dvars = self.std_dvars_threshold
        if dvars is not None and (isinstance(dvars, bool) or not isinstance(dvars, int | float)
                                  or not dvars > 0):
            raise InvalidParameterError(
                f"std_dvars_threshold must be > 0 (math.inf: censor on FD only) or None, "
                f"got {dvars!r}.")
        if self.smoothing_fwhm_mm == 0:
            object.__setattr__(self, "smoothing_fwhm_mm", None)
        low, high = self.low_pass_hz, self.high_pass_hz
        if low is not None and high is not None and high >= low:
            raise InvalidParameterError(
                f"high_pass_hz ({high:g}) must be below low_pass_hz ({low:g}) for a "
                "band-pass (typical: 0.01-0.1 Hz)."
            )

    @property
    def dvars_threshold(self) -> float:
        """The std_dvars censoring threshold in effect (nilearn's 1.5 when unset)."""
        return (DEFAULT_STD_DVARS_THRESHOLD if self.std_dvars_threshold is None
                else float(self.std_dvars_threshold))


def _check_discard(discard_frames: int, n_total: int) -> int:
    if not 0 <= discard_frames < n_total:
        raise InvalidParameterError(
            f"discard_frames must be an integer from 0 to {n_total - 1} (the run has {n_total} "
            f"frames), got {discard_frames!r}."
        )
    return int(discard_frames)


def _confounds_and_censoring(
    confounds_table: pd.DataFrame | None, n_total: int, discard: int,
    params: BoldCleaningParameters,
) -> tuple[np.ndarray | None, list[str], np.ndarray | None, dict[str, Any]]:
    """Steps 1-2: regressors, kept frames and censoring facts on the frames after ``discard``."""
    strategy, global_signal = params.confound_strategy, params.global_signal_regression
    if confounds_table is None:
        if strategy != "none" or global_signal:
            raise ConfoundsError(
                f"Strategy {strategy!r}{' with global signal regression' if global_signal else ''}"
                " needs the fMRIPrep confounds table (*_desc-confounds_timeseries.tsv); give it, "
                "or use strategy 'none' with global_signal=False (--no-gsr)."
            )
        return None, [], None, {}
    if len(confounds_table) != n_total:
        raise ConfoundsError(
            f"The confounds table has {len(confounds_table)} rows but the BOLD has "
            f"{n_total} frames; use the confounds file fMRIPrep wrote for this run."
        )
    table = confounds_table.iloc[discard:].reset_index(drop=True)
    if params.confounds_all_columns:
        confounds, names = _all_columns(table, params)
        sample_mask, censor_details = None, {}
    else:
        confounds, names, sample_mask = select_confounds(
            table, strategy=strategy, global_signal=global_signal,
            fd_threshold_mm=params.fd_threshold_mm, std_dvars_threshold=params.std_dvars_threshold,
        )
        _, censor_details = _censored_frames(
            table, scrub=strategy == "scrubbing", fd_threshold_mm=params.fd_threshold_mm,
            std_dvars_threshold=params.dvars_threshold, min_segment=SCRUB_MIN_SEGMENT,
        )
    # fMRIPrep writes n/a in the first row of derivatives; _confound_values fills it (nilearn).
    censor_details["first_row_filled_columns"] = [
        name for name in names if len(table) > 1 and pd.isna(table[name].iloc[0])]
    return confounds, names, sample_mask, censor_details


def _all_columns(table: pd.DataFrame, params: BoldCleaningParameters,
                 ) -> tuple[np.ndarray, list[str]]:
    """``confounds_all_columns``: every column is a regressor; no censoring (no FD column)."""
    if params.confound_strategy == "scrubbing":
        raise InvalidParameterError(
            "--confounds-all-columns takes every column as a regressor and has no framewise "
            "displacement to scrub with: use --confound-strategy simple (the default).")
    names = [str(c) for c in table.columns]
    if params.global_signal_regression and "global_signal" not in names:
        raise ConfoundsError(
            "Global signal regression needs a 'global_signal' column, which this confounds "
            "matrix lacks: add it (the surface job adds the mean cortical signal) or pass "
            "--no-gsr.")
    if not params.global_signal_regression and "global_signal" in names:
        names.remove("global_signal")
    return _confound_values(table, names, None), names


def _cleaning_record(
    params: BoldCleaningParameters, *, names: list[str], cleaner: _TemporalPipeline,
    discard: int, censored_abs: list[int], censor_details: dict[str, Any], n_total: int,
    n_kept: int, t_r: float, affine: np.ndarray | None,
) -> dict[str, Any]:
    """Every choice made and fact found, for the provenance sidecar."""
    strategy = params.confound_strategy
    scrub = strategy == "scrubbing"
    low, high = params.low_pass_hz, params.high_pass_hz
    fwhm = params.smoothing_fwhm_mm or 0.0
    return {
        "confound_strategy": "all columns" if params.confounds_all_columns else strategy,
        "strategy_definition": ("every column of the confounds file is a regressor "
                                "(--confounds-all-columns)" if params.confounds_all_columns
                                else STRATEGY_DESCRIPTIONS[strategy]),
        "global_signal": bool(params.global_signal_regression),
        "confound_columns": list(names),
        "n_confounds": len(names),
        "n_confounds_independent": 0 if cleaner.q is None else int(cleaner.q.shape[1]),
        "first_row_filled_columns": censor_details.get("first_row_filled_columns", []),
        "first_row_fill": ("n/a in the first row replaced by the second row's value "
                           "(nilearn's convention for fMRIPrep derivatives)"),
        "fd_threshold_mm": float(params.fd_threshold_mm) if scrub else None,
        "std_dvars_threshold": params.dvars_threshold if scrub else None,
        "scrub_min_segment": SCRUB_MIN_SEGMENT if scrub else None,
        "discarded_frames": discard,
        "censored_frames": censored_abs,
        "n_censored_frames": len(censored_abs),
        "non_steady_state_frames": [discard + i for i in
                                    censor_details.get("non_steady_state_frames", [])],
        "n_frames_total": n_total,
        "n_frames_kept": int(n_kept),
        "effective_dof": round(cleaner.effective_dof(), 2),
        "kept_duration_min": round(n_kept * t_r / 60.0, 3),
        "censored_frame_handling": (
            "interior censored frames interpolated (cubic spline) before filtering, then "
            "removed; censored frames at the start/end dropped" if censored_abs else None
        ),
        "t_r_s": t_r,
        "filter": "butterworth" if (low or high) else None,
        "filter_order": BUTTERWORTH_ORDER if (low or high) else None,
        "high_pass_hz": high,
        "low_pass_hz": low,
        "detrend": bool(params.detrend),
        "standardize": params.standardize,
        "standardize_confounds": True,
        "smoothing_fwhm_mm": fwhm if fwhm > 0 else None,
        "smoothing_sigma_voxels": (
            [round(float(s), 6) for s in fwhm_to_sigma_voxels(fwhm, affine)]
            if fwhm > 0 and affine is not None else None
        ),
        "smoothing_method": (
            None if fwhm <= 0 else
            "iterated heat-kernel smoothing on the template mesh (tmsnet.surface.mesh)"
            if affine is None else
            "Gaussian, 3 separable passes truncated at 4 sigma (as nilearn.image.smooth_img), "
            "within the brain mask (normalised convolution)"
        ),
        "implementation": (
            "steps and order of nilearn.signal.clean (interpolate censored frames, detrend, "
            "nilearn.signal.butterworth, censor, QR confound projection, z-score), composed "
            "into one linear operator applied to every voxel"
        ),
    }


def _smooth_and_filter(
    bold: BoldData, window: np.ndarray, kept: np.ndarray, confounds: np.ndarray | None,
    params: BoldCleaningParameters, *, t_r: float, n_jobs: int | None,
    lap: Any, smoother: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, _TemporalPipeline]:
    """Steps 3-4: smoothing of the kept frames, then the temporal operator, block by block."""
    fwhm = params.smoothing_fwhm_mm or 0.0
    n_vox = bold.data.shape[1]
    if fwhm > 0:  # kept frames only: censored ones are interpolated or dropped
        work = np.empty((window.size, n_vox), dtype=np.float32)
        work[np.setdiff1d(np.arange(window.size), kept)] = 0.0  # interpolated later
        if smoother is not None:  # a surface: the mesh's own smoothing (frames x vertices)
            work[kept] = smoother(bold.data[window[kept]])
        else:
            smooth_in_mask(bold.data, bold.mask, bold.reference.affine, fwhm,
                           rows=window[kept], out=work, out_rows=kept, n_jobs=n_jobs)
        source = work
        result = work[: kept.size]
    else:
        source = bold.data[window[0] : window[-1] + 1]
        result = np.empty((kept.size, n_vox), dtype=np.float32)
    lap("smoothing")
    cleaner = _TemporalPipeline(
        n_window=window.size, kept=kept, t_r=t_r, low_pass=params.low_pass_hz,
        high_pass=params.high_pass_hz, detrend=params.detrend, standardize=params.standardize,
        confounds=confounds,
    )
    lap("temporal_operator")
    # One matrix product per block (BLAS is multi-threaded); writing the
    # result into ``source``'s own rows is safe as each product is complete
    # before it is stored.
    for start in range(0, n_vox, _VOXEL_BLOCK):
        block = slice(start, min(start + _VOXEL_BLOCK, n_vox))
        result[:, block] = cleaner(source[:, block])
    lap("temporal")
    return result, cleaner


class _Laps:
    """``lap(stage)`` records the seconds since the previous lap under ``stage``."""

    def __init__(self, clock: dict[str, float]) -> None:
        self.clock, self.stamp = clock, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.clock[stage], self.stamp = now - self.stamp, now


def clean_bold(
    bold: BoldData,
    confounds_table: pd.DataFrame | None,
    parameters: BoldCleaningParameters | None = None,
    *,
    n_jobs: int | None = None,
    timings: dict[str, float] | None = None,
    smoother: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Denoise a BOLD run: smooth, censor, detrend, band-pass, regress, z-score.

    Parameters
    ----------
    bold : BoldData
        From :func:`tmsnet.io.fmriprep.load_bold` (not modified).
    confounds_table : pandas.DataFrame or None
        fMRIPrep confounds (one row per frame); None only with strategy
        ``"none"`` and no global signal regression.
    parameters : BoldCleaningParameters, optional
        The fMRI cleaning: confound strategy, global signal regression,
        band-pass edges (Hz), smoothing FWHM (mm), discarded frames, censoring
        thresholds, floors on the frames left (default: its defaults, i.e.
        "simple", GSR on, 0.01-0.1 Hz, 6 mm).
    n_jobs : int, optional
        Smoothing threads (default: available CPUs, at most 8); results do not
        depend on it.
    timings : dict, optional
        If given, filled with the wall time (s) of each stage.
    smoother : callable, optional
        For a surface: ``smoother(frames)`` smooths (n_frames, n) at ``smoothing_fwhm_mm``
        on the mesh; ``bold`` then needs only ``data`` and ``t_r``.

    Returns
    -------
    cleaned : ndarray of float32, shape (n_kept_frames, n_voxels)
        Cleaned time series of the kept frames, columns as ``bold.data``.
    parameters : dict
        Every choice made, for the provenance sidecar: strategy, confound
        names, global signal on/off, band, FWHM, discarded and censored
        frames, frames kept...

    Raises
    ------
    InvalidParameterError
        A band edge at or above Nyquist, or ``discard_frames`` beyond the run.
    ConfoundsError
        Missing table or columns, or a row count different from the BOLD.
    ScanTooShortError
        Too few frames left after discarding and censoring.
    """
    params = BoldCleaningParameters() if parameters is None else parameters
    validate_type(params, BoldCleaningParameters, "parameters")
    clock: dict[str, float] = {}
    lap = _Laps(clock)

    t_r = float(bold.t_r)
    _check_nyquist(params.low_pass_hz, params.high_pass_hz, t_r)
    n_total = int(bold.data.shape[0])
    discard = _check_discard(params.discard_frames, n_total)

    # 1-2. confounds and censoring on the frames after the discarded ones
    confounds, names, sample_mask, censor_details = _confounds_and_censoring(
        confounds_table, n_total, discard, params)
    n_used = n_total - discard
    kept_rel = np.arange(n_used) if sample_mask is None else np.asarray(sample_mask)
    censored_rel = np.setdiff1d(np.arange(n_used), kept_rel)
    what = (f"After discarding {discard} initial frames and censoring {censored_rel.size}, "
            "the BOLD")
    if kept_rel.size == 0:
        raise ScanTooShortError(
            f"{what} has no frame left (all {n_used} frames censored). Check head motion "
            "(framewise_displacement), raise fd_threshold_mm, or use strategy 'simple'."
        )
    check_scan_length(kept_rel.size, t_r, min_frames=params.min_frames,
                      min_duration_min=params.min_duration_min, what=what)
    # Censored frames before the first / after the last kept frame are dropped
    # (nilearn extrapolate=False); interior ones are interpolated before filtering.
    first, last = int(kept_rel[0]), int(kept_rel[-1])
    window = np.arange(discard + first, discard + last + 1)
    kept = kept_rel - first
    if confounds is not None:
        confounds = confounds[first : last + 1]
    lap("confounds")

    result, cleaner = _smooth_and_filter(bold, window, kept, confounds, params, t_r=t_r,
                                         n_jobs=n_jobs, lap=lap, smoother=smoother)

    record = _cleaning_record(
        params, names=names, cleaner=cleaner, discard=discard,
        censored_abs=(discard + censored_rel).tolist(), censor_details=censor_details,
        n_total=n_total, n_kept=kept.size, t_r=t_r,
        affine=None if smoother is not None else bold.reference.affine,
    )
    if timings is not None:
        timings.update(clock)
    return result, record
