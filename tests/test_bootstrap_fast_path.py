"""Issue 16 goal 2: the bootstrap's seed maps from frame counts equal the direct computation.

A block-bootstrap resample is a multiset of frames, so every sum Pearson r needs on
it is a count-weighted sum over the scan's frames
(:func:`tmsnet.targeting.connectivity.resampled_correlations`). Checked here against
two references on the same resamples: the direct path (:func:`correlation_with_seed`
on the resampled data, float32 sums) and an independent float64 ``np.corrcoef``; and,
end to end, the bootstrap clouds of the peak, cluster and seedmap methods on generated
scans (:mod:`tmsnet.simulate.targeting_block`) with the fast path on and off.
"""

from __future__ import annotations

import numpy as np
import pytest

import tmsnet.targeting.resampling as resampling
import tmsnet.targeting.uncertainty as uncertainty
from tmsnet.exceptions import InvalidImageError
from tmsnet.simulate.targeting_block import simulate_targeting_block
from tmsnet.targeting.connectivity import (
    correlation_with_seed,
    resampled_correlations,
    seed_time_series,
)
from tmsnet.targeting.methods import TargetingContext
from tmsnet.targeting.results import Target
from tmsnet.targeting.uncertainty import (
    UncertaintyParameters,
    block_bootstrap_indices,
    method_uncertainty,
)


def _draws(run_lengths, n, block=15, seed=0):
    rng = np.random.default_rng(seed)
    return [block_bootstrap_indices(run_lengths, block_frames=block, rng=rng) for _ in range(n)]


def test_resampled_maps_equal_direct_and_float64_reference():
    block = simulate_targeting_block(n_frames=200, seed=3)
    data = np.ascontiguousarray(block.context_kwargs()["data"], dtype=np.float32)
    data = data[:, :1500].copy()
    data[:, 0] = 7.0  # a constant voxel: r is 0, not rounding noise
    data[:, 1] += 1000.0  # a large offset: the sums must not cancel catastrophically
    seed = data[:, 2:40].mean(axis=1, dtype=np.float64)
    draws = _draws([120, 80], 20, block=10, seed=1)  # two runs: blocks never cross them
    fast = resampled_correlations(data, {"s": seed}, draws)["s"]
    assert fast.shape == (20, 1500) and fast.dtype == np.float32
    worst_direct = worst_ref = 0.0
    for k, frames in enumerate(draws):
        direct = correlation_with_seed(data[frames], seed[frames])
        worst_direct = max(worst_direct, float(np.abs(fast[k] - direct).max()))
        ref = np.corrcoef(np.column_stack([seed[frames], data[frames][:, 1:]]).T)[0, 1:]
        worst_ref = max(worst_ref, float(np.abs(fast[k, 1:] - ref).max()))
        assert fast[k, 0] == 0.0
    assert worst_direct < 1e-6, worst_direct
    assert worst_ref < 1e-6, worst_ref
    # not trivially equal: the resamples' maps differ from each other and from the scan's
    full = correlation_with_seed(data, seed)
    assert np.abs(fast - full).max() > 0.05


def test_constant_seed_in_a_resample_is_refused_like_the_direct_path():
    data = np.random.default_rng(0).standard_normal((40, 10)).astype(np.float32)
    seed = np.r_[np.zeros(20), np.arange(20.0)]
    draws = [np.arange(20)]  # only the constant part of the seed
    with pytest.raises(InvalidImageError, match="constant"):
        correlation_with_seed(data[draws[0]], seed[draws[0]])
    with pytest.raises(InvalidImageError, match="constant"):
        resampled_correlations(data, {"s": seed}, draws)


def _context(block) -> TargetingContext:
    kwargs = block.context_kwargs()
    n = kwargs["data"].shape[1]
    weights = np.random.default_rng(7).standard_normal(n)  # a "group seedmap"
    weights[::3] = 0.0
    return TargetingContext(**kwargs, seed_weights=weights)


@pytest.mark.parametrize("method", ["cluster", "peak", "seedmap"])
def test_bootstrap_clouds_equal_with_and_without_the_fast_path(method, monkeypatch):
    """Same resamples, same targets: x, y, z equal; r at target within float32 rounding."""
    params = UncertaintyParameters(n_bootstrap=30, scan_length_resamples=10)
    moved = 0
    for layout in range(3):
        ctx = _context(simulate_targeting_block(n_frames=200, seed=layout, snr=0.3))
        point = resampling.get_method(method)(ctx)
        assert isinstance(point, Target)
        out = {}
        for fast in (False, True):
            monkeypatch.setattr(resampling, "FAST_RESAMPLED_MAPS", fast)
            out[fast] = method_uncertainty(ctx, point, t_r=2.0, parameters=params)
        slow_cloud, fast_cloud = out[False].cloud, out[True].cloud
        assert list(slow_cloud["resample"]) == list(fast_cloud["resample"])
        xyz = ["x", "y", "z"]
        moved += int((slow_cloud[xyz].to_numpy() != fast_cloud[xyz].to_numpy()).any(axis=1).sum())
        np.testing.assert_allclose(fast_cloud["r_at_target"], slow_cloud["r_at_target"],
                                   rtol=0, atol=1e-6)
        assert out[False].scan_length.equals(out[True].scan_length)
        assert out[False].summary["split_half_distance_mm"] == out[True].summary[
            "split_half_distance_mm"]
        # the clouds are real clouds (the resamples move the target), not copies of the point
        assert slow_cloud["distance_mm"].max() > 0
    assert moved == 0  # no resample's target moved (ties within float32 rounding: none here)


def test_fast_path_is_used_for_map_methods_only(monkeypatch):
    """Peak/cluster/seedmap resamples get their maps precomputed; other methods do not."""
    ctx = _context(simulate_targeting_block(n_frames=120, seed=1))
    reduced = uncertainty.analysis_context(ctx)
    draws = _draws([120], 3)
    maps = resampling._resampled_maps(reduced, "seedmap", draws)
    assert set(maps) == {"seedmap_r"} and maps["seedmap_r"].shape == (3, reduced.data.shape[1])
    direct = reduced.subset(frames=draws[1]).seedmap_connectivity()
    np.testing.assert_allclose(maps["seedmap_r"][1], direct, atol=1e-6, rtol=0)
    seed = seed_time_series(reduced.data, reduced.seed_voxels)
    np.testing.assert_allclose(resampling._resampled_maps(reduced, "cluster", draws)["seed_r"][2],
                               correlation_with_seed(reduced.data[draws[2]], seed[draws[2]]),
                               atol=1e-6, rtol=0)
    assert resampling._resampled_maps(reduced, "hierarchical", draws) == {}
    monkeypatch.setattr(resampling, "FAST_RESAMPLED_MAPS", False)
    assert resampling._resampled_maps(reduced, "cluster", draws) == {}
