"""Benchmark the realistic-head placement search (issue 17 items 3-4) and Deng 2013 on the realistic path.

One run on the ``--voxel-mm`` layered sphere (``sphere_phantom``; default 1 mm),
the Magstim 70 mm figure-8 (``../shared/data``, else the bundled ``fig8-70mm``):

1. the placement search for the grey matter within 5 mm of (0, 0, 68) mm:
   positions within ``--radius`` mm of the scalp projection at ``--step`` mm,
   angles every ``--angle-step`` degrees, objective |mean E| (3 adjoint solves);
   printed: placements evaluated, seconds per stage (adjoint solves, table of b,
   fast evaluation: placements per second), table size, peak memory;
2. direct-solve spot checks: the best placements and the clinical baseline
   (from the search) and ``--spot`` random placements of the grid, each fast
   value against a direct solve (relative difference);
3. Deng 2013 on the realistic path: the coil touching the scalp at the vertex,
   one solve, d½ / S½ (``tmsnet.physics.realistic_metrics``) against the
   published 1.41 cm / 14.8 cm² and the sphere kernel's (``metrics.deng_metrics``).

Usage: nice .venv/bin/python benchmarks/bench_placement_search.py [--voxel-mm 1] [--radius 30] [--step 1]
       [--angle-step 1] [--spot 2]
"""

import argparse
import os
import resource
from pathlib import Path

import numpy as np

from _timing import load, timed
from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.head_model import sphere_phantom
from tmsnet.physics.metrics import deng_metrics, dipoles_at_vertex
from tmsnet.physics.realistic_metrics import deng_metrics_from_field
from tmsnet.physics.realistic_placement import PlacementSearchParameters, search_placement, solve_placement
from tmsnet.physics.reciprocity_table import ReciprocityTable, compress_kernel
from tmsnet.physics.volume_conductor import VolumeConductor

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils" / "Magstim_70mm_Fig8.ccd"


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def search(args, coil, conductor):
    params = PlacementSearchParameters(search_radius_mm=args.radius, position_step_mm=args.step,
                                       angle_step_deg=args.angle_step, n_verify=args.verify)
    result, wall, cpu = timed(lambda: search_placement(conductor, coil, np.array([0.0, 0.0, 68.0]),
                                                       parameters=params))
    t = result.timings_s
    print(f"search: {result.n_placements:,} placements ({args.radius:g} mm radius, {args.step:g} mm step, "
          f"{args.angle_step:g} deg), patch {int(result.patch.sum())} voxels; "
          f"{wall:.0f} s wall, {cpu:.0f} s CPU")
    for stage in ("geometry", "adjoint solves", "table", "fast evaluation", "direct solves"):
        print(f"  {stage:<16} {t[stage]:7.1f} s")
    print(f"  fast path: {result.n_placements / t['fast evaluation']:,.0f} placements/s "
          f"({coil.n_dipoles} dipoles, 3 functionals); table {int(t['table_points']):,} points of b")
    print(f"  chosen: scalp point {np.round(result.scalp_point_mm, 2).tolist()} mm, "
          f"angle {result.angle_deg:g} deg, "
          f"mean |E| {result.field['magnitude']:.4f} V/m per A/us, focality {result.focality_cm3:.1f} cm3; "
          f"baseline (clinical {result.baseline['angle_deg']:.0f} deg) {result.baseline['magnitude']:.4f}, "
          f"gain {result.gain:.4f}")
    for check in result.checks:
        direct = float(np.linalg.norm(check["vector"]))
        print(f"  spot check (search): fast {check['objective_fast']:.5f} direct |mean E| {direct:.5f} "
              f"({100 * (check['objective_fast'] / direct - 1):+.3f} %)")
    print(f"  peak memory {peak_rss_gb():.2f} GB; load {load()}")
    return result, params


def random_spot_checks(args, coil, conductor, result, params):
    """Fast vs direct on random placements of the grid (a fresh table for them)."""
    rng = np.random.default_rng(0)
    rows = np.flatnonzero(result.patch[conductor.inside])
    weights = np.zeros((3, conductor.n_cells, 3))
    for axis in range(3):
        weights[axis, rows, axis] = 1.0 / len(rows)
    kernels = np.stack([conductor.reciprocal_kernel(w) for w in weights])
    sources = compress_kernel(conductor.node_positions_m, kernels, result.target_mm * 1e-3,
                              exact_radius_mm=params.kernel_exact_radius_mm, block_mm=params.kernel_block_mm)
    z = -result.scalp_point_mm / np.linalg.norm(result.scalp_point_mm)
    for _ in range(args.spot):
        tilt = rng.normal(scale=0.1, size=3)
        axis = z + tilt - (tilt @ z) * z
        angle = rng.uniform(0.0, 360.0)
        from tmsnet.physics.placement import coil_rotation

        rot = coil_rotation(axis, angle)
        origin = -rot[:, 2] * np.linalg.norm(result.coil_origin_mm)
        table = ReciprocityTable(*sources, coil.positions_m, coil.moments, rot[None], origin[None] * 1e-3,
                                 params.table_step_mm)
        fast = float(np.linalg.norm(table.evaluate(rot[None], origin[None] * 1e-3)[0]))
        e_direct = solve_placement(conductor, coil, rot, origin).e_field
        direct = float(np.linalg.norm(e_direct[rows].mean(axis=0)))
        print(f"  spot check (random, angle {angle:.0f} deg): fast {fast:.5f} direct {direct:.5f} "
              f"({100 * (fast / direct - 1):+.3f} %)")


def deng(coil, conductor):
    pos, mom = dipoles_at_vertex(coil, 85.0)
    solution, wall, _ = timed(lambda: conductor.solve(conductor.primary_field(pos, mom)))
    realistic = deng_metrics_from_field(solution)
    kernel = deng_metrics(coil)
    print(f"Deng 2013 on the realistic path ({wall:.0f} s solve): d1/2 {realistic['d_half_cm']:.3f} cm "
          f"({100 * (realistic['d_half_cm'] / 1.41 - 1):+.1f} % vs 1.41), "
          f"S1/2 {realistic['s_half_cm2']:.2f} cm2 "
          f"({100 * (realistic['s_half_cm2'] / 14.8 - 1):+.1f} % vs 14.8), Emax {realistic['e_max']:.4f}; "
          f"sphere kernel: d1/2 {kernel.d_half_cm:.3f} cm, S1/2 {kernel.s_half_cm2:.2f} cm2, "
          f"Emax {kernel.e_max_v_per_m_per_a_per_us:.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-mm", type=float, default=1.0)
    parser.add_argument("--radius", type=float, default=30.0)
    parser.add_argument("--step", type=float, default=1.0)
    parser.add_argument("--angle-step", type=float, default=1.0)
    parser.add_argument("--verify", type=int, default=2)
    parser.add_argument("--spot", type=int, default=2)
    parser.add_argument("--no-deng", action="store_true")
    args = parser.parse_args()
    coil = read_ccd(SHARED) if SHARED.is_file() else load_coil("fig8-70mm")
    print(f"coil {coil.name} ({coil.n_dipoles} dipoles); {os.cpu_count()} CPUs; load {load()}")
    head = sphere_phantom(args.voxel_mm)
    conductor, wall, _ = timed(lambda: VolumeConductor(head.labels, head.affine))
    print(f"sphere phantom at {args.voxel_mm:g} mm: {conductor.n_cells:,} voxels, "
          f"{conductor.n_nodes:,} nodes; "
          f"assembled in {wall:.1f} s")
    result, params = search(args, coil, conductor)
    random_spot_checks(args, coil, conductor, result, params)
    if not args.no_deng:
        deng(coil, conductor)
    print(f"peak memory {peak_rss_gb():.2f} GB; load {load()}")


if __name__ == "__main__":
    main()
