"""Planted-truth accuracy of ``hierarchical`` where it was weakest (issue 15 item 7).

The held-out finding: tmsnet's hierarchical method, then SNT's published rank product (size x
concentration x net correlation, target at the cluster's centre of mass), landed 7.4, 3.4 and
31.6 mm from the planted targets (the 31.6 mm miss a decoy); contarg 3.0, 3.6 and 5.0 mm.
Reproduced here with the full simulator at a lower signal (0.3 against the default 0.33-0.5)
and a stronger anticorrelated decoy (0.8 of the target's loading against the default 0.5), on
8 subjects drawn with the accuracy benchmark's seed (271828, fixed before any result was seen),
as a new user would run it (default cleaning, regions and options).

Seen (``benchmarks/bench_hierarchical.py``, the same subjects): the published rank product
misses by 17.0 mm (median; 30.1, 13.2, 20.8, 24.6, 3.5, 1.4, 3.0, 35.3 mm), the default
``size-core`` rule by 3.1 mm (32.5, 12.4, 0.7, 2.0, 3.3, 1.0, 2.8, 34.6 mm); the baselines of
``tests/accuracy_baselines.py`` (fixed guess, nearest published target) are computed below.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from accuracy_baselines import (
    check_beats_baselines,
    distances,
    nearest_published_errors,
    published_search_region,
)
from tmsnet.targeting import workflow
from tmsnet.targeting.hierarchical import HierarchicalOptions
from tmsnet.targeting.methods import get_method
from tmsnet.targeting.workflow import TargetingParameters, load_and_clean

N_SUBJECTS, SUBJECTS_SEED = 8, 271828
WEAK_SIGNAL, STRONG_DECOY = 0.3, 0.8


@pytest.fixture(scope="module")
def weak_signal_strong_decoy(tmp_path_factory):
    """Both selection rules' targets and the chance baselines on the same 8 subjects (~2 min)."""
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    subjects = simulate_fmriprep_dataset(
        tmp_path_factory.mktemp("hierarchical"), n_subjects=N_SUBJECTS, seed=SUBJECTS_SEED,
        params=SimulationParameters(snr=WEAK_SIGNAL, decoy_strength=STRONG_DECOY), progress=False)
    parameters = TargetingParameters(methods=("hierarchical",))
    found: dict[str, list[np.ndarray]] = {"size-core": [], "rank-product": []}
    for subject in subjects:
        scan = load_and_clean(subject.bold_path, subject.confounds_path, parameters.cleaning)
        context = workflow._regions_and_context(scan, parameters).context
        for rule in found:
            target = get_method("hierarchical")(context, HierarchicalOptions(hierarchical_selection=rule))
            found[rule].append(target.coordinate_mm)
    planted = np.array([s.target_mm for s in subjects])
    _, xyz = published_search_region(nib.load(subjects[0].mask_path))
    baselines = {"fixed_guess": distances(xyz.mean(axis=0), planted),
                 "nearest_published": nearest_published_errors(planted)}
    errors = {rule: distances(np.array(f), planted) for rule, f in found.items()}
    return errors, baselines


def test_default_rule_beats_half_the_chance_baselines(weak_signal_strong_decoy):
    """The default (``size-core``): median error <= 0.5 x the best baseline on these subjects."""
    errors, baselines = weak_signal_strong_decoy
    assert HierarchicalOptions().hierarchical_selection == "size-core"
    medians = check_beats_baselines({"size-core": errors["size-core"]}, baselines)
    print("weak signal, strong decoy: median errors (mm):", medians,
          {rule: np.round(e, 1).tolist() for rule, e in errors.items()})


def test_published_rank_product_misses_where_the_default_does_not(weak_signal_strong_decoy):
    """The finding, kept: SNT's rank product misses the bar on the same subjects, and the
    default's median error is at most half the rank product's."""
    errors, baselines = weak_signal_strong_decoy
    best = min(float(np.median(e)) for e in baselines.values())
    assert float(np.median(errors["rank-product"])) > 0.5 * best
    assert float(np.median(errors["size-core"])) <= 0.5 * float(np.median(errors["rank-product"]))
    # Most subjects, not a lucky median: the default lands within 5 mm on at least 5 of 8.
    assert int(np.sum(errors["size-core"] <= 5.0)) >= 5


def test_hierarchical_options_are_checked():
    from tmsnet.exceptions import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="hierarchical_selection"):
        HierarchicalOptions(hierarchical_selection="largest")
    with pytest.raises(InvalidParameterError, match="hierarchical_min_share"):
        HierarchicalOptions(hierarchical_min_share=0.0)


def _small_context(dlpfc_signs: np.ndarray, rng: np.random.Generator):
    """10 sgACC voxels carrying s(t) and DLPFC voxels carrying sign * s(t) (0: their own signal)."""
    from tmsnet.targeting.methods import TargetingContext

    n_frames, n_dlpfc = 200, dlpfc_signs.size
    s, own = rng.standard_normal(n_frames), rng.standard_normal(n_frames)
    seed = s[:, None] + 0.3 * rng.standard_normal((n_frames, 10))
    loads = np.where(dlpfc_signs[None] == 0, own[:, None], dlpfc_signs[None] * s[:, None])
    data = np.hstack([seed, loads + 0.3 * rng.standard_normal((n_frames, n_dlpfc))])
    mask = np.zeros((n_dlpfc + 10, 1, 1), bool)
    mask[:] = True
    is_seed = np.arange(n_dlpfc + 10) < 10
    return TargetingContext(data=data.astype(np.float32), brain_mask=mask, affine=np.diag([2.0, 2, 2, 1]),
                            seed_voxels=is_seed, search_voxels=~is_seed, space="MNI152NLin2009cAsym")


def test_small_clusters_fall_back_without_the_size_limit_and_say_so():
    """Every DLPFC cluster under 51 voxels: the net-anticorrelated one is still found, and the
    details record that the size limit was dropped; with no net-anticorrelated cluster the
    method raises the typed error that names the cause."""
    from tmsnet.exceptions import EmptyRegionError

    rng = np.random.default_rng(0)
    signs = np.repeat([-1.0, 0.0], 15)  # 15 anticorrelated voxels, then 15 of their own signal
    target = get_method("hierarchical")(_small_context(signs, rng), HierarchicalOptions())
    assert target.details["size_limit_dropped"] is True
    assert target.details["cluster_size_voxels"] == 15 and target.details["cluster_net_correlation"] < 0
    voxel_x = 2.0 * (10 + np.arange(15))  # the anticorrelated voxels' x (mm)
    assert voxel_x.min() <= target.coordinate_mm[0] <= voxel_x.max()
    with pytest.raises(EmptyRegionError, match="negative net correlation"):
        get_method("hierarchical")(_small_context(np.ones(30), rng), HierarchicalOptions())
