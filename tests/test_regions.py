"""Seed ROI and DLPFC search region against geometry and the published coordinates."""

import nibabel as nib
import numpy as np
import pytest

from tmsnet.data import load_brain_mask, reference_coordinate, reference_coordinates
from tmsnet.exceptions import EmptyRegionError, GridMismatchError, InvalidParameterError
from tmsnet.targeting.regions import (
    SearchRegion,
    SeedRegion,
    dlpfc_search_mask,
    gray_matter_mask_on_grid,
    seed_mask,
    sphere_mask,
    voxel_coordinates_mm,
)


@pytest.fixture(scope="module")
def mni():
    img = load_brain_mask(2)
    return img, np.asarray(img.dataobj) > 0


def test_published_coordinates_are_bundled():
    table = reference_coordinates()
    np.testing.assert_array_equal(reference_coordinate("sgacc_right"), [6, 16, -10])
    np.testing.assert_array_equal(reference_coordinate("fox_2012_optimal"), [-38, 44, 26])
    assert set(table["role"]) >= {"seed", "dlpfc_standard", "group_optimal"}
    with pytest.raises(InvalidParameterError):
        reference_coordinate("nowhere")


def test_sphere_volume_matches_closed_form():
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = -30
    mask = sphere_mask([(0, 0, 0)], 20.0, shape=(61, 61, 61), affine=affine)
    assert mask.sum() == pytest.approx(4 / 3 * np.pi * 20**3, rel=0.01)
    coords = voxel_coordinates_mm((61, 61, 61), affine)
    assert np.all(np.linalg.norm(coords[mask], axis=1) <= 20.0)


def _spheres_by_brute_force(centers, radius, shape, affine):
    """Every voxel of the grid against every centre (what sphere_mask computes in boxes)."""
    ijk = np.moveaxis(np.indices(shape, dtype=float), 0, -1)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return np.any([np.sum((xyz - c) ** 2, axis=-1) <= radius**2 for c in centers], axis=0)


@pytest.mark.parametrize("oblique", [False, True], ids=["MNI 2 mm", "oblique 2.4 mm"])
def test_sphere_mask_computed_in_boxes_equals_the_whole_grid(mni, oblique):
    img, _ = mni
    affine = img.affine.copy()
    if oblique:  # rotated 20 degrees about z and 2.4 mm voxels: the box must still hold each sphere
        c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
        affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ np.diag([2.4, 2.4, 2.4])
    centers = [*PUBLISHED_DLPFC_CENTRES_MM, (6.3, 16.1, -10.7), (-95.0, 0.0, 0.0), (500.0, 0.0, 0.0)]
    for radius in (10.0, 20.0):
        mask = sphere_mask(centers, radius, shape=img.shape, affine=affine)
        np.testing.assert_array_equal(mask, _spheres_by_brute_force(centers, radius, img.shape, affine))
        assert mask.sum() > 0


def test_default_seed_is_10mm_sphere_at_fox_sgacc(mni):
    img, brain = mni
    mask, info = seed_mask(img, brain)
    centre = voxel_coordinates_mm(img.shape, img.affine)[mask].mean(axis=0)
    assert np.linalg.norm(centre - [6, 16, -10]) < 3.0
    assert info["radius_mm"] == 10.0 and info["n_voxels"] == mask.sum()
    # At 2 mm, a full 10 mm sphere has ~524 voxels; the brain mask may trim it.
    assert 300 < mask.sum() <= 530
    bilateral, _ = seed_mask(img, brain, SeedRegion(seed_region="sgacc-bilateral"))
    assert bilateral.sum() > mask.sum()


# The four standard left-DLPFC targets, MNI152 mm, written from REFERENCES.md section 1 (Fox et al.
# 2012, Biol Psychiatry 72:595, Table 1): 5-cm rule, BA9, BA46, F3 (Beam); 20 mm spheres (contarg).
PUBLISHED_DLPFC_CENTRES_MM = np.array([[-41, 16, 54], [-36, 39, 43], [-44, 40, 29], [-37, 26, 49]], float)


def test_search_region_is_gray_matter_near_the_standard_targets(mni):
    img, brain = mni
    mask, info = dlpfc_search_mask(img, brain)
    gm = gray_matter_mask_on_grid(img)
    assert not (mask & ~gm).any()
    # voxel centres from the affine, computed here
    ijk = np.indices(img.shape).reshape(3, -1).T
    xyz = (ijk @ img.affine[:3, :3].T + img.affine[:3, 3]).reshape(*img.shape, 3)
    dist = np.linalg.norm(xyz[..., None, :] - PUBLISHED_DLPFC_CENTRES_MM, axis=-1)
    spheres = (dist <= 20.0).any(axis=-1)
    np.testing.assert_array_equal(mask, spheres & brain & gm)  # exactly the published spheres
    assert (xyz[mask][:, 0] < 0).all()  # left hemisphere only
    # every published centre is used: each sphere holds voxels no other sphere reaches
    for k in range(4):
        only_k = (dist[..., k] <= 20.0) & (np.delete(dist, k, axis=-1) > 20.0).all(axis=-1)
        assert (mask & only_k).sum() > 50, k
    whole, _ = dlpfc_search_mask(img, brain, SearchRegion(gray_matter_only=False))
    np.testing.assert_array_equal(whole, spheres & brain)
    assert whole.sum() > mask.sum()


def test_user_roi_must_be_on_the_grid(mni, tmp_path):
    img, brain = mni
    wrong = tmp_path / "roi.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), img.affine), wrong)
    with pytest.raises(GridMismatchError, match="resample"):
        seed_mask(img, brain, SeedRegion(seed_roi=wrong))
    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.uint8), img.affine), empty)
    with pytest.raises(EmptyRegionError):
        dlpfc_search_mask(img, brain, SearchRegion(search_roi=empty))
    with pytest.raises(EmptyRegionError):
        seed_mask(img, brain, SeedRegion(seed_coordinates_mm=[(0, 0, 300)]))


def test_region_parameters_are_validated_once_at_construction():
    with pytest.raises(InvalidParameterError, match="seed-region"):
        SeedRegion(seed_region="amygdala")
    with pytest.raises(InvalidParameterError, match="seed-radius"):
        SeedRegion(seed_radius_mm=0)
    with pytest.raises(InvalidParameterError, match="triples"):
        SeedRegion(seed_coordinates_mm=[(1, 2)])
    with pytest.raises(InvalidParameterError, match="search-radius"):
        SearchRegion(search_radius_mm=-1)
    assert SeedRegion(seed_coordinates_mm=[[1, 2, 3]]).seed_coordinates_mm == ((1.0, 2.0, 3.0),)
