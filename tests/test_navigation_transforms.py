"""MNI <-> T1w points through ITK h5 transforms with a known answer (direction: see transforms.py)."""

import numpy as np
import pytest

from tmsnet.exceptions import InputFileNotFoundError, SpaceError
from tmsnet.navigation.transforms import (
    load_transform,
    mni_to_t1w,
    t1w_to_mni,
    transform_direction,
    write_itk_composite_h5,
)

ANG = np.radians(8.0)
AFFINE = np.array([
    [1.04 * np.cos(ANG), -1.04 * np.sin(ANG), 0.0, 3.0],
    [1.04 * np.sin(ANG), 1.04 * np.cos(ANG), 0.02, -5.0],
    [0.0, -0.03, 0.97, 8.0],
    [0.0, 0.0, 0.0, 1.0],
])
SPACING = 4.0
ORIGIN = np.array([-100.0, -124.0, -84.0])
SHAPE = (51, 59, 48)
POINTS_T1W = np.array([[-38.0, 44.0, 26.0], [10.0, -20.0, 50.0], [0.0, 0.0, 0.0], [55.0, 30.0, -20.0]])


def displacement(p):
    """Smooth known warp (mm), applied to T1w points before the affine."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.stack([3 * np.sin(y / 40), 2 * np.cos(x / 50), 1.5 * np.sin(z / 30)], -1)


def truth_t1w_to_mni(p):
    return (p + displacement(p)) @ AFFINE[:3, :3].T + AFFINE[:3, 3]


@pytest.fixture(scope="module")
def xfms(tmp_path_factory):
    root = tmp_path_factory.mktemp("xfm")
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"), -1) * SPACING + ORIGIN
    field_affine = np.diag([SPACING, SPACING, SPACING, 1.0])
    field_affine[:3, 3] = ORIGIN
    warp = write_itk_composite_h5(root / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
                                  AFFINE, displacement(grid), field_affine)
    affine_only = write_itk_composite_h5(root / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5"
                                         .replace("sub-01", "sub-02"), AFFINE)
    reverse = write_itk_composite_h5(root / "sub-03_from-T1w_to-MNI152NLin2009cAsym_mode-image_xfm.h5",
                                     np.linalg.inv(AFFINE))
    return {"warp": warp, "affine": affine_only, "reverse": reverse, "root": root}


def test_itk_h5_file_is_read_as_written(xfms):
    # nitransforms applies the written composite as y = A (x + d(x)) to points: the image direction
    mapped = np.asarray(load_transform(xfms["warp"]).map(POINTS_T1W))
    assert np.abs(mapped - truth_t1w_to_mni(POINTS_T1W)).max() < 1e-3


def test_affine_only_both_directions(xfms):
    mni = POINTS_T1W @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    assert np.allclose(t1w_to_mni(POINTS_T1W, xfms["affine"]), mni, atol=1e-4)
    assert np.allclose(mni_to_t1w(mni, xfms["affine"]), POINTS_T1W, atol=1e-3)


def test_nonlinear_warp_round_trip(xfms):
    mni = truth_t1w_to_mni(POINTS_T1W)
    # from-MNI_to-T1w maps images MNI -> T1w, so it maps *points* T1w -> MNI; MNI -> T1w inverts it
    native = mni_to_t1w(mni, xfms["warp"])
    assert np.abs(native - POINTS_T1W).max() < 2e-3
    assert np.abs(t1w_to_mni(native, xfms["warp"]) - mni).max() < 2e-3
    single = mni_to_t1w(mni[0], xfms["warp"])
    assert single.shape == (3,)


def test_reverse_file_is_applied_directly(xfms):
    # from-T1w_to-MNI maps MNI points to T1w points: with inv(A) stored, MNI p -> inv(A) p
    mni = POINTS_T1W @ AFFINE[:3, :3].T + AFFINE[:3, 3]
    assert np.allclose(mni_to_t1w(mni, xfms["reverse"]), POINTS_T1W, atol=1e-4)
    assert np.allclose(t1w_to_mni(POINTS_T1W, xfms["reverse"]), mni, atol=1e-3)


def test_direction_from_name_and_errors(xfms, tmp_path):
    assert transform_direction(xfms["warp"]) == ("MNI152NLin2009cAsym", "T1w")
    unnamed = write_itk_composite_h5(tmp_path / "xfm.h5", AFFINE)
    with pytest.raises(SpaceError, match="from-X_to-Y"):
        mni_to_t1w(POINTS_T1W, unnamed)
    spaces = {"xfm_from": "MNI152NLin2009cAsym", "xfm_to": "T1w"}
    mni = t1w_to_mni(POINTS_T1W, unnamed, **spaces)
    assert np.allclose(mni_to_t1w(mni, unnamed, **spaces), POINTS_T1W, atol=1e-3)
    with pytest.raises(InputFileNotFoundError):
        mni_to_t1w(POINTS_T1W, tmp_path / "missing_from-MNI152NLin2009cAsym_to-T1w_xfm.h5")
