"""Group statistics: GLM against scipy, Freedman-Lane engine, NBS planted truth and FWER."""

import numpy as np
import pytest
from scipy import stats

from tmsnet.exceptions import InvalidParameterError
from tmsnet.networks.connectomes import edge_values
from tmsnet.networks.nbs import network_based_statistic, permutation_t
from tmsnet.networks.stats import (
    edge_statistics,
    glm_t,
    make_design,
    network_block_statistics,
    upper_triangle,
)
from tmsnet.simulate.connectome import ConnectomeSimulationParameters, simulate_connectome_cohort


def _two_sample(cohort, covariates=("age", "sex", "mean_fd")):
    z = edge_values(cohort.matrices, "correlation")
    edges, index = upper_triangle(z)
    design = make_design(cohort.participants, kind="two-sample", contrast=("patient", "control"),
                         covariates=list(covariates))
    return edges, index, design, z


def _paired(cohort, covariates=("age",)):
    z = edge_values(cohort.matrices, "correlation")
    n = len(cohort.participants)
    pre = cohort.rows["session"].to_numpy() == "pre"
    diff = z[~pre] - z[pre]
    assert n == diff.shape[0]
    edges, index = upper_triangle(diff)
    design = make_design(cohort.participants, kind="paired", contrast=("pre", "post"),
                         covariates=list(covariates))
    return edges, index, design, diff


def test_glm_matches_scipy_t_tests():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 5))
    y[:12] += 0.8
    import pandas as pd

    participants = pd.DataFrame({"participant_id": range(30), "group": ["pat"] * 12 + ["con"] * 18})
    design = make_design(participants, kind="two-sample", contrast=("pat", "con"))
    res = glm_t(y, design.X)
    ref = stats.ttest_ind(y[:12], y[12:])
    np.testing.assert_allclose(res["t"], ref.statistic, rtol=1e-10)
    table = edge_statistics(y, design, index=(np.zeros(5, int), np.arange(5)))
    np.testing.assert_allclose(table["p"], ref.pvalue, rtol=1e-8)
    np.testing.assert_allclose(table["effect"], y[:12].mean(0) - y[12:].mean(0), atol=1e-12)
    ci = ref.confidence_interval(0.95)
    np.testing.assert_allclose(table["ci_low"], ci.low, rtol=1e-8)
    # paired: one-sample t on differences == scipy ttest_rel
    post = y + rng.normal(0.3, 0.5, size=y.shape)
    d = make_design(pd.DataFrame({"participant_id": range(30)}), kind="paired")
    np.testing.assert_allclose(glm_t(post - y, d.X)["t"], stats.ttest_rel(post, y).statistic, rtol=1e-10)


def test_design_errors_are_explicit():
    import pandas as pd

    p = pd.DataFrame({"participant_id": ["a", "b", "c"], "group": ["x", "y", "z"], "age": [1, 2, None]})
    with pytest.raises(InvalidParameterError, match="--contrast"):
        make_design(p, kind="two-sample")
    with pytest.raises(InvalidParameterError, match="missing"):
        make_design(p, kind="paired", covariates=["age"])
    with pytest.raises(InvalidParameterError, match="not a column"):
        make_design(p, kind="paired", covariates=["height"])


def test_freedman_lane_engine_equals_explicit_refit():
    cohort = simulate_connectome_cohort(ConnectomeSimulationParameters(n_per_group=10, n_regions=12), seed=3)
    edges, _, design, _ = _two_sample(cohort)
    rng = np.random.default_rng(1)
    perms = np.array([rng.permutation(20) for _ in range(5)])
    t = permutation_t(edges, design, perms)
    Z = design.X[:, 1:]
    hz = Z @ np.linalg.pinv(Z)
    rz = edges - hz @ edges
    for b, perm in enumerate(perms):
        permuted = hz @ edges + rz[np.argsort(perm)]
        np.testing.assert_allclose(t[b], glm_t(permuted, design.X)["t"], atol=1e-10)
    np.testing.assert_allclose(permutation_t(edges, design, np.arange(20)[None])[0],
                               glm_t(edges, design.X)["t"], atol=1e-10)


@pytest.fixture(scope="module")
def planted_two_sample():
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=20, n_regions=60, delta=0.25), seed=1)
    edges, index, design, z = _two_sample(cohort)
    result = network_based_statistic(edges, design, n_regions=60, threshold=3.0, n_permutations=500,
                                     random_seed=0)
    return cohort, edges, index, design, z, result


def test_nbs_finds_planted_two_sample_component(planted_two_sample):
    cohort, edges, index, design, z, result = planted_two_sample
    significant = result.significant(0.05)
    assert len(significant) >= 1
    best = significant[0]
    planted = set(cohort.planted_edges)
    overlap = len(planted & set(best.edges))
    print(f"planted {len(planted)} edges; component {best.n_edges} edges, overlap {overlap}, p {best.p_fwer}")
    assert best.sign == 1
    assert overlap >= 0.8 * len(planted)
    assert overlap / best.n_edges >= 0.5
    # every other component is not significant
    assert all(c.p_fwer > 0.05 for c in result.components[1:])
    # edge level: FDR-significant edges are mostly planted ones; CI of a planted edge covers delta
    table = edge_statistics(edges, design, index=index, labels=cohort.labels)
    hits = table[table["p_fdr"] < 0.05]
    assert len(hits) >= 1
    assert all((int(i), int(j)) in planted for i, j in zip(hits["i"], hits["j"], strict=True))
    planted_rows = table[[(int(i), int(j)) in planted for i, j in zip(table["i"], table["j"], strict=True)]]
    coverage = ((planted_rows["ci_low"] <= 0.25) & (planted_rows["ci_high"] >= 0.25)).mean()
    assert coverage >= 0.8


def test_nbs_is_reproducible_and_parallel_invariant(planted_two_sample):
    cohort, edges, index, design, z, result = planted_two_sample
    again = network_based_statistic(edges, design, n_regions=60, n_permutations=500, random_seed=0,
                                    n_jobs=2,
                                    batch_size=128)
    np.testing.assert_array_equal(again.null_max, result.null_max)
    other = network_based_statistic(edges, design, n_regions=60, n_permutations=500,
                                    random_seed=1)
    assert not np.array_equal(other.null_max, result.null_max)


def test_block_statistics_find_the_planted_network_block():
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=20, n_regions=60, n_planted_nodes=2, delta=0.0), seed=5)
    z = edge_values(cohort.matrices, "correlation")
    nets = cohort.networks
    # plant a shift of every Default-Cont edge in patients
    a, b = nets == "Default", nets == "Cont"
    shift = np.zeros(z.shape[1:])
    shift[np.ix_(a, b)] = shift[np.ix_(b, a)] = 0.08
    z = z + (cohort.participants["group"].to_numpy() == "patient")[:, None, None] * shift
    design = make_design(cohort.participants, kind="two-sample", contrast=("patient", "control"),
                         covariates=["age"])
    table = network_block_statistics(z, nets, design)
    hits = table[table["p_fdr"] < 0.05]
    assert {tuple(sorted(x)) for x in zip(hits["network_a"], hits["network_b"], strict=True)} == {
        ("Cont", "Default")}
    row = hits.iloc[0]
    assert row["ci_low"] <= 0.08 <= row["ci_high"] and row["d"] > 0


def test_nbs_paired_pre_post_finds_planted_component():
    cohort = simulate_connectome_cohort(
        ConnectomeSimulationParameters(n_per_group=20, n_regions=60, delta=0.2), design="paired", seed=2)
    edges, _, design, _ = _paired(cohort)
    result = network_based_statistic(edges, design, n_regions=60, n_permutations=500, random_seed=0)
    best = result.significant(0.05)[0]
    planted = set(cohort.planted_edges)
    overlap = len(planted & set(best.edges))
    print(f"paired: planted {len(planted)}, component {best.n_edges}, overlap {overlap}, p {best.p_fwer}")
    assert best.sign == 1 and overlap >= 0.8 * len(planted) and overlap / best.n_edges >= 0.5
    assert result.parameters["permutation_scheme"].startswith("Freedman-Lane sign flipping")


N_NULL_COHORTS = 200
N_NULL_PERMUTATIONS = 100


@pytest.mark.parametrize("kind", ["two-sample", "paired"])
def test_nbs_family_wise_error_rate_under_the_null(kind):
    """200 null cohorts (12 + 12 subjects or 12 pairs, 20 regions, no planted effect, an age effect on
    every edge as nuisance), 100 permutations each, primary threshold t = 2.0: the number of cohorts with
    any component at p <= 0.05 must stay within the 99.5 % binomial bound of Bin(200, 0.05), i.e. <= 19.
    (Measured: 9/200 two-sample, 4/200 paired; the max-extent statistic is discrete, so the test is
    slightly conservative.)"""
    bound = int(stats.binom.ppf(0.995, N_NULL_COHORTS, 0.05))
    false_positive = 0
    for k in range(N_NULL_COHORTS):
        cohort = simulate_connectome_cohort(
            ConnectomeSimulationParameters(n_per_group=12, n_regions=20, delta=0.0, age_effect=0.01),
            design=kind, seed=1000 + k)
        edges, _, design, _ = _two_sample(cohort, ("age",)) if kind == "two-sample" else _paired(cohort)
        result = network_based_statistic(edges, design, n_regions=20, threshold=2.0,
                                         n_permutations=N_NULL_PERMUTATIONS, random_seed=k)
        false_positive += bool(result.significant(0.05))
    print(f"{kind}: {false_positive} / {N_NULL_COHORTS} null cohorts with a significant component "
          f"(bound {bound})")
    assert false_positive <= bound


def test_batched_component_sizes_equal_per_graph_components():
    from scipy.sparse import csgraph, csr_matrix

    from tmsnet.networks.nbs import _batch_max_sizes

    rng = np.random.default_rng(0)
    n_nodes = 30
    i, j = np.triu_indices(n_nodes, 1)
    supra = rng.random((40, i.size)) < 0.03
    expected = []
    for row in supra:
        g = csr_matrix((np.ones(row.sum()), (i[row], j[row])), shape=(n_nodes, n_nodes))
        _, lab = csgraph.connected_components(g, directed=False)
        expected.append(np.bincount(lab[i[row]]).max() if row.any() else 0)
    np.testing.assert_array_equal(_batch_max_sizes(supra, i, j, n_nodes), expected)
