"""Coil depth-focality metrics of Deng, Lisanby & Peterchev (2013).

Spherical head of radius 8.5 cm with a 7.0 cm brain (brain surface 1.5 cm
below the scalp); the coil touches the scalp at the vertex, its +z axis
pointing to the centre. With ``Emax`` the largest |E| on the brain surface:

* d½: radial distance from the brain surface to the deepest point where
  |E| >= Emax/2 (cm);
* V½: brain volume where |E| >= Emax/2 (cm³);
* S½ = V½ / d½ (cm²).

(Brain Stimulation 6:1, 2013; ``../shared/REFERENCES.md`` section 3, with
the published table in :data:`DENG_2013_TABLE`.)

Computation: rather than counting voxels, tmsnet integrates in spherical
coordinates. The brain surface is sampled on an azimuthal-equidistant grid
of spacing ``grid_mm`` around the vertex; along the radius through each
sample where the surface field reaches Emax/2, the depth at which |E| falls
to Emax/2 is found by bisection (``depth_tol_mm``). Then
``V½ = sum over samples of (R³ - r_min³)/3 · dΩ`` and
``d½ = R - min r_min``. This assumes |E| decreases monotonically with depth
along each radius, which holds for the sphere model's tangential field under
a coil outside the sphere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.coils import Coil, check_coil, coil_param
from tmsnet.physics.efield import efield, transform_dipoles
from tmsnet.physics.head_model import HEAD_MODELS
from tmsnet.utils.params import Parameters, param

__all__ = ["DENG_2013_TABLE", "DengMetrics", "EfieldParameters", "deng_metrics", "dipoles_at_vertex",
           "plot_brain_surface_field"]

#: Published d½ (cm) and S½ (cm²) from Deng et al. 2013 (REFERENCES.md section 3).
DENG_2013_TABLE: dict[str, dict[str, Any]] = {
    "Magstim 70 mm figure-8 (#31)": {"d_half_cm": 1.41, "s_half_cm2": 14.8},
    "MagVenture MC-B70 (#30)": {"d_half_cm": 1.35, "s_half_cm2": 13.9},
    "MagVenture C-B60 (#29)": {"d_half_cm": 1.33, "s_half_cm2": 12.9},
    "Magstim 25 mm figure-8 (#25)": {"d_half_cm": 0.96, "s_half_cm2": 6.46},
    "Magstim 70 mm circular (#4)": {"d_half_cm": 1.44, "s_half_cm2": 66.0},
    "Magstim double cone (#37)": {"d_half_cm": 1.98, "s_half_cm2": 34.0},
    "Brainsway H1 (#9)": {"d_half_cm": 2.14, "s_half_cm2": 113.0},
}


@dataclass
class DengMetrics:
    """Depth and focality of a coil on the Deng 2013 sphere.

    Attributes
    ----------
    coil : str
        Coil name.
    d_half_cm, s_half_cm2, v_half_cm3 : float
        d½ (cm), S½ (cm²) and V½ (cm³).
    e_max_v_per_m_per_a_per_us : float
        Largest |E| on the brain surface (V/m per A/µs).
    head_radius_cm, brain_radius_cm : float
        Sphere geometry.
    grid_mm : float
        Surface sampling step.
    surface_grid_mm : numpy.ndarray, shape (k, k, 2)
        Azimuthal-equidistant (u, v) coordinates of the surface samples (mm,
        arc length from the vertex).
    surface_e : numpy.ndarray, shape (k, k)
        |E| on the brain surface at those samples (V/m per A/µs).
    """

    coil: str
    d_half_cm: float
    s_half_cm2: float
    v_half_cm3: float
    e_max_v_per_m_per_a_per_us: float
    head_radius_cm: float
    brain_radius_cm: float
    grid_mm: float
    surface_grid_mm: np.ndarray
    surface_e: np.ndarray

    def as_dict(self) -> dict[str, Any]:
        """The scalar results, JSON-ready."""
        return {
            "coil": self.coil,
            "d_half_cm": self.d_half_cm,
            "s_half_cm2": self.s_half_cm2,
            "v_half_cm3": self.v_half_cm3,
            "e_max_v_per_m_per_a_per_us": self.e_max_v_per_m_per_a_per_us,
            "head_radius_cm": self.head_radius_cm,
            "brain_radius_cm": self.brain_radius_cm,
            "grid_mm": self.grid_mm,
        }


def _sphere_points(u_mm: np.ndarray, v_mm: np.ndarray, radius_mm: float) -> np.ndarray:
    """Unit directions for azimuthal-equidistant coordinates around +z."""
    rho = np.hypot(u_mm, v_mm)
    theta = rho / radius_mm
    phi = np.arctan2(v_mm, u_mm)
    st = np.sin(theta)
    return np.stack([st * np.cos(phi), st * np.sin(phi), np.cos(theta)], axis=-1)


def _surface_scan(field_norm: Any, coil_name: str, r_brain: float,
                  grid_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """|E| on the brain surface, growing the window until the half-max region lies inside it."""
    half_width = 60.0
    max_width = 0.5 * np.pi * r_brain
    while True:
        k = int(np.ceil(half_width / grid_mm))
        axis = np.arange(-k, k + 1) * grid_mm
        uu, vv = np.meshgrid(axis, axis, indexing="ij")
        dirs = _sphere_points(uu, vv, r_brain)
        surf = field_norm(dirs * r_brain)
        e_max = float(surf.max())
        border = np.concatenate([surf[0], surf[-1], surf[:, 0], surf[:, -1]])
        if border.max() < e_max / 2 or half_width >= max_width:
            break
        half_width = min(half_width * 1.5, max_width)
    if border.max() >= e_max / 2:
        raise InvalidParameterError(
            f"Coil {coil_name!r}: the half-maximum field reaches beyond a quarter of the sphere; "
            "the Deng metrics are not defined for so unfocal a field on this sphere."
        )
    return uu, vv, dirs, surf


def _half_max_radii(field_norm: Any, coil_name: str, lines: np.ndarray, r_brain: float, e_max: float,
                    max_depth_cm: float, depth_tol_mm: float) -> np.ndarray:
    """Radius (mm) where |E| falls to ``e_max / 2`` along each direction (bisection)."""
    lo = np.full(len(lines), r_brain - max_depth_cm * 10.0)  # below threshold (checked)
    hi = np.full(len(lines), r_brain)  # at or above threshold
    if len(lines) and np.any(field_norm(lines * lo[:, None]) >= e_max / 2):
        raise InvalidParameterError(
            f"Coil {coil_name!r}: |E| stays above half maximum deeper than max_depth_cm="
            f"{max_depth_cm}; raise max_depth_cm."
        )
    while np.max(hi - lo, initial=0.0) > depth_tol_mm:
        mid = 0.5 * (lo + hi)
        ok = field_norm(lines * mid[:, None]) >= e_max / 2
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return 0.5 * (lo + hi)


def dipoles_at_vertex(coil: Coil, head_radius_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """The coil's dipoles (m, A m²) touching a sphere centred at the origin at its vertex.

    The Deng et al. 2013 placement: the coil centre at (0, 0, ``head_radius_mm``), its +z axis
    pointing to the centre (head -z), its y axis along head -y.
    """
    rotation = np.diag([1.0, -1.0, -1.0])  # coil +z -> head -z (towards the centre)
    return transform_dipoles(coil.positions_m, coil.moments, rotation,
                             np.array([0.0, 0.0, head_radius_mm / 1000.0]))


def deng_metrics(
    coil: Coil,
    *,
    head_radius_cm: float = 8.5,
    brain_radius_cm: float = 7.0,
    grid_mm: float = 1.0,
    depth_tol_mm: float = 0.01,
    max_depth_cm: float = 5.0,
    backend: str = "auto",
) -> DengMetrics:
    """d½, S½ and V½ of a coil (Deng et al. 2013).

    Parameters
    ----------
    coil : Coil
        The coil model (coil frame, +z into the head).
    head_radius_cm, brain_radius_cm : float
        Sphere radii (Deng 2013: 8.5 and 7.0 cm).
    grid_mm : float
        Sampling step on the brain surface (mm of arc).
    depth_tol_mm : float
        Bisection tolerance of the half-maximum depth (mm).
    max_depth_cm : float
        Deepest point searched below the brain surface (cm).
    backend : str
        E-field backend (see :func:`tmsnet.physics.efield.efield`).

    Returns
    -------
    DengMetrics

    Raises
    ------
    InvalidParameterError
        If the geometry is impossible or the half-maximum region reaches the
        edge of the searched region.
    """
    if not 0 < brain_radius_cm < head_radius_cm:
        raise InvalidParameterError("Need 0 < brain_radius_cm < head_radius_cm.")
    if grid_mm <= 0 or depth_tol_mm <= 0 or max_depth_cm <= 0:
        raise InvalidParameterError("grid_mm, depth_tol_mm and max_depth_cm must be > 0.")
    r_brain = brain_radius_cm * 10.0
    pos, mom = dipoles_at_vertex(coil, head_radius_cm * 10.0)

    def field_norm(points_mm: np.ndarray) -> np.ndarray:
        e = efield(points_mm.reshape(-1, 3) * 1e-3, pos, mom, backend=backend)
        return np.linalg.norm(e, axis=1).reshape(points_mm.shape[:-1])

    uu, vv, dirs, surf = _surface_scan(field_norm, coil.name, r_brain, grid_mm)
    e_max = float(surf.max())
    above = surf >= e_max / 2
    r_min = _half_max_radii(field_norm, coil.name, dirs[above], r_brain, e_max, max_depth_cm, depth_tol_mm)
    rho = np.hypot(uu, vv)[above]
    theta = rho / r_brain
    # Solid angle per sample of the azimuthal-equidistant grid: sin(theta)/(R rho) du dv.
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(rho > 0, np.sin(theta) / np.where(rho > 0, rho, 1.0), 1.0 / r_brain)
    d_omega = ratio * grid_mm**2 / r_brain
    v_half_mm3 = float(np.sum((r_brain**3 - r_min**3) / 3.0 * d_omega))
    d_half_mm = float(r_brain - r_min.min()) if len(r_min) else 0.0
    v_half = v_half_mm3 / 1000.0
    d_half = d_half_mm / 10.0
    return DengMetrics(
        coil=coil.name,
        d_half_cm=d_half,
        s_half_cm2=v_half / d_half if d_half > 0 else float("nan"),
        v_half_cm3=v_half,
        e_max_v_per_m_per_a_per_us=e_max,
        head_radius_cm=head_radius_cm,
        brain_radius_cm=brain_radius_cm,
        grid_mm=grid_mm,
        surface_grid_mm=np.stack([uu, vv], axis=-1),
        surface_e=surf,
    )


def plot_brain_surface_field(metrics: DengMetrics, *, ax: Any = None) -> Any:
    """Figure of |E| on the brain surface with the half-maximum contour.

    Parameters
    ----------
    metrics : DengMetrics
        Output of :func:`deng_metrics`.
    ax : matplotlib Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(5.2, 4.4))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    uu = metrics.surface_grid_mm[..., 0] / 10.0
    vv = metrics.surface_grid_mm[..., 1] / 10.0
    mesh = ax.pcolormesh(uu, vv, metrics.surface_e, shading="auto", cmap="viridis")
    ax.contour(uu, vv, metrics.surface_e, levels=[metrics.e_max_v_per_m_per_a_per_us / 2],
               colors="white", linewidths=1.2)
    ax.set_aspect("equal")
    ax.set_xlabel("arc length along coil x (cm)")
    ax.set_ylabel("arc length along coil y (cm)")
    ax.set_title(
        f"{metrics.coil}: |E| on the {metrics.brain_radius_cm:g} cm brain surface\n"
        f"d½ = {metrics.d_half_cm:.2f} cm, S½ = {metrics.s_half_cm2:.1f} cm² (white: Emax/2)",
        fontsize=9,
    )
    fig.colorbar(mesh, ax=ax, label="|E| (V/m per A/µs)")
    return fig


@dataclass(frozen=True)
class EfieldParameters(Parameters):
    """Options of ``tmsnet efield`` (:func:`tmsnet.jobs.efield.coil_field_metrics`).

    Attributes
    ----------
    coil : str
        Bundled coil name or SimNIBS ``.ccd`` path.
    metrics : {"deng"}
        Metric set (Deng et al. 2013 sphere).
    grid_mm : float
        Brain-surface sampling step (mm of arc).
    head_model : {"sphere", "realistic"}
        ``"sphere"``: the analytic spherical-head kernel (default);
        ``"realistic"``: the voxel-head solver of the realistic path
        (:mod:`tmsnet.physics.volume_conductor`) on the same sphere written
        as a five-tissue voxel head
        (:func:`tmsnet.physics.head_model.sphere_phantom`).
    voxel_mm : float
        Voxel size of that voxel head (mm); read only with ``"realistic"``.
        1 mm matches the kernel to a few per cent (d½ -4.6 %, S½ -2.6 %
        for the Magstim 70 mm coil, docs/benchmarks.md) in about 40 s; 3 mm
        takes a few seconds; at 2 mm the 3 mm CSF shell falls badly on the
        grid and d½ is off by a third (measured, docs/benchmarks.md).
    """

    coil: str = coil_param()
    metrics: str = param("deng", choices=("deng",), help="metric set")
    grid_mm: float = param(1.0, units="mm", low=0, low_inclusive=False, high=10,
                           help="brain-surface sampling step")
    head_model: str = param(HEAD_MODELS[0], choices=HEAD_MODELS,
                            help="'sphere': analytic spherical-head kernel; 'realistic': the voxel-head "
                                 "solver of --head-model realistic on the same sphere as a voxel head")
    voxel_mm: float = param(1.0, units="mm", low=0.5, high=4.0,
                            help="voxel size of the sphere's voxel head (--head-model realistic)")

    def check(self) -> None:
        """The coil is a name or a path."""
        object.__setattr__(self, "coil", check_coil(self.coil))
