"""The TMS E-field in a voxel head: finite differences on the voxel corners, AMG-preconditioned CG.

Problem (quasi-static; ``../shared/REFERENCES.md`` section 3). With ``a =
dA/dt`` the primary field of the coil's magnetic dipoles,
``A(r) = (mu0/4pi) sum_j m_j x (r - r_j)/|r - r_j|^3`` times dI/dt, the field is
``E = -a - grad(phi)``, where ``div(sigma grad phi) = -div(sigma a)`` in the
head and no current leaves it: ``sigma (grad phi + a) . n = 0`` on the scalp.

Discretisation: the scalar-potential finite-difference scheme (SPFD; Dawson &
Stuchly 1998) on the label volume of :mod:`tmsnet.physics.head_model`, i.e.
finite volumes on the grid dual to the voxels. The unknowns are ``phi`` at the
voxel *corners* (nodes) touched by a head voxel; each grid edge (two
neighbouring nodes, length ``h``) is a conductor of conductance
``sigma_e S / h``, where ``S`` is the cross-section of the dual cell and
``sigma_e`` the mean conductivity of the four voxels around the edge
(background counts as 0, so a boundary edge carries a quarter or a half of a
channel and nothing leaves the head). The edge current is
``sigma_e S [-(phi_j - phi_i)/h - a_e]`` with ``a_e = (a_i + a_j)/2 . e_ij``
(the trapezoidal line integral of ``a``). Current conservation at every node
gives a 7-point, symmetric, weighted graph Laplacian; one node of each
connected piece of the head is grounded (its diagonal doubled: this fixes
``phi`` there to 0 and changes nothing else, because the right-hand side sums
to zero over each piece). The system is solved by conjugate gradients
preconditioned with a pyamg smoothed-aggregation V-cycle (symmetric Gauss-Seidel
smoothing; links weaker than 0.02 of their row, such as those into the 0.01 S/m
skull, left out of the aggregates, which halved the iterations on the layered
sphere). The field of a voxel is ``-a - grad(phi)`` at its centre: along each
axis the mean of the field on its four parallel edges (the centroid gradient of
the trilinear interpolant).

Why this scheme. The head already is a label volume on a 1 mm grid, so the
voxels are the mesh: no surface extraction, tetrahedral mesher or mesh-quality
failure. Potentials on the corners make tissue boundaries pass through nodes:
the tangential field is continuous there, the current normal to an
axis-aligned boundary sees the two tissues in series, and voxels that touch
only along an edge (a thin, oblique CSF layer) still conduct between them.
The 7-point operator has about 7 non-zeros per unknown against 27 for
trilinear hexahedral finite elements on the same grid. Measured during
development on the layered sphere of :func:`~tmsnet.physics.head_model.sphere_phantom`
at 3 mm (Magstim 70 mm coil at the vertex; relative error of ``E`` against the
sphere kernel over the brain, median / 95th percentile): cell-centred finite
volumes with harmonic-mean face conductivities 13.8 % / 31 % (first order: 8.2 %
/ 28 % at 2 mm), trilinear hexahedral FEM 2.2 % / 17.5 % with 3.7 times the
non-zeros, this scheme 1.4 % / 13.0 % (1.1 % / 9.8 % at 2 mm, 0.67 % / 5.1 % at
1 mm). The errors left are the staircase of any voxel method, within a voxel or
two of a tissue boundary, and they are largest right under the coil: the mean
|E| over the cortex within 5 mm of the point under the coil is 2.0 % low at
1 mm but 13.5 % low at 2 mm (``benchmarks/bench_realistic_efield.py``), so head
models for dosing should be on a 1 mm grid (fMRIPrep's T1w grid).

Units: positions in metres (world frame of the label affine, which is in
mm), dipole moments in A·m² per A (the ``.ccd`` convention), ``a`` and ``E``
in **V/m per A/µs** of coil current slope (as :mod:`tmsnet.physics.efield`),
``phi`` in V per A/µs.

Reciprocity (design for the placement search). Every output is linear in
``a``. For a target functional ``F(E) = sum_c W_c . E_c`` over voxels (``W``:
weights times directions on the target voxels, e.g. the patch mean of the
component along the cortical normal), :meth:`VolumeConductor.reciprocal_kernel`
solves the adjoint problem once (one CG solve with the same operator and
preconditioner) and returns ``K`` at the nodes such that ``F = sum_n K_n . a_n``
for *every* primary field ``a`` (exact to the solver tolerance, because the
operator is symmetric). For a coil, ``a_n = (mu0/4pi) sum_j m_j x (r_n -
r_j)/|.|^3``, so ``F = sum_j m_j . b(r_j)`` with ``b = primary_field(r_j;
positions r_n, moments K_n)``, the "magnetic field" of the current elements
``K`` (:func:`reciprocal_field`). A search over positions x orientations
therefore costs one solve per target functional, ``b`` tabulated once on a
grid of points covering where the coil's dipoles can be above the target
(``b`` is smooth outside the head: near elements summed exactly, far ones
block-summed), then per placement the dipoles transformed and ``sum_j m_j .
b(r_j)``, a dot product per dipole, independent of the number of voxels (the
auxiliary-dipole method of Gomez et al. 2021 is the same identity with ``b``
expanded on auxiliary dipoles). The functional is linear: the field component
along the cortical normal, or along a fixed direction, averaged over a patch
takes one adjoint solve; the full vector at a point takes three (x, y, z), from
which ``|E|`` follows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from tmsnet.exceptions import InvalidImageError, InvalidParameterError
from tmsnet.physics.efield import MU0_OVER_4PI, available_backends
from tmsnet.physics.head_model import Conductivities, check_head_labels
from tmsnet.utils.params import Parameters, param

__all__ = ["FieldSolution", "SolverParameters", "VolumeConductor", "primary_field", "reciprocal_field",
           "solve_field"]

#: A/µs -> A/s.
_PER_MICROSECOND = 1e6
#: numpy fallback of the primary-field kernel: point-dipole pairs per block.
_BLOCK_PAIRS = 2_000_000
#: The voxel axes of the affine must be orthogonal to this tolerance (cosine).
_ORTHOGONAL_TOL = 1e-4

try:  # pragma: no cover - exercised whenever numba is installed
    import numba

    @numba.njit(parallel=True, fastmath={"reassoc", "contract"}, error_model="numpy", cache=True)
    def _numba_curl(points, dip, scale, out):  # noqa: D103
        # out[i] = scale * sum_j m_j x (r_i - r_j) / |r_i - r_j|^3; dip rows: x, y, z, mx, my, mz.
        for i in numba.prange(points.shape[0]):
            rx, ry, rz = points[i, 0], points[i, 1], points[i, 2]
            sx = sy = sz = 0.0
            for j in range(dip.shape[1]):
                dx = rx - dip[0, j]
                dy = ry - dip[1, j]
                dz = rz - dip[2, j]
                d2 = dx * dx + dy * dy + dz * dz
                w = 1.0 / (d2 * np.sqrt(d2))
                sx += (dip[4, j] * dz - dip[5, j] * dy) * w
                sy += (dip[5, j] * dx - dip[3, j] * dz) * w
                sz += (dip[3, j] * dy - dip[4, j] * dx) * w
            out[i, 0] = scale * sx
            out[i, 1] = scale * sy
            out[i, 2] = scale * sz
except ImportError:  # pragma: no cover - numba missing
    numba = None


def _xyz(array: Any, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} must be a finite (n, 3) array, got shape {arr.shape}.")
    return arr


def primary_field(points_m: Any, dipole_positions_m: Any, dipole_moments: Any, *,
                  didt_a_per_us: float = 1.0) -> np.ndarray:
    """Primary field ``a = dA/dt`` of magnetic dipoles, ``(mu0/4pi) sum_j m_j x (r - r_j)/|r - r_j|^3``.

    Parameters
    ----------
    points_m : array, shape (n, 3)
        Field points (m).
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        Dipole positions (m) and moments (A·m² per A), same frame.
    didt_a_per_us : float
        Coil current slope (A/µs).

    Returns
    -------
    numpy.ndarray, shape (n, 3)
        ``dA/dt`` in V/m (per A/µs when ``didt_a_per_us`` is 1); the field of the
        coil alone is ``-a``.

    Raises
    ------
    InvalidParameterError
        On badly shaped or non-finite input, or a point on a dipole.
    """
    points = _xyz(points_m, "points_m")
    pos = _xyz(dipole_positions_m, "dipole_positions_m")
    mom = _xyz(dipole_moments, "dipole_moments")
    if pos.shape != mom.shape:
        raise InvalidParameterError(f"dipole positions {pos.shape} and moments {mom.shape} differ in shape.")
    scale = MU0_OVER_4PI * _PER_MICROSECOND * float(didt_a_per_us)
    out = np.zeros_like(points)
    if not (points.size and pos.size):
        return out
    if "numba" in available_backends():
        _numba_curl(points, np.ascontiguousarray(np.vstack([pos.T, mom.T])), scale, out)
    else:
        step = max(1, _BLOCK_PAIRS // pos.shape[0])
        for s in range(0, len(points), step):
            d = points[s:s + step, None, :] - pos[None]
            with np.errstate(divide="ignore", invalid="ignore"):  # a point on a dipole: refused below
                w = np.einsum("nmk,nmk->nm", d, d) ** -1.5
                out[s:s + step] = scale * np.einsum("nm,nmk->nk", w, np.cross(mom[None], d))
    if not np.all(np.isfinite(out)):
        raise InvalidParameterError("A field point lies on a dipole; keep the coil outside the head.")
    return out


def reciprocal_field(points_m: Any, node_positions_m: Any, kernel: Any) -> np.ndarray:
    """``b`` of the reciprocity identity: ``F = sum_j m_j . b(r_j)`` for any coil's dipoles.

    Parameters
    ----------
    points_m : array, shape (p, 3)
        Where the coil's dipoles may be (m, world frame, outside the head).
    node_positions_m : array, shape (n_nodes, 3)
        :attr:`VolumeConductor.node_positions_m`.
    kernel : array, shape (n_nodes, 3)
        From :meth:`VolumeConductor.reciprocal_kernel`.

    Returns
    -------
    numpy.ndarray, shape (p, 3)
        ``b`` in (V/m per A/µs) per (A·m² per A); the functional of a coil with
        dipoles ``(r_j, m_j)`` is ``sum_j m_j . b(r_j)``.
    """
    return primary_field(points_m, node_positions_m, kernel)


@dataclass(frozen=True)
class SolverParameters(Parameters):
    """Stopping rule and preconditioner of the volume-conductor solve."""

    rtol: float = param(1e-6, help="relative residual at which conjugate gradients stop (at 1e-6 the field "
                                   "differed from the converged one by at most 3e-6 of its maximum)",
                        flag="--fem-rtol", low=0.0, low_inclusive=False, high=1e-2)
    max_iterations: int = param(500, help="most conjugate-gradient iterations before giving up",
                                flag="--fem-max-iterations", low=1, high=100_000)
    amg_theta: float = param(0.02, help="AMG strength-of-connection threshold: weaker links (e.g. into the "
                                        "skull) are left out of the aggregates",
                             flag="--fem-amg-theta", low=0.0, high=0.5)
    amg_max_coarse: int = param(500, help="size of the coarsest AMG level (solved directly)",
                                flag="--fem-amg-max-coarse", low=1, high=100_000)


@dataclass
class FieldSolution:
    """The field of one solve.

    Attributes
    ----------
    e_field : numpy.ndarray, shape (n_cells, 3)
        E (V/m per A/µs when dI/dt was 1), world frame, at the centres of the
        head voxels (:attr:`VolumeConductor.cell_centres_m`).
    potential : numpy.ndarray, shape (n_nodes,)
        ``phi`` (V per A/µs) at the nodes, zero at the grounded nodes.
    iterations : int
        CG iterations.
    relative_residual : float
        Final ``|r| / |b|``.
    timings_s : dict
        Seconds spent per stage.
    conductor : VolumeConductor
        The grid and the operator (voxel centres, nodes, labels).
    """

    e_field: np.ndarray
    potential: np.ndarray
    iterations: int
    relative_residual: float
    timings_s: dict[str, float]
    conductor: VolumeConductor = field(repr=False)

    def volume(self) -> np.ndarray:
        """E on the whole voxel grid, shape (nx, ny, nz, 3), zero outside the head."""
        out = np.zeros((*self.conductor.shape, 3))
        out[self.conductor.inside] = self.e_field
        return out


def _one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread.

    The solver's BLAS calls are vector inner products and the tiny coarse levels:
    threads cost more than they save there, and on a busy machine idle BLAS threads
    spinning for work made a 100 k-node solve ten times slower.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _orthogonal_axes(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit voxel axes (columns, world frame) and voxel sizes (m) of an orthogonal affine."""
    m = np.asarray(affine, dtype=float)[:3, :3]
    zooms = np.linalg.norm(m, axis=0)
    if np.any(zooms <= 0):
        raise InvalidImageError("The label affine has a zero voxel size.")
    axes = m / zooms
    if not np.allclose(axes.T @ axes, np.eye(3), atol=_ORTHOGONAL_TOL):
        raise InvalidImageError("The label grid is sheared (non-orthogonal voxel axes); resample the labels "
                                "onto an orthogonal grid (any rotation is fine).")
    return axes, zooms * 1e-3


def _shifted(array: np.ndarray, start: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """``array[start[0]:start[0] + shape[0], ...]``."""
    return array[tuple(slice(s, s + n) for s, n in zip(start, shape, strict=True))]


#: The four edges of a voxel along each axis: offsets of their first node from the voxel's first corner.
_EDGE_OFFSETS = {k: [tuple(d if a == o1 else (e if a == o2 else 0) for a in range(3))
                     for d in (0, 1) for e in (0, 1)]
                 for k, (o1, o2) in enumerate(((1, 2), (0, 2), (0, 1)))}


class VolumeConductor:
    """A voxel head as a conductor: the operator assembled once, reused for every solve.

    Parameters
    ----------
    labels : array, shape (nx, ny, nz)
        Tissue labels (:data:`tmsnet.physics.head_model.TISSUE_LABELS`).
    affine : array, shape (4, 4)
        Voxel to world (mm); the voxel axes must be orthogonal (any rotation).
    conductivities : Conductivities, optional
        S/m per tissue (default SimNIBS's).
    parameters : SolverParameters, optional
        CG tolerance and AMG options.

    Raises
    ------
    InvalidImageError
        For labels that are not a head (see
        :func:`~tmsnet.physics.head_model.check_head_labels`) or a sheared grid.
    """

    def __init__(self, labels: Any, affine: Any, conductivities: Conductivities | None = None,
                 parameters: SolverParameters | None = None) -> None:
        start = time.perf_counter()
        self.labels = check_head_labels(labels, affine)
        self.affine = np.asarray(affine, dtype=float)
        self.conductivities = Conductivities() if conductivities is None else conductivities
        self.parameters = SolverParameters() if parameters is None else parameters
        self.axes, self.spacing_m = _orthogonal_axes(self.affine)
        self.shape = self.labels.shape
        self.inside = self.labels > 0
        self.voxels = np.argwhere(self.inside)
        self.n_cells = len(self.voxels)
        sigma = np.pad(self.conductivities.by_label()[self.labels], 1)  # voxel v is sigma[v + 1]
        self.node_index = self._number_nodes()
        self.n_nodes = int(np.count_nonzero(self.node_index >= 0))
        self.edges = [self._axis_edges(sigma, k) for k in range(3)]
        self.matrix, self.grounded = self._assemble()
        self._amg: Any = None
        self.timings_s = {"assemble": time.perf_counter() - start}

    def _number_nodes(self) -> np.ndarray:
        """Index of every voxel corner touched by a head voxel, -1 elsewhere; shape (nx+1, ny+1, nz+1)."""
        node_shape = tuple(n + 1 for n in self.shape)
        padded = np.pad(self.inside, 1)
        used = np.zeros(node_shape, dtype=bool)
        for offset in np.ndindex(2, 2, 2):  # node (i, j, k) is a corner of voxels (i-1..i, ...)
            used |= _shifted(padded, offset, node_shape)
        index = np.full(node_shape, -1, dtype=np.int64)
        index[used] = np.arange(int(used.sum()))
        return index

    def _axis_edges(self, sigma: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first node, second node, conductance in S) of every conducting edge along ``axis``."""
        node_shape = self.node_index.shape
        shape = tuple(n - 1 if a == axis else n for a, n in enumerate(node_shape))
        mean_sigma = np.zeros(shape)
        for d, e in np.ndindex(2, 2):  # the four voxels around the edge
            start = [1 if a == axis else 0 for a in range(3)]
            o1, o2 = (a for a in range(3) if a != axis)
            start[o1], start[o2] = d, e
            mean_sigma += 0.25 * _shifted(sigma, tuple(start), shape)
        keep = mean_sigma > 0
        step = tuple(1 if a == axis else 0 for a in range(3))
        first = _shifted(self.node_index, (0, 0, 0), shape)[keep]
        second = _shifted(self.node_index, step, shape)[keep]
        area = float(np.prod(np.delete(self.spacing_m, axis)))
        return first, second, mean_sigma[keep] * area / self.spacing_m[axis]

    def _assemble(self) -> tuple[sp.csr_matrix, np.ndarray]:
        from scipy.sparse.csgraph import connected_components

        rows, cols, vals = [], [], []
        diag = np.zeros(self.n_nodes)
        for lo, hi, g in self.edges:
            rows += [lo, hi]
            cols += [hi, lo]
            vals += [-g, -g]
            diag += np.bincount(lo, g, self.n_nodes) + np.bincount(hi, g, self.n_nodes)
        nodes = np.arange(self.n_nodes)
        off = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                            shape=(self.n_nodes, self.n_nodes)).tocsr()
        _, piece = connected_components(off, directed=False)
        _, grounded = np.unique(piece, return_index=True)
        diag[grounded] *= 2.0  # ground one node per connected piece (see the module docstring)
        return (off + sp.csr_matrix((diag, (nodes, nodes)), shape=off.shape)).tocsr(), grounded

    @property
    def cell_centres_m(self) -> np.ndarray:
        """World coordinates (m) of the head voxel centres, shape (n_cells, 3)."""
        return (self.voxels @ self.affine[:3, :3].T + self.affine[:3, 3]) * 1e-3

    @property
    def node_positions_m(self) -> np.ndarray:
        """World coordinates (m) of the nodes (voxel corners), shape (n_nodes, 3), in node order."""
        ijk = np.argwhere(self.node_index >= 0) - 0.5
        return (ijk @ self.affine[:3, :3].T + self.affine[:3, 3]) * 1e-3

    @property
    def n_edges(self) -> int:
        """Number of conducting edges (links between nodes)."""
        return int(sum(len(e[0]) for e in self.edges))

    def primary_field(self, dipole_positions_m: Any, dipole_moments: Any, *,
                      didt_a_per_us: float = 1.0) -> np.ndarray:
        """``a = dA/dt`` of magnetic dipoles at the nodes (see :func:`primary_field`)."""
        return primary_field(self.node_positions_m, dipole_positions_m, dipole_moments,
                             didt_a_per_us=didt_a_per_us)

    def _preconditioner(self) -> Any:
        if self._amg is None:
            import pyamg

            start = time.perf_counter()
            smoother = ("gauss_seidel", {"sweep": "symmetric"})
            # The constant vector is the exact near-null space of the (ungrounded) operator: no
            # candidate improvement needed.
            with _one_blas_thread():
                self._amg = pyamg.smoothed_aggregation_solver(
                    self.matrix, B=np.ones((self.n_nodes, 1)), symmetry="symmetric",
                    strength=("symmetric", {"theta": self.parameters.amg_theta}), presmoother=smoother,
                    postsmoother=smoother, improve_candidates=None, coarse_solver="splu",
                    max_coarse=self.parameters.amg_max_coarse)
            self.timings_s["amg_setup"] = time.perf_counter() - start
        return self._amg.aspreconditioner(cycle="V")

    def _cg(self, rhs: np.ndarray) -> tuple[np.ndarray, int, float]:
        """Solve ``matrix x = rhs`` by AMG-preconditioned CG; (x, iterations, relative residual)."""
        from pyamg.krylov import cg

        norm_b = float(np.linalg.norm(rhs))
        if norm_b == 0.0:
            return np.zeros_like(rhs), 0, 0.0
        residuals: list[float] = []
        preconditioner = self._preconditioner()
        with _one_blas_thread():
            x, _ = cg(self.matrix, rhs, x0=np.zeros_like(rhs), tol=self.parameters.rtol, criteria="rr",
                      maxiter=self.parameters.max_iterations, M=preconditioner, residuals=residuals)
        rel = float(np.linalg.norm(rhs - self.matrix @ x)) / norm_b
        if not rel <= 10.0 * self.parameters.rtol:
            raise InvalidParameterError(
                f"The field solve did not converge: relative residual {rel:.2e} after "
                f"{self.parameters.max_iterations} iterations (asked {self.parameters.rtol:.0e}). Raise "
                "max_iterations, or check the conductivities (one far below the others).")
        return x, max(len(residuals) - 1, 0), rel

    def _nodes_checked(self, values: Any, name: str) -> np.ndarray:
        arr = _xyz(values, name)
        if arr.shape[0] != self.n_nodes:
            raise InvalidParameterError(f"{name} holds {arr.shape[0]} rows for {self.n_nodes} nodes.")
        return arr @ self.axes  # components along the voxel axes

    def _voxel_edges(self, axis: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(first node, second node) of the four edges along ``axis`` of every head voxel."""
        step = np.eye(3, dtype=np.int64)[axis]
        out = []
        for offset in _EDGE_OFFSETS[axis]:
            n0 = self.voxels + np.asarray(offset)
            out.append((self.node_index[tuple(n0.T)], self.node_index[tuple((n0 + step).T)]))
        return out

    def solve(self, primary: Any) -> FieldSolution:
        """E = -a - grad(phi) for a primary field ``a`` given at the nodes.

        Parameters
        ----------
        primary : array, shape (n_nodes, 3)
            ``dA/dt`` (V/m) at :attr:`node_positions_m`, world frame.

        Returns
        -------
        FieldSolution

        Raises
        ------
        InvalidParameterError
            For a badly shaped primary field or a solve that does not converge.
        """
        a = self._nodes_checked(primary, "primary")
        start = time.perf_counter()
        rhs = np.zeros(self.n_nodes)
        for k, (lo, hi, g) in enumerate(self.edges):
            drive = g * self.spacing_m[k] * 0.5 * (a[lo, k] + a[hi, k])  # conductance x EMF of the edge
            rhs += np.bincount(lo, drive, self.n_nodes) - np.bincount(hi, drive, self.n_nodes)
        phi, iterations, rel = self._cg(rhs)
        solve_s = time.perf_counter() - start
        e_vox = np.zeros((self.n_cells, 3))
        for k in range(3):
            for n0, n1 in self._voxel_edges(k):
                e_vox[:, k] -= 0.25 * ((phi[n1] - phi[n0]) / self.spacing_m[k] + 0.5 * (a[n0, k] + a[n1, k]))
        timings = {**self.timings_s, "solve": solve_s}
        return FieldSolution(e_vox @ self.axes.T, phi, iterations, rel, timings, self)

    def reciprocal_kernel(self, weights: Any) -> np.ndarray:
        """``K`` with ``sum_c weights_c . E_c == sum_n K_n . a_n`` for the ``E`` that :meth:`solve` gives.

        One adjoint solve (see the module docstring); the functional's value for
        any coil is then ``sum_j m_j . b(r_j)`` with ``b`` from
        :func:`reciprocal_field`.

        Parameters
        ----------
        weights : array, shape (n_cells, 3)
            The functional's weight vector per head voxel (world frame), e.g. the
            target direction divided by the number of target voxels on the target
            voxels and zero elsewhere.

        Returns
        -------
        numpy.ndarray, shape (n_nodes, 3)
            ``K`` (dimensionless), world frame, at :attr:`node_positions_m`.
        """
        w = _xyz(weights, "weights")
        if w.shape[0] != self.n_cells:
            raise InvalidParameterError(f"weights hold {w.shape[0]} rows for {self.n_cells} head voxels.")
        w_vox = w @ self.axes
        # F = q . phi + sum_n p_n . a_n, from E_c = -(1/4) sum over its edges of (dphi/h + mean a).
        q = np.zeros(self.n_nodes)
        p = np.zeros((self.n_nodes, 3))
        for k in range(3):
            for n0, n1 in self._voxel_edges(k):
                at0 = np.bincount(n0, w_vox[:, k], self.n_nodes)
                at1 = np.bincount(n1, w_vox[:, k], self.n_nodes)
                q += 0.25 / self.spacing_m[k] * (at0 - at1)
                p[:, k] -= 0.125 * (at0 + at1)
        y, _, _ = self._cg(q)
        for k, (lo, hi, g) in enumerate(self.edges):
            share = 0.5 * g * self.spacing_m[k] * (y[lo] - y[hi])
            p[:, k] += np.bincount(lo, share, self.n_nodes) + np.bincount(hi, share, self.n_nodes)
        return p @ self.axes.T


def solve_field(labels: Any, affine: Any, conductivities: Conductivities | None, dipole_positions_m: Any,
                dipole_moments: Any, *, didt_a_per_us: float = 1.0,
                parameters: SolverParameters | None = None) -> FieldSolution:
    """E-field of a placed coil in a voxel head (one assembly, one solve).

    Parameters
    ----------
    labels : array, shape (nx, ny, nz)
        Tissue labels (:data:`tmsnet.physics.head_model.TISSUE_LABELS`).
    affine : array, shape (4, 4)
        Voxel to world (mm).
    conductivities : Conductivities or None
        S/m per tissue (None: SimNIBS defaults).
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        The placed coil's dipoles in the world frame (m; A·m² per A), e.g.
        from :func:`tmsnet.physics.efield.transform_dipoles`.
    didt_a_per_us : float
        Coil current slope (A/µs); 1 gives the field per A/µs.
    parameters : SolverParameters, optional
        Solver options.

    Returns
    -------
    FieldSolution
        E (V/m) at the head voxel centres, with the conductor for further solves.

    Raises
    ------
    InvalidImageError
        For labels that are not a head or a sheared grid.
    InvalidParameterError
        For bad dipoles, a dipole on a node, or a solve that does not converge.
    """
    conductor = VolumeConductor(labels, affine, conductivities, parameters)
    start = time.perf_counter()
    a = conductor.primary_field(dipole_positions_m, dipole_moments, didt_a_per_us=didt_a_per_us)
    primary_s = time.perf_counter() - start
    solution = conductor.solve(a)
    solution.timings_s["primary_field"] = primary_s
    return solution
