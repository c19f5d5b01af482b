"""Report sections of the targeting job (``tmsnet target``), drawn from its derivatives.

One function draws the targeting part of both the stand-alone targeting report
(``<prefix>_report.html``, written by :func:`tmsnet.report.write_job_report`
after :func:`tmsnet.targeting.outputs.write_targeting_outputs`) and the
per-subject report (``tmsnet report``). Per run (file prefix
``sub-<label>[_ses-<label>]_task-<label>[_run-<index>]``) it reads

* ``*_desc-<method>_target.json``: each target, its stability and scan-length
  advice, and (``Provenance``) the parameters and inputs of the run;
* ``<prefix>_report.json`` at the top of the folder: the run summary (QC,
  plain-language warnings, the planted target of the demo);
* the ``stat-r`` connectivity map, the seed and search masks;
* ``*_desc-bootstrap_targets.tsv`` and ``*_desc-scanlength_stability.tsv``;
* the fMRIPrep confounds named in the provenance (framewise displacement).

It shows the target card, the interactive viewer, the connectivity map through
the target, the bootstrap cloud and scan-length curve, the distances between
methods, the regions, the published coordinates, scan QC and every parameter.
Any missing file just leaves its figure out.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

# UNSTABLE_P95_RADIUS_MM: bootstrap 95 % radius (mm) above which a target without
# scan-length advice is flagged as unstable (the cohort report's threshold).
from tmsnet.report.cohort import UNSTABLE_P95_RADIUS_MM
from tmsnet.report.html import ReportSection, details_json, key_value_table, plot_html, table_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    format_xyz,
    load_json,
    register_section_provider,
)
from tmsnet.targeting.references import distances_to_references
from tmsnet.utils.docs import fill_doc

__all__ = ["DISCLAIMER", "UNSTABLE_P95_RADIUS_MM", "TargetingRun", "plot_scan_length", "plot_target_cloud",
           "read_targeting_run", "targeting_provider"]

DISCLAIMER = (
    "tmsnet reports connectivity facts; it does not predict treatment response. A prospective "
    "multi-site study (Khosravani et al. 2025, 66 patients) found no link between sgACC "
    "anticorrelation at the treated site and outcome. Coordinates are in template space: map "
    "them to the patient's native T1w space before neuronavigation."
)

_COLORS = {"cluster": "#1b9e77", "seedmap": "#d95f02", "hierarchical": "#7570b3", "peak": "#e7298a"}


def _color(method: str) -> str:
    return _COLORS.get(method, "#666666")


@dataclass
class TargetingRun:
    """What one targeting run wrote, read back.

    Attributes
    ----------
    run : str
        File prefix of the run (``sub-01_task-rest``).
    space : str
        Space of the maps shown (the first target's).
    targets : list of dict
        ``*_target.json`` contents of every method in ``space`` (first = the main target).
    all_targets : list of dict
        Targets in every space.
    summary : dict
        ``Summary`` of the run summary (``<run>_report.json``): ``qc``, ``warnings``,
        ``planted_target_mm`` (demo only); empty if absent.
    parameters, sources : dict
        Parameters and inputs from the targets' provenance; empty if absent.
    r_map, seed_mask, search_mask : Nifti1Image or None
    cloud, scan_length : DataFrame or None
        Bootstrap targets and scan-length curve.
    """

    run: str
    space: str
    targets: list[dict[str, Any]]
    all_targets: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)
    r_map: nib.Nifti1Image | None = None
    seed_mask: nib.Nifti1Image | None = None
    search_mask: nib.Nifti1Image | None = None
    cloud: pd.DataFrame | None = None
    scan_length: pd.DataFrame | None = None
    surface_maps: dict[str, Path] = field(default_factory=dict)

    @property
    def planted_mm(self) -> np.ndarray | None:
        """The planted target of a simulated demo subject (mm), if the run summary has one."""
        planted = self.summary.get("planted_target_mm")
        return None if planted is None else np.asarray(planted, dtype=float)


def _xyz(t: dict[str, Any]) -> np.ndarray:
    return np.array([float(t["x"]), float(t["y"]), float(t["z"])])


def _target_files(context: SubjectContext) -> list[Path]:
    # The treatment plan writes *_desc-plan_target.json (another schema): not a targeting result.
    return [p for p in context.find("*_target.json")
            if "_desc-" in p.name and not p.name.endswith("_desc-plan_target.json")]


def _read_tsv(paths: Sequence[Path], columns: set[str]) -> pd.DataFrame | None:
    if not paths:
        return None
    table = pd.read_csv(paths[0], sep="\t", na_values=["n/a"])
    return table if columns <= set(table.columns) and len(table) else None


def _first_image(paths: Sequence[Path]) -> nib.Nifti1Image | None:
    return nib.load(paths[0]) if paths else None


def read_targeting_run(context: SubjectContext, run: str, targets: list[dict[str, Any]]) -> TargetingRun:
    """Read back every file of one targeting run (see the module docstring).

    Parameters
    ----------
    context : SubjectContext
        Where the derivatives are.
    run : str
        The run's file prefix.
    targets : list of dict
        Its ``*_target.json`` contents, in file order.

    Returns
    -------
    TargetingRun
    """
    space = str(targets[0]["space"])
    in_space = [t for t in targets if str(t["space"]) == space]
    sidecar = context.derivatives_dir / f"{run}_report.json"
    summary = load_json(sidecar).get("Summary", {}) if sidecar.exists() else {}
    provenance = targets[0].get("Provenance") or {}
    stem = f"{run}_space-{space}"
    maps = sorted(context.find(f"{stem}_stat-r_desc-*_connectivity.nii.gz"),
                  key=lambda p: "seedmapweighted" in p.name)
    return TargetingRun(
        run=run, space=space, targets=in_space, all_targets=targets, summary=summary,
        parameters=provenance.get("Parameters") or {}, sources=provenance.get("Sources") or {},
        r_map=_first_image(maps),
        seed_mask=_first_image(context.find(f"{stem}_desc-seed_mask.nii.gz")),
        search_mask=_first_image(context.find(f"{stem}_desc-search_mask.nii.gz")),
        cloud=_read_tsv(context.find(f"{stem}_desc-bootstrap_targets.tsv"), {"method", "x", "y", "z"}),
        scan_length=_read_tsv(context.find(f"{stem}_desc-scanlength_stability.tsv"),
                              {"method", "minutes", "p95_radius_mm"}),
        surface_maps={hemi: paths[0] for hemi in ("L", "R") if (paths := context.find(
            f"{run}_hemi-{hemi}_space-{space}_stat-r_desc-sgacc_connectivity.shape.gii"))},
    )


# --------------------------------------------------------------------------- figures

def plot_target_cloud(cloud: pd.DataFrame, targets: Sequence[dict[str, Any]], *, space: str,
                      planted_mm: Sequence[float] | None = None) -> Any:
    """Bootstrap targets of every method in sagittal, coronal and axial projections (mm).

    Parameters
    ----------
    cloud : DataFrame
        ``*_desc-bootstrap_targets.tsv`` (columns ``method``, ``x``, ``y``, ``z``; mm).
    targets : sequence of dict
        Targets on the whole scan (``method``, ``x``, ``y``, ``z``), drawn as stars.
    space : str
        Space named in the title.
    planted_mm : (x, y, z), optional
        Planted target of a simulated subject (a cross).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    pairs = [(1, 2, "y (mm, posterior - anterior)", "z (mm)", "Sagittal"),
             (0, 2, "x (mm, right - left)", "z (mm)", "Coronal"),
             (0, 1, "x (mm)", "y (mm)", "Axial")]
    for ax, (i, j, xlabel, ylabel, title) in zip(axes, pairs, strict=True):
        for t in targets:
            method = str(t["method"])
            rows = cloud[cloud["method"].astype(str) == method][["x", "y", "z"]].to_numpy(float)
            ax.scatter(rows[:, i], rows[:, j], s=9, alpha=0.35, color=_color(method), linewidths=0)
            p = _xyz(t)
            ax.scatter(p[i], p[j], marker="*", s=180, color=_color(method), edgecolors="black",
                       linewidths=0.6, label=method, zorder=3)
        if planted_mm is not None:
            q = np.asarray(planted_mm, float)
            ax.scatter(q[i], q[j], marker="x", s=90, color="black", label="planted (demo)", zorder=4)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"Bootstrap targets ({space}); stars: targets on the whole scan")
    return fig


def plot_scan_length(curves: pd.DataFrame, advice: dict[str, dict[str, Any]], *, tolerance_mm: float) -> Any:
    """95 % radius of the bootstrap against scan minutes, with the fitted a/sqrt(minutes).

    Parameters
    ----------
    curves : DataFrame
        ``*_desc-scanlength_stability.tsv`` (``method``, ``minutes``, ``p95_radius_mm``).
    advice : dict
        Scan-length advice of each method (``required_minutes``), from its target.
    tolerance_mm : float
        The stability tolerance (mm), drawn as a line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 3.8), layout="constrained")
    ax = fig.add_subplot(111)
    longest = 0.0
    for name, curve in curves.dropna(subset=["p95_radius_mm"]).groupby("method", sort=False):
        name = str(name)
        ax.plot(curve["minutes"], curve["p95_radius_mm"], "o-", color=_color(name), label=name)
        required = (advice.get(name) or {}).get("required_minutes")
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
    return fig


# --------------------------------------------------------------------------- tables

def _targets_table(run: TargetingRun) -> pd.DataFrame:
    rows = []
    for t in run.all_targets:
        row = {"method": t["method"], "space": t["space"], "x (mm)": t["x"], "y (mm)": t["y"],
               "z (mm)": t["z"], "r at target": t["r_at_target"],
               "95 % radius (mm)": (t.get("uncertainty") or {}).get("p95_radius_mm")}
        size = (t.get("details") or {}).get("cluster_size_voxels")
        if size is not None:
            row["cluster size (voxels)"] = size
        rows.append(row)
    return pd.DataFrame(rows)


def _stability_table(run: TargetingRun) -> pd.DataFrame:
    rows = []
    for t in run.targets:
        s = t.get("uncertainty") or {}
        rows.append({
            "method": t["method"], "x (mm)": t["x"], "y (mm)": t["y"], "z (mm)": t["z"],
            "r at target": t["r_at_target"],
            "median shift (mm)": s.get("median_distance_mm"),
            "95% radius (mm)": s.get("p95_radius_mm"),
            "within 10 mm": None if s.get("share_within_10mm") is None
            else f"{100 * s['share_within_10mm']:.0f} %",
            "split-half distance (mm)": s.get("split_half_distance_mm"),
            "resamples (failed)": f"{s['n_resamples']} ({s['n_failed']})" if "n_resamples" in s else None,
        })
    return pd.DataFrame(rows)


def _method_distances(targets: Sequence[dict[str, Any]]) -> pd.DataFrame:
    names = [str(t["method"]) for t in targets]
    xyz = np.array([_xyz(t) for t in targets])
    d = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    return pd.DataFrame(d, index=pd.Index(names, name="distance (mm)"), columns=names)


def _framewise_displacement(run: TargetingRun) -> np.ndarray | None:
    """FD (mm) from the fMRIPrep confounds named in the provenance (None if unreadable).

    Several runs concatenated name theirs ``confounds_1``, ``confounds_2``...: FD of each,
    in run order.
    """
    source = run.sources.get("confounds")
    if source is None:
        runs = {int(k.removeprefix("confounds_")): v for k, v in run.sources.items()
                if k.startswith("confounds_") and k.removeprefix("confounds_").isdigit()}
        source = [runs[i] for i in sorted(runs)] or None
    entries = source if isinstance(source, list) else [source]
    values = []
    for entry in entries:
        path = Path(entry["path"]) if isinstance(entry, dict) and entry.get("path") else None
        if path is None or not path.is_file():
            return None
        table = pd.read_csv(path, sep="\t", na_values=["n/a"])
        if "framewise_displacement" not in table.columns:
            return None
        values.append(table["framewise_displacement"].to_numpy(dtype=float))
    fd = np.concatenate(values) if values else None
    return fd if fd is not None and np.isfinite(fd).any() else None


# --------------------------------------------------------------------------- summary card

def _stability_facts(t: dict[str, Any], reported: Sequence[str]) -> tuple[str | None, str | None]:
    """Summary text and (if unstable and not yet reported) warning of one target's bootstrap."""
    u = t.get("uncertainty") or {}
    p95 = u.get("p95_radius_mm")
    if p95 is None:
        return None, None
    method = str(t.get("method"))
    text = f"95 % of bootstrap targets within {float(p95):.1f} mm"
    if u.get("share_within_10mm") is not None:
        text += f"; {100 * float(u['share_within_10mm']):.0f} % within 10 mm"
    if u.get("split_half_distance_mm") is not None:
        text += f"; split halves {float(u['split_half_distance_mm']):.1f} mm apart"
    advice = t.get("scan_length_advice") or {}
    unstable = (not advice["stable"]) if "stable" in advice else float(p95) > UNSTABLE_P95_RADIUS_MM
    if not unstable or any(str(w).startswith(f"Target stability ({method})") for w in reported):
        return text, None
    warning = (f"Unstable target ({method}): resampling the scan moves the target by up to "
               f"{float(p95):.0f} mm (95 % radius of the bootstrap).")
    if advice.get("message"):
        warning += f" {advice['message']}"
    return text, warning


def _headline(run: TargetingRun) -> str:
    esc = html.escape
    first = run.targets[0]
    x, y, z = _xyz(first)
    return (f'<p class="big" id="target-coordinates" data-x="{x:.2f}" data-y="{y:.2f}" data-z="{z:.2f}">'
            f"Target: ({x:.1f}, {y:.1f}, {z:.1f}) mm {esc(run.space)} ({esc(str(first['method']))})</p>"
            f'<p class="disclaimer">{esc(DISCLAIMER)}</p>')


def _card(run: TargetingRun, out: SubjectSections) -> None:
    """Summary rows, coordinates and warnings of one run."""
    reported = [str(w) for w in run.summary.get("warnings", [])]
    out.warnings.extend(reported)
    for t in run.all_targets:
        xyz = tuple(float(v) for v in _xyz(t))
        out.summary.append((f"Target {t['method']} ({t['space']})",
                            f"{format_xyz(xyz)} mm, r = {float(t['r_at_target']):.3f}"))
        out.add_point(f"Target ({t['method']})", str(t["space"]), xyz, f"targeting ({run.run})")
        stability, warning = _stability_facts(t, reported)
        if stability:
            out.summary.append((f"Stability {t['method']}", stability))
        if warning:
            out.warnings.append(warning)
        advice = t.get("scan_length_advice") or {}
        if advice.get("message"):
            out.summary.append((f"Scan length {t['method']}", str(advice["message"])))
    choice = run.targets[0].get("method_choice") or {}
    if choice.get("reason"):
        out.summary.append(("Method choice", str(choice["reason"])))
    if "global_signal_regression" in run.summary:
        gsr = "on" if run.summary["global_signal_regression"] else "off"
        out.summary.append(("Global signal regression", gsr))
    qc = run.summary.get("qc") or {}
    if qc:
        out.summary.append((f"Scan ({run.run})", f"{qc.get('n_frames')} frames, "
                                                 f"{float(qc.get('duration_min', float('nan'))):.1f} min"))
    nearest = distances_to_references(_xyz(run.targets[0])).sort_values("distance_mm").iloc[0]
    out.summary.append(("Nearest published target",
                        f"{nearest['name']} ({nearest['distance_mm']:.1f} mm away)"))
    if run.planted_mm is not None:
        error = float(np.linalg.norm(_xyz(run.targets[0]) - run.planted_mm))
        out.summary.append(("Planted target (simulated demo)",
                            f"{format_xyz(run.planted_mm)} mm; error {error:.1f} mm"))


# --------------------------------------------------------------------------- sections

def _viewer_section(run: TargetingRun, anchor: str, intro: str, fallback: str) -> ReportSection:
    """The interactive viewer: r map, search region, seed and every method's target.

    ``fallback`` (the connectivity figure) stands in for it when printing or without JavaScript.
    """
    from tmsnet.report.viewer import ViewerLayer, ViewerPoint, viewer_section

    points = []
    for t in run.targets:
        values: dict[str, Any] = {"method": t["method"], "r_at_target": round(float(t["r_at_target"]), 4),
                                  "space": t["space"]}
        size = (t.get("details") or {}).get("cluster_size_voxels")
        if size is not None:
            values["cluster_size_voxels"] = int(size)
        stability = t.get("uncertainty") or {}
        for key in ("p95_radius_mm", "median_distance_mm", "share_within_10mm"):
            if stability.get(key) is not None:
                values[key] = round(float(stability[key]), 2)
        if run.planted_mm is not None:
            values["distance_to_planted_mm"] = round(float(np.linalg.norm(_xyz(t) - run.planted_mm)), 2)
        points.append(ViewerPoint(label=f"target ({t['method']})", xyz_mm=tuple(_xyz(t)),
                                  group=str(t["method"]), values=values))
    layers = [ViewerLayer(name="connectivity", image=run.r_map, kind="map", opacity=0.9, units="r")]
    for name, img, color, opacity in _outlined_masks(run):
        layers.append(ViewerLayer(name=name, image=img, kind="mask", color=color, opacity=opacity))
    intro += ("<p>Seed connectivity (Pearson r with the mean seed time series) on the MNI152 "
              "template: blue-green = anticorrelated, red-yellow = correlated. Orange: search "
              "region; blue: seed; dots: targets. Click a target or its <em>Show</em> button to "
              "read its values.</p>")
    return viewer_section(title=f"Targeting: {run.run}", anchor=anchor, layers=layers, points=points,
                          fallback_html=fallback, intro_html=intro,
                          caption=f"Maps in {run.space}; the template is nilearn's MNI152 (2 mm).")


def _outlined_masks(run: TargetingRun) -> list[tuple[str, Any, str, float]]:
    """(name, mask, colour, viewer opacity) of the search region and the seed the run wrote."""
    from tmsnet.report.figures import SEARCH_COLOR, SEED_COLOR

    return [(name, img, color, opacity)
            for name, img, color, opacity in (("search region", run.search_mask, SEARCH_COLOR, 0.25),
                                              ("seed", run.seed_mask, SEED_COLOR, 0.6))
            if img is not None]


def _connectivity_figure(run: TargetingRun) -> str:
    """The r map through the first target with the region outlines, as a ``<figure>``.

    Drawn once: the connectivity section shows it, and it is the viewer's static stand-in.
    """
    from tmsnet.report.figures import plot_connectivity_through_target

    xyz = _xyz(run.targets[0])
    seed = (run.parameters.get("seed") or {}).get("name", "seed")
    fig = plot_connectivity_through_target(
        run.r_map, target_mm=xyz, title=f"Seed connectivity (r) with {seed}",
        outlines=[(img, color) for _, img, color, _ in _outlined_masks(run)])
    return plot_html(fig, alt=f"Seed connectivity map through the target at {format_xyz(xyz)} mm, "
                     "with the search region (orange outline) and the seed (blue outline)",
                     caption="Pearson r of each voxel with the mean seed time series after cleaning; "
                             "orange outline = search region, blue = seed.")


def _connectivity_section(anchor: str, figure: str | None) -> ReportSection | None:
    return ReportSection("Connectivity map and target", figure, anchor) if figure else None


def _stability_section(run: TargetingRun, anchor: str) -> ReportSection | None:
    if run.cloud is None and not any(t.get("uncertainty") for t in run.targets):
        return None
    esc = html.escape
    params = run.parameters.get("uncertainty") or {}
    body = ""
    if params:
        body += (f"<p>Each target was recomputed on {params.get('n_bootstrap')} block-bootstrap "
                 f"resamples of this scan (blocks of {params.get('block_frames')} contiguous frames, "
                 f"seed {params.get('random_seed')}) and on each half of the scan. The 95 % radius is the "
                 "distance from the target within which 95 % of the resampled targets fall.</p>")
    advice = {str(t["method"]): t.get("scan_length_advice") or {} for t in run.targets}
    items = "".join(f"<li><strong>{esc(m)}</strong>: {esc(str(a['message']))}</li>"
                    for m, a in advice.items() if a.get("message"))
    if items:
        body += f'<ul class="advice">{items}</ul>'
    if run.cloud is not None:
        body += plot_html(
            plot_target_cloud(run.cloud, run.targets, space=run.space, planted_mm=run.planted_mm),
            alt="Bootstrap cloud of targets of each method in three projections",
            caption=f"Targets of {len(run.cloud)} block-bootstrap resamples of the scan (dots) and "
                    f"on the whole scan (stars), {run.space} mm.", dpi=80)
    if run.scan_length is not None:
        tolerance = float(params.get("stability_tolerance_mm", 5.0))
        body += plot_html(
            plot_scan_length(run.scan_length, advice, tolerance_mm=tolerance),
            alt="95 percent radius against scan length for each method",
            caption="Bootstrap on the first 25, 50, 75 and 100 % of the scan; the dashed curve is the fit "
                    "used for the advice.", dpi=80)
    body += table_html(_stability_table(run), caption="Target stability by method")
    return ReportSection("Target stability", body, anchor)


def _comparison_section(run: TargetingRun, anchor: str) -> ReportSection | None:
    if len(run.targets) < 2:
        return None
    body = table_html(_stability_table(run)[["method", "x (mm)", "y (mm)", "z (mm)", "r at target",
                                             "95% radius (mm)"]], caption="Targets side by side")
    body += table_html(_method_distances(run.targets), caption="Distance between methods (mm)",
                       float_format="{:.1f}")
    return ReportSection("Method comparison", body, anchor)


def _regions_section(run: TargetingRun, anchor: str) -> ReportSection | None:
    from tmsnet.report.figures import plot_regions

    body = ""
    if run.seed_mask is not None and run.search_mask is not None:
        fig = plot_regions(seed_mask=run.seed_mask, search_mask=run.search_mask,
                           target_mm=_xyz(run.targets[0]))
        body += plot_html(fig, alt="Seed ROI and DLPFC search region",
                          caption="Blue: seed ROI; orange: DLPFC search region; star: target.")
    regions = {k: run.parameters[p] for k, p in (("seed", "seed"), ("search region", "search_region"))
               if run.parameters.get(p)}
    if regions:
        body += key_value_table(regions, caption="Region definitions")
    return ReportSection("Seed and search region", body, anchor) if body else None


def _references_section(run: TargetingRun, anchor: str) -> ReportSection:
    from tmsnet.report.figures import plot_target_and_references_glass_brain

    first = run.targets[0]
    comparison = distances_to_references(_xyz(first))
    fig = plot_target_and_references_glass_brain(target_mm=_xyz(first), references=comparison)
    body = plot_html(fig, alt="Target and published DLPFC coordinates")
    body += table_html(comparison[["name", "x", "y", "z", "distance_mm", "source"]],
                       caption=f"Distance from the {first['method']} target to published coordinates (mm)")
    if run.parameters.get("coordinate_space_note"):
        body += f"<p>{html.escape(str(run.parameters['coordinate_space_note']))}</p>"
    return ReportSection("Target and published coordinates", body, anchor)


def _qc_section(run: TargetingRun, anchor: str) -> ReportSection | None:
    from tmsnet.report.figures import plot_motion_qc

    qc = run.summary.get("qc") or {}
    if not qc:
        return None
    body = ""
    fd = _framewise_displacement(run)
    if fd is not None and qc.get("t_r_s"):
        fig = plot_motion_qc(framewise_displacement=fd, t_r=float(qc["t_r_s"]))
        body += plot_html(fig, alt="Framewise displacement over time")
    body += key_value_table(qc, caption="Scan quality")
    return ReportSection("Scan quality", body, anchor)


def _parameters_section(run: TargetingRun, anchor: str) -> ReportSection | None:
    if not run.parameters:
        return None
    body = key_value_table(run.parameters.get("cleaning") or {}, caption="Cleaning")
    body += details_json(run.parameters, summary="All parameters (JSON)")
    inputs = {role: (src.get("path") if isinstance(src, dict) else src) for role, src in run.sources.items()}
    body += key_value_table(inputs, caption="Inputs")
    return ReportSection("Methods and parameters", body, anchor)


_HEMISPHERE_NAMES = {"L": "left", "R": "right"}


def _job_mesh_kind(run: TargetingRun) -> str:
    """The kind of template surface the job cleaned on (its record: ``"fsLR midthickness"``)."""
    used = str(((run.parameters.get("cleaning") or {}).get("surface") or {}).get("mesh", ""))
    return used.split()[-1] if used.split() else "pial"


def _display_meshes(run: TargetingRun) -> dict[str, Any]:
    """The template surface to show for each hemisphere (empty if there is none).

    The mesh pair the job was given (``mesh_left``/``mesh_right`` of its inputs: fsaverage6,
    fsaverage), else the shipped one: inflated where the space has one, else the mesh the
    job used (its cleaning record).
    """
    from tmsnet.exceptions import InvalidParameterError, SpaceError, TmsnetError
    from tmsnet.surface.mesh import load_mesh_file, load_template_mesh

    given = {h: run.sources.get(f"mesh_{name}") for h, name in _HEMISPHERE_NAMES.items()}
    paths = {h: src.get("path") if isinstance(src, dict) else src for h, src in given.items()}
    if all(paths.values()):
        try:
            return {h: load_mesh_file(paths[h], run.space, name)
                    for h, name in _HEMISPHERE_NAMES.items()}
        except TmsnetError:  # moved since the job ran: the report goes on without the viewer
            return {}
    for kind in ("inflated", _job_mesh_kind(run)):
        try:
            return {h: load_template_mesh(run.space, name, kind)
                    for h, name in _HEMISPHERE_NAMES.items()}
        except (SpaceError, InvalidParameterError):
            continue
    return {}


def _sulcal_background(run: TargetingRun, meshes: dict[str, Any], hemisphere: str
                       ) -> np.ndarray | None:
    """Grey shading under the map: sulci dark, gyri light (None when no folded mesh is at hand).

    On fsaverage5, minus nilearn's sulcal depth (FreeSurfer's ``sulc``); on other spaces the
    folding measured from the mesh itself (:func:`tmsnet.surface.shading.convexity_mm`), on
    the mesh shown when it is folded, else on the folded mesh the job used.
    """
    from tmsnet.exceptions import InvalidParameterError, SpaceError
    from tmsnet.surface.mesh import load_template_mesh
    from tmsnet.surface.shading import convexity_mm

    name, mesh = _HEMISPHERE_NAMES[hemisphere], meshes[hemisphere]
    if run.space == "fsaverage5":
        from nilearn.datasets import load_fsaverage_data

        kind = "inflated" if mesh.kind == "inflated" else "pial"
        sulc = load_fsaverage_data(mesh=run.space, mesh_type=kind, data_type="sulcal")
        return -np.asarray(sulc.data.parts[name], dtype=float)
    if mesh.kind == "inflated":
        try:
            mesh = load_template_mesh(run.space, name, _job_mesh_kind(run))
        except (SpaceError, InvalidParameterError):
            return None
    return convexity_mm(mesh)


def _surface_points(run: TargetingRun) -> list[Any]:
    from tmsnet.report.viewer import ViewerPoint

    points = []
    for t in run.targets:
        if t.get("hemisphere") not in _HEMISPHERE_NAMES or t.get("vertex") is None:
            continue
        values: dict[str, Any] = {"method": t["method"], "r_at_target": round(float(t["r_at_target"]), 4),
                                  "space": t["space"]}
        for key in ("p95_radius_mm", "split_half_distance_mm"):
            if (t.get("uncertainty") or {}).get(key) is not None:
                values[key] = round(float(t["uncertainty"][key]), 2)
        points.append(ViewerPoint(label=f"target ({t['method']})", xyz_mm=tuple(_xyz(t)),
                                  group=str(t["method"]), values=values,
                                  hemisphere=str(t["hemisphere"]), vertex=int(t["vertex"])))
    return points


def _surface_section(run: TargetingRun, anchor: str, intro: str) -> ReportSection:
    """The sgACC map on the template surface: the interactive viewer, both hemispheres.

    A static lateral view of the left hemisphere stands in for printing and for browsers
    without WebGL2.
    """
    from tmsnet.report.figures import plot_surface_connectivity
    from tmsnet.report.viewer import ViewerSurface, surface_viewer_html

    title = f"Targeting on the surface: {run.run}"
    meshes = _display_meshes(run)
    maps = {h: np.asarray(nib.load(path).darrays[0].data, dtype=float)
            for h, path in run.surface_maps.items()}
    if not meshes or any(maps[h].shape != (meshes[h].n_vertices,) for h in maps):
        note = (f"<p>No {html.escape(run.space)} template mesh with these maps' vertices ships with "
                "tmsnet: the maps are in the GIFTI files only.</p>")
        return ReportSection(title, intro + note, anchor)
    kind = meshes["L"].kind
    surfaces = [ViewerSurface(h, meshes[h].coords_mm, meshes[h].faces, maps[h],
                              background=_sulcal_background(run, meshes, h))
                for h in maps]
    points = _surface_points(run)
    fallback = ""
    if "L" in maps:
        fallback = plot_html(plot_surface_connectivity(
            meshes["L"].coords_mm, meshes["L"].faces, maps["L"], hemisphere="left",
            targets=[(p.group, p.vertex) for p in points if p.hemisphere == "L"],
            background=surfaces[0].background, title="r with the sgACC (left hemisphere)"),
            alt=f"sgACC connectivity on the {kind} left hemisphere with the targets",
            caption=f"Pearson r with the sgACC seed on the {kind} {run.space} surface "
                    "(blue: anticorrelated); black dots: the targets' vertices.", dpi=80)
    intro += (f"<p>Pearson r with the mean sgACC time series on the {html.escape(kind)} "
              f"{html.escape(run.space)} template surface, both hemispheres: blue-green = "
              "anticorrelated, red-yellow = correlated; grey: below the threshold or no data (the "
              "medial wall). Spheres: the targets at their vertices. Drag to rotate; double-click the "
              "surface to read r at the nearest vertex.</p>")
    body, scripts, styles = surface_viewer_html(
        viewer_id=f"{anchor}-viewer", surfaces=surfaces, points=points, fallback_html=fallback,
        map_name="connectivity", units="r",
        caption=f"The {kind} {run.space} template surface; the targets' coordinates in the table "
                f"are on the surface the job used ({run.space}).")
    return ReportSection(title, intro + body, anchor, scripts=scripts, styles=styles)


#: The sections after the viewer, in page order, by anchor suffix.
_SECTIONS: dict[str, Callable[[TargetingRun, str], ReportSection | None]] = {
    "stability": _stability_section, "methods": _comparison_section, "regions": _regions_section,
    "references": _references_section, "qc": _qc_section, "parameters": _parameters_section,
}
#: The parts of a run's page, the slowest to draw first (so that workers finish together).
_PARTS = ("connectivity", "stability", "references", "regions", "qc", "methods", "parameters")


def _build_part(item: tuple[str, TargetingRun, str]) -> Any:
    """One part of a run's page: the connectivity figure or a section (top level, for map_values)."""
    name, run, anchor = item
    if name == "connectivity":
        return _connectivity_figure(run) if run.r_map is not None else None
    return _SECTIONS[name](run, anchor)


def _build_parts(run: TargetingRun, anchor: str, n_jobs: int) -> dict[str, Any]:
    """Every part of :data:`_PARTS`, drawn in up to ``n_jobs`` forked processes.

    The plotting modules and the template are loaded here first, so that the workers
    inherit them instead of each importing them (0.9 s) and resampling the template (1 s),
    and a process that writes many reports does so once. A part that fails raises its own
    exception here (:func:`tmsnet.parallel.map_values`).
    """
    from tmsnet.parallel import forked_backend, map_values
    from tmsnet.report.figures import mni152_template_2mm

    items = [(name, run, f"{anchor}-{name}") for name in _PARTS]
    backend = forked_backend(min(n_jobs, len(items)))
    if backend.kind != "serial":
        import nilearn.plotting  # noqa: F401 - inherited by the workers

        mni152_template_2mm()
    return dict(zip(_PARTS, map_values(_build_part, items, backend=backend), strict=True))


def _run_sections(run: TargetingRun, anchor: str, n_jobs: int = 1) -> list[ReportSection]:
    intro = table_html(_targets_table(run), caption=f"Targets of {run.run}")
    parts = _build_parts(run, anchor, n_jobs)
    connectivity = parts.pop("connectivity")
    if connectivity is not None:
        first = _viewer_section(run, anchor, intro, connectivity)
    elif run.surface_maps:
        first = _surface_section(run, anchor, intro)
    else:
        first = ReportSection(f"Targeting: {run.run}", intro, anchor)
    sections = [first, _connectivity_section(f"{anchor}-connectivity", connectivity)]
    sections += [parts[name] for name in _SECTIONS]
    return [section for section in sections if section is not None]


@fill_doc
def targeting_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the targeting job (``tmsnet target``) from its ``*_desc-<method>_target.json``.

    Section anchors are ``targeting-<n>`` (the viewer; the viewer's id is
    ``targeting-<n>-viewer``) and ``targeting-<n>-<part>``.

    %(section_provider)s
    """
    files = _target_files(context)
    if not files:
        return None
    out = SubjectSections()
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in files:
        runs.setdefault(path.name.split("_space-")[0], []).append(load_json(path))
    for index, (name, targets) in enumerate(runs.items(), start=1):
        run = read_targeting_run(context, name, targets)
        if out.headline_html is None:
            out.headline_html = _headline(run)
        _card(run, out)
        out.sections.extend(_run_sections(run, f"targeting-{index}", context.n_jobs))
    return out


register_section_provider("targeting", targeting_provider, order=10)
