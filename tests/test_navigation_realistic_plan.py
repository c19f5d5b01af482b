"""``tmsnet plan --head-model realistic`` end to end on a layered sphere written as fMRIPrep anatomy.

The phantom is :func:`~tmsnet.physics.head_model.sphere_phantom` on a 4 mm grid
(scalp 85 mm, brain 70 mm), written as ``sub-01_desc-preproc_T1w``,
``desc-brain_mask`` and ``label-GM/WM/CSF_probseg`` in one folder; the search
grid is coarse (positions every 4 mm within 8 mm, orientations every 15°, one
placement re-solved) to keep the file quick. Known truths: by symmetry the
optimum for a patch around a point sits on the scalp above it; the plain plan
is the search's own clinical baseline (same placement, same direct solve); the
|E| map written is the field the plan reports; the exports carry the plan's
matrix and name its frame.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from test_physics_head_model import write_fmriprep_like
from tmsnet.cli import main
from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.navigation.exports import read_brainsight_text, read_localite_xml
from tmsnet.navigation.plan import PlanParameters, compute_plan
from tmsnet.navigation.realistic_plan import fmriprep_anatomy
from tmsnet.physics.dose import DoseParameters
from tmsnet.physics.head_model import TISSUE_LABELS, head_model_from_fmriprep, sphere_phantom

TARGET = (-30.0, 20.0, 55.0)  # in the grey matter of the phantom (r = 65.9 mm; GM 66-70 mm)
M1 = (-35.0, -20.0, 60.0)
COARSE = ["--search-radius", "8", "--position-step", "4", "--search-angle-step", "15",
          "--verify-placements", "1"]


@pytest.fixture(scope="module")
def anatomy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("anat")
    return write_fmriprep_like(sphere_phantom(4.0), folder)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {name: tmp_path_factory.mktemp(name) for name in ("optimized", "plain", "sphere")}


@pytest.fixture(scope="module")
def optimized(anatomy, runs):
    return _run_json(anatomy, runs["optimized"], "--head-model", "realistic", "--optimize", *COARSE)


@pytest.fixture(scope="module")
def plain(anatomy, runs):
    return _run_json(anatomy, runs["plain"], "--head-model", "realistic", *COARSE)


def _run_json(anatomy, out, *extra):
    import contextlib
    import io

    args = ["plan", "--target", *map(str, TARGET), "--space", "T1w", "--t1w", str(anatomy["t1w"]),
            "--mt", "50", "--m1", *map(str, M1), "--m1-space", "T1w", *extra, "--out", str(out), "--json"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(args)
    assert code == 0, stderr.getvalue()
    return json.loads(stdout.getvalue())


def test_both_head_models_keep_the_json_keys(anatomy, optimized, plain, runs):
    sphere = _run_json(anatomy, runs["sphere"])
    for s in (sphere, plain, optimized):
        assert s["e_at_target_v_per_m_per_a_per_us"] > 0
        assert {"scalp_point_mm", "coil_axes", "coil_angle_deg", "dose", "coil_matrix",
                "coordinate_frame"} <= set(s)
        assert s["coordinate_frame"]["space"] == "T1w" and "RAS" in s["coordinate_frame"]["description"]
    assert sphere["head_model"] == "sphere" and "realistic" not in sphere
    assert plain["head_model"] == optimized["head_model"] == "realistic"
    # the sphere model's numbers stay beside the realistic ones, equal to the sphere-only plan's
    assert plain["sphere_model"]["e_at_target_v_per_m_per_a_per_us"] == pytest.approx(
        sphere["e_at_target_v_per_m_per_a_per_us"], rel=1e-12)
    assert plain["dose"]["head_model"] == "realistic"
    assert plain["dose"]["efield_matched_mt_percent"] == pytest.approx(
        50 * plain["dose"]["e_m1_v_per_m_per_a_per_us"] / plain["dose"]["e_target_v_per_m_per_a_per_us"])


def test_the_plain_plan_is_the_searchs_clinical_baseline(plain, optimized):
    base = optimized["realistic"]["baseline"]
    assert plain["coil_orientation_rule"] == "clinical" and plain["realistic"]["n_placements"] == 1
    assert plain["e_at_target_v_per_m_per_a_per_us"] == pytest.approx(base["magnitude"], rel=1e-6)
    assert plain["coil_angle_deg"] == pytest.approx(base["angle_deg"], abs=1e-9)
    np.testing.assert_allclose(plain["realistic"]["rotation"], base["rotation"], atol=1e-12)


def test_the_optimised_placement_is_above_the_target_with_at_least_the_baseline_field(optimized):
    r = optimized["realistic"]
    assert optimized["coil_orientation_rule"] == "optimized" and r["n_placements"] > 100
    assert optimized["e_at_target_v_per_m_per_a_per_us"] == r["field"]["magnitude"]
    assert r["field"]["magnitude"] >= r["baseline"]["magnitude"] * (1 - 1e-9)
    assert r["gain"] >= 1.0 - 1e-9
    # Symmetry: the patch around a point of the sphere is symmetric about the radius through it, so the
    # best coil centre lies above it, within one position step (4 mm) of the radial line.
    point, target = np.array(optimized["scalp_point_mm"]), np.array(optimized["realistic"]["target_mm"])
    radial = target / np.linalg.norm(target)
    assert np.linalg.norm(point - (point @ radial) * radial) <= 4.0 + 1e-6
    assert np.degrees(np.arccos(-np.array(optimized["coil_axes"]["z"]) @ radial)) < 10.0


def test_exports_carry_the_optimised_matrix_and_name_the_frame(optimized):
    rotation = np.array(optimized["realistic"]["rotation"])
    point = np.array(optimized["scalp_point_mm"])
    out = optimized["outputs"]
    text = open(out["brainsight"], encoding="utf-8").read()
    assert "# Coordinate system: NIfTI:Aligned" in text
    xml = open(out["localite"], encoding="utf-8").read()
    assert ET.fromstring(xml).get("coordinateSpace") == "RAS"
    for matrix in (read_brainsight_text(text)["target"], read_localite_xml(xml)["target"]):
        np.testing.assert_allclose(matrix[:3, :3], rotation, atol=1e-6)
        np.testing.assert_allclose(matrix[:3, 3], point, atol=1e-4)
    markers = pd.read_csv(out["markers"], sep="\t")
    for k, axis in enumerate(("coil_x", "coil_y", "coil_z")):
        np.testing.assert_allclose(markers.loc[0, [f"{axis}_{c}" for c in "xyz"]].to_numpy(float),
                                   rotation[:, k], atol=1e-6)
    assert json.loads(open(out["coordsystem"], encoding="utf-8").read())["NIBSCoordinateSystem"] == "T1w"
    plan_json = json.loads(open(out["plan_json"], encoding="utf-8").read())
    np.testing.assert_allclose(np.array(plan_json["coil_matrix"])[:3, :3], rotation, atol=1e-12)
    assert plan_json["coordinate_frame"]["space"] == "T1w"


def test_written_labels_and_field_map_are_the_plans(anatomy, optimized):
    out = optimized["outputs"]
    labels = nib.load(out["head_labels"])
    expected = head_model_from_fmriprep(*anatomy.values())
    np.testing.assert_array_equal(np.asarray(labels.dataobj), expected.labels)
    side = json.loads(open(out["head_labels"].replace(".nii.gz", ".json"), encoding="utf-8").read())
    assert side["Labels"]["4"] == "grey matter"
    # The map is the planned field: its mean over the target patch (GM within 5 mm) is the plan's value.
    e_img = nib.load(out["efield_map"])
    e = np.asarray(e_img.dataobj, dtype=float)
    ijk = np.indices(e.shape).reshape(3, -1).T
    centres = ijk @ e_img.affine[:3, :3].T + e_img.affine[:3, 3]
    gm = expected.labels.ravel() == TISSUE_LABELS["gm"]
    patch = (np.linalg.norm(centres - TARGET, axis=1) <= 5.0) & gm
    assert e.ravel()[patch].mean() == pytest.approx(optimized["e_at_target_v_per_m_per_a_per_us"], rel=1e-5)
    assert np.all(e[expected.labels == 0] == 0)


def test_the_plan_page_names_quantities_and_shows_the_field(optimized):
    page = open(optimized["outputs"]["plan_html"], encoding="utf-8").read()
    visible = page.split("Plan as JSON")[0]
    assert "Field at the target (V/m per A/µs)" in visible
    assert "Gain over the clinical placement" in visible and "Coordinate frame" in visible
    assert "e_at_target_v_per_m_per_a_per_us" not in visible
    assert "three slices through the target" in visible and "data:image/png;base64" in visible
    assert "five-tissue voxel head" in page  # the realistic plan's disclaimer


def test_the_field_slices_are_coloured_to_the_brains_field(anatomy, optimized):
    from tmsnet.report.providers.plan import _brain_vmax

    e = np.asarray(nib.load(optimized["outputs"]["efield_map"]).dataobj, dtype=float)
    labels = head_model_from_fmriprep(*anatomy.values()).labels
    brain = e[(labels >= TISSUE_LABELS["gm"]) & (e > 0)]
    # the scalp and skull under the coil are stronger (here 1.9 against 1.0 V/m per A/us): on the
    # head's scale the cortex's strongest field would get about half the colour range
    assert np.percentile(e[e > 0], 99.5) > 1.5 * np.percentile(brain, 99.5)
    assert _brain_vmax(e, labels) == pytest.approx(np.percentile(brain, 99.5))
    assert _brain_vmax(e, None) == pytest.approx(np.percentile(e[e > 0], 99.5))


def test_refusals(anatomy, tmp_path, capsys):
    t1w = anatomy["t1w"]
    assert main(["plan", "--target", *map(str, TARGET), "--space", "T1w", "--head-model", "realistic",
                 "--out", str(tmp_path / "a")]) == 1
    assert "--t1w" in capsys.readouterr().err
    with pytest.raises(InvalidParameterError, match="--head-model realistic"):
        PlanParameters(optimize=True)
    # a missing probseg is named as fMRIPrep names it, and can be given instead
    folder = tmp_path / "anat"
    folder.mkdir()
    for path in anatomy.values():
        shutil.copy(path, folder / path.name)
    moved = tmp_path / "csf.nii.gz"
    (folder / "sub-01_label-CSF_probseg.nii.gz").rename(moved)
    params = PlanParameters(head_model="realistic", dose=DoseParameters(m1_mm=M1, m1_space="T1w"))
    with pytest.raises(InputFileNotFoundError, match="sub-01_label-CSF_probseg.nii.gz"):
        compute_plan(TARGET, "T1w", params, t1w=folder / t1w.name)
    found = fmriprep_anatomy(folder / t1w.name, {"csf_probseg": moved})
    assert found["csf_probseg"] == moved and found["gm_probseg"].name == "sub-01_label-GM_probseg.nii.gz"
    # a target outside the head (in the image: the grid ends at 96 mm) or outside the image
    for point, where in (((0.0, 0.0, 92.0), "outside the head"), ((0.0, 0.0, 110.0), "outside the image")):
        with pytest.raises(InvalidParameterError, match=where):
            compute_plan(point, "T1w", params, t1w=t1w)


def _patch_mask(anatomy, centre_mm, radius_mm, path):
    """A ball of ``radius_mm`` at ``centre_mm`` on the anatomy's grid (all tissues), as NIfTI."""
    img = nib.load(str(anatomy["brain_mask"]))
    xyz = np.indices(img.shape).reshape(3, -1).T @ img.affine[:3, :3].T + img.affine[:3, 3]
    ball = (np.linalg.norm(xyz - np.asarray(centre_mm), axis=1) <= radius_mm).reshape(img.shape)
    nib.save(nib.Nifti1Image(ball.astype(np.uint8), img.affine), str(path))
    return ball


def test_a_connectivity_patch_mask_replaces_the_sphere_around_the_target(anatomy, tmp_path):
    """``--target-patch MASK``: the patch is the mask's grey matter, not the 5 mm sphere.

    Truths (layered sphere): the clinical placement sits on the scalp radially above the patch's
    centroid, which is 12 mm (10.4 deg) from --target here (a point-based patch would put it
    above the target), within the 4 mm grid's spacing of scalp points (~2.7 deg); the reported
    field is the mean |E| over the mask's grey matter in the written map."""
    centre = np.array(TARGET) + np.array([0.0, 12.0, 0.0]) * 65.9 / np.linalg.norm(TARGET)
    ball = _patch_mask(anatomy, centre, 9.0, tmp_path / "patch.nii.gz")
    s = _run_json(anatomy, tmp_path / "out", "--head-model", "realistic", "--target-patch",
                  str(tmp_path / "patch.nii.gz"), *COARSE)
    labels = np.asarray(nib.load(s["outputs"]["head_labels"]).dataobj)
    patch = ball & (labels == TISSUE_LABELS["gm"])
    img = nib.load(s["outputs"]["head_labels"])
    centroid = (np.argwhere(patch) @ img.affine[:3, :3].T + img.affine[:3, 3]).mean(axis=0)
    point = np.asarray(s["scalp_point_mm"])
    angle = np.degrees(np.arccos(point @ centroid / np.linalg.norm(point) / np.linalg.norm(centroid)))
    to_target = np.degrees(np.arccos(point @ np.asarray(TARGET) / np.linalg.norm(point)
                                     / np.linalg.norm(TARGET)))
    # 12 mm at r = 66 mm is 10.4 deg; the 4 mm grid's scalp points are ~2.7 deg apart
    assert angle < 5.0 and to_target > 8.0, (angle, to_target)
    e = np.asarray(nib.load(s["outputs"]["efield_map"]).dataobj)
    assert s["e_at_target_v_per_m_per_a_per_us"] == pytest.approx(float(e[patch].mean()), rel=1e-4)
    assert s["realistic"]["patch_voxels"] == int(patch.sum())
    assert s["realistic"]["anatomy"]["target_patch"].endswith("patch.nii.gz")


def test_a_patch_far_from_the_target_or_off_the_cortex_is_refused(anatomy, tmp_path):
    from tmsnet.navigation.realistic_plan import RealisticParameters

    _patch_mask(anatomy, (30.0, -20.0, 55.0), 8.0, tmp_path / "far.nii.gz")  # the other hemisphere
    _patch_mask(anatomy, (0.0, 0.0, 0.0), 20.0, tmp_path / "deep.nii.gz")  # white matter only
    for name, match in (("far.nii.gz", "from --target"), ("deep.nii.gz", "no grey matter")):
        params = PlanParameters(head_model="realistic", dose=DoseParameters(m1_mm=M1, m1_space="T1w"),
                                realistic=RealisticParameters(target_patch=tmp_path / name))
        with pytest.raises(InvalidParameterError, match=match):
            compute_plan(TARGET, "T1w", params, t1w=anatomy["t1w"])
