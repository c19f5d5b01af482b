"""Targeting accuracy against chance baselines on many generated subjects (issue 13).

Usage::

    .venv/bin/python benchmarks/bench_accuracy.py [--layouts 120] [--subjects 0] [--snr 0.35 0.5]

Part 1 (``--layouts``): random layouts of :mod:`tmsnet.simulate.targeting_block`
(seeds drawn from ``default_rng(13)``), at each ``--snr``; group seedmap from 8 other layouts. Prints, per
method, the median / 90th-percentile error and the identification rate, next to
the fixed guess (search-slab centroid) and the group map's extremum.

Part 2 (``--subjects N``, slow: ~20 s a subject): N subjects of the full
simulator (seed 271828, 300 frames) at each ``--snr`` (scaled to the full
simulator's definition as given), every method, against the published
baselines of tests/accuracy_baselines.py (fixed guess at the centroid of the
published search spheres, nearest published target, bundled seedmap extremum).
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


def bench_full(n_subjects: int, snrs: list[float]) -> None:
    import nibabel as nib

    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP
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
            mask = nib.load(subjects[0].mask_path)
            region, xyz = published_search_region(mask)
            group = np.asarray(nib.load(BUNDLED_SEEDMAP).dataobj)[region]
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
        print(_row("fixed guess", distances(xyz.mean(axis=0), planted)))
        print(_row("nearest published", nearest_published_errors(planted)))
        print(_row("seedmap extremum", distances(xyz[np.argmin(group)], planted)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=120)
    parser.add_argument("--subjects", type=int, default=0)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.35, 0.5])
    args = parser.parse_args()
    if args.layouts:
        bench_blocks(args.layouts, args.snr)
    if args.subjects:
        bench_full(args.subjects, args.snr)


if __name__ == "__main__":
    main()
