"""Independent reference E-fields for the physics tests (plain numpy/scipy; no tmsnet import).

Two pieces of known truth that do not use the Heller & van Hulsteyn kernel of
``tmsnet.physics.efield`` (``../shared/REFERENCES.md`` section 3):

* :func:`sphere_bem_efield`: the quasi-static field ``E = -dA/dt - grad(phi)`` of
  magnetic dipoles in a homogeneous conducting sphere, with ``-grad(phi)`` the
  field of the surface charge found by a boundary-element (collocation) solution
  on an icosphere. No current leaves the conductor, so on the inner side of the
  surface ``n . E = 0``. With ``q = sigma / eps0`` (outward normal ``n``) the
  inner limit of the charge field is ``-q/2 + p.v.``, giving, at every
  collocation point (triangle centroid pushed onto the sphere)::

      -q_i / 2 + (1/4 pi) sum_j q_j A_j n_i.(c_i - c_j)/|c_i - c_j|^3 = -n_i . E_primary(c_i)

  The self term (flat-triangle p.v. = 0) gets the local-curvature correction
  ``n.(x - x')/|x - x'|^3 ~ 1/(2 R |x - x'|)`` integrated analytically over the
  flat triangle. A uniform charge gives no field inside, so the operator has a
  near-null space; a rank-one term (total charge = 0) removes it. The field at
  interior points is then ``E_primary + (1/4 pi) sum_j q_j A_j (r - c_j)/|r - c_j|^3``.
* :func:`loop_efield`: ``-dA/dt`` of one circular current loop in closed form
  (complete elliptic integrals; Jackson, Classical Electrodynamics, 3rd ed. 5.37):
  ``A_phi = (mu0 I / pi k) sqrt(a / rho) [(1 - k^2/2) K(k) - E(k)]`` with
  ``k^2 = 4 a rho / ((a + rho)^2 + z^2)`` (scipy's ``ellipk(m)`` takes ``m = k^2``).

Units as tmsnet's: metres, dipole moments in A·m² per A, fields in V/m per A/µs.
mu0 from ``scipy.constants`` (not the module under test).
"""

from __future__ import annotations

import numpy as np
from scipy import constants, linalg, special

#: mu0 / (4 pi) from CODATA (scipy), independent of the code under test.
MU0_OVER_4PI = constants.mu_0 / (4.0 * np.pi)
#: A/µs -> A/s.
PER_US = 1e6


def icosphere(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: vertices (n, 3) and faces (20 * 4**level, 3), outward-oriented."""
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
             (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
             (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
             (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    v = [np.array(p, dtype=float) / np.linalg.norm(p) for p in verts]
    f = np.array(faces)
    for _ in range(level):
        cache: dict[tuple[int, int], int] = {}

        def mid(i: int, j: int, cache: dict[tuple[int, int], int] = cache) -> int:
            key = (min(i, j), max(i, j))
            if key not in cache:
                p = v[i] + v[j]
                v.append(p / np.linalg.norm(p))
                cache[key] = len(v) - 1
            return cache[key]

        new = []
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = np.array(new)
    return np.array(v), f


def _flat_triangle_inverse_distance(tri: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Integral of 1/|x - p| over flat triangles ``tri`` (n, 3, 3), ``p`` (n, 3) in their planes."""
    total = np.zeros(len(tri))
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    for k in range(3):
        a, b = tri[:, k], tri[:, (k + 1) % 3]
        edge = b - a
        t = edge / np.linalg.norm(edge, axis=1)[:, None]
        s_minus, s_plus = np.sum((a - p) * t, axis=1), np.sum((b - p) * t, axis=1)
        l_minus, l_plus = np.linalg.norm(a - p, axis=1), np.linalg.norm(b - p, axis=1)
        # signed distance from p to the edge line, positive towards the triangle's inside
        d = np.sum(np.cross(t, normal) * (a - p), axis=1)
        total += d * np.log((l_plus + s_plus) / (l_minus + s_minus))
    return total


def dipole_primary_field(points: np.ndarray, r0: np.ndarray, m: np.ndarray, didt: float = 1.0) -> np.ndarray:
    """``-dA/dt`` of magnetic dipoles: ``-(mu0/4pi) dI/dt sum m x (r - r0)/|r - r0|^3`` (V/m)."""
    e = np.zeros((len(points), 3))
    for pos, mom in zip(r0, m, strict=True):
        d = points - pos
        e += np.cross(mom, d) / np.linalg.norm(d, axis=1)[:, None] ** 3
    return -MU0_OVER_4PI * PER_US * didt * e


class SphereBEM:
    """Collocation BEM of a conducting sphere of ``radius_m`` on a ``level`` icosphere.

    ``self_term``: ``"curvature"`` (analytic flat-triangle integral of the curvature
    term) or ``"gauss"`` (diagonal set so that every row integrates ``2 pi``, Gauss's
    law for a uniform charge).
    """

    def __init__(self, radius_m: float, level: int, self_term: str = "gauss") -> None:
        verts, faces = icosphere(level)
        self.radius = float(radius_m)
        tri = verts[faces] * radius_m
        self.areas = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        flat_centroids = tri.mean(axis=1)
        self.normals = flat_centroids / np.linalg.norm(flat_centroids, axis=1)[:, None]
        self.centres = self.normals * radius_m
        self.n_triangles = len(faces)
        # n_i.(c_i - c_j) / |c_i - c_j|^3 * A_j, assembled from 2-D arrays (bounded memory)
        gram = self.centres @ self.centres.T
        sq = np.einsum("ik,ik->i", self.centres, self.centres)
        dist2 = sq[:, None] + sq[None, :] - 2.0 * gram
        np.fill_diagonal(dist2, 1.0)
        kernel = np.einsum("ik,ik->i", self.normals, self.centres)[:, None] - self.normals @ self.centres.T
        kernel *= self.areas[None, :] / dist2**1.5
        del gram, dist2
        np.fill_diagonal(kernel, 0.0)
        if self_term == "gauss":
            diag = 2.0 * np.pi - kernel.sum(axis=1)
        else:
            diag = _flat_triangle_inverse_distance(tri, flat_centroids) / (2.0 * radius_m)
        np.fill_diagonal(kernel, diag)
        system = -0.5 * np.eye(self.n_triangles) + kernel / (4.0 * np.pi)
        system += np.outer(np.ones(self.n_triangles), self.areas) / self.areas.sum()  # total charge 0
        self._lu = linalg.lu_factor(system)

    def charge(self, primary_at_centres: np.ndarray) -> np.ndarray:
        """``q = sigma/eps0`` per triangle for a primary field sampled at the centres."""
        rhs = -np.sum(self.normals * primary_at_centres, axis=1)
        return linalg.lu_solve(self._lu, rhs)

    def charge_field(self, points: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Field of the surface charge ``q`` (one point per triangle) at interior ``points``."""
        d = points[:, None, :] - self.centres[None, :, :]
        w = q * self.areas / (4.0 * np.pi)
        return np.einsum("pjk,pj->pk", d, w[None, :] / np.linalg.norm(d, axis=2) ** 3)


def sphere_bem_efield(points: np.ndarray, r0: np.ndarray, m: np.ndarray, bem: SphereBEM,
                      didt: float = 1.0) -> np.ndarray:
    """Total field (V/m) of dipoles ``(r0, m)`` at interior ``points``: primary + surface charge."""
    q = bem.charge(dipole_primary_field(bem.centres, r0, m, didt))
    return dipole_primary_field(points, r0, m, didt) + bem.charge_field(points, q)


def loop_efield(points: np.ndarray, radius_m: float, centre: np.ndarray, axis: np.ndarray,
                didt: float = 1.0) -> np.ndarray:
    """``-dA/dt`` (V/m) of a circular loop (current counter-clockwise about ``axis``), closed form."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    rel = np.asarray(points, float) - np.asarray(centre, float)
    z = rel @ axis
    radial = rel - z[:, None] * axis
    rho = np.linalg.norm(radial, axis=1)
    k2 = 4.0 * radius_m * rho / ((radius_m + rho) ** 2 + z**2)
    k = np.sqrt(k2)
    a_phi = (4.0 * MU0_OVER_4PI / k) * np.sqrt(radius_m / rho) * (
        (1.0 - k2 / 2.0) * special.ellipk(k2) - special.ellipe(k2))  # per ampere
    phi_hat = np.cross(axis, radial / rho[:, None])
    return -PER_US * didt * a_phi[:, None] * phi_hat
