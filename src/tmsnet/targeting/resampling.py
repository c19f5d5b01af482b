"""Running a targeting method on pieces of a scan and on their bootstrap resamples.

The uncertainty of a target (:mod:`tmsnet.targeting.uncertainty`) asks for the same
thing many times over: the method's target on a selection of the cleaned frames. A
:class:`Piece` is a stretch of the scan (all frames, one half, the first quarter...)
with the resamples drawn from it; :func:`targets_of` returns, for each piece, its own
target (when asked) and every resample's, as plain ``(x, y, z, r)`` tuples.

How they are computed depends on the method:

* the methods that read nothing of a resample but its seed-correlation maps
  (:data:`RESAMPLED_MAPS`: ``peak``, ``cluster``, ``seedmap``) run here, piece by
  piece, their maps computed for a batch of resamples at once from frame counts
  (:func:`tmsnet.targeting.connectivity.resampled_correlations`);
* the others (``hierarchical``, which clusters the voxels of every resample) recompute
  everything on each resample. With ``n_jobs > 1`` every run of every piece, the
  pieces' own targets included, goes into **one** pool of forked processes, in
  contiguous chunks (one fork per job rather than one per piece, and no piece's
  target computed on one core while the other waits). A resample of a piece is the
  frame selection ``piece.frames[draw]`` of the analysis context, the same array as
  ``context.subset(frames=piece.frames).subset(frames=draw)``, so the targets are
  those of the serial loop (``tests/test_targeting_uncertainty.py``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tmsnet.exceptions import EmptyRegionError
from tmsnet.targeting.connectivity import resampled_correlations, seed_time_series
from tmsnet.targeting.methods import TargetingContext, get_method
from tmsnet.targeting.results import Target
from tmsnet.utils.scratch import reuse_scratch

#: Methods that read nothing of a resample but its seed-correlation maps, and the
#: context cache entries they read: their resamples' maps are computed together from
#: frame counts (:func:`tmsnet.targeting.connectivity.resampled_correlations`) instead
#: of one correlation of the resampled data each. False computes every map directly.
RESAMPLED_MAPS: dict[str, tuple[str, ...]] = {
    "peak": ("seed_r",), "cluster": ("seed_r",), "seedmap": ("seedmap_r",)}
#: Use :data:`RESAMPLED_MAPS` (set False to run every resample the direct way).
FAST_RESAMPLED_MAPS = True
#: Resamples whose maps are computed in one batch (bounds memory to a few
#: ``batch x n_voxels`` float64 arrays).
RESAMPLE_BATCH = 100
#: Chunks per worker process (contiguous runs; more chunks even out the last ones).
CHUNKS_PER_WORKER = 2

#: (x, y, z, r at target) of one target; None where the method found none.
Found = tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Piece:
    """A selection of a scan's frames and the bootstrap resamples drawn from it.

    Attributes
    ----------
    frames : ndarray of int or None
        Frame indices of the piece in the context (None: every frame).
    draws : list of ndarray of int
        Each resample, as frame indices into the piece.
    point : bool
        Whether the method also runs on the piece itself.
    """

    frames: np.ndarray | None = None
    draws: list[np.ndarray] = field(default_factory=list)
    point: bool = False


def batched(method: str) -> bool:
    """Whether ``method``'s resamples read batched seed maps (:data:`RESAMPLED_MAPS`)."""
    return bool(RESAMPLED_MAPS.get(method)) and FAST_RESAMPLED_MAPS


def run_method(method: Callable[..., Target], context: TargetingContext,
               options: tuple[Any, ...]) -> Target | None:
    """The method's target on ``context``; None when a region is empty."""
    try:
        return method(context, *options)
    except EmptyRegionError:
        return None


def found(target: Target | None) -> Found:
    """The :data:`Found` tuple of a target."""
    if target is None:
        return None
    x, y, z = (float(v) for v in target.coordinate_mm)
    return x, y, z, float(target.r_at_target)


def targets_of(method: str, context: TargetingContext, options: tuple[Any, ...],
               pieces: Sequence[Piece], *, n_jobs: int = 1, progress: bool = False,
               ) -> list[tuple[Found, list[Found]]]:
    """Each piece's target (None unless ``piece.point``) and its resamples' targets.

    Parameters
    ----------
    method : str
        Registered method name.
    context : TargetingContext
        The analysis context (seed and search voxels only,
        :func:`tmsnet.targeting.uncertainty.analysis_context`).
    options : tuple
        The method's options objects, complete (``method_arguments``).
    pieces : sequence of Piece
        What to run.
    n_jobs : int
        Processes for a method outside :data:`RESAMPLED_MAPS` (one pool for all pieces).
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    list of (Found, list of Found)
        In the order of ``pieces``.
    """
    if n_jobs > 1 and not batched(method):
        return _targets_in_processes(method, context, options, pieces, n_jobs, progress)
    function = get_method(method)
    results = []
    for piece in pieces:
        sub = context if piece.frames is None else context.subset(frames=piece.frames)
        point = found(run_method(function, sub, options)) if piece.point else None
        clouds = resamples_here(method, sub, options, piece.draws, progress) if piece.draws else []
        results.append((point, clouds))
    return results


def _resampled_maps(context: TargetingContext, method: str,
                    draws: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The seed-correlation maps ``method`` reads, for each of the resamples ``draws``.

    Keyed as the context caches them (``seed_r``, ``seedmap_r``), each
    ``(len(draws), n_voxels)``; empty for a method not in :data:`RESAMPLED_MAPS`
    (it then computes what it needs on each resample itself).
    """
    if not batched(method):
        return {}
    keys = RESAMPLED_MAPS[method]
    seeds = {}
    try:
        if "seed_r" in keys:
            seeds["seed_r"] = seed_time_series(context.data, context.seed_voxels)
        if "seedmap_r" in keys:
            seeds["seedmap_r"] = context.seedmap_time_series()
    except EmptyRegionError:  # no seed: each resample fails the direct way, as it should
        return {}
    return resampled_correlations(context.data, seeds, draws)


def resamples_here(method: str, context: TargetingContext, options: tuple[Any, ...],
                   draws: Sequence[np.ndarray | None], progress: bool) -> list[Found]:
    """Each resample's target in this process, the seed maps batched where the method reads them.

    A draw of None is the context itself (all its frames).
    """
    function = get_method(method)
    results: list[Found] = []
    maps: dict[str, np.ndarray] = {}
    with reuse_scratch():
        for k in tqdm(range(len(draws)), desc=f"bootstrap {method}", file=sys.stderr,
                      disable=not progress, leave=False):
            if k % RESAMPLE_BATCH == 0:
                maps = _resampled_maps(context, method, list(draws[k:k + RESAMPLE_BATCH]))
            resample = context.subset(frames=draws[k])
            resample._cache.update({key: r[k % RESAMPLE_BATCH] for key, r in maps.items()})
            results.append(found(run_method(function, resample, options)))
    return results


def _resample_chunk(item: tuple[str, TargetingContext, tuple[Any, ...], list[np.ndarray | None]]
                    ) -> list[Found]:
    """:func:`resamples_here` of some selections (top level, for :func:`map_values`).

    One BLAS thread: the workers share the cores already.
    """
    from threadpoolctl import threadpool_limits

    method, context, options, selections = item
    with threadpool_limits(limits=1, user_api="blas"):
        return resamples_here(method, context, options, selections, progress=False)


def _targets_in_processes(method: str, context: TargetingContext, options: tuple[Any, ...],
                          pieces: Sequence[Piece], n_jobs: int, progress: bool,
                          ) -> list[tuple[Found, list[Found]]]:
    """:func:`targets_of` with every run of every piece in one pool of forked processes."""
    selections: list[np.ndarray | None] = []
    for piece in pieces:
        if piece.point:
            selections.append(piece.frames)
        base = np.arange(context.data.shape[0]) if piece.frames is None else piece.frames
        selections += [base[draw] for draw in piece.draws]
    values = iter(_selections_in_processes(method, context, options, selections, n_jobs, progress))
    return [(next(values) if piece.point else None, [next(values) for _ in piece.draws])
            for piece in pieces]


def _selections_in_processes(method: str, context: TargetingContext, options: tuple[Any, ...],
                             selections: list[np.ndarray | None], n_jobs: int,
                             progress: bool) -> list[Found]:
    """The target of each frame selection of ``context``, on forked processes, in order.

    Contiguous chunks (:data:`CHUNKS_PER_WORKER` per worker); each carries the context
    (the seed and search voxels only, a few MB). A chunk that fails raises its own
    exception here (:func:`tmsnet.parallel.map_values`).
    """
    from tmsnet.parallel import forked_backend, map_values

    if not selections:
        return []
    backend = forked_backend(min(n_jobs, len(selections)))
    chunks = [c for c in np.array_split(np.arange(len(selections)),
                                        CHUNKS_PER_WORKER * backend.n_workers) if c.size]
    items = [(method, context, options, [selections[k] for k in chunk]) for chunk in chunks]
    values = map_values(_resample_chunk, items, backend=backend, progress=progress,
                        desc=f"bootstrap {method}", unit="chunk")
    return [value for chunk in values for value in chunk]
