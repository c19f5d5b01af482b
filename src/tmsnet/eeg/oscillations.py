"""TMS-evoked oscillations: ERSP, inter-trial coherence and the natural frequency.

Time-frequency decomposition is MNE's Morlet wavelet transform
(:func:`mne.time_frequency.tfr_array_morlet`, ``output="avg_power_itc"``).
ERSP is the trial-averaged power in dB relative to the mean power in a
pre-pulse baseline; ITC is the inter-trial phase coherence (0-1).

The natural frequency (Rosanova et al. 2009, J Neurosci 29:7679) is the
frequency of maximal TMS-evoked spectral power (ERSP) over the stimulated
area in the first ~200 ms (``../shared/REFERENCES.md`` section 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tmsnet.exceptions import InvalidParameterError

__all__ = ["TimeFrequency", "ersp_itc", "natural_frequency"]


@dataclass
class TimeFrequency:
    """ERSP and ITC of a set of epochs.

    Attributes
    ----------
    ersp_db : ndarray, shape (n_channels, n_freqs, n_times)
        Power relative to the baseline (dB).
    itc : ndarray, shape (n_channels, n_freqs, n_times)
        Inter-trial phase coherence.
    freqs : ndarray
        Frequencies (Hz).
    times : ndarray
        Times (s), decimated by ``decim``.
    ch_names : list of str
        Channel names.
    baseline : (float, float)
        Baseline window (s).
    """

    ersp_db: np.ndarray
    itc: np.ndarray
    freqs: np.ndarray
    times: np.ndarray
    ch_names: list[str]
    baseline: tuple[float, float]


def ersp_itc(
    epochs,
    *,
    freqs: Sequence[float] | None = None,
    n_cycles: float | Sequence[float] | None = None,
    baseline: Sequence[float] = (-0.5, -0.1),
    tmin: float = -0.6,
    tmax: float = 0.6,
    decim: int = 4,
    picks=None,
) -> TimeFrequency:
    """Morlet ERSP (dB) and ITC of epochs.

    Parameters
    ----------
    epochs : mne.Epochs
        Cleaned epochs.
    freqs : sequence of float, optional
        Frequencies (Hz); default 5 to 45 Hz in 1 Hz steps.
    n_cycles : float or sequence, optional
        Wavelet cycles; default ``freqs / 3`` bounded below by 3 (about 100 ms
        or more of temporal support at 30 Hz).
    baseline : (float, float)
        Baseline window (s) of the ERSP.
    tmin, tmax : float
        Epoch span transformed (s); wider than the output to limit edge
        effects of the wavelets.
    decim : int
        Keep every ``decim``-th sample of the output.
    picks : str or list, optional
        Channels (default all EEG).

    Returns
    -------
    TimeFrequency
    """
    from mne.time_frequency import tfr_array_morlet

    freqs = np.arange(5.0, 46.0, 1.0) if freqs is None else np.asarray(freqs, dtype=float)
    if n_cycles is None:
        n_cycles = np.maximum(freqs / 3.0, 3.0)
    ep = epochs.copy().pick(picks if picks is not None else "eeg")
    ep.crop(max(tmin, ep.tmin), min(tmax, ep.tmax))
    data = ep.get_data()
    sfreq = ep.info["sfreq"]
    if not baseline[0] < baseline[1] or baseline[0] < ep.tmin:
        raise InvalidParameterError(f"ERSP baseline {baseline} must lie inside the epochs.")
    out = tfr_array_morlet(data, sfreq, freqs, n_cycles=n_cycles, output="avg_power_itc",
                           decim=decim, zero_mean=True, verbose=False)
    # MNE packs the average power in the real part and the ITC in the imaginary part
    power, itc = out.real, out.imag
    times = ep.times[::decim]
    base = (times >= baseline[0]) & (times <= baseline[1])
    ref = power[:, :, base].mean(axis=2, keepdims=True)
    ersp = 10.0 * np.log10(np.maximum(power, 1e-40) / np.maximum(ref, 1e-40))
    return TimeFrequency(ersp_db=ersp, itc=itc, freqs=freqs, times=times, ch_names=list(ep.ch_names),
                         baseline=(float(baseline[0]), float(baseline[1])))


def natural_frequency(
    tf: TimeFrequency,
    *,
    channels: Sequence[str] | None = None,
    window: Sequence[float] = (0.020, 0.200),
    fmin: float = 8.0,
) -> dict[str, float]:
    """Frequency of maximal TMS-evoked power over a channel set.

    Parameters
    ----------
    tf : TimeFrequency
        From :func:`ersp_itc`.
    channels : sequence of str, optional
        Channels over the stimulated area (default: all).
    window : (float, float)
        Post-pulse window (s) over which the ERSP is averaged.
    fmin : float
        Lowest frequency considered (Hz); slow TEP components otherwise
        dominate the power of the first 200 ms.

    Returns
    -------
    dict
        ``frequency_hz``, ``ersp_db`` (the averaged ERSP at that frequency),
        ``channels``, ``window_s``.
    """
    names = tf.ch_names
    if channels:
        missing = [c for c in channels if c not in names]
        if missing:
            raise InvalidParameterError(f"Channels {missing} are not in the data; choose from {names}.")
        idx = [names.index(c) for c in channels]
    else:
        idx = list(range(len(names)))
    tsel = (tf.times >= window[0]) & (tf.times <= window[1])
    fsel = tf.freqs >= fmin
    if not tsel.any() or not fsel.any():
        raise InvalidParameterError("The natural-frequency window or fmin selects no data.")
    spectrum = tf.ersp_db[idx][:, fsel][:, :, tsel].mean(axis=(0, 2))
    i = int(np.argmax(spectrum))
    return {"frequency_hz": float(tf.freqs[fsel][i]), "ersp_db": float(spectrum[i]),
            "channels": [names[j] for j in idx], "window_s": [float(window[0]), float(window[1])]}
