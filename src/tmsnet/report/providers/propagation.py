"""Report sections of the spread model (``tmsnet propagate``), drawn from its outputs.

Reads ``<prefix>_desc-<region>_propagation.tsv`` (regions ranked by their
steady-state response), ``<prefix>_desc-<region>_networks.tsv`` (mean response
per network) with their JSON sidecars (model ``Parameters``), and when present
``<prefix>_desc-<region>_impulse.tsv`` (column ``time_ms`` and one column per
region shown: the response to one pulse) for the impulse-response figure.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tmsnet.report.html import ReportSection, details_json, plot_html, table_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    load_json,
    register_section_provider,
    sections_per_file,
)
from tmsnet.utils.docs import fill_doc

__all__ = ["TOP_REGIONS", "propagation_provider"]

#: Regions listed after the stimulated one (the CLI's ``--top`` default).
TOP_REGIONS = 10

_COLUMNS = ["rank", "name", "network", "steady_state_relative", "peak", "peak_latency_ms", "arrival_ms"]


def _impulse_figure(impulse: pd.DataFrame) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 3.2))
    ax = fig.add_subplot(111)
    names = [c for c in impulse.columns if c != "time_ms"]
    for k, name in enumerate(names):
        ax.plot(impulse["time_ms"], impulse[name], lw=1.5 if k == 0 else 1, label=str(name),
                **({"color": "k"} if k == 0 else {}))
    ax.set_xlabel("time after the pulse (ms)")
    ax.set_ylabel("activity (a.u.)")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.legend(fontsize=7)
    return plot_html(fig, alt="impulse response of the stimulated and most affected "
                       "regions", caption="Response to a single pulse with conduction delays.")


def _one(out: SubjectSections, index: int, path: Path) -> None:
    stem = path.name[: -len("_propagation.tsv")]
    regions = pd.read_csv(path, sep="\t", na_values=["n/a"])
    nets_path = path.with_name(f"{stem}_networks.tsv")
    nets = pd.read_csv(nets_path, sep="\t", na_values=["n/a"]) if nets_path.is_file() else None
    side = load_json(path.with_suffix(".json")) if path.with_suffix(".json").is_file() else {}
    params = side.get("Parameters") or {}
    stimulated = params.get("stimulated_region", regions.iloc[0]["name"] if len(regions) else stem)
    out.summary.append((f"Stimulated region ({stem})", str(stimulated)))
    if nets is not None and len(nets):
        out.summary.append(("Most affected network", str(nets.iloc[0]["network"])))
    anchor = f"propagation-{index}"
    cols = [c for c in _COLUMNS if c in regions.columns]
    out.sections.append(ReportSection(f"Most affected regions ({stem})", table_html(
        regions[cols].head(TOP_REGIONS + 1),
        caption="Steady-state response relative to the stimulated region",
        float_format="{:.4g}"), f"{anchor}-regions"))
    if nets is not None:
        out.sections.append(ReportSection("Most affected networks", table_html(
            nets, caption="Mean relative steady-state response per network", float_format="{:.4g}"),
            f"{anchor}-networks"))
    impulse_path = path.with_name(f"{stem}_impulse.tsv")
    body = ""
    if impulse_path.is_file():
        body += _impulse_figure(pd.read_csv(impulse_path, sep="\t", na_values=["n/a"]))
    body += details_json(params, summary="Model parameters")
    out.sections.append(ReportSection("Impulse response" if impulse_path.is_file() else "Model parameters",
                                      body, f"{anchor}-impulse"))


@fill_doc
def propagation_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the propagation runs (``*_propagation.tsv``) found in the folder.

    The context is the job's output folder (``subject`` None, ``select`` the run's stem).

    %(section_provider)s
    """
    return sections_per_file(context.find("*_propagation.tsv"), _one, start=1)


register_section_provider("propagation", propagation_provider, order=60)
