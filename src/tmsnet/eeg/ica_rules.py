"""Automatic ICA component rules for TMS-EEG (after TESA ``tesa_compselect``).

For each independent component (IC) of an :class:`mne.preprocessing.ICA`
fitted on epochs, the features are (``../shared/REFERENCES.md`` section 2;
Rogasch et al. 2017, NeuroImage 147:934):

* **TMS-evoked muscle**: ``mean |avg(t)|`` over ``tms_muscle_window_ms``
  divided by ``mean |avg(t)|`` over the whole epoch, where ``avg`` is the
  trial-averaged IC time course; flagged when >= ``tms_muscle_ratio`` (8).
* **blink**: mean of the z-scored IC topography (z across channels, SD with
  N-1 as MATLAB's ``zscore``) at Fp1 and Fp2; flagged when |mean| >= 2.5.
* **lateral eye movement**: z at F7 and F8 beyond +/-2 with opposite signs.
* **persistent muscle**: slope of log10 power against log10 frequency of the
  IC (Welch PSD averaged over trials) between 7 and 75 Hz, line-noise band
  excluded; flagged when > -0.31 (muscle has a flat spectrum, EEG ~1/f).
* **electrode noise**: any channel with |z| >= 4 in the topography.

A component gets the first label that applies, in this order, and the reason
(feature value and threshold) is recorded. Rules whose channels are missing
are skipped and reported, not guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import signal as sps

from tmsnet.exceptions import InvalidParameterError

__all__ = [
    "ALL_RULES",
    "ROUND2_RULES",
    "ComponentRules",
    "classify_components",
    "component_features",
]

#: Rule names in TESA's order of precedence.
ALL_RULES: tuple[str, ...] = ("tms_muscle", "blink", "eye_movement", "persistent_muscle",
                              "electrode_noise")


#: Rules of the second ICA round in REFERENCES.md section 2 (step 5).
ROUND2_RULES: tuple[str, ...] = ("blink", "eye_movement", "persistent_muscle", "electrode_noise")


@dataclass(frozen=True)
class ComponentRules:
    """Thresholds of the component rules (TESA defaults; REFERENCES.md section 2)."""

    tms_muscle_ratio: float = 8.0
    tms_muscle_window_ms: tuple[float, float] = (11.0, 30.0)
    blink_z: float = 2.5
    blink_channels: tuple[str, ...] = ("Fp1", "Fp2")
    eye_movement_z: float = 2.0
    eye_movement_channels: tuple[str, str] = ("F7", "F8")
    muscle_slope: float = -0.31
    muscle_freq_hz: tuple[float, float] = (7.0, 75.0)
    line_freq: float | None = 50.0
    electrode_noise_z: float = 4.0

    def as_dict(self) -> dict:
        """Parameters as plain data (for sidecars)."""
        return asdict(self)


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0, ddof=1)
    sd[sd == 0] = 1.0
    return (x - x.mean(axis=0)) / sd


def _find(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    lower = [n.lower() for n in names]
    return [lower.index(w.lower()) for w in wanted if w.lower() in lower]


def component_features(ica, epochs, *, rules: ComponentRules = ComponentRules()) -> pd.DataFrame:
    """Rule features of every component.

    Parameters
    ----------
    ica : mne.preprocessing.ICA
        Fitted on ``epochs`` (or on epochs with the same channels).
    epochs : mne.Epochs
        Epochs around the pulses (time 0 = pulse).
    rules : ComponentRules
        Windows, channels and frequency ranges.

    Returns
    -------
    pandas.DataFrame
        One row per component: ``component``, ``variance_explained``,
        ``tms_muscle_ratio``, ``blink_z``, ``eye_z_left``, ``eye_z_right``,
        ``spectral_slope``, ``max_abs_z``.
    """
    sources = ica.get_sources(epochs).get_data()  # (n_epochs, n_comp, n_times)
    times = epochs.times
    sfreq = epochs.info["sfreq"]
    patterns = ica.get_components()  # (n_channels, n_comp)
    z = _zscore(patterns)
    names = list(ica.ch_names)
    n_comp = patterns.shape[1]

    avg = np.abs(sources.mean(axis=0))
    w0, w1 = (v / 1000.0 for v in rules.tms_muscle_window_ms)
    win = (times >= w0 - 1e-9) & (times <= w1 + 1e-9)
    if not win.any():
        raise InvalidParameterError(
            f"The TMS-evoked muscle window {rules.tms_muscle_window_ms} ms is outside the epochs."
        )
    ratio = avg[:, win].mean(axis=1) / np.maximum(avg.mean(axis=1), 1e-30)

    blink_idx = _find(names, rules.blink_channels)
    blink = z[blink_idx].mean(axis=0) if blink_idx else np.full(n_comp, np.nan)
    eye_idx = _find(names, rules.eye_movement_channels)
    if len(eye_idx) == 2:
        eye_l, eye_r = z[eye_idx[0]], z[eye_idx[1]]
    else:
        eye_l = eye_r = np.full(n_comp, np.nan)

    nperseg = int(min(sources.shape[-1], round(sfreq)))
    freqs, psd = sps.welch(sources, fs=sfreq, nperseg=nperseg, axis=-1)
    psd = psd.mean(axis=0)  # (n_comp, n_freqs)
    fsel = (freqs >= rules.muscle_freq_hz[0]) & (freqs <= rules.muscle_freq_hz[1])
    if rules.line_freq:
        fsel &= np.abs(freqs - rules.line_freq) > 3.0
    slope = np.full(n_comp, np.nan)
    if fsel.sum() >= 3:
        lf = np.log10(freqs[fsel])
        lp = np.log10(np.maximum(psd[:, fsel], 1e-300))
        slope = np.polyfit(lf, lp.T, 1)[0]

    var = _variance_explained(ica, sources, patterns)
    return pd.DataFrame({
        "component": np.arange(n_comp),
        "variance_explained": var,
        "tms_muscle_ratio": ratio,
        "blink_z": blink,
        "eye_z_left": eye_l,
        "eye_z_right": eye_r,
        "spectral_slope": slope,
        "max_abs_z": np.abs(z).max(axis=0),
    })


def _variance_explained(ica, sources: np.ndarray, patterns: np.ndarray) -> np.ndarray:
    """Share of the summed back-projected variance carried by each component."""
    src_var = sources.transpose(1, 0, 2).reshape(sources.shape[1], -1).var(axis=1)
    power = src_var * (patterns ** 2).sum(axis=0)
    total = power.sum()
    return power / total if total > 0 else power


def classify_components(
    features: pd.DataFrame,
    *,
    rules: ComponentRules = ComponentRules(),
    apply: Sequence[str] = ALL_RULES,
) -> pd.DataFrame:
    """Label each component by the first rule it meets.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`component_features`.
    rules : ComponentRules
        Thresholds.
    apply : sequence of str
        Rules to apply (subset of :data:`ALL_RULES`).

    Returns
    -------
    pandas.DataFrame
        ``features`` plus ``label`` (``"keep"`` or the rule name) and
        ``reason`` (readable text with the value and threshold).
    """
    unknown = [r for r in apply if r not in ALL_RULES]
    if unknown:
        raise InvalidParameterError(f"Unknown ICA rules {unknown}; choose from {list(ALL_RULES)}.")
    labels, reasons = [], []
    for row in features.itertuples(index=False):
        label, reason = "keep", ""
        for rule in ALL_RULES:
            if rule not in apply:
                continue
            hit, text = _check(rule, row, rules)
            if hit:
                label, reason = rule, text
                break
        labels.append(label)
        reasons.append(reason)
    out = features.copy()
    out["label"] = labels
    out["reason"] = reasons
    return out


def _check(rule: str, row, rules: ComponentRules) -> tuple[bool, str]:
    if rule == "tms_muscle":
        v = row.tms_muscle_ratio
        w = rules.tms_muscle_window_ms
        return bool(v >= rules.tms_muscle_ratio), (
            f"TMS-evoked muscle: mean |amplitude| {w[0]:g}-{w[1]:g} ms is {v:.1f}x the epoch mean "
            f"(>= {rules.tms_muscle_ratio:g})")
    if rule == "blink":
        v = row.blink_z
        if not np.isfinite(v):
            return False, ""
        return bool(abs(v) >= rules.blink_z), (
            f"blink: mean topography z at {'/'.join(rules.blink_channels)} = {v:.2f} "
            f"(|z| >= {rules.blink_z:g})")
    if rule == "eye_movement":
        a, b = row.eye_z_left, row.eye_z_right
        if not (np.isfinite(a) and np.isfinite(b)):
            return False, ""
        t = rules.eye_movement_z
        hit = (a >= t and b <= -t) or (b >= t and a <= -t)
        c1, c2 = rules.eye_movement_channels
        return bool(hit), (f"lateral eye movement: z {c1} = {a:.2f}, {c2} = {b:.2f} "
                           f"(opposite signs beyond +/-{t:g})")
    if rule == "persistent_muscle":
        v = row.spectral_slope
        if not np.isfinite(v):
            return False, ""
        f = rules.muscle_freq_hz
        return bool(v > rules.muscle_slope), (
            f"persistent muscle: log-log spectral slope {f[0]:g}-{f[1]:g} Hz = {v:.2f} "
            f"(> {rules.muscle_slope:g})")
    v = row.max_abs_z
    return bool(v >= rules.electrode_noise_z), (
        f"electrode noise: max |z| of the topography = {v:.2f} (>= {rules.electrode_noise_z:g})")
