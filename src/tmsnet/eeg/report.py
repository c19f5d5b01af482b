"""Report sections of the TMS-EEG analysis (built with :mod:`tmsnet.report.html`).

Sections: what cleaning did and removed (steps, ICA components with the rule
and value that removed them, their topographies), the TEP (butterfly plot with
topomaps at the GMFP peaks), GMFP with its peaks, ERSP / ITC, the spread
curve with the onset-latency map, and the measures (peaks, PCIst, natural
frequency, synchrony).
"""

from __future__ import annotations

import sys
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # pragma: no branch - depends on import order
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tmsnet.report.html import (  # noqa: E402
    ReportSection,
    figure_html,
    figure_to_base64_png,
    key_value_table,
    render_report,
    table_html,
)

__all__ = ["tep_report_html", "tep_report_sections"]


def _fig_components(ica, components: list[int], title: str):
    import mne

    n = len(components)
    cols = min(n, 5)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    patterns = ica.get_components()
    info = mne.pick_info(ica.info, mne.pick_channels(ica.info["ch_names"], ica.ch_names))
    for ax in axes.ravel():
        ax.axis("off")
    for ax, comp in zip(axes.ravel(), components, strict=False):
        mne.viz.plot_topomap(patterns[:, comp], info, axes=ax, show=False, contours=0)
        ax.set_title(f"IC {comp}", fontsize=9)
    fig.suptitle(title)
    return fig


def _fig_gmfp(times, g, peaks: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(times * 1000, g * 1e6, color="#0072B2", lw=1.5)
    gp = peaks[peaks["measure"] == "gmfp"]
    for row in gp.itertuples():
        ax.axvspan(row.start_ms, row.end_ms, color="#999999", alpha=0.08)
        if np.isfinite(row.latency_ms):
            ax.plot(row.latency_ms, row.amplitude_uv, "v", color="#D55E00")
            ax.annotate(row.component, (row.latency_ms, row.amplitude_uv), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlim(-100, 400)
    ax.set_xlabel("time after pulse (ms)")
    ax.set_ylabel("GMFP (µV)")
    ax.axvline(0, color="k", lw=0.8, ls="--")
    return fig


def _fig_tf(tf, channels: list[str]):
    idx = [tf.ch_names.index(c) for c in channels]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    ersp = tf.ersp_db[idx].mean(axis=0)
    itc = tf.itc[idx].mean(axis=0)
    lim = float(np.nanmax(np.abs(ersp))) or 1.0
    extent = (tf.times[0] * 1000, tf.times[-1] * 1000, tf.freqs[0], tf.freqs[-1])
    im0 = axes[0].imshow(ersp, aspect="auto", origin="lower", extent=extent, cmap="RdBu_r",
                         vmin=-lim, vmax=lim)
    axes[0].set_title(f"ERSP (dB), {', '.join(channels)}")
    fig.colorbar(im0, ax=axes[0])
    im1 = axes[1].imshow(itc, aspect="auto", origin="lower", extent=extent, cmap="viridis", vmin=0)
    axes[1].set_title("inter-trial coherence")
    fig.colorbar(im1, ax=axes[1])
    for ax in axes:
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("frequency (Hz)")
        ax.axvline(0, color="w", lw=0.8, ls="--")
    return fig


def _fig_spread(prop, info):
    import mne

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    axes[0].plot(prop.times * 1000, prop.spread * 100, color="#009E73")
    axes[0].set_xlabel("time after pulse (ms)")
    axes[0].set_ylabel("channels significant (%)")
    axes[0].set_title(f"spread (FDR {prop.alpha:g})")
    onsets = np.array([prop.onset_ms[c] for c in prop.ch_names])
    finite = np.isfinite(onsets)
    values = np.where(finite, onsets, np.nanmax(onsets) if finite.any() else 0.0)
    ep_info = mne.pick_info(info, mne.pick_channels(info["ch_names"], prop.ch_names, ordered=True))
    im, _ = mne.viz.plot_topomap(values, ep_info, axes=axes[1], show=False, cmap="viridis_r",
                                 contours=0)
    axes[1].set_title("onset latency (ms)")
    fig.colorbar(im, ax=axes[1])
    return fig


def tep_report_sections(analysis: Any) -> list[ReportSection]:
    """Report sections of a :class:`tmsnet.eeg.workflow.TepAnalysis`."""
    sections = []
    clean = analysis.cleaning
    steps = pd.DataFrame([{"step": s["step"], "seconds": s["seconds"],
                           "details": {k: v for k, v in s["details"].items() if k != "removed"}}
                          for s in clean.steps])
    removed = clean.removed_components()
    parts = [table_html(steps, caption="Cleaning steps, in order (every parameter is in the sidecars)",
                        float_format="{:.2f}")]
    parts.append(key_value_table({
        "trials kept": len(clean.epochs),
        "trials dropped": clean.bad_trials,
        "bad channels (interpolated)": clean.bad_channels,
        "components removed": len(removed),
    }, caption="What was removed"))
    if len(removed):
        parts.append(table_html(removed[["round", "component", "label", "reason"]],
                                caption="Removed ICA components and why"))
        for rnd, ica in clean.icas.items():
            comps = removed.loc[removed["round"] == rnd, "component"].astype(int).tolist()
            if comps:
                fig = _fig_components(ica, comps, f"ICA round {rnd}: removed components")
                parts.append(figure_html(figure_to_base64_png(fig), alt=f"Topographies of the "
                                         f"components removed in ICA round {rnd}"))
    sections.append(ReportSection("Cleaning", "".join(parts), "cleaning"))

    evoked = analysis.evoked
    gp = analysis.peaks[(analysis.peaks["measure"] == "gmfp")]
    lat = [v / 1000 for v in gp["latency_ms"] if np.isfinite(v)]
    fig = evoked.plot_joint(times=lat if lat else "peaks", show=False,
                            ts_args={"xlim": (-0.1, 0.4)}, title="TEP (average reference)")
    html = figure_html(figure_to_base64_png(fig), alt="Butterfly plot of the TEP with topomaps at the "
                       "GMFP peaks", caption="Butterfly plot and topographies at the GMFP peaks.")
    html += table_html(analysis.peaks, caption="Peaks (GMFP: positive peaks; ROI: N/P polarity)",
                       float_format="{:.1f}")
    sections.append(ReportSection("TMS-evoked potential", html, "tep"))

    fig = _fig_gmfp(evoked.times, analysis.gmfp, analysis.peaks)
    sections.append(ReportSection("GMFP", figure_html(
        figure_to_base64_png(fig), alt="Global mean field power with the peaks in each window",
        caption="GMFP; shaded: peak windows; triangles: peaks."), "gmfp"))

    fig = _fig_tf(analysis.tf, analysis.roi)
    html = figure_html(figure_to_base64_png(fig), alt="ERSP and inter-trial coherence over the ROI")
    html += key_value_table(analysis.natural_frequency, caption="Natural frequency (Rosanova 2009)")
    sections.append(ReportSection("Oscillations (ERSP, ITC)", html, "oscillations"))

    fig = _fig_spread(analysis.propagation, analysis.cleaning.epochs.info)
    html = figure_html(figure_to_base64_png(fig), alt="Share of significant channels over time and "
                       "onset latency map")
    html += key_value_table(analysis.propagation.summary(), caption="Propagation")
    sections.append(ReportSection("Propagation", html, "propagation"))

    html = key_value_table({"PCIst": analysis.pcist.value,
                            "components kept": analysis.pcist.n_components,
                            **{f"parameter {k}": v for k, v in analysis.pcist.parameters.items()}},
                           caption="PCIst (Comolatti 2019)")
    html += table_html(analysis.synchrony, caption="Synchronization, mean over channel pairs",
                       float_format="{:.3f}")
    sections.append(ReportSection("Complexity and synchronization", html, "measures"))
    return sections


def tep_report_html(analysis: Any, *, title: str) -> str:
    """A complete self-contained HTML report of one TMS-EEG analysis."""
    summary = key_value_table({
        "trials": len(analysis.cleaning.epochs),
        "channels": len(analysis.evoked.ch_names),
        "PCIst": analysis.pcist.value,
        "natural frequency (Hz)": analysis.natural_frequency["frequency_hz"],
        "max spread (% channels)": analysis.propagation.summary()["max_spread"] * 100,
    })
    return render_report(title=title, summary_html=summary, sections=tep_report_sections(analysis),
                         subtitle="TMS-EEG: cleaning, TEPs, oscillations, propagation, PCIst")
