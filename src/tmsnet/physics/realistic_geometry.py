"""Geometry of a voxel head for coil placement: the scalp surface, coil positions on it, cortical normals.

All positions are world millimetres (the label affine's frame); the voxel axes
may be rotated (any orthogonal affine).

* **Scalp surface**: the 0.5 level set of the head mask (labels > 0) smoothed
  by a Gaussian of ``sigma = max(1 mm, 1.5 voxels)``; for a voxel staircase
  this is a smooth surface through the voxel faces (narrower smoothing left
  the normals of a 4 mm sphere 20 degrees off radial, following the facets of
  the staircase). The outward normal
  is minus the gradient of the smoothed mask.
* **Scalp projection** of a target (:func:`scalp_projection`): the scalp point
  nearest to it (the nearest head-boundary voxel, refined along the ray from
  the target through it to the level set), the standard "plain projection".
* **Coil positions** (:func:`scalp_positions`): a square grid of step
  ``step_mm`` on the tangent plane at the scalp projection, within
  ``radius_mm`` of it (distances on the tangent plane), each grid point
  projected onto the scalp along the normal at the centre; each position gets
  the scalp normal there. The centre itself is always the first position.
* **Cortical normal** (:func:`cortical_normals`): the gradient of the brain
  mask (``"pial"``: GM and WM, the GM/CSF boundary; ``"white"``: WM, the GM/WM
  boundary) smoothed by ``smoothing_mm``, normalised; it points **into** the
  brain (inward), e.g. from the CSF of a sulcus across its wall.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.head_model import TISSUE_LABELS

__all__ = ["HeadSurface", "NORMAL_SURFACES", "cortical_normals", "scalp_positions", "scalp_projection",
           "target_patch"]

#: Which tissue boundary defines the cortical normal (module docstring).
NORMAL_SURFACES = ("pial", "white")
#: Ray-marching step along the scalp normal, in voxels.
_MARCH_VOXELS = 0.25
#: Rays start this far outside the scalp (mm).
_RAY_START_MM = 40.0


def _to_index(affine: np.ndarray, points_mm: np.ndarray) -> np.ndarray:
    """Fractional voxel indices of world points, shape (..., 3)."""
    inv = np.linalg.inv(affine)
    return points_mm @ inv[:3, :3].T + inv[:3, 3]


def _to_world(affine: np.ndarray, ijk: np.ndarray) -> np.ndarray:
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _world_gradient(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Gradient of a volume in world mm units, shape (nx, ny, nz, 3)."""
    g = np.stack(np.gradient(volume.astype(np.float32)), axis=-1)  # per voxel index
    return g @ np.linalg.inv(affine[:3, :3]).astype(np.float32)  # d/dx_world = sum_k d/di_k di_k/dx


class HeadSurface:
    """The smoothed head mask of a label volume: scalp level set, sampling, normals.

    Parameters
    ----------
    labels : array, shape (nx, ny, nz)
        Tissue labels (0 background).
    affine : array, shape (4, 4)
        Voxel to world (mm).
    """

    def __init__(self, labels: Any, affine: Any) -> None:
        self.labels = np.asarray(labels)
        self.affine = np.asarray(affine, dtype=float)
        self.zooms = np.linalg.norm(self.affine[:3, :3], axis=0)
        sigma_mm = max(1.0, 1.5 * float(self.zooms.max()))
        self.head = self.labels > 0
        self.level = ndimage.gaussian_filter(self.head.astype(np.float32), sigma_mm / self.zooms,
                                             mode="constant")
        self.gradient = _world_gradient(self.level, self.affine)

    def sample(self, points_mm: np.ndarray) -> np.ndarray:
        """Smoothed head mask (0 outside, 1 inside) at world points, trilinear."""
        ijk = _to_index(self.affine, np.asarray(points_mm, dtype=float).reshape(-1, 3))
        out = ndimage.map_coordinates(self.level, ijk.T, order=1, mode="constant", cval=0.0)
        return out.reshape(np.shape(points_mm)[:-1])

    def outward_normal(self, points_mm: np.ndarray) -> np.ndarray:
        """Unit outward scalp normals at world points near the surface, shape (n, 3)."""
        ijk = _to_index(self.affine, np.asarray(points_mm, dtype=float).reshape(-1, 3)).T
        g = np.stack([ndimage.map_coordinates(self.gradient[..., k], ijk, order=1, mode="nearest")
                      for k in range(3)], axis=-1)
        norm = np.linalg.norm(g, axis=1, keepdims=True)
        if np.any(norm <= 0):
            raise InvalidParameterError("A coil position lies away from the scalp (no scalp normal there).")
        return -g / norm

    def march(self, starts_mm: np.ndarray, direction: np.ndarray, length_mm: float) -> np.ndarray:
        """Where rays from ``starts_mm`` along ``direction`` first reach the 0.5 level (mm), shape (n, 3).

        ``direction`` is one unit vector (n, 3 or 3,); the crossing is linearly
        interpolated between ray samples ``_MARCH_VOXELS`` voxels apart.
        """
        step = _MARCH_VOXELS * float(self.zooms.min())
        t = np.arange(0.0, length_mm + step, step)
        starts = np.atleast_2d(starts_mm)
        d = np.broadcast_to(direction, starts.shape)
        values = self.sample(starts[:, None, :] + t[None, :, None] * d[:, None, :]) - 0.5
        inside = values >= 0
        if not np.all(inside.any(axis=1)):
            raise InvalidParameterError("A ray towards the head never reached the scalp; is the search "
                                        "radius larger than the head?")
        k = np.argmax(inside, axis=1)
        if np.any(k == 0):
            raise InvalidParameterError("A scalp search ray started inside the head.")
        rows = np.arange(len(starts))
        v0, v1 = values[rows, k - 1], values[rows, k]
        tc = t[k - 1] + step * (-v0) / (v1 - v0)
        return starts + tc[:, None] * d


def scalp_projection(surface: HeadSurface, target_mm: Any) -> tuple[np.ndarray, np.ndarray]:
    """The scalp point nearest a target and the outward scalp normal there.

    Parameters
    ----------
    surface : HeadSurface
        The head.
    target_mm : array, shape (3,)
        Target (world mm), inside the head.

    Returns
    -------
    point_mm, normal : numpy.ndarray, shape (3,)
        Scalp point (mm) and unit outward normal.
    """
    target = np.asarray(target_mm, dtype=float).reshape(3)
    boundary = surface.head & ~ndimage.binary_erosion(surface.head)
    centres = _to_world(surface.affine, np.argwhere(boundary).astype(float))
    nearest = centres[np.argmin(np.linalg.norm(centres - target, axis=1))]
    outward = nearest - target
    norm = float(np.linalg.norm(outward))
    if norm < 1e-6:
        raise InvalidParameterError("The target lies on the scalp; give a target inside the brain.")
    outward /= norm
    start = nearest + _RAY_START_MM * outward
    point = surface.march(start, -outward, _RAY_START_MM + 3.0 * float(surface.zooms.max()))[0]
    return point, surface.outward_normal(point[None])[0]


def _tangent_basis(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(normal, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(normal, e1)


def scalp_positions(surface: HeadSurface, centre_mm: Any, normal: Any, radius_mm: float,
                    step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Coil positions on the scalp around a scalp point (module docstring).

    Parameters
    ----------
    surface : HeadSurface
        The head.
    centre_mm, normal : array, shape (3,)
        Scalp point (mm) and its outward normal, e.g. from :func:`scalp_projection`.
    radius_mm, step_mm : float
        Search radius and grid step on the tangent plane (mm).

    Returns
    -------
    points_mm, normals : numpy.ndarray, shape (p, 3)
        Scalp points (the centre first) and their outward unit normals.
    """
    if not step_mm > 0 or not radius_mm >= 0:
        raise InvalidParameterError("Need step_mm > 0 and radius_mm >= 0 for the coil positions.")
    centre = np.asarray(centre_mm, dtype=float).reshape(3)
    n0 = np.asarray(normal, dtype=float).reshape(3)
    e1, e2 = _tangent_basis(n0)
    k = int(np.floor(radius_mm / step_mm + 1e-9))
    u, v = np.meshgrid(np.arange(-k, k + 1) * step_mm, np.arange(-k, k + 1) * step_mm, indexing="ij")
    keep = np.hypot(u, v) <= radius_mm + 1e-9
    u, v = u[keep], v[keep]
    order = np.argsort(np.hypot(u, v), kind="stable")  # the centre first
    plane = centre + u[order, None] * e1 + v[order, None] * e2
    points = surface.march(plane + _RAY_START_MM * n0, -n0, 2.0 * _RAY_START_MM + radius_mm)
    points[0] = centre
    return points, surface.outward_normal(points)


def cortical_normals(labels: Any, affine: Any, cells: np.ndarray, *, surface: str = "pial",
                     smoothing_mm: float = 2.0) -> np.ndarray:
    """Inward unit cortical normals at voxels (module docstring).

    Parameters
    ----------
    labels : array, shape (nx, ny, nz)
        Tissue labels.
    affine : array, shape (4, 4)
        Voxel to world (mm).
    cells : array of int, shape (n, 3)
        Voxel indices where the normal is wanted.
    surface : {"pial", "white"}
        The boundary that defines the normal.
    smoothing_mm : float
        Gaussian sigma of the mask before the gradient (mm).

    Returns
    -------
    numpy.ndarray, shape (n, 3)
        Unit vectors (world frame) pointing into the brain.
    """
    if surface not in NORMAL_SURFACES:
        raise InvalidParameterError(f"surface must be one of {NORMAL_SURFACES}, got {surface!r}.")
    labels = np.asarray(labels)
    affine = np.asarray(affine, dtype=float)
    threshold = TISSUE_LABELS["gm"] if surface == "pial" else TISSUE_LABELS["wm"]
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    smooth = ndimage.gaussian_filter((labels >= threshold).astype(np.float32), smoothing_mm / zooms)
    g = _world_gradient(smooth, affine)[tuple(np.asarray(cells).T)].astype(float)
    norm = np.linalg.norm(g, axis=1, keepdims=True)
    if np.any(norm <= 1e-12):
        raise InvalidParameterError("A target voxel lies too far from the cortical boundary to have "
                                    "a normal; "
                                    "raise smoothing_mm or use the magnitude objective.")
    return g / norm


def target_patch(labels: Any, affine: Any, target: Any, radius_mm: float) -> np.ndarray:
    """Boolean mask of a target patch: a given mask, or the GM voxels within ``radius_mm`` of a point.

    Parameters
    ----------
    labels, affine : array
        The label volume (nx, ny, nz) and its voxel-to-world affine (4 x 4, mm).
    target : array, shape (3,) or (nx, ny, nz) bool
        A point (world mm) or a voxel mask on the label grid.
    radius_mm : float
        Patch radius around a point (mm).

    Returns
    -------
    numpy.ndarray of bool, shape (nx, ny, nz)
        Head voxels of the patch.

    Raises
    ------
    InvalidParameterError
        For a mask on another grid, or an empty patch.
    """
    labels = np.asarray(labels)
    arr = np.asarray(target)
    if arr.shape == labels.shape:
        mask = arr.astype(bool) & (labels > 0)
    elif arr.size == 3:
        centres = _to_world(np.asarray(affine, dtype=float), np.indices(labels.shape).reshape(3, -1).T)
        near = np.linalg.norm(centres - arr.reshape(1, 3).astype(float), axis=1) <= radius_mm
        mask = near.reshape(labels.shape) & (labels == TISSUE_LABELS["gm"])
    else:
        raise InvalidParameterError(f"target must be a point (3 numbers, mm) or a mask of "
                                    f"shape {labels.shape}, "
                                    f"got shape {arr.shape}.")
    if not mask.any():
        raise InvalidParameterError("The target patch holds no head voxel (no grey matter within the patch "
                                    "radius of the point); move the target onto the cortex or raise the "
                                    "radius.")
    return mask
