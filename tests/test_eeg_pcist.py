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


def test_inclusive_convention_is_an_option_and_differs():
    evoked, times = reference_input()
    ref = pcist(evoked, times).value
    inc = pcist(evoked, times, convention="inclusive")
    assert inc.parameters["convention"] == "inclusive"
    assert inc.value > 0
    assert abs(inc.value - ref) / ref > 1e-4  # one more sample per window changes the value


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
