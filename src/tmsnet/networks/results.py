"""Result types of the network jobs (a leaf module: data and their summaries, no computation).

* :class:`Connectome` -- one connectivity matrix and how it was made;
* :class:`ConnectomeSummary` / :class:`ConnectomeResults` -- ``tmsnet connectome``;
* :class:`ComparisonResult` -- ``tmsnet compare``;
* :class:`PropagationResult` -- ``tmsnet propagate``.

Each job result has an ``outputs`` mapping (role -> written path), filled by
the writers of :mod:`tmsnet.networks.outputs`, and a :meth:`summary` giving
the JSON summary that ``--json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.networks.atlases import Atlas
    from tmsnet.networks.nbs import NBSResult
    from tmsnet.networks.stats import Design

__all__ = [
    "ComparisonResult",
    "Connectome",
    "ConnectomeResults",
    "ConnectomeSummary",
    "PropagationResult",
]


@dataclass
class Connectome:
    """One subject's connectivity matrix and how it was made.

    Attributes
    ----------
    matrix : ndarray, shape (n_regions, n_regions)
        Symmetric connectivity (r for correlation kinds, tangent values).
    kind : str
        One of :data:`tmsnet.networks.connectomes.CONNECTIVITY_KINDS`.
    labels : list of str
        Region names.
    networks : ndarray of str
        Network of each region.
    parameters : dict
        Cleaning and connectivity parameters (for the sidecar).
    space : str or None
        Space of the atlas / data.
    inputs : dict
        Input files by role (for the sidecar hashes).
    """

    matrix: np.ndarray
    kind: str
    labels: list[str]
    networks: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)
    space: str | None = None
    inputs: dict[str, Path | None] = field(default_factory=dict)


@dataclass
class ConnectomeSummary:
    """One connectome of ``tmsnet connectome`` with its network summaries.

    Attributes
    ----------
    connectome : Connectome
        The matrix and its provenance.
    entities : dict of str to str
        BIDS entities of the input (``sub``, ``ses``, ``task``, ``run``).
    name : str
        The input's BIDS prefix (``sub-01_task-rest``).
    blocks : pandas.DataFrame
        Mean connectivity per network block (:func:`~tmsnet.networks.summaries.network_blocks`).
    within_between : pandas.DataFrame
        Within vs between means per network.
    nodes : pandas.DataFrame
        Node graph measures (strength, participation).
    graph : dict
        Whole-graph measures (modularity of the atlas and Louvain partitions).
    profile : pandas.DataFrame
        The target region's connectivity to each network (and the sgACC).
    random_seed : int
        Seed of the Louvain partition.
    outputs : dict of str to Path
        Written files by role (filled by the writer).
    """

    connectome: Connectome
    entities: dict[str, str]
    name: str
    blocks: pd.DataFrame
    within_between: pd.DataFrame
    nodes: pd.DataFrame
    graph: dict[str, Any]
    profile: pd.DataFrame
    random_seed: int
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The connectivity measure."""
        return self.connectome.kind


@dataclass
class ConnectomeResults:
    """Everything ``tmsnet connectome`` computed.

    Attributes
    ----------
    atlas : Atlas
        The parcellation.
    kinds : list of str
        Connectivity measures, in the order computed.
    connectomes : list of ConnectomeSummary
        One per measure and input (measure-major).
    target_region : int
        Atlas index of the region at the target coordinate.
    sgacc_region : int or None
        Atlas index of the sgACC region (None when the atlas has none nearby).
    inputs : list of Path
        The BOLD runs or ROI tables.
    cleaning : BoldCleaningParameters
        The cleaning of the inputs.
    space : str or None
        Space of the data.
    outputs : dict of str to Path
        Job-level files (the report).
    """

    atlas: Atlas
    kinds: list[str]
    connectomes: list[ConnectomeSummary]
    target_region: int
    sgacc_region: int | None
    inputs: list[Path]
    cleaning: BoldCleaningParameters
    space: str | None
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def target_name(self) -> str:
        """Name of the target region."""
        return self.atlas.labels[self.target_region]

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``tmsnet connectome --json``."""
        out: dict[str, Any] = {
            "atlas": self.atlas.name,
            "n_regions": self.atlas.n_regions,
            "kinds": self.kinds,
            "connectomes": [
                {
                    "subject": c.name,
                    "kind": c.kind,
                    "outputs": {k: str(v) for k, v in c.outputs.items()},
                    "within_between": c.within_between.set_index("network")[["within", "between"]].to_dict(
                        "index"),
                    "graph": c.graph,
                    "target_region": self.target_name,
                    "target_profile": c.profile.set_index("to")["mean"].to_dict(),
                }
                for c in self.connectomes
            ],
        }
        if "report" in self.outputs:
            out["report"] = str(self.outputs["report"])
        return out


@dataclass
class ComparisonResult:
    """Everything ``tmsnet compare`` computed.

    Attributes
    ----------
    design : Design
        The GLM design (two-sample or paired, covariates).
    nbs : NBSResult
        Network-Based Statistic.
    labels : list of str
        Region names.
    networks : ndarray of str
        Network of each region.
    edges : pandas.DataFrame
        Edge-wise GLM (FDR over edges).
    blocks : pandas.DataFrame
        Network-block GLM (FDR over blocks).
    components : pandas.DataFrame
        One row per NBS component.
    component_edges : pandas.DataFrame
        The edges of each NBS component.
    n_subjects : int
        Rows of the design.
    parameters : dict
        Every statistical choice (for the sidecars).
    inputs : dict of str to Path
        ``participants`` and each connectome file.
    alpha : float
        Significance level of the summary.
    paired : bool
        Pre/post design.
    outputs : dict of str to Path
        Written files by role.
    """

    design: Design
    nbs: NBSResult
    labels: list[str]
    networks: np.ndarray
    edges: pd.DataFrame
    blocks: pd.DataFrame
    components: pd.DataFrame
    component_edges: pd.DataFrame
    n_subjects: int
    parameters: dict[str, Any]
    inputs: dict[str, Path]
    alpha: float
    paired: bool
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def n_significant_components(self) -> int:
        """NBS components with FWER p <= alpha."""
        return len(self.nbs.significant(self.alpha))

    @property
    def n_edges_fdr(self) -> int:
        """Edges with FDR p < alpha."""
        return int((self.edges["p_fdr"] < self.alpha).sum())

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``tmsnet compare --json``."""
        cols = ["network_a", "network_b", "effect", "ci_low", "ci_high", "p_fdr", "d"]
        return {
            "design": self.design.as_dict(),
            "n_subjects": self.n_subjects,
            "n_regions": len(self.labels),
            "components": [
                {
                    "sign": "positive" if c.sign > 0 else "negative",
                    "n_edges": c.n_edges,
                    "n_nodes": len(c.nodes),
                    "p_fwer": c.p_fwer,
                }
                for c in self.nbs.components[:10]
            ],
            "n_significant_components": self.n_significant_components,
            "n_edges_fdr": self.n_edges_fdr,
            "significant_blocks": self.blocks[self.blocks["p_fdr"] < self.alpha][cols].to_dict("records"),
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }


@dataclass
class PropagationResult:
    """Everything ``tmsnet propagate`` computed.

    Attributes
    ----------
    labels : list of str
        Region names (indices as text when the atlas does not match).
    networks : ndarray of str or None
        Network of each region (None without a matching atlas).
    stimulated : int
        Index of the stimulated region.
    regions : pandas.DataFrame
        Ranked regions (:func:`~tmsnet.networks.propagation.rank_response`).
    network_table : pandas.DataFrame
        Ranked networks.
    times_ms : ndarray
        Impulse-response time axis (ms).
    impulse : ndarray, shape (n_times, n_regions)
        Impulse response.
    parameters : dict
        Model and run parameters (for the sidecars).
    inputs : dict of str to Path or None
        ``connectome`` and ``lengths``.
    space : str or None
        Space of the atlas.
    top : int
        Regions listed in the summary.
    outputs : dict of str to Path
        Written files by role.
    """

    labels: list[str]
    networks: np.ndarray | None
    stimulated: int
    regions: pd.DataFrame
    network_table: pd.DataFrame
    times_ms: np.ndarray
    impulse: np.ndarray
    parameters: dict[str, Any]
    inputs: dict[str, Path | None]
    space: str | None
    top: int
    outputs: dict[str, Path] = field(default_factory=dict)

    @property
    def stimulated_name(self) -> str:
        """Name of the stimulated region."""
        return self.labels[self.stimulated]

    @property
    def top_regions(self) -> pd.DataFrame:
        """The ``top`` most affected regions (the stimulated one left out)."""
        return self.regions.iloc[1 : self.top + 1]

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``tmsnet propagate --json``."""
        return {
            "stimulated_region": self.stimulated_name,
            "stimulated_network": None if self.networks is None else self.networks[self.stimulated],
            "top_regions": self.top_regions[
                ["name", "network", "steady_state_relative", "arrival_ms"]
            ].to_dict("records"),
            "networks": self.network_table.to_dict("records"),
            "parameters": self.parameters,
            "outputs": {k: str(v) for k, v in self.outputs.items()},
        }
