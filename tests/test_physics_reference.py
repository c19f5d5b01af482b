"""Sphere-model kernel against independent physics: a surface-charge BEM and closed-form loops.

The truth here does not use the Heller & van Hulsteyn formula (REFERENCES.md section 3):
``tests/reference_sphere_bem.py`` solves the conducting-sphere problem E = -dA/dt - grad(phi)
numerically (surface charge on an icosphere) and evaluates -dA/dt of circular loops in closed
form, with mu0 from scipy.constants. ``E . r = 0`` (test_physics_efield) holds for any
coefficient error of the kernel; these tests do not.
"""

import numpy as np
import pytest

from reference_sphere_bem import (
    SphereBEM,
    dipole_primary_field,
    loop_efield,
    sphere_bem_efield,
)
from tmsnet.physics.coils import Winding, bundled_coil_parameters, load_coil, round_coil
from tmsnet.physics.efield import efield, transform_dipoles

HEAD_RADIUS_M = 0.085  # Deng et al. 2013 sphere (REFERENCES.md section 3)
#: Coil frame (+z into the head) -> head frame: coil on top of the sphere, z axis towards the centre.
TOP = np.diag([1.0, -1.0, -1.0])


def _points_below(n, depth_m, half_angle_rad, seed, radius_m=HEAD_RADIUS_M):
    """``n`` points ``depth_m`` (lo, hi) under the sphere surface within a cone about +z."""
    rng = np.random.default_rng(seed)
    rad = radius_m - rng.uniform(*depth_m, n)
    theta = np.arccos(rng.uniform(np.cos(half_angle_rad), 1.0, n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    return rad[:, None] * np.column_stack(
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])


def _max_rel(a, b):
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


@pytest.fixture(scope="module")
def bem():
    # 5120 triangles (edge ~5 mm on the 8 cm sphere); ~6-9 s to assemble and factorise.
    return SphereBEM(0.08, level=4)


def test_non_radial_dipoles_match_surface_charge_bem(bem):
    # Tangential and oblique dipoles 7-10 mm outside an 8 cm conducting sphere; 60 points 1-3 cm
    # under them. Without the charge term the field is off by 510 % (checked below), so the BEM
    # charge is what the kernel is compared with. BEM error against the kernel (max over points):
    # level 3 (1280 triangles) 10.2 %, level 4 (5120) 0.66 %: it converges ~15x per mesh halving, so
    # the kernel is right to the BEM's accuracy. Tolerance 1.5 % (2.3x the level-4 error). Breaks
    # (by hand, see notes/T4.md): a coefficient of grad F scaled by 1.05-1.1 -> 5-13 % (fails).
    r0 = np.array([[0.0, 0.0, 0.09], [0.02, 0.0, 0.088], [-0.02, 0.01, 0.087]])
    m = np.array([[1e-3, 0.0, 0.0], [0.0, 8e-4, 2e-4], [5e-4, 5e-4, -3e-4]])
    pts = _points_below(60, (0.01, 0.03), 0.25, seed=0, radius_m=0.08)
    truth = sphere_bem_efield(pts, r0, m, bem, didt=2.0)
    got = efield(pts, r0, m, didt_a_per_us=2.0)
    assert _max_rel(got, truth) < 0.015
    # the charge matters: the primary field alone is far from the truth (baseline)
    assert _max_rel(dipole_primary_field(pts, r0, m, didt=2.0), truth) > 1.0


def test_tilted_bundled_fig8_matches_surface_charge_bem(bem):
    # A realistic non-radial source: the bundled 70 mm figure-8 tilted 25 deg on the sphere
    # (every dipole off-axis and oblique). Error seen: level 3 0.19 %, level 4 0.02 %; tolerance 0.3 %.
    coil = load_coil("fig8-70mm")
    tilt = np.radians(25.0)
    rot = np.array([[np.cos(tilt), 0.0, np.sin(tilt)], [0.0, 1.0, 0.0], [-np.sin(tilt), 0.0, np.cos(tilt)]])
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, rot @ TOP, rot @ [0.0, 0.0, 0.0805])
    axis = rot @ [0.0, 0.0, 1.0]
    pts = _points_below(40, (0.01, 0.03), 0.2, seed=1, radius_m=0.08) @ rot.T
    pts = pts[np.einsum("ij,j->i", pts, axis) > 0]
    truth = sphere_bem_efield(pts, pos, mom, bem)
    assert _max_rel(efield(pts, pos, mom), truth) < 0.003


def _fig8_loops(params, rot, translation):
    """Circular turns (centre, axis, radius) of a figure-8 from its winding geometry, head frame."""
    radii = np.linspace(params["inner_radius_mm"], params["outer_radius_mm"], params["turns_per_layer"])
    loops = []
    for side in (1.0, -1.0):  # wing at +x: current counter-clockwise about +z (coil frame)
        for layer in range(params["n_layers"]):
            z = -(params["bottom_distance_mm"] + layer * params["layer_spacing_mm"]) * 1e-3
            centre = rot @ [side * params["wing_separation_mm"] / 2e3, 0.0, z] + translation
            loops += [(centre, rot @ [0.0, 0.0, side], r * 1e-3) for r in radii]
    return loops


def test_single_round_loop_absolute_field():
    # One circular turn of radius 35 mm, coaxial with the sphere: no surface charge by symmetry,
    # so E = -dA/dt of the loop, in closed form (elliptic integrals, scipy mu0). This pins the
    # absolute scale (mu0, A/µs -> A/s, the dipole-sheet moments) of round_coil + efield.
    # Seen: 0.011 % (dipole discretisation, 1 mm elements); tolerance 0.2 %. mu0 x1.01 -> 1 % (fails).
    coil = round_coil(Winding(inner_radius_mm=35.0, outer_radius_mm=35.0, turns_per_layer=1,
                              element_mm=1.0, bottom_distance_mm=5.0))
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, TOP, [0.0, 0.0, HEAD_RADIUS_M])
    pts = _points_below(50, (0.01, 0.03), 0.4, seed=2)
    truth = loop_efield(pts, 0.035, [0.0, 0.0, HEAD_RADIUS_M + 0.005], [0.0, 0.0, -1.0], didt=1.5)
    assert _max_rel(efield(pts, pos, mom, didt_a_per_us=1.5), truth) < 0.002


def test_bundled_fig8_absolute_field_against_loops_and_bem(bem):
    # Absolute field of the bundled Magstim-70mm-like figure-8 (9 turns per wing, diameters
    # 56-87 mm, 3 layers; tmsnet/data/coils/fig8-70mm.json) touching the 8 cm sphere: the truth is
    # the closed-form field of its 18 circular turns plus the BEM surface charge of that field.
    # |E| 1.5 cm under the coil centre: 1.47 V/m per A/µs here (in notes/T4.md, not asserted as a
    # number: no published value with a pinned normalisation, REFERENCES.md section 3).
    # Seen: 0.13 % off (level 4; 0.17 % at level 3: mostly the 4 mm dipole elements); tolerance 0.5 %.
    params = bundled_coil_parameters()["fig8-70mm"]
    coil = load_coil("fig8-70mm")
    trans = np.array([0.0, 0.0, 0.08])
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, TOP, trans)
    loops = _fig8_loops(params, TOP, trans)
    pts = _points_below(40, (0.01, 0.03), 0.2, seed=3, radius_m=0.08)

    def primary(x):
        return sum(loop_efield(x, r, c, a) for c, a, r in loops)

    truth = primary(pts) + bem.charge_field(pts, bem.charge(primary(bem.centres)))
    assert _max_rel(efield(pts, pos, mom), truth) < 0.005
