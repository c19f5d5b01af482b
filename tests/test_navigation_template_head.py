"""The template head for MNI-only users (issue 17 item 1) and the realistic plan on it.

Truths the code could fail: the head's outer boundary must reproduce the scalp surface
it is voxelised from (MNE's fsaverage head mapped to MNI152, read here on its own), the
brain must be nilearn's brain mask voxel for voxel, the scalp-to-cortex depth at a
published DLPFC target must lie in the published range (REFERENCES.md section 3: 10-22 mm
under the scalp, as tests/test_plan_plausibility.py), and the optimised placement must give
at least the field of the clinical placement at the scalp projection.
"""

from __future__ import annotations

import contextlib
import io
import json
from importlib.resources import files

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError
from tmsnet.navigation.template_head import template_head_model
from tmsnet.physics.head_model import TISSUE_LABELS

FOX_2012_OPTIMUM = (-38.0, 44.0, 26.0)  # REFERENCES.md section 1
#: FreeSurfer's MNI305 -> MNI152 affine (the FreeSurfer wiki, "CoordinateSystems"), typed here.
MNI305_TO_MNI152 = np.array([[0.9975, -0.0073, 0.0176, -0.0429],
                             [0.0146, 1.0009, -0.0024, 1.5496],
                             [-0.0130, -0.0093, 0.9971, 1.1840]])


@pytest.fixture(scope="module")
def head():
    return template_head_model(2)


def _mne_scalp_vertices() -> np.ndarray:
    import mne

    path = files("mne").joinpath("data", "fsaverage", "fsaverage-head.fif")
    rr = mne.read_bem_surfaces(str(path), verbose="error")[0]["rr"] * 1000.0
    return rr @ MNI305_TO_MNI152[:, :3].T + MNI305_TO_MNI152[:, 3]


def test_the_head_boundary_is_the_scalp_surface(head):
    """Every vertex of MNE's scalp (inside the grid) lies within 2 voxels of the head's boundary."""
    inside = head.labels > 0
    boundary = inside & ~ndimage.binary_erosion(inside)
    xyz = np.argwhere(boundary) @ head.affine[:3, :3].T + head.affine[:3, 3]
    vertices = _mne_scalp_vertices()
    bottom = xyz[:, 2].min()
    distance, _ = cKDTree(xyz).query(vertices[vertices[:, 2] > bottom + 4.0])
    print(f"scalp vertex to head boundary: median {np.median(distance):.2f} mm, "
          f"95th percentile {np.percentile(distance, 95):.2f} mm")
    assert np.median(distance) <= 2.0 and np.percentile(distance, 95) <= 4.0


def test_the_brain_is_nilearns_brain_mask(head):
    from nilearn.datasets import load_mni152_brain_mask

    mask_img = load_mni152_brain_mask(resolution=2)
    brain = head.labels >= TISSUE_LABELS["csf"]
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    world = ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
    inv = np.linalg.inv(head.affine)
    ours = np.rint(world @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    in_brain = head.labels[tuple(ours.T)] >= TISSUE_LABELS["csf"]
    # The brain mask becomes CSF, GM or WM; the CSF layer outside it adds the rest.
    assert in_brain.all()
    assert set(np.unique(head.labels)) == {0, *TISSUE_LABELS.values()}
    assert (head.labels[tuple(ours.T)] >= TISSUE_LABELS["gm"]).sum() > 0.7 * len(ours)
    assert brain.sum() >= len(ours)


def test_template_resolution_is_checked():
    with pytest.raises(InvalidParameterError, match="1, 2"):
        template_head_model(3)


def _plan(out, *extra):
    stdout, stderr = io.StringIO(), io.StringIO()
    args = ["plan", "--target", *map(str, FOX_2012_OPTIMUM), "--space", "MNI152NLin2009cAsym",
            "--head-model", "realistic", "--template-voxel-mm", "2", *extra, "--out", str(out), "--json"]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    assert code == 0, stderr.getvalue()
    return json.loads(stdout.getvalue())


def test_the_realistic_plan_runs_on_the_template_head_without_a_t1w(tmp_path):
    """``tmsnet plan --space MNI152NLin2009cAsym --head-model realistic --optimize`` without --t1w.

    Seen (2 mm, this search grid): clinical placement 1.12 V/m per A/µs against the sphere
    model's 1.07; depth 16.5 mm.
    """
    s = _plan(tmp_path, "--optimize", "--search-radius", "8", "--position-step", "4",
              "--search-angle-step", "30", "--verify-placements", "1")
    r = s["realistic"]
    assert s["head_model"] == "realistic" and s["space"] == "MNI152NLin2009cAsym"
    assert any("template head" in w and "population average" in w for w in s["warnings"])
    assert r["field"]["magnitude"] >= r["baseline"]["magnitude"] * (1 - 1e-9) and r["n_placements"] > 10
    assert 10.0 <= s["depth_target_mm"] <= 22.0
    sphere = s["sphere_model"]["e_at_target_v_per_m_per_a_per_us"]
    assert 0.7 * sphere <= r["baseline"]["magnitude"] <= 1.5 * sphere
    labels = nib.load(s["outputs"]["head_labels"])
    assert np.asarray(labels.dataobj).max() == TISSUE_LABELS["wm"]
    side = json.loads(open(str(s["outputs"]["head_labels"]).replace(".nii.gz", ".json"),
                           encoding="utf-8").read())
    assert "fsaverage-head.fif" in json.dumps(side)
