"""Synchronization between channels before and after the pulse (wPLI / PLV by band).

Connectivity is :func:`mne_connectivity.spectral_connectivity_epochs` (multitaper)
on a pre-pulse and an equally long post-pulse segment of the epochs;
``../shared/REFERENCES.md`` section 2. wPLI (Vinck et al. 2011) ignores
zero-lag coupling, so volume conduction alone does not raise it; PLV does not.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError

__all__ = ["DEFAULT_BANDS", "synchrony_pre_post"]

#: Frequency bands (Hz).
DEFAULT_BANDS: dict[str, tuple[float, float]] = {
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


def _segment_connectivity(epochs, tmin: float, tmax: float, methods: Sequence[str],
                          bands: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    from mne_connectivity import spectral_connectivity_epochs

    ep = epochs.copy().crop(tmin, tmax)
    fmin = [b[0] for b in bands.values()]
    fmax = [b[1] for b in bands.values()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conns = spectral_connectivity_epochs(ep, method=list(methods), mode="multitaper",
                                             fmin=fmin, fmax=fmax, faverage=True, verbose=False)
    if not isinstance(conns, list):
        conns = [conns]
    n = len(ep.ch_names)
    out = {}
    for method, con in zip(methods, conns, strict=True):
        dense = con.get_data(output="dense")  # (n, n, n_bands), lower triangle
        full = dense + np.transpose(dense, (1, 0, 2))
        full[np.arange(n), np.arange(n)] = np.nan
        out[method] = full
    return out


def synchrony_pre_post(
    epochs,
    *,
    methods: Sequence[str] = ("wpli", "plv"),
    bands: Mapping[str, Sequence[float]] = DEFAULT_BANDS,
    pre: Sequence[float] = (-0.5, -0.1),
    post: Sequence[float] = (0.02, 0.42),
    picks=None,
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Phase synchronization (wPLI, PLV) between channels, pre vs post pulse, per band.

    Parameters
    ----------
    epochs : mne.Epochs
        Cleaned epochs.
    methods : sequence of str
        mne-connectivity methods (``"wpli"``, ``"plv"``, ``"pli"``...).
    bands : mapping of str to (fmin, fmax)
        Frequency bands (Hz).
    pre, post : (float, float)
        Segments (s); give them equal lengths so the estimates compare.
    picks : str or list, optional
        Channels (default all EEG).

    Returns
    -------
    summary : pandas.DataFrame
        One row per method and band: ``pre``, ``post`` (mean over channel
        pairs) and ``change`` (post - pre).
    matrices : dict
        ``matrices[method]["pre"|"post"]`` of shape (n_channels, n_channels,
        n_bands), NaN on the diagonal.
    """
    if abs((pre[1] - pre[0]) - (post[1] - post[0])) > 1e-6:
        raise InvalidParameterError(f"pre {pre} and post {post} segments must have equal lengths.")
    ep = epochs.copy().pick(picks if picks is not None else "eeg")
    if pre[0] < ep.tmin or post[1] > ep.tmax:
        raise InvalidParameterError(f"Segments {pre}, {post} s must lie within the epochs.")
    before = _segment_connectivity(ep, pre[0], pre[1], methods, bands)
    after = _segment_connectivity(ep, post[0], post[1], methods, bands)
    rows = []
    matrices: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        matrices[method] = {"pre": before[method], "post": after[method]}
        for b, band in enumerate(bands):
            a = float(np.nanmean(before[method][:, :, b]))
            p = float(np.nanmean(after[method][:, :, b]))
            rows.append({"method": method, "band": band, "fmin": bands[band][0], "fmax": bands[band][1],
                         "pre": a, "post": p, "change": p - a})
    return pd.DataFrame(rows), matrices
