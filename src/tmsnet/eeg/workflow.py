"""The TMS-EEG job: clean, measure, write (used by ``tmsnet tep``).

:func:`analyze_tep` composes the science (cleaning chain, TEP and peaks,
ERSP/ITC and natural frequency, synchronization, propagation, PCIst) into a
:class:`TepAnalysis`; :func:`write_tep_outputs` writes the BIDS-Derivatives
files. Everything is computed before the first file is written, and every
file is written atomically with a provenance sidecar, so a failed run leaves
no half-written result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
from tmsnet.io.atomic import atomic_write_json, atomic_write_text, atomic_write_tsv, atomic_write_with
from tmsnet.io.provenance import make_sidecar, sidecar_path_for

__all__ = ["TepAnalysis", "analyze_tep", "entities_from_path", "tep_summary", "write_tep_outputs"]

DEFAULT_ROI: tuple[str, ...] = ("C3", "FC1", "CP1", "C1", "FC3", "CP3")


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


def analyze_tep(
    raw,
    events: np.ndarray,
    *,
    cleaning: CleaningParameters | None = None,
    windows_ms: Mapping[str, Sequence[float]] = DEFAULT_WINDOWS_MS,
    roi: Sequence[str] | None = None,
    pcist_sfreq: float = 1000.0,
    pcist_convention: str = "reference",
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
        Cleaning chain parameters.
    windows_ms : mapping
        Peak windows (ms).
    roi : sequence of str, optional
        Channels over the stimulated area (default: those of
        ``C3, FC1, CP1, C1, FC3, CP3`` present; else the 4 channels of largest
        GMFP-peak amplitude).
    pcist_sfreq : float
        PCIst is computed at this rate (the evoked is resampled if needed).
    pcist_convention : {"reference", "inclusive"}
        Window convention of PCIst.
    pulse_source : str
        Where the pulses came from (recorded).

    Returns
    -------
    TepAnalysis
    """
    cleaning = cleaning or CleaningParameters()
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
    return TepAnalysis(cleaning=result, evoked=evoked, gmfp=gmfp(evoked.data), peaks=peaks, tf=tf,
                       natural_frequency=nat, synchrony=sync, propagation=prop, pcist=pci,
                       roi=roi_list, parameters=params, pulse_source=pulse_source)


def entities_from_path(path: str | Path | None) -> dict[str, str]:
    """BIDS entities (sub, ses, task, run) found in a file name; defaults sub-01, task-tms."""
    ent: dict[str, str] = {}
    if path is not None:
        name = Path(path).name
        for key in ("sub", "ses", "task", "acq", "run"):
            m = re.search(rf"(?:^|_){key}-([A-Za-z0-9]+)", name)
            if m:
                ent[key] = m.group(1)
    ent.setdefault("sub", "01")
    ent.setdefault("task", "tms")
    return ent


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
    }


def write_tep_outputs(
    analysis: TepAnalysis,
    out_dir: str | Path,
    *,
    entities: Mapping[str, str],
    inputs: Mapping[str, str | Path | None],
    report: bool = True,
) -> dict[str, Path]:
    """Write epochs, evoked (FIF), peaks TSV, components TSV, measures JSON, report; each with a sidecar.

    Returns
    -------
    dict of str to Path
        Written files by role.
    """
    from tmsnet.targeting.outputs import dataset_description, output_prefix, subject_folder

    out = Path(out_dir)
    folder = subject_folder(out, dict(entities)) / "eeg"
    folder.mkdir(parents=True, exist_ok=True)
    prefix = output_prefix(dict(entities))
    params = analysis.parameters
    summary = tep_summary(analysis)

    def side(description: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return make_sidecar(description=description, parameters=params, inputs=inputs,
                            space="CapTrak-like head coordinates (EEG channel positions), m",
                            extra=extra)

    html = None
    if report:
        from tmsnet.eeg.report import tep_report_html

        html = tep_report_html(analysis, title=f"TMS-EEG report: {prefix}")
    components = analysis.cleaning.components
    written: dict[str, Path] = {}
    desc_path = out / "dataset_description.json"
    if not desc_path.exists():
        atomic_write_json(desc_path, dataset_description())
    written["dataset_description"] = desc_path

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
    measures = folder / f"{prefix}_desc-tep_measures.json"
    # a JSON result carries its provenance inside (a JSON file has no sidecar)
    atomic_write_json(measures, {**side("TMS-EEG measures: PCIst, natural frequency, propagation, "
                                        "synchrony, peaks and what cleaning removed.",
                                        {"CleaningSteps": analysis.cleaning.steps}),
                                 "Measures": summary})
    written["measures"] = measures
    if html is not None:
        rep = out / f"{prefix}_desc-tep_report.html"
        atomic_write_text(rep, html)
        written["report"] = rep
    descriptions = {
        "epochs": "Cleaned TMS-EEG epochs (volts, average reference), MNE FIF.",
        "evoked": "TMS-evoked potential: trial average of the cleaned epochs (volts), MNE FIF.",
        "peaks": "TEP peaks per window: GMFP (positive peaks) and ROI (N/P polarity); latency in ms, "
                 "amplitude in microvolts.",
        "components": "ICA components of both rounds: rule features, label and reason.",
        "report": "TMS-EEG report (self-contained HTML).",
    }
    for role, path in written.items():
        if role in ("dataset_description", "measures"):
            continue
        atomic_write_json(sidecar_path_for(path) if not path.name.endswith(".fif")
                          else path.with_name(path.name[:-4] + ".json"),
                          side(descriptions[role], {"CleaningSteps": analysis.cleaning.steps}
                               if role == "epochs" else None))
    return written
