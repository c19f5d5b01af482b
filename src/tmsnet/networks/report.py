"""HTML report sections of the network analyses (built with :mod:`tmsnet.report.html`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.report.html import (
    ReportSection,
    details_json,
    figure_html,
    figure_to_base64_png,
    key_value_table,
    render_report,
    table_html,
)

__all__ = [
    "compare_sections",
    "connectome_sections",
    "propagation_sections",
    "write_report",
]


def connectome_sections(
    subject: str,
    connectome: Any,
    blocks: pd.DataFrame,
    within: pd.DataFrame,
    graph: dict[str, Any],
    profile: pd.DataFrame | None,
    anchor: str,
) -> list[ReportSection]:
    """Sections for one connectome: matrix figure, network blocks, graph summary, target profile."""
    from tmsnet.networks.connectomes import plot_connectome_matrix

    fig = plot_connectome_matrix(
        connectome.matrix, connectome.networks, title=f"{subject} ({connectome.kind})"
    )
    body = [
        figure_html(
            figure_to_base64_png(fig),
            alt=f"{connectome.kind} matrix of {subject} ordered by network",
            caption="Regions ordered by network; lines mark network boundaries.",
        ),
        table_html(within, caption="Within- vs between-network mean connectivity", float_format="{:.3f}"),
        table_html(blocks, caption="Mean connectivity per network block", float_format="{:.3f}", index=True),
        key_value_table(graph, caption="Graph measures (positive weights)"),
    ]
    if profile is not None:
        body.append(
            table_html(
                profile, caption="Connectivity of the target region to each network", float_format="{:.3f}"
            )
        )
    body.append(details_json(connectome.parameters, summary="Cleaning and connectivity parameters"))
    return [ReportSection(title=f"Connectome {subject}", html="".join(body), anchor=anchor)]


def compare_sections(
    design: dict[str, Any],
    nbs_table: pd.DataFrame,
    edges: pd.DataFrame,
    blocks: pd.DataFrame,
    null_max: np.ndarray,
    parameters: dict[str, Any],
) -> list[ReportSection]:
    """Sections of a group comparison: design, NBS components, network blocks, top edges."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.0))
    ax = fig.add_subplot(111)
    ax.hist(null_max, bins=30, color="0.6")
    for size in nbs_table["n_edges"].head(3):
        ax.axvline(size, color="C3")
    ax.set_xlabel("largest component (edges) under permutation")
    ax.set_ylabel("permutations")
    nbs_html = [
        table_html(nbs_table, caption="NBS components (FWER-corrected p)", float_format="{:.4f}"),
        figure_html(
            figure_to_base64_png(fig),
            alt="null distribution of the largest component size",
            caption="Null distribution of the largest component; red: observed components.",
        ),
    ]
    top = edges.sort_values("p").head(20)
    return [
        ReportSection(
            title="Design",
            html=key_value_table({k: v for k, v in design.items() if k != "subjects"})
            + details_json(parameters, summary="All parameters"),
            anchor="compare-design",
        ),
        ReportSection(title="Network-Based Statistic", html="".join(nbs_html), anchor="compare-nbs"),
        ReportSection(
            title="Network blocks",
            html=table_html(
                blocks, caption="Mean connectivity per block: effect, 95% CI, FDR", float_format="{:.3g}"
            ),
            anchor="compare-blocks",
        ),
        ReportSection(
            title="Strongest edges",
            html=table_html(
                top, caption="20 edges with the smallest p (FDR over all edges)", float_format="{:.3g}"
            ),
            anchor="compare-edges",
        ),
    ]


def propagation_sections(
    regions: pd.DataFrame,
    networks: pd.DataFrame,
    times: np.ndarray,
    impulse: np.ndarray,
    stimulated: int,
    parameters: dict[str, Any],
    top: int,
) -> list[ReportSection]:
    """Sections of a propagation run: ranked regions and networks, impulse-response figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot(111)
    ax.plot(times, impulse[:, stimulated], color="k", lw=1.5, label=str(regions.iloc[0]["name"]))
    for _, row in regions.iloc[1:6].iterrows():
        ax.plot(times, impulse[:, int(row["region"])], lw=1, label=str(row["name"]))
    ax.set_xlabel("time after the pulse (ms)")
    ax.set_ylabel("activity (a.u.)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend(fontsize=7)
    cols = ["rank", "name", "network", "steady_state_relative", "peak", "peak_latency_ms", "arrival_ms"]
    return [
        ReportSection(
            title="Most affected regions",
            html=table_html(
                regions[cols].head(top + 1),
                caption="Steady-state response relative to the stimulated region",
                float_format="{:.4g}",
            ),
            anchor="propagation-regions",
        ),
        ReportSection(
            title="Most affected networks",
            html=table_html(
                networks, caption="Mean relative steady-state response per network", float_format="{:.4g}"
            ),
            anchor="propagation-networks",
        ),
        ReportSection(
            title="Impulse response",
            html=figure_html(
                figure_to_base64_png(fig),
                alt="impulse response of the stimulated and most affected regions",
                caption="Response to a single pulse with conduction delays.",
            )
            + details_json(parameters, summary="Model parameters"),
            anchor="propagation-impulse",
        ),
    ]


def write_report(
    path: Path,
    *,
    title: str,
    summary: dict[str, Any],
    sections: list[ReportSection],
    parameters: dict[str, Any],
    inputs: dict[str, Any],
    space: str | None,
) -> Path:
    """Render and atomically write a report with its provenance sidecar."""
    from tmsnet.io.atomic import atomic_write_json, atomic_write_text
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for

    html = render_report(
        title=title,
        summary_html=key_value_table(summary),
        sections=sections,
        footer_html="Generated by tmsnet. Connectivity facts, not predictions of treatment response.",
    )
    atomic_write_text(path, html)
    atomic_write_json(
        sidecar_path_for(path),
        make_sidecar(description=title, parameters=parameters, inputs=inputs, space=space),
    )
    return path
