"""The field in a target patch for millions of coil placements, from a few adjoint solves (reciprocity).

For a linear functional of the field, ``F = sum_c W_c . E_c`` over the head
voxels, :meth:`~tmsnet.physics.volume_conductor.VolumeConductor.reciprocal_kernel`
gives ``K`` at the nodes with ``F = sum_j m_j . b(r_j)`` for **any** coil of
dipoles ``(r_j, m_j)``, where ``b(r) = (mu0/4pi) sum_n K_n x (r - r_n)/|r - r_n|^3``
(the module docstring of :mod:`tmsnet.physics.volume_conductor`). This module
makes ``b`` cheap to use for a placement search:

1. **Compression of K** (:func:`compress_kernel`): nodes within
   ``exact_radius_mm`` of the target keep their own ``K``; farther nodes are
   summed per cube of ``block_mm`` and placed at the mean position of the
   cube's nodes (the first-order term of the multipole expansion about that
   point vanishes when ``K`` is constant over the cube, so the error is second
   order in ``block / distance``). On a grid as coarse as the block nothing is
   merged.
2. **A table of b** (:class:`ReciprocityTable`): ``b`` computed on the corners
   of the cells of an axis-aligned grid of step ``table_step_mm`` that hold a
   coil dipole of at least one placement of the search (the union of the
   coils' dipoles over positions x angles is a thin curved slab above the
   target), NaN elsewhere.
3. **Per placement** (:meth:`ReciprocityTable.evaluate`): the coil's dipoles
   rotated and translated, ``b`` trilinearly interpolated at each and dotted
   with the rotated moment; compiled with numba, parallel over placements.
   The cost is one interpolation per dipole, independent of the head's size.

The approximations are the table (trilinear, error ~ ``(step / d)^2`` with
``d`` the distance from the coil's dipoles to the sources of ``b``, at least
the 4 mm between the windings and the scalp) and the compression; both are
checked against direct solves (``tests/test_physics_realistic_placement.py``,
``benchmarks/bench_placement_search.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.volume_conductor import reciprocal_field

__all__ = ["ReciprocityTable", "compress_kernel"]

try:  # pragma: no cover - numba is a dependency
    import numba

    _jit = numba.njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=True)
    _prange = numba.prange
except ImportError:  # pragma: no cover
    def _jit(func):  # noqa: D103
        return func

    _prange = range


@_jit
def _mark_cells(origin, inv_step, pos0, rots, trans, mark):  # noqa: D103
    # mark[i, j, k] = 1 for each cell holding a dipole of a placement (benign write races).
    nx, ny, nz = mark.shape
    for p in _prange(rots.shape[0]):
        r = rots[p]
        for j in range(pos0.shape[0]):
            x, y, z = pos0[j, 0], pos0[j, 1], pos0[j, 2]
            i0 = int(np.floor((r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + trans[p, 0] - origin[0])
                                * inv_step))
            i1 = int(np.floor((r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + trans[p, 1] - origin[1])
                                * inv_step))
            i2 = int(np.floor((r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + trans[p, 2] - origin[2])
                                * inv_step))
            if 0 <= i0 < nx and 0 <= i1 < ny and 0 <= i2 < nz:
                mark[i0, i1, i2] = 1


@_jit
def _evaluate(table, origin, inv_step, pos0, mom0, rots, trans, out):  # noqa: D103
    # out[p, k] = sum_j (R m_j) . b_k(R r_j + t), b trilinear in table[i, j, l, 3 k + c].
    nx, ny, nz, nkc = table.shape
    nk = nkc // 3
    for p in _prange(rots.shape[0]):
        r = rots[p]
        acc = np.zeros(nk)
        for j in range(pos0.shape[0]):
            x, y, z = pos0[j, 0], pos0[j, 1], pos0[j, 2]
            mx, my, mz = mom0[j, 0], mom0[j, 1], mom0[j, 2]
            f0 = ((r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + trans[p, 0]) - origin[0]) * inv_step
            f1 = ((r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + trans[p, 1]) - origin[1]) * inv_step
            f2 = ((r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + trans[p, 2]) - origin[2]) * inv_step
            wm0 = r[0, 0] * mx + r[0, 1] * my + r[0, 2] * mz
            wm1 = r[1, 0] * mx + r[1, 1] * my + r[1, 2] * mz
            wm2 = r[2, 0] * mx + r[2, 1] * my + r[2, 2] * mz
            i0, i1, i2 = int(np.floor(f0)), int(np.floor(f1)), int(np.floor(f2))
            if not (0 <= i0 < nx - 1 and 0 <= i1 < ny - 1 and 0 <= i2 < nz - 1):
                for k in range(nk):
                    acc[k] = np.nan
                continue
            t0, t1, t2 = f0 - i0, f1 - i1, f2 - i2
            for d0 in range(2):
                w0 = t0 if d0 else 1.0 - t0
                for d1 in range(2):
                    w01 = w0 * (t1 if d1 else 1.0 - t1)
                    for d2 in range(2):
                        w = w01 * (t2 if d2 else 1.0 - t2)
                        cell = table[i0 + d0, i1 + d1, i2 + d2]
                        for k in range(nk):
                            acc[k] += w * (wm0 * cell[3 * k] + wm1 * cell[3 * k + 1] + wm2 * cell[3 * k + 2])
        for k in range(nk):
            out[p, k] = acc[k]


def compress_kernel(node_positions_m: np.ndarray, kernels: np.ndarray, centre_m: Any, *,
                    exact_radius_mm: float, block_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Sources of ``b``: the nodes near the target, block sums farther away (module docstring).

    Parameters
    ----------
    node_positions_m : array, shape (n, 3)
        Node positions (m).
    kernels : array, shape (k, n, 3)
        ``K`` of each functional at the nodes.
    centre_m : array, shape (3,)
        Target centre (m).
    exact_radius_mm, block_mm : float
        Radius of the exact region and edge of the blocks (mm).

    Returns
    -------
    positions : numpy.ndarray, shape (s, 3)
        Source positions (m).
    moments : numpy.ndarray, shape (k, s, 3)
        Summed ``K`` per source.
    """
    pos = np.asarray(node_positions_m, dtype=float)
    kern = np.asarray(kernels, dtype=float)
    near = np.linalg.norm(pos - np.asarray(centre_m, dtype=float), axis=1) <= exact_radius_mm * 1e-3
    far = ~near
    block = np.floor((pos[far] - pos.min(axis=0)) / (block_mm * 1e-3)).astype(np.int64)
    _, group = np.unique(block, axis=0, return_inverse=True)
    group = group.ravel()
    n_groups = int(group.max()) + 1 if group.size else 0
    counts = np.bincount(group, minlength=n_groups).astype(float)
    centroids = np.stack([np.bincount(group, pos[far, a], n_groups) for a in range(3)], axis=1)
    centroids /= counts[:, None]
    summed = np.stack([np.stack([np.bincount(group, kern[k, far, a], n_groups) for a in range(3)], axis=1)
                       for k in range(kern.shape[0])])
    return np.concatenate([pos[near], centroids]), np.concatenate([kern[:, near], summed], axis=1)


class ReciprocityTable:
    """``b`` of several functionals tabulated where a search's coil dipoles go (module docstring).

    Parameters
    ----------
    source_positions_m : array, shape (s, 3)
        Positions of the current elements of ``b`` (from :func:`compress_kernel`).
    source_moments : array, shape (k, s, 3)
        Their ``K``, one set per functional.
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        The coil in its own frame (m; A·m² per A).
    rotations : array, shape (p, 3, 3)
        Coil axes (columns) of every placement to be evaluated.
    origins_m : array, shape (p, 3)
        Coil origins (m).
    step_mm : float
        Table step (mm).
    """

    def __init__(self, source_positions_m: Any, source_moments: Any, dipole_positions_m: Any,
                 dipole_moments: Any, rotations: Any, origins_m: Any, step_mm: float) -> None:
        if not step_mm > 0:
            raise InvalidParameterError(f"The table step must be > 0 mm, got {step_mm}.")
        self.dipole_positions_m = np.ascontiguousarray(dipole_positions_m, dtype=float)
        self.dipole_moments = np.ascontiguousarray(dipole_moments, dtype=float)
        rots, origins = self._placements(rotations, origins_m)
        self.step_m = float(step_mm) * 1e-3
        reach = np.max(np.linalg.norm(self.dipole_positions_m, axis=1))
        lo = origins.min(axis=0) - reach - 2 * self.step_m
        hi = origins.max(axis=0) + reach + 2 * self.step_m
        self.origin_m = lo
        shape = tuple(int(v) for v in np.ceil((hi - lo) / self.step_m) + 1)
        mark = np.zeros(shape, dtype=np.uint8)
        _mark_cells(self.origin_m, 1.0 / self.step_m, self.dipole_positions_m, rots, origins, mark)
        corners = np.zeros(shape, dtype=bool)
        for offset in np.ndindex(2, 2, 2):  # the 8 corners of every marked cell
            sl = tuple(slice(o, n) for o, n in zip(offset, shape, strict=True))
            corners[sl] |= mark[tuple(slice(0, n - o) for o, n in zip(offset, shape, strict=True))] > 0
        ijk = np.argwhere(corners)
        points = self.origin_m + ijk * self.step_m
        moments = np.asarray(source_moments, dtype=float)
        self.n_functionals = moments.shape[0]
        self.n_points = len(points)
        self.values = np.full((*shape, 3 * self.n_functionals), np.nan, dtype=np.float32)
        for k in range(self.n_functionals):
            b = reciprocal_field(points, source_positions_m, moments[k])
            for c in range(3):
                self.values[ijk[:, 0], ijk[:, 1], ijk[:, 2], 3 * k + c] = b[:, c]

    @staticmethod
    def _placements(rotations: Any, origins_m: Any) -> tuple[np.ndarray, np.ndarray]:
        rots = np.ascontiguousarray(rotations, dtype=float).reshape(-1, 3, 3)
        origins = np.ascontiguousarray(origins_m, dtype=float).reshape(-1, 3)
        if len(rots) != len(origins) or not (np.all(np.isfinite(rots)) and np.all(np.isfinite(origins))):
            raise InvalidParameterError(f"{len(rots)} rotations for {len(origins)} coil origins "
                                        "(or non-finite).")
        return rots, origins

    @property
    def nbytes(self) -> int:
        """Memory of the table (bytes)."""
        return int(self.values.nbytes)

    def evaluate(self, rotations: Any, origins_m: Any) -> np.ndarray:
        """Every functional for every placement.

        Parameters
        ----------
        rotations : array, shape (p, 3, 3)
            Coil axes (columns x, y, z) in the world frame.
        origins_m : array, shape (p, 3)
            Coil origins (m).

        Returns
        -------
        numpy.ndarray, shape (p, k)
            The functionals (V/m per A/µs for patch means of E).

        Raises
        ------
        InvalidParameterError
            If a dipole of a placement falls where ``b`` was not tabulated.
        """
        rots, origins = self._placements(rotations, origins_m)
        out = np.zeros((len(rots), self.n_functionals))
        _evaluate(self.values, self.origin_m, 1.0 / self.step_m, self.dipole_positions_m, self.dipole_moments,
                  rots, origins, out)
        if not np.all(np.isfinite(out)):
            raise InvalidParameterError("A placement put a coil dipole where the reciprocity table was not "
                                        "computed; build the table with every placement to be evaluated.")
        return out
