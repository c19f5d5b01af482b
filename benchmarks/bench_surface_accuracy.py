"""Surface targeting accuracy by signal level and medial wall, against chance baselines.

Usage::

    .venv/bin/python benchmarks/bench_surface_accuracy.py [--seeds 21 3 5 11] [--snr 0.5 1.0] \
        [--walls band fmriprep] [--subjects 5]

For each generator seed, signal level and medial wall of :mod:`tmsnet.simulate.surface`
(``band``: |x| < 4 mm, the generator's default, which keeps 7 of the 41 right sgACC
vertices; ``fmriprep``: the wall a real fMRIPrep fsaverage5 scan leaves constant, which
keeps 24), N subjects through the surface job without uncertainty: seedmap (the bundled
fsaverage5 map), cluster and hierarchical. Printed per row: every subject's error (mm), the
median, and the fixed guess's median (the centroid of the published DLPFC targets,
tests/accuracy_baselines.py), the baseline the tests hold a method to half of. About 40 s a
row on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from accuracy_baselines import STANDARD_TARGETS_MM  # noqa: E402

METHODS = ("seedmap", "cluster", "hierarchical")


def run_row(seed: int, snr: float, wall: str, n_subjects: int) -> None:
    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.simulate.surface import simulate_surface_dataset
    from tmsnet.targeting.surface_workflow import compute_surface_targets
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters

    start = time.perf_counter()
    subjects = simulate_surface_dataset(tempfile.mkdtemp(), n_subjects=n_subjects, seed=seed,
                                        snr=snr, medial_wall=wall)
    parameters = TargetingParameters(
        methods=METHODS, cleaning=BoldCleaningParameters(confounds_all_columns=True),
        uncertainty=UncertaintyParameters(n_bootstrap=0))
    errors: dict[str, list[float]] = {m: [] for m in METHODS}
    for subject in subjects:
        result = compute_surface_targets(subject.bold_left, subject.confounds, parameters)
        for target in result.targets:
            errors[target.method].append(float(np.linalg.norm(target.coordinate_mm
                                                              - subject.target_mm)))
    guess = np.array(list(STANDARD_TARGETS_MM.values())[:4]).mean(axis=0)
    baseline = float(np.median([np.linalg.norm(s.target_mm - guess) for s in subjects]))
    cells = "; ".join(f"{m} {np.median(e):.1f} ({', '.join(f'{v:.1f}' for v in e)})"
                      for m, e in errors.items())
    print(f"seed {seed:3d}  snr {snr:.2f}  wall {wall:8s}  median mm: {cells}; "
          f"fixed guess {baseline:.1f}  [{time.perf_counter() - start:.0f} s]", flush=True)


def main() -> None:
    """Parse the options and print one row per seed, signal level and wall."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[21, 3, 5, 11])
    parser.add_argument("--snr", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--walls", nargs="+", default=["band", "fmriprep"])
    parser.add_argument("--subjects", type=int, default=5)
    args = parser.parse_args()
    for snr in args.snr:
        for wall in args.walls:
            for seed in args.seeds:
                run_row(seed, snr, wall, args.subjects)


if __name__ == "__main__":
    main()
