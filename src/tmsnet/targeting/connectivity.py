"""Seed time series and voxelwise seed connectivity (Pearson r and Fisher z).

The seed-based approach of Fox et al. 2012 (Biol Psychiatry 72:595): the mean
cleaned time series of the seed ROI (sgACC) is correlated with every brain
voxel's cleaned time series. Work happens on a ``(n_frames, n_voxels)`` matrix
of in-mask voxels, so a 2 mm whole-brain map costs one matrix-vector product;
no voxel-by-voxel matrix is ever formed.
"""

from __future__ import annotations

import numpy as np

from tmsnet.exceptions import EmptyRegionError, InvalidImageError

#: r values are clipped to +/- this before ``arctanh`` so that z stays finite.
_R_CLIP = 1.0 - 1e-7


def seed_time_series(
    data: np.ndarray,
    seed_voxels: np.ndarray,
    *,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Mean (or weighted mean) time series of the seed voxels.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Cleaned time series of the brain voxels.
    seed_voxels : ndarray of bool, shape (n_voxels,)
        Which voxels form the seed.
    weights : ndarray, shape (n_voxels,), optional
        Per-voxel weights (e.g. a group seedmap, Fox et al. 2013); when given,
        the seed is ``data[:, seed_voxels] @ weights[seed_voxels]`` divided by
        the sum of absolute weights.

    Returns
    -------
    ndarray, shape (n_frames,)
        float64 seed time series.

    Raises
    ------
    EmptyRegionError
        If the seed has no voxel or the weights sum to zero.
    """
    seed_voxels = np.asarray(seed_voxels, dtype=bool)
    if seed_voxels.shape != (data.shape[1],):
        raise InvalidImageError(
            f"The seed selection has shape {seed_voxels.shape} but the data has "
            f"{data.shape[1]} voxels; build the seed on the same brain mask as the data."
        )
    if not seed_voxels.any():
        raise EmptyRegionError("The seed holds no voxel; give a seed that overlaps the brain.")
    block = data[:, seed_voxels]
    if weights is None:
        return block.mean(axis=1, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)[seed_voxels]
    norm = np.abs(w).sum()
    if norm == 0:
        raise EmptyRegionError("The seed weights are all zero inside the seed.")
    return (block.astype(np.float64, copy=False) @ w) / norm


def correlation_with_seed(data: np.ndarray, seed: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """Pearson correlation of every voxel with a seed time series.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Time series (any scaling; each column is centred here).
    seed : ndarray, shape (n_frames,)
        Seed time series.
    chunk : int
        Voxels processed at once (bounds temporary memory to
        ``n_frames * chunk`` floats).

    Returns
    -------
    ndarray, shape (n_voxels,)
        float32 Pearson r; 0 for voxels with zero variance.

    Raises
    ------
    InvalidImageError
        If the lengths differ or the seed is constant.
    """
    n_frames, n_voxels = data.shape
    seed = np.asarray(seed, dtype=np.float64).ravel()
    if seed.shape[0] != n_frames:
        raise InvalidImageError(
            f"The seed has {seed.shape[0]} frames but the data has {n_frames}."
        )
    seed_c = seed - seed.mean()
    seed_norm = np.sqrt(seed_c @ seed_c)
    if not np.isfinite(seed_norm) or seed_norm == 0:
        raise InvalidImageError(
            "The seed time series is constant after cleaning, so correlation is undefined; "
            "check that the seed lies in the brain mask and the scan has signal there."
        )
    seed_unit = (seed_c / seed_norm).astype(np.float32)
    r = np.empty(n_voxels, dtype=np.float32)
    for start in range(0, n_voxels, chunk):
        block = np.asarray(data[:, start : start + chunk], dtype=np.float32)
        centred = block - block.mean(axis=0, dtype=np.float64).astype(np.float32)
        norms = np.sqrt(np.einsum("ij,ij->j", centred, centred, dtype=np.float64))
        num = seed_unit @ centred
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(norms > 0, num / norms, 0.0)
        r[start : start + chunk] = values
    np.clip(r, -1.0, 1.0, out=r)
    return r


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher transform ``z = arctanh(r)``, with r clipped just inside (-1, 1).

    Parameters
    ----------
    r : ndarray
        Pearson correlations.

    Returns
    -------
    ndarray
        z values, same dtype as ``r`` (float32 stays float32).
    """
    r = np.asarray(r)
    return np.arctanh(np.clip(r, -_R_CLIP, _R_CLIP)).astype(r.dtype, copy=False)


def resampled_correlations(
    data: np.ndarray,
    seeds: dict[str, np.ndarray],
    resamples: list[np.ndarray],
) -> dict[str, np.ndarray]:
    """Pearson r of every voxel with each seed, on many frame resamples at once.

    A resample (e.g. a block bootstrap) is a multiset of frames, so the sums that
    Pearson r needs on it (``sum x``, ``sum x^2``, ``sum x y``, ``sum y``, ``sum y^2``
    per voxel) are sums over the frames weighted by how often each frame was drawn:
    with ``C`` the ``(n_resamples, n_frames)`` matrix of draw counts, ``C @ X``,
    ``C @ X**2`` and ``(C * y) @ X``. All resamples then cost three matrix products
    instead of one centred copy of the resampled data each. Sums are in float64 on
    data centred by their whole-scan mean (which leaves r unchanged and keeps the
    differences of sums well conditioned); the result is the same r as
    :func:`correlation_with_seed` on ``data[frames]`` and ``seed[frames]`` up to
    float32 rounding (that function sums in float32).

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Time series of the voxels.
    seeds : dict of str to ndarray, shape (n_frames,)
        Seed time series by name (each resampled with the same frames as the data).
    resamples : list of ndarray of int
        Frame indices of each resample (repeats allowed).

    Returns
    -------
    dict of str to ndarray, shape (n_resamples, n_voxels)
        float32 r per seed; 0 for voxels with zero variance in a resample.

    Raises
    ------
    InvalidImageError
        If a seed's length differs from the data or it is constant in a resample.
    """
    n_frames = data.shape[0]
    x = np.asarray(data, dtype=np.float64)
    x = x - x.mean(axis=0)
    counts = np.stack([np.bincount(np.asarray(f), minlength=n_frames)
                       for f in resamples]).astype(np.float64)
    n = counts.sum(axis=1)
    sum_x = counts @ x
    sum_xx = counts @ (x * x)
    var_x = n[:, None] * sum_xx - sum_x * sum_x  # n^2 x the variance of each voxel
    usable = var_x > 1e-12 * n[:, None] * sum_xx  # 0 (not rounding noise) where constant
    norm_x = np.sqrt(np.where(usable, var_x, 1.0))
    out: dict[str, np.ndarray] = {}
    for name, seed in seeds.items():
        y = np.asarray(seed, dtype=np.float64).ravel()
        if y.shape[0] != n_frames:
            raise InvalidImageError(
                f"The seed has {y.shape[0]} frames but the data has {n_frames}.")
        y = y - y.mean()
        sum_y, sum_yy = counts @ y, counts @ (y * y)
        var_y = n * sum_yy - sum_y * sum_y
        if not np.all(var_y > 1e-12 * n * sum_yy):
            raise InvalidImageError(
                "The seed time series is constant after cleaning, so correlation is undefined; "
                "check that the seed lies in the brain mask and the scan has signal there.")
        cov = n[:, None] * ((counts * y) @ x) - sum_x * sum_y[:, None]
        r = np.where(usable, cov / (norm_x * np.sqrt(var_y)[:, None]), 0.0)
        out[name] = np.clip(r, -1.0, 1.0).astype(np.float32)
    return out
