"""Deng et al. 2013 depth and focality measured on a voxel-head field (the realistic path on the sphere).

The definitions are those of :mod:`tmsnet.physics.metrics` (``Emax`` the
largest |E| on the brain surface; d½ the radial depth below it of the deepest
point with |E| >= Emax/2; V½ the brain volume with |E| >= Emax/2; S½ = V½ /
d½), applied to a :class:`~tmsnet.physics.volume_conductor.FieldSolution` on a
sphere phantom: the field is interpolated trilinearly between voxel centres for
the brain-surface scan and the radial bisection (reusing that module's scan and
bisection), and V½ is the volume of the brain voxels (GM and WM) with |E| >=
Emax/2 (voxel count x voxel volume).

One numerical choice: the voxel solver's field has errors of 10-25 % within a
voxel or two of a tissue boundary (1 mm layered sphere, at the GM/CSF
boundary under the coil; about 1 % deeper), and the brain surface is such a
boundary. ``Emax`` is therefore taken from the field **extrapolated** to the
surface along each radius: a quadratic fitted to |E| at 2 to 6 voxels below
the surface, evaluated at the surface (on the analytic sphere field this
extrapolation is exact to < 0.5 %). The depth and V½ use the interpolated
field itself (the half-maximum depth lies 14 mm deep, where it is accurate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from tmsnet.physics.coils import Coil
from tmsnet.physics.head_model import SPHERE_RADII_MM, TISSUE_LABELS, sphere_phantom
from tmsnet.physics.metrics import DengMetrics, _half_max_radii, _surface_scan, dipoles_at_vertex
from tmsnet.physics.volume_conductor import FieldSolution, VolumeConductor

__all__ = ["deng_metrics_from_field", "field_magnitude_sampler", "realistic_deng_metrics"]


def field_magnitude_sampler(solution: FieldSolution) -> Any:
    """A function from world points (mm, shape (..., 3)) to |E|, trilinear between voxel centres."""
    volume = solution.volume()
    inv = np.linalg.inv(solution.conductor.affine)

    def sample(points_mm: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_mm, dtype=float)
        ijk = (pts.reshape(-1, 3) @ inv[:3, :3].T + inv[:3, 3]).T
        e = np.stack([ndimage.map_coordinates(volume[..., k], ijk, order=1, mode="nearest")
                      for k in range(3)])
        return np.linalg.norm(e, axis=0).reshape(pts.shape[:-1])

    return sample


def _deng_on_field(solution: FieldSolution, centre: np.ndarray, brain_radius_mm: float, grid_mm: float,
                   depth_tol_mm: float) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """The metrics, the surface grid (k, k, 2) and |E| on it (k, k); see :func:`deng_metrics_from_field`."""
    sampler = field_magnitude_sampler(solution)

    def field_norm(points_mm: np.ndarray) -> np.ndarray:
        return sampler(np.asarray(points_mm) + centre)

    h = float(np.max(solution.conductor.spacing_m)) * 1e3
    depths = np.arange(2.0, 6.5) * h
    design = np.vander(-depths, 3)  # quadratic in (r - R)
    at_surface = np.linalg.pinv(design)[-1]  # weights giving the fit's value at r = R

    def surface_norm(points_mm: np.ndarray) -> np.ndarray:
        unit = np.asarray(points_mm) / brain_radius_mm
        samples = np.stack([field_norm(unit * (brain_radius_mm - d)) for d in depths], axis=-1)
        return samples @ at_surface

    uu, vv, dirs, surf = _surface_scan(surface_norm, "realistic", brain_radius_mm, grid_mm)
    e_max = float(surf.max())
    r_min = _half_max_radii(field_norm, "realistic", dirs[surf >= e_max / 2], brain_radius_mm, e_max, 5.0,
                            depth_tol_mm)
    conductor = solution.conductor
    brain = conductor.labels[conductor.inside] >= TISSUE_LABELS["gm"]
    above = np.linalg.norm(solution.e_field[brain], axis=1) >= e_max / 2
    v_half_cm3 = float(np.count_nonzero(above)) * float(np.prod(conductor.spacing_m)) * 1e6
    d_half_cm = float(brain_radius_mm - r_min.min()) / 10.0
    metrics = {"d_half_cm": d_half_cm, "s_half_cm2": v_half_cm3 / d_half_cm, "v_half_cm3": v_half_cm3,
               "e_max": e_max}
    return metrics, np.stack([uu, vv], axis=-1), surf


def deng_metrics_from_field(solution: FieldSolution, *, centre_mm: Any = (0.0, 0.0, 0.0),
                            brain_radius_mm: float = 70.0, grid_mm: float = 1.0,
                            depth_tol_mm: float = 0.05) -> dict[str, float]:
    """d½, S½ and V½ of a voxel-head field on a sphere phantom, coil at the vertex (+z).

    Parameters
    ----------
    solution : FieldSolution
        The field (e.g. of :func:`tmsnet.physics.head_model.sphere_phantom` with the
        coil touching the scalp at the vertex).
    centre_mm : array, shape (3,)
        Sphere centre (world mm).
    brain_radius_mm : float
        Brain (GM) radius (mm).
    grid_mm : float
        Brain-surface sampling step (mm of arc).
    depth_tol_mm : float
        Bisection tolerance of the half-maximum depth (mm).

    Returns
    -------
    dict
        ``d_half_cm``, ``s_half_cm2``, ``v_half_cm3``, ``e_max`` (V/m per A/µs).
    """
    return _deng_on_field(solution, np.asarray(centre_mm, dtype=float), brain_radius_mm, grid_mm,
                          depth_tol_mm)[0]


def realistic_deng_metrics(coil: Coil, *, voxel_mm: float = 1.0, grid_mm: float = 1.0) -> DengMetrics:
    """Deng 2013 metrics of a coil from the voxel-head solver on the Deng sphere.

    The 8.5 cm head with a 7.0 cm brain is written as a five-tissue voxel head
    (:func:`~tmsnet.physics.head_model.sphere_phantom`, shells of
    :data:`~tmsnet.physics.head_model.SPHERE_RADII_MM`), the coil touches the
    scalp at the vertex as in :func:`~tmsnet.physics.metrics.deng_metrics`,
    the field is solved with the standard conductivities
    (:class:`~tmsnet.physics.volume_conductor.VolumeConductor`), and the
    metrics are read off as in :func:`deng_metrics_from_field`. In a
    spherically symmetric conductor the result should equal the kernel's; the
    difference is the solver's discretisation error (``tmsnet efield
    --head-model realistic``).

    Parameters
    ----------
    coil : Coil
        The coil model (coil frame, +z into the head).
    voxel_mm : float
        Voxel size of the voxel head (mm).
    grid_mm : float
        Brain-surface sampling step (mm of arc).

    Returns
    -------
    DengMetrics
        With the brain-surface field of the voxel solution (for the figure).
    """
    head = sphere_phantom(voxel_mm)
    conductor = VolumeConductor(head.labels, head.affine)
    pos, mom = dipoles_at_vertex(coil, SPHERE_RADII_MM["scalp"])
    solution = conductor.solve(conductor.primary_field(pos, mom))
    values, grid, surf = _deng_on_field(solution, np.zeros(3), SPHERE_RADII_MM["gm"], grid_mm, 0.05)
    return DengMetrics(coil=coil.name, d_half_cm=values["d_half_cm"], s_half_cm2=values["s_half_cm2"],
                       v_half_cm3=values["v_half_cm3"], e_max_v_per_m_per_a_per_us=values["e_max"],
                       head_radius_cm=SPHERE_RADII_MM["scalp"] / 10.0,
                       brain_radius_cm=SPHERE_RADII_MM["gm"] / 10.0, grid_mm=grid_mm,
                       surface_grid_mm=grid, surface_e=surf)
