"""Group statistics on connectomes: GLM designs, edge and network-block tests.

Designs (:func:`make_design`)
-----------------------------
``two-sample`` (e.g. patients vs controls)
    One row per subject; design ``X = [g, 1, covariates]`` with ``g`` = 1 for
    the first group of the contrast and 0 for the second; covariates (age,
    sex, mean FD...) are demeaned, categorical ones one-hot coded (first level
    dropped). The tested effect is the coefficient of ``g``: the covariate-
    adjusted difference of means (group A - group B).
``paired`` (e.g. post vs pre stimulation)
    One row per subject holding the within-subject difference (second
    session - first session); design ``X = [1, covariates]``; the tested
    effect is the intercept: the mean change at the mean covariate values.

Edge and block tests are ordinary least squares t-tests of that coefficient
(``t = c'b / sqrt(s^2 c'(X'X)^-1 c)``, ``df = n - rank(X)``), two-sided
parametric p-values, Benjamini-Hochberg FDR (``scipy.stats.false_discovery_control``).
Effect sizes: the coefficient itself (in edge units, e.g. Fisher z) with its
exact t-based confidence interval, and a standardised effect
``d = b / s`` (Cohen's d for two groups with the pooled residual SD;
Cohen's d_z for paired differences) with the approximate normal interval of
Hedges & Olkin (1985): ``SE(d) = sqrt(c'(X'X)^-1 c + d^2 / (2 df))``.
Component-level inference is in :mod:`tmsnet.networks.nbs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tmsnet.exceptions import InvalidParameterError

__all__ = [
    "Design",
    "edge_statistics",
    "fdr",
    "glm_t",
    "make_design",
    "network_block_statistics",
    "upper_triangle",
]


@dataclass
class Design:
    """A GLM design whose first column is the tested effect.

    Attributes
    ----------
    kind : {"two-sample", "paired"}
        Test type (decides the permutation scheme of NBS: label permutation
        or sign flipping).
    X : ndarray, shape (n, p)
        Design matrix; column 0 is tested.
    columns : list of str
        Column names.
    subjects : list of str
        Subject of each row.
    contrast : tuple of str
        ``(group_a, group_b)`` or ``(session_first, session_second)``.
    description : str
        The tested effect in words.
    n_per_group : dict
        Subjects per group (two-sample) or ``{"pairs": n}``.
    """

    kind: str
    X: np.ndarray
    columns: list[str]
    subjects: list[str]
    contrast: tuple[str, str]
    description: str
    n_per_group: dict[str, int] = field(default_factory=dict)

    @property
    def df(self) -> int:
        """Residual degrees of freedom."""
        return int(self.X.shape[0] - np.linalg.matrix_rank(self.X))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able description (for sidecars)."""
        return {
            "kind": self.kind,
            "columns": self.columns,
            "contrast": list(self.contrast),
            "effect": self.description,
            "n_per_group": self.n_per_group,
            "df": self.df,
            "subjects": self.subjects,
        }


def _covariate_columns(table: pd.DataFrame, covariates: list[str]) -> tuple[np.ndarray, list[str]]:
    blocks, names = [], []
    for cov in covariates:
        if cov not in table.columns:
            raise InvalidParameterError(
                f"Covariate {cov!r} is not a column of participants.tsv (columns: {list(table.columns)})."
            )
        col = table[cov]
        if col.isna().any():
            bad = table.index[col.isna()].tolist()[:5]
            raise InvalidParameterError(
                f"Covariate {cov!r} is missing (n/a) for rows {bad}; fill it in or drop those participants."
            )
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().all():
            v = numeric.to_numpy(float)
            blocks.append((v - v.mean())[:, None])
            names.append(cov)
        else:
            levels = sorted(col.astype(str).unique())
            for level in levels[1:]:
                v = (col.astype(str) == level).to_numpy(float)
                blocks.append((v - v.mean())[:, None])
                names.append(f"{cov}[{level}]")
    if not blocks:
        return np.zeros((len(table), 0)), []
    return np.hstack(blocks), names


def _two_sample_columns(
    table: pd.DataFrame,
    group_column: str,
    contrast: tuple[str, str] | None,
    cov: np.ndarray,
    cov_names: list[str],
) -> tuple[np.ndarray, list[str], dict[str, int], tuple[str, str]]:
    """Design matrix, column names, group sizes and contrast of a two-sample comparison."""
    if group_column not in table.columns:
        raise InvalidParameterError(
            f"participants.tsv has no column {group_column!r}; name the group column (--group-column)."
        )
    groups = table[group_column].astype(str)
    if contrast is None:
        levels = sorted(groups.unique())
        if len(levels) != 2:
            raise InvalidParameterError(
                f"Column {group_column!r} has groups {levels}; give the two to compare (--contrast A B)."
            )
        contrast = (levels[0], levels[1])
    a, b = contrast
    for g in (a, b):
        if (groups == g).sum() < 2:
            raise InvalidParameterError(
                f"Group {g!r} has {(groups == g).sum()} subjects in column {group_column!r}; each "
                "group needs at least 2."
            )
    if not groups.isin([a, b]).all():
        raise InvalidParameterError(
            f"Rows with groups other than {a!r}/{b!r} must be removed before building the design."
        )
    g = (groups == a).to_numpy(float)
    X = np.column_stack([g, np.ones(len(table)), cov])
    names = [f"{group_column}[{a}-{b}]", "intercept", *cov_names]
    n_per = {a: int(g.sum()), b: int((1 - g).sum())}
    return X, names, n_per, (a, b)


def make_design(
    participants: pd.DataFrame,
    *,
    kind: str,
    group_column: str = "group",
    contrast: tuple[str, str] | None = None,
    covariates: list[str] | None = None,
    subject_column: str = "participant_id",
) -> Design:
    """Build the GLM design of a two-sample or paired comparison.

    Parameters
    ----------
    participants : pandas.DataFrame
        One row per subject (in the order of the data to test), with
        ``participant_id``, the group column (two-sample) and covariates.
    kind : {"two-sample", "paired"}
        Test type. For ``paired`` the data rows are within-subject
        differences (second - first session).
    group_column : str
        Column holding the group labels (two-sample).
    contrast : (str, str)
        Two-sample: ``(group_a, group_b)``, effect = A - B (default: the two
        groups in sorted order). Paired: ``(first, second)`` session labels,
        used for the description only.
    covariates : list of str
        Columns to adjust for (numeric ones demeaned, others one-hot).
    subject_column : str
        Subject identifier column.

    Returns
    -------
    Design

    Raises
    ------
    InvalidParameterError
        Unknown kind or column, not exactly two groups, too few subjects.
    """
    covariates = list(covariates or [])
    table = participants.reset_index(drop=True)
    subjects = (
        table[subject_column].astype(str).tolist()
        if subject_column in table.columns
        else [str(i) for i in range(len(table))]
    )
    cov, cov_names = _covariate_columns(table, covariates)
    if kind == "two-sample":
        X, names, n_per, contrast = _two_sample_columns(table, group_column, contrast, cov, cov_names)
        a, b = contrast
        description = f"{a} - {b} (adjusted for {', '.join(covariates) or 'nothing'})"
    elif kind == "paired":
        contrast = contrast or ("first", "second")
        X = np.column_stack([np.ones(len(table)), cov])
        names = ["intercept(change)", *cov_names]
        n_per = {"pairs": len(table)}
        description = (
            f"{contrast[1]} - {contrast[0]} within subjects "
            f"(adjusted for {', '.join(covariates) or 'nothing'})"
        )
    else:
        raise InvalidParameterError(f"Unknown design kind {kind!r}; use 'two-sample' or 'paired'.")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InvalidParameterError(
            f"The design {names} is rank deficient (a covariate is constant or collinear with the "
            "groups); drop that covariate."
        )
    if X.shape[0] - X.shape[1] < 2:
        raise InvalidParameterError(
            f"{X.shape[0]} subjects for {X.shape[1]} model columns leave fewer than 2 degrees of freedom; "
            "add subjects or drop covariates."
        )
    return Design(
        kind=kind,
        X=X,
        columns=names,
        subjects=subjects,
        contrast=tuple(contrast),
        description=description,
        n_per_group=n_per,
    )


def glm_t(Y: np.ndarray, X: np.ndarray, column: int = 0) -> dict[str, np.ndarray]:
    """OLS estimate, standard error and t of one coefficient for every column of Y.

    Parameters
    ----------
    Y : ndarray, shape (n, k)
        Data (one column per edge / block).
    X : ndarray, shape (n, p)
        Full-rank design.
    column : int
        Tested coefficient.

    Returns
    -------
    dict
        ``beta``, ``se``, ``t`` (shape (k,)), ``sigma`` (residual SD),
        ``df`` (int), ``cxx`` (``c'(X'X)^-1 c``).
    """
    Y = np.asarray(Y, dtype=np.float64)
    pinv = np.linalg.pinv(X)
    beta_all = pinv @ Y
    resid = Y - X @ beta_all
    df = X.shape[0] - np.linalg.matrix_rank(X)
    sigma2 = (resid**2).sum(axis=0) / df
    cxx = float(np.linalg.inv(X.T @ X)[column, column])
    se = np.sqrt(sigma2 * cxx)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = beta_all[column] / se
    return {"beta": beta_all[column], "se": se, "t": t, "sigma": np.sqrt(sigma2), "df": df, "cxx": cxx}


def fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``)."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def _effects_table(res: dict[str, np.ndarray], confidence: float) -> pd.DataFrame:
    df = res["df"]
    tcrit = stats.t.ppf(0.5 + confidence / 2.0, df)
    zcrit = stats.norm.ppf(0.5 + confidence / 2.0)
    p = 2.0 * stats.t.sf(np.abs(res["t"]), df)
    d = res["beta"] / res["sigma"]
    se_d = np.sqrt(res["cxx"] + d**2 / (2.0 * df))
    return pd.DataFrame(
        {
            "effect": res["beta"],
            "ci_low": res["beta"] - tcrit * res["se"],
            "ci_high": res["beta"] + tcrit * res["se"],
            "t": res["t"],
            "p": p,
            "p_fdr": fdr(p),
            "d": d,
            "d_ci_low": d - zcrit * se_d,
            "d_ci_high": d + zcrit * se_d,
        }
    )


def upper_triangle(matrices: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Edges above the diagonal of a stack of matrices.

    Parameters
    ----------
    matrices : ndarray, shape (n, R, R)
        Connectivity matrices.

    Returns
    -------
    edges : ndarray, shape (n, R (R - 1) / 2)
    index : (i, j) arrays of the edges' regions (``np.triu_indices(R, 1)``).
    """
    m = np.asarray(matrices, dtype=np.float64)
    iu = np.triu_indices(m.shape[-1], 1)
    return m[:, iu[0], iu[1]], iu


def edge_statistics(
    edges: np.ndarray,
    design: Design,
    *,
    index: tuple[np.ndarray, np.ndarray],
    labels: list[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Edge-wise GLM test with FDR, effect sizes and confidence intervals.

    Parameters
    ----------
    edges : ndarray, shape (n, n_edges)
        Edge values per subject (Fisher z...), rows as ``design.X``.
    design : Design
        From :func:`make_design`.
    index : (i, j)
        Regions of each edge.
    labels : list of str, optional
        Region names.
    confidence : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        One row per edge: ``i``, ``j``, ``region_i``, ``region_j``, ``effect``
        (coefficient, edge units) with ``ci_low``/``ci_high``, ``t``, ``p``,
        ``p_fdr`` (BH over all edges), ``d`` with ``d_ci_low``/``d_ci_high``.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.shape[0] != design.X.shape[0]:
        raise InvalidParameterError(
            f"{edges.shape[0]} data rows but the design has {design.X.shape[0]} subjects."
        )
    table = _effects_table(glm_t(edges, design.X, 0), confidence)
    i, j = index
    names = labels or [str(k) for k in range(int(max(i.max(), j.max())) + 1)]
    table.insert(0, "region_j", [names[k] for k in j])
    table.insert(0, "region_i", [names[k] for k in i])
    table.insert(0, "j", j)
    table.insert(0, "i", i)
    return table


def network_block_statistics(
    matrices: np.ndarray,
    networks: np.ndarray,
    design: Design,
    *,
    order: tuple[str, ...] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """GLM test on mean connectivity of each network block (within and between).

    Parameters
    ----------
    matrices : ndarray, shape (n, R, R)
        Edge values per subject (Fisher z...; for ``paired``, differences).
    networks : array of str, shape (R,)
        Network of each region.
    design : Design
        From :func:`make_design`.
    order : tuple of str, optional
        Network order.
    confidence : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        One row per block (``network_a``, ``network_b``; ``a == b`` for
        within-network), with the columns of :func:`edge_statistics`; FDR is
        over the blocks.
    """
    from tmsnet.networks.summaries import network_blocks

    nets = np.asarray(networks).astype(str)
    blocks = [network_blocks(m, nets, order=order) for m in np.asarray(matrices)]
    names = list(blocks[0].index)
    ia, ib = np.triu_indices(len(names))
    values = np.array([b.to_numpy()[ia, ib] for b in blocks])
    table = _effects_table(glm_t(values, design.X, 0), confidence)
    table.insert(0, "network_b", [names[k] for k in ib])
    table.insert(0, "network_a", [names[k] for k in ia])
    return table
