"""Coil models: .ccd reading, generation from winding geometry, bundled files."""

from pathlib import Path

import numpy as np
import pytest

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.physics.coils import (
    Winding,
    bundled_coil_names,
    bundled_coil_parameters,
    coil_from_parameters,
    figure8_coil,
    load_coil,
    read_ccd,
    round_coil,
    write_ccd,
)

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils"
WING = Winding(inner_radius_mm=10, outer_radius_mm=40, turns_per_layer=4)


def test_read_ccd_of_simnibs_file():
    path = SHARED / "Magstim_70mm_Fig8.ccd"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    coil = read_ccd(path)
    assert coil.n_dipoles == 2712
    assert np.all(coil.positions_m[:, 2] < 0)  # windings outside the head (+z points in)
    assert coil.moments[:, 2].sum() == pytest.approx(0.0, abs=1e-12)  # the two wings cancel


def test_round_coil_total_moment_is_sum_of_turn_areas():
    coil = round_coil(Winding(inner_radius_mm=20, outer_radius_mm=40, turns_per_layer=5, n_layers=2,
                              element_mm=3))
    radii = np.linspace(20, 40, 5) * 1e-3
    assert coil.moments[:, 2].sum() == pytest.approx(2 * np.pi * np.sum(radii**2), rel=1e-12)
    assert np.allclose(coil.moments[:, :2], 0)
    # moment-weighted centre on the axis, layers at the requested depths
    assert np.allclose(coil.moments[:, 2] @ coil.positions_m[:, :2], 0, atol=1e-12)
    assert set(np.round(coil.positions_m[:, 2] * 1e3, 6)) == {-4.0, -6.0}


def test_figure8_wings_are_opposite_and_tilted():
    flat = figure8_coil(WING, wing_separation_mm=84)
    right = flat.positions_m[:, 0] > 0
    assert flat.moments[right, 2].sum() == pytest.approx(-flat.moments[~right, 2].sum(), rel=1e-12)
    assert np.average(flat.positions_m[right, 0], weights=flat.moments[right, 2]) == pytest.approx(0.042)
    tilted = figure8_coil(WING, wing_angle_deg=20)
    m = tilted.moments[tilted.positions_m[:, 0] > 0].sum(axis=0)
    assert np.degrees(np.arctan2(-m[0], m[2])) == pytest.approx(20.0)  # moment turned by the wing angle
    outer = tilted.positions_m[np.argmax(tilted.positions_m[:, 0])]
    assert outer[2] > -0.004  # outer end raised towards the head


def test_bundled_files_equal_regenerated_models():
    for name in bundled_coil_names():
        bundled = load_coil(name)
        fresh = coil_from_parameters(name, bundled_coil_parameters()[name])
        assert bundled.n_dipoles == fresh.n_dipoles
        assert np.allclose(bundled.positions_m, fresh.positions_m, rtol=1e-6, atol=1e-12)
        assert np.allclose(bundled.moments, fresh.moments, rtol=1e-6, atol=1e-15)
        assert "source" in bundled.parameters


def test_ccd_round_trip(tmp_path):
    coil = round_coil(Winding(inner_radius_mm=5, outer_radius_mm=15, turns_per_layer=3),
                      didt_max_a_per_us=120)
    back = read_ccd(write_ccd(coil, tmp_path / "c.ccd"))
    assert back.didt_max_a_per_us == 120
    assert np.allclose(back.positions_m, coil.positions_m, rtol=1e-6)


def test_coil_errors(tmp_path):
    with pytest.raises(InputFileNotFoundError, match="bundled coil"):
        load_coil("no-such-coil")
    bad = tmp_path / "bad.ccd"
    bad.write_text("# x\nnot a number\n")
    with pytest.raises(InvalidParameterError, match="not a SimNIBS .ccd"):
        read_ccd(bad)
    with pytest.raises(InvalidParameterError, match="inner"):
        Winding(inner_radius_mm=30, outer_radius_mm=20, turns_per_layer=2)
