"""Benchmark the sphere-model E-field kernel against a straightforward per-dipole loop.

Two problems (issue 7): 1,000,000 points x the 2712-dipole Magstim 70 mm coil, and
1,000 coil placements x 10,000 points. The loop (``efield_loop``: a Python loop over
dipoles, numpy over points, like SimNIBS' analytical solution) is timed in the same run
on a subset of the work and scaled linearly to the whole (its cost is exactly linear in
the number of dipoles and of placements); the fast kernel is timed on the whole problem.

Usage: .venv/bin/python benchmarks/bench_efield.py [--points 1000000] [--placements 1000]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.efield import (
    available_backends,
    efield,
    efield_loop,
    efield_placements,
    transform_dipoles,
)
from tmsnet.physics.placement import coil_rotation

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils" / "Magstim_70mm_Fig8.ccd"


def brain_points(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1)[:, None] * (0.07 * rng.uniform(0, 1, (n, 1)) ** (1 / 3))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--placements", type=int, default=1000)
    ap.add_argument("--placement-points", type=int, default=10_000)
    ap.add_argument("--loop-dipoles", type=int, default=100, help="dipoles the loop is timed on")
    ap.add_argument("--loop-placements", type=int, default=4, help="placements the loop is timed on")
    args = ap.parse_args()
    coil = read_ccd(SHARED) if SHARED.is_file() else load_coil("fig8-70mm")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"backends {available_backends()}; coil {coil.name} ({coil.n_dipoles} dipoles)")
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, np.diag([1.0, -1.0, -1.0]), [0, 0, 0.085])
    efield(brain_points(10), pos, mom)  # compile

    # 1) many points, one placement
    pts = brain_points(args.points)
    t0 = time.perf_counter()
    fast = efield(pts, pos, mom)
    t_fast = time.perf_counter() - t0
    k = args.loop_dipoles
    t0 = time.perf_counter()
    part = efield_loop(pts, pos[:k], mom[:k])
    t_loop = (time.perf_counter() - t0) * coil.n_dipoles / k
    check = efield(pts[:2000], pos[:k], mom[:k])
    rel = np.max(np.abs(check - part[:2000])) / np.max(np.abs(part[:2000]))
    pairs = args.points * coil.n_dipoles
    print(f"[points] {args.points:,} points x {coil.n_dipoles} dipoles: kernel {t_fast:.2f} s "
          f"({pairs / t_fast / 1e6:.0f} M pairs/s); loop {t_loop:.1f} s (timed on {k} dipoles, scaled); "
          f"speed-up {t_loop / t_fast:.1f}x; max rel. diff on the subset {rel:.1e}; "
          f"max |E| {np.linalg.norm(fast, axis=1).max():.3f} V/m per A/us")

    # 2) many placements x points: positions on a cap of the 85 mm sphere x orientations
    rng = np.random.default_rng(1)
    n_pl = args.placements
    theta = np.radians(rng.uniform(0, 40, n_pl))
    phi = rng.uniform(0, 2 * np.pi, n_pl)
    dirs = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    angles = rng.uniform(0, 360, n_pl)
    rots = np.array([coil_rotation(-d, a) for d, a in zip(dirs, angles, strict=True)])
    trans = dirs * 0.085
    ppts = brain_points(args.placement_points, seed=2)
    t0 = time.perf_counter()
    batch = efield_placements(ppts, coil.positions_m, coil.moments, rots, trans)
    t_fast2 = time.perf_counter() - t0
    m = args.loop_placements
    t0 = time.perf_counter()
    for j in range(m):
        p_j, m_j = transform_dipoles(coil.positions_m, coil.moments, rots[j], trans[j])
        ref = efield_loop(ppts, p_j, m_j)
    t_loop2 = (time.perf_counter() - t0) * n_pl / m
    rel2 = np.max(np.linalg.norm(batch[m - 1] - ref, axis=1) / np.linalg.norm(ref, axis=1))
    print(f"[placements] {n_pl} placements x {args.placement_points:,} points x {coil.n_dipoles} dipoles: "
          f"kernel {t_fast2:.2f} s; loop {t_loop2:.1f} s (timed on {m} placements, scaled); "
          f"speed-up {t_loop2 / t_fast2:.1f}x; max rel. diff {rel2:.1e}")


if __name__ == "__main__":
    main()
