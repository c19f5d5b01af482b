"""The TMS-EEG cleaning chain (TESA reference pipeline on MNE objects).

Default order (Rogasch et al. 2017; ``../shared/REFERENCES.md`` section 2),
every step optional and recorded in :attr:`CleaningResult.steps`:

1. epoch -1...1 s around the pulses;
2. cut -2...10 ms and interpolate (cubic, 1 ms flanks);
3. decay artifact: exponential fit on the trial average, subtracted (option);
4. downsample to 1 kHz;
5. bad channels (robust z of log variance) and bad trials (robust z of the
   trial's log variance); bad channels are left out of ICA and interpolated
   at the end;
6. ICA round 1 (FastICA, 15 components) removing TMS-evoked muscle;
7. cut -2...15 ms, interpolate (cubic, 5 ms flanks);
8. band-pass 1-100 Hz and band-stop line +/- 2 Hz (4th-order Butterworth,
   zero phase, as TESA ``tesa_filtbutter``);
9. SOUND and SSP-SIR through ``mne-denoise`` (options, off by default);
10. ICA round 2 with the blink, lateral eye movement, persistent muscle and
    electrode noise rules (:mod:`tmsnet.eeg.ica_rules`). The TMS-evoked muscle
    rule can be added (``ica2_rules``) but is off by default in this round:
    after round 1 has removed the muscle, an IC that isolates an early
    *cortical* component (N15-P30) has the same high 11-30 ms ratio, and on
    the planted-truth recordings the rule then removed ~40 % of the TEP;
11. interpolate bad channels, average reference, baseline correction.

Each step's wall time (and, if :mod:`tracemalloc` is tracing, its peak
traced memory) is recorded, which the benchmark reads.
"""

from __future__ import annotations

import time
import tracemalloc
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.eeg.ica_rules import (
    ALL_RULES,
    ROUND2_RULES,
    ComponentRules,
    classify_components,
    component_features,
)
from tmsnet.eeg.pulse import interpolate_pulse_window, remove_decay
from tmsnet.exceptions import EEGDataError, InvalidParameterError
from tmsnet.utils.check import validate_type
from tmsnet.utils.params import Parameters, param

__all__ = [
    "CleaningParameters",
    "CleaningResult",
    "clean_tms_eeg",
    "detect_bad_channels",
    "detect_bad_trials",
    "make_epochs",
]


_INTERPOLATIONS = ("cubic", "linear", "window", "constant")


@dataclass(frozen=True)
class CleaningParameters(Parameters):
    """Every parameter of the chain (defaults after TESA's reference pipeline).

    Times in seconds, frequencies in Hz. Set a step's switch to False (or
    ``decay=None``) to skip it. Frozen and validated at construction
    (:class:`tmsnet.utils.params.Parameters`); ``tmsnet tep`` builds its
    cleaning flags from these fields.
    """

    tmin: float = param(-1.0, help="epoch start relative to the pulse", units="s", cli=False,
                        low=-10, high=0)
    tmax: float = param(1.0, help="epoch end relative to the pulse", units="s", cli=False,
                        low=0, high=10)
    cut1: tuple[float, float] = param((-0.002, 0.010), help="first pulse cut (start, end)", units="s",
                                      item_kind="float", cli=False)
    flank1: tuple[float, float] = param((0.001, 0.001), help="flanks of the first interpolation",
                                        units="s", item_kind="float", low=0, cli=False)
    interpolation: str = param("cubic", help="pulse-window interpolation", choices=_INTERPOLATIONS)
    decay: str | None = param(None, kind="str", choices=("none", "exp", "double"),
                              help="decay artifact fit: none, exponential or double exponential")
    decay_window: tuple[float, float] = param((0.011, 0.500), help="window of the decay fit",
                                              units="s", item_kind="float", cli=False)
    resample_sfreq: float | None = param(1000.0, flag="--resample", units="Hz", low=0,
                                         low_inclusive=False, allow_none=True,
                                         help="sampling rate after cleaning", high=50_000)
    bad_channels: bool = param(True, help="detect bad channels", cli=False)
    bad_channel_z: float = param(5.0, help="robust z of a bad channel's log variance", low=0,
                                 low_inclusive=False, cli=False, high=100)
    bad_trials: bool = param(True, help="detect bad trials", cli=False)
    bad_trial_z: float = param(5.0, help="robust z of a bad trial's log variance", low=0,
                               low_inclusive=False, cli=False, high=100)
    ica1: bool = param(True, flag="--no-ica1", help="ICA round 1 (TMS-evoked muscle)")
    ica1_rules: tuple[str, ...] = param(("tms_muscle",), help="component rules of ICA round 1",
                                        item_kind="str", choices=ALL_RULES, cli=False)
    cut2: tuple[float, float] = param((-0.002, 0.015), help="second pulse cut (start, end)",
                                      units="s", item_kind="float", cli=False)
    flank2: tuple[float, float] = param((0.005, 0.005), help="flanks of the second interpolation",
                                        units="s", item_kind="float", low=0, cli=False)
    l_freq: float | None = param(1.0, help="high-pass edge", units="Hz", low=0, allow_none=True, high=1000)
    h_freq: float | None = param(100.0, help="low-pass edge", units="Hz", low=0, allow_none=True, high=10_000)
    line_freq: float | None = param(50.0, help="line frequency for the band-stop", units="Hz", low=0,
                                    allow_none=True, high=1000)
    notch_half_width: float = param(2.0, help="half width of the band-stop", units="Hz", low=0,
                                    low_inclusive=False, cli=False, high=50)
    sound: bool = param(False, help="SOUND (mne-denoise) after filtering")
    sound_lambda: float = param(0.1, help="SOUND regularization", low=0, cli=False, high=1e4)
    sound_iterations: int = param(5, help="SOUND iterations", low=1, cli=False, high=1000)
    sspsir: bool = param(False, help="SSP-SIR (mne-denoise) after filtering")
    sspsir_components: int = param(2, help="SSP-SIR components", low=1, cli=False, high=256)
    sspsir_window: tuple[float, float] = param((0.005, 0.050), help="SSP-SIR artifact window",
                                               units="s", item_kind="float", cli=False)
    ica2: bool = param(True, flag="--no-ica2", help="ICA round 2 (blink, eye, muscle, noise)")
    ica2_rules: tuple[str, ...] = param(ROUND2_RULES, help="component rules of ICA round 2",
                                        item_kind="str", choices=ALL_RULES, cli=False)
    ica_n_components: int = param(15, flag="--ica-components", low=2, high=256,
                                  help="ICA components per round")
    ica_method: str = param("fastica", choices=("fastica", "picard", "infomax"), help="ICA algorithm")
    ica_max_iter: int = param(400, help="ICA iterations at most", low=1, cli=False, high=100_000)
    rules: ComponentRules = param(help="thresholds of the component rules", kind="any", cli=False,
                                  default_factory=ComponentRules)
    reference: str | None = param("average", help="EEG reference", allow_none=True, cli=False)
    baseline: tuple[float, float] | None = param((-0.5, -0.005), help="baseline correction window",
                                                 units="s", item_kind="float", allow_none=True,
                                                 cli=False)
    random_seed: int = param(0, help="seed of ICA (and of the demo)", low=0,
                             deprecated_flags=("--seed",), high=2**32 - 1)

    def check(self) -> None:
        """Cross-field rules (epoch span, cut windows, band edges, rule thresholds)."""
        if self.decay == "none":  # the command line's spelling of "no decay fit"
            object.__setattr__(self, "decay", None)
        if not self.tmin < -0.1 < 0.3 < self.tmax:
            raise InvalidParameterError("Epochs must span at least -0.1 to 0.3 s around the pulse.")
        for name in ("cut1", "cut2"):
            a, b = getattr(self, name)
            if not (self.tmin < a < b < self.tmax):
                raise InvalidParameterError(f"{name} must satisfy tmin < start < end < tmax, got {(a, b)}.")
        validate_type(self.rules, ComponentRules, "rules", "a ComponentRules")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise InvalidParameterError("--l-freq (l_freq) must be below --h-freq (h_freq).")

    def as_dict(self) -> dict[str, Any]:
        """All parameters as plain data (for sidecars).

        The random seed is recorded under its historical key ``seed``, so
        the sidecars of earlier releases and of this one compare equal.
        """
        d = super().as_dict()
        d["rules"] = self.rules.as_dict()
        d["seed"] = d.pop("random_seed")
        return d


@dataclass
class CleaningResult:
    """Output of :func:`clean_tms_eeg`.

    Attributes
    ----------
    epochs : mne.Epochs
        Cleaned epochs (volts, average reference).
    steps : list of dict
        One record per step: ``step``, ``seconds``, ``peak_mib`` (traced
        memory, or None), ``details``.
    components : pandas.DataFrame
        Features, label and reason of every IC of both rounds (``round``).
    bad_channels : list of str
        Channels detected as bad (interpolated at the end).
    bad_trials : list of int
        Indices (into the original pulse list) of dropped trials.
    parameters : CleaningParameters
        What was run.
    icas : dict
        The fitted ICA objects by round.
    decay_fit : DecayFit or None
        The decay model.
    """

    epochs: Any
    steps: list[dict[str, Any]]
    components: pd.DataFrame
    bad_channels: list[str]
    bad_trials: list[int]
    parameters: CleaningParameters
    icas: dict[int, Any] = field(default_factory=dict)
    decay_fit: Any = None

    def removed_components(self) -> pd.DataFrame:
        """Components removed in either round, with their reason."""
        if self.components.empty:
            return self.components
        return self.components[self.components["label"] != "keep"].reset_index(drop=True)


@contextmanager
def _step(record: list[dict[str, Any]], name: str, details: dict[str, Any]):
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
    start = time.perf_counter()
    yield details
    entry = {"step": name, "seconds": time.perf_counter() - start, "peak_mib": None,
             "details": details}
    if tracing:
        entry["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    record.append(entry)


def make_epochs(raw, events: np.ndarray, *, tmin: float = -1.0, tmax: float = 1.0):
    """Epochs around the pulses (EEG channels only, preloaded, no baseline, no rejection)."""
    import mne

    if len(events) == 0:
        raise EEGDataError("No TMS pulse to epoch around; give --events or check the detection.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epochs = mne.Epochs(raw, events, event_id={"tms": 1} if np.all(events[:, 2] == 1) else None,
                            tmin=tmin, tmax=tmax, baseline=None, picks="eeg", preload=True,
                            reject_by_annotation=False, verbose=False)
    if len(epochs) == 0:
        raise EEGDataError("All pulses are too close to the recording edges for -1..1 s epochs.")
    return epochs


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * 1.4826
    return (x - med) / (mad if mad > 0 else 1.0)


def _outside(times: np.ndarray, cut: Sequence[float]) -> np.ndarray:
    return (times < cut[0] - 0.005) | (times > max(cut[1], 0.05))


def detect_bad_channels(epochs, *, z: float = 5.0, cut: Sequence[float] = (-0.002, 0.015)) -> list[str]:
    """Channels whose log variance (outside the pulse) is a robust-z outlier (noisy or flat).

    Parameters
    ----------
    epochs : mne.Epochs
        Epochs (EEG channels).
    z : float
        |robust z| (median / 1.4826 MAD across channels) at or above which a
        channel is bad.
    cut : (float, float)
        Pulse window excluded (with the first 50 ms) from the variance.

    Returns
    -------
    list of str
    """
    data = epochs.get_data(copy=False)[:, :, _outside(epochs.times, cut)]
    logvar = np.log(data.var(axis=2).mean(axis=0) + 1e-30)
    rz = _robust_z(logvar)
    return [epochs.ch_names[i] for i in np.flatnonzero(np.abs(rz) >= z)]


def detect_bad_trials(epochs, *, z: float = 5.0, cut: Sequence[float] = (-0.002, 0.015)) -> list[int]:
    """Trials whose mean log variance over good channels is a robust-z outlier (high side).

    Returns
    -------
    list of int
        Positions in ``epochs``.
    """
    import mne

    picks = mne.pick_types(epochs.info, eeg=True, exclude="bads")
    data = epochs.get_data(picks=picks, copy=False)[:, :, _outside(epochs.times, cut)]
    per_trial = np.log(data.var(axis=2) + 1e-30).mean(axis=1)
    rz = _robust_z(per_trial)
    return [int(i) for i in np.flatnonzero(rz >= z)]


def _run_ica(epochs, params: CleaningParameters, apply_rules: Sequence[str], rnd: int):
    from mne.preprocessing import ICA

    n_good = len([c for c in epochs.ch_names if c not in epochs.info["bads"]])
    n_comp = int(min(params.ica_n_components, n_good - 1))
    method = params.ica_method
    fit_params = None
    if method == "picard":
        try:
            import picard  # noqa: F401
        except ImportError as exc:
            raise InvalidParameterError("ica_method='picard' needs python-picard: pip install "
                                        "python-picard, or use fastica.") from exc
        fit_params = {"ortho": True, "extended": True}
    ica = ICA(n_components=n_comp, method=method, random_state=params.random_seed,
              max_iter=params.ica_max_iter,
              fit_params=fit_params, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ica.fit(epochs, verbose=False)
        features = component_features(ica, epochs, rules=params.rules)
    table = classify_components(features, rules=params.rules, apply=apply_rules)
    table.insert(0, "round", rnd)
    exclude = table.loc[table["label"] != "keep", "component"].astype(int).tolist()
    ica.exclude = exclude
    if exclude:
        ica.apply(epochs, verbose=False)
    return ica, table


def clean_tms_eeg(raw, events: np.ndarray, params: CleaningParameters | None = None) -> CleaningResult:
    """Run the cleaning chain on a raw recording.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded raw EEG with channel positions.
    events : ndarray, shape (n_pulses, 3)
        Pulse events (:func:`tmsnet.eeg.io.find_pulses`).
    params : CleaningParameters, optional
        Defaults after TESA.

    Returns
    -------
    CleaningResult
    """
    params = params or CleaningParameters()
    steps: list[dict[str, Any]] = []
    tables: list[pd.DataFrame] = []
    icas: dict[int, Any] = {}
    decay_fit = None

    with _step(steps, "epoch", {"tmin": params.tmin, "tmax": params.tmax}) as d:
        epochs = make_epochs(raw, events, tmin=params.tmin, tmax=params.tmax)
        d["n_trials"] = len(epochs)
        d["sfreq"] = epochs.info["sfreq"]
        original_index = np.asarray(epochs.selection)
    with _step(steps, "interpolate_pulse_1", {"cut_s": params.cut1, "flank_s": params.flank1,
                                               "method": params.interpolation}):
        interpolate_pulse_window(epochs, cut=params.cut1, flank_s=params.flank1,
                                 method=params.interpolation)
    if params.decay:
        with _step(steps, "decay", {"model": params.decay, "window_s": params.decay_window}) as d:
            decay_fit = remove_decay(epochs, model=params.decay, window_s=params.decay_window,
                                     cut=params.cut1, flank_s=params.flank1)
            d["median_tau_ms"] = float(np.median(decay_fit.taus_s) * 1000)
            d["median_r2"] = float(np.median(decay_fit.r2))
    if params.resample_sfreq and epochs.info["sfreq"] > params.resample_sfreq:
        with _step(steps, "resample", {"sfreq": params.resample_sfreq, "method": "polyphase"}):
            epochs.resample(params.resample_sfreq, method="polyphase", verbose=False)
    bad_channels, bad_trials = _reject_bad(epochs, params, steps, original_index)
    if params.ica1:
        _ica_round(epochs, params, 1, steps, icas, tables)
    with _step(steps, "interpolate_pulse_2", {"cut_s": params.cut2, "flank_s": params.flank2,
                                               "method": params.interpolation}):
        interpolate_pulse_window(epochs, cut=params.cut2, flank_s=params.flank2,
                                 method=params.interpolation)
    if params.l_freq is not None or params.h_freq is not None or params.line_freq:
        _filter(epochs, params, steps)
    if params.sspsir:
        with _step(steps, "ssp_sir", {"n_components": params.sspsir_components,
                                      "art_window_s": params.sspsir_window, "package": "mne-denoise"}):
            epochs = _apply_denoise(epochs, "sspsir", params)
    if params.sound:
        with _step(steps, "sound", {"lambda": params.sound_lambda, "iterations": params.sound_iterations,
                                    "package": "mne-denoise"}):
            epochs = _apply_denoise(epochs, "sound", params)
    if params.ica2:
        _ica_round(epochs, params, 2, steps, icas, tables)
    with _step(steps, "interpolate_channels_reference", {"reference": params.reference,
                                                         "baseline_s": params.baseline}) as d:
        if epochs.info["bads"]:
            d["interpolated"] = list(epochs.info["bads"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                epochs.interpolate_bads(reset_bads=True, verbose=False)
        if params.reference == "average":
            epochs.set_eeg_reference("average", projection=False, verbose=False)
        if params.baseline is not None:
            epochs.apply_baseline(params.baseline, verbose=False)
    components = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return CleaningResult(epochs=epochs, steps=steps, components=components,
                          bad_channels=bad_channels, bad_trials=bad_trials, parameters=params,
                          icas=icas, decay_fit=decay_fit)


def _reject_bad(epochs, params: CleaningParameters, steps: list[dict[str, Any]],
                original_index: np.ndarray) -> tuple[list[str], list[int]]:
    """Mark bad channels and drop bad trials (in place); their names / original indices."""
    bad_channels: list[str] = []
    if params.bad_channels:
        with _step(steps, "bad_channels", {"robust_z": params.bad_channel_z}) as d:
            bad_channels = detect_bad_channels(epochs, z=params.bad_channel_z, cut=params.cut2)
            if len(bad_channels) > len(epochs.ch_names) // 4:
                raise EEGDataError(
                    f"{len(bad_channels)} of {len(epochs.ch_names)} channels look bad ({bad_channels}); "
                    "check the recording or raise bad_channel_z.")
            epochs.info["bads"] = sorted(set(epochs.info["bads"]) | set(bad_channels))
            d["bad_channels"] = list(bad_channels)
    bad_trials: list[int] = []
    if params.bad_trials:
        with _step(steps, "bad_trials", {"robust_z": params.bad_trial_z}) as d:
            drop = detect_bad_trials(epochs, z=params.bad_trial_z, cut=params.cut2)
            if len(drop) > len(epochs) // 2:
                raise EEGDataError(f"{len(drop)} of {len(epochs)} trials look bad; check the recording "
                                   "or raise bad_trial_z.")
            bad_trials = [int(original_index[i]) for i in drop]
            if drop:
                epochs.drop(drop, reason="tmsnet bad trial", verbose=False)
            d["bad_trials"] = bad_trials
    return bad_channels, bad_trials


def _ica_round(epochs, params: CleaningParameters, rnd: int, steps: list[dict[str, Any]],
               icas: dict[int, Any], tables: list[pd.DataFrame]) -> None:
    """ICA round ``rnd`` (1: TMS-evoked muscle, after demeaning; 2: the other rules), in place."""
    rules = params.ica1_rules if rnd == 1 else params.ica2_rules
    with _step(steps, f"ica_round_{rnd}", {"rules": list(rules),
                                           "n_components": params.ica_n_components,
                                           "method": params.ica_method}) as d:
        if rnd == 1:
            epochs.apply_baseline(None, verbose=False)  # demean each epoch (TESA)
        icas[rnd], table = _run_ica(epochs, params, rules, rnd)
        tables.append(table)
        d["iterations"] = int(icas[rnd].n_iter_)
        d["converged"] = bool(icas[rnd].n_iter_ < params.ica_max_iter)
        d["removed"] = table.loc[table["label"] != "keep", ["component", "label"]].to_dict("records")


def _filter(epochs, params: CleaningParameters, steps: list[dict[str, Any]]) -> None:
    """Band-pass and line band-stop (TESA ``tesa_filtbutter``), in place."""
    with _step(steps, "filter", {"l_freq": params.l_freq, "h_freq": params.h_freq,
                                 "line_freq": params.line_freq,
                                 "notch_half_width": params.notch_half_width,
                                 "design": "Butterworth order 4, zero phase (sos)"}):
        iir = {"order": 4, "ftype": "butter", "output": "sos"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if params.l_freq is not None or params.h_freq is not None:
                epochs.filter(params.l_freq, params.h_freq, method="iir", iir_params=iir,
                              phase="zero", verbose=False)
            if params.line_freq and params.line_freq + params.notch_half_width < epochs.info[
                    "sfreq"] / 2:
                epochs.filter(params.line_freq + params.notch_half_width,
                              params.line_freq - params.notch_half_width, method="iir",
                              iir_params=iir, phase="zero", verbose=False)


def _apply_denoise(epochs, which: str, params: CleaningParameters):
    """SOUND / SSP-SIR through the maintained ``mne-denoise`` package."""
    try:
        if which == "sound":
            from mne_denoise.sound import SOUND as Model  # noqa: N811
        else:
            from mne_denoise.sspsir import SSPSIR as Model  # noqa: N811
    except ImportError as exc:
        raise InvalidParameterError(
            f"{which.upper()} needs the mne-denoise package (pip install mne-denoise)."
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "sound":
            model = Model(lambda_=params.sound_lambda, n_iter=params.sound_iterations,
                          reference="best", random_state=params.random_seed)
        else:
            model = Model(n_components=params.sspsir_components, art_window=params.sspsir_window)
        good = [c for c in epochs.ch_names if c not in epochs.info["bads"]]
        sub = epochs.copy().pick(good)
        cleaned = model.fit_transform(sub)
        data = epochs.get_data(copy=False)
        idx = [epochs.ch_names.index(c) for c in good]
        data[:, idx, :] = cleaned.get_data()
    return epochs
