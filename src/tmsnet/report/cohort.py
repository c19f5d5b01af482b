"""The cohort report: every subject's target on one page.

:func:`render_cohort_report` turns a table of per-subject targets (one row per
subject / session / method) into one self-contained HTML page (see
:mod:`tmsnet.report.html`): a summary card (subjects, methods, spread, QC
flags in plain language), all targets on one glass brain beside the published
DLPFC targets (REFERENCES.md section 1), an interactive viewer of the targets
on the MNI152 template (:mod:`tmsnet.report.viewer`; clicking a target shows
its subject's values), distances to the standard targets, the spread of each
method, per-target uncertainty (bootstrap) when given, and QC.

The BIDS-App group step (:mod:`tmsnet.bids_app.group`) calls it with its
``targets.tsv`` table; any caller may.

Expected columns of ``targets``
-------------------------------
Required:

``subject``
    Subject label (``01`` or ``sub-01``); ``participant_id`` is accepted.
``method``
    Targeting method (``cluster``, ``peak``...).
``x``, ``y``, ``z``
    Target in mm.
``space``
    Template space of the coordinates (one space for the whole table).
``r_at_target``
    Seed correlation at the target (Pearson r).

Optional:

``session`` (or ``session_id``)
    Session label; missing / empty means no session.
``run_id``, ``task``
    Shown when present.
``p95_radius_mm``, ``median_distance_mm``, ``share_within_10mm``, ``split_half_distance_mm``
    Bootstrap uncertainty of the target (mm, mm, share 0-1, mm); the
    BIDS-App's ``uncertainty_<name>`` spelling is accepted.
``duration_min``, ``mean_fd_mm``, ``n_warnings``
    Scan QC; turned into plain-language flags (short scan, high motion).
``qc_<name>``
    Any QC flag (boolean: true = problem; or text: shown as is).
``distance_<reference>_mm``
    Ignored: distances to the published targets are recomputed here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tmsnet import __version__
from tmsnet.data import COMPARISON_TARGETS, reference_coordinates
from tmsnet.exceptions import InvalidParameterError
from tmsnet.report.html import (
    ReportSection,
    figure_html,
    figure_to_base64_png,
    render_report,
    table_html,
)
from tmsnet.report.viewer import GROUP_COLORS, ViewerPoint, viewer_section
from tmsnet.utils.docs import add_doc, fill_doc

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "cohort_distances",
    "cohort_qc_flags",
    "method_spread",
    "normalize_cohort_targets",
    "plot_cohort_glass_brain",
    "render_cohort_report",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("subject", "method", "x", "y", "z", "space", "r_at_target")
UNCERTAINTY_COLUMNS: tuple[str, ...] = ("p95_radius_mm", "median_distance_mm", "share_within_10mm",
                                        "split_half_distance_mm")
OPTIONAL_COLUMNS: tuple[str, ...] = ("session", "run_id", "task", *UNCERTAINTY_COLUMNS,
                                     "duration_min", "mean_fd_mm", "n_warnings")
_ALIASES = {"participant_id": "subject", "session_id": "session",
            **{f"uncertainty_{name}": name for name in UNCERTAINTY_COLUMNS}}

#: Plain-language QC thresholds (same as the per-subject report, tmsnet.targeting.workflow).
SHORT_SCAN_MIN = 10.0
HIGH_MOTION_MEAN_FD_MM = 0.25
WEAK_ANTICORRELATION_R = -0.1
#: A bootstrap 95 % radius above this is called unstable (mm; about one coil-positioning error).
UNSTABLE_P95_RADIUS_MM = 10.0


add_doc("cohort_table", """table : pandas.DataFrame
    Output of :func:`normalize_cohort_targets`.""")


def normalize_cohort_targets(targets: pd.DataFrame) -> pd.DataFrame:
    """Check a cohort table and bring it to the documented column names.

    Parameters
    ----------
    targets : pandas.DataFrame
        See the module docstring for the columns.

    Returns
    -------
    pandas.DataFrame
        A copy with canonical names (``subject`` without ``sub-``, ``session``
        without ``ses-``, ``None`` for no session), float coordinates, and a
        ``label`` column (``sub-01 ses-1 cluster``).

    Raises
    ------
    InvalidParameterError
        If the table is empty, lacks a required column, has non-finite
        coordinates, or mixes coordinate spaces.
    """
    if not isinstance(targets, pd.DataFrame):
        raise InvalidParameterError(f"targets must be a pandas DataFrame, got {type(targets).__name__}.")
    table = targets.rename(columns={k: v for k, v in _ALIASES.items()
                                    if k in targets.columns and v not in targets.columns}).copy()
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InvalidParameterError(
            f"The cohort table lacks column(s) {missing}; it needs {list(REQUIRED_COLUMNS)} "
            "(one row per subject / session / method, coordinates in mm)."
        )
    if table.empty:
        raise InvalidParameterError("The cohort table has no rows: no target to report.")
    table = table.reset_index(drop=True)
    for column in ("x", "y", "z", "r_at_target"):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    bad = ~np.isfinite(table[["x", "y", "z"]].to_numpy()).all(axis=1)
    if bad.any():
        rows = table.index[bad].tolist()
        raise InvalidParameterError(f"Rows {rows} of the cohort table have missing or non-finite x/y/z.")
    spaces = sorted(set(table["space"].astype(str)))
    if len(spaces) > 1:
        raise InvalidParameterError(
            f"The cohort table mixes coordinate spaces {spaces}; transform every target to one "
            "template space first."
        )
    table["subject"] = table["subject"].astype(str).str.replace(r"^sub-", "", regex=True)
    if "session" not in table.columns:
        table["session"] = None
    table["session"] = [None if (s is None or (isinstance(s, float) and np.isnan(s)) or str(s) == "")
                        else str(s).removeprefix("ses-") for s in table["session"]]
    labels = []
    for row in table.itertuples(index=False):
        parts = [f"sub-{row.subject}"]
        if row.session:
            parts.append(f"ses-{row.session}")
        run = getattr(row, "run_id", None)
        if isinstance(run, str) and run:
            parts.append(run)
        parts.append(str(row.method))
        labels.append(" ".join(parts))
    table["label"] = labels
    return table


@fill_doc
def cohort_distances(table: pd.DataFrame, *, references: Sequence[str] = COMPARISON_TARGETS) -> pd.DataFrame:
    """Distance (mm) from every target to each published DLPFC target.

    Parameters
    ----------
    %(cohort_table)s
    references : sequence of str
        Names in :func:`tmsnet.data.reference_coordinates`.

    Returns
    -------
    pandas.DataFrame
        One row per target (``label``) and one column per reference (mm).
    """
    refs = reference_coordinates().loc[list(references)]
    xyz = table[["x", "y", "z"]].to_numpy(dtype=float)
    ref_xyz = refs[["x", "y", "z"]].to_numpy(dtype=float)
    distances = np.linalg.norm(xyz[:, None, :] - ref_xyz[None, :, :], axis=-1)
    out = pd.DataFrame(np.round(distances, 1), columns=list(refs.index), index=table["label"])
    out.index.name = "target"
    return out


@fill_doc
def method_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: how many targets, their mean position and spread.

    Parameters
    ----------
    %(cohort_table)s

    Returns
    -------
    pandas.DataFrame
        Columns ``method``, ``n``, ``mean x/y/z (mm)``, ``mean distance to
        centroid (mm)`` (the spread across subjects), ``mean r``.
    """
    rows = []
    for method, group in table.groupby("method", sort=False):
        xyz = group[["x", "y", "z"]].to_numpy(dtype=float)
        centroid = xyz.mean(axis=0)
        rows.append({
            "method": method, "n": len(group),
            "mean x (mm)": centroid[0], "mean y (mm)": centroid[1], "mean z (mm)": centroid[2],
            "mean distance to centroid (mm)": float(np.linalg.norm(xyz - centroid, axis=1).mean()),
            "mean r": float(group["r_at_target"].mean()),
        })
    return pd.DataFrame(rows)


@fill_doc
def cohort_qc_flags(table: pd.DataFrame) -> list[list[str]]:
    """Plain-language QC flags of each target (row).

    Parameters
    ----------
    %(cohort_table)s

    Returns
    -------
    list of list of str
        For each row, its flags (empty when nothing is flagged), e.g.
        ``"scan shorter than advised (6.7 min < 10 min)"``.
    """

    def number(row: pd.Series, column: str) -> float | None:
        value = row.get(column)
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if np.isfinite(value) else None

    flags: list[list[str]] = []
    qc_columns = [c for c in table.columns if str(c).startswith("qc_")]
    for _, row in table.iterrows():
        found: list[str] = []
        duration = number(row, "duration_min")
        if duration is not None and duration < SHORT_SCAN_MIN:
            found.append(f"scan shorter than advised ({duration:.1f} min < {SHORT_SCAN_MIN:g} min)")
        fd = number(row, "mean_fd_mm")
        if fd is not None and fd > HIGH_MOTION_MEAN_FD_MM:
            found.append(f"high motion (mean FD {fd:.2f} mm > {HIGH_MOTION_MEAN_FD_MM} mm)")
        r = number(row, "r_at_target")
        if r is not None and r > WEAK_ANTICORRELATION_R:
            found.append(f"weak anticorrelation at the target (r = {r:.2f})")
        p95 = number(row, "p95_radius_mm")
        if p95 is not None and p95 > UNSTABLE_P95_RADIUS_MM:
            found.append(f"unstable target (95 % of bootstrap targets within {p95:.1f} mm "
                         f"> {UNSTABLE_P95_RADIUS_MM:g} mm)")
        n_warnings = number(row, "n_warnings")
        if n_warnings:
            found.append(f"{int(n_warnings)} warning(s) in the subject's report")
        for column in qc_columns:
            value = row[column]
            name = str(column)[3:].replace("_", " ")
            if isinstance(value, bool | np.bool_):
                if value:
                    found.append(name)
            elif isinstance(value, str) and value.strip():
                found.append(f"{name}: {value.strip()}")
        flags.append(found)
    return flags


@fill_doc
def plot_cohort_glass_brain(table: pd.DataFrame, *, references: Sequence[str] = COMPARISON_TARGETS) -> Any:
    """All targets (coloured by method) and the published targets on a glass brain.

    Parameters
    ----------
    %(cohort_table)s
    references : sequence of str
        Published targets drawn as black-edged grey diamonds.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from nilearn import plotting

    fig = plt.figure(figsize=(10, 4.4), facecolor="white")
    axes = fig.add_axes((0.0, 0.18, 1.0, 0.8))
    display = plotting.plot_glass_brain(None, display_mode="lzry", axes=axes, figure=fig,
                                        black_bg=False, annotate=True, colorbar=False)
    handles = []
    methods = list(dict.fromkeys(table["method"]))
    for i, method in enumerate(methods):
        color = GROUP_COLORS[i % len(GROUP_COLORS)]
        xyz = table.loc[table["method"] == method, ["x", "y", "z"]].to_numpy(dtype=float)
        display.add_markers(xyz, marker_color=color, marker_size=40, marker="o", edgecolors="black",
                            linewidths=0.5, alpha=0.85)
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=8, markerfacecolor=color,
                              markeredgecolor="black", label=f"{method} (n = {len(xyz)})"))
    refs = reference_coordinates().loc[list(references)]
    display.add_markers(refs[["x", "y", "z"]].to_numpy(dtype=float), marker_color="#BBBBBB",
                        marker_size=55, marker="D", edgecolors="black", linewidths=0.8)
    handles.append(Line2D([], [], linestyle="", marker="D", markersize=8, markerfacecolor="#BBBBBB",
                          markeredgecolor="black", label="published DLPFC targets"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), frameon=False,
               fontsize=10)
    return fig


def _summary_html(table: pd.DataFrame, flags: list[list[str]], spread: pd.DataFrame) -> str:
    esc = html.escape
    n_subjects = table["subject"].nunique()
    sessions = table["session"].dropna().nunique()
    rows = [
        ("Subjects", str(n_subjects)),
        ("Sessions", str(sessions) if sessions else "one per subject"),
        ("Methods", ", ".join(dict.fromkeys(table["method"].astype(str)))),
        ("Space", str(table["space"].iloc[0])),
    ]
    for item in spread.itertuples(index=False):
        rows.append((f"Spread of {item.method} targets",
                     f"{item[5]:.1f} mm mean distance to their centroid "
                     f"({item[2]:.1f}, {item[3]:.1f}, {item[4]:.1f}) mm"))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    flagged = [(label, f) for label, f in zip(table["label"], flags, strict=True) if f]
    if flagged:
        notes = "".join(f"<li><strong>{esc(label)}</strong>: {esc('; '.join(f))}</li>"
                        for label, f in flagged)
        qc = (f'<div class="warnings" role="alert"><strong>{len(flagged)} of {len(table)} targets '
              f"need a look</strong><ul>{notes}</ul></div>")
    else:
        qc = '<div class="ok">No quality flags.</div>'
    return (f'<p class="big" id="cohort-count" data-n-targets="{len(table)}" '
            f'data-n-subjects="{n_subjects}">{len(table)} targets from {n_subjects} subjects</p>'
            f"<dl>{items}</dl>{qc}")


def render_cohort_report(
    targets: pd.DataFrame,
    *,
    title: str = "tmsnet cohort report",
    references: Sequence[str] = COMPARISON_TARGETS,
    interactive: bool = True,
    extra_sections: Sequence[ReportSection] = (),
    dpi: int = 90,
) -> str:
    """Render the cohort report of a table of per-subject targets.

    Parameters
    ----------
    targets : pandas.DataFrame
        One row per subject / session / method; columns in the module docstring.
    title : str
        Page title.
    references : sequence of str
        Published targets to compare with (names in
        :func:`tmsnet.data.reference_coordinates`; default
        :data:`tmsnet.data.COMPARISON_TARGETS`).
    interactive : bool
        Include the interactive viewer of all targets (adds about 2.5 MB).
    extra_sections : sequence of ReportSection
        Sections appended at the end (e.g. group statistics of another job).
    dpi : int
        Resolution of the static figures.

    Returns
    -------
    str
        A complete, self-contained HTML document.

    Raises
    ------
    InvalidParameterError
        If the table is not usable (see :func:`normalize_cohort_targets`).
    """
    table = normalize_cohort_targets(targets)
    flags = cohort_qc_flags(table)
    spread = method_spread(table)
    distances = cohort_distances(table, references=references)
    glass = figure_to_base64_png(plot_cohort_glass_brain(table, references=references), dpi=dpi)
    sections = [_glass_brain_section(glass)]
    if interactive:
        sections.append(_viewer_section(table, flags, distances, glass))
    sections.append(_distances_section(distances))
    sections.append(_methods_section(table, spread))
    uncertainty = _uncertainty_section(table)
    if uncertainty is not None:
        sections.append(uncertainty)
    sections.append(_qc_section(table, flags))
    sections.extend(extra_sections)
    return render_report(
        title=title,
        subtitle="Personalized DLPFC targets of every subject, side by side",
        summary_html=_summary_html(table, flags, spread),
        sections=sections,
        footer_html=html.escape(f"Generated by tmsnet {__version__}."),
    )


def _glass_brain_section(glass: str) -> ReportSection:
    """The "All targets" section: the glass brain (base64 PNG) of every target."""
    glass_html = figure_html(glass, alt="All targets of the cohort on a glass brain, coloured by method, "
                                        "with the published DLPFC targets",
                             caption="Coloured dots: targets (one per subject and method); grey "
                                     "diamonds: published DLPFC targets.")
    return ReportSection("All targets", glass_html, "targets")


def _viewer_points(table: pd.DataFrame, flags: list[list[str]],
                   distances: pd.DataFrame) -> list[ViewerPoint]:
    """One viewer marker per target, carrying its subject's values, nearest target and QC flags."""
    points = []
    for row, row_flags in zip(table.itertuples(index=False), flags, strict=True):
        values: dict[str, Any] = {"subject": f"sub-{row.subject}", "method": row.method,
                                  "r_at_target": round(float(row.r_at_target), 4)}
        if row.session:
            values["session"] = f"ses-{row.session}"
        for column in UNCERTAINTY_COLUMNS:
            if column in table.columns and pd.notna(getattr(row, column)):
                values[column] = float(getattr(row, column))
        nearest = distances.loc[row.label].idxmin() if row.label in distances.index else None
        if nearest is not None:
            values["nearest published target"] = (
                f"{nearest} ({float(distances.loc[row.label, nearest]):.1f} mm)"
            )
        values["QC flags"] = "; ".join(row_flags) if row_flags else "none"
        points.append(ViewerPoint(label=row.label, xyz_mm=(row.x, row.y, row.z),
                                  group=str(row.method), values=values))
    return points


def _viewer_section(table: pd.DataFrame, flags: list[list[str]], distances: pd.DataFrame,
                    glass: str) -> ReportSection:
    """The interactive viewer of every target on the MNI152 template (glass brain as fallback)."""
    return viewer_section(
        title="Interactive viewer", anchor="viewer", layers=(),
        points=_viewer_points(table, flags, distances),
        fallback_html=figure_html(glass, alt="All targets on a glass brain (static view)"),
        intro_html="<p>Every target on the MNI152 template, coloured by method. Click a target "
                   "(or its <em>Show</em> button) to see its subject's values.</p>",
        caption=f"Coordinates in {table['space'].iloc[0]}; template: nilearn's MNI152 (2 mm).",
    )


def _distances_section(distances: pd.DataFrame) -> ReportSection:
    """Distances (mm) from each target to the published targets, and their mean / min / max."""
    body = table_html(distances.reset_index(), float_format="{:.1f}",
                      caption="Distance from each target to the published DLPFC targets (mm)")
    summary = distances.agg(["mean", "min", "max"]).T.reset_index()
    summary.columns = ["published target", "mean (mm)", "min (mm)", "max (mm)"]
    body += table_html(summary, float_format="{:.1f}", caption="Over all targets")
    return ReportSection("Distances to standard targets", body, "distances")


def _methods_section(table: pd.DataFrame, spread: pd.DataFrame) -> ReportSection:
    """The spread of each method and the coordinates (mm) and r of every target."""
    body = table_html(spread, float_format="{:.2f}", caption="Targets by method")
    coords = table[["label", "x", "y", "z", "r_at_target"]].rename(
        columns={"label": "target", "x": "x (mm)", "y": "y (mm)", "z": "z (mm)", "r_at_target": "r"})
    body += table_html(coords, float_format="{:.2f}", caption=f"All targets ({table['space'].iloc[0]})")
    return ReportSection("Targets by method", body, "methods")


def _uncertainty_section(table: pd.DataFrame) -> ReportSection | None:
    """The bootstrap uncertainty of each target, or None when the table has none."""
    present = [c for c in UNCERTAINTY_COLUMNS if c in table.columns and table[c].notna().any()]
    if not present:
        return None
    unc = table[["label", *present]].rename(columns={"label": "target"})
    body = ("<p>Bootstrap uncertainty of each target: the radius holding 95 % of bootstrap "
            "targets, their median distance to the target, and the share within 10 mm.</p>")
    body += table_html(unc, float_format="{:.2f}", caption="Target uncertainty")
    return ReportSection("Uncertainty", body, "uncertainty")


def _qc_section(table: pd.DataFrame, flags: list[list[str]]) -> ReportSection:
    """The scan QC columns and the plain-language flags of every target."""
    qc_columns = [c for c in ("duration_min", "mean_fd_mm", "n_warnings") if c in table.columns]
    qc_table = table[["label", *qc_columns]].rename(columns={"label": "target"}).copy()
    qc_table["flags"] = ["; ".join(f) if f else "none" for f in flags]
    return ReportSection("Quality control", table_html(qc_table, float_format="{:.2f}",
                                                       caption="QC by target"), "qc")
