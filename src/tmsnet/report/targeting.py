"""The targeting report: what a clinician reads after ``tmsnet target``.

One self-contained HTML page (see :mod:`tmsnet.report.html`): a summary card
with the target, its correlation and plain-language QC warnings; the seed
connectivity map through the target; the seed and search region; the target
beside published DLPFC coordinates with distances; scan QC; every parameter.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tmsnet import __version__
from tmsnet.report.figures import (
    plot_connectivity_through_target,
    plot_motion_qc,
    plot_regions,
    plot_target_and_references_glass_brain,
)
from tmsnet.report.html import (
    ReportSection,
    details_json,
    figure_html,
    figure_to_base64_png,
    key_value_table,
    render_report,
    table_html,
)
from tmsnet.report.uncertainty import uncertainty_sections
from tmsnet.report.viewer import targeting_viewer_section

if TYPE_CHECKING:
    from tmsnet.targeting.workflow import TargetingResult

_DISCLAIMER = (
    "tmsnet reports connectivity facts; it does not predict treatment response. A prospective "
    "multi-site study (Khosravani et al. 2025, 66 patients) found no link between sgACC "
    "anticorrelation at the treated site and outcome. Coordinates are in template space: map "
    "them to the patient's native T1w space before neuronavigation."
)


def _fmt_xyz(xyz: np.ndarray) -> str:
    return ", ".join(f"{float(v):.1f}" for v in xyz)


def _summary_html(result: TargetingResult) -> str:
    esc = html.escape
    first = result.targets[0]
    rows = [
        ("Method", first.method),
        ("Space", result.space),
        ("Correlation with sgACC (r)", f"{first.r_at_target:.3f}"),
        ("Global signal regression",
         "on" if result.parameters["cleaning"].get("global_signal") else "off"),
        ("Scan", f"{result.qc['n_frames']} frames, {result.qc['duration_min']:.1f} min"),
    ]
    stability = first.details.get("uncertainty") or {}
    if stability.get("p95_radius_mm") is not None:
        rows.append(("Stability (bootstrap)",
                     f"95 % of resampled targets within {stability['p95_radius_mm']:.1f} mm; "
                     f"split halves {stability['split_half_distance_mm'] or float('nan'):.1f} mm apart"))
    advice = first.details.get("scan_length_advice")
    if advice:
        rows.append(("Scan length", advice["message"]))
    for other in result.targets[1:]:
        rows.append((f"Target ({other.method})",
                     f"({_fmt_xyz(other.coordinate_mm)}) mm, r = {other.r_at_target:.3f}"))
    nearest = result.comparison.sort_values("distance_mm").iloc[0]
    rows.append(("Nearest published target",
                 f"{nearest['name']} ({nearest['distance_mm']:.1f} mm away)"))
    if result.truth is not None:
        planted = np.asarray(result.truth["target_mm"], dtype=float)
        error = float(np.linalg.norm(first.coordinate_mm - planted))
        rows.append(("Planted target (simulated demo)",
                     f"({_fmt_xyz(planted)}) mm; error {error:.1f} mm"))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(str(v))}</dd>" for k, v in rows)
    coordinate = (
        f'<p class="big" id="target-coordinates" data-x="{first.coordinate_mm[0]:.2f}" '
        f'data-y="{first.coordinate_mm[1]:.2f}" data-z="{first.coordinate_mm[2]:.2f}">'
        f"Target: ({esc(_fmt_xyz(first.coordinate_mm))}) mm {esc(result.space)}</p>"
    )
    if result.warnings:
        notes = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
        qc = f'<div class="warnings" role="alert"><strong>Check before use</strong><ul>{notes}</ul></div>'
    else:
        qc = '<div class="ok">No quality warnings.</div>'
    return (
        f"{coordinate}<dl>{items}</dl>{qc}"
        f'<p class="disclaimer">{esc(_DISCLAIMER)}</p>'
    )


def _methods_table(result: TargetingResult) -> pd.DataFrame:
    rows = []
    for target in result.targets:
        x, y, z = (float(v) for v in target.coordinate_mm)
        row = {"method": target.method, "x (mm)": x, "y (mm)": y, "z (mm)": z,
               "r at target": target.r_at_target}
        if "cluster_size_voxels" in target.details:
            row["cluster size (voxels)"] = target.details["cluster_size_voxels"]
        rows.append(row)
    return pd.DataFrame(rows)


def render_targeting_report(result: TargetingResult) -> str:
    """Render the HTML report of one targeting result.

    Parameters
    ----------
    result : TargetingResult
        Output of :func:`tmsnet.targeting.workflow.compute_targets`.

    Returns
    -------
    str
        A complete, self-contained HTML document.
    """
    first = result.targets[0]
    target_xyz = first.coordinate_mm
    sections: list[ReportSection] = [targeting_viewer_section(result)]

    fig = plot_connectivity_through_target(
        result.map_image(first.connectivity_r), target_mm=target_xyz,
        title=f"Seed connectivity (r) with {result.parameters['seed'].get('name', 'seed')}",
    )
    body = figure_html(
        figure_to_base64_png(fig),
        alt=f"Seed connectivity map through the target at ({_fmt_xyz(target_xyz)}) mm",
        caption="Pearson r of each voxel with the mean seed time series after cleaning.",
    )
    body += table_html(_methods_table(result), caption="Targets by method")
    sections.append(ReportSection("Connectivity map and target", body, "connectivity"))
    sections.extend(uncertainty_sections(result))

    fig = plot_regions(
        seed_mask=result.mask_image(result.seed_mask),
        search_mask=result.mask_image(result.search_mask),
        target_mm=target_xyz,
    )
    seed = result.parameters["seed"]
    search = result.parameters["search_region"]
    body = figure_html(figure_to_base64_png(fig), alt="Seed ROI and DLPFC search region",
                       caption="Blue: seed ROI; orange: DLPFC search region; star: target.")
    body += key_value_table({"seed": seed, "search region": search},
                            caption="Region definitions")
    sections.append(ReportSection("Seed and search region", body, "regions"))

    fig = plot_target_and_references_glass_brain(
        target_mm=target_xyz, references=result.comparison
    )
    body = figure_html(figure_to_base64_png(fig), alt="Target and published DLPFC coordinates")
    body += table_html(
        result.comparison[["name", "x", "y", "z", "distance_mm", "source"]],
        caption=f"Distance from the {first.method} target to published coordinates (mm)",
    )
    body += f"<p>{html.escape(result.parameters['coordinate_space_note'])}</p>"
    sections.append(ReportSection("Target and published coordinates", body, "references"))

    body = ""
    if np.isfinite(result.framewise_displacement).any():
        fig = plot_motion_qc(framewise_displacement=result.framewise_displacement,
                             t_r=result.qc["t_r_s"])
        body += figure_html(figure_to_base64_png(fig), alt="Framewise displacement over time")
    body += key_value_table(result.qc, caption="Scan quality")
    sections.append(ReportSection("Scan quality", body, "qc"))

    body = key_value_table(result.parameters["cleaning"], caption="Cleaning")
    body += details_json(result.parameters, summary="All parameters (JSON)")
    inputs = {role: str(path) for role, path in result.inputs.items()}
    body += key_value_table(inputs, caption="Inputs")
    sections.append(ReportSection("Methods and parameters", body, "methods"))

    label = result.entities.get("sub", "unknown")
    return render_report(
        title=f"tmsnet targeting report: sub-{label}",
        subtitle="Personalized left-DLPFC target anticorrelated with the subgenual cingulate",
        summary_html=_summary_html(result),
        sections=sections,
        footer_html=html.escape(f"Generated by tmsnet {__version__}."),
    )
