"""Report section of the connectomes (``tmsnet connectome``).

Reads every ``*_relmat.tsv`` of the subject (region x region matrix, region
names in the header) with its JSON sidecar (``Networks``, ``Measure``,
``Parameters`` with the cleaning), the matrix figure the job drew
(``*_relmat.png``, regions ordered by network) and, when present, the job's
``*_desc-withinbetween_stats.tsv``, ``*_desc-graph_stats.tsv`` and
``*_desc-targetprofile_stats.tsv``. This one provider draws both the
stand-alone ``tmsnet_connectome_report.html`` (via
:func:`tmsnet.report.write_job_report`) and the connectome part of the
per-subject report.
Network block means and the within / between means are recomputed from the
matrix with :func:`tmsnet.networks.summaries.network_blocks` and
:func:`tmsnet.networks.summaries.mean_within_between`.

Summary card: per connectome, the mean over all within-network region pairs
versus all between-network pairs; QC warnings: less usable data than advised
(the targeting threshold, 10 min) and many censored frames.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.report.cohort import SHORT_SCAN_MIN
from tmsnet.report.html import ReportSection, details_json, figure_html, plot_html, table_html
from tmsnet.report.subject import (
    SubjectContext,
    SubjectSections,
    load_json,
    register_section_provider,
    sections_per_file,
)
from tmsnet.utils.docs import fill_doc

__all__ = ["CENSORED_SHARE_WARNING", "connectome_provider"]

#: Share of censored frames above which the connectome is flagged (high motion).
CENSORED_SHARE_WARNING = 0.2


def _figure(png: Path, matrix: np.ndarray, networks: np.ndarray, title: str, label: str) -> str:
    alt = f"{title}: connectivity matrix with regions ordered by network"
    caption = "Regions ordered by network; lines mark network boundaries (figure drawn by the job)."
    if png.is_file():
        uri = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")
        return figure_html(uri, alt=alt, caption=caption, width="36rem")
    from tmsnet.networks.connectomes import plot_connectome_matrix

    fig = plot_connectome_matrix(matrix, networks, title=title, label=label)
    return plot_html(fig, alt=alt, caption="Regions ordered by network; lines mark network boundaries.",
                     width="36rem", dpi=80)


def _qc(stem: str, cleaning: dict[str, Any]) -> tuple[str | None, list[str]]:
    warnings = []
    kept, t_r = cleaning.get("n_frames_kept"), cleaning.get("t_r_s")
    minutes = cleaning.get("kept_duration_min")
    if minutes is None and kept is not None and t_r:
        minutes = float(kept) * float(t_r) / 60.0
    text = None
    if minutes is not None:
        text = f"{float(minutes):.1f} min of data ({kept} frames)"
        if float(minutes) < SHORT_SCAN_MIN:
            warnings.append(f"Connectome {stem}: scan shorter than advised ({float(minutes):.1f} min of "
                            f"usable data < {SHORT_SCAN_MIN:g} min); network estimates are noisier.")
    censored, total = cleaning.get("n_censored_frames"), cleaning.get("n_frames_total")
    if censored and total:
        share = float(censored) / max(float(total) - float(cleaning.get("discarded_frames") or 0), 1.0)
        if share > CENSORED_SHARE_WARNING:
            warnings.append(f"Connectome {stem}: high motion ({100 * share:.0f} % of frames censored).")
    return text, warnings


def _connectome(out: SubjectSections, index: int, path: Path) -> None:
    """The section and summary rows of one connectome (its ``*_relmat.tsv``)."""
    from tmsnet.networks.atlases import SCHAEFER_NETWORKS
    from tmsnet.networks.connectomes import read_connectome
    from tmsnet.networks.summaries import mean_within_between, network_blocks, within_between

    esc = html.escape
    stem = path.name[: -len("_relmat.tsv")]
    matrix, _ = read_connectome(path)
    sidecar_path = path.with_suffix(".json")
    side = load_json(sidecar_path) if sidecar_path.is_file() else {}
    kind = str(side.get("Measure") or (side.get("Parameters") or {}).get("kind") or "connectivity")
    label = "tangent" if kind == "tangent" else "r"
    params = side.get("Parameters") or {}
    networks = side.get("Networks")
    body = []
    facts = [f"{matrix.shape[0]} regions"]
    if params.get("atlas"):
        facts[0] += f" ({params['atlas']})"
    if networks is not None and len(networks) == matrix.shape[0]:
        nets = np.asarray(networks).astype(str)
        seen = list(dict.fromkeys(nets.tolist()))
        order = tuple(n for n in SCHAEFER_NETWORKS if n in seen) + tuple(n for n in seen
                                                                        if n not in SCHAEFER_NETWORKS)
        body.append(_figure(path.with_name(f"{stem}_relmat.png"), matrix, nets, stem, label))
        within, between = mean_within_between(matrix, nets)
        facts.append(f"within-network mean {label} {within:.2f} vs between {between:.2f}")
        wb_path = path.with_name(f"{stem}_desc-withinbetween_stats.tsv")
        table = (pd.read_csv(wb_path, sep="\t", na_values=["n/a"]) if wb_path.is_file()
                 else within_between(matrix, nets, order=order))
        body.append(table_html(table, caption="Within- vs between-network mean connectivity per network",
                               float_format="{:.3f}"))
        body.append(table_html(network_blocks(matrix, nets, order=order),
                               caption="Mean connectivity per network block", float_format="{:.3f}",
                               index=True))
    else:
        body.append(_figure(path.with_name(f"{stem}_relmat.png"), matrix,
                            np.array(["all"] * matrix.shape[0]), stem, label))
        body.append('<p class="note">The sidecar names no network per region: no network summary.</p>')
    graph_path = path.with_name(f"{stem}_desc-graph_stats.tsv")
    if graph_path.is_file():
        body.append(table_html(pd.read_csv(graph_path, sep="\t", na_values=["n/a"]),
                               caption="Graph measures per region (positive weights)",
                               float_format="{:.3f}"))
    profile_path = path.with_name(f"{stem}_desc-targetprofile_stats.tsv")
    if profile_path.is_file():
        profile = pd.read_csv(profile_path, sep="\t", na_values=["n/a"])
        psidecar = profile_path.with_suffix(".json")
        note = load_json(psidecar).get("Description", "") if psidecar.is_file() else ""
        body.append(table_html(profile, caption="Connectivity of the target region to each network"
                               + (f" ({note.split('; ')[-1]})" if "target region" in note else ""),
                               float_format="{:.3f}"))
    cleaning = params.get("cleaning") or {}
    duration, warnings = _qc(stem, cleaning)
    if duration:
        facts.append(duration)
    out.warnings += warnings
    out.summary.append((f"Connectome {kind} ({stem.split('_atlas-')[0]})", "; ".join(facts)))
    if params:
        body.append(details_json(params, summary="Cleaning and connectivity parameters"))
    body.insert(0, f"<p>{esc('; '.join(facts))}.</p>")
    out.sections.append(ReportSection(f"Connectome: {stem}", "".join(body), f"connectome-{index + 1}"))


@fill_doc
def connectome_provider(context: SubjectContext) -> SubjectSections | None:
    """Sections of the subject's connectomes (``*_relmat.tsv``).

    %(section_provider)s
    """
    return sections_per_file(context.find("*_relmat.tsv"), _connectome)


register_section_provider("connectome", connectome_provider, order=30)
