"""Compiled steps of the ``hierarchical`` method: column ranks and the linkage distances.

The method runs on every bootstrap resample (about 250 times a job), so the two
steps around scipy's average linkage are done here in one pass each, with the
values that the plain array code gave (the targets, clouds and output files are
byte-identical to it, ``tests/test_hierarchical_kernels.py``):

:func:`average_ranks`
    The average ranks of every column (ties share the mean of their ranks), equal
    to ``scipy.stats.rankdata(data, axis=0)``: numpy's vectorised sort of each
    column, then one compiled pass that gives each run of equal values its mean rank.
:func:`condensed_distances`
    ``1 - |rho|`` of a correlation matrix's upper triangle, in float32 as the array
    code computed it (``clip``, ``abs``, ``1 - x``) and widened to float64, in the
    condensed order of :func:`scipy.spatial.distance.squareform`: what
    :func:`scipy.cluster.hierarchy.linkage` reads, without the four full-matrix
    passes, the float32 condensed copy and linkage's conversion to float64.

Without numba, or with ``TMSNET_DISABLE_NUMBA=1``, both run the plain array code
(``rankdata``; ``clip``, ``abs``, ``1 - x``, ``squareform``) with the same values.

Tried and not kept: a compiled average linkage that builds only the merges below
the cut (a heap of the ~2 % of pairs within it, sums of the distances between
neighbouring clusters). Its partitions equalled scipy's, but it took 0.31 s
against 0.27 s for scipy's NN-chain on the 5,205-voxel 2 mm DLPFC region: the
sums between clusters that are not neighbours read the matrix at random.
"""

from __future__ import annotations

import numpy as np

from tmsnet.utils.compiled import numba_allowed

try:  # numba is a dependency; without it (or with TMSNET_DISABLE_NUMBA=1) the array code runs
    import numba
except ImportError:  # pragma: no cover
    numba = None

#: Whether the compiled passes run (else scipy's rankdata and the plain array code: equal values).
HAVE_NUMBA = numba is not None and numba_allowed()


def _njit(function):
    return numba.njit(cache=True)(function) if HAVE_NUMBA else function


@_njit
def _ranks_from_order(rows: np.ndarray, order: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Average 1-based ranks of each row of ``rows`` given each row's ascending ``order``."""
    n_rows, n = rows.shape
    out = np.empty((n_rows, n))
    for c in range(n_rows):
        values = rows[c]
        sort = order[c]
        i = 0
        while i < n:
            j = i
            while j + 1 < n and values[sort[j + 1]] == values[sort[i]]:
                j += 1
            rank = 0.5 * (i + j) + 1.0
            for k in range(i, j + 1):
                out[c, sort[k]] = rank
            i = j + 1
    return out


def average_ranks(data: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, float64) of every column of ``data`` (n_rows, n_columns).

    Equal to ``scipy.stats.rankdata(data, axis=0)`` for data without NaN (the order
    within a run of equal values does not change their mean rank, so numpy's
    unstable sort will do), and Fortran-ordered as rankdata returns it: numpy sums
    along axis 0 of a Fortran-ordered array pairwise, of a C-ordered one row after
    row, so the layout decides the last bits of a mean over frames.
    """
    if not HAVE_NUMBA:
        from scipy.stats import rankdata

        return rankdata(np.asarray(data, dtype=np.float64), axis=0)
    rows = np.ascontiguousarray(np.asarray(data, dtype=np.float64).T)
    return _ranks_from_order(rows, np.argsort(rows, axis=1)).T


@_njit
def _condensed(upper: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n = upper.shape[0]
    one = np.float32(1.0)
    out = np.empty(n * (n - 1) // 2)
    k = 0
    for a in range(n):
        for b in range(a + 1, n):
            r = upper[a, b]
            if r > one:
                r = one
            elif r < -one:
                r = -one
            out[k] = np.float64(one - np.float32(abs(r)))
            k += 1
    return out


def condensed_distances(rho_upper: np.ndarray) -> np.ndarray:
    """``1 - |clip(rho, -1, 1)|`` of the upper triangle, condensed, as float64.

    Parameters
    ----------
    rho_upper : ndarray of float32, shape (n, n)
        Correlations; only ``rho_upper[a, b]`` with ``a < b`` is read.

    Returns
    -------
    ndarray of float64, shape (n * (n - 1) / 2,)
        The distances in the order of ``squareform`` (row by row of the upper
        triangle), each computed in float32 and then widened.
    """
    upper = np.ascontiguousarray(rho_upper, dtype=np.float32)
    if not HAVE_NUMBA:
        from scipy.spatial.distance import squareform

        distance = np.triu(upper, 1)
        distance += distance.T
        np.clip(distance, -1.0, 1.0, out=distance)
        np.abs(distance, out=distance)
        np.subtract(1.0, distance, out=distance)
        np.fill_diagonal(distance, 0.0)
        return squareform(distance, checks=False).astype(np.float64)
    return _condensed(upper)
