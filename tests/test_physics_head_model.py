"""Head models (issue 17): phantoms with known geometry, the fMRIPrep rule, refusals, written labels.

The fMRIPrep path is checked on phantoms written as the anatomical derivatives
fMRIPrep makes (``desc-preproc_T1w``, ``desc-brain_mask``,
``label-GM/WM/CSF_probseg``): the rule must give the phantom's labels back.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from tmsnet.exceptions import (
    GridMismatchError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
)
from tmsnet.physics.head_model import (
    SPHERE_RADII_MM,
    TISSUE_LABELS,
    Conductivities,
    HeadModelParameters,
    check_head_labels,
    ellipsoid_phantom,
    head_model_from_fmriprep,
    sphere_phantom,
    write_head_model,
)

#: T1w-like intensity per label (background, scalp, skull, CSF, GM, WM): skull and CSF dark.
T1W_INTENSITY = np.array([0.0, 700.0, 60.0, 150.0, 500.0, 800.0], dtype=np.float32)
ROLES = ("t1w", "brain_mask", "gm_probseg", "wm_probseg", "csf_probseg")


def write_fmriprep_like(head, folder, *, crop=None):
    """Write a phantom as fMRIPrep anatomical derivatives (T1w space); return their paths by role.

    The brain mask holds GM, WM and the CSF enclosed by the brain (a sulcus), as fMRIPrep's does;
    the probsegs are the phantom's tissues; ``crop`` (slices) cuts the field of view.
    """
    lab = head.labels
    ball = ndimage.generate_binary_structure(3, 1)
    brain = np.pad(lab >= TISSUE_LABELS["gm"], 3)
    closed = ndimage.binary_closing(brain, ball, iterations=2)[3:-3, 3:-3, 3:-3]
    mask = closed & (lab >= TISSUE_LABELS["csf"])  # GM, WM and the CSF of the sulcus
    volumes = {"t1w": T1W_INTENSITY[lab], "brain_mask": mask.astype(np.uint8),
               "gm_probseg": (lab == 4).astype(np.float32), "wm_probseg": (lab == 5).astype(np.float32),
               "csf_probseg": ((lab == 3) & mask).astype(np.float32)}
    names = {"t1w": "desc-preproc_T1w", "brain_mask": "desc-brain_mask", "gm_probseg": "label-GM_probseg",
             "wm_probseg": "label-WM_probseg", "csf_probseg": "label-CSF_probseg"}
    affine = head.affine.copy()
    if crop is not None:
        affine[:3, 3] = affine[:3, :3] @ [s.start or 0 for s in crop] + affine[:3, 3]
    paths = {}
    for role in ROLES:
        data = volumes[role] if crop is None else volumes[role][crop]
        paths[role] = folder / f"sub-01_{names[role]}.nii.gz"
        nib.save(nib.Nifti1Image(data, affine), paths[role])
    return paths


def test_conductivities_are_the_simnibs_defaults_and_positive():
    sigma = Conductivities()
    assert (sigma.scalp, sigma.skull, sigma.csf, sigma.gm, sigma.wm) == (0.465, 0.010, 1.654, 0.275, 0.126)
    table = sigma.by_label()
    assert table[0] == 0.0
    assert [table[v] for v in TISSUE_LABELS.values()] == [0.465, 0.010, 1.654, 0.275, 0.126]
    for bad in (0.0, -0.1):
        with pytest.raises(InvalidParameterError, match="--sigma-skull"):
            Conductivities(skull=bad)


def test_sphere_phantom_shells_hold_their_analytic_volumes():
    head = sphere_phantom(2.0, centre_mm=(10.0, -20.0, 30.0))
    volumes = head.tissue_volumes_ml()
    radii = [SPHERE_RADII_MM[t] for t in TISSUE_LABELS] + [0.0]
    for (tissue, outer), inner in zip(SPHERE_RADII_MM.items(), radii[1:], strict=True):
        exact_ml = 4.0 / 3.0 * np.pi * (outer**3 - inner**3) / 1000.0
        assert volumes[tissue] == pytest.approx(exact_ml, rel=0.03), tissue
    # The centre voxel is at the requested world position and is white matter; 84 mm above it is scalp.
    centre = np.linalg.solve(head.affine, [10.0, -20.0, 30.0, 1.0])[:3]
    i, j, k = np.round(centre).astype(int)
    assert np.allclose(centre, [i, j, k]) and head.labels[i, j, k] == TISSUE_LABELS["wm"]
    assert head.labels[i, j, k + 42] == TISSUE_LABELS["scalp"] and head.labels[i, j, k + 44] == 0
    with pytest.raises(InvalidParameterError, match="shrinking"):
        sphere_phantom(4.0, radii_mm={**SPHERE_RADII_MM, "csf": 80.0})


def test_ellipsoid_phantom_has_a_grey_matter_lined_fold():
    h = 1.0
    head = ellipsoid_phantom(h)
    lab = head.labels
    centre = np.linalg.solve(head.affine, [0.0, 0.0, 0.0, 1.0])[:3].round().astype(int)
    brain_top_mm = 85.0 - 15.0
    k = centre[2] + int(round((brain_top_mm - 10.0) / h))  # 10 mm below the top of the brain, in the fold
    i, j = centre[0], centre[1]
    assert lab[i, j, k] == TISSUE_LABELS["csf"]  # the sulcus
    assert lab[i, j + 3, k] == TISSUE_LABELS["gm"] and lab[i, j - 3, k] == TISSUE_LABELS["gm"]  # its walls
    assert lab[i, j + 8, k] == TISSUE_LABELS["wm"]  # beyond 3 mm of grey matter
    assert lab[i + 30, j, k] != TISSUE_LABELS["csf"]  # the fold is 40 mm long: not at x = 30 mm
    assert lab[centre[0] + 60, j, centre[2]] == TISSUE_LABELS["gm"]  # lateral brain surface (60 mm)


@pytest.mark.parametrize("make", [lambda: sphere_phantom(2.0), lambda: ellipsoid_phantom(2.0)],
                         ids=["sphere", "ellipsoid"])
def test_fmriprep_derivatives_give_the_phantom_back(tmp_path, make):
    head = make()
    built = head_model_from_fmriprep(*write_fmriprep_like(head, tmp_path).values())
    assert np.allclose(built.affine, head.affine)
    brain = head.labels >= TISSUE_LABELS["gm"]
    assert np.array_equal(built.labels[brain], head.labels[brain])  # GM and WM from the probsegs
    assert np.array_equal(built.labels > 0, head.labels > 0)  # the head from the T1w
    agree = np.mean(built.labels[head.labels > 0] == head.labels[head.labels > 0])
    assert agree >= 0.97, agree  # CSF and skull as layers of the phantom's thickness (measured 98.5 %)
    for tissue in ("csf", "skull"):
        assert built.tissue_volumes_ml()[tissue] == pytest.approx(head.tissue_volumes_ml()[tissue], rel=0.1)
    assert built.inputs["t1w"].name == "sub-01_desc-preproc_T1w.nii.gz"


def test_images_on_different_grids_are_refused(tmp_path):
    paths = write_fmriprep_like(sphere_phantom(4.0), tmp_path)
    gm = nib.load(paths["gm_probseg"])
    shifted = gm.affine.copy()
    shifted[0, 3] += 2.0
    nib.save(nib.Nifti1Image(np.asarray(gm.dataobj), shifted), paths["gm_probseg"])
    with pytest.raises(GridMismatchError, match="gm_probseg image"):
        head_model_from_fmriprep(*paths.values())
    nib.save(nib.Nifti1Image(np.asarray(gm.dataobj)[1:], gm.affine), paths["gm_probseg"])
    with pytest.raises(GridMismatchError, match="not on the grid of the t1w image"):
        head_model_from_fmriprep(*paths.values())


def test_empty_tissues_are_refused(tmp_path):
    paths = write_fmriprep_like(sphere_phantom(4.0), tmp_path)
    wm = nib.load(paths["wm_probseg"])
    nib.save(nib.Nifti1Image(np.zeros(wm.shape, np.float32), wm.affine), paths["wm_probseg"])
    with pytest.raises(InvalidImageError, match="no wm voxel"):
        head_model_from_fmriprep(*paths.values())
    nib.save(nib.Nifti1Image(np.zeros(wm.shape, np.uint8), wm.affine), paths["brain_mask"])
    with pytest.raises(InvalidImageError, match="brain mask is empty"):
        head_model_from_fmriprep(*paths.values())


def test_a_head_cut_off_by_the_field_of_view_is_refused(tmp_path):
    head = sphere_phantom(2.0)
    n = head.labels.shape[2]
    centre = (n - 1) // 2
    cases = {
        "vertex": (slice(None), slice(None), slice(0, centre + 42)),  # z <= 82 mm: scalp cut at the top
        "neck": (slice(None), slice(None), slice(centre - 41, n)),  # z >= -82 mm: only scalp below
        "skull": (slice(None), slice(None), slice(centre - 37, n)),  # z >= -74 mm: through the skull
    }
    folders = {name: tmp_path / name for name in cases}
    paths = {}
    for name, crop in cases.items():
        folders[name].mkdir()
        paths[name] = list(write_fmriprep_like(head, folders[name], crop=crop).values())
    with pytest.raises(InvalidImageError, match="The head touches the edge of the image"):
        head_model_from_fmriprep(*paths["vertex"])
    assert head_model_from_fmriprep(*paths["neck"]).labels.shape[2] == n - (centre - 41)
    with pytest.raises(InvalidImageError, match="last slice of array axis 2|first slice of array axis 2"):
        head_model_from_fmriprep(*paths["neck"], parameters=HeadModelParameters(allow_neck_cut=False))
    with pytest.raises(InvalidImageError, match="skull or brain touches the edge"):
        head_model_from_fmriprep(*paths["skull"])


def test_missing_files_bad_volumes_and_bad_labels_are_refused(tmp_path):
    paths = write_fmriprep_like(sphere_phantom(4.0), tmp_path)
    with pytest.raises(InputFileNotFoundError, match="csf_probseg image"):
        head_model_from_fmriprep(*list(paths.values())[:4], tmp_path / "nope.nii.gz")
    t1 = nib.load(paths["t1w"])
    nib.save(nib.Nifti1Image(np.stack([np.asarray(t1.dataobj)] * 2, axis=-1), t1.affine), paths["t1w"])
    with pytest.raises(InvalidImageError, match="t1w image must be 3-D"):
        head_model_from_fmriprep(*paths.values())
    labels = sphere_phantom(4.0).labels
    with pytest.raises(InvalidImageError, match="lie in 0-5"):
        check_head_labels(np.where(labels == 5, 7, labels), np.eye(4))
    with pytest.raises(InvalidImageError, match="integer volume"):
        check_head_labels(labels.astype(float), np.eye(4))


def test_written_labels_round_trip_with_provenance_and_are_reproducible(tmp_path):
    head = head_model_from_fmriprep(*write_fmriprep_like(sphere_phantom(4.0), tmp_path).values())
    out = write_head_model(head, tmp_path / "out" / "sub-01_desc-head_dseg.nii.gz",
                           conductivities=Conductivities(skull=0.02))
    img = nib.load(out)
    assert img.get_data_dtype() == np.uint8
    assert np.array_equal(np.asarray(img.dataobj), head.labels) and np.allclose(img.affine, head.affine)
    sidecar = json.loads(out.with_name("sub-01_desc-head_dseg.json").read_text())
    assert sidecar["Labels"]["2"] == "skull" and sidecar["Labels"]["0"] == "background"
    assert sidecar["Conductivities_S_per_m"]["2"] == 0.02 and sidecar["Space"] == "T1w"
    assert len(sidecar["Sources"]["t1w"]["sha256"]) == 64
    assert sidecar["Parameters"]["skull_thickness_mm"] == 6.0
    assert sidecar["TissueVolumes_mL"]["wm"] == pytest.approx(head.tissue_volumes_ml()["wm"])
    first = out.read_bytes(), out.with_suffix("").with_suffix(".json").read_bytes()
    again = write_head_model(head, out, conductivities=Conductivities(skull=0.02))
    assert (again.read_bytes(), again.with_suffix("").with_suffix(".json").read_bytes()) == first
