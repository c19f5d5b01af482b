"""Natural frequency, synchronization, propagation and condition comparison on planted data."""

import mne
import numpy as np
import pytest

from tmsnet.eeg.compare import compare_conditions
from tmsnet.eeg.io import standard_montage
from tmsnet.eeg.oscillations import ersp_itc, natural_frequency
from tmsnet.eeg.propagation import propagation
from tmsnet.eeg.synchrony import synchrony_pre_post
from tmsnet.exceptions import InvalidParameterError
from tmsnet.simulate.eeg import CHANNELS_32

SFREQ = 250.0
TIMES = np.arange(-1.0, 1.0, 1 / SFREQ)
NAMES = list(CHANNELS_32[:16])


def epochs_from(data):
    info = mne.create_info(NAMES, SFREQ, "eeg")
    info.set_montage(standard_montage())
    return mne.EpochsArray(data, info, tmin=TIMES[0], verbose=False)


def noise(rng, n_trials=40, scale=1e-6):
    return scale * rng.standard_normal((n_trials, len(NAMES), TIMES.size))


def test_natural_frequency_recovers_planted_oscillation():
    rng = np.random.default_rng(0)
    data = noise(rng)
    post = TIMES >= 0
    osc = np.where(post, np.sin(2 * np.pi * 22.0 * TIMES) * np.exp(-np.clip(TIMES, 0, None) / 0.1), 0)
    data[:, :4] += 4e-6 * osc
    tf = ersp_itc(epochs_from(data), decim=2)
    nat = natural_frequency(tf, channels=NAMES[:4])
    assert abs(nat["frequency_hz"] - 22.0) <= 2.0
    assert nat["ersp_db"] > 3.0
    # phase-locked: ITC high at 22 Hz after the pulse, low in the baseline
    f = int(np.argmin(np.abs(tf.freqs - 22)))
    post_itc = tf.itc[:4, f, (tf.times > 0.03) & (tf.times < 0.15)].mean()
    base_itc = tf.itc[:4, f, (tf.times > -0.45) & (tf.times < -0.15)].mean()
    assert post_itc > 0.7 > 0.4 > base_itc
    with pytest.raises(InvalidParameterError):
        natural_frequency(tf, channels=["XX"])


def test_synchrony_rises_after_pulse_for_lagged_coupling():
    rng = np.random.default_rng(1)
    data = noise(rng, n_trials=30)
    post = (TIMES >= 0.02) & (TIMES < 0.42)
    phases = rng.uniform(0, 2 * np.pi, 30)
    for k, ph in enumerate(phases):  # 10 Hz, random phase per trial, fixed 90 degree lag
        data[k, 0, post] += 3e-6 * np.sin(2 * np.pi * 10 * TIMES[post] + ph)
        data[k, 1, post] += 3e-6 * np.sin(2 * np.pi * 10 * TIMES[post] + ph - np.pi / 2)
    summary, mats = synchrony_pre_post(epochs_from(data), bands={"alpha": (8, 13), "beta": (20, 30)})
    w = mats["wpli"]
    assert w["post"][0, 1, 0] > 0.8 and w["pre"][0, 1, 0] < 0.5
    assert w["post"][0, 1, 1] < 0.6  # no coupling in beta
    row = summary.query("method == 'wpli' and band == 'alpha'").iloc[0]
    assert row["change"] > 0
    with pytest.raises(InvalidParameterError, match="equal lengths"):
        synchrony_pre_post(epochs_from(data), pre=(-0.5, -0.1), post=(0.0, 0.2))


def test_propagation_onsets_follow_planted_delays():
    rng = np.random.default_rng(2)
    data = noise(rng, n_trials=40)
    planted = {0: 0.040, 1: 0.080, 2: 0.120, 3: 0.160}
    for ch, onset in planted.items():
        data[:, ch] += 3e-6 * ((TIMES >= onset) & (TIMES < onset + 0.1))
    prop = propagation(epochs_from(data), alpha=0.01)
    for ch, onset in planted.items():
        assert abs(prop.onset_ms[NAMES[ch]] - onset * 1000) <= 8
    silent = [prop.onset_ms[n] for n in NAMES[4:]]
    assert sum(np.isfinite(silent)) <= 1
    assert prop.summary()["n_channels_active"] >= 4
    assert prop.spread.max() == pytest.approx(2 / 16, abs=1 / 16)


def test_compare_detects_planted_change_and_not_noise():
    rng = np.random.default_rng(3)
    bump = np.exp(-0.5 * ((TIMES - 0.1) / 0.015) ** 2)
    topo = np.zeros(len(NAMES))
    topo[[NAMES.index(c) for c in ("C3", "FC1", "FC5", "Cz")]] = 1.0
    a = noise(rng) + 3e-6 * topo[None, :, None] * bump
    b = noise(rng) + 6e-6 * topo[None, :, None] * bump
    res = compare_conditions(epochs_from(a), epochs_from(b), n_permutations=200, random_seed=0)
    assert res.clusters["p_value"].iloc[0] < 0.05
    assert 60 <= res.clusters["tmin_ms"].iloc[0] and res.clusters["tmax_ms"].iloc[0] <= 140
    assert res.summary()["gmfp_significant_ms"] is not None
    n100 = res.peaks.query("measure == 'gmfp' and component == 'N100'").iloc[0]
    assert n100["amplitude_diff_uv"] > 0.5
    null = compare_conditions(epochs_from(noise(rng) + 3e-6 * topo[None, :, None] * bump),
                              epochs_from(noise(rng) + 3e-6 * topo[None, :, None] * bump),
                              n_permutations=200, random_seed=0)
    assert null.summary()["min_cluster_p"] > 0.05
