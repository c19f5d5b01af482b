"""Generated connectome cohorts with planted group or session differences.

Model (Fisher-z edge values, per subject ``s`` and session ``k``)::

    z_s,k = M + u_s + e_s,k + beta_age * (age_s - mean age) + delta * [planted edge] * [s, k affected]

``M`` is a block-structured mean connectome (within-network edges at
``within_z``, between-network edges at ``between_z``); ``u_s`` is a subject
effect (symmetric, N(0, ``subject_sd``) per edge), ``e_s,k`` session noise
(N(0, ``noise_sd``)), ``beta_age`` a covariate effect on every edge. In a
two-sample cohort the planted edges are shifted by ``delta`` in patients; in
a paired cohort they are shifted at the second session (``post``) of every
subject. The planted edges form one connected component: all pairs among a
set of ``n_planted_nodes`` regions. Matrices are returned as correlations
(``tanh z``, unit diagonal), as tmsnet writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.params import Parameters, param

__all__ = [
    "ConnectomeCohort",
    "ConnectomeSimulationParameters",
    "simulate_connectome_cohort",
    "write_connectome_cohort",
]


@dataclass
class ConnectomeCohort:
    """A generated cohort.

    Attributes
    ----------
    matrices : ndarray, shape (n_rows, R, R)
        Correlation matrices; rows follow ``rows``.
    rows : pandas.DataFrame
        ``participant_id``, ``session`` (or n/a) for each matrix.
    participants : pandas.DataFrame
        ``participant_id``, ``group``, ``age``, ``sex``, ``mean_fd``.
    planted_edges : list of (int, int)
        Edges with the planted difference (``i < j``).
    planted_nodes : list of int
        Their regions.
    networks : ndarray of str
        Network of each region.
    labels : list of str
        Region names.
    design : str
        ``two-sample`` or ``paired``.
    """

    matrices: np.ndarray
    rows: pd.DataFrame
    participants: pd.DataFrame
    planted_edges: list[tuple[int, int]]
    planted_nodes: list[int]
    networks: np.ndarray
    labels: list[str]
    design: str


def _sym_noise(rng: np.random.Generator, n: int, r: int, sd: float) -> np.ndarray:
    a = rng.normal(0.0, sd, size=(n, r, r))
    a = np.triu(a, 1)
    return a + a.transpose(0, 2, 1)


def _network_layout(n_regions: int, n_networks: int, within_z: float,
                    between_z: float) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Network of each region, region labels and the mean Fisher z matrix (0 on the diagonal)."""
    names7 = ("Vis", "SomMot", "DorsAttn", "SalVentAttn", "Limbic", "Cont", "Default")
    net_names = names7[:n_networks] if n_networks <= 7 else tuple(f"Net{k + 1}" for k in range(n_networks))
    networks = np.array([net_names[k] for k in np.arange(n_regions) * n_networks // n_regions])
    labels = [f"{networks[r]}_{r + 1}" for r in range(n_regions)]
    same = networks[:, None] == networks[None, :]
    mean = np.where(same, within_z, between_z)
    np.fill_diagonal(mean, 0.0)
    return networks, labels, mean


@dataclass(frozen=True)
class ConnectomeSimulationParameters(Parameters):
    """How a connectome cohort is generated (:func:`simulate_connectome_cohort`).

    Parameters
    ----------
    n_per_group : int
        Subjects per group (two-sample) or in total (paired).
    n_regions : int
        Regions ``R``; assigned to ``n_networks`` contiguous networks named
        after the Yeo-7 networks when ``n_networks <= 7``.
    n_networks : int
        Number of networks.
    n_planted_nodes : int
        Regions whose mutual edges carry the effect (a clique of
        ``k (k - 1) / 2`` edges), drawn at random; 2 to ``n_regions``.
    delta : float
        Planted shift in Fisher z (patients - controls, or post - pre);
        0 gives a null cohort.
    within_z, between_z : float
        Mean Fisher z within / between networks.
    subject_sd, noise_sd : float
        SD of the subject effect and of the session noise (Fisher z).
    age_effect : float
        Fisher z per year added to every edge (a nuisance covariate).
    """

    n_per_group: int = param(20, help="subjects per group (two-sample) or in total (paired)", low=1,
                             high=100_000, cli=False)
    n_regions: int = param(100, help="regions, in contiguous networks", low=2, high=10_000, cli=False)
    n_networks: int = param(7, help="networks (Yeo-7 names up to 7)", low=1, high=10_000, cli=False)
    n_planted_nodes: int = param(6, help="regions whose mutual edges carry the effect", low=2,
                                 high=10_000, cli=False)
    delta: float = param(0.0, help="planted shift (patients - controls, or post - pre)",
                         units="Fisher z", low=-10, high=10, cli=False)
    within_z: float = param(0.5, help="mean edge within a network", units="Fisher z", low=-10,
                            high=10, cli=False)
    between_z: float = param(0.1, help="mean edge between networks", units="Fisher z", low=-10,
                             high=10, cli=False)
    subject_sd: float = param(0.1, help="SD of the subject effect", units="Fisher z", low=0, high=10,
                              cli=False)
    noise_sd: float = param(0.15, help="SD of the session noise", units="Fisher z", low=0, high=10,
                            cli=False)
    age_effect: float = param(0.003, help="covariate effect on every edge", units="Fisher z per year",
                              low=-1, high=1, cli=False)

    def check(self) -> None:
        """The planted clique fits in the regions."""
        if self.n_planted_nodes > self.n_regions:
            raise InvalidParameterError(
                f"n_planted_nodes ({self.n_planted_nodes}) must be at most n_regions ({self.n_regions}).")


def simulate_connectome_cohort(
    params: ConnectomeSimulationParameters | None = None,
    *,
    design: str = "two-sample",
    seed: int = 0,
) -> ConnectomeCohort:
    """Generate a cohort of connectomes with a planted difference on known edges.

    Parameters
    ----------
    params : ConnectomeSimulationParameters, optional
        Cohort size, network layout, planted effect and noise (default: its defaults).
    design : {"two-sample", "paired"}
        ``two-sample``: ``params.n_per_group`` controls and patients, one
        matrix each; ``paired``: ``params.n_per_group`` subjects with a
        ``pre`` and a ``post`` matrix.
    seed : int
        Random seed.

    Returns
    -------
    ConnectomeCohort

    Raises
    ------
    InvalidParameterError
        If ``design`` is neither.
    """
    if design not in ("two-sample", "paired"):
        raise InvalidParameterError(f"design must be 'two-sample' or 'paired', got {design!r}.")
    p = ConnectomeSimulationParameters() if params is None else params
    n_per_group, n_regions, delta = p.n_per_group, p.n_regions, p.delta
    rng = np.random.default_rng(seed)
    networks, labels, mean = _network_layout(n_regions, p.n_networks, p.within_z, p.between_z)
    nodes = np.sort(rng.choice(n_regions, size=p.n_planted_nodes, replace=False))
    planted = [(int(a), int(b)) for k, a in enumerate(nodes) for b in nodes[k + 1 :]]
    mask = np.zeros((n_regions, n_regions))
    for a, b in planted:
        mask[a, b] = mask[b, a] = 1.0

    if design == "two-sample":
        n_sub = 2 * n_per_group
        ids = [f"sub-{k + 1:03d}" for k in range(n_sub)]
        group = np.array(["control"] * n_per_group + ["patient"] * n_per_group)
    else:
        n_sub = n_per_group
        ids = [f"sub-{k + 1:03d}" for k in range(n_sub)]
        group = np.array(["patient"] * n_sub)
    age = rng.uniform(20, 65, n_sub).round(1)
    sex = rng.choice(np.array(["F", "M"]), n_sub)
    mean_fd = rng.gamma(4.0, 0.04, n_sub).round(3)
    participants = pd.DataFrame(
        {"participant_id": ids, "group": group, "age": age, "sex": sex, "mean_fd": mean_fd}
    )
    subject_effect = _sym_noise(rng, n_sub, n_regions, p.subject_sd)
    age_term = p.age_effect * (age - age.mean())
    sessions = ["n/a"] if design == "two-sample" else ["pre", "post"]
    mats, rows = [], []
    for k_ses, ses in enumerate(sessions):
        noise = _sym_noise(rng, n_sub, n_regions, p.noise_sd)
        z = mean[None] + subject_effect + noise + age_term[:, None, None] * (1 - np.eye(n_regions))
        if design == "two-sample":
            z = z + delta * (group == "patient")[:, None, None] * mask[None]
        elif k_ses == 1:
            z = z + delta * mask[None]
        r = np.tanh(z)
        r[:, np.arange(n_regions), np.arange(n_regions)] = 1.0
        mats.append(r)
        rows += [{"participant_id": pid, "session": ses} for pid in ids]
    return ConnectomeCohort(
        matrices=np.concatenate(mats),
        rows=pd.DataFrame(rows),
        participants=participants,
        planted_edges=planted,
        planted_nodes=nodes.tolist(),
        networks=networks,
        labels=labels,
        design=design,
    )


def write_connectome_cohort(cohort: ConnectomeCohort, root: str | Path) -> Path:
    """Write a cohort as a BIDS-Derivatives-like folder the ``tmsnet compare`` command reads.

    Layout: ``root/participants.tsv`` and
    ``root/sub-XXX[/ses-YY]/func/sub-XXX[_ses-YY]_task-rest_meas-correlation_relmat.tsv``
    (header = region names) plus ``root/networks.tsv`` (``name``, ``network``).

    Parameters
    ----------
    cohort : ConnectomeCohort
        From :func:`simulate_connectome_cohort`.
    root : path
        Destination folder.

    Returns
    -------
    Path
        ``root``.
    """
    from tmsnet.io.atomic import atomic_write_tsv, ensure_output_dir

    root = ensure_output_dir(root)
    atomic_write_tsv(root / "participants.tsv", cohort.participants)
    atomic_write_tsv(root / "networks.tsv", pd.DataFrame({"name": cohort.labels, "network": cohort.networks}))
    for (_, row), matrix in zip(cohort.rows.iterrows(), cohort.matrices, strict=True):
        sub = row["participant_id"]
        ses = row["session"]
        folder = root / sub / (f"ses-{ses}" if ses != "n/a" else "") / "func"
        folder.mkdir(parents=True, exist_ok=True)
        stem = sub + (f"_ses-{ses}" if ses != "n/a" else "")
        atomic_write_tsv(
            folder / f"{stem}_task-rest_meas-correlation_relmat.tsv",
            pd.DataFrame(matrix, columns=cohort.labels),
        )
    return root
