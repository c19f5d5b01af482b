"""PCIst: the perturbational complexity index based on state transitions.

Comolatti R., Pigorini A., Casarotto S., et al. (2019) A fast and general
method to empirically estimate the complexity of brain responses to
transcranial and intracranial stimulations. Brain Stimulation 12:1280.
Implemented from the paper and the description in ``../shared/REFERENCES.md``
section 2:

1. the trial average is cut to the baseline + response span;
2. SVD of the response window (time x channels); the whole signal is
   projected on the right singular vectors;
3. keep the first components that together reach ``max_var`` % of the
   response variance (the component that crosses it included), then those
   with SNR = sqrt(mean power in the response / mean power in the baseline)
   > ``min_snr``;
4. per component, the distance matrices ``|x_i - x_j|`` of the baseline and of
   the response; for ``n_steps`` thresholds equally spaced from the median of
   the baseline distances to the maximum of the response distances, the
   number of state transitions NST is the count of sign changes of the
   recurrence (distance <= threshold) along each row, divided by n^2;
5. dNST = max over thresholds of (NST_resp - k * NST_base) * n_resp, floored
   at 0; PCIst = sum of dNST.

The count of transitions at a threshold is computed without building the
transition matrices: a transition between (i, j) and (i, j + 1) happens for
thresholds in [min(D_ij, D_ij+1), max(D_ij, D_ij+1)), so NST(thr) is the
number of such intervals containing thr (two sorted arrays and
``searchsorted``), exact and O(n^2 log n).

Window conventions (``convention``):

* ``"reference"`` (default): as the reference Python implementation
  (renzocom/PCIst ``pci_st.py``): each window is half-open, ``w0 <= t < w1``,
  so the sample at the end of each window is excluded. This convention
  reproduces the cross-check values of REFERENCES.md exactly.
* ``"inclusive"``: as the MATLAB implementation, every sample with
  ``w0 <= t <= w1`` belongs to the window.

The value depends on the sampling rate (resample to a stated rate first) and
noise alone scores above zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tmsnet.exceptions import InvalidParameterError

__all__ = ["PcistResult", "pcist"]


@dataclass
class PcistResult:
    """PCIst and its decomposition.

    Attributes
    ----------
    value : float
        PCIst (sum of ``dnst``); 0 when no component passes the SNR criterion.
    dnst : ndarray
        dNST of each kept component.
    snrs : ndarray
        SNR of each kept component.
    n_components : int
        Number of components kept.
    var_explained : ndarray
        Percentage of response variance of each SVD component.
    thresholds : ndarray, shape (n_components,)
        Threshold that maximised dNST for each component.
    parameters : dict
        The parameters used.
    """

    value: float
    dnst: np.ndarray
    snrs: np.ndarray
    n_components: int
    var_explained: np.ndarray
    thresholds: np.ndarray
    parameters: dict = field(default_factory=dict)


def _windows(times: np.ndarray, baseline: Sequence[float], response: Sequence[float],
             convention: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (into ``times``) of the analysed span, the baseline and the response."""
    if convention == "reference":
        # half-open [w0, w1): the first sample at or after w0 up to, not including, the
        # first sample at or after w1 (the reference implementation's get_time_index)
        base = np.flatnonzero((times >= baseline[0]) & (times < baseline[1]))
        resp = np.flatnonzero((times >= response[0]) & (times < response[1]))
        span = np.arange(min(base.min(initial=len(times)), resp.min(initial=len(times))),
                         max(base.max(initial=-1), resp.max(initial=-1)) + 1)
        return span, base, resp
    if convention == "inclusive":
        eps = 1e-9 * max(1.0, float(np.abs(times).max()))
        base = np.flatnonzero((times >= baseline[0] - eps) & (times <= baseline[1] + eps))
        resp = np.flatnonzero((times >= response[0] - eps) & (times <= response[1] + eps))
        span = np.arange(min(base.min(initial=len(times)), resp.min(initial=len(times))),
                         max(base.max(initial=-1), resp.max(initial=-1)) + 1)
        return span, base, resp
    raise InvalidParameterError(f"convention must be 'reference' or 'inclusive', got {convention!r}.")


def _transition_counts(x: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Number of recurrence transitions along rows of |x_i - x_j| at each threshold."""
    d = np.abs(x[None, :] - x[:, None])
    a, b = d[:, :-1].ravel(), d[:, 1:].ravel()
    lo = np.sort(np.minimum(a, b))
    hi = np.sort(np.maximum(a, b))
    # (d <= thr) differs between the two neighbours iff lo <= thr < hi
    return (np.searchsorted(lo, thresholds, side="right")
            - np.searchsorted(hi, thresholds, side="right")).astype(float)


def pcist(
    evoked: np.ndarray,
    times: np.ndarray,
    *,
    baseline: Sequence[float] = (-400.0, -50.0),
    response: Sequence[float] = (0.0, 300.0),
    k: float = 1.2,
    min_snr: float = 1.1,
    max_var: float = 99.0,
    n_steps: int = 100,
    convention: str = "reference",
) -> PcistResult:
    """PCIst of a trial-averaged response.

    Parameters
    ----------
    evoked : ndarray, shape (n_channels, n_times)
        Trial average (any unit; PCIst is scale-free).
    times : ndarray, shape (n_times,)
        Time of each sample, in the unit of the windows (ms by default).
    baseline, response : (float, float)
        Windows, same unit as ``times`` (default -400...-50 and 0...300 ms).
    k : float
        Noise-control factor (> 0; 1.2 for TMS-EEG).
    min_snr : float
        SNR above which a component is kept.
    max_var : float
        Percentage of response variance the kept components reach (0-100].
    n_steps : int
        Number of thresholds searched.
    convention : {"reference", "inclusive"}
        Window convention (see the module notes).

    Returns
    -------
    PcistResult
        ``value`` 0 when no component passes the SNR criterion or the data
        contain NaN.
    """
    x = np.asarray(evoked, dtype=float)
    t = np.asarray(times, dtype=float)
    if x.ndim != 2 or x.shape[1] != t.size:
        raise InvalidParameterError(
            f"evoked must be (n_channels, n_times) matching times; got {x.shape} and {t.shape}."
        )
    if not 0 < max_var <= 100:
        raise InvalidParameterError(f"max_var must be in (0, 100], got {max_var}.")
    if k <= 0 or n_steps < 2:
        raise InvalidParameterError("k must be > 0 and n_steps >= 2.")
    if not (baseline[0] < baseline[1] and response[0] < response[1]):
        raise InvalidParameterError("Windows must be (start, end) with start < end.")
    params = {"baseline": tuple(baseline), "response": tuple(response), "k": k, "min_snr": min_snr,
              "max_var": max_var, "n_steps": n_steps, "convention": convention}
    empty = PcistResult(0.0, np.zeros(0), np.zeros(0), 0, np.zeros(0), np.zeros(0), params)
    if np.isnan(x).any():
        return empty
    span, base_idx, resp_idx = _windows(t, baseline, response, convention)
    if base_idx.size < 2 or resp_idx.size < 2:
        raise InvalidParameterError(
            f"The baseline {baseline} and response {response} windows need >= 2 samples each within "
            f"the data ({t[0]:g} to {t[-1]:g})."
        )
    del span  # the windows index the full array directly
    _, sv, vt = np.linalg.svd(x[:, resp_idx].T, full_matrices=False)
    var_exp = 100.0 * sv**2 / np.sum(sv**2)
    if max_var >= 100:
        n_keep = sv.size
    else:
        n_keep = sv.size - int(np.sum(np.cumsum(var_exp) >= max_var)) + 1
    comps = vt[:n_keep] @ x  # (n_keep, n_times)
    snr = np.sqrt(np.mean(comps[:, resp_idx] ** 2, axis=1) / np.mean(comps[:, base_idx] ** 2, axis=1))
    keep = snr > min_snr
    comps, snr = comps[keep], snr[keep]
    if comps.shape[0] == 0:
        empty.var_explained = var_exp
        return empty
    n_base, n_resp = base_idx.size, resp_idx.size
    dnst = np.zeros(comps.shape[0])
    best_thr = np.zeros(comps.shape[0])
    for c, series in enumerate(comps):
        xb, xr = series[base_idx], series[resp_idx]
        d_base_median = np.median(np.abs(xb[None, :] - xb[:, None]))
        d_resp_max = np.max(np.abs(xr[None, :] - xr[:, None]))
        thresholds = np.linspace(d_base_median, d_resp_max, n_steps)
        nst_base = _transition_counts(xb, thresholds) / n_base**2
        nst_resp = _transition_counts(xr, thresholds) / n_resp**2
        diff = nst_resp - k * nst_base
        i = int(np.argmax(diff))
        dnst[c] = max(diff[i] * n_resp, 0.0)
        best_thr[c] = thresholds[i]
    return PcistResult(float(np.sum(dnst)), dnst, snr, int(comps.shape[0]), var_exp, best_thr, params)
