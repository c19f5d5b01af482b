"""Short scans: does the bootstrap 95 % radius cover the planted target? (issue 14, item 1).

Usage::

    .venv/bin/python benchmarks/bench_short_scans.py [--lengths 64 100 150 200 300] [--subjects 16]

For each scan length, ``--subjects`` independent subjects of the full simulator
(seed ``4242 + length``; default settings otherwise), the default ``tmsnet target``
job with ``--method cluster`` (100 resamples, 30 s blocks). Prints per length: the
median effective degrees of freedom of the cleaning, the coverage (share of
subjects whose planted target lies within the reported 95 % radius of the found
target), the median error and radius, the share that the radius alone would call
stable (<= 5 mm) and the share the job calls stable (with the rule of
``MIN_EFFECTIVE_DOF``). This is the calibration of that rule.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def run(lengths: list[int], n_subjects: int) -> pd.DataFrame:
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.workflow import TargetingParameters, compute_targets

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in lengths:
            start = time.perf_counter()
            subjects = simulate_fmriprep_dataset(
                Path(tmp) / f"n{n}", n_subjects=n_subjects, seed=4242 + n,
                params=SimulationParameters(n_frames=n), progress=False)
            for s in subjects:
                result = compute_targets(s.bold_path, s.confounds_path,
                                         TargetingParameters(methods=("cluster",)),
                                         progress=False)
                u = result.uncertainty["cluster"]
                rows.append({
                    "n_frames": n,
                    "error_mm": float(np.linalg.norm(result.targets[0].coordinate_mm
                                                     - s.target_mm)),
                    "radius_mm": u.summary["p95_radius_mm"],
                    "dof": u.summary["effective_dof"],
                    "called_stable": bool(u.advice["stable"]),
                })
            print(f"  {n} frames: {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 100, 150, 200, 300])
    parser.add_argument("--subjects", type=int, default=16)
    args = parser.parse_args()
    table = run(args.lengths, args.subjects)
    table["covered"] = table["error_mm"] <= table["radius_mm"]
    table["radius_says_stable"] = table["radius_mm"] <= 5.0
    summary = table.groupby("n_frames").agg(
        dof=("dof", "median"), coverage=("covered", "mean"), median_error_mm=("error_mm", "median"),
        median_radius_mm=("radius_mm", "median"), radius_says_stable=("radius_says_stable", "mean"),
        job_says_stable=("called_stable", "mean"), subjects=("dof", "size"))
    print(summary.round(2).to_string())


if __name__ == "__main__":
    main()
