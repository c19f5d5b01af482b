"""Two sessions or conditions (e.g. pre vs post treatment): TEP and GMFP differences.

* TEP: cluster-based permutation test over channels x time
  (:func:`mne.stats.spatio_temporal_cluster_test`, F statistic, channel
  adjacency from :func:`mne.channels.find_ch_adjacency`), trials as
  independent observations of each condition (Maris & Oostenveld 2007).
* GMFP: the difference of the two GMFP curves, tested by permuting trial
  labels; each time point's p-value is the share of permutations whose
  largest |difference| over the window reaches it (max-statistic, family-wise
  corrected over time).
* Peak amplitudes and latencies of both conditions side by side
  (:func:`tmsnet.eeg.teps.peak_table`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tmsnet.eeg.teps import DEFAULT_WINDOWS_MS, gmfp, peak_table
from tmsnet.exceptions import InvalidParameterError

__all__ = ["Comparison", "compare_conditions"]


@dataclass
class Comparison:
    """Result of :func:`compare_conditions`.

    Attributes
    ----------
    clusters : pandas.DataFrame
        One row per TEP cluster: ``p_value``, ``tmin_ms``, ``tmax_ms``,
        ``channels``, ``mass`` (sum of F).
    gmfp_a, gmfp_b : ndarray
        GMFP of each condition over ``times`` (volts).
    gmfp_p : ndarray
        Max-statistic permutation p-value of the GMFP difference at each time.
    times : ndarray
        Times tested (s).
    peaks : pandas.DataFrame
        Peak tables of both conditions merged, with differences.
    """

    clusters: pd.DataFrame
    gmfp_a: np.ndarray
    gmfp_b: np.ndarray
    gmfp_p: np.ndarray
    times: np.ndarray
    peaks: pd.DataFrame

    def summary(self) -> dict:
        """Smallest cluster p-value and the GMFP-difference significant span."""
        sig = self.times[self.gmfp_p < 0.05]
        return {
            "n_clusters": int(len(self.clusters)),
            "min_cluster_p": float(self.clusters["p_value"].min()) if len(self.clusters) else 1.0,
            "gmfp_significant_ms": [float(sig.min() * 1000), float(sig.max() * 1000)] if sig.size else None,
        }


def compare_conditions(
    epochs_a,
    epochs_b,
    *,
    window: Sequence[float] = (0.015, 0.300),
    n_permutations: int = 500,
    random_seed: int = 0,
    windows_ms: Mapping[str, Sequence[float]] = DEFAULT_WINDOWS_MS,
    roi: Sequence[str] | None = None,
    cluster_threshold: float | None = None,
) -> Comparison:
    """Compare two sets of cleaned epochs (same channels and sampling rate).

    Parameters
    ----------
    epochs_a, epochs_b : mne.Epochs
        The two conditions (e.g. pre and post treatment).
    window : (float, float)
        Time window tested (s).
    n_permutations : int
        Permutations of both tests.
    random_seed : int
        Seed of the permutations.
    windows_ms : mapping
        Peak windows (ms).
    roi : sequence of str, optional
        ROI channels for the peak table.
    cluster_threshold : float, optional
        F threshold forming clusters (default: MNE's, the F quantile at p = 0.05).

    Returns
    -------
    Comparison
    """
    import mne
    from mne.stats import spatio_temporal_cluster_test

    if epochs_a.ch_names != epochs_b.ch_names:
        raise InvalidParameterError("Both conditions need the same channels in the same order.")
    if abs(epochs_a.info["sfreq"] - epochs_b.info["sfreq"]) > 1e-6:
        raise InvalidParameterError("Both conditions need the same sampling rate; resample one.")
    if len(epochs_a) < 2 or len(epochs_b) < 2:
        raise InvalidParameterError("Each condition needs at least 2 trials.")
    a = epochs_a.copy().crop(*window)
    b = epochs_b.copy().crop(*window)
    xa = a.get_data(picks="eeg")
    xb = b.get_data(picks="eeg")
    adjacency, _ = mne.channels.find_ch_adjacency(a.info, ch_type="eeg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, clusters, pvals, _ = spatio_temporal_cluster_test(
            [xa.transpose(0, 2, 1), xb.transpose(0, 2, 1)], adjacency=adjacency,
            n_permutations=n_permutations, threshold=cluster_threshold, seed=random_seed, out_type="mask",
            verbose=False)
    rows = []
    fvals = _f_values(xa, xb)
    for mask, p in zip(clusters, pvals, strict=True):
        tmask = mask.any(axis=1)
        cmask = mask.any(axis=0)
        rows.append({"p_value": float(p), "tmin_ms": float(a.times[tmask].min() * 1000),
                     "tmax_ms": float(a.times[tmask].max() * 1000),
                     "channels": ",".join(np.array(a.ch_names)[cmask]),
                     "mass": float(fvals.T[mask].sum())})
    clusters_df = pd.DataFrame(rows, columns=["p_value", "tmin_ms", "tmax_ms", "channels", "mass"])
    clusters_df = clusters_df.sort_values("p_value").reset_index(drop=True)

    ga, gb = gmfp(xa), gmfp(xb)
    observed = np.abs(ga - gb)
    rng = np.random.default_rng(random_seed)
    pooled = np.concatenate([xa, xb])
    n_a = len(xa)
    maxima = np.empty(n_permutations)
    for i in range(n_permutations):
        perm = rng.permutation(len(pooled))
        maxima[i] = np.abs(gmfp(pooled[perm[:n_a]]) - gmfp(pooled[perm[n_a:]])).max()
    p_gmfp = (1 + (maxima[None, :] >= observed[:, None]).sum(axis=1)) / (n_permutations + 1)

    pa = peak_table(epochs_a.average(), windows_ms=windows_ms, roi=roi)
    pb = peak_table(epochs_b.average(), windows_ms=windows_ms, roi=roi)
    peaks = pa.merge(pb[["measure", "component", "latency_ms", "amplitude_uv"]],
                     on=["measure", "component"], suffixes=("_a", "_b"))
    peaks["latency_diff_ms"] = peaks["latency_ms_b"] - peaks["latency_ms_a"]
    peaks["amplitude_diff_uv"] = peaks["amplitude_uv_b"] - peaks["amplitude_uv_a"]
    return Comparison(clusters=clusters_df, gmfp_a=ga, gmfp_b=gb, gmfp_p=p_gmfp, times=a.times,
                      peaks=peaks)


def _f_values(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """One-way F (two groups) per channel and time, shape (n_channels, n_times)."""
    from mne.stats import f_oneway

    return f_oneway(xa.reshape(len(xa), -1), xb.reshape(len(xb), -1)).reshape(xa.shape[1:])
