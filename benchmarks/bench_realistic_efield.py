"""Benchmark the voxel-head field solver (issue 17): one 1 mm solve vs the sphere kernel, in one run.

The head is the layered sphere of ``tmsnet.physics.head_model.sphere_phantom``
(scalp 85, skull 79, CSF 73, GM 70, WM 66 mm; SimNIBS conductivities) on a
``--voxel-mm`` grid, the coil the Magstim 70 mm figure-8 (``../shared/data``,
else the bundled ``fig8-70mm``) touching the scalp at the vertex. Printed: the
problem size (head voxels, nodes, edges, matrix non-zeros), wall and CPU
seconds of each stage (assembly, primary field, AMG setup, CG), the CG
iterations, the peak resident memory of the process, and the sphere kernel
(``tmsnet.physics.efield.efield``) on the same brain voxel centres: its time and
the solver's relative error against it (median and 95th percentile over the
brain, over the region where |E| >= Emax/2, and at the voxel of Emax).

``--convergence`` adds the same comparison on coarser grids (4, 3, 2 mm) and
the ellipsoid with a fold at 4, 2 and 1 mm, each grid against the next finer
one at the shared voxel centres; ``--variants`` re-solves the 1 mm sphere with
the skull and CSF conductivities changed (the field must not move).

The machine is shared: the load averages are printed with the figures, and CPU
seconds are given beside wall seconds (the AMG setup and CG run on one core).

Usage: .venv/bin/python benchmarks/bench_realistic_efield.py [--voxel-mm 1] [--convergence] [--variants]
"""

import argparse
import os
import resource
from pathlib import Path

import numpy as np

from _timing import load, timed
from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.efield import efield, transform_dipoles
from tmsnet.physics.head_model import TISSUE_LABELS, Conductivities, ellipsoid_phantom, sphere_phantom
from tmsnet.physics.volume_conductor import VolumeConductor

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "coils" / "Magstim_70mm_Fig8.ccd"
VERTEX = np.diag([1.0, -1.0, -1.0])


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def errors(field, reference, floor=0.01):
    """Relative errors where |E_ref| >= floor x its maximum."""
    norm = np.linalg.norm(reference, axis=1)
    keep = norm >= floor * norm.max()
    return np.linalg.norm(field - reference, axis=1)[keep] / norm[keep]


def pct(err):
    return f"{100 * np.median(err):.2f} % / {100 * np.percentile(err, 95):.1f} %"


def solve(head, dipoles, conductivities=None):
    """Assemble, primary field, solve; returns (solution, {stage: (wall, cpu)})."""
    stages = {}
    conductor, *stages["assemble"] = timed(lambda: VolumeConductor(head.labels, head.affine, conductivities))
    a, *stages["primary field"] = timed(lambda: conductor.primary_field(*dipoles))
    solution, *stages["AMG setup + CG"] = timed(lambda: conductor.solve(a))
    stages["of which AMG setup"] = (conductor.timings_s["amg_setup"], float("nan"))
    return solution, stages


def compare_with_kernel(solution, dipoles, target_mm=(0.0, 0.0, 70.0), patch_mm=5.0):
    """Kernel on the brain voxel centres vs the solver.

    Returns the relative errors over the brain and where |E| >= Emax/2, the error at the
    voxel of Emax, the error of the mean |E| over the brain voxels within ``patch_mm`` of
    ``target_mm`` (the brain surface under the coil), the kernel's (wall, CPU) seconds and
    Emax.
    """
    conductor = solution.conductor
    brain = conductor.labels[conductor.inside] >= TISSUE_LABELS["gm"]
    points = conductor.cell_centres_m[brain]
    reference, wall, cpu = timed(lambda: efield(points, *dipoles))
    field = solution.e_field[brain]
    norm = np.linalg.norm(reference, axis=1)
    top = norm >= 0.5 * norm.max()
    peak = int(np.argmax(norm))
    at_peak = float(np.linalg.norm(field[peak] - reference[peak]) / norm[peak])
    patch = np.linalg.norm(points * 1e3 - np.asarray(target_mm), axis=1) <= patch_mm
    patch_err = float(np.linalg.norm(field[patch], axis=1).mean() / norm[patch].mean() - 1.0)
    return {"brain": errors(field, reference), "top": errors(field[top], reference[top], 0.0),
            "peak": at_peak, "patch": patch_err, "n_patch": int(patch.sum()), "seconds": (wall, cpu),
            "e_max": norm[peak]}


def main_solve(args, coil):
    dipoles = transform_dipoles(coil.positions_m, coil.moments, VERTEX, np.array([0.0, 0.0, 0.085]))
    head, *t_head = timed(lambda: sphere_phantom(args.voxel_mm))
    solution, stages = solve(head, dipoles)
    c = solution.conductor
    print(f"sphere phantom at {args.voxel_mm:g} mm: {c.n_cells:,} head voxels, {c.n_nodes:,} nodes, "
          f"{c.n_edges:,} edges, {c.matrix.nnz:,} matrix non-zeros; labels built in {t_head[0]:.1f} s")
    for stage, (wall, cpu) in stages.items():
        print(f"  {stage:<20} {wall:7.1f} s wall {cpu:7.1f} s CPU")
    total = sum(v[0] for k, v in stages.items() if not k.startswith("of which"))
    print(f"  one solve in all     {total:7.1f} s wall; CG iterations {solution.iterations}, relative "
          f"residual {solution.relative_residual:.1e}; peak memory {peak_rss_gb():.2f} GB; load {load()}")
    k = compare_with_kernel(solution, dipoles)
    print(f"  sphere kernel on the same {len(k['brain']):,} brain voxels: {k['seconds'][0]:.1f} s wall "
          f"({k['seconds'][1]:.1f} s CPU)")
    print(f"  relative error vs the kernel (median / 95th percentile): brain {pct(k['brain'])}; "
          f"|E| >= Emax/2 {pct(k['top'])}; at the voxel of Emax ({k['e_max']:.3f} V/m per A/us) "
          f"{100 * k['peak']:.1f} %; mean |E| within 5 mm of the brain surface under the coil "
          f"({k['n_patch']} voxels) {100 * k['patch']:+.1f} %")
    return head, solution, dipoles


def variants(head, base, dipoles):
    brain = base.conductor.labels[base.conductor.inside] >= TISSUE_LABELS["gm"]
    for change in ({"skull": 0.02}, {"skull": 0.005}, {"csf": 0.8}):
        solution, stages = solve(head, dipoles, Conductivities(**change))
        shift = errors(solution.e_field[brain], base.e_field[brain])
        k = compare_with_kernel(solution, dipoles)
        print(f"  {change}: vs kernel {pct(k['brain'])}; change from the default {pct(shift)} "
              f"({sum(v[0] for v in stages.values()):.0f} s)")


def against_finer(coarse, fine):
    """Relative difference coarse vs fine at the coarse brain voxel centres that are fine centres too."""
    key = {tuple(k): i for i, k in enumerate(np.round(fine.conductor.cell_centres_m * 1e4).astype(np.int64))}
    index = np.array([key.get(tuple(k), -1) for k in
                      np.round(coarse.conductor.cell_centres_m * 1e4).astype(np.int64)])
    lab_c = coarse.conductor.labels[coarse.conductor.inside]
    lab_f = fine.conductor.labels[fine.conductor.inside]
    same = (index >= 0) & (lab_c >= TISSUE_LABELS["gm"])
    same[same] &= lab_f[index[same]] == lab_c[same]
    return errors(coarse.e_field[same], fine.e_field[index[same]])


def convergence(args, coil, finest):
    dipoles = transform_dipoles(coil.positions_m, coil.moments, VERTEX, np.array([0.0, 0.0, 0.085]))
    sphere = {args.voxel_mm: finest}
    for h in (4.0, 3.0, 2.0):
        sphere[h], _ = solve(sphere_phantom(h), dipoles)
    for h in sorted(sphere, reverse=True):
        k = compare_with_kernel(sphere[h], dipoles)
        line = (f"  sphere {h:g} mm: vs kernel brain {pct(k['brain'])}, |E| >= Emax/2 {pct(k['top'])}, "
                f"5 mm patch mean {100 * k['patch']:+.1f} %")
        if 2 * h in sphere:
            line += f"; {2 * h:g} mm vs {h:g} mm {pct(against_finer(sphere[2 * h], sphere[h]))}"
        print(line)
    fold_dipoles = transform_dipoles(coil.positions_m, coil.moments, VERTEX, np.array([0.0, 0.0, 0.087]))
    fold = {}
    for h in (4.0, 2.0, 1.0):
        fold[h], stages = solve(ellipsoid_phantom(h), fold_dipoles)
        print(f"  ellipsoid with a fold {h:g} mm: {fold[h].conductor.n_nodes:,} nodes, "
              f"{sum(v[0] for k, v in stages.items() if not k.startswith('of which')):.0f} s"
              + (f"; vs {h:g} mm: {2 * h:g} mm differs by {pct(against_finer(fold[2 * h], fold[h]))}"
                 if 2 * h in fold else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voxel-mm", type=float, default=1.0)
    parser.add_argument("--convergence", action="store_true")
    parser.add_argument("--variants", action="store_true")
    args = parser.parse_args()
    coil = read_ccd(SHARED) if SHARED.is_file() else load_coil("fig8-70mm")
    print(f"coil {coil.name} ({coil.n_dipoles} dipoles) at the vertex; {os.cpu_count()} CPUs; load {load()}")
    head, solution, dipoles = main_solve(args, coil)
    if args.variants:
        variants(head, solution, dipoles)
    if args.convergence:
        convergence(args, coil, solution)


if __name__ == "__main__":
    main()
