"""Targeting methods: the rules that turn cleaned data into one DLPFC target.

Every method is a plain function ``method(context, **options) -> Target``
registered under a name with :func:`register_method`. The
:class:`TargetingContext` holds the cleaned data once, so running several
methods on the same scan (``--method all``) never reloads or re-cleans it; the
seed connectivity map is computed once and cached. Adding a method (the
``seedmap`` and ``hierarchical`` methods of REFERENCES.md section 1) is a new
decorated function in this module or another, not a rewrite.

Implemented here (REFERENCES.md section 1):

``peak``
    Fox et al. 2012 (Biol Psychiatry 72:595): the single most anticorrelated
    voxel of the search region. Known to be unstable (about 30 mm test-retest
    scatter, Ning et al. 2019).
``cluster``
    Cluster centroid (contarg's rule): keep the most negative 10 % of the
    negative r values inside the search region, take the largest
    26-connected cluster, target = its centre of mass (unweighted by default;
    correlation-weighted as an option).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError, UnknownMethodError
from tmsnet.targeting.connectivity import correlation_with_seed, seed_time_series


@dataclass
class TargetingContext:
    """Everything a targeting method may use, computed once per scan.

    Attributes
    ----------
    data : ndarray, shape (n_frames, n_voxels)
        Cleaned time series of the brain voxels (float32).
    brain_mask : ndarray of bool, shape (X, Y, Z)
        Which grid voxels are the columns of ``data`` (C order of
        ``brain_mask.nonzero()``).
    affine : ndarray, shape (4, 4)
        Voxel-to-mm affine of the grid.
    seed_voxels : ndarray of bool, shape (n_voxels,)
        The seed ROI (e.g. sgACC) among the brain voxels.
    search_voxels : ndarray of bool, shape (n_voxels,)
        The DLPFC search region among the brain voxels.
    space : str
        Name of the coordinate space of ``affine`` (e.g. MNI152NLin2009cAsym).
    seed_weights : ndarray, shape (n_voxels,), optional
        Group seedmap values on the brain voxels (the ``seedmap`` method, Fox et
        al. 2013); NaN or 0 where a voxel takes no part.
    """

    data: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    seed_voxels: np.ndarray
    search_voxels: np.ndarray
    space: str
    seed_weights: np.ndarray | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n_voxels = int(self.brain_mask.sum())
        if self.data.ndim != 2 or self.data.shape[1] != n_voxels:
            raise InvalidParameterError(
                f"Cleaned data must be (n_frames, {n_voxels}) for this brain mask, got "
                f"{self.data.shape}."
            )
        for name in ("seed_voxels", "search_voxels"):
            if getattr(self, name).shape != (n_voxels,):
                raise InvalidParameterError(f"{name} must have one entry per brain voxel.")
        if self.seed_weights is not None and self.seed_weights.shape != (n_voxels,):
            raise InvalidParameterError("seed_weights must have one entry per brain voxel.")

    @property
    def voxel_ijk(self) -> np.ndarray:
        """Grid indices ``(n_voxels, 3)`` of the brain voxels."""
        if "ijk" not in self._cache:
            self._cache["ijk"] = np.argwhere(self.brain_mask)
        return self._cache["ijk"]

    def voxel_mm(self, index: np.ndarray | slice | None = None) -> np.ndarray:
        """World coordinates (mm) of brain voxels (all, or ``index`` of them)."""
        ijk = self.voxel_ijk if index is None else self.voxel_ijk[index]
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def seed_connectivity(self) -> np.ndarray:
        """Pearson r of every brain voxel with the mean seed time series (cached)."""
        if "seed_r" not in self._cache:
            seed = seed_time_series(self.data, self.seed_voxels)
            self._cache["seed_r"] = correlation_with_seed(self.data, seed)
        return self._cache["seed_r"]

    def seedmap_time_series(self) -> np.ndarray:
        """Seedmap-weighted average of all brain voxels' time series (cached).

        ``sum_v w_v x_v(t) / sum_v |w_v|`` over the voxels with a finite,
        non-zero group-seedmap weight ``w`` (Fox et al. 2013, NeuroImage 66:151;
        Cash et al. 2021), computed in float64 by column chunks.

        Raises
        ------
        InvalidParameterError
            If the context has no seedmap.
        EmptyRegionError
            If every weight is zero or NaN.
        """
        if "seedmap_ts" not in self._cache:
            if self.seed_weights is None:
                raise InvalidParameterError(
                    "The seedmap method needs a group seedmap (seed_weights); give --seedmap IMAGE "
                    "or use the bundled one."
                )
            w = np.asarray(self.seed_weights, dtype=np.float64)
            use = np.flatnonzero(np.isfinite(w) & (w != 0))
            if use.size == 0:
                raise EmptyRegionError(
                    "The group seedmap is zero or NaN over the whole brain mask; check that it is "
                    "in the same space as the BOLD."
                )
            total = np.zeros(self.data.shape[0], dtype=np.float64)
            for start in range(0, use.size, 32768):
                cols = use[start:start + 32768]
                total += self.data[:, cols].astype(np.float64) @ w[cols]
            self._cache["seedmap_ts"] = total / np.abs(w[use]).sum()
        return self._cache["seedmap_ts"]

    def seedmap_connectivity(self) -> np.ndarray:
        """Pearson r of every brain voxel with :meth:`seedmap_time_series` (cached)."""
        if "seedmap_r" not in self._cache:
            self._cache["seedmap_r"] = correlation_with_seed(self.data, self.seedmap_time_series())
        return self._cache["seedmap_r"]

    def subset(self, *, frames: np.ndarray | None = None,
               voxels: np.ndarray | None = None) -> TargetingContext:
        """A context on some frames and some voxels, for resampling.

        Seed time series are linear in the frames, so the seedmap-weighted
        seed of a frame subset is the same subset of the full seed: it is
        carried over (resampled) rather than recomputed, which lets ``voxels``
        drop every voxel outside the seed and the search region.

        Parameters
        ----------
        frames : ndarray of int, optional
            Frame indices (repeats allowed, as in a bootstrap); default all.
        voxels : ndarray of bool, shape (n_voxels,), optional
            Brain voxels to keep; default all. Must contain the seed and search
            region for the methods to see the same regions.

        Returns
        -------
        TargetingContext
            A new context. With ``voxels``, its grid is cropped to their bounding
            box (``brain_mask`` and ``affine`` change together, so millimetre
            coordinates are unchanged; grid indices are not comparable).
        """
        frames_ = slice(None) if frames is None else np.asarray(frames)
        if voxels is None:
            mask, affine, keep = self.brain_mask, self.affine, slice(None)
            data = self.data[frames_]
        else:
            keep = np.asarray(voxels, dtype=bool)
            # Crop the grid to the kept voxels' bounding box (affine shifted to
            # match), so that grid operations (cluster labelling) stay small.
            ijk = self.voxel_ijk[keep]
            low = ijk.min(axis=0) - 1 if ijk.size else np.zeros(3, int)
            low = np.maximum(low, 0)
            high = ijk.max(axis=0) + 2 if ijk.size else np.ones(3, int)
            mask = np.zeros(tuple(int(v) for v in high - low), dtype=bool)
            mask[tuple((ijk - low).T)] = True
            affine = self.affine.copy()
            affine[:3, 3] = self.affine[:3, :3] @ low + self.affine[:3, 3]
            data = self.data[:, keep][frames_]  # columns first: far fewer than the frames x brain
        sub = TargetingContext(
            data=np.ascontiguousarray(data), brain_mask=mask, affine=affine,
            seed_voxels=self.seed_voxels[keep], search_voxels=self.search_voxels[keep],
            space=self.space,
            seed_weights=None if self.seed_weights is None else self.seed_weights[keep],
        )
        if self.seed_weights is not None:
            sub._cache["seedmap_ts"] = self.seedmap_time_series()[frames_]
        return sub


@dataclass
class Target:
    """One target chosen by one method.

    Attributes
    ----------
    method : str
        Registered method name.
    coordinate_mm : ndarray, shape (3,)
        Target in mm, in ``space``.
    space : str
        Coordinate space of ``coordinate_mm``.
    voxel_ijk : tuple of int
        Grid voxel that represents the target (the target voxel itself, or for a
        centroid the cluster voxel nearest to it).
    r_at_target : float
        Seed correlation at ``voxel_ijk``.
    connectivity_r : ndarray, shape (n_voxels,)
        The map the target was read from (brain voxels).
    details : dict
        Method-specific facts (cluster size, threshold, ...), JSON-able.
    parameters : dict
        The options the method ran with, JSON-able.
    """

    method: str
    coordinate_mm: np.ndarray
    space: str
    voxel_ijk: tuple[int, int, int]
    r_at_target: float
    connectivity_r: np.ndarray = field(repr=False)
    details: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


TargetingMethod = Callable[..., Target]
_METHODS: dict[str, TargetingMethod] = {}


def register_method(name: str) -> Callable[[TargetingMethod], TargetingMethod]:
    """Decorator that makes a function available as a targeting method ``name``."""

    def decorator(func: TargetingMethod) -> TargetingMethod:
        if name in _METHODS:
            raise ValueError(f"A targeting method named {name!r} is already registered.")
        _METHODS[name] = func
        return func

    return decorator


def available_methods() -> tuple[str, ...]:
    """Names of the registered targeting methods, in registration order."""
    return tuple(_METHODS)


def get_method(name: str) -> TargetingMethod:
    """The function registered as ``name``.

    Raises
    ------
    UnknownMethodError
        If no method has that name.
    """
    if name not in _METHODS:
        raise UnknownMethodError(
            f"Unknown targeting method {name!r}; choose one of {', '.join(_METHODS)}."
        )
    return _METHODS[name]


def run_method(name: str, context: TargetingContext, **options: Any) -> Target:
    """Run the method ``name`` on ``context`` with ``options``."""
    return get_method(name)(context, **options)


def _search_values(context: TargetingContext, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.flatnonzero(context.search_voxels & np.isfinite(r))
    if index.size == 0:
        raise EmptyRegionError(
            "The search region holds no voxel with a finite connectivity value."
        )
    return index, r[index]


@register_method("peak")
def peak_target(context: TargetingContext) -> Target:
    """The most anticorrelated voxel of the search region (Fox et al. 2012).

    Parameters
    ----------
    context : TargetingContext
        Cleaned data, masks and grid.

    Returns
    -------
    Target
        ``coordinate_mm`` is the centre of the voxel with the lowest r.
    """
    return peak_on_map(context, context.seed_connectivity(), method="peak")


def peak_on_map(context: TargetingContext, r: np.ndarray, *, method: str) -> Target:
    """The peak rule on any connectivity map ``r`` (one value per brain voxel)."""
    index, values = _search_values(context, r)
    best = index[int(np.argmin(values))]
    ijk = tuple(int(v) for v in context.voxel_ijk[best])
    return Target(
        method=method,
        coordinate_mm=context.voxel_mm(best),
        space=context.space,
        voxel_ijk=ijk,
        r_at_target=float(r[best]),
        connectivity_r=r,
        details={"n_search_voxels": int(index.size)},
        parameters={},
    )


@register_method("cluster")
def cluster_target(
    context: TargetingContext,
    *,
    percentile: float = 10.0,
    weighted: bool = False,
) -> Target:
    """Centroid of the largest cluster of the most anticorrelated voxels.

    Following contarg's cluster rule (REFERENCES.md section 1): among the
    search-region voxels with negative r, keep the most negative
    ``percentile`` % (r at or below the ``percentile``-th percentile of the
    negative values), label 26-connected clusters on the voxel grid, and take
    the centre of mass of the largest one (ties: the one with the lowest
    summed r).

    Parameters
    ----------
    context : TargetingContext
        Cleaned data, masks and grid.
    percentile : float
        Share (0-100, exclusive of 0) of the negative values kept; default 10.
    weighted : bool
        If True, weight the centroid by ``|r|`` (a correlation-weighted
        centroid); default False, the unweighted centroid of contarg.

    Returns
    -------
    Target
        ``coordinate_mm`` is the centroid (not necessarily a voxel centre);
        ``voxel_ijk`` / ``r_at_target`` refer to the cluster voxel nearest to it.

    Raises
    ------
    InvalidParameterError
        If ``percentile`` is outside (0, 100].
    EmptyRegionError
        If the search region has no negative correlation at all.
    """
    return cluster_on_map(context, context.seed_connectivity(), method="cluster",
                          percentile=percentile, weighted=weighted)


def cluster_on_map(
    context: TargetingContext,
    r: np.ndarray,
    *,
    method: str,
    percentile: float = 10.0,
    weighted: bool = False,
) -> Target:
    """The cluster rule of :func:`cluster_target` on any connectivity map ``r``."""
    if not 0 < percentile <= 100:
        raise InvalidParameterError(f"percentile must be in (0, 100], got {percentile}.")
    index, values = _search_values(context, r)
    negative = values < 0
    if not negative.any():
        raise EmptyRegionError(
            "No voxel of the search region is anticorrelated with the seed, so the cluster "
            "method has nothing to cluster. Check the seed and the cleaning (global signal "
            "regression shifts correlations), or use --method peak to see the least positive "
            "voxel."
        )
    threshold = float(np.percentile(values[negative], percentile))
    kept = index[values <= threshold]
    grid = np.zeros(context.brain_mask.shape, dtype=bool)
    kept_ijk = context.voxel_ijk[kept]
    grid[tuple(kept_ijk.T)] = True
    labels, n_clusters = ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
    kept_labels = labels[tuple(kept_ijk.T)]
    sizes = np.bincount(kept_labels, minlength=n_clusters + 1)[1:]
    sums = np.bincount(kept_labels, weights=r[kept], minlength=n_clusters + 1)[1:]
    # Largest cluster; among equal sizes, the most negative summed r.
    order = np.lexsort((sums, -sizes))
    best_label = int(order[0]) + 1
    members = kept[kept_labels == best_label]
    xyz = context.voxel_mm(members)
    w = np.abs(r[members]).astype(np.float64) if weighted else np.ones(members.size)
    centroid = (xyz * w[:, None]).sum(axis=0) / w.sum()
    nearest = members[int(np.argmin(np.sum((xyz - centroid) ** 2, axis=1)))]
    return Target(
        method=method,
        coordinate_mm=centroid,
        space=context.space,
        voxel_ijk=tuple(int(v) for v in context.voxel_ijk[nearest]),
        r_at_target=float(r[nearest]),
        connectivity_r=r,
        details={
            "threshold_r": threshold,
            "n_voxels_below_threshold": int(kept.size),
            "n_clusters": int(n_clusters),
            "cluster_size_voxels": int(members.size),
            "cluster_mean_r": float(r[members].mean()),
            "cluster_min_r": float(r[members].min()),
            "n_search_voxels": int(index.size),
        },
        parameters={"percentile": float(percentile), "weighted": bool(weighted)},
    )
