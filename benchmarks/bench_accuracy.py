"""Targeting accuracy against chance baselines on many generated subjects (issue 13).

Usage::

    .venv/bin/python benchmarks/bench_accuracy.py [--layouts 120] [--subjects 0] [--snr 0.35 0.5]
    .venv/bin/python benchmarks/bench_accuracy.py --layouts 0 --default 12 --seed 314159 \
        --snr 0.3 0.35 0.5 --decoy-strength 0.85 --global-signal 2 [--bootstrap 50]

Part 1 (``--layouts``): random layouts of :mod:`tmsnet.simulate.targeting_block`
(seeds drawn from ``default_rng(13)``), at each ``--snr``; group seedmap from 8 other layouts. Prints, per
method, the median / 90th-percentile error and the identification rate, next to
the fixed guess (search-slab centroid) and the group map's extremum.

Part 2 (``--subjects N``, slow: ~20 s a subject): N subjects of the full
simulator (seed 271828, 300 frames) at each ``--snr`` (scaled to the full
simulator's definition as given), every method, against the published
baselines of tests/accuracy_baselines.py (fixed guess at the centroid of the
published search spheres, nearest published target, bundled seedmap extremum).

Part 3 (``--default N``, slow: ~25 s a subject, more with ``--bootstrap``): the method the
job uses without ``--method`` (issue 15 item 7). N subjects of the full simulator
(``--seed``) at each ``--snr`` with ``--decoy-strength`` and ``--global-signal``: cluster
(the old default), seedmap, the job's default (``auto``, run as a user would) against the
same baselines; with ``--bootstrap K`` also the per-scan rule the job could have used instead
(each scan's method of smaller bootstrap 95 % radius, cluster or seedmap) and how well a
radius tells a miss (> 10 mm) from a hit (AUC, 0.5 = no better than a coin).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from accuracy_baselines import (  # noqa: E402
    distances,
    identified,
    nearest_published_errors,
    published_search_region,
)


def _row(name: str, e: np.ndarray, rate: float | None = None) -> str:
    ident = "" if rate is None else f"  identified {rate:5.2f}"
    return f"  {name:16s} median {np.median(e):5.1f}  p90 {np.percentile(e, 90):5.1f} mm{ident}"


def bench_blocks(n_layouts: int, snrs: list[float]) -> None:
    from tmsnet.simulate.targeting_block import simulate_targeting_block
    from tmsnet.targeting.methods import TargetingContext, get_method

    seeds = [int(s) for s in np.random.default_rng(13).permutation(np.arange(1000, 30000))[:n_layouts + 8]]
    test, group_seeds = seeds[:n_layouts], seeds[n_layouts:]
    for snr in snrs:
        start = time.perf_counter()
        z = [np.arctanh(np.clip(TargetingContext(**simulate_targeting_block(
            seed=s, snr=snr).context_kwargs()).seed_connectivity(), -0.999, 0.999))
            for s in group_seeds]
        group = np.tanh(np.mean(z, axis=0))
        planted, found = [], {"peak": [], "cluster": [], "seedmap": []}
        for seed in test:
            block = simulate_targeting_block(seed=seed, snr=snr)
            context = TargetingContext(**block.context_kwargs(), seed_weights=group)
            xyz = context.voxel_mm()[block.search_voxels]
            guess, extremum = xyz.mean(axis=0), xyz[np.argmin(group[block.search_voxels])]
            planted.append(block.target_mm)
            for method in found:
                found[method].append(get_method(method)(context).coordinate_mm)
        planted = np.array(planted)
        print(f"block, snr {snr}, {len(test)} layouts ({time.perf_counter() - start:.0f} s)")
        for method, f in found.items():
            f = np.array(f)
            print(_row(method, distances(f, planted), float(np.mean(identified(f, planted)))))
        print(_row("fixed guess", distances(guess, planted)))
        print(_row("group extremum", distances(extremum, planted)))


def _print_baselines(subjects, planted: np.ndarray) -> None:
    """The published baselines of tests/accuracy_baselines.py on these subjects."""
    import nibabel as nib

    from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP

    region, xyz = published_search_region(nib.load(subjects[0].mask_path))
    group = np.asarray(nib.load(BUNDLED_SEEDMAP).dataobj)[region]
    print(_row("fixed guess", distances(xyz.mean(axis=0), planted)))
    print(_row("nearest published", nearest_published_errors(planted)))
    print(_row("seedmap extremum", distances(xyz[np.argmin(group)], planted)))


def _auc(score: np.ndarray, miss: np.ndarray) -> float:
    """P(score of a miss > score of a hit), ties half: how well ``score`` flags the misses."""
    hits, misses = score[~miss], score[miss]
    if not hits.size or not misses.size:
        return float("nan")
    return float(np.mean([(m > h) + 0.5 * (m == h) for m in misses for h in hits]))


def bench_default(n_subjects: int, snrs: list[float], *, seed: int, decoy: float,
                  global_signal: float, n_bootstrap: int) -> None:
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters, compute_targets

    pair = TargetingParameters(methods=("cluster", "seedmap"), uncertainty=UncertaintyParameters(
        n_bootstrap=n_bootstrap, scan_length_advice=False))
    default = TargetingParameters(uncertainty=UncertaintyParameters(n_bootstrap=0))
    for snr in snrs:
        params = SimulationParameters(snr=snr, decoy_strength=decoy,
                                      global_signal_scale=global_signal)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            subjects = simulate_fmriprep_dataset(Path(tmp), n_subjects=n_subjects, seed=seed,
                                                 params=params, progress=False)
            planted = np.array([s.target_mm for s in subjects])
            found = {"cluster": [], "seedmap": [], "default": []}
            radius = {"cluster": [], "seedmap": []}
            chosen_methods = set()
            for s in subjects:
                result = compute_targets(s.bold_path, s.confounds_path, pair, progress=False)
                for t in result.targets:
                    found[t.method].append(t.coordinate_mm)
                    if n_bootstrap:
                        radius[t.method].append(result.uncertainty[t.method].summary["p95_radius_mm"])
                chosen = compute_targets(s.bold_path, s.confounds_path, default,
                                         progress=False).targets[0]
                found["default"].append(chosen.coordinate_mm)
                chosen_methods.add(chosen.method)
            print(f"default method, full simulator, snr {snr}, decoy {decoy}, global signal "
                  f"{global_signal}, {n_subjects} subjects (seed {seed}; default used "
                  f"{', '.join(sorted(chosen_methods))}; "
                  f"{time.perf_counter() - start:.0f} s)")
            errors = {m: distances(np.array(f), planted) for m, f in found.items()}
            for method, e in errors.items():
                print(_row(method, e, float(np.mean(identified(np.array(found[method]), planted)))))
            if n_bootstrap:
                smaller = np.array(radius["cluster"]) <= np.array(radius["seedmap"])
                rule = np.where(smaller, errors["cluster"], errors["seedmap"])
                print(_row("smaller radius", rule) + f"  (cluster picked {smaller.sum()} of "
                      f"{smaller.size})")
                for method in radius:
                    auc = _auc(np.array(radius[method]), errors[method] > 10.0)
                    print(f"  {method} 95 % radius flags its misses > 10 mm: AUC {auc:.2f} "
                          f"({int((errors[method] > 10).sum())} misses)")
            _print_baselines(subjects, planted)


def bench_full(n_subjects: int, snrs: list[float]) -> None:
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters, compute_targets

    methods = ("peak", "cluster", "seedmap", "hierarchical")
    parameters = TargetingParameters(methods=methods,
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    for snr in snrs:
        with tempfile.TemporaryDirectory() as tmp:
            subjects = simulate_fmriprep_dataset(Path(tmp), n_subjects=n_subjects, seed=271828,
                                                 params=SimulationParameters(snr=snr),
                                                 progress=False)
            planted = np.array([s.target_mm for s in subjects])
            found = {m: [] for m in methods}
            for s in subjects:
                result = compute_targets(s.bold_path, s.confounds_path, parameters,
                                         progress=False)
                for t in result.targets:
                    found[t.method].append(t.coordinate_mm)
            print(f"full simulator, snr {snr}, {n_subjects} subjects (seed 271828)")
            for method, f in found.items():
                f = np.array(f)
                print(_row(method, distances(f, planted), float(np.mean(identified(f, planted)))))
            _print_baselines(subjects, planted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=120)
    parser.add_argument("--subjects", type=int, default=0)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.35, 0.5])
    parser.add_argument("--default", type=int, default=0, metavar="N",
                        help="part 3: N subjects for the default-method comparison")
    parser.add_argument("--seed", type=int, default=314159, help="part 3: simulator seed")
    parser.add_argument("--decoy-strength", type=float, default=0.5, help="part 3")
    parser.add_argument("--global-signal", type=float, default=1.0, help="part 3")
    parser.add_argument("--bootstrap", type=int, default=0,
                        help="part 3: bootstrap resamples for the smaller-radius rule (0 = off)")
    args = parser.parse_args()
    if args.layouts:
        bench_blocks(args.layouts, args.snr)
    if args.subjects:
        bench_full(args.subjects, args.snr)
    if args.default:
        bench_default(args.default, args.snr, seed=args.seed, decoy=args.decoy_strength,
                      global_signal=args.global_signal, n_bootstrap=args.bootstrap)


if __name__ == "__main__":
    main()
