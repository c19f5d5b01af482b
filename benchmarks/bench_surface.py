"""Time of the surface targeting job against the floor of loading its two hemispheres.

Usage::

    .venv/bin/python benchmarks/bench_surface.py [--repeats 3]

Issue 15, "Must show". In one run and one process, on each input:

(a) the real LEMON scan in ``../shared/data/lemon_fsaverage5`` (FreeSurfer ``.mgz``
    pair, fsaverage5, 652 frames, TR 1.4 s given, the 29-column plain confounds matrix:
    ``confounds_all_columns=True``); skipped, with the reason printed, when the folder is
    absent;
(b) a generated subject (``simulate_surface_dataset(root, n_subjects=1, seed=0,
    n_frames=300)``: GIFTI pair, TR 2 s from the files, plain 6-column confounds matrix),
(c) a generated fsLR-91k CIFTI-2 dtseries (``write_fslr_dtseries`` of
    ``tests/test_surface_meshes.py``, seed 0, 300 frames, TR 2 s: 58558 cortical vertices of
    the bundled fsLR masks plus 32724 volume voxels, 91282 grayordinates as fMRIPrep writes),
(d) a generated subject on the ico6-like fsaverage6 stand-in with its mesh given (``mesh=``,
    ``simulate_surface_dataset(..., seed=0, n_frames=300, subdivide=True)``: 2 x 40962
    vertices, four times fsaverage5's),

it measures:

* the floor: both hemisphere files read into float32 arrays with nibabel alone
  (``np.asanyarray(nib.load(p).dataobj, dtype=np.float32)`` for MGH; for GIFTI, the
  data arrays stacked);
* ``tmsnet.io.surface.load_surface_bold`` alone;
* the whole job, ``tmsnet.jobs.target.run_surface_target`` writing its outputs and its
  HTML report into a temporary folder: ``--method cluster`` with the default uncertainty
  (block bootstrap 100 + split-half + scan-length advice), the same without uncertainty
  (``n_bootstrap=0``), and ``--method all`` (peak, cluster, hierarchical; seedmap is
  skipped on surfaces) with the default uncertainty; plus, for the default job, the same
  without the report (``report=False``) and ``compute_surface_targets`` alone, to say
  what writing the files and drawing the report cost;
* the peak RSS of the default job: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of a
  fresh Python subprocess that runs the job once, against the same figure in a
  subprocess that only imports the same modules and one that only reads the floor.
  Linux hands a parent's ru_maxrss on to its children, so these subprocesses are started
  first, while this process holds little more than numpy and nibabel (the generated
  subject is written by a subprocess too); ``VmHWM`` of ``/proc/self/status`` is printed
  beside it as a check.

Every time is the median of ``--repeats`` runs, the measurements interleaved (repeat 1 of
every row, then repeat 2, ...), after one warm-up job that is not counted (imports, mesh
caches, page cache). Each job time is also given as a ratio to that input's floor, measured
in the same run: compare ratios across machines, not seconds. For CIFTI the floor is the
one file read into a float32 array with nibabel (``np.asanyarray(img.dataobj, float32)``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import nibabel as nib
import numpy as np

LEMON = Path(__file__).resolve().parents[2] / "shared" / "data" / "lemon_fsaverage5"
LEMON_STEM = "sub-010188_ses-02_task-rest_acq-AP_run-01"
LEMON_T_R_S = 1.4


def _read_floor(left: Path, right: Path) -> list[np.ndarray]:
    """Both hemispheres as float32 arrays, nibabel alone (MGH: dataobj; GIFTI: darrays)."""
    if right is None:  # CIFTI: one file
        return [np.asanyarray(nib.load(left).dataobj, dtype=np.float32)]
    arrays = []
    for path in (left, right):
        img = nib.load(path)
        if path.name.endswith(".gii"):
            arrays.append(np.stack([np.asarray(d.data, dtype=np.float32) for d in img.darrays]))
        else:
            arrays.append(np.asanyarray(img.dataobj, dtype=np.float32))
    return arrays


def _parameters(job: str):
    from tmsnet.fmri.cleaning import BoldCleaningParameters
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters

    cleaning = BoldCleaningParameters(confounds_all_columns=True)
    if job == "cluster":
        return TargetingParameters(methods=("cluster",), cleaning=cleaning)
    if job == "cluster-no-uncertainty":
        return TargetingParameters(methods=("cluster",), cleaning=cleaning,
                                   uncertainty=UncertaintyParameters(n_bootstrap=0))
    return TargetingParameters(methods=("all",), cleaning=cleaning)


def _rss_child(argv: list[str]) -> None:
    """Subprocess body: ``--rss-child imports|floor|job LEFT RIGHT CONFOUNDS SPACE T_R MESH OUT``."""
    mode, left, right, confounds, space, t_r, mesh, out = argv
    from tmsnet.jobs.target import run_surface_target
    from tmsnet.targeting.surface_workflow import compute_surface_targets  # noqa: F401

    if mode == "floor":
        _read_floor(Path(left), Path(right) if right else None)
    elif mode == "job":
        run_surface_target(left, confounds, _parameters("cluster"), out_dir=out,
                           space=space or None, t_r=float(t_r) if t_r else None,
                           mesh=mesh or None)
    status = Path("/proc/self/status")
    hwm = next((int(line.split()[1]) for line in status.read_text().splitlines()
                if line.startswith("VmHWM:")), None) if status.exists() else None
    print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "vmhwm_kib": hwm}))


def _peak_rss_mib(case: dict, tmp: Path) -> dict[str, float]:
    """ru_maxrss (MiB) of fresh subprocesses: imports only, floor read, default job.

    Run before the timings, while this process is small: Linux carries a parent's
    ru_maxrss over to a forked child, so a big parent would mask the child's own peak
    (``VmHWM`` of ``/proc/self/status``, reset at exec, is read as a check).
    """
    peaks = {"parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for mode in ("imports", "floor", "job"):
        out = tmp / f"rss-{mode}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--rss-child", mode,
                str(case["left"]), str(case["right"] or ""), str(case["confounds"]),
                case["space"] or "", str(case["t_r"] or ""), str(case.get("mesh") or ""),
                str(out)]
        done = subprocess.run(argv, capture_output=True, text=True, check=True)
        child = json.loads(done.stdout.strip().splitlines()[-1])
        peaks[mode] = child["maxrss_kib"] / 1024
        peaks[f"{mode}_hwm"] = (child["vmhwm_kib"] or 0) / 1024
        shutil.rmtree(out, ignore_errors=True)
    return peaks


def _measure(case: dict, tmp: Path, repeats: int) -> dict:
    """Warm-up, then every row ``repeats`` times interleaved; medians (s)."""
    from tmsnet.io.surface import load_surface_bold
    from tmsnet.jobs.target import run_surface_target
    from tmsnet.targeting.surface_workflow import compute_surface_targets

    left, confounds, space, t_r = case["left"], case["confounds"], case["space"], case["t_r"]
    mesh = case.get("mesh")
    counter = iter(range(10**6))

    def job(name, report=True):
        out = tmp / f"out-{next(counter)}"
        result = run_surface_target(left, confounds, _parameters(name), out_dir=out,
                                    space=space, t_r=t_r, mesh=mesh, report=report)
        shutil.rmtree(out)
        return result

    rows = {
        "floor": lambda: _read_floor(left, case["right"]),
        "load_surface_bold": lambda: load_surface_bold(left, space=space, t_r=t_r),
        "cluster, no uncertainty": lambda: job("cluster-no-uncertainty"),
        "cluster, default uncertainty": lambda: job("cluster"),
        "same, without the HTML report": lambda: job("cluster", report=False),
        "compute only: cluster, default uncertainty": lambda: compute_surface_targets(
            left, confounds, _parameters("cluster"), space=space, t_r=t_r, mesh=mesh),
        "all, default uncertainty": lambda: job("all"),
    }
    start = time.perf_counter()
    rows["floor"]()
    warm = job("cluster-no-uncertainty")
    warm_s = time.perf_counter() - start
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, func in rows.items():
            t0 = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - t0)
    bold = load_surface_bold(left, space=space, t_r=t_r)
    methods = [t.method for t in job("all").result.targets]
    return {"median": {name: statistics.median(ts) for name, ts in times.items()},
            "spread": {name: (min(ts), max(ts)) for name, ts in times.items()},
            "warm_s": warm_s, "bold": bold, "all_methods": methods,
            "effective_dof": warm.summary["effective_dof"]}


def _report(label: str, case: dict, figures: dict, peaks: dict[str, float]) -> None:
    bold, median, spread = figures["bold"], figures["median"], figures["spread"]
    floor = median["floor"]
    size_mb = sum(Path(p).stat().st_size for p in (case["left"], case["right"]) if p) / 1e6
    data_mib = bold.n_frames * sum(bold.n_mesh_vertices.values()) * 4 / 2**20
    excluded = sum(bold.n_excluded.values())
    print(f"\n{label}")
    print(f"  input: {bold.source_format}, {bold.space}, {bold.n_frames} frames, "
          f"TR {bold.t_r:g} s ({bold.t_r_source}), {bold.n_vertices} usable vertices "
          f"({excluded} constant/non-finite left out), {size_mb:.1f} MB on disk, "
          f"{data_mib:.0f} MiB as float32; effective dof {figures['effective_dof']}")
    print(f"  warm-up job (not counted): {figures['warm_s']:.2f} s")
    for name, seconds in median.items():
        low, high = spread[name]
        ratio = "" if name == "floor" else f"  ({seconds / floor:6.2f} x floor)"
        print(f"  {name:<44s} {seconds:7.3f} s  [{low:.3f}-{high:.3f}]{ratio}")
    full, no_report = median["cluster, default uncertainty"], median["same, without the HTML report"]
    write = no_report - median["compute only: cluster, default uncertainty"]
    print("  differences of medians (within the noise when near 0):")
    print(f"  {'  writing the files (no-report job - compute)':<44s} {write:7.3f} s")
    print(f"  {'  HTML report (default job - no-report job)':<44s} {full - no_report:7.3f} s")
    print(f"  --method all ran: {', '.join(figures['all_methods'])}")
    job_extra, floor_extra = peaks["job"] - peaks["imports"], peaks["floor"] - peaks["imports"]
    print(f"  peak RSS (ru_maxrss, fresh subprocess): imports only {peaks['imports']:.0f} MiB; "
          f"floor read {peaks['floor']:.0f} MiB (+{floor_extra:.0f}); default job "
          f"{peaks['job']:.0f} MiB (+{job_extra:.0f} = {job_extra / data_mib:.1f} x the data as "
          "float32)")
    print(f"  (VmHWM check: {peaks['imports_hwm']:.0f} / {peaks['floor_hwm']:.0f} / "
          f"{peaks['job_hwm']:.0f} MiB; this process was {peaks['parent']:.0f} MiB at the spawn)")


def _generate_child(root: str) -> None:
    """Subprocess body: ``--generate ROOT`` writes the generated subjects, prints their paths."""
    from tmsnet.simulate.surface import simulate_surface_dataset

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_surface_meshes import write_fslr_dtseries

    start = time.perf_counter()
    subject = simulate_surface_dataset(root, n_subjects=1, seed=0, n_frames=300)[0]
    gifti_s = time.perf_counter() - start
    folder = Path(root) / "fslr"
    folder.mkdir(parents=True)
    cifti = write_fslr_dtseries(folder, seed=0, n_frames=300, n_volume_voxels=FSLR_91K_VOXELS)
    cifti_s = time.perf_counter() - start - gifti_s
    fine = simulate_surface_dataset(Path(root) / "fsaverage6", n_subjects=1, seed=0,
                                    n_frames=300, subdivide=True)[0]
    print(json.dumps({"left": str(subject.bold_left), "confounds": str(subject.confounds),
                      "seconds": gifti_s, "cifti": str(cifti["bold"]),
                      "cifti_confounds": str(cifti["confounds"]), "cifti_seconds": cifti_s,
                      "fine": str(fine.bold_left), "fine_confounds": str(fine.confounds),
                      "fine_mesh": str(fine.mesh_left),
                      "fine_seconds": time.perf_counter() - start - gifti_s - cifti_s}))


#: Volume grayordinates of fMRIPrep's fsLR-91k CIFTI beside the bundled masks' 58558 cortex
#: vertices: 91282 in all.
FSLR_91K_VOXELS = 91282 - 58558


def _cases(tmp: Path) -> list[tuple[str, dict]]:
    """The inputs; the generated one is written by a subprocess, to keep this process small."""
    cases = []
    if LEMON.is_dir():
        cases.append(("(a) LEMON sub-010188, real scan (.mgz pair)", {
            "left": LEMON / f"{LEMON_STEM}.fsa5.lh.mgz", "right": LEMON / f"{LEMON_STEM}.fsa5.rh.mgz",
            "confounds": LEMON / f"{LEMON_STEM}_confounds.txt", "space": "fsaverage5",
            "t_r": LEMON_T_R_S}))
    else:
        print(f"(a) LEMON: skipped, the folder {LEMON} is absent")
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate",
                           str(tmp / "data")], capture_output=True, text=True, check=True)
    subject = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"(b) generated subject written in {subject['seconds']:.1f} s")
    left = Path(subject["left"])
    cases.append(("(b) generated subject (simulate_surface_dataset seed 0, GIFTI pair)", {
        "left": left, "right": left.with_name(left.name.replace("hemi-L", "hemi-R")),
        "confounds": Path(subject["confounds"]), "space": None, "t_r": None}))
    print(f"(c) generated fsLR-91k dtseries written in {subject['cifti_seconds']:.1f} s")
    cases.append(("(c) generated fsLR-91k CIFTI-2 dtseries (91282 grayordinates)", {
        "left": Path(subject["cifti"]), "right": None,
        "confounds": Path(subject["cifti_confounds"]), "space": None, "t_r": None}))
    print(f"(d) generated fsaverage6 stand-in written in {subject['fine_seconds']:.1f} s")
    fine = Path(subject["fine"])
    cases.append(("(d) generated subject on the fsaverage6 stand-in, mesh given (GIFTI pair)", {
        "left": fine, "right": fine.with_name(fine.name.replace("hemi-L", "hemi-R")),
        "confounds": Path(subject["fine_confounds"]), "space": None, "t_r": None,
        "mesh": Path(subject["fine_mesh"])}))
    return cases


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        _generate_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    versions = ", ".join(f"{name} {version(name)}" for name in ("numpy", "scipy", "nibabel",
                                                                 "nilearn"))
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}; {versions}")
    print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"times: median of {args.repeats} (interleaved) [min-max]")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = _cases(tmp)
        peaks = [_peak_rss_mib(case, tmp) for _, case in cases]
        for (label, case), peak in zip(cases, peaks, strict=True):
            _report(label, case, _measure(case, tmp, args.repeats), peak)
    print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"whole benchmark: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
