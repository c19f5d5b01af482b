"""Report section of the TMS-EEG job (``tmsnet tep``).

Reads, per recording, ``sub-<label>/[ses-<label>/]eeg/<prefix>_desc-tep_measures.json``
(measures, cleaning steps, parameters), ``<prefix>_desc-clean_ave.fif`` (the
TEP), ``<prefix>_desc-tep_peaks.tsv``, ``<prefix>_desc-ica_components.tsv`` and
``<prefix>_desc-icaremoved_patterns.tsv`` (topographies of the removed components)
written by :func:`tmsnet.eeg.workflow.write_tep_outputs`. Shows the GMFP
(TESA's ``std(mean(data, trials))``, :func:`tmsnet.eeg.teps.gmfp`) with its
peaks over the butterfly plot, the peak table, PCIst (Comolatti et al. 2019),
the natural frequency and what cleaning removed (trials, channels, ICA
components with the rule that removed each; ``../shared/REFERENCES.md``
section 2).

It also shows ERSP / ITC over the ROI from
``<prefix>_desc-roi_tfr.tsv`` (long table: ``freq_hz``, ``time_ms``,
``ersp_db``, ``itc``), the onset-latency map (``onset_latency_ms`` of the
measures on the evoked file's channel positions), PCIst with its parameters and
the synchronization table. This one provider draws both the stand-alone
``<prefix>_desc-tep_report.html`` (via :func:`tmsnet.report.write_job_report`)
and the TMS-EEG part of the per-subject report.

Summary card: trials, PCIst and the GMFP peak latencies, and what cleaning
removed; QC warnings in plain language: few trials, many trials or channels
rejected, an ICA round that did not converge.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import InputFileNotFoundError
from tmsnet.report.html import ReportSection, details_json, key_value_table, plot_html, table_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    load_json,
    register_section_provider,
    sections_per_file,
)
from tmsnet.utils.docs import fill_doc

__all__ = ["BAD_CHANNEL_SHARE_WARNING", "BAD_TRIAL_SHARE_WARNING", "FEW_TRIALS_WARNING", "TepCurves",
           "read_tep_curves", "tep_provider"]

#: Fewer clean trials than this draw a warning. A convention, not a published
#: threshold (*unverified*): TEP studies usually average 100 or more pulses,
#: and the GMFP of fewer trials is dominated by noise.
FEW_TRIALS_WARNING = 60
#: Share of rejected trials / interpolated channels above which the report warns.
BAD_TRIAL_SHARE_WARNING = 0.2
BAD_CHANNEL_SHARE_WARNING = 0.1

_SUFFIX = "_desc-tep_measures.json"


@dataclass
class TepCurves:
    """The TEP read back from the job's evoked file.

    Attributes
    ----------
    times_ms : numpy.ndarray
        Time after the pulse (ms).
    data_uv : numpy.ndarray, shape (n_channels, n_times)
        TEP (µV, average reference).
    gmfp_uv : numpy.ndarray
        GMFP (µV): SD across channels, ``ddof=1`` as in the job.
    ch_names : list of str
        Channels.
    """

    times_ms: np.ndarray
    data_uv: np.ndarray
    gmfp_uv: np.ndarray
    ch_names: list[str]


def read_tep_curves(evoked_path: str | Path) -> TepCurves:
    """Read the TEP (``*_desc-clean_ave.fif``) and compute its GMFP.

    Parameters
    ----------
    evoked_path : path
        The evoked FIF written by ``tmsnet tep``.

    Returns
    -------
    TepCurves

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    """
    import mne

    from tmsnet.eeg.teps import gmfp

    path = Path(evoked_path)
    if not path.is_file():
        raise InputFileNotFoundError(f"TEP file {path} does not exist; re-run `tmsnet tep`.")
    evoked = mne.read_evokeds(path, verbose=False)[0]
    evoked.pick("eeg")
    data = evoked.data * 1e6
    return TepCurves(times_ms=evoked.times * 1000.0, data_uv=data, gmfp_uv=gmfp(data),
                     ch_names=list(evoked.ch_names))


def _plot(curves: TepCurves, peaks: pd.DataFrame | None) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.2, 1.0]})
    top.plot(curves.times_ms, curves.data_uv.T, color="#555555", lw=0.5, alpha=0.6)
    top.set_ylabel("TEP (µV)")
    top.set_title(f"Butterfly plot ({len(curves.ch_names)} channels) and GMFP", fontsize=9)
    bottom.plot(curves.times_ms, curves.gmfp_uv, color="#0072B2", lw=1.5)
    if peaks is not None:
        gp = peaks[peaks["measure"] == "gmfp"]
        for row in gp.itertuples():
            bottom.axvspan(row.start_ms, row.end_ms, color="#999999", alpha=0.08)
            if np.isfinite(row.latency_ms):
                bottom.plot(row.latency_ms, row.amplitude_uv, "v", color="#D55E00")
                bottom.annotate(row.component, (row.latency_ms, row.amplitude_uv), textcoords="offset points",
                                xytext=(0, 5), ha="center", fontsize=8)
    for ax in (top, bottom):
        ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_xlim(-100, 400)
    bottom.set_xlabel("time after pulse (ms)")
    bottom.set_ylabel("GMFP (µV)")
    fig.tight_layout()
    return fig


def _peaks_text(peaks: pd.DataFrame | None) -> tuple[str, list[str]]:
    if peaks is None:
        return "", []
    gp = peaks[peaks["measure"] == "gmfp"]
    found = [f"{r.component} {r.latency_ms:.0f} ms" for r in gp.itertuples() if np.isfinite(r.latency_ms)]
    missing = [str(r.component) for r in gp.itertuples() if not np.isfinite(r.latency_ms)]
    return ", ".join(found), missing


def _qc(name: str, measures: dict[str, Any], steps: list[dict[str, Any]],
        n_channels: int | None) -> list[str]:
    warnings = []
    n = int(measures.get("n_trials") or 0)
    bad_trials = list(measures.get("bad_trials") or [])
    bad_channels = list(measures.get("bad_channels") or [])
    if n < FEW_TRIALS_WARNING:
        warnings.append(f"TMS-EEG {name}: few trials ({n} clean trials < {FEW_TRIALS_WARNING}); the TEP and "
                        "its peaks are noisy.")
    total = n + len(bad_trials)
    if total and len(bad_trials) / total > BAD_TRIAL_SHARE_WARNING:
        warnings.append(f"TMS-EEG {name}: many trials rejected ({len(bad_trials)} of {total}).")
    if n_channels and len(bad_channels) / n_channels > BAD_CHANNEL_SHARE_WARNING:
        warnings.append(f"TMS-EEG {name}: many bad channels ({len(bad_channels)} of {n_channels} "
                        f"interpolated: {', '.join(map(str, bad_channels))}).")
    for step in steps:
        details = step.get("details") or {}
        if str(step.get("step", "")).startswith("ica") and details.get("converged") is False:
            what = str(step["step"]).replace("ica_round_", "ICA round ")
            warnings.append(f"TMS-EEG {name}: {what} did not converge; check the removed components.")
    warnings += [f"TMS-EEG {name}: {w}" for w in measures.get("warnings") or []]
    return warnings


def _plot_tfr(tfr: pd.DataFrame) -> Any:
    from matplotlib.figure import Figure

    ersp = tfr.pivot_table(index="freq_hz", columns="time_ms", values="ersp_db")
    itc = tfr.pivot_table(index="freq_hz", columns="time_ms", values="itc")
    fig = Figure(figsize=(10, 3.2))
    axes = fig.subplots(1, 2)
    extent = (ersp.columns.min(), ersp.columns.max(), ersp.index.min(), ersp.index.max())
    lim = float(np.nanmax(np.abs(ersp.to_numpy()))) or 1.0
    im0 = axes[0].imshow(ersp.to_numpy(), aspect="auto", origin="lower", extent=extent, cmap="RdBu_r",
                         vmin=-lim, vmax=lim)
    axes[0].set_title("ERSP (dB), ROI")
    fig.colorbar(im0, ax=axes[0])
    im1 = axes[1].imshow(itc.to_numpy(), aspect="auto", origin="lower", extent=extent, cmap="viridis", vmin=0)
    axes[1].set_title("inter-trial coherence")
    fig.colorbar(im1, ax=axes[1])
    for ax in axes:
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("frequency (Hz)")
        ax.axvline(0, color="w", lw=0.8, ls="--")
    return fig


def _plot_onsets(evoked_path: Path, onsets: dict[str, float]) -> Any:
    import mne
    from matplotlib.figure import Figure

    evoked = mne.read_evokeds(evoked_path, verbose=False)[0].pick("eeg")
    names = [c for c in evoked.ch_names if c in onsets]
    values = np.array([np.nan if onsets[c] is None else float(onsets[c]) for c in names])
    finite = np.isfinite(values)
    values = np.where(finite, values, np.nanmax(values) if finite.any() else 0.0)
    fig = Figure(figsize=(3.6, 3.2))
    ax = fig.add_subplot(111)
    info = mne.pick_info(evoked.info, mne.pick_channels(evoked.info["ch_names"], names, ordered=True))
    im, _ = mne.viz.plot_topomap(values, info, axes=ax, show=False, cmap="viridis_r", contours=0)
    ax.set_title("onset latency (ms)")
    fig.colorbar(im, ax=ax)
    return fig


def _plot_removed_patterns(patterns: pd.DataFrame, evoked_path: Path) -> Any:
    """Topographies of the removed ICA components (columns ``<round>_<component>``)."""
    import mne
    from matplotlib.figure import Figure

    info = mne.read_evokeds(evoked_path, verbose=False)[0].info
    table = patterns.set_index("channel")
    names = [c for c in table.index if c in info["ch_names"]]
    info = mne.pick_info(info, mne.pick_channels(info["ch_names"], names, ordered=True))
    n = table.shape[1]
    cols = min(n, 5)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(2.2 * cols, 2.3 * rows))
    for i, column in enumerate(table.columns):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = table.loc[names, column].to_numpy(dtype=float)
        mne.viz.plot_topomap(values, info, axes=ax, show=False, contours=0)
        rnd, comp = column.split("_", 1)
        ax.set_title(f"round {rnd}, IC {comp}", fontsize=9)
    return fig


def _measure_sections(prefix: str, folder: Path, measures: dict[str, Any],
                      anchor: str) -> list[ReportSection]:
    """Oscillations (ERSP, ITC), propagation, complexity and synchronization of one recording."""
    body = []
    tfr_path = folder / f"{prefix}_desc-roi_tfr.tsv"
    if tfr_path.is_file():
        body.append(plot_html(_plot_tfr(pd.read_csv(tfr_path, sep="\t")),
                              alt="ERSP and inter-trial coherence over the ROI", dpi=80))
    body.append(key_value_table(measures.get("natural_frequency") or {},
                                caption="Natural frequency (Rosanova 2009)"))
    sections = [ReportSection("Oscillations (ERSP, ITC)", "".join(body), f"{anchor}-oscillations")]
    body = []
    evoked_path = folder / f"{prefix}_desc-clean_ave.fif"
    onsets = measures.get("onset_latency_ms") or {}
    if onsets and evoked_path.is_file():
        body.append(plot_html(_plot_onsets(evoked_path, onsets),
                              alt="Onset latency of the TEP at each channel", width="24rem", dpi=80))
    body.append(key_value_table(measures.get("propagation") or {}, caption="Propagation"))
    sections.append(ReportSection("Propagation", "".join(body), f"{anchor}-propagation"))
    pcist = measures.get("pcist") or {}
    body = [key_value_table({"PCIst": pcist.get("value"), "components kept": pcist.get("n_components"),
                             **{f"parameter {k}": v for k, v in pcist.items()
                                if k not in ("value", "n_components")}},
                            caption="PCIst (Comolatti 2019)")]
    if measures.get("synchrony"):
        body.append(table_html(pd.DataFrame(measures["synchrony"]),
                               caption="Synchronization, mean over channel pairs", float_format="{:.3f}"))
    sections.append(ReportSection("Complexity and synchronization", "".join(body), f"{anchor}-measures"))
    return sections


def _recording(out: SubjectSections, index: int, path: Path) -> None:
    """The sections and summary rows of one recording (its ``*_desc-tep_measures.json``)."""
    esc = html.escape
    prefix = path.name[: -len(_SUFFIX)]
    content = load_json(path)
    measures = content.get("Measures") or {}
    steps = content.get("CleaningSteps") or []
    peaks_path = path.with_name(f"{prefix}_desc-tep_peaks.tsv")
    peaks = pd.read_csv(peaks_path, sep="\t", na_values=["n/a"]) if peaks_path.is_file() else None
    body = []
    evoked_path = path.with_name(f"{prefix}_desc-clean_ave.fif")
    n_channels = None
    if evoked_path.is_file():
        curves = read_tep_curves(evoked_path)
        n_channels = len(curves.ch_names)
        body.append(plot_html(
            _plot(curves, peaks),
            alt="TMS-evoked potential of every channel and its global mean field power with the peaks",
            caption="Top: TEP of every channel (average reference). Bottom: GMFP; shaded: peak windows; "
                    "triangles: GMFP peaks.", dpi=80))
    found, missing = _peaks_text(peaks)
    pci = (measures.get("pcist") or {}).get("value")
    nat = measures.get("natural_frequency") or {}
    removed = measures.get("removed_components") or []
    bad_trials = list(measures.get("bad_trials") or [])
    bad_channels = list(measures.get("bad_channels") or [])
    headline = [f"{measures.get('n_trials')} trials"]
    if pci is not None:
        headline.append(f"PCIst {float(pci):.1f}")
    if found:
        headline.append(f"GMFP peaks {found}")
    out.summary.append((f"TMS-EEG ({prefix})", "; ".join(headline)))
    labels = ", ".join(dict.fromkeys(str(c.get("label")) for c in removed))
    out.summary.append((f"TMS-EEG cleaning ({prefix})",
                        f"removed {len(removed)} ICA component(s){f' ({labels})' if labels else ''}; "
                        f"{len(bad_trials)} trial(s) and {len(bad_channels)} channel(s) rejected"))
    out.warnings += _qc(prefix, measures, steps, n_channels)
    facts = {
        "trials kept": measures.get("n_trials"),
        "trials rejected": len(bad_trials),
        "bad channels (interpolated)": ", ".join(map(str, bad_channels)) or "none",
        "ICA components removed": len(removed),
        "signal-to-noise (GMFP 15-300 ms / baseline)": measures.get("signal_to_noise"),
        "PCIst (Comolatti 2019)": pci,
        "PCIst components kept": (measures.get("pcist") or {}).get("n_components"),
        "natural frequency (Hz, Rosanova 2009)": nat.get("frequency_hz"),
        "median onset latency (ms)": (measures.get("propagation") or {}).get("median_onset_ms"),
        "max spread (share of channels)": (measures.get("propagation") or {}).get("max_spread"),
        "ROI channels": ", ".join(measures.get("roi") or []),
        "pulses from": measures.get("pulse_source"),
    }
    body.append(key_value_table(facts, caption="TMS-EEG measures"))
    if peaks is not None:
        body.append(table_html(peaks, caption="TEP peaks (GMFP: positive peaks; ROI: N/P polarity); "
                               "latency ms, amplitude µV; a dash: no peak in the window",
                               float_format="{:.1f}"))
    if missing:
        body.append(f"<p>No GMFP peak in the window of {esc(', '.join(missing))}.</p>")
    body.append("<h3>What cleaning removed</h3>")
    if removed:
        body.append(table_html(pd.DataFrame(removed), caption="Removed ICA components and the rule that "
                               "removed each"))
        patterns_path = path.with_name(f"{prefix}_desc-icaremoved_patterns.tsv")
        if patterns_path.is_file() and evoked_path.is_file():
            patterns = pd.read_csv(patterns_path, sep="\t")
            if patterns.shape[1] > 1:
                body.append(plot_html(_plot_removed_patterns(patterns, evoked_path),
                                      alt="Scalp topographies of the removed ICA components", dpi=80))
    else:
        body.append("<p>No ICA component removed.</p>")
    if steps:
        rows = pd.DataFrame([{"step": s.get("step"), "seconds": s.get("seconds"),
                              "details": {k: v for k, v in (s.get("details") or {}).items()
                                          if k != "removed"}} for s in steps])
        body.append(table_html(rows, caption="Cleaning steps, in order", float_format="{:.2f}"))
    body.append(details_json(content.get("Parameters") or {}, summary="Parameters"))
    out.sections.append(ReportSection(f"TMS-EEG: {prefix}", "".join(body), f"tep-{index + 1}"))
    out.sections.extend(_measure_sections(prefix, path.parent, measures, f"tep-{index + 1}"))


@fill_doc
def tep_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the subject's TMS-EEG recordings (``*_desc-tep_measures.json``).

    %(section_provider)s
    """
    return sections_per_file(context.find(f"*{_SUFFIX}"), _recording)


register_section_provider("tep", tep_provider, order=40)
