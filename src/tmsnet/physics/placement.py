"""Coil placement over a target: local sphere, orientation sweep, field, focality.

For a target (mm) and a head surface (scalp points, mm) tmsnet fits a
sphere to the scalp within ``fit_radius_mm`` of the scalp point above the
target (the "local sphere" of the sphere model; REFERENCES.md section 3),
puts the coil's origin on the scalp point (plus ``coil_distance_mm`` for
hair or cap) with its +z axis towards the sphere centre, and turns it about
that axis in ``angle_step_deg`` steps. For every angle the sphere-model field
at the target is computed in one batched call. Focality is the area, on the
sphere through the target (same centre), where |E| is at least half of its
maximum on that sphere (cm²).

Which orientation (``orientation``, :data:`ORIENTATION_RULES`):

* ``"clinical"`` (default): the coil handle (its +y axis) about 45 degrees from the
  midline, pointing back and out (posterior and lateral, towards the target's side),
  projected onto the scalp's tangent plane -- the convention of clinical rTMS over
  DLPFC and M1 (posterior-lateral handle, current across the precentral/prefrontal
  gyri; REFERENCES.md section 3). The sphere model cannot choose an orientation: with
  the target on the coil axis, |E| at the target is invariant under rotation about
  that axis by symmetry, so the sweep varies by a fraction of a percent
  (``Placement.sweep_variation_percent``) and its maximum is noise. Only a
  head model with a folded cortex (issue 17's realistic path) can choose.
* ``"max_field"``: the swept angle with the largest |E| (the old behaviour; kept for
  comparison and for off-axis targets).

Angles: 0 deg means the coil's +y axis points along ``reference_direction``
(default +y = anterior in RAS/MNI) projected onto the tangent plane;
positive angles turn it counter-clockwise seen from outside the head. For
the figure-8 coils of tmsnet and SimNIBS the induced field under the coil
centre runs along the coil's y axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.coils import Coil
from tmsnet.physics.efield import efield, efield_placements, transform_dipoles

__all__ = ["CLINICAL_HANDLE_ANGLE_DEG", "DEFAULT_ANGLE_STEP_DEG", "ORIENTATION_RULES", "FieldPatch",
           "Placement", "clinical_angle_deg", "coil_rotation", "field_patch", "fit_sphere",
           "focality_area_cm2", "optimize_placement"]

#: Step of the coil orientation sweep (degrees) unless one is given.
DEFAULT_ANGLE_STEP_DEG = 5.0
#: How the coil orientation is chosen (module docstring); the first is the default.
ORIENTATION_RULES = ("clinical", "max_field")
#: Angle of the coil handle from the midline in the clinical convention (degrees).
CLINICAL_HANDLE_ANGLE_DEG = 45.0


def fit_sphere(points_mm: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere through points (algebraic fit, exact for points on a sphere).

    Parameters
    ----------
    points_mm : array, shape (n, 3), n >= 4
        Points (mm), not all on one plane.

    Returns
    -------
    centre : numpy.ndarray, shape (3,)
        Sphere centre (mm).
    radius : float
        Radius (mm).

    Raises
    ------
    InvalidParameterError
        With fewer than 4 points or a degenerate (planar) point set.
    """
    p = np.asarray(points_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < 4:
        raise InvalidParameterError("A sphere fit needs at least 4 points as an (n, 3) array.")
    mean = p.mean(axis=0)
    q = p - mean
    a = np.column_stack([2 * q, np.ones(len(q))])
    b = np.sum(q * q, axis=1)
    sol, _, rank, _ = np.linalg.lstsq(a, b, rcond=None)
    if rank < 4:
        raise InvalidParameterError("The scalp points are degenerate (planar); cannot fit a sphere.")
    centre = sol[:3]
    radius = float(np.sqrt(sol[3] + centre @ centre))
    return centre + mean, radius


def coil_rotation(
    z_axis: np.ndarray, angle_deg: float | np.ndarray, reference_direction: np.ndarray = (0.0, 1.0, 0.0)
) -> np.ndarray:
    """Coil axes (columns x, y, z) for a +z axis and angle(s) about it.

    Parameters
    ----------
    z_axis : array, shape (3,)
        Coil +z (into the head), any length.
    angle_deg : float or array of shape (k,)
        Rotation(s) about +z; 0 puts the coil y axis along the projection of
        ``reference_direction``; positive turns counter-clockwise seen from
        outside the head (i.e. looking along +z).
    reference_direction : array, shape (3,)
        Direction defining angle 0 (default anterior, +y).

    Returns
    -------
    numpy.ndarray, shape (3, 3) or (k, 3, 3)
        Right-handed rotation matrices.
    """
    z = np.asarray(z_axis, dtype=np.float64)
    z = z / np.linalg.norm(z)
    ref = np.asarray(reference_direction, dtype=np.float64)
    y0 = ref - (ref @ z) * z
    if np.linalg.norm(y0) < 1e-6 * np.linalg.norm(ref):
        y0 = np.array([1.0, 0.0, 0.0]) - z[0] * z
    y0 /= np.linalg.norm(y0)
    x0 = np.cross(y0, z)
    ang = np.radians(np.atleast_1d(np.asarray(angle_deg, dtype=np.float64)))
    # Looking along +z (from outside), counter-clockwise is clockwise about +z.
    c, s = np.cos(-ang)[:, None], np.sin(-ang)[:, None]
    x = c * x0 + s * y0
    y = -s * x0 + c * y0
    rot = np.stack([x, y, np.broadcast_to(z, x.shape)], axis=-1)
    return rot[0] if np.ndim(angle_deg) == 0 else rot


def clinical_angle_deg(z_axis: np.ndarray, lateral_sign: float,
                       reference_direction: np.ndarray = (0.0, 1.0, 0.0)) -> float:
    """Angle (degrees, :func:`coil_rotation`'s convention) of the clinical coil orientation.

    The handle (coil +y) points back and out: the direction
    ``(lateral_sign * sin 45°, -cos 45°, 0)`` in RAS, projected onto the plane
    normal to ``z_axis``.

    Parameters
    ----------
    z_axis : array, shape (3,)
        Coil +z axis (into the head).
    lateral_sign : float
        Side of the target: negative for the left hemisphere (-x), positive for
        the right; 0 (the midline) points the handle straight back.
    reference_direction : array, shape (3,)
        Direction of angle 0 (default anterior).

    Returns
    -------
    float
        Angle in [0, 360) degrees.
    """
    half = np.radians(CLINICAL_HANDLE_ANGLE_DEG)
    handle = np.array([np.sign(lateral_sign) * np.sin(half), -np.cos(half), 0.0])
    if lateral_sign == 0:
        handle = np.array([0.0, -1.0, 0.0])
    basis = coil_rotation(z_axis, 0.0, reference_direction)
    x0, y0 = basis[:, 0], basis[:, 1]
    # coil_rotation: y(angle) = sin(angle) x0 + cos(angle) y0
    return float(np.degrees(np.arctan2(handle @ x0, handle @ y0)) % 360.0)


def _sphere_patch(axis_dir: np.ndarray, e1: np.ndarray, radius_mm: float, grid_mm: float,
                  half_width_mm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Azimuthal-equidistant grid on a sphere around ``axis_dir``.

    Returns ``u, v`` (mm of arc along ``e1`` and ``axis_dir x e1``), the unit
    directions of the samples, shape ``(k, k, 3)``, and the area element of
    each sample relative to ``grid_mm**2`` (the Jacobian ``R sin(theta) / rho``).
    """
    e2 = np.cross(axis_dir, e1)
    k = int(np.ceil(half_width_mm / grid_mm))
    ax = np.arange(-k, k + 1) * grid_mm
    uu, vv = np.meshgrid(ax, ax, indexing="ij")
    rho = np.hypot(uu, vv)
    theta = rho / radius_mm
    phi = np.arctan2(vv, uu)
    dirs = (np.cos(theta)[..., None] * axis_dir
            + (np.sin(theta) * np.cos(phi))[..., None] * e1
            + (np.sin(theta) * np.sin(phi))[..., None] * e2)
    with np.errstate(invalid="ignore", divide="ignore"):
        jac = np.where(rho > 0, radius_mm * np.sin(theta) / np.where(rho > 0, rho, 1.0), 1.0)
    return uu, vv, dirs, jac


def _half_max_area_cm2(e: np.ndarray, jac: np.ndarray, grid_mm: float) -> float:
    """Area (cm²) of the samples with |E| >= half the patch maximum."""
    return float(np.sum(jac[e >= float(e.max()) / 2]) * grid_mm**2) / 100.0


def focality_area_cm2(
    coil: Coil,
    rotation: np.ndarray,
    origin_mm: np.ndarray,
    centre_mm: np.ndarray,
    radius_mm: float,
    *,
    grid_mm: float = 1.5,
    half_width_mm: float = 60.0,
    backend: str = "auto",
) -> tuple[float, float]:
    """Area above half maximum on a sphere, and that maximum.

    Parameters
    ----------
    coil : Coil
        The coil.
    rotation : array, shape (3, 3)
        Coil axes in the head frame.
    origin_mm : array, shape (3,)
        Coil origin (mm, head frame).
    centre_mm : array, shape (3,)
        Sphere centre (mm).
    radius_mm : float
        Radius of the evaluation sphere (mm), e.g. centre-to-target distance.
    grid_mm : float
        Sampling step (mm of arc) around the point under the coil.
    half_width_mm : float
        Half width of the sampled patch (mm of arc).
    backend : str
        E-field backend.

    Returns
    -------
    area_cm2 : float
        Area with |E| >= max/2 (cm²).
    e_max : float
        Maximum |E| on the patch (V/m per A/µs).
    """
    c = np.asarray(centre_mm, dtype=np.float64)
    axis_dir = np.asarray(origin_mm, dtype=np.float64) - c
    axis_dir /= np.linalg.norm(axis_dir)
    # Local frame with the patch centred on the coil axis.
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis_dir[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(axis_dir, helper)
    e1 /= np.linalg.norm(e1)
    uu, _, dirs, jac = _sphere_patch(axis_dir, e1, radius_mm, grid_mm, half_width_mm)
    pts = dirs.reshape(-1, 3) * radius_mm
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, rotation, (np.asarray(origin_mm) - c) * 1e-3)
    e = np.linalg.norm(efield(pts * 1e-3, pos, mom, backend=backend), axis=1).reshape(uu.shape)
    return _half_max_area_cm2(e, jac, grid_mm), float(e.max())


@dataclass
class FieldPatch:
    """|E| of a placed coil on the sphere through the target (the plan's field figure).

    Attributes
    ----------
    u_mm, v_mm : numpy.ndarray, shape (k, k)
        Arc-length coordinates on that sphere around the coil axis (mm), ``u``
        along the coil's x axis and ``v`` along its y axis.
    e : numpy.ndarray, shape (k, k)
        |E| (V/m per A/µs of coil current slope).
    target_uv_mm : tuple of float
        The target in the same coordinates.
    e_at_target : float
        |E| at the target (V/m per A/µs); equals the placement's ``e_at_target``.
    radius_mm : float
        Radius of the sphere (local scalp sphere centre to target).
    half_max_area_cm2 : float
        Area of the patch with |E| >= half its maximum (cm²); the placement's
        focality on a coarser grid.
    coil : str
        Coil name.
    grid_mm : float
        Sampling step (mm of arc).
    """

    u_mm: np.ndarray
    v_mm: np.ndarray
    e: np.ndarray
    target_uv_mm: tuple[float, float]
    e_at_target: float
    radius_mm: float
    half_max_area_cm2: float
    coil: str
    grid_mm: float


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if not np.isfinite(n) or n < 1e-9:
        raise InvalidParameterError(f"The placement's {what} has zero length.")
    return v / n


def field_patch(coil: Coil, placement: Placement, *, grid_mm: float = 2.0, half_width_mm: float = 50.0,
                backend: str = "auto") -> FieldPatch:
    """Sphere-model |E| of a coil placement around its target.

    The field is sampled on the sphere through the target (centre: the
    placement's local scalp sphere) with an azimuthal-equidistant grid
    centred on the coil axis, ``u`` along the coil's x axis; the target itself
    is evaluated in the same call (Heller & van Hulsteyn 1992 kernel, as in
    :func:`optimize_placement`).

    Parameters
    ----------
    coil : Coil
        The coil of the placement.
    placement : Placement
        From :func:`optimize_placement`.
    grid_mm : float
        Sampling step (mm of arc), > 0.
    half_width_mm : float
        Half width of the sampled patch (mm of arc), > ``grid_mm``.
    backend : str
        E-field backend.

    Returns
    -------
    FieldPatch

    Raises
    ------
    InvalidParameterError
        If the grid is invalid or the placement degenerate.
    """
    if not grid_mm > 0 or not half_width_mm > grid_mm:
        raise InvalidParameterError("Need grid_mm > 0 and half_width_mm > grid_mm.")
    target = np.asarray(placement.target_mm, dtype=float).reshape(3)
    centre = np.asarray(placement.sphere_centre_mm, dtype=float).reshape(3)
    rotation = np.asarray(placement.rotation, dtype=float)
    origin = np.asarray(placement.coil_origin_mm, dtype=float).reshape(3)
    outward = _unit(placement.scalp_point_mm - centre, "scalp point")
    radius = float(np.linalg.norm(target - centre))
    e1 = _unit(rotation[:, 0] - np.dot(rotation[:, 0], outward) * outward, "coil x axis")
    e2 = np.cross(outward, e1)
    uu, vv, dirs, jac = _sphere_patch(outward, e1, radius, grid_mm, half_width_mm)
    points = np.concatenate([dirs.reshape(-1, 3) * radius, (target - centre)[None, :]])
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, rotation, (origin - centre) * 1e-3)
    e_all = np.linalg.norm(efield(points * 1e-3, pos, mom, backend=backend), axis=1)
    e = e_all[:-1].reshape(uu.shape)
    d = _unit(target - centre, "target")
    t_theta = float(np.arccos(np.clip(np.dot(d, outward), -1.0, 1.0)))
    t_phi = float(np.arctan2(np.dot(d, e2), np.dot(d, e1)))
    return FieldPatch(u_mm=uu, v_mm=vv, e=e,
                      target_uv_mm=(radius * t_theta * np.cos(t_phi), radius * t_theta * np.sin(t_phi)),
                      e_at_target=float(e_all[-1]), radius_mm=radius,
                      half_max_area_cm2=_half_max_area_cm2(e, jac, grid_mm), coil=str(coil.name),
                      grid_mm=float(grid_mm))


@dataclass
class Placement:
    """Where and how to hold the coil for one target.

    Attributes
    ----------
    target_mm : numpy.ndarray
        Target (mm, head frame).
    scalp_point_mm : numpy.ndarray
        Scalp point under the coil centre (mm).
    coil_origin_mm : numpy.ndarray
        Coil origin (scalp point + ``coil_distance_mm`` outwards).
    rotation : numpy.ndarray, shape (3, 3)
        Coil axes (columns x, y, z) in the head frame; z into the head.
    angle_deg : float
        Chosen angle about the coil axis (see module docstring).
    sphere_centre_mm, sphere_radius_mm
        The local sphere fitted to the scalp.
    e_at_target : float
        |E| at the target, V/m per A/µs.
    e_vector_at_target : numpy.ndarray
        E at the target (V/m per A/µs), head frame.
    focality_cm2 : float
        Area with |E| >= half its maximum on the sphere through the target (cm²).
    target_depth_mm : float
        Scalp point to target distance (mm).
    sweep_angles_deg, sweep_e : numpy.ndarray
        The orientation sweep: angles and |E| at the target.
    coil : str
        Coil name.
    orientation : str
        The rule that chose ``angle_deg`` (:data:`ORIENTATION_RULES`).
    """

    target_mm: np.ndarray
    scalp_point_mm: np.ndarray
    coil_origin_mm: np.ndarray
    rotation: np.ndarray
    angle_deg: float
    sphere_centre_mm: np.ndarray
    sphere_radius_mm: float
    e_at_target: float
    e_vector_at_target: np.ndarray
    focality_cm2: float
    target_depth_mm: float
    sweep_angles_deg: np.ndarray
    sweep_e: np.ndarray
    coil: str
    extra: dict[str, Any] = field(default_factory=dict)
    orientation: str = "max_field"

    @property
    def sweep_variation_percent(self) -> float:
        """Range of |E| over the sweep, in % of its mean: how much the orientation matters here."""
        e = np.asarray(self.sweep_e, dtype=np.float64)
        return float(100.0 * (e.max() - e.min()) / e.mean())

    def as_dict(self) -> dict[str, Any]:
        """Scalar results and vectors, JSON-ready (mm, V/m per A/µs)."""
        return {
            "coil": self.coil,
            "target_mm": self.target_mm.tolist(),
            "scalp_point_mm": self.scalp_point_mm.tolist(),
            "coil_origin_mm": self.coil_origin_mm.tolist(),
            "coil_x_axis": self.rotation[:, 0].tolist(),
            "coil_y_axis": self.rotation[:, 1].tolist(),
            "coil_z_axis": self.rotation[:, 2].tolist(),
            "angle_deg": self.angle_deg,
            "orientation_rule": self.orientation,
            "sweep_variation_percent": self.sweep_variation_percent,
            "sphere_centre_mm": self.sphere_centre_mm.tolist(),
            "sphere_radius_mm": self.sphere_radius_mm,
            "e_at_target_v_per_m_per_a_per_us": self.e_at_target,
            "e_direction_at_target": (self.e_vector_at_target / max(self.e_at_target, 1e-300)).tolist(),
            "focality_cm2": self.focality_cm2,
            "target_depth_mm": self.target_depth_mm,
        }


def optimize_placement(
    coil: Coil,
    target_mm: np.ndarray,
    scalp_point_mm: np.ndarray,
    scalp_points_mm: np.ndarray,
    *,
    fit_radius_mm: float = 25.0,
    coil_distance_mm: float = 0.0,
    angle_step_deg: float = DEFAULT_ANGLE_STEP_DEG,
    reference_direction: np.ndarray = (0.0, 1.0, 0.0),
    focality: bool = True,
    backend: str = "auto",
    orientation: str = ORIENTATION_RULES[0],
) -> Placement:
    """Coil placement and orientation over a target on a locally fitted sphere.

    Parameters
    ----------
    coil : Coil
        The coil.
    target_mm : array, shape (3,)
        Target (mm).
    scalp_point_mm : array, shape (3,)
        Scalp point above the target (see :mod:`tmsnet.navigation.scalp`).
    scalp_points_mm : array, shape (n, 3)
        Scalp surface points (mm) used for the local sphere fit.
    fit_radius_mm : float
        Scalp points within this distance of the scalp point enter the fit.
    coil_distance_mm : float
        Gap between scalp and coil bottom (hair, cap), mm.
    angle_step_deg : float
        Orientation sweep step over [0, 360) degrees.
    reference_direction : array, shape (3,)
        Direction of angle 0 (default anterior).
    focality : bool
        Also compute the half-maximum area (costs one field map).
    backend : str
        E-field backend.
    orientation : {"clinical", "max_field"}
        How the angle is chosen (module docstring): the clinical convention (handle
        45° from the midline, back and out; default) or the swept maximum of |E|.

    Returns
    -------
    Placement

    Raises
    ------
    InvalidParameterError
        If too few scalp points lie near the scalp point or the target is not
        inside the fitted sphere.
    """
    target = np.asarray(target_mm, dtype=np.float64).reshape(3)
    scalp_point = np.asarray(scalp_point_mm, dtype=np.float64).reshape(3)
    pts = np.asarray(scalp_points_mm, dtype=np.float64).reshape(-1, 3)
    if not 0 < angle_step_deg <= 180:
        raise InvalidParameterError("angle_step_deg must be in (0, 180].")
    if orientation not in ORIENTATION_RULES:
        raise InvalidParameterError(
            f"orientation must be one of {', '.join(ORIENTATION_RULES)}, got {orientation!r}.")
    near = pts[np.linalg.norm(pts - scalp_point, axis=1) <= fit_radius_mm]
    if len(near) < 10:
        raise InvalidParameterError(
            f"Only {len(near)} scalp points lie within {fit_radius_mm} mm of the scalp point; "
            "give a denser head surface or a larger fit_radius_mm."
        )
    centre, radius = fit_sphere(near)
    outward = scalp_point - centre
    outward /= np.linalg.norm(outward)
    origin = scalp_point + coil_distance_mm * outward
    rel_target = target - centre
    if np.linalg.norm(rel_target) >= np.linalg.norm(origin - centre):
        raise InvalidParameterError(
            "The target lies outside the sphere fitted to the scalp around it; check that target "
            "and head surface are in the same space."
        )
    angles = np.arange(0.0, 360.0, angle_step_deg)
    n_sweep = len(angles)
    if orientation == "clinical":
        # lateral side from the scalp normal's x: frame-local, no assumption on where x = 0 is
        side = outward[0] if abs(outward[0]) > 0.05 else 0.0
        angles = np.append(angles, clinical_angle_deg(-outward, side, reference_direction))
    rots = coil_rotation(-outward, angles, reference_direction)
    trans = np.broadcast_to((origin - centre) * 1e-3, (len(angles), 3))
    e = efield_placements(rel_target[None, :] * 1e-3, coil.positions_m, coil.moments, rots, trans,
                          backend=backend)[:, 0, :]
    norms = np.linalg.norm(e, axis=1)
    best = n_sweep if orientation == "clinical" else int(np.argmax(norms))
    area = float("nan")
    if focality:
        area, _ = focality_area_cm2(coil, rots[best], origin, centre, float(np.linalg.norm(rel_target)),
                                    backend=backend)
    return Placement(
        target_mm=target, scalp_point_mm=scalp_point, coil_origin_mm=origin, rotation=rots[best],
        angle_deg=float(angles[best]), sphere_centre_mm=centre, sphere_radius_mm=radius,
        e_at_target=float(norms[best]), e_vector_at_target=e[best], focality_cm2=area,
        target_depth_mm=float(np.linalg.norm(target - scalp_point)), sweep_angles_deg=angles[:n_sweep],
        sweep_e=norms[:n_sweep], coil=coil.name, orientation=orientation,
    )
