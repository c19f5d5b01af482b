"""The compiled steps of the hierarchical method against scipy on the same input.

The reference in each test is the plain array code that the kernels replaced
(``scipy.stats.rankdata``, the float32 ``clip``/``abs``/``1 - x`` passes,
``squareform``, ``linkage``, ``fcluster``), written out here. Equality is bitwise:
the bootstrap clouds of a job must not move.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from scipy.stats import rankdata

from tmsnet.targeting import clustering_kernels
from tmsnet.targeting.clustering_kernels import (
    average_linkage,
    condensed_distances,
    linkage_distances,
    rank_scores,
)
from tmsnet.targeting.hierarchical import _cluster_rank_scores, _upper_gram


def _reference_rank_scores(data: np.ndarray, method: str = "average") -> np.ndarray:
    ranks = rankdata(data, axis=0, method=method).astype(np.float64)
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    norm[norm == 0] = np.inf
    return (ranks / norm).astype(np.float32)


def _reference_condensed(rho: np.ndarray) -> np.ndarray:
    distance = rho.astype(np.float32, copy=True)
    np.clip(distance, -1.0, 1.0, out=distance)
    np.abs(distance, out=distance)
    np.subtract(1.0, distance, out=distance)
    np.fill_diagonal(distance, 0.0)
    return squareform(distance, checks=False).astype(np.float64)


def _reference_labels(z: np.ndarray, threshold: float) -> np.ndarray:
    tree = linkage(_reference_condensed(z.T @ z), method="average")
    return fcluster(tree, t=threshold, criterion="distance")


def _planted(rng: np.random.Generator, n_frames: int = 120, groups: int = 6,
             per_group: int = 40, noise: float = 1.0) -> np.ndarray:
    """Columns in ``groups`` groups that share a signal, plus noise."""
    shared = rng.standard_normal((n_frames, groups))
    data = np.repeat(shared, per_group, axis=1) + noise * rng.standard_normal(
        (n_frames, groups * per_group))
    return data[:, rng.permutation(data.shape[1])]


def _tied(rng: np.random.Generator, n_frames: int = 90) -> np.ndarray:
    data = rng.standard_normal((n_frames, 50))
    data[:, 3] = 0.0  # a constant column: one run of ties, scores of zero
    data[:, 7] = rng.integers(0, 4, n_frames)  # few distinct values: long runs of ties
    return data


def test_rank_scores_equal_the_array_code_bitwise_with_ties_and_repeated_frames():
    rng = np.random.default_rng(0)
    data = _tied(rng)
    resampled = data[rng.integers(0, 90, 90)]  # a bootstrap draw repeats frames
    for values in (data, resampled, resampled[:17]):
        ours, reference = rank_scores(values), _reference_rank_scores(values)
        assert np.array_equal(ours, reference) and ours.flags.f_contiguous
    assert not rank_scores(data)[:, 3].any() and rank_scores(data)[:, 7].any()
    # the ties are real: giving each run its first rank (a plausible bug) would differ
    assert not np.array_equal(_reference_rank_scores(resampled, "min"), rank_scores(resampled))


@pytest.mark.parametrize("n_frames", [129, 300, 611])
def test_rank_scores_of_float32_data_equal_those_of_its_float64_copy(n_frames):
    """Numpy sums the reference pairwise above 128 rows; the scores are exact in any order."""
    values = _tied(np.random.default_rng(n_frames), n_frames).astype(np.float32)
    reference = _reference_rank_scores(values.astype(np.float64))
    assert np.array_equal(rank_scores(values), reference)
    assert np.array_equal(rank_scores(values.astype(np.float64)), reference)


def test_condensed_distances_equal_the_array_code_bitwise():
    rng = np.random.default_rng(1)
    rho = rng.uniform(-1.0, 1.0, (60, 60)).astype(np.float32)
    rho = (rho + rho.T) / 2
    rho[0, 1] = rho[1, 0] = np.float32(1.0000001)  # rounding beyond 1 is clipped
    rho[2, 5] = rho[5, 2] = np.float32(-1.0000002)
    got = condensed_distances(rho)
    assert got.dtype == np.float64
    assert np.array_equal(got, _reference_condensed(rho))
    assert got[0] == 0.0  # the clipped pair is at distance 0, not -1e-7


@pytest.mark.parametrize("room", [1, clustering_kernels.PAIRS_PER_ELEMENT])
@pytest.mark.parametrize("cut", [0.0, 0.5, 1.0])
def test_linkage_distances_list_the_pairs_within_the_cut_in_one_pass(cut, room, monkeypatch):
    """The distances of condensed_distances, the pairs a brute-force search finds, the same tree.

    ``cut`` 1.0 lists all 1,770 pairs of 60 elements; with room for one pair per element the
    pairs overflow their arrays and are listed in a second pass.
    """
    monkeypatch.setattr(clustering_kernels, "PAIRS_PER_ELEMENT", room)
    rng = np.random.default_rng(11)
    rho = rng.uniform(-1.0, 1.0, (60, 60)).astype(np.float32)
    rho = (rho + rho.T) / 2
    distances, near = linkage_distances(rho, cut=cut)
    assert np.array_equal(distances, condensed_distances(rho))
    a, b = np.triu_indices(60, 1)
    within = distances <= cut + clustering_kernels.LIST_SLACK
    assert np.array_equal(near.first, a[within]) and np.array_equal(near.second, b[within])
    assert np.array_equal(near.degree, np.bincount(np.r_[a[within], b[within]], minlength=60))
    assert (cut > 0) == within.any() and (cut < 1.0 or within.all())
    tree = average_linkage(distances.copy(), cut=cut, overwrite=True, near=near)
    assert np.array_equal(tree, linkage(distances, method="average"))


def test_only_the_upper_triangle_is_read():
    rng = np.random.default_rng(2)
    rho = rng.uniform(-1.0, 1.0, (30, 30)).astype(np.float32)
    upper = np.triu(rho, 1) + np.triu(rho, 1).T
    garbage = upper.copy()
    garbage[np.tril_indices(30, -1)] = 7.0
    assert np.array_equal(condensed_distances(garbage), condensed_distances(upper))


def test_upper_gram_is_the_product_above_the_diagonal():
    rng = np.random.default_rng(3)
    z = _reference_rank_scores(rng.standard_normal((75, 80)))
    gram = _upper_gram(z)
    upper = np.triu_indices(80, 1)
    np.testing.assert_allclose(gram[upper], (z.T @ z)[upper], rtol=0, atol=2e-6)
    assert gram.flags.c_contiguous


@pytest.mark.parametrize("noise", [0.6, 1.2, 2.5])
def test_clusters_equal_scipy_on_resampled_planted_data(noise):
    """The job's clustering path against the plain one, on bootstrap draws and a short piece."""
    rng = np.random.default_rng(int(noise * 10))
    data = _planted(rng, noise=noise)
    draws = [np.arange(120), rng.integers(0, 120, 120), np.sort(rng.integers(0, 60, 60))]
    n_clusters = []
    for frames in draws:
        z = rank_scores(data[frames])
        reference = _reference_rank_scores(data[frames])
        assert np.array_equal(z, reference)
        # Same layout too: the method multiplies these scores with BLAS, whose rounding
        # follows the memory order (a C-ordered copy moved the net correlations' last bits).
        weights = rng.standard_normal((z.shape[0], 3)).astype(np.float32)
        weights = _reference_rank_scores(weights)
        assert np.array_equal(z.T @ weights, reference.T @ weights)
        labels = _cluster_rank_scores(z, 0.5)
        assert np.array_equal(labels, _reference_labels(z, 0.5))
        n_clusters.append(labels.max())
    assert min(n_clusters) >= 2  # the comparison is between real partitions, not one cluster


def _rounded_distances(rng: np.random.Generator, n: int) -> np.ndarray:
    """Condensed distances on a grid of quarters: many exact ties, where the order decides."""
    return np.round(rng.random(n * (n - 1) // 2) * 4) / 4


@pytest.mark.parametrize("cut", [0.0, 0.25, 0.5, 1.0])
def test_average_linkage_equals_scipy_bitwise_with_ties(cut, monkeypatch):
    """The whole tree, merge by merge: the chain's tie rules are scipy's.

    ``cut`` 0 lists no partner (every search reads every cluster, as scipy does); 1.0
    lists every pair; a pool factor of 1 makes the list pool overflow and be compacted.
    """
    rng = np.random.default_rng(int(cut * 8) + 5)
    for factor in (1, clustering_kernels.POOL_FACTOR):
        monkeypatch.setattr(clustering_kernels, "POOL_FACTOR", factor)
        for n in (2, 3, 7, 40, 90):
            for distances in (_rounded_distances(rng, n), rng.random(n * (n - 1) // 2)):
                assert np.array_equal(average_linkage(distances, cut=cut),
                                      linkage(distances, method="average")), (n, factor)


@pytest.mark.parametrize("noise", [0.6, 1.0])
def test_average_linkage_equals_scipy_on_rank_correlation_distances(noise):
    """The method's own input: most merges below the cut, few partners within it."""
    rng = np.random.default_rng(int(noise * 10) + 1)
    data = _planted(rng, groups=8, per_group=60, noise=noise)
    distances = _reference_condensed(_reference_rank_scores(data).T @ _reference_rank_scores(data))
    reference = linkage(distances, method="average")
    tree = average_linkage(distances.copy(), cut=0.5, overwrite=True)
    assert np.array_equal(tree, reference)
    # the listed search did the work: most merges lie below the cut
    assert (reference[:, 2] <= 0.5).mean() > 0.5


def test_average_linkage_leaves_its_input_alone_unless_allowed():
    distances = np.random.default_rng(8).random(45)
    before = distances.copy()
    average_linkage(distances, cut=0.5)
    assert np.array_equal(distances, before)
    with pytest.raises(ValueError, match="condensed"):
        average_linkage(np.ones(4), cut=0.5)


def test_scratch_arrays_are_reused_only_inside_the_scope():
    from tmsnet.utils.scratch import reuse_scratch, scratch

    outside = scratch("a", (4, 4), np.float32)
    assert scratch("a", (4, 4), np.float32) is not outside
    with reuse_scratch():
        first = scratch("a", (4, 4), np.float32, order="F")
        assert scratch("a", (4, 4), np.float32, order="F") is first
        assert scratch("a", (5, 4), np.float32, order="F") is not first  # another shape
        assert scratch("b", (4, 4), np.float32, order="F") is not first
    with reuse_scratch():
        assert scratch("a", (4, 4), np.float32, order="F") is not first  # released at the end


def test_upper_gram_ignores_what_its_scratch_array_held():
    """BLAS writes the product with beta 0: NaN left in a reused buffer must not leak in."""
    from tmsnet.utils.scratch import reuse_scratch

    z = _reference_rank_scores(np.random.default_rng(9).standard_normal((50, 30)))
    clean = _upper_gram(z).copy()
    with reuse_scratch():
        _upper_gram(z)[:] = np.nan
        again = _upper_gram(z)
        upper = np.triu_indices(30, 1)
        assert np.array_equal(again[upper], clean[upper])



def test_medians_left_out_change_no_net_correlation_and_the_fallback_reads_them_all():
    """Step 4 read only for the clusters step 5 and the table need, bit for bit."""
    from tmsnet.targeting import hierarchical

    rng = np.random.default_rng(12)
    data = _planted(rng, n_frames=150, groups=12, per_group=30, noise=1.4).astype(np.float32)
    xyz = rng.random((data.shape[1], 3)) * 40
    labels = _cluster_rank_scores(rank_scores(data), 0.5)
    seed = data[:, :40] + rng.standard_normal((150, 40)).astype(np.float32)
    s = hierarchical._cluster_summaries(seed, _cluster_rank_scores(rank_scores(seed), 0.5), xyz[:40])
    s_ranks, s_sizes = rank_scores(s["medians"]), s["sizes"].astype(np.float64)
    full = hierarchical._cluster_summaries(data, labels, xyz)
    full_net = hierarchical._net_correlation(full, s_ranks, s_sizes)
    min_size = int(np.sort(full["sizes"])[-3])  # only a few clusters are large enough
    lazy = hierarchical._cluster_summaries(data, labels, xyz, min_size=min_size)
    needed = lazy["has_median"]
    assert 0 < needed.sum() < needed.size
    assert needed[full["sizes"] >= min_size].all() and needed[hierarchical._largest(full["sizes"])].all()
    lazy_net = hierarchical._net_correlation(lazy, s_ranks, s_sizes)
    assert np.array_equal(lazy_net[needed], full_net[needed])
    assert not lazy_net[~needed].any()
    hierarchical._fill_medians(lazy, np.ones(needed.size, dtype=bool))
    assert np.array_equal(lazy["medians"], full["medians"])
    assert np.array_equal(hierarchical._net_correlation(lazy, s_ranks, s_sizes), full_net)
    # the medians are those of the float64 columns of each cluster's members
    k = int(np.argmax(full["sizes"]))
    members = np.flatnonzero(labels == full["ids"][k])
    assert np.array_equal(full["medians"][:, k], np.median(data[:, members].astype(np.float64), axis=1))
