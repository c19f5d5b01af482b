"""Writing the results of the network jobs: tables with JSON sidecars (no report here).

* :func:`write_connectome_results` -- each connectome (TSV, NPY, PNG) and its
  within/between, graph and target-profile tables under
  ``OUT/sub-<label>[/ses-<label>]/func``;
* :func:`write_comparison` -- ``OUT/group_desc-<groups|prepost><table>_stats.tsv``
  (``nbs``, ``edges``, ``blocks``, ``nbsedges`` and ``nbsnull``: the largest
  component of every permutation, for the report's null-distribution figure);
* :func:`write_propagation` -- ``OUT/<prefix>_desc-<region>_{propagation,networks,impulse}.tsv``
  (``impulse``: the response to one pulse of the stimulated region and the
  :data:`IMPULSE_REGIONS` most affected ones, for the report's figure).

Each fills the result's ``outputs`` (role -> path) and returns it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tmsnet.io.atomic import atomic_write_json, atomic_write_tsv, ensure_output_dir
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.networks._naming import connectome_folder, connectome_stem, group_stem, propagation_stem
from tmsnet.networks.results import (
    ComparisonResult,
    ConnectomeResults,
    ConnectomeSummary,
    PropagationResult,
)

__all__ = [
    "DEFAULT_PREFIX",
    "IMPULSE_REGIONS",
    "report_path",
    "write_comparison",
    "write_connectome_results",
    "write_propagation",
]

#: File-name prefix of ``tmsnet propagate`` outputs when none is given.
DEFAULT_PREFIX = "sub-01"
#: Most affected regions whose impulse response is written beside the stimulated one's.
IMPULSE_REGIONS = 5


def report_path(
    result: ConnectomeResults | ComparisonResult | PropagationResult,
    out_dir: str | Path,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> Path:
    """Where the HTML report of a network job goes (beside its tables).

    Parameters
    ----------
    result : ConnectomeResults, ComparisonResult or PropagationResult
        The job's result.
    out_dir : path
        The job's output folder.
    prefix : str
        File-name prefix of a propagation run.

    Returns
    -------
    Path
        ``tmsnet_connectome_report.html``, ``group_desc-<groups|prepost>_report.html``
        or ``<prefix>_desc-<region>_report.html`` under ``out_dir``.
    """
    out = Path(out_dir)
    if isinstance(result, ComparisonResult):
        return out / f"{group_stem(result.paired)}_report.html"
    if isinstance(result, PropagationResult):
        return out / f"{propagation_stem(prefix, result.stimulated_name)}_report.html"
    return out / "tmsnet_connectome_report.html"


def _write_summary(item: ConnectomeSummary, results: ConnectomeResults, out_dir: Path) -> dict[str, Path]:
    from tmsnet.networks.connectomes import write_connectome

    conn, atlas = item.connectome, results.atlas
    stem = connectome_stem(item.entities, atlas.name, conn.kind)
    folder = connectome_folder(out_dir, item.entities)
    written = write_connectome(conn, folder, stem=stem)
    written["within_between"] = atomic_write_tsv(folder / f"{stem}_desc-withinbetween_stats.tsv",
                                                 item.within_between)
    written["graph"] = atomic_write_tsv(folder / f"{stem}_desc-graph_stats.tsv", item.nodes)
    written["profile"] = atomic_write_tsv(folder / f"{stem}_desc-targetprofile_stats.tsv", item.profile)
    for role in ("within_between", "graph", "profile"):
        atomic_write_json(
            sidecar_path_for(written[role]),
            make_sidecar(
                description=f"{role.replace('_', ' ')} summary of the {conn.kind} connectome "
                f"(tmsnet.networks.summaries); target region {results.target_name}",
                parameters={**conn.parameters, "louvain_seed": item.random_seed},
                inputs=conn.inputs,
                space=conn.space,
            ),
        )
    return written


def write_connectome_results(results: ConnectomeResults, out_dir: str | Path) -> list[dict[str, Path]]:
    """Write every connectome of an :func:`~tmsnet.networks.connectome_workflow.analyze_connectomes` run.

    Parameters
    ----------
    results : ConnectomeResults
        The computed connectomes; each item's ``outputs`` is filled.
    out_dir : path
        Dataset root (created).

    Returns
    -------
    list of dict
        Per connectome: ``tsv``, ``npy``, ``figure`` (+ ``*_json`` sidecars),
        ``within_between``, ``graph``, ``profile``.
    """
    out = ensure_output_dir(out_dir)
    for item in results.connectomes:
        item.outputs = _write_summary(item, results, out)
    return [item.outputs for item in results.connectomes]


def write_comparison(result: ComparisonResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the tables of :func:`~tmsnet.networks.compare_workflow.compare_connectomes`.

    Parameters
    ----------
    result : ComparisonResult
        The group statistics; its ``outputs`` is filled.
    out_dir : path
        Output folder (created).

    Returns
    -------
    dict of str to Path
        ``nbs``, ``edges``, ``blocks``, ``nbs_edges``, ``nbs_null`` (each with a JSON sidecar).
    """
    out = ensure_output_dir(out_dir)
    stem = group_stem(result.paired)
    written: dict[str, Path] = {}
    for name, table, what in (
        ("nbs", result.components, "NBS components"),
        ("edges", result.edges, "edge-wise GLM"),
        ("blocks", result.blocks, "network-block GLM"),
        ("nbs_edges", result.component_edges, "Edges of each NBS component"),
    ):
        file_name = f"{stem}nbsedges_stats.tsv" if name == "nbs_edges" else f"{stem}{name}_stats.tsv"
        path = atomic_write_tsv(out / file_name, table)
        description = what if name == "nbs_edges" else f"{what}: {result.design.description}"
        atomic_write_json(
            sidecar_path_for(path),
            make_sidecar(description=description, parameters=result.parameters, inputs=result.inputs,
                         space=None),
        )
        written[name] = path
    null = pd.DataFrame({"max_component_edges": result.nbs.null_max})
    written["nbs_null"] = atomic_write_tsv(out / f"{stem}nbsnull_stats.tsv", null)
    atomic_write_json(
        sidecar_path_for(written["nbs_null"]),
        make_sidecar(description="Largest NBS component (edges) of every permutation: the null distribution "
                     "of the FWER p-values", parameters=result.parameters, inputs=result.inputs, space=None,
                     extra={"Alpha": result.alpha}),
    )
    result.outputs.update(written)
    return written


def write_propagation(
    result: PropagationResult, out_dir: str | Path, *, prefix: str = DEFAULT_PREFIX
) -> dict[str, Path]:
    """Write the ranked regions and networks of a propagation prediction.

    Parameters
    ----------
    result : PropagationResult
        The prediction; its ``outputs`` is filled.
    out_dir : path
        Output folder (created).
    prefix : str
        File-name prefix (BIDS entities, e.g. ``sub-01_ses-1``).

    Returns
    -------
    dict of str to Path
        ``regions``, ``networks`` and ``impulse`` (each with a JSON sidecar).
    """
    out = ensure_output_dir(out_dir)
    stem = propagation_stem(prefix, result.stimulated_name)
    shown = [result.stimulated, *result.regions["region"].iloc[1 : IMPULSE_REGIONS + 1].astype(int)]
    impulse = pd.DataFrame({"time_ms": result.times_ms,
                            **{result.labels[k]: result.impulse[:, k] for k in shown}})
    written = {
        "regions": atomic_write_tsv(out / f"{stem}_propagation.tsv", result.regions),
        "networks": atomic_write_tsv(out / f"{stem}_networks.tsv", result.network_table),
        "impulse": atomic_write_tsv(out / f"{stem}_impulse.tsv", impulse),
    }
    for role, path in written.items():
        what = ("Response to one pulse at the stimulated region (column 1) of it and the most affected "
                "regions, by time after the pulse (time_ms)" if role == "impulse" else
                "Predicted spread of a perturbation at the stimulated region")
        atomic_write_json(
            sidecar_path_for(path),
            make_sidecar(
                description=f"{what} (linear delayed network model; tmsnet.networks.propagation)",
                parameters=result.parameters,
                inputs=result.inputs,
                space=result.space,
            ),
        )
    result.outputs.update(written)
    return written
