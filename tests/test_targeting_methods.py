"""Seed connectivity and the peak / cluster rules against planted answers."""

import numpy as np
import pytest

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError, UnknownMethodError
from tmsnet.targeting import methods as methods_module
from tmsnet.targeting.connectivity import correlation_with_seed, fisher_z, seed_time_series
from tmsnet.targeting.methods import (
    ClusterOptions,
    TargetingContext,
    available_methods,
    get_method,
    register_method,
    run_method,
)

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def test_correlation_matches_numpy_corrcoef():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((120, 500)).astype(np.float32) * rng.uniform(0.5, 3, 500)
    seed = rng.standard_normal(120)
    data[:, 7] = 0.0  # constant voxel -> r = 0, not NaN
    r = correlation_with_seed(data, seed, chunk=64)
    expected = np.array([np.corrcoef(data[:, j], seed)[0, 1] for j in range(500) if j != 7])
    np.testing.assert_allclose(np.delete(r, 7), expected, atol=1e-5)
    assert r[7] == 0.0
    assert r.dtype == np.float32


def test_fisher_z_closed_form_and_finite_at_one():
    r = np.array([-0.5, 0.0, 0.5, 1.0], dtype=np.float32)
    z = fisher_z(r)
    np.testing.assert_allclose(z[:3], 0.5 * np.log((1 + r[:3]) / (1 - r[:3])), rtol=1e-6)
    assert np.isfinite(z[3]) and z[3] > 5


def test_seed_time_series_mean_and_weighted():
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    seed = np.array([True, True, False, False])
    np.testing.assert_allclose(seed_time_series(data, seed), data[:, :2].mean(axis=1))
    weights = np.array([3.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(seed_time_series(data, seed, weights=weights),
                               (3 * data[:, 0] + data[:, 1]) / 4)
    with pytest.raises(EmptyRegionError):
        seed_time_series(data, np.zeros(4, dtype=bool))


def _context_from_map(r_volume: np.ndarray, search: np.ndarray) -> TargetingContext:
    """A context whose cached seed map is ``r_volume`` (methods read it from the cache)."""
    brain = np.ones(r_volume.shape, dtype=bool)
    n = brain.sum()
    context = TargetingContext(
        data=np.zeros((10, n), dtype=np.float32), brain_mask=brain, affine=AFFINE,
        seed_voxels=np.zeros(n, dtype=bool), search_voxels=search[brain], space="MNI152NLin6Asym",
    )
    context._cache["seed_r"] = r_volume[brain].astype(np.float32)
    return context


def _planted_map(seed=1):
    rng = np.random.default_rng(seed)
    r = rng.normal(0, 0.05, (20, 20, 20))
    # A 5x5x5 anticorrelated block centred on voxel (6, 6, 6) ...
    r[4:9, 4:9, 4:9] = -0.5 + rng.normal(0, 0.02, (5, 5, 5))
    # ... a single, more negative voxel elsewhere (the peak trap) ...
    r[15, 15, 15] = -0.9
    # ... and a strongly *positive* block that a sign error would pick.
    r[12:18, 2:8, 12:18] = 0.95
    return r


def test_peak_picks_most_negative_voxel_never_positive():
    r = _planted_map()
    context = _context_from_map(r, np.ones(r.shape, dtype=bool))
    target = run_method("peak", context)
    assert target.voxel_ijk == (15, 15, 15)
    np.testing.assert_allclose(target.coordinate_mm, [30, 30, 30])
    assert target.r_at_target == pytest.approx(-0.9)


def test_cluster_finds_centroid_of_largest_negative_cluster():
    r = _planted_map()
    context = _context_from_map(r, np.ones(r.shape, dtype=bool))
    target = run_method("cluster", context, ClusterOptions(cluster_percentile=10.0))
    # The planted block (125 voxels) centre is voxel (6, 6, 6) = (12, 12, 12) mm.
    np.testing.assert_allclose(target.coordinate_mm, [12, 12, 12], atol=1.0)
    assert target.details["cluster_size_voxels"] >= 100
    assert target.r_at_target < -0.4
    weighted = run_method("cluster", context, ClusterOptions(weighted_centroid=True))
    np.testing.assert_allclose(weighted.coordinate_mm, [12, 12, 12], atol=1.0)
    assert weighted.parameters["weighted"] is True


def test_cluster_uses_26_connectivity():
    r = np.zeros((10, 10, 10))
    r[...] = 0.1
    # A diagonal chain touching only at corners (one 26-connected cluster of 5;
    # five singletons under 6-connectivity) and a face-connected row of 3.
    for k in range(4):
        r[1 + k, 1 + k, 1 + k] = -0.8
        r[6 + k, 1, 1] = -0.8 if k < 3 else 0.1
    r[5, 5, 5] = -0.8
    context = _context_from_map(r, np.ones(r.shape, dtype=bool))
    target = run_method("cluster", context, ClusterOptions(cluster_percentile=100.0))
    assert target.details["cluster_size_voxels"] == 5
    np.testing.assert_allclose(target.coordinate_mm, [6, 6, 6])


def test_search_region_restricts_the_choice():
    r = _planted_map()
    search = np.zeros(r.shape, dtype=bool)
    search[:10, :10, :10] = True  # excludes the (15,15,15) trap
    target = run_method("peak", _context_from_map(r, search))
    assert all(i < 10 for i in target.voxel_ijk)


def test_no_negative_value_is_an_error_not_a_wrong_target():
    r = np.full((6, 6, 6), 0.3)
    context = _context_from_map(r, np.ones(r.shape, dtype=bool))
    with pytest.raises(EmptyRegionError, match="anticorrelated"):
        run_method("cluster", context)
    with pytest.raises(InvalidParameterError):
        run_method("cluster", _context_from_map(_planted_map(), np.ones((20,) * 3, bool)),
                   ClusterOptions(cluster_percentile=0))


def test_unknown_method_and_registry_extension():
    with pytest.raises(UnknownMethodError, match="peak"):
        get_method("nonexistent")
    assert {"peak", "cluster"} <= set(available_methods())

    @register_method("test-centre-of-search")
    def centre(context):  # a new method is one function
        r = context.seed_connectivity()
        index = np.flatnonzero(context.search_voxels)
        xyz = context.voxel_mm(index).mean(axis=0)
        return methods_module.Target("test-centre-of-search", xyz, context.space,
                                     (0, 0, 0), float(r[index[0]]), r)

    try:
        r = _planted_map()
        target = run_method("test-centre-of-search", _context_from_map(r, np.ones(r.shape, bool)))
        np.testing.assert_allclose(target.coordinate_mm, [19, 19, 19])
        with pytest.raises(ValueError, match="already registered"):
            register_method("peak")(centre)
    finally:
        methods_module._METHODS.pop("test-centre-of-search", None)
