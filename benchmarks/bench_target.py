"""Time of the full ``tmsnet target`` job against the floor of loading its BOLD.

Usage::

    .venv/bin/python benchmarks/bench_target.py [--frames 300] [--repeats 3]

Generates one sample subject (2 mm MNI, ``--frames`` frames) in a temporary
folder, then, in the same process and on the same file, measures:

* the floor: ``nibabel.load(bold).get_fdata(dtype=float32)`` (reading and
  decompressing the 4D image into memory);
* the full job as the CLI runs it (``tmsnet target ... --out DIR``: load,
  clean, regions, seed map, ``cluster`` method, outputs, HTML report);
* the job's stages, to say where the time goes.

Each figure is the median of ``--repeats`` runs; the ratio job / floor is what
to compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np


def _median_time(func, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from tmsnet.cli import main as cli_main
    from tmsnet.fmri.cleaning import clean_bold
    from tmsnet.io.fmriprep import load_bold, load_confounds_table
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.methods import TargetingContext, run_method
    from tmsnet.targeting.regions import dlpfc_search_mask, seed_mask

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        subject = simulate_fmriprep_dataset(
            tmp / "data", n_subjects=1, seed=0, params=SimulationParameters(n_frames=args.frames)
        )[0]
        generate_s = time.perf_counter() - start
        bold, confounds = subject.bold_path, subject.confounds_path
        size_mb = bold.stat().st_size / 1e6
        shape = nib.load(bold).shape
        dtype = nib.load(bold).get_data_dtype()

        floor = _median_time(lambda: nib.load(bold).get_fdata(dtype=np.float32), args.repeats)
        out = tmp / "out"
        base = ["target", "--bold", str(bold), "--confounds", str(confounds), "--out", str(out),
                "--quiet", "--json"]
        def run(extra):
            with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                cli_main([*base, *extra])

        job = _median_time(lambda: run(["--n-bootstrap", "0"]), args.repeats)
        # Issue 3 rows: each method alone, all methods on one cleaning, the default job
        # (cluster with its 100-resample bootstrap and scan-length advice).
        variants = {
            "--method seedmap (no bootstrap)": ["--method", "seedmap", "--n-bootstrap", "0"],
            "--method hierarchical (no bootstrap)": ["--method", "hierarchical", "--n-bootstrap", "0"],
            "--method all (no bootstrap)": ["--method", "all", "--n-bootstrap", "0"],
            "default job (cluster + bootstrap 100 + scan length)": [],
        }
        variant_s = {name: _median_time(lambda extra=extra: run(extra), 1)
                     for name, extra in variants.items()}

        # Stages (one run each, same process).
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        data = load_bold(bold)
        table = load_confounds_table(confounds, n_frames=data.n_frames)
        stages["load_bold + confounds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        cleaned, _ = clean_bold(data, table)
        stages["clean (smooth, regress, band-pass)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        seed3d, _ = seed_mask(data.reference, data.mask)
        search3d, _ = dlpfc_search_mask(data.reference, data.mask)
        context = TargetingContext(cleaned, data.mask, data.reference.affine, seed3d[data.mask],
                                   search3d[data.mask], data.space)
        stages["seed and search regions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        context.seed_connectivity()
        target = run_method("cluster", context)
        stages["seed map + cluster method"] = time.perf_counter() - t0

        # Bootstrap on the cleaned data already in memory (no reload per resample).
        from tmsnet.targeting.uncertainty import UncertaintyParameters, method_uncertainty

        boot: dict[str, float] = {}
        t0 = time.perf_counter()
        method_uncertainty(context, target, t_r=data.t_r, parameters=UncertaintyParameters(
            n_bootstrap=200, scan_length_fractions=None))
        boot["cluster: bootstrap 200 + split-half"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        method_uncertainty(context, target, t_r=data.t_r,
                           parameters=UncertaintyParameters(n_bootstrap=100))
        boot["cluster: bootstrap 100 + scan length (3 x 50)"] = time.perf_counter() - t0
        tracemalloc.start()
        t0 = time.perf_counter()
        hier = run_method("hierarchical", context)
        hier_s = time.perf_counter() - t0
        hier_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        t0 = time.perf_counter()
        method_uncertainty(context, hier, t_r=data.t_r, parameters=UncertaintyParameters(
            n_bootstrap=20, scan_length_fractions=None))
        boot["hierarchical: bootstrap 20 + split-half"] = time.perf_counter() - t0

    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"input: {shape} {dtype} BOLD, {size_mb:.0f} MB .nii.gz (generated in {generate_s:.1f} s)")
    print(f"floor  (nib.load + get_fdata float32): {floor:6.2f} s")
    print(f"job    (tmsnet target, cluster + report): {job:6.2f} s")
    print(f"ratio  job / floor: {job / floor:.2f}")
    print("stages (single run):")
    for name, seconds in stages.items():
        print(f"  {name:<38s} {seconds:6.2f} s")
    rest = job - sum(stages.values())
    print(f"  {'outputs + report (job - stages)':<38s} {rest:6.2f} s")
    print("issue 3 (single runs, same file):")
    for name, seconds in variant_s.items():
        print(f"  {name:<54s} {seconds:6.2f} s  ({seconds / floor:.2f} x floor)")
    print(f"  {'hierarchical method alone':<54s} {hier_s:6.2f} s, peak traced memory "
          f"{hier_peak_mb:.0f} MiB ({hier.details['n_dlpfc_voxels']} DLPFC voxels)")
    for name, seconds in boot.items():
        print(f"  {name:<54s} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
