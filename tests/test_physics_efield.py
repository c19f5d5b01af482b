"""Sphere-model E-field kernel: reference loop, closed forms, invariants (REFERENCES.md section 3)."""

from pathlib import Path

import numpy as np
import pytest
from scipy import constants

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.efield import (
    available_backends,
    efield,
    efield_loop,
    efield_placements,
    transform_dipoles,
)

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils"
#: mu0/4pi from CODATA (scipy), not from the module under test. Since the 2019 SI it differs from
#: the module's 1e-7 by 1.3e-10 (relative), hence the 1e-9 tolerance of the closed forms below.
MU0_OVER_4PI = constants.mu_0 / (4.0 * np.pi)
CLOSED_FORM_RTOL = 1e-9


@pytest.fixture(scope="module")
def magstim():
    """The SimNIBS Magstim 70 mm figure-8 from ../shared/data, else the bundled fig8-70mm model."""
    path = SHARED / "Magstim_70mm_Fig8.ccd"
    coil = read_ccd(path) if path.is_file() else load_coil("fig8-70mm")
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, np.diag([1.0, -1.0, -1.0]), [0, 0, 0.085])
    return coil, pos, mom


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(600, 3))
    return p / np.linalg.norm(p, axis=1)[:, None] * rng.uniform(0.005, 0.075, (600, 1))


def _rel(a, b):
    return np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("backend", available_backends())
def test_kernel_matches_per_dipole_loop(magstim, points, backend):
    _, pos, mom = magstim
    ref = efield_loop(points, pos, mom)
    fast = efield(points, pos, mom, backend=backend, block_elements=100_000)
    assert _rel(fast, ref) < 1e-12


def test_field_is_tangential_inside_sphere(magstim, points):
    # A necessary property only (it holds for any coefficient error of the kernel, since every term
    # is a cross product with r); the kernel's values are checked in test_physics_reference.py.
    _, pos, mom = magstim
    e = efield(points, pos, mom)
    cos = np.abs(np.sum(e * points, axis=1)) / (np.linalg.norm(e, axis=1) * np.linalg.norm(points, axis=1))
    assert cos.max() < 1e-12


def test_radial_dipole_closed_form(points):
    # A radial dipole: E = -(mu0/4pi) dI/dt m x (r - r0)/|r - r0|^3 (REFERENCES.md section 3).
    r0 = np.array([[0.01, -0.02, 0.09]])
    m = 3e-4 * r0 / np.linalg.norm(r0)
    d = points - r0
    expected = -MU0_OVER_4PI * 1e6 * 2.5 * np.cross(m, d) / np.linalg.norm(d, axis=1)[:, None] ** 3
    got = efield(points, r0, m, didt_a_per_us=2.5)
    assert _rel(got, expected) < CLOSED_FORM_RTOL
    assert _rel(efield_loop(points, r0, m, didt_a_per_us=2.5), expected) < CLOSED_FORM_RTOL


def test_scales_linearly_with_didt(magstim, points):
    _, pos, mom = magstim
    scaled = efield(points, pos, mom, didt_a_per_us=3.0)
    assert np.allclose(scaled, 3.0 * efield(points, pos, mom), rtol=1e-13)


def test_batched_placements_equal_single_evaluations(magstim, points):
    coil, _, _ = magstim
    rng = np.random.default_rng(1)
    rots, trans = [], []
    for _ in range(3):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        rots.append(q)
        trans.append(-q[:, 2] * 0.09)  # coil z axis points at the centre
    batch = efield_placements(points[:50], coil.positions_m, coil.moments, np.array(rots), np.array(trans))
    for k in range(3):
        pos, mom = transform_dipoles(coil.positions_m, coil.moments, rots[k], trans[k])
        assert _rel(batch[k], efield_loop(points[:50], pos, mom)) < 1e-12


def test_bad_inputs_raise_typed_errors(magstim):
    _, pos, mom = magstim
    with pytest.raises(InvalidParameterError, match="farther from the sphere centre"):
        efield(np.array([[0.0, 0.0, 0.2]]), pos, mom)
    with pytest.raises(InvalidParameterError, match=r"\(n, 3\)"):
        efield(np.zeros((4, 2)), pos, mom)
    with pytest.raises(InvalidParameterError, match="Unknown E-field backend"):
        efield(np.zeros((1, 3)), pos, mom, backend="fortran")
    with pytest.raises(InvalidParameterError, match="same shape"):
        efield(np.zeros((1, 3)), pos, mom[:5])


def _random_placements(n_placements, seed, distance_m=0.09):
    rng = np.random.default_rng(seed)
    rots, trans = [], []
    for _ in range(n_placements):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        rots.append(q)
        trans.append(-q[:, 2] * distance_m)  # coil z axis points at the centre
    return np.array(rots), np.array(trans)


@pytest.fixture(scope="module")
def seven_placements(magstim, points):
    """7 random placements, 150 points and the per-dipole loop's field for each placement."""
    coil, _, _ = magstim
    rots, trans = _random_placements(7, seed=3)
    pts = points[:150]
    refs = []
    for k in range(7):
        pos, mom = transform_dipoles(coil.positions_m, coil.moments, rots[k], trans[k])
        refs.append(efield_loop(pts, pos, mom))
    return rots, trans, pts, np.array(refs)


@pytest.mark.parametrize("backend", available_backends())
def test_batched_placements_match_loop_across_batches_and_blocks(magstim, seven_placements, backend):
    # 7 placements in batches of 3 (numba), 150 points (not a multiple of the 64-point block):
    # every placement and every point equals the per-dipole loop on that placement.
    coil, _, _ = magstim
    rots, trans, pts, refs = seven_placements
    batch = efield_placements(pts, coil.positions_m, coil.moments, rots, trans, backend=backend,
                              placements_per_batch=3)
    assert batch.shape == (7, 150, 3)
    for k in range(7):
        assert _rel(batch[k], refs[k]) < 1e-12
        cos = np.abs(np.sum(batch[k] * pts, axis=1)) / (
            np.linalg.norm(batch[k], axis=1) * np.linalg.norm(pts, axis=1))
        assert cos.max() < 1e-12


@pytest.mark.parametrize("backend", available_backends())
def test_batched_placements_with_one_point_set_per_placement(magstim, points, backend):
    coil, _, _ = magstim
    rots, trans = _random_placements(4, seed=4)
    sets = points[:280].reshape(4, 70, 3)
    batch = efield_placements(sets, coil.positions_m, coil.moments, rots, trans, backend=backend,
                              didt_a_per_us=1.7, placements_per_batch=3)
    for k in range(4):
        pos, mom = transform_dipoles(coil.positions_m, coil.moments, rots[k], trans[k])
        assert _rel(batch[k], efield_loop(sets[k], pos, mom, didt_a_per_us=1.7)) < 1e-12


@pytest.mark.parametrize("backend", available_backends())
def test_placed_radial_dipole_closed_form(points, backend):
    # One dipole at the coil origin with moment along the coil z axis; placements whose z axis is
    # radial make it a radial dipole at t: E = -(mu0/4pi) dI/dt m x (r - t)/|r - t|^3 (REFERENCES.md 3).
    rots, trans = _random_placements(5, seed=5, distance_m=0.095)
    moment = 2e-4
    got = efield_placements(points, np.zeros((1, 3)), np.array([[0.0, 0.0, moment]]), rots, trans,
                            backend=backend, didt_a_per_us=0.8)
    for k in range(5):
        m = moment * rots[k][:, 2]
        d = points - trans[k]
        expected = -MU0_OVER_4PI * 1e6 * 0.8 * np.cross(m, d) / np.linalg.norm(d, axis=1)[:, None] ** 3
        assert _rel(got[k], expected) < CLOSED_FORM_RTOL


def test_batched_placements_bad_inputs_raise_typed_errors(magstim, points):
    coil, _, _ = magstim
    rots, trans = _random_placements(3, seed=6)
    close = trans.copy()
    close[2] *= 0.5  # placement 2: coil 45 mm from the centre, inside the field points
    with pytest.raises(InvalidParameterError, match="placement 2"):
        efield_placements(points, coil.positions_m, coil.moments, rots, close)
    with pytest.raises(InvalidParameterError, match="translations"):
        efield_placements(points, coil.positions_m, coil.moments, rots, trans[:2])
    with pytest.raises(InvalidParameterError, match="point sets"):
        efield_placements(points[:20].reshape(2, 10, 3), coil.positions_m, coil.moments, rots, trans)
    with pytest.raises(InvalidParameterError, match="placements_per_batch"):
        efield_placements(points, coil.positions_m, coil.moments, rots, trans, placements_per_batch=0)
