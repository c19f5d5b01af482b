"""The group level: one table, two figures and a report for the whole cohort.

:func:`collect_targets` reads the provenance sidecar of every finished
participant job (``sub-*/[ses-*/]*_provenance.json``, written by
:mod:`tmsnet.bids_app.participant`) and returns one row per
participant / session / run / method. :func:`run_group` writes::

    OUTPUT_DIR/targets.tsv (+ targets.json)      the table, columns described in the sidecar
    OUTPUT_DIR/figures/group_desc-glassbrain_targets.png (+ .json)
    OUTPUT_DIR/figures/group_desc-distances_targets.png (+ .json)
    OUTPUT_DIR/group_report.html (+ group_report.json)

Distances to the standard DLPFC targets use the published coordinates bundled
with tmsnet (``tmsnet.data.COMPARISON_TARGETS``; sources in REFERENCES.md
section 1). The glass brain and the group report come from
:mod:`tmsnet.report.cohort`; the distance figure and the failed-jobs table are
added to that report as extra sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.data import COMPARISON_TARGETS, reference_coordinates
from tmsnet.exceptions import InputFileNotFoundError
from tmsnet.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_tsv
from tmsnet.io.lock import output_lock
from tmsnet.io.provenance import make_sidecar, sidecar_path_for

__all__ = ["UNCERTAINTY_KEYS", "collect_targets", "reference_distance_column", "run_group"]

#: Keys of a target's ``uncertainty`` summary copied to ``targets.tsv`` (prefixed ``uncertainty_``).
UNCERTAINTY_KEYS: tuple[str, ...] = (
    "median_distance_mm", "p95_radius_mm", "share_within_10mm", "split_half_distance_mm",
)
_QC_COLUMNS = {
    "n_frames": "n_frames",
    "n_frames_used": "n_frames_used",
    "duration_min": "duration_min",
    "mean_framewise_displacement_mm": "mean_fd_mm",
    "percent_frames_fd_above_0_5mm": "percent_fd_above_0_5mm",
}
_SORT = ["participant_id", "session_id", "run_id", "method"]


def reference_distance_column(name: str) -> str:
    """Column of ``targets.tsv`` holding the distance (mm) to a published target."""
    return "distance_" + "".join(c if c.isalnum() else "_" for c in name).strip("_") + "_mm"


def _run_id(entities: dict[str, str], runs: list[str | None]) -> str | None:
    if "run" in entities:
        return entities["run"]
    labels = [r for r in runs if r]
    return "+".join(labels) if len(labels) > 1 else (labels[0] if labels else None)


def collect_targets(output_dir: str | Path) -> pd.DataFrame:
    """One row per participant / session / run / method from the finished jobs.

    Parameters
    ----------
    output_dir : path
        The BIDS-App output folder.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id``, ``session_id``, ``run_id``, ``task``,
        ``method``, ``x``, ``y``, ``z`` (mm), ``space``, ``r_at_target``,
        ``uncertainty_*`` (mm / share; missing when the bootstrap was off),
        QC columns, ``n_warnings``, ``distance_<reference>_mm``; sorted by
        participant, session, run, method (independent of completion order).
        Empty (with these columns) when no job has finished.
    """
    refs = reference_coordinates().loc[list(COMPARISON_TARGETS)]
    ref_xyz = refs[["x", "y", "z"]].to_numpy(dtype=float)
    rows: list[dict[str, Any]] = []
    for path in sorted(Path(output_dir).glob("sub-*/**/*_provenance.json")):
        try:
            prov = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if "Fingerprint" not in prov or "Results" not in prov:
            continue
        who = prov.get("Participant", {})
        for summary in prov["Results"]:
            entities = summary.get("entities", {})
            qc = summary.get("qc", {})
            for target in summary["targets"]:
                xyz = np.array([target["x"], target["y"], target["z"]], dtype=float)
                row: dict[str, Any] = {
                    "participant_id": f"sub-{who.get('subject')}",
                    "session_id": f"ses-{who['session']}" if who.get("session") else None,
                    "run_id": _run_id(entities, who.get("runs", [])),
                    "task": who.get("task"),
                    "method": target["method"],
                    "x": target["x"], "y": target["y"], "z": target["z"],
                    "space": target["space"],
                    "r_at_target": target["r_at_target"],
                }
                uncertainty = target.get("uncertainty") or {}
                for key in UNCERTAINTY_KEYS:
                    row[f"uncertainty_{key}"] = uncertainty.get(key)
                for key, column in _QC_COLUMNS.items():
                    row[column] = qc.get(key)
                row["n_warnings"] = len(summary.get("warnings", []))
                distances = np.linalg.norm(ref_xyz - xyz, axis=1)
                for name, distance in zip(refs.index, distances, strict=True):
                    row[reference_distance_column(name)] = round(float(distance), 2)
                rows.append(row)
    columns = (["participant_id", "session_id", "run_id", "task", "method", "x", "y", "z", "space",
                "r_at_target"] + [f"uncertainty_{k}" for k in UNCERTAINTY_KEYS]
               + list(_QC_COLUMNS.values()) + ["n_warnings"]
               + [reference_distance_column(n) for n in refs.index])
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    order = table[_SORT].fillna("").astype(str)
    return table.loc[order.sort_values(_SORT).index].reset_index(drop=True)


def _column_descriptions() -> dict[str, Any]:
    described: dict[str, Any] = {
        "participant_id": {"Description": "Participant (sub-<label>)."},
        "session_id": {"Description": "Session (ses-<label>); n/a without sessions."},
        "run_id": {"Description": "Run label; several labels joined by '+' when runs were "
                                  "concatenated; n/a for a single unlabeled run."},
        "task": {"Description": "BIDS task label of the resting-state scan."},
        "method": {"Description": "Targeting method (tmsnet.targeting.methods)."},
        "x": {"Description": "Target x coordinate.", "Units": "mm"},
        "y": {"Description": "Target y coordinate.", "Units": "mm"},
        "z": {"Description": "Target z coordinate.", "Units": "mm"},
        "space": {"Description": "Template space of the coordinates."},
        "r_at_target": {"Description": "Pearson r between the seed and the target."},
        "uncertainty_median_distance_mm": {
            "Description": "Median distance of bootstrap targets to the target.", "Units": "mm"},
        "uncertainty_p95_radius_mm": {
            "Description": "Radius holding 95 % of the bootstrap targets.", "Units": "mm"},
        "uncertainty_share_within_10mm": {
            "Description": "Share of bootstrap targets within 10 mm of the target (0-1)."},
        "uncertainty_split_half_distance_mm": {
            "Description": "Distance between the targets of the two halves of the scan.",
            "Units": "mm"},
        "n_frames": {"Description": "Frames in the scan(s)."},
        "n_frames_used": {"Description": "Frames left after discarding and scrubbing."},
        "duration_min": {"Description": "Scan duration.", "Units": "min"},
        "mean_fd_mm": {"Description": "Mean framewise displacement (Power 2012).", "Units": "mm"},
        "percent_fd_above_0_5mm": {"Description": "Frames with FD above 0.5 mm.", "Units": "%"},
        "n_warnings": {"Description": "Number of QC warnings of the job."},
    }
    refs = reference_coordinates().loc[list(COMPARISON_TARGETS)]
    for name, row in refs.iterrows():
        described[reference_distance_column(name)] = {
            "Description": f"Euclidean distance from the target to {name} "
                           f"({row['x']:g}, {row['y']:g}, {row['z']:g}) mm ({row['source']}).",
            "Units": "mm"}
    return described


def plot_group_glass_brain(targets: pd.DataFrame) -> Any:
    """All targets on one glass brain (colour = method) with the published targets.

    The figure of :func:`tmsnet.report.cohort.plot_cohort_glass_brain` on
    ``targets.tsv``'s columns.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from tmsnet.report.cohort import normalize_cohort_targets, plot_cohort_glass_brain

    return plot_cohort_glass_brain(normalize_cohort_targets(targets))


def plot_distances_to_references(targets: pd.DataFrame) -> Any:
    """Distance (mm) of each target to each published target, one panel per method.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    names = list(COMPARISON_TARGETS)
    methods = sorted(targets["method"].unique())
    fig, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods) + 1, 3.8), squeeze=False,
                             sharey=True, facecolor="white")
    rng = np.random.default_rng(0)  # jitter only; does not touch any result
    for ax, method in zip(axes[0], methods, strict=True):
        rows = targets[targets["method"] == method]
        for k, name in enumerate(names):
            values = rows[reference_distance_column(name)].to_numpy(dtype=float)
            ax.scatter(k + rng.uniform(-0.15, 0.15, len(values)), values, s=18, color="#0072B2",
                       edgecolors="black", linewidths=0.4, zorder=3)
            if len(values):
                ax.hlines(np.median(values), k - 0.3, k + 0.3, color="#D55E00", linewidth=2, zorder=4)
        ax.set_xticks(range(len(names)), names, rotation=35, ha="right", fontsize=8)
        ax.set_title(f"method: {method}", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("distance from personal target (mm)")
    fig.tight_layout()
    return fig


def _extra_sections(figures: dict[str, str], failures: list[dict]) -> list[Any]:
    """The group step's own sections of the cohort report: distances and failed jobs."""
    from tmsnet.report.html import ReportSection, figure_html, table_html

    sections = [ReportSection("Distance to standard targets, per method", figure_html(
        figures["distances"], alt="Distances from the personal targets to standard targets",
        caption="Distance (mm) of each personal target to each published target; orange "
                "bar = median."), "group-distances")]
    if failures:
        sections.append(ReportSection("Failed jobs", table_html(
            pd.DataFrame(failures), caption="Crash files in logs/: fix the input and re-run the "
                                            "participant level; only these jobs are computed."),
            "failures"))
    return sections


def _failures(output_dir: Path) -> list[dict[str, Any]]:
    rows = []
    for path in sorted((output_dir / "logs").glob("*_crash.json")):
        try:
            crash = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append({"job": crash.get("Participant"), "task": crash.get("Task"),
                     "error": crash.get("Error"), "crash_file": f"logs/{path.name}"})
    return rows


def run_group(output_dir: str | Path, *, report: bool = True) -> dict[str, Path]:
    """Write ``targets.tsv``, the group figures and the group report.

    Parameters
    ----------
    output_dir : path
        The BIDS-App output folder, after the participant level.
    report : bool
        Also render the figures and the HTML report.

    Returns
    -------
    dict
        Paths by role: ``targets``, ``glassbrain``, ``distances``, ``report``.

    Raises
    ------
    InputFileNotFoundError
        If no participant job has finished in ``output_dir``.
    """
    out = Path(output_dir).expanduser().absolute()
    if not out.is_dir():
        raise InputFileNotFoundError(
            f"The output folder {out} does not exist. Run the participant level first: "
            "tmsnet BIDS_DIR OUTPUT_DIR participant.")
    with output_lock(out):
        return _write_group(out, report=report)


def _write_group(out: Path, *, report: bool) -> dict[str, Path]:
    """The group outputs of :func:`run_group` (the output folder's lock held)."""
    from tmsnet.report.html import figure_to_base64_png

    targets = collect_targets(out)
    if targets.empty:
        raise InputFileNotFoundError(
            f"No finished participant in {out} (no sub-*/*_provenance.json). Run the participant "
            "level first: tmsnet BIDS_DIR OUTPUT_DIR participant."
        )
    sources = {f"job_{p.parent.relative_to(out).as_posix().replace('/', '_')}_{p.name}": p
               for p in sorted(out.glob("sub-*/**/*_provenance.json"))}
    parameters = {"n_rows": len(targets), "reference_targets": list(COMPARISON_TARGETS)}
    written: dict[str, Path] = {}
    tsv = out / "targets.tsv"
    atomic_write_tsv(tsv, targets)
    side = make_sidecar(description="Targets of every participant/session/run/method (mm).",
                        parameters=parameters, inputs=sources,
                        space=", ".join(sorted(targets["space"].unique())),
                        extra=_column_descriptions())
    atomic_write_json(sidecar_path_for(tsv), side)
    written["targets"] = tsv
    if not report:
        return written
    failures = _failures(out)
    figures_dir = out / "figures"
    figures_dir.mkdir(exist_ok=True)
    uris: dict[str, str] = {}
    import base64

    for role, plot, what in (
        ("glassbrain", plot_group_glass_brain, "All targets on a glass brain with standard targets."),
        ("distances", plot_distances_to_references, "Distances to the standard DLPFC targets (mm)."),
    ):
        uri = figure_to_base64_png(plot(targets), dpi=110)
        uris[role] = uri
        path = figures_dir / f"group_desc-{role}_targets.png"
        atomic_write_bytes(path, base64.b64decode(uri.split(",", 1)[1]))
        atomic_write_json(sidecar_path_for(path), make_sidecar(
            description=what, parameters=parameters, inputs={"targets": tsv},
            space=", ".join(sorted(targets["space"].unique()))))
        written[role] = path
    from tmsnet.report.cohort import render_cohort_report

    document = render_cohort_report(targets, extra_sections=_extra_sections(uris, failures))
    path = out / "group_report.html"
    atomic_write_text(path, document)
    atomic_write_json(sidecar_path_for(path), make_sidecar(
        description="Group report (self-contained HTML).", parameters=parameters,
        inputs={"targets": tsv}, space=", ".join(sorted(targets["space"].unique())),
        extra={"FailedJobs": failures}))
    written["report"] = path
    return written
