"""Calibration of the bootstrap 95 % radius, from both sides, over many layouts.

Usage::

    .venv/bin/python benchmarks/check_bootstrap_coverage.py [--layouts 12] [--repeats 30]
        [--bootstrap 100] [--frames 300] [--snr 0.35] [--method cluster]

For each of ``--layouts`` generated people (:func:`tmsnet.simulate.targeting_block.
simulate_targeting_block`, ``seed`` = layout: patch positions), ``--repeats``
scans (``repeat`` = new noise, same planted target) are targeted and given a
``--bootstrap``-resample block bootstrap (:func:`tmsnet.targeting.uncertainty.
method_uncertainty`). Printed:

* **coverage**: the share of scans whose reported 95 % radius (around the scan's
  own target) contains the planted target, with a Wilson 95 % interval; a
  calibrated radius gives 0.90-0.99 (issue 13);
* **width ratio**: per layout, the median reported radius over the layout's
  repeats divided by the empirical 95th percentile of the repeats' errors (the
  radius a perfect method would report); the median over layouts with a
  bootstrap-over-layouts 95 % interval. Calibrated: 0.5-2 (issue 13). A radius
  that is too wide passes a coverage-only check; this ratio catches it.

The fast version of this check is
``tests/test_targeting_uncertainty_calibration.py`` (6 layouts x 12 repeats).
Figures of the last run: /work/notes/T3.md and docs/validation.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n``."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def scan(seed: int, repeat: int, args: argparse.Namespace) -> tuple[float, float]:
    """Error (mm) of one scan's target and its reported 95 % radius (mm)."""
    from tmsnet.simulate.targeting_block import simulate_targeting_block
    from tmsnet.targeting.methods import TargetingContext, get_method
    from tmsnet.targeting.uncertainty import UncertaintyParameters, method_uncertainty

    block = simulate_targeting_block(seed=seed, repeat=repeat, n_frames=args.frames, snr=args.snr)
    context = TargetingContext(**block.context_kwargs())
    target = get_method(args.method)(context)
    u = method_uncertainty(context, target, t_r=block.t_r, parameters=UncertaintyParameters(
        n_bootstrap=args.bootstrap, scan_length_fractions=None, random_seed=repeat))
    error = float(np.linalg.norm(target.coordinate_mm - block.target_mm))
    return error, float(u.summary["p95_radius_mm"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", type=int, default=12)
    parser.add_argument("--first-layout", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--snr", type=float, default=0.35)
    parser.add_argument("--method", default="cluster")
    args = parser.parse_args()

    start = time.perf_counter()
    errors, radii, ratios = [], [], []
    for seed in range(args.first_layout, args.first_layout + args.layouts):
        rows = np.array([scan(seed, r, args) for r in range(args.repeats)])
        e, rad = rows[:, 0], rows[:, 1]
        ratio = float(np.median(rad) / np.percentile(e, 95))
        errors.append(e)
        radii.append(rad)
        ratios.append(ratio)
        print(f"layout {seed:3d}: coverage {np.mean(e <= rad):.2f}, median error {np.median(e):5.1f}"
              f" mm, p95 error {np.percentile(e, 95):5.1f} mm, median 95% radius "
              f"{np.median(rad):5.1f} mm, ratio {ratio:.2f}", flush=True)
    e, rad, ratios = np.concatenate(errors), np.concatenate(radii), np.array(ratios)
    k, n = int(np.sum(e <= rad)), e.size
    low, high = wilson(k, n)
    rng = np.random.default_rng(0)
    boot = np.median(rng.choice(ratios, size=(5000, ratios.size)), axis=1)
    print(f"coverage {k / n:.3f} ({k}/{n}), Wilson 95% CI [{low:.3f}, {high:.3f}] (wanted 0.90-0.99)")
    print(f"width ratio (median radius / p95 error, per layout): median {np.median(ratios):.2f}, "
          f"95% CI over layouts [{np.percentile(boot, 2.5):.2f}, {np.percentile(boot, 97.5):.2f}], "
          f"range {ratios.min():.2f}-{ratios.max():.2f} (wanted 0.5-2)")
    print(f"pooled: p95 of error/radius {np.percentile(e / rad, 95):.2f} (calibrated: 1); "
          f"{args.layouts} layouts x {args.repeats} repeats, {args.bootstrap} resamples, "
          f"{args.frames} frames, snr {args.snr}, method {args.method}; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
