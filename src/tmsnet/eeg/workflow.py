"""The TMS-EEG job: clean, measure, write (used by ``tmsnet tep``).

:func:`analyze_tep` composes the science (cleaning chain, TEP and peaks,
ERSP/ITC and natural frequency, synchronization, propagation, PCIst) into a
:class:`TepAnalysis`; :func:`write_tep_outputs` writes the BIDS-Derivatives
files. Everything is computed before the first file is written, and every
file is written atomically with a provenance sidecar, so a failed run leaves
no half-written result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.eeg.cleaning import CleaningParameters, CleaningResult, clean_tms_eeg
from tmsnet.eeg.oscillations import TimeFrequency, ersp_itc, natural_frequency
from tmsnet.eeg.pcist import PcistResult, pcist
from tmsnet.eeg.propagation import Propagation, propagation
from tmsnet.eeg.synchrony import synchrony_pre_post
from tmsnet.eeg.teps import DEFAULT_WINDOWS_MS, gmfp, peak_table
from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.atomic import atomic_write_json, atomic_write_tsv, atomic_write_with
from tmsnet.io.bids import (
    DERIVATIVES_NAME,
    derivatives_description,
    entity_prefix,
    parse_entities,
    subject_folder,
    write_dataset_description,
)
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.utils.params import Parameters, param

__all__ = [
    "TEP_SIDECAR_SPACE",
    "TepAnalysis",
    "TepMeasureParameters",
    "analyze_tep",
    "entities_from_path",
    "tep_summary",
    "write_tep_outputs",
]

DEFAULT_ROI: tuple[str, ...] = ("C3", "FC1", "CP1", "C1", "FC3", "CP3")
#: The ``Space`` of every TMS-EEG sidecar.
TEP_SIDECAR_SPACE = "CapTrak-like head coordinates (EEG channel positions), m"
#: Entities of a recording whose file name does not say.
TEP_DEFAULT_ENTITIES: dict[str, str] = {"sub": "01", "task": "tms"}


@dataclass(frozen=True)
class TepMeasureParameters(Parameters):
    """Parameters of the TMS-EEG measures (peaks, ROI, PCIst) of :func:`analyze_tep`."""

    windows_ms: Mapping[str, tuple[float, float]] = param(
        help="peak windows by component", units="ms", kind="any", cli=False,
        default_factory=lambda: dict(DEFAULT_WINDOWS_MS))
    roi: tuple[str, ...] | None = param(
        None, kind="tuple", item_kind="str", allow_none=True, nargs="+",
        help="channels over the stimulated area (None: those of C3, FC1, CP1, C1, FC3, CP3 present, "
             "else the 4 channels of largest post-pulse amplitude)")
    pcist_sfreq: float = param(1000.0, units="Hz", low=0, low_inclusive=False, cli=False,
                               high=50_000,
                               help="PCIst is computed at this rate (the evoked is resampled if needed)")
    pcist_convention: str = param("reference", choices=("reference", "inclusive"),
                                  help="PCIst window convention: reference Python (w0 <= t < w1) or "
                                       "MATLAB (inclusive)")

    def check(self) -> None:
        """Every peak window is a (start, end) pair in ms with start < end."""
        for name, window in self.windows_ms.items():
            if len(tuple(window)) != 2 or not float(window[0]) < float(window[1]):
                raise InvalidParameterError(
                    f"Peak window {name!r} must be (start, end) in ms with start < end, got {window!r}.")


@dataclass
class TepAnalysis:
    """Everything computed for one recording."""

    cleaning: CleaningResult
    evoked: Any
    gmfp: np.ndarray
    peaks: pd.DataFrame
    tf: TimeFrequency
    natural_frequency: dict[str, Any]
    synchrony: pd.DataFrame
    propagation: Propagation
    pcist: PcistResult
    roi: list[str]
    parameters: dict[str, Any] = field(default_factory=dict)
    pulse_source: str = ""
    warnings: list[str] = field(default_factory=list)


#: Post-pulse window (s) of the response and pre-pulse baseline (s) of :func:`tep_signal_to_noise`.
RESPONSE_WINDOW_S = (0.015, 0.300)
BASELINE_WINDOW_S = (-0.500, -0.010)
#: Below this signal-to-noise ratio the job warns that no response stands out from the baseline
#: (recordings without a response score 0.7-1.0; the planted test recording 2.8).
MIN_TEP_SNR = 1.5


def tep_signal_to_noise(evoked) -> float:
    """RMS of the GMFP 15-300 ms after the pulse over its RMS in the baseline (-500 to -10 ms).

    An average of trials without a response has the same GMFP after the pulse as before
    it (ratio ~1); a TEP rises well above it (the planted test recordings: > 5). The
    baseline is clipped to the epoch.
    """
    g, t = gmfp(evoked.data), evoked.times
    post = (t >= RESPONSE_WINDOW_S[0]) & (t <= RESPONSE_WINDOW_S[1])
    pre = (t >= BASELINE_WINDOW_S[0]) & (t <= BASELINE_WINDOW_S[1])
    if not post.any() or not pre.any():
        return float("nan")
    noise = float(np.sqrt(np.mean(g[pre] ** 2)))
    return float(np.sqrt(np.mean(g[post] ** 2)) / noise) if noise > 0 else float("inf")


def tep_warnings(cleaning: CleaningResult, snr: float) -> list[str]:
    """Plain-language warnings when the measures may describe noise, not a response."""
    out = []
    table = cleaning.components
    if not table.empty:
        for rnd, rows in table.groupby("round"):
            if (rows["label"] != "keep").all():
                out.append(f"ICA round {rnd} removed every component ({len(rows)} of {len(rows)}): "
                           "nothing of the recording's own activity survived that round; check the "
                           "ICA rules and the recording.")
    if not snr >= MIN_TEP_SNR:
        out.append(f"No evoked response stands out: the GMFP after the pulse is {snr:.1f} x its "
                   f"baseline (below {MIN_TEP_SNR:g}); peaks, PCIst and propagation may describe "
                   "noise. Check the pulse times and the recording.")
    return out


def analyze_tep(
    raw,
    events: np.ndarray,
    *,
    cleaning: CleaningParameters | None = None,
    measures: TepMeasureParameters | None = None,
    pulse_source: str = "",
) -> TepAnalysis:
    """Clean a recording and compute every TMS-EEG measure.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded raw EEG with positions.
    events : ndarray
        Pulse events.
    cleaning : CleaningParameters, optional
        Cleaning chain parameters (default: TESA's).
    measures : TepMeasureParameters, optional
        Peak windows (ms), ROI channels and PCIst options.
    pulse_source : str
        Where the pulses came from (recorded).

    Returns
    -------
    TepAnalysis

    Raises
    ------
    InvalidParameterError
        If an ROI channel is not in the data.
    """
    cleaning = cleaning or CleaningParameters()
    measures = measures or TepMeasureParameters()
    windows_ms, roi = measures.windows_ms, measures.roi
    pcist_sfreq, pcist_convention = measures.pcist_sfreq, measures.pcist_convention
    result = clean_tms_eeg(raw, events, cleaning)
    epochs = result.epochs
    evoked = epochs.average()
    if roi:
        missing = [c for c in roi if c not in evoked.ch_names]
        if missing:
            raise InvalidParameterError(f"ROI channels {missing} are not in the data; choose from "
                                        f"{evoked.ch_names}.")
        roi_list = list(roi)
    else:
        roi_list = [c for c in DEFAULT_ROI if c in evoked.ch_names]
        if not roi_list:
            post = (evoked.times > 0.015) & (evoked.times < 0.3)
            amp = np.abs(evoked.data[:, post]).max(axis=1)
            roi_list = [evoked.ch_names[i] for i in np.argsort(amp)[::-1][:4]]
    peaks = peak_table(evoked, windows_ms=windows_ms, roi=roi_list)
    tf = ersp_itc(epochs)
    nat = natural_frequency(tf, channels=roi_list)
    sync, _ = synchrony_pre_post(epochs)
    prop = propagation(epochs)
    ev_pci = evoked.copy()
    if abs(ev_pci.info["sfreq"] - pcist_sfreq) > 1e-6:
        ev_pci.resample(pcist_sfreq, verbose=False)
    pci = pcist(ev_pci.data, ev_pci.times * 1000.0, convention=pcist_convention)
    params = {
        "cleaning": cleaning.as_dict(),
        "peak_windows_ms": {k: list(v) for k, v in windows_ms.items()},
        "roi": roi_list,
        "pcist": {**pci.parameters, "sfreq_hz": pcist_sfreq},
        "ersp": {"baseline_s": tf.baseline, "freqs_hz": [float(tf.freqs[0]), float(tf.freqs[-1])]},
        "propagation": {"alpha": prop.alpha, "test": "one-sample t across trials, FDR (BH)"},
        "pulse_source": pulse_source,
    }
    snr = tep_signal_to_noise(evoked)
    params["signal_to_noise"] = {"response_window_s": list(RESPONSE_WINDOW_S),
                                 "baseline_window_s": list(BASELINE_WINDOW_S),
                                 "warn_below": MIN_TEP_SNR}
    return TepAnalysis(cleaning=result, evoked=evoked, gmfp=gmfp(evoked.data), peaks=peaks, tf=tf,
                       natural_frequency=nat, synchrony=sync, propagation=prop, pcist=pci,
                       roi=roi_list, parameters=params, pulse_source=pulse_source,
                       warnings=tep_warnings(result, snr))


def entities_from_path(path: str | Path | None) -> dict[str, str]:
    """BIDS entities (sub, ses, task, acq, run) of a recording's file name.

    Parameters
    ----------
    path : str or Path or None
        The recording (only its file name is read).

    Returns
    -------
    dict of str to str
        Entities found, with defaults ``sub-01`` and ``task-tms``.
    """
    return parse_entities(path, defaults=TEP_DEFAULT_ENTITIES)


def tep_summary(analysis: TepAnalysis) -> dict[str, Any]:
    """The measures as one JSON-able mapping (the measures JSON and ``--json`` output)."""
    clean = analysis.cleaning
    removed = clean.removed_components()
    gp = analysis.peaks[analysis.peaks["measure"] == "gmfp"]
    return {
        "n_trials": len(clean.epochs),
        "bad_trials": clean.bad_trials,
        "bad_channels": clean.bad_channels,
        "removed_components": removed[["round", "component", "label", "reason"]].to_dict("records")
        if len(removed) else [],
        "gmfp_peaks_ms": dict(zip(gp["component"], gp["latency_ms"], strict=True)),
        "pcist": {"value": analysis.pcist.value, "n_components": analysis.pcist.n_components,
                  "dnst": analysis.pcist.dnst, **analysis.pcist.parameters},
        "natural_frequency": analysis.natural_frequency,
        "propagation": analysis.propagation.summary(),
        "onset_latency_ms": analysis.propagation.onset_ms,
        "synchrony": analysis.synchrony.to_dict("records"),
        "roi": analysis.roi,
        "pulse_source": analysis.pulse_source,
        "signal_to_noise": tep_signal_to_noise(analysis.evoked),
        "warnings": list(analysis.warnings),
    }


def roi_time_frequency(analysis: TepAnalysis) -> pd.DataFrame:
    """ERSP (dB) and ITC averaged over the ROI channels, as a long table.

    Returns
    -------
    pandas.DataFrame
        Columns ``freq_hz``, ``time_ms``, ``ersp_db``, ``itc``.
    """
    tf = analysis.tf
    idx = [tf.ch_names.index(c) for c in analysis.roi if c in tf.ch_names]
    ersp, itc = tf.ersp_db[idx].mean(axis=0), tf.itc[idx].mean(axis=0)
    freqs, times = np.meshgrid(tf.freqs, tf.times * 1000.0, indexing="ij")
    return pd.DataFrame({"freq_hz": freqs.ravel(), "time_ms": np.round(times.ravel(), 3),
                         "ersp_db": ersp.ravel(), "itc": itc.ravel()})


def removed_component_patterns(analysis: TepAnalysis) -> pd.DataFrame:
    """Scalp patterns of the ICA components the cleaning removed (one column each).

    Returns
    -------
    pandas.DataFrame
        Column ``channel`` and one column ``<round>_<component>`` per removed
        component (empty but for ``channel`` when none was removed).
    """
    clean = analysis.cleaning
    removed = clean.removed_components()
    tables = []
    for rnd, ica in clean.icas.items():
        comps = removed.loc[removed["round"] == rnd, "component"].astype(int).tolist() if len(removed) else []
        if comps:
            patterns = ica.get_components()
            tables.append(pd.DataFrame({f"{rnd}_{c}": patterns[:, c] for c in comps},
                                       index=pd.Index(ica.ch_names, name="channel")))
    if not tables:
        return pd.DataFrame(columns=["channel"])
    return pd.concat(tables, axis=1).reset_index()


def write_tep_outputs(
    analysis: TepAnalysis,
    out_dir: str | Path,
    *,
    entities: Mapping[str, str],
    inputs: Mapping[str, str | Path | None],
) -> dict[str, Path]:
    """Write epochs, evoked (FIF), peaks TSV, components TSV and measures JSON, each with a sidecar.

    Parameters
    ----------
    analysis : TepAnalysis
        What :func:`analyze_tep` computed.
    out_dir : str or Path
        Derivatives root; files go to ``out_dir/sub-<label>[/ses-<label>]/eeg``
        (the report is drawn from these files by :mod:`tmsnet.jobs.tep`).
    entities : mapping
        BIDS entities of the recording (:func:`entities_from_path`).
    inputs : mapping
        Input files by role (hashed into the sidecars).

    Returns
    -------
    dict of str to Path
        Written files by role.
    """
    out = Path(out_dir)
    folder = subject_folder(out, entities, "eeg")
    folder.mkdir(parents=True, exist_ok=True)
    prefix = entity_prefix(entities)
    params = analysis.parameters
    summary = tep_summary(analysis)

    def side(description: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return make_sidecar(description=description, parameters=params, inputs=inputs,
                            space=TEP_SIDECAR_SPACE,
                            extra=extra)

    components = analysis.cleaning.components
    written: dict[str, Path] = {}
    written["dataset_description"] = write_dataset_description(
        out, derivatives_description(DERIVATIVES_NAME))

    epo = folder / f"{prefix}_desc-clean_epo.fif"
    atomic_write_with(epo, lambda tmp: analysis.cleaning.epochs.save(tmp, overwrite=True, verbose=False),
                      suffix="-epo.fif")
    written["epochs"] = epo
    ave = folder / f"{prefix}_desc-clean_ave.fif"
    atomic_write_with(ave, lambda tmp: analysis.evoked.save(tmp, overwrite=True, verbose=False),
                      suffix="-ave.fif")
    written["evoked"] = ave
    peaks = folder / f"{prefix}_desc-tep_peaks.tsv"
    atomic_write_tsv(peaks, analysis.peaks)
    written["peaks"] = peaks
    comps = folder / f"{prefix}_desc-ica_components.tsv"
    atomic_write_tsv(comps, components if len(components) else pd.DataFrame(columns=["round"]))
    written["components"] = comps
    tfr = folder / f"{prefix}_desc-roi_tfr.tsv"
    atomic_write_tsv(tfr, roi_time_frequency(analysis))
    written["tfr"] = tfr
    patterns = folder / f"{prefix}_desc-icaremoved_patterns.tsv"
    atomic_write_tsv(patterns, removed_component_patterns(analysis))
    written["patterns"] = patterns
    measures = folder / f"{prefix}_desc-tep_measures.json"
    # a JSON result carries its provenance inside (a JSON file has no sidecar)
    atomic_write_json(measures, {**side("TMS-EEG measures: PCIst, natural frequency, propagation, "
                                        "synchrony, peaks and what cleaning removed.",
                                        {"CleaningSteps": analysis.cleaning.steps}),
                                 "Measures": summary})
    written["measures"] = measures
    descriptions = {
        "epochs": "Cleaned TMS-EEG epochs (volts, average reference), MNE FIF.",
        "evoked": "TMS-evoked potential: trial average of the cleaned epochs (volts), MNE FIF.",
        "peaks": "TEP peaks per window: GMFP (positive peaks) and ROI (N/P polarity); latency in ms, "
                 "amplitude in microvolts.",
        "components": "ICA components of both rounds: rule features, label and reason.",
        "tfr": "ERSP (dB) and inter-trial coherence averaged over the ROI channels, by frequency (Hz) "
               "and time after the pulse (ms); long format.",
        "patterns": "Scalp patterns (ICA mixing columns, arbitrary units) of the removed components, "
                    "one column per component (round_component), one row per channel.",
    }
    for role, path in written.items():
        if role in ("dataset_description", "measures"):
            continue
        atomic_write_json(sidecar_path_for(path) if not path.name.endswith(".fif")
                          else path.with_name(path.name[:-4] + ".json"),
                          side(descriptions[role], {"CleaningSteps": analysis.cleaning.steps}
                               if role == "epochs" else None))
    return written
