"""Denoising (tmsnet.fmri.cleaning): planted truths and nilearn cross-checks."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.exceptions import (
    ConfoundsError,
    InvalidParameterError,
    ScanTooShortError,
    UnknownMethodError,
)
from tmsnet.fmri.cleaning import (
    CONFOUND_STRATEGIES,
    BoldCleaningParameters,
    clean_bold,
    fwhm_to_sigma_voxels,
    scrub_outliers,
    select_confounds,
    smooth_in_mask,
)
from tmsnet.io.atomic import atomic_write_json
from tmsnet.io.fmriprep import BoldData, load_bold, load_confounds_table

SPACE = "MNI152NLin2009cAsym"
MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
SUFFIXES = ["derivative1", "power2", "derivative1_power2"]
NO_FLOOR = {"min_frames": 1, "min_duration_min": 0.0}


def make_bold(data: np.ndarray, mask: np.ndarray, *, t_r: float = 2.0,
              voxel_mm: float = 2.0) -> BoldData:
    """A BoldData built in memory: data (T, V) for the voxels of mask."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    ref = nib.Nifti1Image(np.zeros(mask.shape, np.uint8), affine)
    return BoldData(path=Path("mem.nii.gz"), reference=ref, mask=mask,
                    data=np.ascontiguousarray(data, dtype=np.float32), t_r=t_r, space=SPACE,
                    n_frames=data.shape[0], n_voxels_excluded={"nan": 0, "constant": 0},
                    mask_path=None)


def make_table(n: int, seed: int = 0, *, gs: bool = True) -> pd.DataFrame:
    """An fMRIPrep-like confounds table (random walks, n/a first derivatives)."""
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {}
    names = [*MOTION, "csf", "white_matter"] + (["global_signal"] if gs else [])
    for name in names:
        v = rng.standard_normal(n).cumsum()
        d = np.r_[np.nan, np.diff(v)]
        cols[name] = v
        cols[f"{name}_derivative1"] = d
        cols[f"{name}_power2"] = v**2
        cols[f"{name}_derivative1_power2"] = d**2
    fd = np.abs(rng.normal(0.1, 0.03, n))
    fd[0] = np.nan
    cols["framewise_displacement"] = fd
    cols["std_dvars"] = np.r_[np.nan, np.abs(rng.normal(1.0, 0.1, n - 1))]
    cols["cosine00"] = np.cos(np.pi * np.arange(n) / n)
    return pd.DataFrame(cols)


def line_mask(n_vox: int) -> np.ndarray:
    mask = np.zeros((n_vox, 1, 1), bool)
    mask[:] = True
    return mask


# ------------------------------------------------------------------ confound selection


def test_strategies_select_nilearn_columns():
    table = make_table(80)
    full_motion = MOTION + [f"{m}_{s}" for m in MOTION for s in SUFFIXES]
    _, names, _ = select_confounds(table, strategy="simple", global_signal=False)
    assert names == full_motion + ["csf", "white_matter"]
    assert len(names) == 26
    _, names, _ = select_confounds(table, strategy="scrubbing", global_signal=False)
    assert len(names) == 32 and "csf_derivative1_power2" in names
    _, names, _ = select_confounds(table, strategy="minimal", global_signal=False)
    assert names == MOTION + ["csf", "white_matter"]
    conf, names, mask = select_confounds(table, strategy="none", global_signal=False)
    assert conf is None and names == [] and mask is None
    assert not any(n.startswith("cosine") for n in names)


def test_global_signal_switch_changes_columns_and_is_recorded():
    table = make_table(80)
    on, names_on, _ = select_confounds(table, strategy="simple", global_signal=True)
    off, names_off, _ = select_confounds(table, strategy="simple", global_signal=False)
    assert names_on == names_off + ["global_signal"]
    assert on.shape == (80, 27) and off.shape == (80, 26)
    _, names_none, _ = select_confounds(table, strategy="none", global_signal=True)
    assert names_none == ["global_signal"]
    mask = line_mask(20)
    data = np.random.default_rng(0).standard_normal((80, 20))
    bold = make_bold(data, mask)
    _, info_on = clean_bold(bold, table, BoldCleaningParameters(
            global_signal_regression=True, smoothing_fwhm_mm=None, **NO_FLOOR))
    _, info_off = clean_bold(bold, table, BoldCleaningParameters(
            global_signal_regression=False, smoothing_fwhm_mm=None, **NO_FLOOR))
    assert info_on["global_signal"] is True and "global_signal" in info_on["confound_columns"]
    assert info_off["global_signal"] is False and "global_signal" not in info_off["confound_columns"]


def test_confounds_are_demeaned_and_first_row_filled():
    table = make_table(50)
    conf, names, _ = select_confounds(table, strategy="simple", global_signal=True)
    assert np.isfinite(conf).all()
    np.testing.assert_allclose(conf.mean(axis=0), 0, atol=1e-10)
    j = names.index("trans_x_derivative1")
    raw = table["trans_x_derivative1"].to_numpy()
    mean = np.r_[raw[1], raw[1:]].mean()
    assert conf[0, j] == pytest.approx(raw[1] - mean)


def _fmriprep_named_copy(folder: Path, table: pd.DataFrame) -> str:
    prefix = "sub-01_task-rest"
    table.to_csv(folder / f"{prefix}_desc-confounds_timeseries.tsv", sep="\t", na_rep="n/a",
                 index=False)
    (folder / f"{prefix}_desc-confounds_timeseries.json").write_text("{}")
    img = folder / f"{prefix}_space-{SPACE}_desc-preproc_bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((2, 2, 2, len(table)), np.float32), np.eye(4)), img)
    return str(img)


@pytest.mark.parametrize("strategy", ["simple", "scrubbing"])
def test_selection_matches_nilearn_load_confounds_strategy(tmp_path, strategy):
    from nilearn.interfaces.fmriprep import load_confounds_strategy

    table = make_table(60, seed=4)
    table["framewise_displacement"] = table["framewise_displacement"].astype(float)
    table.loc[[3, 20, 40, 43], "framewise_displacement"] = 1.0
    table.loc[50, "std_dvars"] = 2.0
    table["non_steady_state_outlier00"] = np.r_[1, np.zeros(59)]
    img = _fmriprep_named_copy(tmp_path, table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, expected_mask = load_confounds_strategy(img, strategy, global_signal="basic")
    # tmsnet reads the TSV as load_confounds_table does.
    read = pd.read_csv(tmp_path / "sub-01_task-rest_desc-confounds_timeseries.tsv", sep="\t",
                       na_values=["n/a"])
    conf, names, sample_mask = select_confounds(read, strategy=strategy, global_signal=True)
    expected = expected.drop(columns=[c for c in expected.columns if c.startswith("cosine")])
    assert sorted(names) == sorted(expected.columns)
    np.testing.assert_allclose(conf, expected[names].to_numpy(), atol=1e-10)
    np.testing.assert_array_equal(sample_mask, expected_mask)


def test_missing_global_signal_suggests_no_gsr():
    table = make_table(60, gs=False)
    with pytest.raises(ConfoundsError, match=r"'simple'.*global signal: global_signal.*--no-gsr"):
        select_confounds(table, strategy="simple", global_signal=True)
    conf, names, _ = select_confounds(table, strategy="simple", global_signal=False)
    assert "global_signal" not in names


def test_missing_expansions_suggest_minimal():
    table = make_table(60).drop(columns=[f"{m}_{s}" for m in MOTION for s in SUFFIXES])
    with pytest.raises(ConfoundsError, match=r"trans_x_derivative1.*strategy 'minimal'"):
        select_confounds(table, strategy="simple", global_signal=True)
    _, names, _ = select_confounds(table, strategy="minimal", global_signal=True)
    assert names == MOTION + ["csf", "white_matter", "global_signal"]


def test_missing_motion_and_scrubbing_columns_are_listed():
    table = make_table(60).drop(columns=["rot_z", "framewise_displacement"])
    with pytest.raises(ConfoundsError) as info:
        select_confounds(table, strategy="scrubbing", global_signal=False)
    msg = str(info.value)
    assert "'scrubbing'" in msg and "rot_z" in msg and "framewise_displacement" in msg
    assert "strategy 'none'" in msg


def test_old_fmriprep_names_are_recognised():
    table = pd.DataFrame({"X": np.zeros(60), "RotX": np.zeros(60),
                          "FramewiseDisplacement": np.zeros(60)})
    with pytest.raises(ConfoundsError, match="fMRIPrep < 1.2"):
        select_confounds(table, strategy="minimal", global_signal=False)


def test_nan_inside_a_confound_column():
    table = make_table(60)
    table.loc[30, "csf"] = np.nan
    with pytest.raises(ConfoundsError, match=r"\['csf'\].*rows \[30\]"):
        select_confounds(table, strategy="minimal", global_signal=False)


def test_unknown_strategy():
    with pytest.raises(UnknownMethodError, match="simple, scrubbing, minimal, none"):
        select_confounds(make_table(60), strategy="aroma")
    assert CONFOUND_STRATEGIES == ("simple", "scrubbing", "minimal", "none")


# -------------------------------------------------------------------------- scrubbing


def test_scrub_outliers_segment_rule():
    # Outliers at 2 (start segment 0-1 too short), 10 and 13 (2 frames between), 27 of 30
    # (end segment 28-29 too short).
    got = scrub_outliers(np.array([2, 10, 13, 27]), 30, 5)
    assert got.tolist() == [0, 1, 2, 10, 11, 12, 13, 27, 28, 29]
    assert scrub_outliers(np.array([10]), 30, 0).tolist() == [10]
    assert scrub_outliers(np.array([], int), 30, 5).tolist() == []


def test_scrubbing_drops_high_motion_frames():
    n = 120
    table = make_table(n)
    spikes = [30, 60, 90]
    table.loc[spikes, "framewise_displacement"] = 0.9
    _, _, sample_mask = select_confounds(table, strategy="scrubbing", global_signal=True,
                                         fd_threshold_mm=0.5)
    assert np.setdiff1d(np.arange(n), sample_mask).tolist() == spikes
    # A threshold above the spikes keeps everything.
    _, _, sample_mask = select_confounds(table, strategy="scrubbing", fd_threshold_mm=1.0)
    assert sample_mask is None
    data = np.random.default_rng(1).standard_normal((n, 30))
    cleaned, info = clean_bold(make_bold(data, line_mask(30)), table, BoldCleaningParameters(
            confound_strategy="scrubbing", smoothing_fwhm_mm=None, **NO_FLOOR))
    assert cleaned.shape == (n - 3, 30)
    assert info["censored_frames"] == spikes and info["n_frames_kept"] == n - 3
    assert info["fd_threshold_mm"] == 0.5 and info["std_dvars_threshold"] == 1.5
    assert info["scrub_min_segment"] == 5


def test_std_dvars_threshold_can_be_disabled():
    table = make_table(100)
    table.loc[50, "std_dvars"] = 3.0
    _, _, mask = select_confounds(table, strategy="scrubbing")
    assert 50 not in mask
    _, _, mask = select_confounds(table, strategy="scrubbing", std_dvars_threshold=math.inf)
    assert mask is None


def test_non_steady_state_frames_are_censored():
    table = make_table(80)
    table["non_steady_state_outlier00"] = np.r_[1, np.zeros(79)]
    table["non_steady_state_outlier01"] = np.r_[0, 1, np.zeros(78)]
    data = np.random.default_rng(2).standard_normal((80, 10))
    cleaned, info = clean_bold(make_bold(data, line_mask(10)), table, BoldCleaningParameters(
            smoothing_fwhm_mm=None, **NO_FLOOR))
    assert cleaned.shape == (78, 10)
    assert info["non_steady_state_frames"] == [0, 1] and info["censored_frames"] == [0, 1]


# ------------------------------------------------------------------ temporal cleaning


def test_planted_confound_is_regressed_out():
    n, v = 200, 40
    rng = np.random.default_rng(5)
    table = make_table(n)
    csf = table["csf"].to_numpy()
    signal = rng.standard_normal((n, v))
    data = 1000 + signal + 5.0 * csf[:, None] * rng.uniform(0.5, 2.0, v)
    bold = make_bold(data, line_mask(v))
    before = np.corrcoef(data[:, 0], csf)[0, 1]
    assert abs(before) > 0.9
    cleaned, info = clean_bold(bold, table, BoldCleaningParameters(
            confound_strategy="minimal", global_signal_regression=False, low_pass_hz=None,
            high_pass_hz=None, smoothing_fwhm_mm=None, **NO_FLOOR))
    assert "csf" in info["confound_columns"] and info["filter"] is None
    r = [np.corrcoef(cleaned[:, j], csf)[0, 1] for j in range(v)]
    assert np.max(np.abs(r)) < 1e-3
    # With the band-pass on, the confound is filtered like the data and removed.
    from nilearn.signal import clean

    csf_band = clean(csf[:, None], t_r=2.0, low_pass=0.1, high_pass=0.01, detrend=True,
                     standardize=None)[:, 0]
    kept_in, _ = clean_bold(bold, table, BoldCleaningParameters(
            confound_strategy="none", global_signal_regression=False, smoothing_fwhm_mm=None, **NO_FLOOR))
    assert abs(np.corrcoef(kept_in[:, 0], csf_band)[0, 1]) > 0.9
    cleaned, _ = clean_bold(bold, table, BoldCleaningParameters(
            confound_strategy="minimal", global_signal_regression=False, smoothing_fwhm_mm=None,
            **NO_FLOOR))
    r = [np.corrcoef(cleaned[:, j], csf_band)[0, 1] for j in range(v)]
    assert np.max(np.abs(r)) < 1e-3


def _amplitude(x: np.ndarray, freq: float, t: np.ndarray) -> float:
    basis = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(*coef))


def test_band_pass_keeps_005hz_removes_02hz_and_drift():
    t_r, n = 1.0, 600
    t = np.arange(n) * t_r
    keep = np.sin(2 * np.pi * 0.05 * t)
    fast = np.sin(2 * np.pi * 0.2 * t + 0.3)
    drift = 0.02 * t
    data = np.column_stack([keep + fast + drift, 2 * keep - fast - drift])
    bold = make_bold(data, line_mask(2), t_r=t_r)
    cleaned, info = clean_bold(bold, None, BoldCleaningParameters(
            confound_strategy="none", global_signal_regression=False, smoothing_fwhm_mm=None,
            standardize=None, **NO_FLOOR))
    assert info["filter"] == "butterworth" and info["filter_order"] == 5
    inner = slice(100, 500)  # away from filter edges
    for j, gain in enumerate((1.0, 2.0)):
        y = cleaned[inner, j].astype(float)
        tt = t[inner]
        assert _amplitude(y, 0.05, tt) == pytest.approx(gain, rel=0.05)
        assert _amplitude(y, 0.2, tt) < 0.01 * gain
        slope = np.polyfit(tt, y, 1)[0]
        assert abs(slope) < 1e-3 * 0.02 * 100
    assert np.corrcoef(cleaned[inner, 0], keep[inner])[0, 1] > 0.99


def test_standardized_output_is_zscored_float32():
    data = np.random.default_rng(6).standard_normal((100, 50)) * 30 + 500
    cleaned, info = clean_bold(make_bold(data, line_mask(50)), make_table(100), BoldCleaningParameters(
            smoothing_fwhm_mm=None, **NO_FLOOR))
    assert cleaned.dtype == np.float32 and cleaned.shape == (100, 50)
    np.testing.assert_allclose(cleaned.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(cleaned.std(axis=0, ddof=1), 1, atol=1e-4)
    assert info["standardize"] == "zscore_sample"


@pytest.mark.parametrize(("strategy", "mean", "sd"), [
    ("simple", 800.0, 20.0), ("scrubbing", 800.0, 20.0), ("none", 800.0, 20.0),
    ("simple", 20000.0, 5.0),  # float32 rounding must not scale with the BOLD mean
])
def test_matches_nilearn_signal_clean(strategy, mean, sd):
    from nilearn.signal import clean

    n, v = 150, 60
    rng = np.random.default_rng(7)
    table = make_table(n, seed=3)
    # Interior censored frames whose mirrors (n - 1 - i) are kept; nilearn 0.14
    # interpolates only those (see the module docstring).
    table.loc[[40, 41, 100], "framewise_displacement"] = 1.0
    data = mean + sd * rng.standard_normal((n, v)) + np.linspace(0, 1.5 * sd, n)[:, None]
    data = data.astype(np.float32).astype(np.float64)  # what BoldData holds
    bold = make_bold(data, line_mask(v))
    cleaned, info = clean_bold(bold, table, BoldCleaningParameters(
            confound_strategy=strategy, smoothing_fwhm_mm=None, **NO_FLOOR))
    conf, _, sample_mask = select_confounds(table, strategy=strategy, global_signal=True)
    expected = clean(data, confounds=conf, sample_mask=sample_mask, t_r=2.0, low_pass=0.1,
                     high_pass=0.01, detrend=True, standardize="zscore_sample",
                     extrapolate=False)
    assert cleaned.shape == expected.shape
    np.testing.assert_allclose(cleaned, expected, atol=5e-5)


def test_censored_frames_do_not_influence_the_result():
    """Values in censored frames (also mirror-symmetric ones, i and n-1-i) are ignored."""
    n, v = 120, 20
    rng = np.random.default_rng(14)
    table = make_table(n)
    censored = [30, 31, n - 1 - 30, n - 1 - 31, 70]
    table.loc[censored, "framewise_displacement"] = 1.5
    table["framewise_displacement"] = table["framewise_displacement"].astype(float)
    data = 1000 + 10 * rng.standard_normal((n, v))
    spiky = data.copy()
    spiky[censored] += 5000.0
    kwargs = {"confound_strategy": "scrubbing", "smoothing_fwhm_mm": None, **NO_FLOOR}
    clean_a, info = clean_bold(make_bold(data, line_mask(v)), table, BoldCleaningParameters(**kwargs))
    clean_b, _ = clean_bold(make_bold(spiky, line_mask(v)), table, BoldCleaningParameters(**kwargs))
    assert info["censored_frames"] == sorted(censored)
    np.testing.assert_allclose(clean_a, clean_b, atol=1e-4)


def test_discard_frames():
    n = 100
    data = np.random.default_rng(8).standard_normal((n, 10))
    table = make_table(n)
    bold = make_bold(data, line_mask(10))
    cleaned, info = clean_bold(bold, table, BoldCleaningParameters(
            discard_frames=5, smoothing_fwhm_mm=None, **NO_FLOOR))
    assert cleaned.shape == (95, 10)
    assert info["discarded_frames"] == 5 and info["n_frames_kept"] == 95
    assert info["n_frames_total"] == 100
    # Same as cleaning the cropped run with the cropped table.
    cropped = make_bold(data[5:], line_mask(10))
    again, _ = clean_bold(cropped, table.iloc[5:].reset_index(drop=True), BoldCleaningParameters(
            smoothing_fwhm_mm=None, **NO_FLOOR))
    np.testing.assert_allclose(cleaned, again, atol=1e-5)
    with pytest.raises(InvalidParameterError, match="discard_frames"):
        clean_bold(bold, table, BoldCleaningParameters(discard_frames=100))


def test_input_is_not_modified():
    data = np.random.default_rng(9).standard_normal((80, 27)).astype(np.float32)
    mask = np.ones((3, 3, 3), bool)
    bold = make_bold(data, mask)
    before = bold.data.copy()
    clean_bold(bold, make_table(80), BoldCleaningParameters(**NO_FLOOR))
    np.testing.assert_array_equal(bold.data, before)


def test_too_few_frames_after_scrubbing_and_discarding():
    n = 80
    table = make_table(n)
    table.loc[10:40, "framewise_displacement"] = 2.0
    data = np.random.default_rng(10).standard_normal((n, 5))
    bold = make_bold(data, line_mask(5))
    with pytest.raises(ScanTooShortError,
                       match=r"After discarding 0 initial frames and censoring 31, the BOLD "
                             r"has 49 frames.*at least 50 frames"):
        clean_bold(bold, table, BoldCleaningParameters(confound_strategy="scrubbing"))
    with pytest.raises(ScanTooShortError, match=r"discarding 40 initial frames.*40 frames"):
        clean_bold(bold, make_table(n), BoldCleaningParameters(discard_frames=40))
    table.loc[:, "framewise_displacement"] = 2.0
    with pytest.raises(ScanTooShortError, match="no frame left"):
        clean_bold(bold, table, BoldCleaningParameters(confound_strategy="scrubbing", **NO_FLOOR))


def test_no_table_requires_strategy_none_without_gsr():
    data = np.random.default_rng(11).standard_normal((60, 5))
    bold = make_bold(data, line_mask(5))
    with pytest.raises(ConfoundsError, match="--no-gsr"):
        clean_bold(bold, None, BoldCleaningParameters(**NO_FLOOR))
    cleaned, info = clean_bold(bold, None, BoldCleaningParameters(
            confound_strategy="none", global_signal_regression=False, smoothing_fwhm_mm=None, **NO_FLOOR))
    assert cleaned.shape == (60, 5) and info["confound_columns"] == []


def test_table_row_mismatch():
    bold = make_bold(np.zeros((60, 5)) + np.arange(60)[:, None], line_mask(5))
    with pytest.raises(ConfoundsError, match="has 59 rows but the BOLD has 60 frames"):
        clean_bold(bold, make_table(59), BoldCleaningParameters(**NO_FLOOR))


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"low_pass_hz": 0.01, "high_pass_hz": 0.1}, "must be below low_pass_hz"),
        ({"low_pass_hz": 0.3}, "Nyquist"),
        ({"high_pass_hz": -0.01}, "must be > 0 and <= 10 Hz"),
        ({"smoothing_fwhm_mm": -1.0}, ">= 0 and <= 50 mm"),
        ({"standardize": "psc"}, "zscore_sample"),
        ({"confound_strategy": "compcor"}, "Unknown confound strategy"),
    ],
)
def test_invalid_parameters(kwargs, phrase):
    bold = make_bold(np.random.default_rng(0).standard_normal((60, 5)), line_mask(5))
    with pytest.raises((InvalidParameterError, UnknownMethodError), match=phrase):
        clean_bold(bold, make_table(60), BoldCleaningParameters(**kwargs, **NO_FLOOR))


def test_parameters_are_json_serialisable(tmp_path):
    table = make_table(80)
    table.loc[40, "framewise_displacement"] = 1.0
    bold = make_bold(np.random.default_rng(0).standard_normal((80, 27)),
                     np.ones((3, 3, 3), bool))
    _, info = clean_bold(bold, table, BoldCleaningParameters(confound_strategy="scrubbing", **NO_FLOOR))
    path = atomic_write_json(tmp_path / "p.json", info)
    loaded = json.loads(path.read_text())
    assert loaded["smoothing_fwhm_mm"] == 6.0 and loaded["censored_frames"] == [40]
    for key in ("confound_strategy", "global_signal", "confound_columns", "low_pass_hz",
                "high_pass_hz", "discarded_frames", "n_frames_kept", "smoothing_sigma_voxels"):
        assert key in loaded


# -------------------------------------------------------------------------- smoothing


def _fwhm_of_profile(profile: np.ndarray, voxel_mm: float) -> float:
    x = np.arange(profile.size) - np.argmax(profile)
    w = profile / profile.sum()
    var = float((w * x**2).sum() - (w * x).sum() ** 2)
    return math.sqrt(8 * math.log(2) * var) * voxel_mm


@pytest.mark.parametrize(("fwhm", "voxel"), [(6.0, 2.0), (8.0, 3.0), (4.0, 1.0)])
def test_smoothing_impulse_has_requested_fwhm(fwhm, voxel):
    shape = (41, 41, 41)
    mask = np.ones(shape, bool)
    impulse = np.zeros(shape, np.float32)
    impulse[20, 20, 20] = 1.0
    data = impulse[mask][None, :]
    affine = np.diag([voxel, voxel, voxel, 1.0])
    out = smooth_in_mask(data, mask, affine, fwhm)
    vol = np.zeros(shape, np.float32)
    vol[mask] = out[0]
    assert vol.sum() == pytest.approx(1.0, rel=1e-4)
    for axis in range(3):
        profile = vol.sum(axis=tuple(a for a in range(3) if a != axis))
        assert _fwhm_of_profile(profile, voxel) == pytest.approx(fwhm, rel=0.02)


def test_clean_bold_smoothing_fwhm_end_to_end():
    shape = (31, 31, 31)
    mask = np.ones(shape, bool)
    frames = np.zeros((3, mask.sum()), np.float32)
    centre = np.ravel_multi_index((15, 15, 15), shape)
    frames[:, centre] = [1.0, 2.0, 3.0]
    bold = make_bold(frames, mask, voxel_mm=2.0)
    cleaned, info = clean_bold(bold, None, BoldCleaningParameters(
            confound_strategy="none", global_signal_regression=False, low_pass_hz=None, high_pass_hz=None,
            detrend=False, standardize=None, smoothing_fwhm_mm=6.0, **NO_FLOOR))
    np.testing.assert_allclose(info["smoothing_sigma_voxels"], [6 / 2.3548200450309493 / 2] * 3,
                               rtol=1e-6)
    vol = np.zeros(shape)
    vol[mask] = cleaned[2]
    assert _fwhm_of_profile(vol.sum(axis=(1, 2)), 2.0) == pytest.approx(6.0, rel=0.02)
    assert vol.sum() == pytest.approx(3.0, rel=1e-4)


def test_smoothing_equals_nilearn_up_to_a_per_voxel_factor():
    from nilearn.image import smooth_img

    rng = np.random.default_rng(12)
    shape = (14, 15, 16)
    ijk = np.indices(shape)
    mask = ((ijk[0] - 7) ** 2 + (ijk[1] - 7) ** 2 + (ijk[2] - 8) ** 2) <= 36
    mask[0, :, :] |= True  # touches the grid edge (reflect boundary)
    affine = np.diag([2.0, 2.5, 3.0, 1.0])
    data = rng.standard_normal((4, int(mask.sum()))).astype(np.float32)
    ours = smooth_in_mask(data, mask, affine, 5.0, n_jobs=2)
    vol = np.zeros((*shape, 4), np.float32)
    vol[mask] = data.T
    ref = smooth_img(nib.Nifti1Image(vol, affine), 5.0).get_fdata()[mask].T
    weight = smooth_img(nib.Nifti1Image(mask.astype(np.float32), affine), 5.0).get_fdata()[mask]
    np.testing.assert_allclose(ours, ref / weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fwhm_to_sigma_voxels(5.0, affine),
                               5.0 / np.sqrt(8 * np.log(2)) / np.array([2.0, 2.5, 3.0]))


def test_smoothing_keeps_a_constant_field_constant_at_the_brain_edge():
    shape = (12, 12, 12)
    ijk = np.indices(shape)
    mask = ((ijk - 5.5) ** 2).sum(0) <= 16
    data = np.full((2, int(mask.sum())), 7.0, np.float32)
    out = smooth_in_mask(data, mask, np.diag([2.0, 2, 2, 1]), 8.0)
    np.testing.assert_allclose(out, 7.0, rtol=1e-5)


# ------------------------------------------------------------------------ end to end


def test_load_then_clean_on_files(tmp_path):
    shape, n = (10, 10, 10), 300  # 300 frames: 27 confounds leave the 0.01-0.1 Hz band room
    ijk = np.indices(shape)
    mask = ((ijk - 4.5) ** 2).sum(0) <= 16
    rng = np.random.default_rng(13)
    table = make_table(n)
    data = np.zeros((*shape, n), np.float32)
    csf = table["csf"].to_numpy()
    neural = np.sin(2 * np.pi * 0.04 * np.arange(n) * 2.0 + 0.3)  # 0.04 Hz, inside the 0.01-0.1 Hz band
    data[mask] = 1000 + 5 * rng.standard_normal((int(mask.sum()), n)) + 20 * csf + 10 * neural
    img = nib.Nifti1Image(data, np.diag([2.0, 2, 2, 1]))
    img.header.set_zooms((2.0, 2.0, 2.0, 2.0))
    prefix = f"sub-01_task-rest_space-{SPACE}"
    bold_path = tmp_path / f"{prefix}_desc-preproc_bold.nii.gz"
    nib.save(img, bold_path)
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine),
             tmp_path / f"{prefix}_desc-brain_mask.nii.gz")
    conf_path = tmp_path / "my_confounds.tsv"  # arbitrary name: no fMRIPrep naming needed
    table.to_csv(conf_path, sep="\t", na_rep="n/a", index=False)
    bold = load_bold(bold_path)
    loaded = load_confounds_table(conf_path, n_frames=bold.n_frames)
    timings: dict[str, float] = {}
    cleaned, info = clean_bold(bold, loaded, timings=timings)
    assert cleaned.shape == (n, int(mask.sum())) and np.isfinite(cleaned).all()
    assert set(timings) >= {"confounds", "smoothing", "temporal"}
    assert info["n_confounds"] == 27 and info["global_signal"] is True
    # the planted CSF signal is removed and the planted neural signal survives; both are compared
    # after the same band-pass (nilearn, the reference implementation), as the data were filtered
    from nilearn.signal import clean

    band = {"t_r": 2.0, "low_pass": 0.1, "high_pass": 0.01, "detrend": True, "standardize": None}
    csf_band, neural_band = clean(np.column_stack([csf, neural]), **band).T
    raw = data[mask].T.astype(float)
    r_csf_before = np.array([np.corrcoef(clean(raw[:, [j]], **band)[:, 0], csf_band)[0, 1] for j in range(5)])
    r_csf = np.array([np.corrcoef(cleaned[:, j], csf_band)[0, 1] for j in range(cleaned.shape[1])])
    r_neural = np.array([np.corrcoef(cleaned[:, j], neural_band)[0, 1] for j in range(cleaned.shape[1])])
    print(f"r(csf) before {np.abs(r_csf_before).min():.3f}, after max {np.abs(r_csf).max():.2e}; "
          f"r(neural) after min {r_neural.min():.3f}")
    assert np.abs(r_csf_before).min() > 0.9  # planted: the CSF signal dominates before cleaning
    assert np.abs(r_csf).max() < 1e-3  # measured 2.8e-7 (before: 0.97)
    assert r_neural.min() > 0.7  # measured 0.863
