"""The TMS pulse window: cut and interpolate, and fit out the decay artifact.

MNE's :func:`mne.preprocessing.fix_stim_artifact` replaces a window by a line,
a window function or a constant; TESA's default is a cubic polynomial fitted
to the samples just before and after the cut (Rogasch et al. 2017; TESA
``tesa_interpdata``; ``../shared/REFERENCES.md`` section 2). Both are offered
by :func:`interpolate_pulse_window`.

The decay artifact (slow recovery of the amplifier/electrode after the pulse)
is modelled on the trial average of each channel, after the cut, as
``a * exp(-t / tau) + c`` or ``a1 * exp(-t / tau1) + a2 * exp(-t / tau2) + c``
(TESA ``tesa_fitdecay``/``tesa_detrend`` 'exp' and 'double'); the exponential
terms (not the offset) are subtracted from every trial. Amplitudes are solved
by linear least squares for each candidate time constant (variable
projection), so only the 1 or 2 time constants are searched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from tmsnet.exceptions import InvalidParameterError

__all__ = [
    "DecayFit",
    "fit_decay",
    "interpolate_pulse_window",
    "interpolate_window_array",
    "remove_decay",
]

_MNE_MODES = ("linear", "window", "constant")


def _window_masks(times: np.ndarray, cut: Sequence[float], flank_s: Sequence[float]):
    t0, t1 = (float(v) for v in cut)
    if t1 <= t0:
        raise InvalidParameterError(f"The cut window must have start < end, got {cut}.")
    if t0 < times[0] or t1 > times[-1]:
        raise InvalidParameterError(
            f"The cut window {cut} s lies outside the epoch ({times[0]:.3f} to {times[-1]:.3f} s)."
        )
    eps = 1e-9
    cut_mask = (times >= t0 - eps) & (times <= t1 + eps)
    before = (times < t0 - eps) & (times >= t0 - float(flank_s[0]) - eps)
    after = (times > t1 + eps) & (times <= t1 + float(flank_s[1]) + eps)
    return cut_mask, before, after


def interpolate_window_array(
    data: np.ndarray,
    times: np.ndarray,
    *,
    cut: Sequence[float] = (-0.002, 0.010),
    flank_s: Sequence[float] = (0.001, 0.001),
    degree: int = 3,
) -> np.ndarray:
    """Replace ``cut`` by a polynomial fitted to the flanks (in place).

    Parameters
    ----------
    data : ndarray, shape (..., n_times)
        Epochs or evoked data; modified in place and returned.
    times : ndarray, shape (n_times,)
        Time of each sample (s).
    cut : (float, float)
        Window to replace (s, inclusive), e.g. (-0.002, 0.010).
    flank_s : (float, float)
        Length of the data before and after the cut used for the fit (s).
    degree : int
        Polynomial degree: 3 (cubic, TESA's default) or 1 (a line fitted to
        both flanks).

    Returns
    -------
    ndarray
        ``data``.

    Raises
    ------
    InvalidParameterError
        If the window lies outside the epoch or the flanks hold too few samples
        for the polynomial.
    """
    times = np.asarray(times, dtype=float)
    cut_mask, before, after = _window_masks(times, cut, flank_s)
    fit_mask = before | after
    if fit_mask.sum() < degree + 1 or not before.any() or not after.any():
        raise InvalidParameterError(
            f"Too few samples around the cut window {cut} s to fit a degree-{degree} polynomial "
            f"(flanks {flank_s} s at {1 / np.median(np.diff(times)):.0f} Hz): widen the flanks."
        )
    # centre and scale time for a well-conditioned Vandermonde matrix
    centre = 0.5 * (cut[0] + cut[1])
    scale = max(abs(cut[1] - cut[0]), 1e-6)
    tf = (times[fit_mask] - centre) / scale
    tc = (times[cut_mask] - centre) / scale
    a_fit = np.vander(tf, degree + 1)
    a_cut = np.vander(tc, degree + 1)
    flat = data.reshape(-1, data.shape[-1])
    coefs, *_ = np.linalg.lstsq(a_fit, flat[:, fit_mask].T, rcond=None)
    flat[:, cut_mask] = (a_cut @ coefs).T
    return data


def interpolate_pulse_window(
    epochs,
    *,
    cut: Sequence[float] = (-0.002, 0.010),
    flank_s: Sequence[float] = (0.001, 0.001),
    method: str = "cubic",
):
    """Cut the pulse window of :class:`mne.Epochs` and interpolate it (in place).

    Parameters
    ----------
    epochs : mne.Epochs
        Preloaded epochs.
    cut : (float, float)
        Window to remove (s).
    flank_s : (float, float)
        Flanks used by ``"cubic"`` (s); TESA: 1 ms each side for the first cut,
        5 ms for the second.
    method : {"cubic", "linear", "window", "constant"}
        ``"cubic"``: polynomial fit to both flanks (TESA). The others are
        :func:`mne.preprocessing.fix_stim_artifact` modes.

    Returns
    -------
    mne.Epochs
        ``epochs``.
    """
    if method == "cubic":
        # at least 2 samples per flank for the 4 polynomial coefficients (1 ms is 1 sample at 1 kHz)
        min_flank = 2.0 / epochs.info["sfreq"]
        flank_s = tuple(max(float(f), min_flank) for f in flank_s)
        data = epochs.get_data(copy=False)
        interpolate_window_array(data, epochs.times, cut=cut, flank_s=flank_s, degree=3)
        return epochs
    if method in _MNE_MODES:
        from mne.preprocessing import fix_stim_artifact

        _window_masks(epochs.times, cut, flank_s)
        kwargs = {}
        if method == "constant":  # the mean of the flank before the cut
            kwargs["baseline"] = (cut[0] - max(float(flank_s[0]), 0.005), cut[0])
        return fix_stim_artifact(epochs, tmin=cut[0], tmax=cut[1], mode=method, **kwargs)
    raise InvalidParameterError(
        f"Unknown interpolation method {method!r}; use 'cubic', 'linear', 'window' or 'constant'."
    )


@dataclass
class DecayFit:
    """Per-channel decay model ``sum_k a_k exp(-t / tau_k) + c``.

    Attributes
    ----------
    model : str
        ``"exp"`` or ``"double"``.
    taus_s : ndarray, shape (n_channels, n_terms)
        Time constants (s).
    amplitudes : ndarray, shape (n_channels, n_terms)
        Amplitudes at t = 0 (data units).
    offsets : ndarray, shape (n_channels,)
        Constant terms (not subtracted).
    r2 : ndarray, shape (n_channels,)
        Share of the windowed trial-average variance the model explains.
    window_s : (float, float)
        Fit window (s).
    """

    model: str
    taus_s: np.ndarray
    amplitudes: np.ndarray
    offsets: np.ndarray
    r2: np.ndarray
    window_s: tuple[float, float]

    def artifact(self, times: np.ndarray) -> np.ndarray:
        """The exponential terms on ``times`` (zero before the window start)."""
        t = np.asarray(times, dtype=float)
        on = t >= self.window_s[0] - 1e-9
        tt = np.where(on, t, 0.0)
        out = np.zeros((self.taus_s.shape[0], t.size))
        for k in range(self.taus_s.shape[1]):
            out += self.amplitudes[:, k, None] * np.exp(-tt[None, :] / self.taus_s[:, k, None])
        out[:, ~on] = 0.0
        return out


def _amplitudes(y: np.ndarray, t: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, float]:
    basis = np.column_stack([np.exp(-t / tau) for tau in taus] + [np.ones_like(t)])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    resid = y - basis @ coef
    return coef, float(resid @ resid)


def fit_decay(
    evoked_data: np.ndarray,
    times: np.ndarray,
    *,
    model: str = "exp",
    window_s: Sequence[float] = (0.010, 0.500),
    tau_bounds_s: Sequence[float] = (0.001, 0.300),
) -> DecayFit:
    """Fit a single or double exponential decay to each channel of a trial average.

    Parameters
    ----------
    evoked_data : ndarray, shape (n_channels, n_times)
        Trial average (any unit).
    times : ndarray, shape (n_times,)
        Time of each sample (s).
    model : {"exp", "double"}
        One or two exponential terms (plus an offset).
    window_s : (float, float)
        Fit window (s), starting after the cut.
    tau_bounds_s : (float, float)
        Range of the time constants (s).

    Returns
    -------
    DecayFit
    """
    if model not in ("exp", "double"):
        raise InvalidParameterError(f"Decay model must be 'exp' or 'double', got {model!r}.")
    times = np.asarray(times, dtype=float)
    sel = (times >= window_s[0] - 1e-9) & (times <= window_s[1] + 1e-9)
    if sel.sum() < 10:
        raise InvalidParameterError(f"The decay fit window {window_s} s holds fewer than 10 samples.")
    t = times[sel]
    lo, hi = np.log(tau_bounds_s[0]), np.log(tau_bounds_s[1])
    n_ch = evoked_data.shape[0]
    n_terms = 1 if model == "exp" else 2
    taus = np.zeros((n_ch, n_terms))
    amps = np.zeros((n_ch, n_terms))
    offsets = np.zeros(n_ch)
    r2 = np.zeros(n_ch)
    grid = np.linspace(lo, hi, 25)
    for ch in range(n_ch):
        y = evoked_data[ch, sel].astype(float)
        if n_terms == 1:
            costs = [_amplitudes(y, t, np.exp([g]))[1] for g in grid]
            g0 = grid[int(np.argmin(costs))]
            res = optimize.minimize_scalar(
                lambda g, y=y: _amplitudes(y, t, np.exp([g]))[1],
                bounds=(max(lo, g0 - 0.3), min(hi, g0 + 0.3)), method="bounded")
            best = np.exp([res.x])
        else:
            pairs = [(g1, g2) for i, g1 in enumerate(grid[::2]) for g2 in grid[::2][i + 1:]]
            costs = [_amplitudes(y, t, np.exp(p))[1] for p in pairs]
            p0 = np.array(pairs[int(np.argmin(costs))])
            res = optimize.minimize(
                lambda g, y=y: _amplitudes(y, t, np.exp(np.clip(g, lo, hi)))[1], p0,
                method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-12, "maxiter": 200})
            best = np.sort(np.exp(np.clip(res.x, lo, hi)))
        coef, cost = _amplitudes(y, t, best)
        taus[ch] = best
        amps[ch] = coef[:n_terms]
        offsets[ch] = coef[-1]
        total = float(((y - y.mean()) ** 2).sum())
        r2[ch] = 1.0 - cost / total if total > 0 else 0.0
    return DecayFit(model=model, taus_s=taus, amplitudes=amps, offsets=offsets, r2=r2,
                    window_s=(float(window_s[0]), float(window_s[1])))


def remove_decay(
    epochs,
    *,
    model: str = "exp",
    window_s: Sequence[float] = (0.010, 0.500),
    cut: Sequence[float] = (-0.002, 0.010),
    flank_s: Sequence[float] = (0.001, 0.001),
) -> DecayFit:
    """Fit the decay on the trial average, subtract it from every trial, re-interpolate the cut.

    Parameters
    ----------
    epochs : mne.Epochs
        Preloaded epochs whose pulse window was already cut (modified in place).
    model : {"exp", "double"}
        See :func:`fit_decay`.
    window_s : (float, float)
        Fit window (s); the model is subtracted from its start onwards.
    cut, flank_s : (float, float)
        The pulse window, cubic-interpolated again after the subtraction so
        that it joins the corrected data.

    Returns
    -------
    DecayFit
    """
    data = epochs.get_data(copy=False)
    fit = fit_decay(data.mean(axis=0), epochs.times, model=model, window_s=window_s)
    data -= fit.artifact(epochs.times)[None, :, :]
    interpolate_window_array(data, epochs.times, cut=cut, flank_s=flank_s, degree=3)
    return fit
