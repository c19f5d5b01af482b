"""Deng et al. 2013 depth/focality metrics against the published table (REFERENCES.md section 3)."""

from pathlib import Path

import pytest

from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.metrics import DENG_2013_TABLE, deng_metrics, plot_brain_surface_field

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils"


@pytest.fixture(scope="module")
def magstim_metrics():
    path = SHARED / "Magstim_70mm_Fig8.ccd"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    return deng_metrics(read_ccd(path), grid_mm=2.0)


def test_simnibs_magstim_fig8_reproduces_deng(magstim_metrics):
    row = DENG_2013_TABLE["Magstim 70 mm figure-8 (#31)"]
    assert magstim_metrics.d_half_cm == pytest.approx(row["d_half_cm"], rel=0.05)
    assert magstim_metrics.s_half_cm2 == pytest.approx(row["s_half_cm2"], rel=0.10)
    assert magstim_metrics.v_half_cm3 == pytest.approx(magstim_metrics.s_half_cm2 * magstim_metrics.d_half_cm)


@pytest.mark.parametrize(("name", "row"), [
    ("fig8-70mm", "Magstim 70 mm figure-8 (#31)"),
    ("round-70mm", "Magstim 70 mm circular (#4)"),
])
def test_bundled_generated_coils_match_deng_rows(name, row):
    m = deng_metrics(load_coil(name), grid_mm=2.0)
    assert m.d_half_cm == pytest.approx(DENG_2013_TABLE[row]["d_half_cm"], rel=0.10)
    assert m.s_half_cm2 == pytest.approx(DENG_2013_TABLE[row]["s_half_cm2"], rel=0.15)


def test_grid_refinement_changes_little_and_figure(magstim_metrics):
    coil = load_coil("fig8-70mm")
    coarse = deng_metrics(coil, grid_mm=3.0)
    fine = deng_metrics(coil, grid_mm=1.5)
    assert coarse.s_half_cm2 == pytest.approx(fine.s_half_cm2, rel=0.01)
    assert coarse.d_half_cm == pytest.approx(fine.d_half_cm, rel=0.01)
    fig = plot_brain_surface_field(magstim_metrics)
    assert "d½ = 1.41" in fig.axes[0].get_title()
