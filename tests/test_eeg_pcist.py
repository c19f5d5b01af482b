"""PCIst against the reference cross-check values of REFERENCES.md section 2."""

import numpy as np
import pytest

from tmsnet.eeg.pcist import pcist
from tmsnet.exceptions import InvalidParameterError


def reference_input():
    times = np.arange(-600, 600, dtype=float)
    t = times / 1000.0
    ch = np.arange(32, dtype=float)[:, None]
    n = np.arange(times.size, dtype=float)[None, :]
    h = np.sin(12.9898 * (ch + 1) + 78.233 * n) * 43758.5453
    noise = 2.0 * (h - np.floor(h)) - 1.0
    post = (t >= 0).astype(float)[None, :]
    s1 = post * np.exp(-t / 0.040) * np.sin(2 * np.pi * 25 * t)
    s2 = post * np.exp(-t / 0.120) * np.sin(2 * np.pi * 8 * t + 0.5)
    s3 = post * np.exp(-((t - 0.100) / 0.030) ** 2)
    w1 = np.cos(0.7 * ch)
    w2 = np.sin(0.3 * ch + 0.2)
    w3 = np.cos(0.11 * ch * ch)
    evoked = 5.0 * w1 * s1 + 3.0 * w2 * s2 + 4.0 * w3 * s3 + 0.5 * noise
    return evoked, times


def test_reference_defaults():
    evoked, times = reference_input()
    res = pcist(evoked, times)
    assert res.value == pytest.approx(221.66423129251706, rel=1e-9)
    assert res.n_components == 11
    assert res.value == pytest.approx(res.dnst.sum())


def test_reference_min_snr_2_k_1():
    evoked, times = reference_input()
    res = pcist(evoked, times, min_snr=2.0, k=1.0)
    assert res.value == pytest.approx(61.94666666666667, rel=1e-9)


def pcist_by_definition(x, times, *, end_included, baseline=(-400.0, -50.0), response=(0.0, 300.0),
                        k=1.2, min_snr=1.1, max_var=99.0, n_steps=100):
    """PCIst written out from its definition (REFERENCES.md section 2; Comolatti et al. 2019).

    Brute force and independent of tmsnet.eeg.pcist: explicit recurrence matrices
    ``D <= threshold`` and their row-wise sign changes at every threshold.
    ``end_included``: the MATLAB convention (w0 <= t <= w1) or the reference
    Python one (w0 <= t < w1).
    """
    def window(w):
        return (times >= w[0]) & ((times <= w[1]) if end_included else (times < w[1]))

    b, r = window(baseline), window(response)
    _, s, vt = np.linalg.svd(x[:, r].T, full_matrices=False)
    var = 100.0 * s**2 / np.sum(s**2)
    comps = vt[: int(np.argmax(np.cumsum(var) >= max_var)) + 1] @ x
    snr = np.sqrt((comps[:, r] ** 2).mean(axis=1) / (comps[:, b] ** 2).mean(axis=1))
    total = 0.0
    for c in comps[snr > min_snr]:
        db = np.abs(c[b][:, None] - c[b][None])
        dr = np.abs(c[r][:, None] - c[r][None])
        thr = np.linspace(np.median(db), dr.max(), n_steps)

        def nst(d, thr=thr):
            rec = d[None] <= thr[:, None, None]
            return np.abs(np.diff(rec, axis=2)).sum(axis=(1, 2)) / d.shape[0] ** 2

        total += max(float(np.max(nst(dr) - k * nst(db))) * int(r.sum()), 0.0)
    return total


def test_definition_reproduces_the_reference_value():
    # anchors the brute-force definition above on the reference implementation's number
    evoked, times = reference_input()
    value = pcist_by_definition(evoked, times, end_included=False)
    assert value == pytest.approx(221.66423129251706, rel=1e-9)


def test_inclusive_convention_matches_its_definition():
    """MATLAB convention: every sample with w0 <= t <= w1 (351 baseline, 301 response samples at 1 kHz)."""
    evoked, times = reference_input()
    inc = pcist(evoked, times, convention="inclusive")
    assert inc.parameters["convention"] == "inclusive"
    expected = pcist_by_definition(evoked, times, end_included=True)
    assert inc.value == pytest.approx(expected, rel=1e-9)  # measured: 219.817 (reference 221.664)
    # a small planted case with other windows and parameters, ends on samples
    t = np.arange(-300.0, 200.0, 2.0)  # 500 Hz
    ch = np.arange(6.0)[:, None]
    post = (t >= 0)[None] * np.exp(-t[None] / 60.0)
    small = (np.cos(0.9 * ch) * post * np.sin(2 * np.pi * t[None] / 50.0)
             + np.sin(0.4 * ch + 1) * post * np.cos(2 * np.pi * t[None] / 120.0)
             + 0.2 * np.sin(7.1 * (ch + 1) * np.arange(t.size)[None]))
    kw = {"baseline": (-250.0, -20.0), "response": (0.0, 150.0), "k": 1.0, "min_snr": 1.5}
    got = pcist(small, t, convention="inclusive", **kw).value
    assert got > 0
    assert got == pytest.approx(pcist_by_definition(small, t, end_included=True, **kw), rel=1e-9)
    assert pcist(small, t, **kw).value == pytest.approx(
        pcist_by_definition(small, t, end_included=False, **kw), rel=1e-9)


_TIMES = np.arange(-600.0, 600.0)  # ms, 1 kHz


def _trial_average(seed, amplitude, n_trials=40):
    """Trial average of a planted response (REFERENCES.md section 2 input) in correlated background.

    The background is 6 temporally smoothed sources mixed into 32 channels plus white sensor
    noise, drawn with ``seed``; ``amplitude`` 0 gives a recording without a planted response.
    """
    from scipy.ndimage import uniform_filter1d

    t = _TIMES / 1000.0
    ch = np.arange(32, dtype=float)[:, None]
    post = (t >= 0).astype(float)[None, :]
    response = (5.0 * np.cos(0.7 * ch) * post * np.exp(-t / 0.040) * np.sin(2 * np.pi * 25 * t)
                + 3.0 * np.sin(0.3 * ch + 0.2) * post * np.exp(-t / 0.120) * np.sin(2 * np.pi * 8 * t + 0.5)
                + 4.0 * np.cos(0.11 * ch * ch) * post * np.exp(-((t - 0.100) / 0.030) ** 2))
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((32, 6))
    sources = 20.0 * uniform_filter1d(rng.standard_normal((n_trials, 6, t.size)), 8, axis=2)
    background = np.einsum("cs,nst->nct", mixing, sources) + rng.standard_normal((n_trials, 32, t.size))
    return (background + amplitude * response).mean(axis=0)


def test_planted_response_beats_the_noise_only_baseline():
    """Noise alone scores above zero (REFERENCES.md section 2), so ``value > 0`` proves nothing:
    the same pipeline (trial average -> PCIst) on the same background without the planted
    response is the baseline, seed by seed."""
    seeds = range(8)
    noise = np.array([pcist(_trial_average(s, 0.0), _TIMES).value for s in seeds])
    planted = np.array([pcist(_trial_average(s, 2.0), _TIMES).value for s in seeds])
    print("noise only", noise.round(1), "planted", planted.round(1))
    # measured: noise only 0-12.8 (median 5.6), planted 21.1-45.0 (median 31.6), paired gap >= 16.6
    assert noise.max() > 0  # the baseline is not zero: noise alone scores
    assert planted.min() > 1.5 * noise.max()
    assert np.median(planted) > 4.0 * np.median(noise)
    assert np.all(planted - noise >= 8.0)


def test_scale_free_and_sign_free():
    evoked, times = reference_input()
    assert pcist(evoked * 1e-6, times).value == pytest.approx(221.66423129251706, rel=1e-9)
    assert pcist(-evoked, times).value == pytest.approx(221.66423129251706, rel=1e-9)


def test_zero_when_no_component_passes_snr():
    evoked, times = reference_input()
    res = pcist(evoked, times, min_snr=1e6)
    assert res.value == 0.0
    assert res.n_components == 0
    # pure baseline-like noise: nothing above the SNR criterion either
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((8, times.size))
    noise[:, times >= 0] *= 0.5
    assert pcist(noise, times).value == 0.0


def test_nan_gives_zero_and_bad_windows_raise():
    evoked, times = reference_input()
    bad = evoked.copy()
    bad[0, 10] = np.nan
    assert pcist(bad, times).value == 0.0
    with pytest.raises(InvalidParameterError, match="samples"):
        pcist(evoked, times, baseline=(-2000, -1500))
    with pytest.raises(InvalidParameterError, match="convention"):
        pcist(evoked, times, convention="matlab")
    with pytest.raises(InvalidParameterError):
        pcist(evoked[:, :10], times)
