"""Report sections of the group comparison (``tmsnet compare``), drawn from its outputs.

Reads, in the job's output folder (group-level: outside any ``sub-<label>/``),
``group_desc-<desc>nbs_stats.tsv`` (NBS components), ``...edges_stats.tsv``
(edge-wise GLM), ``...blocks_stats.tsv`` (network-block GLM) with their JSON
sidecars (the design and every parameter, ``Parameters``), and when present
``...nbsnull_stats.tsv`` (largest component of every permutation, column
``max_component_edges``) for the null-distribution figure; ``<desc>`` is
``groups`` (two groups) or ``prepost`` (paired sessions).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from tmsnet.report.html import ReportSection, details_json, key_value_table, plot_html, table_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    load_json,
    register_section_provider,
    sections_per_file,
)
from tmsnet.utils.docs import fill_doc

__all__ = ["DEFAULT_ALPHA", "compare_provider"]

#: Significance level of the summary counts when the outputs do not record one (the CLI default).
DEFAULT_ALPHA = 0.05

_NBS_RE = re.compile(r"^group_desc-(?P<desc>[A-Za-z0-9]+?)nbs_stats\.tsv$")


def _tsv(path) -> pd.DataFrame | None:
    return pd.read_csv(path, sep="\t", na_values=["n/a"]) if path.is_file() else None


def _null_figure(null: pd.Series, sizes: pd.Series) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.0))
    ax = fig.add_subplot(111)
    ax.hist(null.to_numpy(float), bins=30, color="0.6")
    for size in sizes.head(3):
        ax.axvline(size, color="C3")
    ax.set_xlabel("largest component (edges) under permutation")
    ax.set_ylabel("permutations")
    return plot_html(fig, alt="null distribution of the largest component size",
                       caption="Null distribution of the largest component; red: observed components.")


def _comparison(context: SubjectContext, out: SubjectSections, index: int, nbs_path: Path) -> None:
    desc = _NBS_RE.match(nbs_path.name)["desc"]
    folder = nbs_path.parent
    nbs = _tsv(nbs_path)
    edges = _tsv(folder / f"group_desc-{desc}edges_stats.tsv")
    blocks = _tsv(folder / f"group_desc-{desc}blocks_stats.tsv")
    side_path = nbs_path.with_suffix(".json")
    side: dict[str, Any] = load_json(side_path) if side_path.is_file() else {}
    params = side.get("Parameters") or {}
    design = params.get("design") or {}
    null_path = folder / f"group_desc-{desc}nbsnull_stats.tsv"
    null_side = null_path.with_suffix(".json")
    alpha = float((load_json(null_side) if null_side.is_file() else {}).get("Alpha", DEFAULT_ALPHA))
    effect = design.get("effect") or side.get("Description", "").split(": ", 1)[-1]
    n_sig = int((nbs["p_fwer"] <= alpha).sum()) if nbs is not None and len(nbs) else 0
    n_fdr = int((edges["p_fdr"] < alpha).sum()) if edges is not None else 0
    out.summary += [(f"Comparison ({desc})", str(effect)),
                    ("Significant NBS components", f"{n_sig} at FWER p <= {alpha:g}"),
                    ("Edges at FDR", f"{n_fdr} at FDR < {alpha:g}")]
    anchor = f"compare-{index}"
    out.sections.append(ReportSection(
        f"Design ({desc})", key_value_table({k: v for k, v in design.items() if k != "subjects"})
        + details_json(params, summary="All parameters"), f"{anchor}-design"))
    body = table_html(nbs, caption="NBS components (FWER-corrected p)", float_format="{:.4f}") \
        if nbs is not None else ""
    null = _tsv(null_path)
    if null is not None and "max_component_edges" in null.columns and nbs is not None:
        body += _null_figure(null["max_component_edges"], nbs["n_edges"])
    out.sections.append(ReportSection("Network-Based Statistic", body, f"{anchor}-nbs"))
    if blocks is not None:
        out.sections.append(ReportSection("Network blocks", table_html(
            blocks, caption="Mean connectivity per block: effect, 95% CI, FDR", float_format="{:.3g}"),
            f"{anchor}-blocks"))
    if edges is not None:
        out.sections.append(ReportSection("Strongest edges", table_html(
            edges.sort_values("p").head(20), caption="20 edges with the smallest p (FDR over all edges)",
            float_format="{:.3g}"), f"{anchor}-edges"))


@fill_doc
def compare_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the group comparisons found in the folder (``group_desc-*nbs_stats.tsv``).

    %(section_provider)s
    """
    files = [p for p in context.find("group_desc-*nbs_stats.tsv") if _NBS_RE.match(p.name)]
    return sections_per_file(files, partial(_comparison, context), start=1)


register_section_provider("compare", compare_provider, order=50)
