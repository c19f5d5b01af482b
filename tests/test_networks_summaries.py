"""Network summaries and graph measures against closed forms."""

import numpy as np
import pytest

from tmsnet.networks.summaries import (
    graph_measures,
    network_blocks,
    participation_coefficient,
    region_profile,
    within_between,
)


def _two_cliques(n=4, bridge=0.0):
    m = np.zeros((2 * n, 2 * n))
    m[:n, :n] = 1.0
    m[n:, n:] = 1.0
    np.fill_diagonal(m, 0.0)
    m[0, n] = m[n, 0] = bridge
    return m, np.array(["A"] * n + ["B"] * n)


def test_participation_coefficient_closed_form():
    m, nets = _two_cliques(4, bridge=3.0)
    pc = participation_coefficient(m, nets)
    # node 0: 3 edges of weight 1 within A, weight 3 to B -> 1 - (3/6)^2 - (3/6)^2 = 0.5
    assert pc[0] == pytest.approx(0.5)
    assert pc[1] == pytest.approx(0.0)
    # a star hub connected equally to 3 modules: 1 - 3 (1/3)^2 = 2/3
    star = np.zeros((4, 4))
    star[0, 1:] = star[1:, 0] = 1.0
    assert participation_coefficient(star, np.array(["h", "x", "y", "z"]))[0] == pytest.approx(2 / 3)


def test_modularity_of_two_disconnected_cliques_is_one_half():
    m, nets = _two_cliques(5)
    nodes, graph = graph_measures(m, nets, random_seed=0)
    assert graph["modularity_networks"] == pytest.approx(0.5)
    assert graph["modularity_louvain"] == pytest.approx(0.5)
    assert graph["n_louvain_modules"] == 2
    np.testing.assert_allclose(nodes["strength_positive"], 4.0)
    assert (nodes["participation"] == 0).all()


def test_blocks_within_between_and_profile():
    nets = np.array(["A", "A", "A", "B", "B"])
    m = np.where(nets[:, None] == nets[None, :], 0.6, -0.1)
    m[3, 4] = m[4, 3] = 0.2
    np.fill_diagonal(m, 1.0)
    blocks = network_blocks(m, nets)
    assert blocks.loc["A", "A"] == pytest.approx(0.6)  # the diagonal of the matrix is excluded
    assert blocks.loc["B", "B"] == pytest.approx(0.2)
    assert blocks.loc["A", "B"] == pytest.approx(-0.1)
    wb = within_between(m, nets).set_index("network")
    assert wb.loc["A", "difference"] == pytest.approx(0.7)
    profile = region_profile(m, nets, 0, extra_regions={"sgACC": [3]}).set_index("to")
    assert profile.loc["A", "mean"] == pytest.approx(0.6) and profile.loc["A", "n_regions"] == 2
    assert profile.loc["sgACC", "mean"] == pytest.approx(-0.1)
