"""Coverage of the bootstrap 95 % radius on the full simulator (repeated scans of one subject).

Usage::

    .venv/bin/python benchmarks/check_bootstrap_coverage.py [--repeats 20] [--frames 300]

Generates ``--repeats`` scans of the same simulated subject (same anatomy and
planted target, new noise: ``SimulationParameters(scan_repeat=k)``), runs the
``cluster`` method with a 100-resample block bootstrap on each, and prints how
often the 95 % radius around the target covers the planted target. The test
suite checks the same property on the small generated block
(``tests/test_targeting_uncertainty.py``); this script is the slower check on
whole fMRIPrep-like scans.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--subject-index", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters, compute_targets

    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeats):
            params = SimulationParameters(n_frames=args.frames, scan_repeat=k)
            subjects = simulate_fmriprep_dataset(Path(tmp) / f"r{k}", n_subjects=args.subject_index + 1,
                                                 seed=args.seed, params=params, progress=False)
            s = subjects[args.subject_index]
            result = compute_targets(s.bold_path, s.confounds_path, TargetingParameters(
                uncertainty=UncertaintyParameters(n_bootstrap=100, scan_length_fractions=None,
                                                  random_seed=k)), progress=False)
            target = result.targets[0]
            error = float(np.linalg.norm(target.coordinate_mm - np.asarray(s.target_mm)))
            radius = target.details["uncertainty"]["p95_radius_mm"]
            rows.append((error, radius))
            print(f"repeat {k:2d}: error {error:5.1f} mm, 95% radius {radius:5.1f} mm, "
                  f"covered {error <= radius}", flush=True)
            for path in Path(tmp).glob(f"r{k}/**/*.nii.gz"):
                path.unlink()
    errors, radii = np.array(rows).T
    print(f"coverage: {np.mean(errors <= radii):.2f} ({int(np.sum(errors <= radii))}/{len(rows)}); "
          f"median error {np.median(errors):.1f} mm; median 95% radius {np.median(radii):.1f} mm; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
