"""The ``hierarchical`` targeting method (SNT-style clustering).

Cole et al. 2020 (Am J Psychiatry 177:716) and 2022 (Am J Psychiatry 179:132)
chose the SAINT/SNT target by clustering DLPFC and sgACC voxels on their own
time series before correlating them, rather than correlating single voxels
with a seed. tmsnet follows the description of REFERENCES.md section 1,
method 4 (as re-implemented by contarg's ``hierarchical.py``) for the clusters
and their net correlation:

1. within each region (DLPFC search region, sgACC seed) compute the
   voxel-by-voxel Spearman correlation ``rho`` of the cleaned time series;
2. cluster the voxels by agglomerative clustering with average linkage on the
   distance ``1 - |rho|``, cut at distance 0.5;
3. per cluster: the median time series, the size (voxels) and a concentration
   score, ``size / mean inter-voxel distance`` (mm);
4. net correlation of each DLPFC cluster = ``sum_s rho(median_d, median_s) *
   size_s`` over the sgACC clusters ``s``; the same sum for each DLPFC voxel,
   divided by the sgACC voxel count, is the voxel's *net correlation* (the
   size-weighted mean Spearman correlation with the sgACC clusters; contarg
   writes this map as ``net_reference_correlation``);
5. eligible DLPFC clusters: at least ``m`` voxels and net correlation < 0, with
   ``m`` = 51 voxels on a voxel grid ("more than 50 voxels") and 1 % of the
   search region's vertices on a surface (51 voxels are 1 % of the 5,205-voxel
   2 mm search region; 51 vertices of fsaverage5, 3.1 mm apart, would be a
   patch of cortex about 23 mm across). When none is, the size limit is dropped (as contarg
   does) and the details say so.

Choosing the cluster and the point (``hierarchical_selection``):

``"size-core"`` (default)
    Each eligible cluster's *core* is its ``m`` most anticorrelated voxels
    (``m`` as in step 5, the smallest region SNT accepts) and its core score
    the mean net correlation of those voxels. Rank the eligible clusters by
    size (largest first) and by core score (most negative first), multiply the
    two ranks and take the lowest product (ties: the more negative core). The
    target is the centroid of the chosen cluster's ``2 m`` most anticorrelated
    voxels (all of them when the cluster is smaller).
``"rank-product"``
    SNT as published and as contarg's ``hierarchical run`` does it: rank the
    eligible clusters by size (largest first), concentration (highest first)
    and net correlation (most negative first), multiply the three ranks, take
    the lowest product (ties: the more negative net correlation) and target its
    centre of mass.

Why the default differs from the published rule (issue 15 item 7; cases in
``tests/test_hierarchical_accuracy.py`` and ``tests/test_surface_target.py``, figures
from ``benchmarks/bench_hierarchical.py``, docs/validation.md):

* the concentration, size over a mean distance that grows as about size^(1/3),
  ranks the clusters almost as size does (Spearman 0.98, range 0.83-0.99, between
  the two over the ten largest DLPFC clusters of 8 full-simulator scans), so the published
  product weighs size twice and prefers a large, weakly anticorrelated cluster
  (a decoy patch or a noise cluster) to a smaller, more anticorrelated one;
  size is kept once;
* the median time series of a cluster dilutes an anticorrelated patch smaller
  than the cluster, and the centre of such a cluster lies away from the patch:
  the core measures and locates the most anticorrelated part instead.

Measured: full simulator at signal 0.3 with the anticorrelated decoy at 0.8 of
the target's loading (8 subjects, seed 271828), median error 3.1 mm against
17.0 mm for the rank product; generated fsaverage5 subjects (5, seed 3, signal
0.5), 3.4 mm against 15.3 mm (about 22 mm with the earlier 51-vertex size limit
on surfaces). The clustering, the net correlation and the
eligibility are SNT's in both rules. contarg's ``hierarchical run`` also
clusters on the correlation of the voxels' correlation profiles (it passes
``1 - rho`` to a Spearman "metric"); on the same 8 subjects that gave 7.4 mm
with the rank product and 8.8 mm with the core rule, and costs a second
n x n correlation, so it is not used.

Memory: the condensed distance matrix of ``n`` DLPFC voxels holds
``n (n - 1) / 2`` float64 values (about 100 MB for the 5,000-voxel 2 mm
default search region) plus one ``n x n`` float32 correlation matrix at a time.

Time: the method runs once per bootstrap resample (about 200 times a job), so each
step is done once and in one pass. One run on the 5,205-voxel 2 mm region, 300
frames, one BLAS thread: ranking 0.016 s (numpy's sort of the values packed with their
frame numbers and one compiled pass, :mod:`tmsnet.targeting.clustering_kernels`; 0.025 s
with an argsort of the values), the upper triangle of the rank correlation 0.056 s (BLAS
``syrk``), the condensed distances with the pairs within the cut 0.027 s (one pass), the
average linkage 0.10-0.13 s (scipy's 0.21-0.25 s; the same tree bit for bit, see
:func:`~tmsnet.targeting.clustering_kernels.average_linkage`), cluster summaries 0.009 s
(medians only of the clusters that step 5 and the cluster table read, the others only if
step 5 falls back to every cluster; concentrations and centroids only where they are
read; 0.027 s for all of them): about 0.25 s, against 0.55 s with scipy's linkage and 0.70 s
for the plain array code, with the same clusters and targets bit for bit
(``tests/test_hierarchical_kernels.py``). Inside the bootstrap the two 108 MB
temporaries (correlations, distances) are reused from one resample to the next
(:mod:`tmsnet.utils.scratch`), which saves about 35 ms of page faults a run. The
linkage's distance update is the floor: it is quadratic in ``n`` on every resample (a
linkage that skips the ~140 merges above the cut was tried: 0.12-0.13 s, no faster, as
those merges come when few clusters are left).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster
from scipy.spatial.distance import pdist

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError
from tmsnet.targeting.clustering_kernels import average_linkage, linkage_distances, rank_scores
from tmsnet.targeting.methods import TargetingContext, register_method, target_on_cluster
from tmsnet.targeting.results import Target
from tmsnet.utils.params import Parameters, param
from tmsnet.utils.scratch import scratch

#: Largest region (voxels) the method accepts; beyond it the distance matrix
#: would exceed ~1.3 GB. A 2 mm DLPFC search region holds about 5,000 voxels.
MAX_REGION_VOXELS = 18000

#: The ways of choosing the target cluster (see the module docstring).
SELECTIONS = ("size-core", "rank-product")


def spearman_matrix(data: np.ndarray) -> np.ndarray:
    """Spearman correlation between the columns of ``data`` (n_frames, n) as float32.

    Ranks every column (average ranks for ties), standardizes the ranks and
    takes their Pearson correlation; equal to :func:`scipy.stats.spearmanr`.
    Constant columns get correlation 0 with everything.
    """
    z = rank_scores(data)
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
    return _cluster_rank_scores(rank_scores(data), threshold)


def _cluster_rank_scores(z: np.ndarray, threshold: float) -> np.ndarray:
    """:func:`cluster_region` on the rank scores ``z`` of :func:`rank_scores`.

    The same values, with one n x n float32 array and the condensed float64 distances
    that linkage reads (:mod:`tmsnet.targeting.clustering_kernels`).
    """
    n = z.shape[1]
    if n == 1:
        return np.ones(1, dtype=int)
    condensed, near = linkage_distances(
        _upper_gram(z), cut=threshold,
        out=scratch("hierarchical distances", (n * (n - 1) // 2,), np.float64))
    tree = average_linkage(condensed, cut=threshold, overwrite=True, near=near)
    return fcluster(tree, t=threshold, criterion="distance")


def _upper_gram(z: np.ndarray) -> np.ndarray:
    """``z.T @ z`` (float32), of which only the upper triangle is computed and valid.

    BLAS ``ssyrk`` does half the work of the product. It writes the lower triangle
    of a Fortran-ordered array; the transpose is C-ordered with that triangle on top.
    The array is a :func:`tmsnet.utils.scratch.scratch` array: read it before the next call.
    """
    from scipy.linalg.blas import ssyrk

    n = z.shape[1]
    buffer = scratch("hierarchical correlations", (n, n), np.float32, order="F")
    return ssyrk(1.0, np.asarray(z, dtype=np.float32), trans=1, lower=1, c=buffer,
                 overwrite_c=1).T


def _cluster_summaries(data: np.ndarray, labels: np.ndarray, xyz: np.ndarray,
                       min_size: int | None = None) -> dict[str, Any]:
    """Each cluster's members (ascending), size and median time series (float64).

    With ``min_size``, only the clusters that step 5 and the cluster table read get their
    median: those of at least ``min_size`` elements and the ten largest (about a fifth of
    the 140 clusters and 40 % of the voxels of the 2 mm DLPFC region, on every resample);
    the others' stay zero until :func:`_fill_medians` fills them in. ``data`` may be
    float32: each median is taken of its members' columns widened to float64, as of a
    float64 copy of the region. Concentrations and centroids are computed on demand
    (:func:`_concentration`, :func:`_centroid`): only the chosen cluster, the table's ten
    largest and, for the rank product, the candidates need them.
    """
    ids, index = np.unique(labels, return_inverse=True)
    sizes = np.bincount(index, minlength=ids.size)
    members = np.split(np.argsort(index, kind="stable"), np.cumsum(sizes)[:-1])
    d = {"ids": ids, "sizes": sizes, "members": members, "xyz": xyz,
         "data": data, "medians": np.zeros((data.shape[0], ids.size)),
         "has_median": np.zeros(ids.size, dtype=bool)}
    wanted = np.ones(ids.size, dtype=bool)
    if min_size is not None:
        wanted = sizes >= min_size
        wanted[_largest(sizes)] = True
    _fill_medians(d, wanted)
    return d


def _net_correlation(d: dict[str, Any], s_ranks: np.ndarray, s_sizes: np.ndarray) -> np.ndarray:
    """Step 4 for each DLPFC cluster (0 where its median was not taken).

    A cluster's value reads only its own median: the rank scores are column by column and
    each row of the products is that cluster's alone, so the clusters whose medians were
    left out change no other value (``tests/test_hierarchical_kernels.py``).
    """
    return (rank_scores(d["medians"]).T @ s_ranks).astype(np.float64) @ s_sizes


def _fill_medians(d: dict[str, Any], wanted: np.ndarray) -> None:
    for k in np.flatnonzero(wanted & ~d["has_median"]):
        columns = np.asarray(d["data"][:, d["members"][k]], dtype=np.float64)
        d["medians"][:, k] = np.median(columns, axis=1)
    d["has_median"] |= wanted


def _concentration(d: dict[str, Any], k: int) -> float:
    """SNT's concentration of cluster ``k``: size / mean inter-voxel distance (1/mm); 0 alone."""
    size = int(d["sizes"][k])
    return float(size / pdist(d["xyz"][d["members"][k]]).mean()) if size > 1 else 0.0


def _centroid(d: dict[str, Any], k: int) -> np.ndarray:
    return d["xyz"][d["members"][k]].mean(axis=0)


def _largest(sizes: np.ndarray, count: int = 10) -> np.ndarray:
    """The ``count`` largest clusters, largest first (ties: the lower id)."""
    return np.argsort(-sizes, kind="stable")[:count]


def _ranks(values: np.ndarray, *, descending: bool) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(-values if descending else values, method="min")


def _eligible(d: dict[str, Any], s_ranks: np.ndarray, s_sizes: np.ndarray,
              min_size: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Steps 4-5: the net correlations, and the clusters of at least ``min_size`` below 0.

    Failing that, every cluster with a negative net correlation (``size_limit_dropped``),
    after the medians left out by :func:`_cluster_summaries` are filled in. Returns the net
    correlations, the candidates and whether the size limit was dropped.
    """
    net = _net_correlation(d, s_ranks, s_sizes)
    eligible = (d["sizes"] >= min_size) & (net < 0)
    if eligible.any():
        return net, np.flatnonzero(eligible), False
    _fill_medians(d, np.ones(d["ids"].size, dtype=bool))  # the fallback reads every cluster
    net = _net_correlation(d, s_ranks, s_sizes)
    if not (net < 0).any():
        raise EmptyRegionError(
            f"No DLPFC cluster has a negative net correlation with the sgACC clusters "
            f"({d['ids'].size} DLPFC clusters, largest {int(d['sizes'].max())} voxels). The scan "
            "may be too short or noisy for this method, or the cleaning left a global signal "
            "(check global signal regression); try the cluster or seedmap method."
        )
    return net, np.flatnonzero(net < 0), True


def _select_rank_product(d: dict[str, np.ndarray], net: np.ndarray,
                         cand: np.ndarray) -> tuple[int, np.ndarray]:
    """SNT's rule: the lowest product of the size, concentration and net-correlation ranks."""
    rank_size = _ranks(d["sizes"][cand].astype(float), descending=True)
    rank_conc = _ranks(np.array([_concentration(d, k) for k in cand]), descending=True)
    rank_net = _ranks(net[cand], descending=False)
    product = (rank_size * rank_conc * rank_net).astype(float)
    order = np.lexsort((net[cand], product))
    return int(cand[order[0]]), product


def _core_scores(d: dict[str, np.ndarray], voxel_net: np.ndarray, cand: np.ndarray,
                 core_size: int) -> np.ndarray:
    """Mean net correlation of the ``core_size`` most anticorrelated voxels of each candidate."""
    scores = np.empty(cand.size)
    for j, k in enumerate(cand):
        scores[j] = np.sort(voxel_net[d["members"][k]])[:core_size].mean()
    return scores


def _select_size_core(d: dict[str, np.ndarray], voxel_net: np.ndarray, cand: np.ndarray,
                      core_size: int) -> tuple[int, np.ndarray]:
    """The lowest product of the size rank and the core rank (ties: the more negative core)."""
    scores = _core_scores(d, voxel_net, cand, core_size)
    product = (_ranks(d["sizes"][cand].astype(float), descending=True)
               * _ranks(scores, descending=False)).astype(float)
    order = np.lexsort((scores, product))
    return int(cand[order[0]]), scores


def _min_cluster_size(context: TargetingContext, n_dlpfc: int, options: HierarchicalOptions) -> int:
    if context.surface is None:
        return int(options.hierarchical_min_voxels)
    return max(1, int(np.ceil(options.hierarchical_min_share / 100.0 * n_dlpfc)))


def _region_data(context: TargetingContext) -> tuple[np.ndarray, np.ndarray]:
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
    return dlpfc, sgacc


def _cluster_table(d: dict[str, np.ndarray], net: np.ndarray, cand: np.ndarray,
                   scores: np.ndarray, score_name: str) -> list[dict[str, Any]]:
    """The ten largest DLPFC clusters, for the target's details."""
    where = {int(k): j for j, k in enumerate(cand)}
    return [
        {"size_voxels": int(d["sizes"][k]), "concentration": round(_concentration(d, k), 4),
         "net_correlation": round(float(net[k]), 4),
         "centroid_mm": [round(float(v), 2) for v in _centroid(d, k)],
         score_name: round(float(scores[where[int(k)]]), 4) if int(k) in where else None}
        for k in _largest(d["sizes"])
    ]


@dataclass(frozen=True)
class HierarchicalOptions(Parameters):
    """Options of the ``hierarchical`` method."""

    hierarchical_threshold: float = param(
        0.5, low=0, high=1, low_inclusive=False, high_inclusive=False,
        help="hierarchical method: dendrogram cut on 1-|rho|")
    hierarchical_min_voxels: int = param(
        51, low=1, high=MAX_REGION_VOXELS, units="voxels",
        help="hierarchical method: smallest DLPFC cluster kept on a voxel grid")
    hierarchical_min_share: float = param(
        1.0, low=0, low_inclusive=False, high=100, units="%",
        help="hierarchical method: smallest DLPFC cluster kept on a surface, as a share of the "
             "search region's vertices")
    hierarchical_selection: str = param(
        "size-core", choices=SELECTIONS,
        help="hierarchical method: how the cluster is chosen: 'size-core' (ranks of size and of "
             "the anticorrelated core, default) or 'rank-product' (SNT's published rank product "
             "and centroid)")


@register_method("hierarchical", options=(HierarchicalOptions,), rank=30,
                 description="SNT-style hierarchical clustering of DLPFC and sgACC voxels "
                             "(Cole 2020)")
def hierarchical_target(
    context: TargetingContext,
    options: HierarchicalOptions | None = None,
) -> Target:
    """SNT-style target from hierarchical clustering of DLPFC and sgACC voxels.

    See the module docstring for the algorithm (Cole et al. 2020, 2022;
    REFERENCES.md section 1, method 4) and for why the default ranks the
    clusters by size and anticorrelated core rather than by SNT's rank product.

    Parameters
    ----------
    context : TargetingContext
        Cleaned data; the DLPFC region is ``search_voxels``, the sgACC region
        ``seed_voxels``. On a surface (``context.surface``) the elements are
        vertices and the minimum cluster size is a share of the region.
    options : HierarchicalOptions, optional
        ``hierarchical_threshold``: dendrogram cut on ``1 - |rho|`` (default
        0.5); ``hierarchical_min_voxels``: smallest DLPFC cluster on a voxel
        grid (default 51, i.e. "more than 50 voxels"); ``hierarchical_min_share``:
        the same on a surface, in % of the search region's vertices (default 1 %);
        ``hierarchical_selection``: ``"size-core"`` (default) or ``"rank-product"``.

    Returns
    -------
    Target
        ``coordinate_mm`` is the centroid of the chosen cluster's ``2 m`` most
        anticorrelated voxels, or its centre of mass with ``"rank-product"``
        (on a surface: the vertex of those nearest to it); ``connectivity_r``
        is the classic seed map (for display); ``details`` holds the cluster
        table.

    Raises
    ------
    EmptyRegionError
        If no DLPFC cluster is net anticorrelated with the sgACC clusters.
    InvalidParameterError
        If a region exceeds :data:`MAX_REGION_VOXELS`.
    """
    options = HierarchicalOptions() if options is None else options
    dlpfc, sgacc = _region_data(context)
    min_size = _min_cluster_size(context, dlpfc.size, options)
    d_data, s_data = context.data[:, dlpfc], context.data[:, sgacc]
    d_ranks = rank_scores(d_data)
    d_labels = _cluster_rank_scores(d_ranks, options.hierarchical_threshold)
    s_labels = cluster_region(s_data, threshold=options.hierarchical_threshold)
    d = _cluster_summaries(d_data, d_labels, context.voxel_mm(dlpfc), min_size=min_size)
    s = _cluster_summaries(s_data, s_labels, context.voxel_mm(sgacc))

    s_sizes = s["sizes"].astype(np.float64)
    s_ranks = rank_scores(s["medians"])
    net, cand, size_limit_dropped = _eligible(d, s_ranks, s_sizes, min_size)
    voxel_net = (d_ranks.T @ s_ranks).astype(np.float64) @ s_sizes / s_sizes.sum()
    if options.hierarchical_selection == "rank-product":
        best, scores = _select_rank_product(d, net, cand)
        in_best = d["members"][best]
        score_name = "rank_product"
    else:
        best, scores = _select_size_core(d, voxel_net, cand, min_size)
        in_best = d["members"][best]
        in_best = in_best[np.argsort(voxel_net[in_best], kind="stable")[:2 * min_size]]
        score_name = "core_net_correlation"
    members = dlpfc[in_best]
    xyz = context.voxel_mm(members)
    return target_on_cluster(
        context, context.seed_connectivity(), method="hierarchical", members=members, xyz=xyz,
        centroid=xyz.mean(axis=0),
        details={
            "cluster_size_voxels": int(d["sizes"][best]),
            "cluster_concentration": _concentration(d, best),
            "cluster_net_correlation": float(net[best]),
            "target_voxels": int(members.size),
            "target_mean_net_correlation": float(voxel_net[in_best].mean()),
            "n_dlpfc_clusters": int(d["ids"].size),
            "n_sgacc_clusters": int(s["ids"].size),
            "n_eligible_clusters": int(cand.size),
            "min_cluster_size": int(min_size),
            "size_limit_dropped": bool(size_limit_dropped),
            "n_dlpfc_voxels": int(dlpfc.size),
            "n_sgacc_voxels": int(sgacc.size),
            "largest_dlpfc_clusters": _cluster_table(d, net, cand, scores, score_name),
        },
        parameters={"distance_threshold": float(options.hierarchical_threshold),
                    "min_cluster_size": int(min_size),
                    "selection": options.hierarchical_selection,
                    "linkage": "average", "correlation": "spearman"},
    )
