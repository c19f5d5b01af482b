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
``E = -(mu0/4pi)(dI/dt) r x V`` with ``V = sum_j [m_j/F_j - (m_j.grad F_j)/F_j^2 r0_j]``;
the fast kernels accumulate ``V`` in registers (one square root and two
divisions per point-dipole pair) and take the cross product once per point.
Backends:

* ``"numba"`` (default when numba imports): compiled, multi-threaded over points.
* ``"numpy"``: vectorized over (points x dipoles) blocks of bounded size.
* ``"cupy"``: the numpy algorithm on a CUDA GPU, used only when ``cupy``
  imports and a device is present (never required).

:func:`efield_loop` is the straightforward per-dipole evaluation of the
formula exactly as written (a Python loop over dipoles, numpy over points):
the reference the fast kernels are tested and benchmarked against.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from tmsnet.exceptions import InvalidParameterError

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

try:  # pragma: no cover - exercised whenever numba is installed
    import numba

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _numba_kernel(points, r0, m, r0_norm, m_dot_r0, scale, out):  # noqa: D103
        n_points = points.shape[0]
        n_dip = r0.shape[0]
        for i in numba.prange(n_points):
            rx = points[i, 0]
            ry = points[i, 1]
            rz = points[i, 2]
            vx = 0.0
            vy = 0.0
            vz = 0.0
            for j in range(n_dip):
                r0x = r0[j, 0]
                r0y = r0[j, 1]
                r0z = r0[j, 2]
                ax = r0x - rx
                ay = r0y - ry
                az = r0z - rz
                a2 = ax * ax + ay * ay + az * az
                a = math.sqrt(a2)
                inv_a = 1.0 / a
                nr0 = r0_norm[j]
                adr0 = ax * r0x + ay * r0y + az * r0z
                f = a * (nr0 * a + adr0)
                inv_f = 1.0 / f
                adr0_a = adr0 * inv_a
                c1 = a2 / nr0 + adr0_a + 2.0 * a + 2.0 * nr0
                c2 = a + 2.0 * nr0 + adr0_a
                mx = m[j, 0]
                my = m[j, 1]
                mz = m[j, 2]
                mdr = mx * rx + my * ry + mz * rz
                mgf = c1 * m_dot_r0[j] - c2 * mdr
                g = mgf * inv_f * inv_f
                vx += mx * inv_f - g * r0x
                vy += my * inv_f - g * r0y
                vz += mz * inv_f - g * r0z
            out[i, 0] = -scale * (ry * vz - rz * vy)
            out[i, 1] = -scale * (rz * vx - rx * vz)
            out[i, 2] = -scale * (rx * vy - ry * vx)

    _HAVE_NUMBA = os.environ.get("TMSNET_DISABLE_NUMBA", "") == ""
except ImportError:  # pragma: no cover - numba missing
    numba = None
    _HAVE_NUMBA = False


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
        numba if installed, else numpy.
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
    if backend == "auto":
        big = points.shape[0] * r0.shape[0] >= _GPU_MIN_PAIRS
        backend = "cupy" if big and _cupy_module() is not None else ("numba" if _HAVE_NUMBA else "numpy")
    if backend not in ("numba", "numpy", "cupy"):
        raise InvalidParameterError(
            f"Unknown E-field backend {backend!r}; choose auto, numba, numpy or cupy."
        )
    if backend not in available_backends():
        raise InvalidParameterError(
            f"The {backend!r} backend is not available here (available: "
            f"{', '.join(available_backends())}). Install it or use backend='auto'."
        )
    if backend == "numba":
        out = np.empty_like(points)
        nr0 = np.sqrt(np.einsum("ij,ij->i", r0, r0))
        m_dot_r0 = np.einsum("ij,ij->i", m, r0)
        _numba_kernel(points, r0, m, nr0, m_dot_r0, scale, out)
        return out
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


def efield_placements(
    points_m: np.ndarray,
    dipole_positions_m: np.ndarray,
    dipole_moments: np.ndarray,
    rotations: np.ndarray,
    translations_m: np.ndarray,
    *,
    didt_a_per_us: float = 1.0,
    backend: str = "auto",
) -> np.ndarray:
    """E-field of one coil in many placements (positions x orientations).

    Parameters
    ----------
    points_m : array, shape (n, 3) or (p, n, 3)
        Field points (metres, sphere-centred); one set shared by all
        placements, or one set per placement.
    dipole_positions_m, dipole_moments : array, shape (m, 3)
        The coil in its own frame.
    rotations : array, shape (p, 3, 3)
        Coil axes (columns) in the head frame, per placement.
    translations_m : array, shape (p, 3)
        Coil origins in the head frame (metres), per placement.
    didt_a_per_us : float
        Coil current slope (A/µs).
    backend : str
        As in :func:`efield`.

    Returns
    -------
    numpy.ndarray, shape (p, n, 3)
        E-field in V/m (per A/µs when ``didt_a_per_us`` is 1).
    """
    rots = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    trans = np.asarray(translations_m, dtype=np.float64).reshape(-1, 3)
    if rots.shape[0] != trans.shape[0]:
        raise InvalidParameterError(
            f"{rots.shape[0]} rotations but {trans.shape[0]} translations; give one of each "
            "per placement."
        )
    pts = np.asarray(points_m, dtype=np.float64)
    per_placement = pts.ndim == 3
    if per_placement and pts.shape[0] != rots.shape[0]:
        raise InvalidParameterError(
            f"points_m holds {pts.shape[0]} point sets for {rots.shape[0]} placements."
        )
    n = pts.shape[-2]
    out = np.empty((rots.shape[0], n, 3))
    for k in range(rots.shape[0]):
        pos, mom = transform_dipoles(dipole_positions_m, dipole_moments, rots[k], trans[k])
        out[k] = efield(pts[k] if per_placement else pts, pos, mom,
                        didt_a_per_us=didt_a_per_us, backend=backend)
    return out
