"""Targeting methods: the rules that turn cleaned data into one DLPFC target.

Every method is a function ``method(context, *options) -> Target`` registered
under a name with :func:`register_method`, together with the classes of the
options it reads (frozen :class:`~tmsnet.utils.params.Parameters`, owned by the
method's module) and a one-line description. The registry is the only list of
methods: ``tmsnet target --method`` (choices and the flags of every options
class), the BIDS-App (``--method``, ``--option KEY=VALUE``), ``--method all``
(:func:`available_methods`, one order everywhere) and the written targets (one
``*_desc-<method>_target.json`` each, which the report lists) all read it, so
adding a method is one new module that registers itself (imported by
:mod:`tmsnet.targeting`, or by the user before the command runs).

The :class:`TargetingContext` holds the cleaned data once, so running several
methods on the same scan (``--method all``) never reloads or re-cleans it; the
seed connectivity map is computed once and cached.

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

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError, UnknownMethodError
from tmsnet.targeting.connectivity import correlation_with_seed, seed_time_series
from tmsnet.targeting.results import Target
from tmsnet.utils.params import Parameters, param


@dataclass(frozen=True)
class SurfaceElements:
    """The vertices of a surface scan, as the methods see them (instead of a voxel grid).

    Attributes
    ----------
    coords_mm : ndarray, shape (n, 3)
        Coordinates of the data's vertices on the template surface (mm).
    adjacency : scipy.sparse matrix, shape (n, n)
        Mesh neighbours (from the faces; the two hemispheres are not connected).
    hemisphere : ndarray of str, shape (n,)
        ``"L"`` or ``"R"``.
    vertex : ndarray of int, shape (n,)
        Vertex index on that hemisphere's mesh.
    """

    coords_mm: np.ndarray
    adjacency: Any
    hemisphere: np.ndarray
    vertex: np.ndarray

    def subset(self, keep: np.ndarray) -> SurfaceElements:
        """The vertices ``keep`` (bool, shape (n,)) with their adjacency among themselves."""
        index = np.flatnonzero(keep)
        return SurfaceElements(coords_mm=self.coords_mm[index],
                               adjacency=self.adjacency[index][:, index].tocsr(),
                               hemisphere=self.hemisphere[index], vertex=self.vertex[index])


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
    surface : SurfaceElements, optional
        For a surface scan: the columns of ``data`` are these vertices; then
        ``brain_mask`` is ``np.ones(n, bool)`` and ``affine`` is not used.
        Clusters follow the mesh adjacency, coordinates are the template
        surface's, and a target's ``voxel_ijk`` is ``(vertex, -1, -1)`` with the
        hemisphere in its details.
    """

    data: np.ndarray
    brain_mask: np.ndarray
    affine: np.ndarray
    seed_voxels: np.ndarray
    search_voxels: np.ndarray
    space: str
    seed_weights: np.ndarray | None = None
    surface: SurfaceElements | None = None
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
        """World coordinates (mm) of brain voxels or vertices (all, or ``index`` of them)."""
        if self.surface is not None:
            return self.surface.coords_mm if index is None else self.surface.coords_mm[index]
        ijk = self.voxel_ijk if index is None else self.voxel_ijk[index]
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def element_index(self, index: int) -> tuple[int, int, int]:
        """Grid indices of brain voxel ``index``, or ``(vertex, -1, -1)`` on a surface."""
        if self.surface is not None:
            return (int(self.surface.vertex[index]), -1, -1)
        return tuple(int(v) for v in self.voxel_ijk[index])

    def element_details(self, index: int) -> dict[str, Any]:
        """``{"vertex", "hemisphere"}`` of element ``index`` on a surface, else nothing."""
        if self.surface is None:
            return {}
        return {"vertex": int(self.surface.vertex[index]),
                "hemisphere": str(self.surface.hemisphere[index])}

    def clusters(self, members: np.ndarray) -> np.ndarray:
        """Connected-component labels (1..k) of the brain elements ``members`` (int index).

        Voxels: 26-connectivity on the grid; vertices: the mesh adjacency.
        """
        if self.surface is not None:
            from scipy.sparse.csgraph import connected_components

            graph = self.surface.adjacency[members][:, members]
            return connected_components(graph, directed=False)[1] + 1
        grid = np.zeros(self.brain_mask.shape, dtype=bool)
        ijk = self.voxel_ijk[members]
        grid[tuple(ijk.T)] = True
        labels, _ = ndimage.label(grid, structure=np.ones((3, 3, 3), dtype=bool))
        return labels[tuple(ijk.T)]

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
        surface = self.surface
        if voxels is None:
            mask, affine, keep = self.brain_mask, self.affine, slice(None)
            data = self.data[frames_]
        elif surface is not None:
            keep = np.asarray(voxels, dtype=bool)
            surface, mask, affine = surface.subset(keep), np.ones(int(keep.sum()), bool), self.affine
            data = self.data[:, keep][frames_]
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
            surface=surface,
        )
        if self.seed_weights is not None:
            sub._cache["seedmap_ts"] = self.seedmap_time_series()[frames_]
        return sub


TargetingMethod = Callable[..., Target]


@dataclass(frozen=True)
class Preparation:
    """What a method needs loaded onto the scan's grid before it runs (see :class:`MethodSpec`).

    Attributes
    ----------
    context_fields : dict
        Extra :class:`TargetingContext` fields (e.g. ``seed_weights``).
    record : dict or None
        Recorded in the result's parameters under the method's name.
    inputs : dict
        Extra input files by role (hashed in every sidecar).
    """

    context_fields: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    inputs: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    """One registered targeting method.

    Attributes
    ----------
    name : str
        What ``--method`` takes.
    function : callable
        ``function(context, *options) -> Target``, one options object per class
        of ``options``, in that order.
    options : tuple of type
        The :class:`~tmsnet.utils.params.Parameters` classes the method reads;
        the command line offers their fields as flags.
    description : str
        One line for ``--help`` and the documentation.
    rank : int
        Position in :func:`available_methods` (``--method all`` and report order;
        the first is the headline target); ties keep registration order.
    prepare : callable, optional
        ``prepare(grid, space, *options) -> Preparation``: inputs loaded once per
        scan before the method runs (the seedmap method's group map).
    """

    name: str
    function: TargetingMethod
    options: tuple[type, ...] = ()
    description: str = ""
    rank: int = 100
    prepare: Callable[..., Preparation] | None = None


_METHODS: dict[str, MethodSpec] = {}

#: What ``--method`` takes, and the job's default, to let the job pick the method itself
#: (:func:`tmsnet.targeting.workflow.choose_method`); never the name of a registered method.
AUTO_METHOD = "auto"


def register_method(
    name: str,
    *,
    options: Sequence[type] = (),
    description: str = "",
    rank: int = 100,
    prepare: Callable[..., Preparation] | None = None,
) -> Callable[[TargetingMethod], TargetingMethod]:
    """Decorator that makes a function available as the targeting method ``name``.

    Parameters
    ----------
    name : str
        The method's name on the command line and in file names.
    options : sequence of type
        :class:`~tmsnet.utils.params.Parameters` classes whose objects the
        function takes after the context (in this order).
    description : str
        One line for ``--help``.
    rank : int
        Order of ``--method all`` (lower first; default 100, after the built-in ones).
    prepare : callable, optional
        See :class:`MethodSpec`.
    """

    def decorator(func: TargetingMethod) -> TargetingMethod:
        if name in _METHODS:
            raise ValueError(f"A targeting method named {name!r} is already registered.")
        if name in ("all", AUTO_METHOD):
            raise ValueError(f"{name!r} is reserved for --method {name}.")
        _METHODS[name] = MethodSpec(name=name, function=func, options=tuple(options),
                                    description=description, rank=rank, prepare=prepare)
        return func

    return decorator


def available_methods() -> tuple[str, ...]:
    """Names of the registered methods in ``--method all`` order (by rank, then registration)."""
    order = {name: i for i, name in enumerate(_METHODS)}
    return tuple(sorted(_METHODS, key=lambda n: (_METHODS[n].rank, order[n])))


def method_spec(name: str) -> MethodSpec:
    """The registry entry of ``name``.

    Raises
    ------
    UnknownMethodError
        If no method has that name.
    """
    if name not in _METHODS:
        raise UnknownMethodError(
            f"Unknown targeting method {name!r}; choose one of {', '.join(available_methods())}."
        )
    return _METHODS[name]


def get_method(name: str) -> TargetingMethod:
    """The function registered as ``name`` (see :func:`method_spec`)."""
    return method_spec(name).function


def resolve_methods(names: Iterable[str]) -> list[str]:
    """Method names with ``all`` expanded (:func:`available_methods`) and repeats dropped.

    ``[AUTO_METHOD]`` (``"auto"``: the job picks the method) is returned as it is.

    Raises
    ------
    InvalidParameterError
        If no method is given, or ``auto`` is given with other names.
    UnknownMethodError
        If a name is not registered.
    """
    names = list(names)
    if AUTO_METHOD in names:
        if set(names) != {AUTO_METHOD}:
            raise InvalidParameterError(
                f"'{AUTO_METHOD}' lets the job pick one method itself; give it alone, or name the "
                f"methods to run ({', '.join(available_methods())} or all).")
        return [AUTO_METHOD]
    expanded = list(available_methods()) if "all" in names else names
    methods = list(dict.fromkeys(expanded))
    if not methods:
        raise InvalidParameterError("Give at least one targeting method.")
    for name in methods:
        method_spec(name)
    return methods


def options_classes(methods: Iterable[str] | None = None) -> tuple[type, ...]:
    """The options classes of ``methods`` (default: every registered method), each once."""
    names = available_methods() if methods is None else methods
    classes: dict[type, None] = {}
    for name in names:
        for cls in method_spec(name).options:
            classes[cls] = None
    return tuple(classes)


def method_arguments(name: str, given: Iterable[Any] = ()) -> tuple[Any, ...]:
    """The options objects method ``name`` takes, picked by class from ``given`` (else defaults)."""
    by_class = {type(obj): obj for obj in given}
    return tuple(by_class[cls] if cls in by_class else cls() for cls in method_spec(name).options)


def run_method(name: str, context: TargetingContext, *options: Any) -> Target:
    """Run the method ``name`` on ``context``; ``options`` objects it does not read are ignored."""
    return get_method(name)(context, *method_arguments(name, options))


def _search_values(context: TargetingContext, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.flatnonzero(context.search_voxels & np.isfinite(r))
    if index.size == 0:
        raise EmptyRegionError(
            "The search region holds no voxel with a finite connectivity value."
        )
    return index, r[index]


@register_method("peak", description="the most anticorrelated voxel (Fox 2012)", rank=40)
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
    return Target(
        method=method,
        coordinate_mm=context.voxel_mm(best),
        space=context.space,
        voxel_ijk=context.element_index(best),
        r_at_target=float(r[best]),
        connectivity_r=r,
        details={"n_search_voxels": int(index.size), **context.element_details(best)},
        parameters={},
    )


def target_on_cluster(
    context: TargetingContext,
    r: np.ndarray,
    *,
    method: str,
    members: np.ndarray,
    xyz: np.ndarray,
    centroid: np.ndarray,
    details: dict[str, Any],
    parameters: dict[str, Any],
) -> Target:
    """The target at a cluster's centroid, recorded on the member voxel nearest to it.

    Parameters
    ----------
    context : TargetingContext
        The scan's grid and search region.
    r : ndarray, shape (n_brain_voxels,)
        Connectivity map the cluster was drawn from.
    method : str
        Method name.
    members : ndarray of int
        Brain-voxel indices of the cluster.
    xyz : ndarray, shape (n_members, 3)
        Their coordinates (mm), ``context.voxel_mm(members)``.
    centroid : ndarray, shape (3,)
        The target coordinate (mm).
    details, parameters : dict
        Method-specific records of the target.

    Returns
    -------
    Target
    """
    nearest = members[int(np.argmin(np.sum((xyz - centroid) ** 2, axis=1)))]
    if context.surface is not None:  # on a surface the target is the vertex nearest the centroid
        details = {**details, "centroid_mm": [float(v) for v in centroid],
                   **context.element_details(nearest)}
        centroid = context.voxel_mm(nearest)
    return Target(
        method=method,
        coordinate_mm=centroid,
        space=context.space,
        voxel_ijk=context.element_index(nearest),
        r_at_target=float(r[nearest]),
        connectivity_r=r,
        details=details,
        parameters=parameters,
    )


@dataclass(frozen=True)
class ClusterOptions(Parameters):
    """Options of the cluster rule (the ``cluster`` method, and the ``seedmap`` method's default rule)."""

    cluster_percentile: float = param(
        10.0, low=0, low_inclusive=False, high=100,
        help="cluster method: share of the negative r values kept", units="%")
    weighted_centroid: bool = param(False, help="cluster method: weight the centroid by |r|")


@register_method("cluster", options=(ClusterOptions,), rank=10,
                 description="centroid of the largest cluster of the most anticorrelated voxels")
def cluster_target(context: TargetingContext, options: ClusterOptions | None = None) -> Target:
    """Centroid of the largest cluster of the most anticorrelated voxels.

    Following contarg's cluster rule (REFERENCES.md section 1): among the
    search-region voxels with negative r, keep the most negative
    ``cluster_percentile`` % (r at or below that percentile of the negative
    values), label 26-connected clusters on the voxel grid, and take the
    centre of mass of the largest one (ties: the one with the lowest summed r).

    Parameters
    ----------
    context : TargetingContext
        Cleaned data, masks and grid.
    options : ClusterOptions, optional
        ``cluster_percentile`` (default 10 %) and ``weighted_centroid`` (weight
        the centroid by ``|r|``; default False, the unweighted centroid of contarg).

    Returns
    -------
    Target
        ``coordinate_mm`` is the centroid (not necessarily a voxel centre);
        ``voxel_ijk`` / ``r_at_target`` refer to the cluster voxel nearest to it.

    Raises
    ------
    EmptyRegionError
        If the search region has no negative correlation at all.
    """
    return cluster_on_map(context, context.seed_connectivity(), method="cluster", options=options)


def cluster_on_map(
    context: TargetingContext,
    r: np.ndarray,
    *,
    method: str,
    options: ClusterOptions | None = None,
) -> Target:
    """The cluster rule of :func:`cluster_target` on any connectivity map ``r``."""
    options = ClusterOptions() if options is None else options
    percentile = options.cluster_percentile
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
    kept_labels = context.clusters(kept)
    n_clusters = int(kept_labels.max()) if kept_labels.size else 0
    sizes = np.bincount(kept_labels, minlength=n_clusters + 1)[1:]
    sums = np.bincount(kept_labels, weights=r[kept], minlength=n_clusters + 1)[1:]
    # Largest cluster; among equal sizes, the most negative summed r.
    order = np.lexsort((sums, -sizes))
    best_label = int(order[0]) + 1
    members = kept[kept_labels == best_label]
    xyz = context.voxel_mm(members)
    w = np.abs(r[members]).astype(np.float64) if options.weighted_centroid else np.ones(members.size)
    centroid = (xyz * w[:, None]).sum(axis=0) / w.sum()
    return target_on_cluster(
        context, r, method=method, members=members, xyz=xyz, centroid=centroid,
        details={
            "threshold_r": threshold,
            "n_voxels_below_threshold": int(kept.size),
            "n_clusters": int(n_clusters),
            "cluster_size_voxels": int(members.size),
            "cluster_mean_r": float(r[members].mean()),
            "cluster_min_r": float(r[members].min()),
            "n_search_voxels": int(index.size),
        },
        parameters={"percentile": float(percentile), "weighted": bool(options.weighted_centroid)},
    )
