"""The science of ``tmsnet compare``: connectomes on disk -> GLM design -> edges, NBS, network blocks.

:func:`compare_connectomes` reads one connectome per participant (and
session) written by ``tmsnet connectome``, builds the two-sample or paired
design from ``participants.tsv`` and runs the edge-wise GLM (FDR), the
Network-Based Statistic (FWER) and the network-block GLM. It writes nothing:
the writer is :func:`tmsnet.networks.outputs.write_comparison` and the job is
:func:`tmsnet.jobs.compare.run_comparison`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.networks.inputs import find_connectome, networks_for_labels, read_participants
from tmsnet.networks.parameters import ComparisonParameters
from tmsnet.networks.results import ComparisonResult

__all__ = ["compare_connectomes"]


def _read_matrices(
    participants: pd.DataFrame, folder: Path, parameters: ComparisonParameters
) -> tuple[np.ndarray, list[str], dict[str, Path]]:
    """Connectomes as (n_subjects, n_sessions, R, R), their region names and files by subject/session."""
    from tmsnet.networks.connectomes import read_connectome

    mats, labels, files = [], None, {}
    sessions = list(parameters.sessions) if parameters.paired else [None]
    for pid in participants["participant_id"].astype(str):
        per = []
        for ses in sessions:
            path = find_connectome(folder, pid, ses, parameters.kind)
            m, lab = read_connectome(path)
            if labels is None:
                labels = lab
            elif lab != labels:
                raise InvalidParameterError(f"{path.name} has other regions than the first connectome.")
            per.append(m)
            files[f"{pid}{'_ses-' + ses if ses else ''}"] = path
        mats.append(per)
    return np.array(mats), labels, files


def compare_connectomes(
    participants: str | Path,
    connectomes: str | Path,
    *,
    parameters: ComparisonParameters | None = None,
    networks: str | Path | None = None,
) -> ComparisonResult:
    """Patients vs controls (two-sample) or pre vs post (paired) on connectomes.

    Parameters
    ----------
    participants : path
        BIDS ``participants.tsv`` (``participant_id``, the group column, covariates).
    connectomes : path
        Folder holding the ``*_relmat.tsv`` files of ``tmsnet connectome``.
    parameters : ComparisonParameters, optional
        Measure, design (contrast or sessions, covariates), NBS threshold,
        tail, permutations, alpha, seed, workers.
    networks : path, optional
        TSV ``name``/``network`` (default ``connectomes/networks.tsv`` or the
        Schaefer-100 networks).

    Returns
    -------
    ComparisonResult
        ``outputs`` empty (see :func:`tmsnet.networks.outputs.write_comparison`).
    """
    from tmsnet.networks.connectomes import edge_values
    from tmsnet.networks.nbs import network_based_statistic
    from tmsnet.networks.stats import edge_statistics, make_design, network_block_statistics, upper_triangle

    parameters = parameters or ComparisonParameters()
    participants_path, folder = Path(participants), Path(connectomes)
    table = read_participants(participants_path)
    paired, kind = parameters.paired, parameters.kind
    contrast = parameters.sessions if paired else parameters.contrast
    if not paired and contrast is not None and parameters.group_column in table.columns:
        table = table[table[parameters.group_column].astype(str).isin(contrast)]
    table = table.reset_index(drop=True)
    matrices, labels, files = _read_matrices(table, folder, parameters)
    z = edge_values(matrices, kind)  # (n, n_sessions, R, R)
    data = z[:, 1] - z[:, 0] if paired else z[:, 0]
    region_networks = networks_for_labels(labels, folder, None if networks is None else Path(networks))
    design = make_design(table, kind="paired" if paired else "two-sample",
                         group_column=parameters.group_column, contrast=contrast,
                         covariates=list(parameters.covariates))
    edges, index = upper_triangle(data)
    nbs = network_based_statistic(
        edges, design, n_regions=len(labels), threshold=parameters.threshold, tail=parameters.tail,
        n_permutations=parameters.n_permutations, random_seed=parameters.random_seed,
        n_jobs=parameters.n_jobs,
    )
    component_edges = pd.DataFrame(
        [
            {"component": k + 1, "i": i, "j": j, "region_i": labels[i], "region_j": labels[j]}
            for k, c in enumerate(nbs.components)
            for i, j in c.edges
        ],
        columns=["component", "i", "j", "region_i", "region_j"],
    )
    return ComparisonResult(
        design=design,
        nbs=nbs,
        labels=labels,
        networks=region_networks,
        edges=edge_statistics(edges, design, index=index, labels=labels),
        blocks=network_block_statistics(data, region_networks, design),
        components=nbs.components_table(labels),
        component_edges=component_edges,
        n_subjects=int(edges.shape[0]),
        parameters={
            **nbs.parameters,
            "kind": kind,
            "edge_values": "tangent" if kind == "tangent" else "Fisher z",
            "edge_correction": "Benjamini-Hochberg FDR over all edges",
            "block_correction": "Benjamini-Hochberg FDR over network blocks",
        },
        inputs={"participants": participants_path, **files},
        alpha=parameters.alpha,
        paired=paired,
    )
