"""TMS-evoked potentials: the evoked response, GMFP and peaks in standard windows.

Peak detection follows TESA (Rogasch et al. 2017): a sample is a peak when it
is larger (for positive peaks; smaller for negative ones) than the
``n_neighbors`` samples on *each* side, and the largest such sample in the
window is reported. Neighbours are read from the whole signal, also outside
the window, so a peak one sample inside a window edge is found. Trimming the
signal to the window first (tmseegpy) leaves edge-near samples without
neighbours and misses such peaks: the edge bug described in
``../shared/REFERENCES.md`` section 2. A window without a peak reports a NaN
latency and amplitude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError

__all__ = [
    "DEFAULT_WINDOWS_MS",
    "TESA_WINDOWS_MS",
    "compute_evoked",
    "find_window_peaks",
    "gmfp",
    "peak_table",
]

#: Peak windows (ms) of tmseegpy, after the TMS-EEG literature (REFERENCES.md section 2).
DEFAULT_WINDOWS_MS: dict[str, tuple[float, float]] = {
    "N15": (10.0, 20.0),
    "P30": (20.0, 40.0),
    "N45": (40.0, 55.0),
    "P60": (50.0, 70.0),
    "N100": (70.0, 150.0),
    "P180": (150.0, 240.0),
}

#: Peak windows (ms) of the TESA manual.
TESA_WINDOWS_MS: dict[str, tuple[float, float]] = {
    "N20": (10.0, 30.0),
    "P40": (30.0, 50.0),
    "N60": (50.0, 70.0),
    "P80": (70.0, 90.0),
    "N100": (90.0, 110.0),
    "P200": (180.0, 220.0),
}


def gmfp(data: np.ndarray, *, ddof: int = 1) -> np.ndarray:
    """Global mean field power: SD across channels of the trial average.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_times) or (n_trials, n_channels, n_times)
        Trial average, or trials (averaged first).
    ddof : int
        Delta degrees of freedom of the SD; 1 as MATLAB's ``std`` in TESA
        (``std(mean(data, trials))``), 0 for Lehmann's GFP.

    Returns
    -------
    ndarray, shape (n_times,)
        GMFP in the unit of ``data``.
    """
    arr = np.asarray(data, dtype=float)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise InvalidParameterError(
            f"gmfp needs (n_channels, n_times) with >= 2 channels, got shape {arr.shape}."
        )
    return arr.std(axis=0, ddof=ddof)


def _polarity_of(name: str, polarity: str) -> str:
    if polarity in ("positive", "negative"):
        return polarity
    if polarity != "auto":
        raise InvalidParameterError(
            f"polarity must be 'positive', 'negative' or 'auto', got {polarity!r}."
        )
    first = name[:1].upper()
    if first == "P":
        return "positive"
    if first == "N":
        return "negative"
    raise InvalidParameterError(
        f"Cannot infer the polarity of peak {name!r}: name it N.../P... or pass polarity."
    )


def find_window_peaks(
    signal: np.ndarray,
    times: np.ndarray,
    windows_ms: Mapping[str, Sequence[float]] = DEFAULT_WINDOWS_MS,
    *,
    polarity: str = "auto",
    n_neighbors: int = 5,
) -> dict[str, dict[str, float]]:
    """Largest local extremum of a 1D signal in each window.

    Parameters
    ----------
    signal : ndarray, shape (n_times,)
        GMFP, one channel or an ROI average.
    times : ndarray, shape (n_times,)
        Time of each sample (s), increasing.
    windows_ms : mapping of str to (start, end)
        Windows in ms (inclusive at both ends).
    polarity : {"auto", "positive", "negative"}
        ``"auto"`` takes it from the first letter of each name (N: negative,
        P: positive); use ``"positive"`` for GMFP.
    n_neighbors : int
        A peak must exceed this many samples on each side (TESA: 5).

    Returns
    -------
    dict of str to dict
        Per window: ``latency_ms``, ``amplitude`` (signal units; NaN when no
        peak), ``start_ms``, ``end_ms``, ``polarity``.
    """
    x = np.asarray(signal, dtype=float)
    t = np.asarray(times, dtype=float)
    if x.ndim != 1 or x.shape != t.shape:
        raise InvalidParameterError(
            f"signal and times must be 1D of equal length, got {x.shape} and {t.shape}."
        )
    if n_neighbors < 1:
        raise InvalidParameterError(f"n_neighbors must be >= 1, got {n_neighbors}.")
    n = x.size
    out: dict[str, dict[str, float]] = {}
    for name, window in windows_ms.items():
        start, end = (float(v) for v in window)
        if end <= start:
            raise InvalidParameterError(f"Peak window {name} must have start < end, got {window}.")
        pol = _polarity_of(name, polarity)
        y = x if pol == "positive" else -x
        idx = np.flatnonzero((t * 1000.0 >= start - 1e-9) & (t * 1000.0 <= end + 1e-9))
        # candidates need n_neighbors samples on each side in the *whole* signal
        idx = idx[(idx >= n_neighbors) & (idx < n - n_neighbors)]
        best = -1
        if idx.size:
            is_peak = np.ones(idx.size, dtype=bool)
            for k in range(1, n_neighbors + 1):
                is_peak &= (y[idx] > y[idx - k]) & (y[idx] > y[idx + k])
            cand = idx[is_peak]
            if cand.size:
                best = int(cand[np.argmax(y[cand])])
        out[name] = {
            "latency_ms": float(t[best] * 1000.0) if best >= 0 else float("nan"),
            "amplitude": float(x[best]) if best >= 0 else float("nan"),
            "start_ms": start,
            "end_ms": end,
            "polarity": pol,
        }
    return out


def compute_evoked(epochs):
    """The TEP: trial average of the cleaned epochs (:meth:`mne.Epochs.average`)."""
    return epochs.average()


def peak_table(
    evoked,
    *,
    windows_ms: Mapping[str, Sequence[float]] = DEFAULT_WINDOWS_MS,
    roi: Sequence[str] | None = None,
    n_neighbors: int = 5,
) -> pd.DataFrame:
    """Peaks of the GMFP (positive) and of an ROI average (N/P polarity) per window.

    Parameters
    ----------
    evoked : mne.Evoked
        The TEP (volts).
    windows_ms : mapping
        Peak windows in ms.
    roi : sequence of str, optional
        Channels averaged for the ROI peaks; None skips them. Missing names
        raise an error.
    n_neighbors : int
        See :func:`find_window_peaks`.

    Returns
    -------
    pandas.DataFrame
        Columns ``measure`` (``gmfp``/``roi``), ``component``, ``start_ms``,
        ``end_ms``, ``polarity``, ``latency_ms``, ``amplitude_uv``,
        ``channels``.
    """
    data = evoked.get_data(picks="eeg")
    times = evoked.times
    rows = []
    g = gmfp(data)
    for name, row in find_window_peaks(g, times, windows_ms, polarity="positive",
                                       n_neighbors=n_neighbors).items():
        rows.append({"measure": "gmfp", "component": name, **_row(row), "channels": "all"})
    if roi:
        missing = [c for c in roi if c not in evoked.ch_names]
        if missing:
            raise InvalidParameterError(
                f"ROI channels {missing} are not in the data; choose from {evoked.ch_names}."
            )
        sig = evoked.copy().pick(list(roi)).get_data().mean(axis=0)
        for name, row in find_window_peaks(sig, times, windows_ms, polarity="auto",
                                           n_neighbors=n_neighbors).items():
            rows.append({"measure": "roi", "component": name, **_row(row), "channels": ",".join(roi)})
    return pd.DataFrame(rows, columns=["measure", "component", "start_ms", "end_ms", "polarity",
                                       "latency_ms", "amplitude_uv", "channels"])


def _row(row: Mapping[str, float]) -> dict[str, float | str]:
    return {
        "start_ms": row["start_ms"],
        "end_ms": row["end_ms"],
        "polarity": row["polarity"],
        "latency_ms": row["latency_ms"],
        "amplitude_uv": row["amplitude"] * 1e6,
    }
