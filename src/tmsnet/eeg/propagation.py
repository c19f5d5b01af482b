"""Propagation: when each channel becomes significantly active after the pulse.

At every post-pulse sample and channel, the trials' amplitudes are compared
with each trial's own baseline mean by a one-sample t-test across trials
(``scipy.stats.ttest_1samp``); p-values over channels x post-pulse samples are
corrected with the Benjamini-Hochberg FDR (:func:`mne.stats.fdr_correction`).
A channel's **onset latency** is the first post-pulse sample that starts a run
of at least ``min_duration_s`` of significant samples; the **spread curve** is
the share of channels significant at each time. This follows the
significant-current-density approach of Casali et al. 2010 (NeuroImage
49:1459) in sensor space (``../shared/REFERENCES.md`` section 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tmsnet.exceptions import InvalidParameterError

__all__ = ["Propagation", "propagation"]


@dataclass
class Propagation:
    """Significance map, onset latencies and spread curve.

    Attributes
    ----------
    significant : ndarray of bool, shape (n_channels, n_times)
        FDR-significant samples (post-pulse window only).
    times : ndarray
        Times (s) of the post-pulse window.
    onset_ms : dict of str to float
        Onset latency per channel (ms; NaN if never active).
    spread : ndarray, shape (n_times,)
        Share of channels significant at each time (0-1).
    ch_names : list of str
        Channels.
    alpha : float
        FDR level.
    """

    significant: np.ndarray
    times: np.ndarray
    onset_ms: dict[str, float]
    spread: np.ndarray
    ch_names: list[str]
    alpha: float

    def summary(self) -> dict[str, float]:
        """Peak spread, its latency, number of channels ever active, median onset."""
        onsets = np.array([v for v in self.onset_ms.values() if np.isfinite(v)])
        i = int(np.argmax(self.spread)) if self.spread.size else 0
        return {
            "max_spread": float(self.spread.max()) if self.spread.size else 0.0,
            "max_spread_latency_ms": float(self.times[i] * 1000) if self.spread.size else float("nan"),
            "n_channels_active": int(onsets.size),
            "median_onset_ms": float(np.median(onsets)) if onsets.size else float("nan"),
            "area_under_spread_ms": float(self.spread.sum() * np.median(np.diff(self.times)) * 1000)
            if self.spread.size > 1 else 0.0,
        }


def propagation(
    epochs,
    *,
    baseline: Sequence[float] = (-0.5, -0.01),
    window: Sequence[float] = (0.015, 0.400),
    alpha: float = 0.01,
    min_duration_s: float = 0.005,
    picks=None,
) -> Propagation:
    """Channel-wise onset latencies and the spread curve.

    Parameters
    ----------
    epochs : mne.Epochs
        Cleaned epochs.
    baseline : (float, float)
        Baseline window (s); each trial's mean there is subtracted.
    window : (float, float)
        Post-pulse window tested (s), after the interpolated pulse window.
    alpha : float
        FDR level.
    min_duration_s : float
        Minimum length of a significant run that counts as onset (s).
    picks : str or list, optional
        Channels (default all EEG).

    Returns
    -------
    Propagation
    """
    from mne.stats import fdr_correction

    if not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha must be in (0, 1), got {alpha}.")
    ep = epochs.copy().pick(picks if picks is not None else "eeg")
    if len(ep) < 3:
        raise InvalidParameterError("Propagation needs at least 3 trials.")
    times = ep.times
    data = ep.get_data()
    bsel = (times >= baseline[0]) & (times <= baseline[1])
    wsel = (times >= window[0]) & (times <= window[1])
    if not bsel.any() or not wsel.any():
        raise InvalidParameterError(f"Baseline {baseline} or window {window} is outside the epochs.")
    x = data[:, :, wsel] - data[:, :, bsel].mean(axis=2, keepdims=True)
    _, p = stats.ttest_1samp(x, 0.0, axis=0)
    p = np.nan_to_num(p, nan=1.0)
    reject, _ = fdr_correction(p.ravel(), alpha=alpha)
    sig = reject.reshape(p.shape)
    wt = times[wsel]
    run = max(1, int(round(min_duration_s * ep.info["sfreq"])))
    onset = {}
    for c, name in enumerate(ep.ch_names):
        s = sig[c].astype(int)
        if run > 1:
            counts = np.convolve(s, np.ones(run, int), mode="valid")
            starts = np.flatnonzero(counts == run)
        else:
            starts = np.flatnonzero(s)
        onset[name] = float(wt[starts[0]] * 1000) if starts.size else float("nan")
    return Propagation(significant=sig, times=wt, onset_ms=onset, spread=sig.mean(axis=0),
                       ch_names=list(ep.ch_names), alpha=alpha)
