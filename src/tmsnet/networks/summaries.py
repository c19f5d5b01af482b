"""Network-level summaries of a connectome: blocks, region profiles, graph measures.

* :func:`network_blocks` -- mean connectivity within each network (upper
  triangle of the diagonal block, self-connections excluded) and between each
  pair of networks (whole off-diagonal block).
* :func:`within_between` -- per network, mean within vs mean to all other
  networks; :func:`mean_within_between` -- the same over the whole matrix
  (all same-network pairs vs all different-network pairs).
* :func:`region_profile` -- one region's (e.g. the stimulation target's) mean
  connectivity to each network and to chosen regions (e.g. the sgACC).
* :func:`graph_measures` -- node strength (positive and negative), the
  participation coefficient of Guimera & Amaral (2005, Nature 433:895) for
  the given network partition, the Newman modularity Q of that partition
  (``networkx.community.modularity``) and of a seeded Louvain partition
  (``networkx.community.louvain_communities``; Blondel et al. 2008).

Participation coefficient (Guimera & Amaral 2005; positive weights, as in
the Brain Connectivity Toolbox's ``participation_coef``):
``P_i = 1 - sum_m (k_im / k_i)^2`` with ``k_im`` the strength of node ``i``
into module ``m`` and ``k_i`` its total strength; 0 when all of a node's
connections stay in one module, approaching ``1 - 1/M`` when they spread
evenly over ``M`` modules. Nodes with zero strength get 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.docs import add_doc, fill_doc

__all__ = [
    "graph_measures",
    "mean_within_between",
    "network_blocks",
    "participation_coefficient",
    "region_profile",
    "within_between",
]

add_doc("matrix_networks", """matrix : ndarray, shape (n, n)
    Symmetric connectome.
networks : array of str, shape (n,)
    Network of each region.""")


def _check_square(matrix: np.ndarray, networks: np.ndarray | None = None) -> np.ndarray:
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidParameterError(f"A connectome must be a square matrix, got shape {m.shape}.")
    if networks is not None and len(networks) != m.shape[0]:
        raise InvalidParameterError(
            f"networks has {len(networks)} entries but the matrix has {m.shape[0]} regions."
        )
    return m


def _network_list(networks: np.ndarray, order: tuple[str, ...] | None) -> list[str]:
    present = list(dict.fromkeys(np.asarray(networks).astype(str).tolist()))
    if order:
        return [n for n in order if n in present] + [n for n in present if n not in order]
    return present


def network_blocks(
    matrix: np.ndarray, networks: np.ndarray, *, order: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Mean connectivity within and between networks.

    Parameters
    ----------
    matrix : ndarray, shape (n, n)
        Symmetric connectome (r, Fisher z or any edge value).
    networks : array of str, shape (n,)
        Network of each region.
    order : tuple of str, optional
        Row/column order of the result.

    Returns
    -------
    pandas.DataFrame
        Networks x networks; the diagonal holds the mean over distinct
        region pairs of the same network.
    """
    m = _check_square(matrix, networks)
    nets = np.asarray(networks).astype(str)
    names = _network_list(nets, order)
    out = np.full((len(names), len(names)), np.nan)
    for a, na in enumerate(names):
        ia = np.flatnonzero(nets == na)
        for b, nb in enumerate(names):
            ib = np.flatnonzero(nets == nb)
            block = m[np.ix_(ia, ib)]
            if a == b:
                iu = np.triu_indices(ia.size, 1)
                out[a, b] = block[iu].mean() if iu[0].size else np.nan
            else:
                out[a, b] = block.mean()
    return pd.DataFrame(out, index=pd.Index(names, name="network"), columns=names)


@fill_doc
def within_between(
    matrix: np.ndarray, networks: np.ndarray, *, order: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Per network: mean within-network vs mean between-network connectivity.

    Parameters
    ----------
    %(matrix_networks)s
    order : tuple of str, optional
        Row order.

    Returns
    -------
    pandas.DataFrame
        Columns ``network``, ``n_regions``, ``within`` (mean over distinct
        pairs inside the network), ``between`` (mean over all pairs with one
        region inside and one outside), ``difference`` (within - between).
    """
    m = _check_square(matrix, networks)
    nets = np.asarray(networks).astype(str)
    rows = []
    for name in _network_list(nets, order):
        inside = nets == name
        ia, ib = np.flatnonzero(inside), np.flatnonzero(~inside)
        iu = np.triu_indices(ia.size, 1)
        within = m[np.ix_(ia, ia)][iu].mean() if iu[0].size else np.nan
        between = m[np.ix_(ia, ib)].mean() if ib.size else np.nan
        rows.append(
            {
                "network": name,
                "n_regions": int(ia.size),
                "within": float(within),
                "between": float(between),
                "difference": float(within - between),
            }
        )
    return pd.DataFrame(rows)


@fill_doc
def mean_within_between(matrix: np.ndarray, networks: np.ndarray) -> tuple[float, float]:
    """Mean edge value over all distinct same-network pairs and over all different-network pairs.

    Parameters
    ----------
    %(matrix_networks)s

    Returns
    -------
    within, between : float
        NaN when there is no such pair.
    """
    m = _check_square(matrix, networks)
    nets = np.asarray(networks).astype(str)
    iu = np.triu_indices(m.shape[0], 1)
    same = nets[iu[0]] == nets[iu[1]]
    values = m[iu]
    within = float(values[same].mean()) if same.any() else float("nan")
    between = float(values[~same].mean()) if (~same).any() else float("nan")
    return within, between


@fill_doc
def region_profile(
    matrix: np.ndarray,
    networks: np.ndarray,
    region: int,
    *,
    labels: list[str] | None = None,
    extra_regions: dict[str, list[int]] | None = None,
    order: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """One region's mean connectivity to each network (and to named region sets).

    Parameters
    ----------
    %(matrix_networks)s
    region : int
        Row index of the region (e.g. the stimulation target's parcel).
    labels : list of str, optional
        Region names (for the ``what`` column of extra rows).
    extra_regions : dict of str to list of int, optional
        Further targets, e.g. ``{"sgACC": [i, j]}``: mean connectivity of
        ``region`` to those regions.
    order : tuple of str, optional
        Network order.

    Returns
    -------
    pandas.DataFrame
        Columns ``to`` (network or set name), ``kind`` (``network``/``regions``),
        ``n_regions`` and ``mean`` (the region itself excluded).
    """
    m = _check_square(matrix, networks)
    if not 0 <= region < m.shape[0]:
        raise InvalidParameterError(f"region {region} is outside 0..{m.shape[0] - 1}.")
    nets = np.asarray(networks).astype(str)
    others = np.arange(m.shape[0]) != region
    rows = []
    for name in _network_list(nets, order):
        sel = (nets == name) & others
        rows.append(
            {
                "to": name,
                "kind": "network",
                "n_regions": int(sel.sum()),
                "mean": float(m[region, sel].mean()) if sel.any() else np.nan,
            }
        )
    for name, idx in (extra_regions or {}).items():
        idx = [i for i in idx if i != region]
        rows.append(
            {
                "to": name,
                "kind": "regions",
                "n_regions": len(idx),
                "mean": float(m[region, idx].mean()) if idx else np.nan,
            }
        )
    return pd.DataFrame(rows)


def participation_coefficient(matrix: np.ndarray, modules: np.ndarray) -> np.ndarray:
    """Participation coefficient of every node (Guimera & Amaral 2005).

    Parameters
    ----------
    matrix : ndarray, shape (n, n)
        Non-negative symmetric weights (negative weights should be removed
        first; they are set to 0 here). The diagonal is ignored.
    modules : array, shape (n,)
        Module (network) of each node.

    Returns
    -------
    ndarray, shape (n,)
        ``1 - sum_m (k_im / k_i)^2``; 0 for isolated nodes.
    """
    w = np.clip(_check_square(matrix, modules), 0.0, None)
    np.fill_diagonal(w, 0.0)
    _, module_index = np.unique(np.asarray(modules).astype(str), return_inverse=True)
    onehot = np.eye(module_index.max() + 1)[module_index]
    k_im = w @ onehot
    k_i = k_im.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pc = 1.0 - ((k_im / k_i[:, None]) ** 2).sum(axis=1)
    pc[k_i == 0] = 0.0
    return pc


def graph_measures(
    matrix: np.ndarray,
    networks: np.ndarray,
    *,
    labels: list[str] | None = None,
    random_seed: int = 0,
    resolution: float = 1.0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Standard weighted graph measures of a functional connectome.

    Parameters
    ----------
    matrix : ndarray, shape (n, n)
        Symmetric connectome (r or Fisher z). Modularity and participation use
        the positive weights only (the usual convention for functional
        connectomes, Rubinov & Sporns 2011 treat negative weights separately).
    networks : array of str
        A-priori network of each region.
    labels : list of str, optional
        Region names.
    random_seed : int
        Seed of the Louvain algorithm (recorded as ``louvain_seed``).
    resolution : float
        Louvain / modularity resolution (1 = Newman's Q).

    Returns
    -------
    nodes : pandas.DataFrame
        Per region: ``name``, ``network``, ``strength_positive``,
        ``strength_negative`` (sum of |negative| weights),
        ``participation`` (for the a-priori networks), ``louvain_module``.
    graph : dict
        ``modularity_networks`` (Q of the a-priori partition),
        ``modularity_louvain`` and ``n_louvain_modules``.
    """
    import networkx as nx

    m = _check_square(matrix, networks)
    n = m.shape[0]
    w = m.copy()
    np.fill_diagonal(w, 0.0)
    pos = np.clip(w, 0.0, None)
    graph = nx.from_numpy_array(pos)
    nets = np.asarray(networks).astype(str)
    partition = [set(np.flatnonzero(nets == name).tolist()) for name in dict.fromkeys(nets.tolist())]
    q_networks = nx.community.modularity(graph, partition, weight="weight", resolution=resolution)
    louvain = nx.community.louvain_communities(graph, weight="weight", resolution=resolution,
                                              seed=random_seed)
    module = np.empty(n, dtype=int)
    for k, members in enumerate(sorted(louvain, key=lambda s: min(s))):
        module[list(members)] = k
    q_louvain = nx.community.modularity(graph, louvain, weight="weight", resolution=resolution)
    nodes = pd.DataFrame(
        {
            "name": labels if labels is not None else [str(i) for i in range(n)],
            "network": nets,
            "strength_positive": pos.sum(axis=1),
            "strength_negative": np.clip(-w, 0.0, None).sum(axis=1),
            "participation": participation_coefficient(pos, nets),
            "louvain_module": module,
        }
    )
    summary = {
        "modularity_networks": float(q_networks),
        "modularity_louvain": float(q_louvain),
        "n_louvain_modules": len(louvain),
        "louvain_seed": int(random_seed),
        "resolution": resolution,
        "weights": "positive edges only",
    }
    return nodes, summary
