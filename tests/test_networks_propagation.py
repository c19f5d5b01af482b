"""Propagation model: closed forms (chain, complete graph, matrix exponential) and HCP structure-function."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from tmsnet.exceptions import InvalidParameterError
from tmsnet.networks.propagation import (
    PropagationModel,
    impulse_response,
    normalize_connectome,
    predicted_fc,
    rank_response,
    steady_state_response,
)

DATA = Path(__file__).parents[1].parent / "shared" / "data"


def _chain(n):
    c = np.zeros((n, n))
    c[np.arange(1, n), np.arange(n - 1)] = 1.0  # region k drives region k + 1 (row = target)
    return c


def test_steady_state_chain_closed_form():
    tau, g = 10.0, 0.07
    model = PropagationModel(_chain(5), tau_ms=tau, coupling=g)
    x = steady_state_response(model, 0)
    np.testing.assert_allclose(x, tau * (g * tau) ** np.arange(5), rtol=1e-12)


def test_steady_state_complete_graph_closed_form():
    n, tau, g = 6, 10.0, 0.015  # rho(K_6) = 5: g tau rho = 0.75
    c = np.ones((n, n)) - np.eye(n)
    x = steady_state_response(PropagationModel(c, tau_ms=tau, coupling=g), 2)
    k = g * tau
    # by symmetry x_stim = a, x_other = b: a = tau + k (n-1) b, b = k (a + (n-2) b)
    b = k * tau / (1 - k * (n - 2) - k**2 * (n - 1))
    a = tau + k * (n - 1) * b
    expected = np.full(n, b)
    expected[2] = a
    np.testing.assert_allclose(x, expected, rtol=1e-12)


def test_impulse_response_without_delays_equals_matrix_exponential():
    rng = np.random.default_rng(0)
    c = rng.random((8, 8))
    c = normalize_connectome(c + c.T)
    model = PropagationModel(c, tau_ms=10.0, coupling=0.08)
    t, x = impulse_response(model, 3, duration_ms=60.0, dt_ms=0.01)
    for k in (500, 2000, 6000):
        exact = linalg.expm(model.system_matrix * t[k])[:, 3]
        np.testing.assert_allclose(x[k], exact, rtol=2e-3, atol=1e-6)


def test_impulse_response_delayed_chain_closed_form():
    """Chain 0 -> 1 -> 2 with delays d1, d2: x_k(t) = (g s)^k / k! e^{-s/tau}, s = t - (d1 + .. + dk)."""
    tau, g, v = 10.0, 0.08, 5.0
    lengths = np.zeros((3, 3))
    lengths[1, 0] = 40.0  # 8 ms at 5 m/s
    lengths[2, 1] = 60.0  # 12 ms
    model = PropagationModel(_chain(3), tau_ms=tau, coupling=g, lengths_mm=lengths, velocity_m_per_s=v)
    t, x = impulse_response(model, 0, duration_ms=100.0, dt_ms=0.01)
    onsets = [0.0, 8.0, 20.0]
    for k in range(3):
        s = np.clip(t - onsets[k], 0, None)
        exact = (g * s) ** k / math.factorial(k) * np.exp(-s / tau) * (t >= onsets[k])
        np.testing.assert_allclose(x[:, k], exact, atol=2e-3 * exact.max())
    # nothing arrives before the conduction delay; the peak of x_k is at onset + k tau
    assert np.all(x[t < 7.99, 1] == 0) and np.all(x[t < 19.99, 2] == 0)
    assert t[np.argmax(x[:, 2])] == pytest.approx(20.0 + 2 * tau, abs=0.05)
    # delays leave the steady state unchanged (time integral of the impulse response)
    integral = x.sum(axis=0) * 0.01
    long_t, long_x = impulse_response(model, 0, duration_ms=400.0, dt_ms=0.02)
    np.testing.assert_allclose(long_x.sum(axis=0) * 0.02, steady_state_response(model, 0), rtol=2e-3)
    assert integral[2] < steady_state_response(model, 0)[2]  # 100 ms is not yet the whole response


def test_ranking_and_stability_errors():
    c = normalize_connectome(np.ones((4, 4)))
    model = PropagationModel(c, tau_ms=10.0, coupling=0.05)
    steady = steady_state_response(model, 0)
    t, x = impulse_response(model, 0, duration_ms=50.0, dt_ms=0.1)
    regions, nets = rank_response(steady, t, x, stimulated=0, labels=list("abcd"),
                                  networks=np.array(["A", "A", "B", "B"]))
    assert regions.iloc[0]["name"] == "a" and regions.iloc[0]["rank"] == 0
    assert regions.iloc[1]["steady_state_relative"] < 1
    assert set(nets["network"]) == {"A", "B"}
    with pytest.raises(InvalidParameterError, match="unstable"):
        PropagationModel(c, tau_ms=10.0, coupling=0.2)
    with pytest.raises(InvalidParameterError, match="negative"):
        normalize_connectome(-np.ones((3, 3)))


@pytest.mark.skipif(not (DATA / "hcp_aal2").is_dir(), reason="../shared/data/hcp_aal2 not available")
def test_hcp_structure_function_correlation():
    """Predicted FC (stationary covariance of the linear model on each subject's SC, g tau = 0.9)
    vs the same subject's empirical FC (1200 frames): r per subject in the literature's range and above
    what the same SC gives after shuffling its region labels."""
    from scipy.io import loadmat

    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.networks.connectomes import clean_roi_timeseries

    subjects = sorted(p for p in (DATA / "hcp_aal2").glob("sub-*") if p.is_dir())
    assert len(subjects) == 7
    rng = np.random.default_rng(0)
    results = {}
    for sub in subjects:
        sc = loadmat(sub / "DTI_CM.mat")["sc"].astype(float)
        tc = loadmat(sub / "TC_rsfMRI_REST1_LR.mat")["tc"].T
        cleaning = BoldCleaningParameters(confound_strategy="none", global_signal_regression=False,
                                          low_pass_hz=None, high_pass_hz=0.01)
        ts, _ = clean_roi_timeseries(tc, None, t_r=0.72, cleaning=cleaning)
        fc = np.corrcoef(ts.T)
        iu = np.triu_indices(sc.shape[0], 1)
        model = PropagationModel(normalize_connectome(sc), tau_ms=10.0, coupling=0.09)
        r = np.corrcoef(predicted_fc(model)[iu], fc[iu])[0, 1]
        perm = rng.permutation(sc.shape[0])
        shuffled = PropagationModel(normalize_connectome(sc[np.ix_(perm, perm)]), tau_ms=10.0, coupling=0.09)
        r_null = np.corrcoef(predicted_fc(shuffled)[iu], fc[iu])[0, 1]
        results[sub.name] = (r, r_null)
    for name, (r, r_null) in results.items():
        print(f"{name}: structure-function r = {r:.3f} (shuffled SC: {r_null:.3f})")
    rs = np.array([v[0] for v in results.values()])
    assert np.all(rs > 0.25) and np.all(rs < 0.75)
    assert 0.3 <= np.median(rs) <= 0.6
    assert all(r > r_null + 0.15 for r, r_null in results.values())
