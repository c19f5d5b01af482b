"""Benchmark the sphere-model E-field kernel against a straightforward per-dipole loop.

Two problems (issue 7): 1,000,000 points x the 2712-dipole Magstim 70 mm coil, and
1,000 coil placements x 10,000 points. The baseline is ``efield_loop`` (a Python loop
over dipoles, numpy over points, like SimNIBS' analytical solution). Its cost is exactly
linear in the number of dipoles and of placements, so it is timed on part of the work
(``--loop-dipoles`` dipoles over all points; ``--loop-placements`` whole placements) and
scaled to the whole; the fast kernel is timed on the whole problem.

The machine this runs on is shared, so kernel and loop are interleaved: each problem is
run in ``--rounds`` rounds, and every round times one slice of the kernel's work (a block
of points, or of placements) and then, straight after, one slice of the loop's. Both thus
see the same load; the speed-up is total loop time (scaled) / total kernel time, and the
per-round ratios show how much the load moved it. Load averages are printed.

Usage: .venv/bin/python benchmarks/bench_efield.py [--points 1000000] [--placements 1000]
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from _timing import load, timed
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
    """``n`` points uniform in a 70 mm ball (metres)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    return p / np.linalg.norm(p, axis=1)[:, None] * (0.07 * rng.uniform(0, 1, (n, 1)) ** (1 / 3))


def max_rel(fast, ref):
    """Largest per-point relative difference |E_fast - E_ref| / |E_ref|."""
    return float(np.max(np.linalg.norm(fast - ref, axis=1) / np.linalg.norm(ref, axis=1)))


def machine_line(coil):
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import numba

        nb = f"numba {numba.__version__} ({numba.get_num_threads()} threads)"
    except ImportError:
        nb = "no numba"
    return (f"machine: {cpu}, {platform.machine()}, {os.cpu_count()} CPUs; numpy {np.__version__}, {nb}; "
            f"backends {available_backends()}; coil {coil.name} ({coil.n_dipoles} dipoles); "
            f"load average (1/5/15 min) {load()}")


def bench_points(coil, pos, mom, n_points, loop_dipoles, rounds):
    pts = brain_points(n_points)
    blocks = np.array_split(np.arange(n_points), rounds)
    dip_blocks = np.array_split(np.arange(loop_dipoles), rounds)
    fast = np.empty_like(pts)
    loop_part = np.zeros_like(pts)
    t_k = t_l = c_k = 0.0
    per_round = []
    for r in range(rounds):
        fast[blocks[r]], w_k, c = timed(lambda r=r: efield(pts[blocks[r]], pos, mom))
        part, w_l, _ = timed(lambda r=r: efield_loop(pts, pos[dip_blocks[r]], mom[dip_blocks[r]]))
        loop_part += part
        t_k, c_k, t_l = t_k + w_k, c_k + c, t_l + w_l
        # this round: loop cost of its dipoles scaled to the coil, vs kernel cost scaled to all points
        per_round.append((w_l * coil.n_dipoles / len(dip_blocks[r])) / (w_k * n_points / len(blocks[r])))
    t_loop = t_l * coil.n_dipoles / loop_dipoles
    check = efield(pts, pos[:loop_dipoles], mom[:loop_dipoles])  # kernel on the loop's dipoles
    pairs = n_points * coil.n_dipoles
    print(f"[points] {n_points:,} points x {coil.n_dipoles} dipoles: kernel {t_k:.2f} s wall, "
          f"{c_k:.2f} s CPU ({pairs / t_k / 1e6:.0f} M pairs/s); loop {t_loop:.1f} s "
          f"(timed on {loop_dipoles} dipoles x all points in {rounds} rounds, scaled); "
          f"speed-up {t_loop / t_k:.1f}x (per round {', '.join(f'{x:.1f}' for x in per_round)}); "
          f"max rel. diff kernel vs loop on those dipoles {max_rel(check, loop_part):.1e}; "
          f"max |E| {np.linalg.norm(fast, axis=1).max():.3f} V/m per A/us; load {load()}")


def bench_placements(coil, n_placements, n_points, loop_placements, rounds):
    rng = np.random.default_rng(1)
    theta = np.radians(rng.uniform(0, 40, n_placements))
    phi = rng.uniform(0, 2 * np.pi, n_placements)
    dirs = np.column_stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    angles = rng.uniform(0, 360, n_placements)
    rots = np.array([coil_rotation(-d, a) for d, a in zip(dirs, angles, strict=True)])
    trans = dirs * 0.085  # coil origins on the 85 mm sphere, within 40 degrees of the vertex
    pts = brain_points(n_points, seed=2)
    blocks = np.array_split(np.arange(n_placements), rounds)
    loop_idx = np.array_split(np.linspace(0, n_placements - 1, loop_placements).round().astype(int), rounds)
    batch = np.empty((n_placements, n_points, 3))
    t_k = t_l = c_k = 0.0
    rel = 0.0
    per_round = []
    for r in range(rounds):
        sel = blocks[r]
        batch[sel], w_k, c = timed(
            lambda sel=sel: efield_placements(pts, coil.positions_m, coil.moments, rots[sel], trans[sel]))
        t0 = time.perf_counter()
        refs = []
        for j in loop_idx[r]:
            p_j, m_j = transform_dipoles(coil.positions_m, coil.moments, rots[j], trans[j])
            refs.append(efield_loop(pts, p_j, m_j))
        w_l = time.perf_counter() - t0
        for j, ref in zip(loop_idx[r], refs, strict=True):
            rel = max(rel, max_rel(batch[j], ref))
        t_k, c_k, t_l = t_k + w_k, c_k + c, t_l + w_l
        if len(loop_idx[r]):
            per_round.append((w_l / len(loop_idx[r])) / (w_k / len(sel)))
    t_loop = t_l * n_placements / loop_placements
    pairs = n_placements * n_points * coil.n_dipoles
    print(f"[placements] {n_placements:,} placements x {n_points:,} points x {coil.n_dipoles} dipoles: "
          f"kernel {t_k:.2f} s wall, {c_k:.2f} s CPU ({pairs / t_k / 1e6:.0f} M pairs/s); "
          f"loop {t_loop:.1f} s (timed on {loop_placements} placements in {rounds} rounds, scaled); "
          f"speed-up {t_loop / t_k:.1f}x (per round {', '.join(f'{x:.1f}' for x in per_round)}); "
          f"max rel. diff {rel:.1e}; load {load()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--placements", type=int, default=1000)
    ap.add_argument("--placement-points", type=int, default=10_000)
    ap.add_argument("--loop-dipoles", type=int, default=100, help="dipoles the loop is timed on")
    ap.add_argument("--loop-placements", type=int, default=4, help="placements the loop is timed on")
    ap.add_argument("--rounds", type=int, default=4, help="kernel/loop alternations per problem")
    ap.add_argument("--skip-points", action="store_true", help="run the placements problem only")
    args = ap.parse_args()
    coil = read_ccd(SHARED) if SHARED.is_file() else load_coil("fig8-70mm")
    print(machine_line(coil))
    pos, mom = transform_dipoles(coil.positions_m, coil.moments, np.diag([1.0, -1.0, -1.0]), [0, 0, 0.085])
    efield(brain_points(10), pos, mom)  # compile (or load numba's cache)
    if not args.skip_points:
        loop_dipoles = min(args.loop_dipoles, coil.n_dipoles)
        bench_points(coil, pos, mom, args.points, loop_dipoles, min(args.rounds, loop_dipoles))
    bench_placements(coil, args.placements, args.placement_points,
                     min(args.loop_placements, args.placements), min(args.rounds, args.placements))


if __name__ == "__main__":
    main()
