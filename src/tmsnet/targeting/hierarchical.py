"""The ``hierarchical`` targeting method (SNT-style clustering).

Cole et al. 2020 (Am J Psychiatry 177:716) and 2022 (Am J Psychiatry 179:132)
chose the SAINT/SNT target by clustering DLPFC and sgACC voxels on their own
time series before correlating them, rather than correlating single voxels
with a seed. tmsnet follows the description of REFERENCES.md section 1,
method 4 (as re-implemented by contarg's ``hierarchical.py``):

1. within each region (DLPFC search region, sgACC seed) compute the
   voxel-by-voxel Spearman correlation ``rho`` of the cleaned time series;
2. cluster the voxels by agglomerative clustering with average linkage on the
   distance ``1 - |rho|``, cut at distance 0.5;
3. per cluster: the median time series, the size (voxels) and a concentration
   score, ``size / mean inter-voxel distance`` (mm);
4. net correlation of each DLPFC cluster = ``sum_s rho(median_d, median_s) *
   size_s`` over the sgACC clusters ``s``;
5. keep DLPFC clusters with more than 50 voxels and net correlation < 0; rank
   them by size (largest first), concentration (highest first) and net
   correlation (most negative first), multiply the three ranks, and take the
   lowest product (ties: the more negative net correlation);
6. target = the centre of mass of that cluster.

Memory: the condensed distance matrix of ``n`` DLPFC voxels holds
``n (n - 1) / 2`` float64 values (about 100 MB for the 5,000-voxel 2 mm
default search region) plus one ``n x n`` float32 correlation matrix at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError
from tmsnet.targeting.methods import TargetingContext, register_method, target_on_cluster
from tmsnet.targeting.results import Target
from tmsnet.utils.params import Parameters, param

#: Largest region (voxels) the method accepts; beyond it the distance matrix
#: would exceed ~1.3 GB. A 2 mm DLPFC search region holds about 5,000 voxels.
MAX_REGION_VOXELS = 18000


def spearman_matrix(data: np.ndarray) -> np.ndarray:
    """Spearman correlation between the columns of ``data`` (n_frames, n) as float32.

    Ranks every column (average ranks for ties), standardizes the ranks and
    takes their Pearson correlation; equal to :func:`scipy.stats.spearmanr`.
    Constant columns get correlation 0 with everything.
    """
    from scipy.stats import rankdata

    ranks = rankdata(data, axis=0).astype(np.float64)
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    norm[norm == 0] = np.inf
    z = (ranks / norm).astype(np.float32)
    rho = z.T @ z
    np.clip(rho, -1.0, 1.0, out=rho)
    return rho


def cluster_region(data: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Average-linkage clusters of the columns of ``data`` on ``1 - |rho|``.

    Parameters
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Time series of one region.
    threshold : float
        Cophenetic distance at which the dendrogram is cut (default 0.5, i.e.
        clusters whose members have an average ``|rho|`` above 0.5).

    Returns
    -------
    ndarray of int, shape (n_voxels,)
        Cluster labels starting at 1.
    """
    n = data.shape[1]
    if n == 1:
        return np.ones(1, dtype=int)
    rho = spearman_matrix(data)
    distance = 1.0 - np.abs(rho)
    del rho
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    del distance
    tree = linkage(condensed, method="average")
    return fcluster(tree, t=threshold, criterion="distance")


def _cluster_summaries(data: np.ndarray, labels: np.ndarray, xyz: np.ndarray) -> dict[str, np.ndarray]:
    ids = np.unique(labels)
    medians = np.empty((data.shape[0], ids.size))
    sizes = np.empty(ids.size, dtype=int)
    concentration = np.empty(ids.size)
    centroids = np.empty((ids.size, 3))
    for k, label in enumerate(ids):
        members = labels == label
        sizes[k] = int(members.sum())
        medians[:, k] = np.median(data[:, members], axis=1)
        centroids[k] = xyz[members].mean(axis=0)
        mean_distance = pdist(xyz[members]).mean() if sizes[k] > 1 else np.inf
        concentration[k] = sizes[k] / mean_distance if sizes[k] > 1 else 0.0
    return {"ids": ids, "medians": medians, "sizes": sizes, "concentration": concentration,
            "centroids": centroids}


def _ranks(values: np.ndarray, *, descending: bool) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(-values if descending else values, method="min")


def _rank_clusters(d: dict[str, np.ndarray], net: np.ndarray,
                   min_cluster_voxels: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Steps 5: the eligible DLPFC clusters, their rank products and the chosen one."""
    eligible = (d["sizes"] >= min_cluster_voxels) & (net < 0)
    if not eligible.any():
        raise EmptyRegionError(
            f"No DLPFC cluster has at least {min_cluster_voxels} voxels and a negative net "
            f"correlation with the sgACC clusters ({d['ids'].size} DLPFC clusters, largest "
            f"{int(d['sizes'].max())} voxels). The scan may be too short or noisy for this method; "
            "try the cluster or seedmap method."
        )
    cand = np.flatnonzero(eligible)
    rank_size = _ranks(d["sizes"][cand].astype(float), descending=True)
    rank_conc = _ranks(d["concentration"][cand], descending=True)
    rank_net = _ranks(net[cand], descending=False)
    product = rank_size * rank_conc * rank_net
    order = np.lexsort((net[cand], product))
    return int(cand[order[0]]), cand, product


@dataclass(frozen=True)
class HierarchicalOptions(Parameters):
    """Options of the ``hierarchical`` method."""

    hierarchical_threshold: float = param(
        0.5, low=0, high=1, low_inclusive=False, high_inclusive=False,
        help="hierarchical method: dendrogram cut on 1-|rho|")
    hierarchical_min_voxels: int = param(
        51, low=1, high=MAX_REGION_VOXELS, units="voxels",
        help="hierarchical method: smallest DLPFC cluster kept")


@register_method("hierarchical", options=(HierarchicalOptions,), rank=30,
                 description="SNT-style hierarchical clustering of DLPFC and sgACC voxels "
                             "(Cole 2020)")
def hierarchical_target(
    context: TargetingContext,
    options: HierarchicalOptions | None = None,
) -> Target:
    """SNT-style target from hierarchical clustering of DLPFC and sgACC voxels.

    See the module docstring for the algorithm (Cole et al. 2020, 2022;
    REFERENCES.md section 1, method 4).

    Parameters
    ----------
    context : TargetingContext
        Cleaned data; the DLPFC region is ``search_voxels``, the sgACC region
        ``seed_voxels``.
    options : HierarchicalOptions, optional
        ``hierarchical_threshold``: dendrogram cut on ``1 - |rho|`` (default
        0.5); ``hierarchical_min_voxels``: smallest DLPFC cluster kept
        (default 51, i.e. "more than 50 voxels").

    Returns
    -------
    Target
        ``coordinate_mm`` is the chosen cluster's centre of mass;
        ``connectivity_r`` is the classic seed map (for display);
        ``details`` holds the cluster table.

    Raises
    ------
    EmptyRegionError
        If no DLPFC cluster is large enough and net anticorrelated.
    InvalidParameterError
        If a region exceeds :data:`MAX_REGION_VOXELS`.
    """
    options = HierarchicalOptions() if options is None else options
    distance_threshold = options.hierarchical_threshold
    min_cluster_voxels = options.hierarchical_min_voxels
    dlpfc = np.flatnonzero(context.search_voxels)
    sgacc = np.flatnonzero(context.seed_voxels)
    for name, index in (("DLPFC search region", dlpfc), ("sgACC seed", sgacc)):
        if index.size == 0:
            raise EmptyRegionError(f"The {name} holds no voxel.")
        if index.size > MAX_REGION_VOXELS:
            raise InvalidParameterError(
                f"The {name} has {index.size} voxels; the hierarchical method accepts at most "
                f"{MAX_REGION_VOXELS} (the distance matrix grows with the square). Use a smaller "
                "region or a coarser grid."
            )
    d_data = np.asarray(context.data[:, dlpfc], dtype=np.float64)
    s_data = np.asarray(context.data[:, sgacc], dtype=np.float64)
    d_xyz = context.voxel_mm(dlpfc)
    s_xyz = context.voxel_mm(sgacc)
    d_labels = cluster_region(d_data, threshold=distance_threshold)
    s_labels = cluster_region(s_data, threshold=distance_threshold)
    d = _cluster_summaries(d_data, d_labels, d_xyz)
    s = _cluster_summaries(s_data, s_labels, s_xyz)

    rho = spearman_matrix(np.hstack([d["medians"], s["medians"]]))
    n_d = d["ids"].size
    cross = rho[:n_d, n_d:].astype(np.float64)
    net = cross @ s["sizes"].astype(np.float64)

    best, cand, product = _rank_clusters(d, net, min_cluster_voxels)

    members = dlpfc[d_labels == d["ids"][best]]
    centroid = d["centroids"][best]
    xyz = context.voxel_mm(members)
    r = context.seed_connectivity()
    table = [
        {"size_voxels": int(d["sizes"][k]), "concentration": round(float(d["concentration"][k]), 4),
         "net_correlation": round(float(net[k]), 4),
         "centroid_mm": [round(float(v), 2) for v in d["centroids"][k]],
         "rank_product": int(product[list(cand).index(k)]) if k in cand else None}
        for k in np.argsort(-d["sizes"])[:10]
    ]
    return target_on_cluster(
        context, r, method="hierarchical", members=members, xyz=xyz, centroid=centroid,
        details={
            "cluster_size_voxels": int(d["sizes"][best]),
            "cluster_concentration": float(d["concentration"][best]),
            "cluster_net_correlation": float(net[best]),
            "n_dlpfc_clusters": int(n_d),
            "n_sgacc_clusters": int(s["ids"].size),
            "n_eligible_clusters": int(cand.size),
            "n_dlpfc_voxels": int(dlpfc.size),
            "n_sgacc_voxels": int(sgacc.size),
            "largest_dlpfc_clusters": table,
        },
        parameters={"distance_threshold": float(distance_threshold),
                    "min_cluster_voxels": int(min_cluster_voxels),
                    "linkage": "average", "correlation": "spearman"},
    )
