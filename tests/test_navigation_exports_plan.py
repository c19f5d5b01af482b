"""Neuronavigation exports parsed back, the treatment plan, and the efield/plan commands."""

import json

import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError
from tmsnet.jobs.plan import plan as plan_job
from tmsnet.navigation.exports import (
    NavigationTarget,
    brainsight_text,
    localite_xml,
    read_brainsight_text,
    read_localite_xml,
    write_navigation_files,
)
from tmsnet.navigation.plan import PlanParameters, compute_plan
from tmsnet.physics.dose import DoseParameters
from tmsnet.physics.placement import coil_rotation


@pytest.fixture(scope="module")
def nav_targets():
    rot = coil_rotation([0.5, -0.4, -0.77], 35.0)
    rot2 = coil_rotation([0.1, 0.2, -0.97], -120.0)
    return [
        NavigationTarget("dlpfc", np.array([-53.4, 56.4, 34.7]), rot, np.array([-38.0, 44.0, 26.0]), "T1w"),
        NavigationTarget("m1", np.array([-50.0, -20.0, 80.0]), rot2, np.array([-37.0, -21.0, 58.0]), "T1w"),
    ]


def test_brainsight_round_trip_and_axes(nav_targets):
    text = brainsight_text(nav_targets)
    assert "# Coordinate system: NIfTI:Aligned" in text
    back = read_brainsight_text(text)
    assert list(back) == ["dlpfc", "m1"]
    for t in nav_targets:
        assert np.allclose(back[t.name], t.matrix(), atol=1e-4)
    # Brainsight's z axis points out of the head: m2 = -coil z
    row = text.splitlines()[7].split("\t")
    assert np.allclose([float(v) for v in row[10:13]], -nav_targets[0].rotation[:, 2], atol=1e-4)


@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_localite_round_trip(nav_targets, space):
    xml = localite_xml(nav_targets, coordinate_space=space)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    back = read_localite_xml(xml)
    for t in nav_targets:
        assert np.allclose(back[t.name], t.matrix(), atol=1e-12)


def test_localite_x_axis_is_coil_normal(nav_targets):
    import xml.etree.ElementTree as ET

    root = ET.fromstring(localite_xml(nav_targets[:1]))
    m = root.find("InstrumentMarker/Marker/Matrix4D")
    x_axis = [float(m.get(f"data{i}0")) for i in range(3)]
    assert np.allclose(x_axis, nav_targets[0].rotation[:, 2])
    assert float(m.get("data03")) == pytest.approx(-53.4)


def test_navigation_files_written_and_parsed(nav_targets, tmp_path):
    files = write_navigation_files(nav_targets, tmp_path, "sub-01_space-T1w", sidecar={"x": 1})
    markers = pd.read_csv(files["markers"], sep="\t")
    assert list(markers["marker_name"]) == ["dlpfc", "m1"]
    assert markers.loc[0, ["target_x", "target_y", "target_z"]].tolist() == [-38.0, 44.0, 26.0]
    coil_z = markers.loc[1, ["coil_z_x", "coil_z_y", "coil_z_z"]].to_numpy(float)
    assert np.allclose(coil_z, nav_targets[1].rotation[:, 2], atol=1e-6)
    coords = json.loads(files["coordsystem"].read_text())
    assert coords["NIBSCoordinateSystem"] == "T1w" and coords["NIBSCoordinateUnits"] == "mm"
    assert (tmp_path / "sub-01_space-T1w_markers.json").is_file()
    with pytest.raises(InvalidParameterError, match="rotation"):
        brainsight_text([NavigationTarget("x", np.zeros(3), np.eye(3) * 2, np.zeros(3), "T1w")])


@pytest.fixture(scope="module")
def template_plan(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan")
    return plan_job((-38.0, 44.0, 26.0), "MNI152NLin2009cAsym", out,
                    PlanParameters(dose=DoseParameters(mt_percent=50.0)))


def test_template_plan_contents(template_plan):
    plan, written = template_plan
    s = plan.summary()
    assert s["space"] == "MNI152NLin2009cAsym"
    scalp = np.array(s["scalp_point_mm"])
    # the scalp point is outside the target, 15-30 mm away, and the coil z axis points inwards
    assert 15 < np.linalg.norm(scalp - [-38, 44, 26]) < 30
    assert np.dot(np.array(s["coil_axes"]["z"]), np.array([-38, 44, 26]) - scalp) > 0
    assert 8 < s["depth_target_mm"] < 25 and s["depth_method"] == "brain-mask"
    # the 10-10 label: nearest of MNE's fsaverage_1010 positions to the plan's scalp point, computed
    # here (MNI305 -> MNI152 affine of the FreeSurfer wiki "CoordinateSystems")
    import mne

    montage = mne.channels.make_standard_montage("fsaverage_1010").get_positions()["ch_pos"]
    names = list(montage)
    mni305 = np.array([montage[n] for n in names]) * 1000.0
    to_mni152 = np.array([[0.9975, -0.0073, 0.0176, -0.0429], [0.0146, 1.0009, -0.0024, 1.5496],
                          [-0.0130, -0.0093, 0.9971, 1.1840]])
    positions = mni305 @ to_mni152[:, :3].T + to_mni152[:, 3]
    dist = np.linalg.norm(positions - scalp, axis=1)
    order = np.argsort(dist)
    assert dist[order[1]] - dist[order[0]] > 1.0  # unambiguous: measured F5 16.0 mm, F3 18.9 mm
    electrode = s["nearest_electrode_1010"]
    assert electrode["label"] == names[order[0]]
    assert electrode["distance_mm"] == pytest.approx(dist[order[0]], abs=0.05)  # table rounded to 0.01 mm
    assert electrode["label"] in {"F3", "F5"}  # Fox 2012's group-optimal target: F3 or its lateral neighbour
    d = s["dose"]
    assert d["stokes_adjusted_mt_percent"] == pytest.approx(
        50 + 3.0 * (s["depth_target_mm"] - s["depth_m1_mm"]))
    assert d["efield_matched_mt_percent"] == pytest.approx(
        50 * d["e_m1_v_per_m_per_a_per_us"] / d["e_target_v_per_m_per_a_per_us"])
    html = written["plan_html"].read_text()
    assert "Decision support" in html and "iTBS" in html and "600 pulses" in html
    assert "<script" not in html
    for role in ("plan_json", "brainsight", "localite", "markers", "coordsystem", "plan_field"):
        assert written[role].is_file()
    side = json.loads(written["plan_html"].with_suffix(".json").read_text())
    assert side["Space"] == "MNI152NLin2009cAsym"


def test_native_plan_with_t1w_and_xfm(tmp_path):
    """A T1w phantom and an affine MNI->T1w transform: the target lands where the transform puts it."""
    import nibabel as nib

    from tmsnet.navigation.transforms import write_itk_composite_h5

    vox, n = 2.0, 100
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = -vox * (n - 1) / 2
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    r = np.linalg.norm(ijk * vox + affine[:3, 3], axis=-1)
    t1w = tmp_path / "sub-01_desc-preproc_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.where(r <= 85, 300.0, 0.0).astype(np.float32), affine), t1w)
    mask = tmp_path / "sub-01_desc-brain_mask.nii.gz"
    nib.save(nib.Nifti1Image((r <= 70).astype(np.uint8), affine), mask)
    shift = np.eye(4)
    shift[:3, 3] = [-2.0, 15.0, 12.0]  # T1w point p -> MNI p + shift
    xfm = write_itk_composite_h5(tmp_path / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5", shift)
    plan = compute_plan((-38.0, 44.0, 26.0), "MNI152NLin2009cAsym",
                        PlanParameters(dose=DoseParameters(mt_percent=45.0)), t1w=t1w, xfm=xfm,
                        brain_mask=mask)
    assert plan.space == "T1w"
    assert np.allclose(plan.target_mm, [-36.0, 29.0, 14.0], atol=1e-3)
    assert np.linalg.norm(plan.placement.scalp_point_mm) == pytest.approx(85.0, abs=2.0)
    assert plan.depth_target_mm == pytest.approx(15.0, abs=2.0)
    assert plan.placement.sphere_radius_mm == pytest.approx(85.0, abs=4.0)  # local fit on 2 mm voxels
    assert plan.electrode["label"] is not None
    with pytest.raises(InvalidParameterError, match="--t1w"):
        compute_plan((-38.0, 44.0, 26.0), "MNI152NLin2009cAsym", xfm=xfm)


def test_cli_efield_and_plan(tmp_path, capsys):
    assert main(["efield", "--coil", "fig8-70mm", "--metrics", "deng", "--json", "--grid-mm", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["d_half_cm"] == pytest.approx(1.41, rel=0.1)
    assert {"s_half_cm2", "v_half_cm3"} <= set(out)
    code = main(["plan", "--target", "-41", "16", "54", "--space", "MNI152NLin2009cAsym", "--mt", "55",
                 "--out", str(tmp_path), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dose"]["mt_percent"] == 55
    assert (tmp_path / "sub-01_desc-treatment_plan.html").is_file()
    assert main(["plan", "--target", "0", "0", "0", "--space", "Talairach", "--out", str(tmp_path)]) == 1
    assert "Unknown space" in capsys.readouterr().err
    assert main(["efield", "--coil", str(tmp_path / "none.ccd")]) == 1
