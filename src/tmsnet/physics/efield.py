"""Sphere-model E-field of a magnetic-dipole coil model (the kernel).

For a magnetic dipole ``m`` at ``r0`` outside a spherically symmetric
conductor centred on the origin and a point ``r`` inside it (``|r0| > |r|``),
Heller & van Hulsteyn (1992, Biophys J 63:129) give, after Sarvas (1987)::

    a = r0 - r;  F = |a| (|r0||a| + r0.a)
    grad F = (|a|^2/|r0| + a.r0/|a| + 2|a| + 2|r0|) r0 - (|a| + 2|r0| + a.r0/|a|) r
    E(r) = -(mu0/4pi) (dI/dt) / F^2 [F (r x m) - (m.grad F)(r x r0)]

summed over the coil's dipoles (see ``../shared/REFERENCES.md`` section 3).
The field does not depend on the conductivity and is tangential
(``E . r = 0``) everywhere inside the sphere.

Units: positions in metres, dipole moments in A·m² per ampere of coil
current (SimNIBS ``.ccd`` convention), the field in **V/m per A/µs** of
coil current slope (multiply by the stimulator's dI/dt in A/µs to get V/m).

Because ``r`` is common to all dipoles, the sum is rearranged as
``E = -(mu0/4pi)(dI/dt) r x V`` with ``V = sum_j q_j (m_j - u_j r0_j)``, where
``q = 1/F`` and ``u = (m.grad F)/F``; with ``h = |r0||a| + a.r0`` (so ``F = |a| h``
and ``a.r0/|a| = a.r0 h q``) each point-dipole pair costs one square root and one
division. The fast kernels accumulate ``V`` in registers and take the cross
product once per point. Backends:

* ``"numba"`` (default when numba imports): compiled and multi-threaded over
  (placement x block of points) tasks; the dipoles of each placement are rotated,
  translated and stored as contiguous per-component arrays (structure of arrays)
  once, so the inner loop over dipoles runs in SIMD lanes (AVX2: 4 doubles).
  Compiled with ``error_model="numpy"`` (no Python division-by-zero branch, which
  would block vectorisation; the inputs are checked beforehand) and only the
  ``reassoc``/``contract`` fast-math flags (the dipole sum may be reordered and
  fused multiply-adds used; no approximate reciprocals or square roots, no
  NaN/Inf assumptions): float64 throughout, equal to :func:`efield_loop` to
  about 1e-14 relative.
* ``"numpy"``: vectorized over (points x dipoles) blocks of bounded size.
* ``"cupy"``: the numpy algorithm on a CUDA GPU, used only when ``cupy``
  imports and a device is present (never required).

:func:`efield_loop` is the straightforward per-dipole evaluation of the
formula exactly as written (a Python loop over dipoles, numpy over points):
the reference the fast kernels are tested and benchmarked against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.compiled import numba_allowed

__all__ = [
    "MU0_OVER_4PI",
    "available_backends",
    "efield",
    "efield_loop",
    "efield_placements",
    "transform_dipoles",
]

#: mu0 / (4 pi) in T·m/A (V·s/(A·m)).
MU0_OVER_4PI = 1e-7
#: A/µs -> A/s.
_PER_MICROSECOND = 1e6
#: Problems with at least this many point-dipole pairs go to the GPU under ``"auto"``.
_GPU_MIN_PAIRS = 50_000_000
#: Memory bound (number of float64 elements per temporary) of the numpy backend.
_NUMPY_BLOCK_ELEMENTS = 2_000_000
#: numba backend: field points per parallel task (one task = one placement x this many points).
_NUMBA_CHUNK_POINTS = 64
#: numba backend: tasks a thread takes at a time (dynamic scheduling).
_NUMBA_TASKS_PER_GRAB = 4
#: efield_placements: float64 values of transformed dipoles held at once (bounds memory, ~32 MB).
_DIPOLE_TABLE_ELEMENTS = 4_000_000
#: Rows of the per-placement dipole table: r0 (x, y, z), m (x, y, z), 2|r0|, 1/|r0|, m.r0.
_N_DIPOLE_ROWS = 9
#: LLVM fast-math flags of the numba kernel: reordering of the dipole sum and FMA
#: contraction only (no approximate reciprocal/sqrt, no finite-math assumptions).
_FASTMATH = frozenset({"reassoc", "contract"})

try:  # pragma: no cover - exercised whenever numba is installed
    import numba

    @numba.njit(fastmath=set(_FASTMATH), error_model="numpy", cache=True)
    def _numba_points_block(points, dip, scale, out, start, stop):  # noqa: D103
        # points (n, 3); dip (9, M) structure of arrays; out (n, 3); points [start, stop).
        n_dip = dip.shape[1]
        px = dip[0]
        py = dip[1]
        pz = dip[2]
        mxs = dip[3]
        mys = dip[4]
        mzs = dip[5]
        two_nr0s = dip[6]
        inv_nr0s = dip[7]
        m_dot_r0s = dip[8]
        for i in range(start, stop):
            rx = points[i, 0]
            ry = points[i, 1]
            rz = points[i, 2]
            vx = 0.0
            vy = 0.0
            vz = 0.0
            for j in range(n_dip):
                r0x = px[j]
                r0y = py[j]
                r0z = pz[j]
                ax = r0x - rx
                ay = r0y - ry
                az = r0z - rz
                a2 = ax * ax + ay * ay + az * az
                a = math.sqrt(a2)
                adr0 = ax * r0x + ay * r0y + az * r0z
                two_nr0 = two_nr0s[j]
                h = 0.5 * two_nr0 * a + adr0  # F = a h
                q = 1.0 / (a * h)  # 1 / F
                adr0_a = adr0 * h * q  # a.r0 / |a|
                c2 = a + two_nr0 + adr0_a
                c1 = c2 + a + a2 * inv_nr0s[j]
                mx = mxs[j]
                my = mys[j]
                mz = mzs[j]
                mdr = mx * rx + my * ry + mz * rz
                u = (c1 * m_dot_r0s[j] - c2 * mdr) * q  # (m . grad F) / F
                vx += q * (mx - u * r0x)
                vy += q * (my - u * r0y)
                vz += q * (mz - u * r0z)
            out[i, 0] = -scale * (ry * vz - rz * vy)
            out[i, 1] = -scale * (rz * vx - rx * vz)
            out[i, 2] = -scale * (rx * vy - ry * vx)

    @numba.njit(parallel=True, fastmath=set(_FASTMATH), error_model="numpy", cache=True)
    def _numba_kernel(points, dip, scale, out, chunk):  # noqa: D103
        # points (1 or P, n, 3); dip (P, 9, M); out (P, n, 3). One task = placement x chunk.
        n_pl = dip.shape[0]
        n_points = points.shape[1]
        shared = points.shape[0] == 1
        n_chunks = (n_points + chunk - 1) // chunk
        for task in numba.prange(n_pl * n_chunks):
            k = task // n_chunks
            start = (task - k * n_chunks) * chunk
            stop = min(n_points, start + chunk)
            kp = 0 if shared else k
            _numba_points_block(points[kp], dip[k], scale, out[k], start, stop)

    _HAVE_NUMBA = numba_allowed()
except ImportError:  # pragma: no cover - numba missing
    numba = None
    _HAVE_NUMBA = False


def _dipole_table(positions: np.ndarray, moments: np.ndarray) -> np.ndarray:
    """Per-placement dipole table for the numba kernel.

    Parameters
    ----------
    positions, moments : array, shape (P, M, 3)
        Placed dipole positions (m) and moments (A·m²/A).

    Returns
    -------
    numpy.ndarray, shape (P, 9, M)
        Contiguous rows x, y, z, m_x, m_y, m_z, 2|r0|, 1/|r0|, m.r0.
    """
    n_pl, n_dip, _ = positions.shape
    table = np.empty((n_pl, _N_DIPOLE_ROWS, n_dip))
    table[:, 0:3, :] = positions.transpose(0, 2, 1)
    table[:, 3:6, :] = moments.transpose(0, 2, 1)
    nr0 = np.sqrt(np.einsum("pmk,pmk->pm", positions, positions))
    table[:, 6, :] = 2.0 * nr0
    table[:, 7, :] = 1.0 / nr0
    table[:, 8, :] = np.einsum("pmk,pmk->pm", moments, positions)
    return table


def _run_numba(points: np.ndarray, positions: np.ndarray, moments: np.ndarray, scale: float) -> np.ndarray:
    """Run the numba kernel on ``points`` (1 or P, n, 3) and placed dipoles (P, M, 3) -> (P, n, 3)."""
    out = np.empty((positions.shape[0], points.shape[1], 3))
    if out.size:
        # Dynamic scheduling (threads take the next few tasks when done) instead of numba's
        # default static split, so a thread slowed by other processes does not hold up the rest.
        with numba.parallel_chunksize(_NUMBA_TASKS_PER_GRAB):
            _numba_kernel(points, _dipole_table(positions, moments), scale, out, _NUMBA_CHUNK_POINTS)
    return out


def _cupy_module():
    """The cupy module if it imports and sees a CUDA device, else None."""
    try:
        import cupy  # type: ignore[import-not-found]

        if cupy.cuda.runtime.getDeviceCount() < 1:  # pragma: no cover - GPU only
            return None
        return cupy  # pragma: no cover - GPU only
    except Exception:  # noqa: BLE001 - any failure means "no GPU path"
        return None


def available_backends() -> list[str]:
    """Backends usable in this process, fastest first.

    Returns
    -------
    list of str
        A subset of ``["cupy", "numba", "numpy"]``; ``"numpy"`` is always there.
    """
    backends = []
    if _cupy_module() is not None:  # pragma: no cover - GPU only
        backends.append("cupy")
    if _HAVE_NUMBA:
        backends.append("numba")
    backends.append("numpy")
    return backends


def _as_xyz(array: np.ndarray | Sequence, name: str) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(array, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InvalidParameterError(
            f"{name} must be an (n, 3) array of x, y, z values, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidParameterError(f"{name} holds NaN or infinite values; remove them.")
    return arr


def _check_outside(points: np.ndarray, dipole_positions: np.ndarray) -> None:
    if points.size == 0 or dipole_positions.size == 0:
        return
    r_max = float(np.sqrt(np.max(np.einsum("ij,ij->i", points, points))))
    r0_min = float(np.sqrt(np.min(np.einsum("ij,ij->i", dipole_positions, dipole_positions))))
    if r0_min <= r_max:
        raise InvalidParameterError(
            "The sphere-model formula needs every dipole farther from the sphere centre than "
            f"every field point (closest dipole at {r0_min * 1e3:.1f} mm, farthest point at "
            f"{r_max * 1e3:.1f} mm from the centre). Move the coil out of the head or drop the "
            "field points outside the conductor."
        )


def _resolve_backend(backend: str, n_pairs: int) -> str:
    """The backend to run: ``backend`` checked, or the choice of ``"auto"`` for ``n_pairs`` pairs."""
    if backend == "auto":
        big = n_pairs >= _GPU_MIN_PAIRS
        return "cupy" if big and _cupy_module() is not None else ("numba" if _HAVE_NUMBA else "numpy")
    if backend not in ("numba", "numpy", "cupy"):
        raise InvalidParameterError(
            f"Unknown E-field backend {backend!r}; choose auto, numba, numpy or cupy."
        )
    if backend not in available_backends():
        raise InvalidParameterError(
            f"The {backend!r} backend is not available here (available: "
            f"{', '.join(available_backends())}). Install it or use backend='auto'."
        )
    return backend


def _numpy_kernel(xp, points, r0, m, scale, block_elements):
    """Vectorized evaluation over (points x dipoles) blocks; ``xp`` is numpy or cupy."""
    n_points = points.shape[0]
    n_dip = r0.shape[0]
    out = xp.empty((n_points, 3), dtype=xp.float64)
    nr0 = xp.sqrt(xp.sum(r0 * r0, axis=1))
    m_dot_r0 = xp.sum(m * r0, axis=1)
    chunk = max(1, int(block_elements // max(n_dip, 1)))
    for start in range(0, n_points, chunk):
        r = points[start:start + chunk]
        a_vec = r0[None, :, :] - r[:, None, :]  # (c, M, 3)
        a2 = xp.einsum("cmk,cmk->cm", a_vec, a_vec)
        a = xp.sqrt(a2)
        adr0 = xp.einsum("cmk,mk->cm", a_vec, r0)
        del a_vec
        f = a * (nr0[None, :] * a + adr0)
        inv_f = 1.0 / f
        adr0_a = adr0 / a
        c1 = a2 / nr0[None, :] + adr0_a + 2.0 * a + 2.0 * nr0[None, :]
        c2 = a + 2.0 * nr0[None, :] + adr0_a
        mdr = r @ m.T  # (c, M)
        g = (c1 * m_dot_r0[None, :] - c2 * mdr) * inv_f * inv_f
        v = inv_f @ m - g @ r0  # (c, 3)
        out[start:start + chunk] = -scale * xp.cross(r, v)
    return out


def efield(
    points_m: np.ndarray,
    dipole_positions_m: np.ndarray,
    dipole_moments: np.ndarray,
    *,
    didt_a_per_us: float = 1.0,
    backend: str = "auto",
    block_elements: int = _NUMPY_BLOCK_ELEMENTS,
) -> np.ndarray:
    """Sphere-model E-field of a set of magnetic dipoles at many points.

    Parameters
    ----------
    points_m : array, shape (n, 3)
        Field points in metres, relative to the sphere centre, inside the sphere.
    dipole_positions_m : array, shape (m, 3)
        Dipole positions in metres (same frame), all farther from the centre
        than every field point.
    dipole_moments : array, shape (m, 3)
        Dipole moments in A·m² per ampere of coil current.
    didt_a_per_us : float
        Rate of change of the coil current in A/µs (1.0 gives the field per A/µs).
    backend : {"auto", "numba", "numpy", "cupy"}
        Kernel to use. ``"auto"`` picks cupy for large problems (at least 5e7
        point-dipole pairs) when cupy imports and sees a CUDA device, else
        numba if installed (and ``TMSNET_DISABLE_NUMBA`` is not set), else
        numpy. numba runs on all cores (``NUMBA_NUM_THREADS``) in blocks of
        64 points.
    block_elements : int
        numpy/cupy backends: the number of point-dipole pairs per block, which
        bounds temporary memory (~20 arrays of this many float64 values).

    Returns
    -------
    numpy.ndarray, shape (n, 3)
        E-field in V/m (per A/µs when ``didt_a_per_us`` is 1), float64.

    Raises
    ------
    InvalidParameterError
        On badly shaped or non-finite input, a dipole inside the sphere of the
        field points, or an unavailable backend.
    """
    points = _as_xyz(points_m, "points_m")
    r0 = _as_xyz(dipole_positions_m, "dipole_positions_m")
    m = _as_xyz(dipole_moments, "dipole_moments")
    if r0.shape != m.shape:
        raise InvalidParameterError(
            f"dipole_positions_m {r0.shape} and dipole_moments {m.shape} must have the same shape."
        )
    _check_outside(points, r0)
    scale = MU0_OVER_4PI * _PER_MICROSECOND * float(didt_a_per_us)
    backend = _resolve_backend(backend, points.shape[0] * r0.shape[0])
    if backend == "numba":
        return _run_numba(points[None], r0[None], m[None], scale)[0]
    if backend == "cupy":  # pragma: no cover - GPU only
        cp = _cupy_module()
        res = _numpy_kernel(cp, cp.asarray(points), cp.asarray(r0), cp.asarray(m), scale, block_elements)
        return cp.asnumpy(res)
    return _numpy_kernel(np, points, r0, m, scale, block_elements)


def efield_loop(
    points_m: np.ndarray,
    dipole_positions_m: np.ndarray,
    dipole_moments: np.ndarray,
    *,
    didt_a_per_us: float = 1.0,
) -> np.ndarray:
    """Reference: the formula evaluated dipole by dipole, exactly as written.

    A Python loop over dipoles with numpy over points, computing
    ``F (r x m) - (m . grad F)(r x r0)`` per dipole (the way SimNIBS'
    ``analytical_solutions.tms_E_field`` does). Slow; for tests and benchmarks.

    Parameters
    ----------
    points_m, dipole_positions_m, dipole_moments, didt_a_per_us
        As in :func:`efield`.

    Returns
    -------
    numpy.ndarray, shape (n, 3)
        E-field in V/m (per A/µs when ``didt_a_per_us`` is 1).
    """
    r = _as_xyz(points_m, "points_m")
    r0s = _as_xyz(dipole_positions_m, "dipole_positions_m")
    ms = _as_xyz(dipole_moments, "dipole_moments")
    _check_outside(r, r0s)
    e = np.zeros_like(r)
    for r0, m in zip(r0s, ms, strict=True):
        a = r0 - r
        norm_a = np.linalg.norm(a, axis=1)
        norm_r0 = np.linalg.norm(r0)
        a_dot_r0 = a @ r0
        f = norm_a * (norm_r0 * norm_a + a_dot_r0)
        grad_f = (
            (norm_a**2 / norm_r0 + a_dot_r0 / norm_a + 2 * norm_a + 2 * norm_r0)[:, None] * r0
            - (norm_a + 2 * norm_r0 + a_dot_r0 / norm_a)[:, None] * r
        )
        e += (
            f[:, None] * np.cross(r, m) - (grad_f @ m)[:, None] * np.cross(r, r0)
        ) / (f**2)[:, None]
    return -MU0_OVER_4PI * _PER_MICROSECOND * float(didt_a_per_us) * e


def transform_dipoles(
    dipole_positions_m: np.ndarray,
    dipole_moments: np.ndarray,
    rotation: np.ndarray,
    translation_m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Dipoles of a coil placed with a rotation and a translation.

    Parameters
    ----------
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        The coil in its own frame (metres; A·m²/A).
    rotation : array, shape (3, 3)
        Columns: the coil's x, y, z axes in the head frame.
    translation_m : array, shape (3,)
        The coil origin in the head frame (metres).

    Returns
    -------
    positions, moments : numpy.ndarray, shape (m, 3)
        ``R p + t`` and ``R m``.
    """
    rot = np.asarray(rotation, dtype=np.float64)
    return (
        np.asarray(dipole_positions_m) @ rot.T + np.asarray(translation_m, dtype=np.float64),
        np.asarray(dipole_moments) @ rot.T,
    )


def _placement_inputs(points_m: Any, dipole_positions_m: Any, dipole_moments: Any, rotations: Any,
                      translations_m: Any) -> tuple[Any, ...]:
    """Checked arrays of :func:`efield_placements` (rotations, translations, dipoles, point sets)."""
    rots = np.asarray(rotations, dtype=np.float64)
    if rots.ndim == 2:
        rots = rots[None]
    if rots.ndim != 3 or rots.shape[1:] != (3, 3):
        raise InvalidParameterError(f"rotations must be a (p, 3, 3) array, got shape {rots.shape}.")
    trans = np.asarray(translations_m, dtype=np.float64).reshape(-1, 3)
    if rots.shape[0] != trans.shape[0]:
        raise InvalidParameterError(
            f"{rots.shape[0]} rotations but {trans.shape[0]} translations; give one of each "
            "per placement."
        )
    if not (np.all(np.isfinite(rots)) and np.all(np.isfinite(trans))):
        raise InvalidParameterError("rotations or translations_m hold NaN or infinite values.")
    pos = _as_xyz(dipole_positions_m, "dipole_positions_m")
    mom = _as_xyz(dipole_moments, "dipole_moments")
    if pos.shape != mom.shape:
        raise InvalidParameterError(
            f"dipole_positions_m {pos.shape} and dipole_moments {mom.shape} must have the same shape."
        )
    pts = np.asarray(points_m, dtype=np.float64)
    per_placement = pts.ndim == 3
    if per_placement:
        if pts.shape[0] != rots.shape[0]:
            raise InvalidParameterError(
                f"points_m holds {pts.shape[0]} point sets for {rots.shape[0]} placements."
            )
        if pts.shape[-1] != 3:
            raise InvalidParameterError(
                f"points_m must be an (n, 3) or (p, n, 3) array of x, y, z values, got shape {pts.shape}."
            )
        sets = _as_xyz(pts.reshape(-1, 3), "points_m").reshape(pts.shape)
    else:
        sets = _as_xyz(pts, "points_m")[None]
    return rots, trans, pos, mom, sets, per_placement


def _check_placed_outside(placed_pos: np.ndarray, r_lim: Any, b0: int, per_placement: bool) -> None:
    """Refuse a placement with a dipole inside the sphere of its field points."""
    r0_min = np.sqrt(np.min(np.einsum("pmk,pmk->pm", placed_pos, placed_pos), axis=1))
    bad = np.flatnonzero(r0_min <= r_lim)
    if bad.size:
        k = int(bad[0])
        limit = float(r_lim[k] if per_placement else r_lim)
        raise InvalidParameterError(
            "The sphere-model formula needs every dipole farther from the sphere centre than "
            f"every field point (placement {b0 + k}: closest dipole at {r0_min[k] * 1e3:.1f} mm, "
            f"farthest point at {limit * 1e3:.1f} mm from the centre). Move the coil out of "
            "the head or drop the field points outside the conductor."
        )


def efield_placements(
    points_m: np.ndarray,
    dipole_positions_m: np.ndarray,
    dipole_moments: np.ndarray,
    rotations: np.ndarray,
    translations_m: np.ndarray,
    *,
    didt_a_per_us: float = 1.0,
    backend: str = "auto",
    placements_per_batch: int | None = None,
) -> np.ndarray:
    """E-field of one coil in many placements (positions x orientations).

    With the numba backend all placements are evaluated in one parallel
    kernel: the dipoles of a batch of placements are rotated and translated
    once (as :func:`transform_dipoles`), and the threads share out
    (placement x block of 64 points) tasks, so a few placements with many
    points and many placements with few points both keep every core busy.
    The numpy and cupy backends call :func:`efield` once per placement on the
    same transformed dipoles.

    Parameters
    ----------
    points_m : array, shape (n, 3) or (p, n, 3)
        Field points (metres, sphere-centred); one set shared by all
        placements, or one set per placement.
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        The coil in its own frame (metres; A·m²/A).
    rotations : array, shape (p, 3, 3)
        Coil axes (columns) in the head frame, per placement.
    translations_m : array, shape (p, 3)
        Coil origins in the head frame (metres), per placement.
    didt_a_per_us : float
        Coil current slope (A/µs).
    backend : str
        As in :func:`efield` (``"auto"`` decides on the total number of
        point-dipole pairs of all placements).
    placements_per_batch : int or None
        Placements whose transformed dipoles are held in memory at once (9
        float64 values per dipole and placement). None: as many as fit in
        about 32 MB.

    Returns
    -------
    numpy.ndarray, shape (p, n, 3)
        E-field in V/m (per A/µs when ``didt_a_per_us`` is 1).

    Raises
    ------
    InvalidParameterError
        On badly shaped or non-finite input, mismatched counts, a dipole of
        some placement inside the sphere of its field points, or an
        unavailable backend.
    """
    rots, trans, pos, mom, sets, per_placement = _placement_inputs(
        points_m, dipole_positions_m, dipole_moments, rotations, translations_m)
    n_pl, n = rots.shape[0], sets.shape[1]
    backend = _resolve_backend(backend, n_pl * n * pos.shape[0])
    scale = MU0_OVER_4PI * _PER_MICROSECOND * float(didt_a_per_us)
    if placements_per_batch is None:
        placements_per_batch = max(1, _DIPOLE_TABLE_ELEMENTS // max(_N_DIPOLE_ROWS * pos.shape[0], 1))
    if int(placements_per_batch) < 1:
        raise InvalidParameterError("placements_per_batch must be a positive integer (or None).")
    batch = int(placements_per_batch)
    r_max = np.sqrt(np.max(np.einsum("pnk,pnk->pn", sets, sets), axis=1)) if n else np.zeros(len(sets))
    out = np.empty((n_pl, n, 3))
    for b0 in range(0, n_pl, batch):
        rot_t = rots[b0:b0 + batch].transpose(0, 2, 1)
        placed_pos = np.matmul(pos, rot_t) + trans[b0:b0 + batch, None, :]  # R p + t per placement
        placed_mom = np.matmul(mom, rot_t)
        if pos.shape[0] and n:
            r_lim = r_max[b0:b0 + batch] if per_placement else r_max[0]
            _check_placed_outside(placed_pos, r_lim, b0, per_placement)
        set_b = sets[b0:b0 + batch] if per_placement else sets
        if backend == "numba":
            out[b0:b0 + batch] = _run_numba(set_b, placed_pos, placed_mom, scale)
            continue
        for k in range(placed_pos.shape[0]):  # numpy / cupy: one placement at a time
            out[b0 + k] = efield(set_b[k] if per_placement else set_b[0], placed_pos[k], placed_mom[k],
                                 didt_a_per_us=didt_a_per_us, backend=backend)
    return out
