"""Peak detection in windows (no edge bug), GMFP definition."""

import numpy as np
import pytest

from tmsnet.eeg.teps import DEFAULT_WINDOWS_MS, find_window_peaks, gmfp
from tmsnet.exceptions import InvalidParameterError

TIMES = np.arange(-100, 400) / 1000.0  # 1 kHz


def bump(latency_ms, width_ms, amp=1.0):
    return amp * np.exp(-0.5 * ((TIMES * 1000 - latency_ms) / width_ms) ** 2)


def trimmed_first(signal, window, n=5):
    """The buggy approach (trim to the window, then require n neighbours inside it)."""
    sel = (TIMES * 1000 >= window[0]) & (TIMES * 1000 <= window[1])
    x = signal[sel]
    t = TIMES[sel]
    best = None
    for i in range(n, x.size - n):
        if all(x[i] > x[i - k] and x[i] > x[i + k] for k in range(1, n + 1)):
            if best is None or x[i] > x[best]:
                best = i
    return None if best is None else t[best] * 1000


def test_peak_one_sample_inside_window_edge_is_found():
    # P30 window 20-40 ms; a peak at 21 ms (1 sample inside) and at 39 ms
    for lat in (21.0, 39.0):
        sig = bump(lat, 4.0) + 0.3 * bump(100, 20)
        res = find_window_peaks(sig, TIMES, {"P30": (20, 40)})
        assert res["P30"]["latency_ms"] == pytest.approx(lat)
        assert trimmed_first(sig, (20, 40)) is None  # what the edge bug reports


def test_monotonic_window_has_no_peak_nan():
    sig = bump(60, 10.0)  # rises through the P30 window, peaks outside it
    res = find_window_peaks(sig, TIMES, {"P30": (20, 40)})
    assert np.isnan(res["P30"]["latency_ms"]) and np.isnan(res["P30"]["amplitude"])


def test_polarity_from_name_and_largest_peak():
    sig = -bump(100, 10, 3.0) - bump(130, 5, 1.0) + bump(180, 15, 2.0)
    res = find_window_peaks(sig, TIMES, DEFAULT_WINDOWS_MS)
    assert res["N100"]["latency_ms"] == pytest.approx(100.0)
    assert res["N100"]["amplitude"] == pytest.approx(-3.0, rel=1e-3)
    assert res["P180"]["latency_ms"] == pytest.approx(180.0)
    assert res["N100"]["polarity"] == "negative"


def test_neighbour_rule_rejects_small_wiggles():
    sig = np.zeros_like(TIMES)
    i = np.flatnonzero(np.isclose(TIMES * 1000, 30))[0]
    sig[i - 3:i + 4] = [0, 1, 0, 2, 0, 1, 0]  # larger than its 5 neighbours on each side
    res = find_window_peaks(sig, TIMES, {"P30": (20, 40)}, n_neighbors=5)
    assert res["P30"]["latency_ms"] == pytest.approx(30.0)
    sig[i + 5] = 3.0  # now the 5th neighbour is larger: no longer a peak at 30 ms
    res = find_window_peaks(sig, TIMES, {"P30": (20, 40)}, n_neighbors=5)
    assert res["P30"]["latency_ms"] == pytest.approx(35.0)


def test_gmfp_is_tesa_std_of_mean():
    rng = np.random.default_rng(0)
    trials = rng.standard_normal((10, 8, 50))
    expected = trials.mean(axis=0).std(axis=0, ddof=1)
    np.testing.assert_allclose(gmfp(trials), expected)
    np.testing.assert_allclose(gmfp(trials.mean(axis=0), ddof=0), trials.mean(axis=0).std(axis=0))


def test_bad_inputs():
    with pytest.raises(InvalidParameterError):
        find_window_peaks(np.zeros(5), np.zeros(6))
    with pytest.raises(InvalidParameterError, match="start < end"):
        find_window_peaks(bump(30, 4), TIMES, {"P30": (40, 20)})
    with pytest.raises(InvalidParameterError, match="polarity"):
        find_window_peaks(bump(30, 4), TIMES, {"X30": (20, 40)})
    with pytest.raises(InvalidParameterError):
        gmfp(np.zeros((1, 10)))
