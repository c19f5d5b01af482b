"""Tests of the synthetic fMRIPrep-like resting-state generator (tmsnet.simulate)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import signal

from tmsnet.data import load_brain_mask
from tmsnet.exceptions import InvalidParameterError
from tmsnet.simulate import (
    SimulationParameters,
    band_limited_series,
    framewise_displacement,
    simulate_fmriprep_dataset,
    simulate_subject_arrays,
)
from tmsnet.targeting.regions import (
    dlpfc_search_mask,
    gray_matter_mask_on_grid,
    voxel_coordinates_mm,
)

SHORT = SimulationParameters(n_frames=60)
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
EXPANSIONS = ["", "_derivative1", "_power2", "_derivative1_power2"]


@pytest.fixture(scope="module")
def two_subjects(tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("sim2")
    subjects = simulate_fmriprep_dataset(out, n_subjects=2, seed=7, params=SHORT)
    return out, subjects


@pytest.fixture(scope="module")
def one_subject(tmp_path_factory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("sim1")
    subjects = simulate_fmriprep_dataset(out, n_subjects=1, seed=7, params=SHORT)
    return out, subjects


@pytest.fixture(scope="module")
def long_subject():
    """One subject in memory, long enough for correlation checks."""
    return simulate_subject_arrays(subject_index=2, seed=1,
                                   params=SimulationParameters(n_frames=200))


def _regress(data: np.ndarray, design: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(design)), design])
    beta, *_ = np.linalg.lstsq(design, data, rcond=None)
    return data - design @ beta


def _patch_rows(xyz: np.ndarray, centre, radius: float) -> np.ndarray:
    return np.linalg.norm(xyz - np.asarray(centre, dtype=float), axis=1) <= radius


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_arrays():
    a = simulate_subject_arrays(subject_index=0, seed=3, params=SHORT)
    b = simulate_subject_arrays(subject_index=0, seed=3, params=SHORT)
    assert np.array_equal(np.asarray(a[0].dataobj), np.asarray(b[0].dataobj))
    pd.testing.assert_frame_equal(a[2], b[2])
    assert a[3] == b[3]
    c = simulate_subject_arrays(subject_index=0, seed=4, params=SHORT)
    assert not np.array_equal(np.asarray(a[0].dataobj), np.asarray(c[0].dataobj))


def test_sub01_independent_of_n_subjects(one_subject, two_subjects):
    (_, s1), (_, s2) = one_subject, two_subjects
    for attr in ("bold_path", "mask_path", "confounds_path"):
        assert getattr(s1[0], attr).read_bytes() == getattr(s2[0], attr).read_bytes(), attr
    assert s1[0].truth == s2[0].truth
    assert s1[0].target_mm == s2[0].target_mm


def test_subjects_differ(two_subjects):
    _, subjects = two_subjects
    assert [s.subject for s in subjects] == ["01", "02"]
    assert np.linalg.norm(np.subtract(subjects[0].target_mm, subjects[1].target_mm)) > 0


def test_written_file_matches_memory(two_subjects):
    _, subjects = two_subjects
    bold, mask, confounds, truth = simulate_subject_arrays(subject_index=1, seed=7, params=SHORT)
    on_disk = nib.load(subjects[1].bold_path)
    assert np.array_equal(on_disk.get_fdata(dtype=np.float32), np.asarray(bold.dataobj))
    assert truth == subjects[1].truth
    table = pd.read_csv(subjects[1].confounds_path, sep="\t")
    np.testing.assert_allclose(table.to_numpy(), confounds.to_numpy(), rtol=1e-12,
                               equal_nan=True)


# --------------------------------------------------------------------------- planted truth
def test_planted_target_geometry(long_subject):
    bold, mask, _, truth = long_subject
    brain = np.asarray(mask.dataobj) > 0
    search, _ = dlpfc_search_mask(mask, brain)
    gm = gray_matter_mask_on_grid(mask)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(mask.affine),
                                          truth["target_center_mm"])).astype(int)
    assert search[tuple(ijk)] and gm[tuple(ijk)] and brain[tuple(ijk)]
    # The weighted centroid lies within the patch and close to a search voxel.
    xyz = voxel_coordinates_mm(mask.shape, mask.affine)[search]
    target = np.asarray(truth["target_mm"])
    assert np.min(np.linalg.norm(xyz - target, axis=1)) <= 2.0
    assert np.linalg.norm(target - truth["target_center_mm"]) <= truth["target_radius_mm"]
    roles = {d["role"] for d in truth["decoys"]}
    assert roles == {"anticorrelated_decoy", "correlated_decoy"}
    points = [target] + [np.asarray(d["centroid_mm"]) for d in truth["decoys"]]
    centres = [np.asarray(truth["target_center_mm"])] + [
        np.asarray(d["center_mm"]) for d in truth["decoys"]
    ]
    for group in (points, centres):
        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                assert np.linalg.norm(group[i] - group[j]) >= 25.0
    for d in truth["decoys"]:
        ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(mask.affine),
                                              d["center_mm"])).astype(int)
        assert search[tuple(ijk)]
    anti = next(d for d in truth["decoys"] if d["role"] == "anticorrelated_decoy")
    assert anti["sign"] == -1 and -1.0 < anti["relative_loading"] < 0


#: Published MNI152 coordinates (mm), typed from ../shared/REFERENCES.md section 1
#: (Fox et al. 2012 Biol Psychiatry 72:595, Table 1; the search region: 20 mm spheres
#: at the four standard targets, gray matter only; the seed: a 10 mm sphere).
PUBLISHED_DLPFC_MM = {"five_cm_rule": (-41, 16, 54), "ba9": (-36, 39, 43),
                      "ba46": (-44, 40, 29), "f3_beam": (-37, 26, 49)}
PUBLISHED_SGACC_MM = (6, 16, -10)


def test_planted_regions_are_the_published_ones_and_match_the_targeting_code(long_subject):
    """Independent truth: the simulator's own search region and seed against the published
    coordinates, and voxel for voxel against tmsnet.targeting.regions (two implementations
    of one published geometry, neither importing the other). A search centre moved in
    either, or a wrong radius, fails here.
    """
    from tmsnet.data import reference_coordinate
    from tmsnet.simulate.fmri import _DLPFC_STANDARD_MM, _SGACC_MM, _anatomy
    from tmsnet.targeting.regions import seed_mask

    *_, mask, _, truth = long_subject
    assert {k: tuple(v) for k, v in _DLPFC_STANDARD_MM.items()} == PUBLISHED_DLPFC_MM
    assert tuple(_SGACC_MM) == PUBLISHED_SGACC_MM
    assert truth["search_region"] == {"n_voxels": truth["search_region"]["n_voxels"],
                                      "centers": list(PUBLISHED_DLPFC_MM), "radius_mm": 20.0}
    assert truth["seed_region"]["center_mm"] == list(PUBLISHED_SGACC_MM)
    for name, xyz in PUBLISHED_DLPFC_MM.items():  # the package's table, read by the targeting code
        np.testing.assert_array_equal(reference_coordinate(name), xyz)
    anat = _anatomy()
    brain = np.asarray(mask.dataobj) > 0
    np.testing.assert_array_equal(anat.brain, brain)
    search, description = dlpfc_search_mask(mask, brain)
    seed, _ = seed_mask(mask, brain)
    assert description["radius_mm"] == 20.0 and description["centers"] == list(PUBLISHED_DLPFC_MM)
    assert np.array_equal(anat.search, search[brain]), "search regions differ"
    assert np.array_equal(anat.seed, seed[brain]), "seed regions differ"
    assert truth["search_region"]["n_voxels"] == int(search.sum())
    assert truth["seed_region"]["n_voxels"] == int(seed.sum())


def test_planted_correlations(long_subject):
    bold, mask, confounds, truth = long_subject
    brain = np.asarray(mask.dataobj) > 0
    data = np.asarray(bold.dataobj)[brain].T.astype(np.float64)  # (T, V)
    xyz = voxel_coordinates_mm(mask.shape, mask.affine)[brain]
    n_t = data.shape[0]
    t = np.linspace(-1, 1, n_t)
    design = np.column_stack([confounds["global_signal"], t, t**2])
    seed_rows = _patch_rows(xyz, truth["seed_region"]["center_mm"], 10.0)
    radius = truth["target_radius_mm"]
    target_rows = _patch_rows(xyz, truth["target_center_mm"], radius / 2)
    pos = next(d for d in truth["decoys"] if d["role"] == "correlated_decoy")
    pos_rows = _patch_rows(xyz, pos["center_mm"], radius / 2)
    series = np.column_stack([data[:, r].mean(axis=1) for r in (seed_rows, target_rows,
                                                                 pos_rows)])
    clean = _regress(series, design)
    r = np.corrcoef(clean.T)
    # Mean time series of whole spheres, with motion and noise left in: the planted
    # signs must show clearly, not perfectly.
    assert r[0, 1] < -0.3, r
    assert r[0, 2] > 0.1, r
    # Without global signal regression the anticorrelation is masked (positive shift).
    raw = _regress(series, design[:, 1:])
    assert np.corrcoef(raw.T)[0, 1] > r[0, 1]
    # The recorded source is what the seed carries.
    source = np.asarray(truth["target_source"])
    assert np.corrcoef(clean[:, 0], source)[0, 1] > 0.5


def test_truth_is_json_and_complete(long_subject):
    *_, truth = long_subject
    assert json.loads(json.dumps(truth)) == truth
    for key in ("target_mm", "target_center_mm", "decoys", "networks", "seed_region", "snr",
                "motion", "target_source"):
        assert key in truth
    assert 3 <= len(truth["networks"]) <= 5
    assert len(truth["target_source"]) == 200


# --------------------------------------------------------------------------- files
def test_file_layout(two_subjects):
    out, subjects = two_subjects
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] == "1.9.0" and desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "tmsnet.simulate"
    gt = json.loads((out / "ground_truth.json").read_text())
    assert set(gt["subjects"]) == {"01", "02"}
    assert gt["parameters"]["seed"] == 7 and gt["parameters"]["n_frames"] == 60
    assert gt["subjects"]["01"] == subjects[0].truth
    func = out / "sub-01" / "func"
    names = sorted(p.name for p in func.iterdir())
    assert names == sorted([
        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz",
        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.json",
        "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2_desc-brain_mask.nii.gz",
        "sub-01_task-rest_desc-confounds_timeseries.tsv",
        "sub-01_task-rest_desc-confounds_timeseries.json",
    ])
    assert subjects[0].bold_path.parent == func


def test_bold_header_and_mask(two_subjects):
    _, subjects = two_subjects
    s = subjects[0]
    img = nib.load(s.bold_path)
    assert img.ndim == 4 and img.shape[3] == SHORT.n_frames
    assert img.header.get_zooms() == pytest.approx((2.0, 2.0, 2.0, SHORT.t_r))
    assert img.header.get_xyzt_units() == ("mm", "sec")
    sidecar = json.loads(s.bold_path.with_name(
        s.bold_path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["RepetitionTime"] == SHORT.t_r
    assert sidecar["SkullStripped"] is False and sidecar["TaskName"] == "rest"
    mask_img = nib.load(s.mask_path)
    ref = load_brain_mask(2)
    assert mask_img.shape == ref.shape and np.allclose(mask_img.affine, ref.affine)
    assert np.allclose(img.affine, ref.affine)
    mask = np.asarray(mask_img.dataobj) > 0
    assert np.array_equal(mask, np.asarray(ref.dataobj) > 0)
    data = img.get_fdata(dtype=np.float32)
    assert np.all(data[~mask] == 0)
    inside = data[mask]
    assert 500 < np.median(inside) < 1500  # BOLD-like scanner units
    assert np.all(inside.std(axis=1) > 0)


def test_confounds_table(two_subjects):
    _, subjects = two_subjects
    s = subjects[0]
    text = s.confounds_path.read_text().splitlines()
    assert len(text) == SHORT.n_frames + 1
    assert "n/a" in text[1].split("\t")
    table = pd.read_csv(s.confounds_path, sep="\t")
    expected = [f"{b}{e}" for b in ["global_signal", "csf", "white_matter", *MOTION]
                for e in EXPANSIONS]
    expected += ["framewise_displacement", "cosine00"]
    missing = set(expected) - set(table.columns)
    assert not missing, missing
    assert len(table) == SHORT.n_frames
    deriv = [c for c in table.columns if "derivative1" in c] + ["framewise_displacement"]
    assert table.loc[0, deriv].isna().all()
    assert not table.loc[1:, deriv].isna().any().any()
    assert not table[[c for c in table.columns if c not in deriv + ["dvars", "std_dvars"]]
                     ].isna().any().any()
    # FD (Power et al. 2012) recomputed from the motion columns.
    motion = table[MOTION].to_numpy()
    diff = np.abs(np.diff(motion, axis=0))
    fd = diff[:, :3].sum(axis=1) + 50.0 * diff[:, 3:].sum(axis=1)
    np.testing.assert_allclose(table["framewise_displacement"].to_numpy()[1:], fd, rtol=1e-9)
    np.testing.assert_allclose(framewise_displacement(motion)[1:], fd, rtol=1e-12)
    for c in ["global_signal", *MOTION]:
        x = table[c].to_numpy()
        np.testing.assert_allclose(table[f"{c}_derivative1"].to_numpy()[1:], np.diff(x),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(table[f"{c}_power2"], x**2, rtol=1e-9)
    # global_signal is the real brain mean of the written BOLD.
    img = nib.load(s.bold_path)
    mask = np.asarray(nib.load(s.mask_path).dataobj) > 0
    gs = img.get_fdata(dtype=np.float32)[mask].mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(table["global_signal"], gs, rtol=1e-6)
    # Cosine regressors: 128 s high-pass (fMRIPrep) -> floor(2 n TR / 128) columns.
    n_cos = sum(c.startswith("cosine") for c in table.columns)
    assert n_cos == int(np.floor(2 * SHORT.n_frames * SHORT.t_r / 128.0))
    assert 0 < np.nanmean(table["framewise_displacement"]) < 1.0


# --------------------------------------------------------------------------- spectrum
def _band_fraction(x: np.ndarray, t_r: float) -> float:
    freqs, power = signal.periodogram(x, fs=1.0 / t_r, detrend="constant")
    band = (freqs >= 0.01) & (freqs <= 0.1)
    return float(power[band].sum() / power.sum())


def test_source_is_band_limited(long_subject):
    *_, truth = long_subject
    assert _band_fraction(np.asarray(truth["target_source"]), 2.0) >= 0.9
    rng = np.random.default_rng(0)
    series = band_limited_series(rng, 300, 2.0, n_series=5)
    assert series.shape == (5, 300)
    np.testing.assert_allclose(series.std(axis=1), 1.0)
    assert all(_band_fraction(s, 2.0) >= 0.9 for s in series)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_frames": 10},
        {"n_frames": 100.5},
        {"t_r": 6.0},
        {"snr": -1.0},
        {"snr": float("nan")},
        {"decoy_strength": 1.0},
        {"target_radius_mm": 0.0},
        {"noise_fwhm_mm": -2.0},
        {"task": "rest-1"},
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(InvalidParameterError):
        simulate_subject_arrays(subject_index=0, params=SimulationParameters(**kwargs))


def test_invalid_dataset_arguments(tmp_path):
    with pytest.raises(InvalidParameterError, match="n_subjects"):
        simulate_fmriprep_dataset(tmp_path, n_subjects=0)
    with pytest.raises(InvalidParameterError, match="seed"):
        simulate_fmriprep_dataset(tmp_path, seed=-1)
    with pytest.raises(InvalidParameterError, match="subject_index"):
        simulate_subject_arrays(subject_index=-1)


def test_targeting_block_redraws_a_layout_that_leaves_no_room():
    """Seed 14 used to spin for ever: its first two patches left no place for a third 20 mm away."""
    from tmsnet.simulate.targeting_block import simulate_targeting_block

    block = simulate_targeting_block(seed=14, n_frames=20)
    x, y, z = block.target_mm
    assert 10 <= x <= 50 and 30 <= y <= 50 and 22 <= z <= 30
    assert np.array_equal(block.target_mm, simulate_targeting_block(seed=14, n_frames=20).target_mm)
