"""Pulse window interpolation, decay fit, pulse detection, reading formats."""

import mne
import numpy as np
import pandas as pd
import pytest

from tmsnet.eeg.cleaning import detect_bad_channels, detect_bad_trials
from tmsnet.eeg.io import detect_pulses, find_pulses, read_eeg, read_events_file
from tmsnet.eeg.pulse import fit_decay, interpolate_pulse_window, interpolate_window_array
from tmsnet.exceptions import EEGDataError, InputFileNotFoundError, InvalidParameterError
from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg


@pytest.fixture(scope="module")
def small():
    return simulate_tms_eeg(EegSimulationParameters(n_trials=12, sfreq=1000.0, annotate=False), seed=5)


def test_cubic_interpolation_is_exact_for_a_cubic():
    times = np.arange(-50, 51) / 1000.0
    poly = 3 + 40 * times - 900 * times**2 + 2e4 * times**3
    data = np.tile(poly, (2, 3, 1)).copy()
    data[..., (times >= -0.002) & (times <= 0.010)] = 1e4  # the pulse
    interpolate_window_array(data, times, cut=(-0.002, 0.010), flank_s=(0.003, 0.003))
    np.testing.assert_allclose(data[0, 0], poly, atol=1e-9)


def test_interpolation_modes_and_errors():
    info = mne.create_info(["Cz", "Pz"], 1000.0, "eeg")
    data = np.ones((3, 2, 201))
    data[:, :, 101:110] = 50.0
    ep = mne.EpochsArray(data, info, tmin=-0.1, verbose=False)
    out = interpolate_pulse_window(ep.copy(), cut=(0.0005, 0.0095), flank_s=(0.003, 0.003))
    assert np.allclose(out.get_data(), 1.0)
    for mode in ("linear", "constant"):
        out = interpolate_pulse_window(ep.copy(), cut=(0.0, 0.010), method=mode)
        assert np.abs(out.get_data()[:, :, 101:110]).max() < 50.0
    with pytest.raises(InvalidParameterError, match="method"):
        interpolate_pulse_window(ep.copy(), method="spline")
    with pytest.raises(InvalidParameterError, match="outside"):
        interpolate_pulse_window(ep.copy(), cut=(0.05, 0.2))
    with pytest.raises(InvalidParameterError, match="Too few samples"):
        interpolate_window_array(ep.get_data(), ep.times, cut=(-0.002, 0.010), flank_s=(0.001, 0.0))


@pytest.mark.parametrize("model,taus", [("exp", (0.02,)), ("double", (0.005, 0.06))])
def test_decay_fit_recovers_time_constants(model, taus):
    t = np.arange(-100, 600) / 1000.0
    amps = np.array([[40.0], [-25.0]]) if model == "exp" else np.array([[40.0, 10.0], [-25.0, -8.0]])
    y = 2.0 + sum(amps[:, k, None] * np.exp(-np.clip(t, 0, None) / tau) for k, tau in enumerate(taus))
    fit = fit_decay(y, t, model=model, window_s=(0.011, 0.5))
    np.testing.assert_allclose(fit.taus_s, np.tile(taus, (2, 1)), rtol=1e-3)
    np.testing.assert_allclose(fit.amplitudes, amps, rtol=1e-2)
    assert np.all(fit.r2 > 0.9999)
    with pytest.raises(InvalidParameterError):
        fit_decay(y, t, model="triple")


def test_pulse_detection_matches_planted(small):
    for rule in ("slope", "amplitude"):
        ev = detect_pulses(small.raw, rule=rule)
        np.testing.assert_array_equal(ev[:, 0], small.truth.pulse_samples)
    flat = mne.io.RawArray(np.zeros((2, 5000)) + 1e-6 * np.random.default_rng(0).standard_normal(
        (2, 5000)), mne.create_info(["Cz", "Pz"], 1000.0, "eeg"), verbose=False)
    with pytest.raises(EEGDataError, match="No TMS pulse"):
        detect_pulses(flat, threshold=1.0)
    events, source = find_pulses(small.raw)  # no annotation, no stim channel: detection
    assert source == "detected" and len(events) == 12


def test_bad_channel_and_trial_detection(small):
    raw = small.raw.copy()
    raw._data[5] += 80e-6 * np.random.default_rng(1).standard_normal(raw.n_times)
    ep = mne.Epochs(raw, small.events, tmin=-1, tmax=1, baseline=None, preload=True, verbose=False)
    assert detect_bad_channels(ep) == [raw.ch_names[5]]
    ep._data[3] += 300e-6 * np.random.default_rng(2).standard_normal(ep._data[3].shape)
    assert detect_bad_trials(ep) == [3]


def test_formats_and_events(small, tmp_path):
    raw = small.raw.copy().crop(0, 10)
    fif = tmp_path / "rec_raw.fif"
    raw.save(fif, verbose=False)
    edf = tmp_path / "rec.edf"
    mne.export.export_raw(edf, raw, fmt="edf", verbose=False)
    setf = tmp_path / "rec.set"
    mne.export.export_raw(setf, raw, fmt="eeglab", verbose=False)
    for path in (fif, edf, setf):
        r = read_eeg(path)
        assert r.ch_names[:3] == raw.ch_names[:3]
        # positions come from the file or the standard montage
        assert np.isfinite(r.info["chs"][0]["loc"][:3]).all() and np.any(r.info["chs"][0]["loc"][:3])
    tsv = tmp_path / "sub-01_task-tms_events.tsv"
    onsets = small.truth.pulse_samples[:3] / raw.info["sfreq"]
    pd.DataFrame({"onset": onsets, "duration": 0, "trial_type": "tms"}).to_csv(tsv, sep="\t",
                                                                                index=False)
    ev = read_events_file(tsv, sfreq=raw.info["sfreq"])
    np.testing.assert_array_equal(ev[:, 0], small.truth.pulse_samples[:3])
    r = read_eeg(fif)
    events, source = find_pulses(r, events_file=tsv)
    assert "events file" in source and len(events) == 3
    with pytest.raises(InputFileNotFoundError):
        read_eeg(tmp_path / "missing.vhdr")
    junk = tmp_path / "junk.vhdr"
    junk.write_text("not a header")
    with pytest.raises(EEGDataError, match="cannot read"):
        read_eeg(junk)


def test_bids_eeg(small, tmp_path):
    from mne_bids import BIDSPath, write_raw_bids

    raw = small.raw.copy().crop(0, 8)
    raw.set_annotations(mne.Annotations(small.truth.pulse_samples[:3] / 1000.0, 0.0, "TMS"))
    raw.info["line_freq"] = 50.0
    fif = tmp_path / "src_raw.fif"
    raw.save(fif, verbose=False)
    bp = BIDSPath(subject="07", task="tms", root=tmp_path / "bids", datatype="eeg")
    write_raw_bids(mne.io.read_raw_fif(fif, verbose=False), bp, format="EEGLAB",
                   allow_preload=False, verbose=False, overwrite=True)
    r = read_eeg(bp)
    events, source = find_pulses(r, annotation="TMS")
    assert len(events) == 3 and "annotation" in source
