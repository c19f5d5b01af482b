"""Report sections on how much to trust each target, and the method comparison.

Built from :attr:`TargetingResult.uncertainty` (see
:mod:`tmsnet.targeting.uncertainty`): the bootstrap cloud of targets in three
projections, the scan-length curve with the advice, a table of the stability
figures, and every method's target side by side with pairwise distances.
"""

from __future__ import annotations

import html
import sys
from typing import TYPE_CHECKING

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # as in report.figures: never override a user's backend
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tmsnet.report.html import (  # noqa: E402
    ReportSection,
    figure_html,
    figure_to_base64_png,
    table_html,
)

if TYPE_CHECKING:
    from tmsnet.targeting.workflow import TargetingResult

_COLORS = {"cluster": "#1b9e77", "seedmap": "#d95f02", "hierarchical": "#7570b3", "peak": "#e7298a"}


def _color(method: str) -> str:
    return _COLORS.get(method, "#666666")


def plot_target_cloud(result: TargetingResult):
    """Bootstrap targets of every method in sagittal, coronal and axial projections (mm)."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
    pairs = [(1, 2, "y (mm, posterior - anterior)", "z (mm)", "Sagittal"),
             (0, 2, "x (mm, right - left)", "z (mm)", "Coronal"),
             (0, 1, "x (mm)", "y (mm)", "Axial")]
    for ax, (i, j, xlabel, ylabel, title) in zip(axes, pairs, strict=True):
        for target in result.targets:
            u = result.uncertainty.get(target.method)
            color = _color(target.method)
            if u is not None and not u.cloud.empty:
                xyz = u.cloud[["x", "y", "z"]].to_numpy(float)
                ax.scatter(xyz[:, i], xyz[:, j], s=9, alpha=0.35, color=color, linewidths=0)
            p = target.coordinate_mm
            ax.scatter(p[i], p[j], marker="*", s=180, color=color, edgecolors="black",
                       linewidths=0.6, label=target.method, zorder=3)
        if result.truth is not None:
            t = np.asarray(result.truth["target_mm"], float)
            ax.scatter(t[i], t[j], marker="x", s=90, color="black", label="planted (demo)", zorder=4)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"Bootstrap targets ({result.space}); stars: targets on the whole scan")
    fig.tight_layout()
    return fig


def plot_scan_length(result: TargetingResult, *, tolerance_mm: float):
    """95 % radius of the bootstrap against scan minutes, with the fitted a/sqrt(minutes)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    longest = 0.0
    for name, u in result.uncertainty.items():
        if u.scan_length is None:
            continue
        curve = u.scan_length.dropna(subset=["p95_radius_mm"])
        if curve.empty:
            continue
        ax.plot(curve["minutes"], curve["p95_radius_mm"], "o-", color=_color(name), label=name)
        advice = u.advice or {}
        required = advice.get("required_minutes")
        if required:
            a = tolerance_mm * np.sqrt(required)
            m = np.linspace(curve["minutes"].min(), max(curve["minutes"].max(), min(required, 120)), 100)
            ax.plot(m, a / np.sqrt(m), "--", color=_color(name), alpha=0.6, linewidth=1)
            longest = max(longest, min(required, 120))
        longest = max(longest, float(curve["minutes"].max()))
    ax.axhline(tolerance_mm, color="black", linestyle=":", label=f"tolerance {tolerance_mm:g} mm")
    ax.set_xlim(0, longest * 1.05 if longest else 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("scan length (minutes)")
    ax.set_ylabel("95 % radius of bootstrap targets (mm)")
    ax.set_title("How the target's spread shrinks with scan length (dashed: a / sqrt(minutes))")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def stability_table(result: TargetingResult) -> pd.DataFrame:
    """One row per method: target, r, bootstrap and split-half figures, advice."""
    rows = []
    for target in result.targets:
        x, y, z = (float(v) for v in target.coordinate_mm)
        u = result.uncertainty.get(target.method)
        s = u.summary if u is not None else {}
        rows.append({
            "method": target.method, "x (mm)": x, "y (mm)": y, "z (mm)": z,
            "r at target": target.r_at_target,
            "median shift (mm)": s.get("median_distance_mm"),
            "95% radius (mm)": s.get("p95_radius_mm"),
            "within 10 mm": None if s.get("share_within_10mm") is None
            else f"{100 * s['share_within_10mm']:.0f} %",
            "split-half distance (mm)": s.get("split_half_distance_mm"),
            "resamples (failed)": None if not s else f"{s['n_resamples']} ({s['n_failed']})",
        })
    return pd.DataFrame(rows)


def pairwise_distances(result: TargetingResult) -> pd.DataFrame:
    """Distances (mm) between the targets of every pair of methods."""
    names = [t.method for t in result.targets]
    xyz = np.array([t.coordinate_mm for t in result.targets], dtype=float)
    d = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=2)
    return pd.DataFrame(np.round(d, 1), index=names, columns=names).reset_index(names="method")


def uncertainty_sections(result: TargetingResult) -> list[ReportSection]:
    """The "Target stability" and "Method comparison" sections (empty list if nothing to show)."""
    sections: list[ReportSection] = []
    if result.uncertainty:
        params = result.parameters.get("uncertainty", {})
        tolerance = float(params.get("stability_tolerance_mm", 5.0))
        advice_items = "".join(
            f"<li><strong>{html.escape(name)}</strong>: {html.escape(u.advice['message'])}</li>"
            for name, u in result.uncertainty.items() if u.advice is not None
        )
        body = (
            f"<p>Each target was recomputed on {params.get('n_bootstrap')} block-bootstrap "
            f"resamples of this scan (blocks of {params.get('block_frames')} contiguous frames, "
            f"seed {params.get('random_seed')}) and on each half of the scan. The 95 % radius is the "
            "distance from the target within which 95 % of the resampled targets fall.</p>"
        )
        if advice_items:
            body += f'<ul class="advice">{advice_items}</ul>'
        body += figure_html(
            figure_to_base64_png(plot_target_cloud(result)),
            alt="Bootstrap cloud of targets for each method in three projections",
            caption="Each dot is the target of one bootstrap resample; stars are the targets on "
                    "the whole scan.",
        )
        if any(u.scan_length is not None for u in result.uncertainty.values()):
            body += figure_html(
                figure_to_base64_png(plot_scan_length(result, tolerance_mm=tolerance)),
                alt="95 percent radius against scan length for each method",
                caption="Bootstrap on the first 25, 50, 75 and 100 % of the scan; the dashed "
                        "curve is the fit used for the advice.",
            )
        body += table_html(stability_table(result), caption="Target stability by method")
        sections.append(ReportSection("Target stability", body, "stability"))
    if len(result.targets) > 1:
        body = table_html(stability_table(result)[["method", "x (mm)", "y (mm)", "z (mm)",
                                                   "r at target", "95% radius (mm)"]],
                          caption="Targets side by side")
        body += table_html(pairwise_distances(result), caption="Distance between methods (mm)")
        sections.append(ReportSection("Method comparison", body, "method-comparison"))
    return sections
