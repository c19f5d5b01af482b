"""Time and memory of the ``tmsnet target`` job against the floors of reading its BOLD.

Usage::

    .venv/bin/python benchmarks/bench_target.py [--frames 300] [--repeats 3] [--hier-bootstrap 100]

Issue 16, "Must show". Generates one sample subject (2 mm MNI, ``--frames`` frames, TR
2 s) in a temporary folder, then, in one run and on the same file, measures:

* the gzip floor: ``gzip -dc FILE > /dev/null`` (a subprocess, the plain gzip binary);
* the nibabel floor: ``nibabel.load(bold).get_fdata(dtype=float32)`` in this process;
* the job as the CLI runs it (``tmsnet target --bold ... --confounds ... --out DIR``: load,
  clean, regions, seed map, the method(s), their uncertainty, every output file and the
  HTML report) without ``--method`` (``auto``, the default job: seedmap on these scans) and
  for each ``--method``: ``cluster``, ``seedmap``,
  ``peak``, ``hierarchical`` and ``all``, each with its default uncertainty (block
  bootstrap 100 + split-half + scan-length advice, whose pieces of the scan with at
  least 30 effective degrees of freedom get 50 resamples each: the first 50 and 75 % of
  these 10-min scans). ``hierarchical`` and ``all`` re-run the clustering in every
  resample (about half a minute each), so they run in the first round only;
  ``--hier-bootstrap N`` runs them with ``--n-bootstrap N`` instead of the default 100
  for a quicker look (N + split-half + max(10, N // 2) per piece), and their rows then
  say "reduced";
* the default job in a fresh ``python -m tmsnet.cli target`` process, as a user starts it
  (imports and the compiled-kernel cache included);
* the default job's stages (one run each, same process), among them goal 5's "writing
  outputs and the report" timed on its own;
* the default job's peak resident memory: ``VmHWM`` of a fresh subprocess that runs it
  once, against a subprocess that only imports the same modules, and the ratio of both
  to the scan's in-mask float32 data (goal 4: peak <= 2.5 x that data).

Times are medians of ``--repeats`` interleaved runs (round 1 of every row, then round
2...), after one uncounted warm-up job (imports, compiled kernels, page cache); the
spread is given as ``[min-max]``. Ratios job / floor are what compare across machines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import nibabel as nib
import numpy as np

METHODS = ("auto", "cluster", "seedmap", "peak", "hierarchical", "all")
#: Methods whose uncertainty re-runs the clustering per resample (reduced resamples here).
SLOW = ("hierarchical", "all")

_RSS_CODE = """
import json, sys
from pathlib import Path
def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from tmsnet.cli import build_parser, main
build_parser()  # imports every command module, as the job does
import tmsnet.jobs.target, tmsnet.targeting.workflow, tmsnet.report.subject
import tmsnet.report.providers.targeting  # noqa: F401
if sys.argv[1] == "job":
    import contextlib, os
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        main(sys.argv[2:])
print(json.dumps({"vmhwm_mib": hwm()}))
"""


def _spread(times: list[float]) -> str:
    med = statistics.median(times)
    if len(times) == 1:
        return f"{med:6.2f} s (1 run)"
    return f"{med:6.2f} s [{min(times):.2f}-{max(times):.2f}]"


def _timed(func) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _gzip_floor(bold: Path) -> float:
    with open(os.devnull, "wb") as sink:
        start = time.perf_counter()
        subprocess.run(["gzip", "-dc", str(bold)], stdout=sink, check=True)
        return time.perf_counter() - start


def _peak_rss(argv: list[str]) -> dict[str, float]:
    """VmHWM (MiB) of a fresh subprocess that imports the job, or also runs ``argv``."""
    out = subprocess.run([sys.executable, "-c", _RSS_CODE, *argv], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _stages(bold: Path, confounds: Path, out: Path) -> dict[str, float]:
    """One default job, stage by stage, as :func:`compute_targets` and :func:`run_target` run it."""
    from tmsnet.fmri.cleaning import BoldCleaningParameters, clean_bold
    from tmsnet.io.fmriprep import load_bold, load_confounds_table
    from tmsnet.jobs.target import _write_report
    from tmsnet.targeting import workflow
    from tmsnet.targeting.outputs import write_targeting_outputs
    from tmsnet.targeting.results import result_summary

    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_bold(bold)
    table = load_confounds_table(confounds, n_frames=data.n_frames)
    stages["load_bold + confounds"] = time.perf_counter() - t0
    clock: dict[str, float] = {}
    clean_bold(data, table, BoldCleaningParameters(), timings=clock)
    for key in ("smoothing", "temporal_operator", "temporal"):
        stages[f"clean: {key}"] = clock.get(key, float("nan"))
    stages["clean: other"] = sum(clock.values()) - sum(clock.get(k, 0.0) for k in (
        "smoothing", "temporal_operator", "temporal"))
    del data
    parameters = workflow.TargetingParameters()
    scan = workflow.load_and_clean(bold, confounds, parameters.cleaning)  # not timed (above)
    t0 = time.perf_counter()
    regions = workflow._regions_and_context(scan, parameters)
    regions.context.seed_connectivity()
    targets, failed = workflow.run_methods(regions.context, parameters, lambda _: None,
                                           lambda: None)
    stages["regions + seed map + the default method"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    uncertainty = workflow.estimate_uncertainty(regions.context, scan, targets, parameters)
    stages["uncertainty (bootstrap 100 + split-half + scan length)"] = time.perf_counter() - t0
    result = workflow._assemble_result(scan, regions, parameters, targets, failed, uncertainty)
    del scan
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    write_targeting_outputs(result, out, summary=result_summary(result), write_summary=True)
    stages["outputs (maps, sidecars, tables)"] = time.perf_counter() - t0
    forked, serial = [], []
    for _ in range(3):  # interleaved; n_jobs None is the default job's (figures in forked processes)
        forked.append(_timed(lambda: _write_report(out, result.entities, "benchmark", None)))
        serial.append(_timed(lambda: _write_report(out, result.entities, "benchmark", 1)))
    stages["HTML report (median of 3)"] = statistics.median(forked)
    stages["HTML report, figures in this process (n_jobs=1, median of 3)"] = statistics.median(serial)
    return stages


def _job_rows(args: argparse.Namespace, bold: Path, confounds: Path, out: Path,
              ) -> tuple[dict[str, list[float]], float]:
    """Interleaved rounds of the floors and every method's job; returns times and the warm-up."""
    from tmsnet.cli import main as cli_main

    def job(method: str) -> None:
        extra = [] if method == "auto" else ["--method", method]
        if method in SLOW and args.hier_bootstrap != 100:
            extra += ["--n-bootstrap", str(args.hier_bootstrap)]
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            cli_main(["target", "--bold", str(bold), "--confounds", str(confounds), "--out",
                      str(out / method), "--quiet", "--json", *extra])

    def fresh() -> None:  # the CLI as a user starts it: imports and compiled kernels included
        subprocess.run([sys.executable, "-m", "tmsnet.cli", "target", "--bold", str(bold),
                        "--confounds", str(confounds), "--out", str(out / "fresh"), "--quiet",
                        "--json"], check=True, stdout=subprocess.DEVNULL)

    warm = _timed(lambda: job("auto"))
    rows: dict[str, list[float]] = {"gzip": [], "nibabel": [], "fresh": [],
                                    **{m: [] for m in METHODS}}
    for round_ in range(args.repeats):
        rows["gzip"].append(_gzip_floor(bold))
        rows["nibabel"].append(_timed(lambda: nib.load(bold).get_fdata(dtype=np.float32)))
        rows["fresh"].append(_timed(fresh))
        for method in METHODS:
            if method not in SLOW or round_ == 0:  # the slow ones once (minutes each)
                rows[method].append(_timed(lambda method=method: job(method)))
    return rows, warm


def _print_report(args, meta: dict, rows: dict[str, list[float]], warm: float,
                  stages: dict[str, float], rss: dict[str, float]) -> None:
    gz, nb = statistics.median(rows["gzip"]), statistics.median(rows["nibabel"])
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {version('numpy')}, scipy "
          f"{version('scipy')}, nibabel {version('nibabel')}, numba {version('numba')}, "
          f"isal {meta['isal']}; load average {meta['load_start']} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end")
    print(f"input: {meta['shape']} {meta['dtype']} BOLD, {meta['size_mb']:.0f} MB .nii.gz, "
          f"{meta['n_voxels']} brain voxels; in-mask float32 data {meta['data_mib']:.0f} MiB")
    print(f"repeats: {args.repeats} interleaved, after a warm-up job of {warm:.2f} s (not counted)")
    print(f"gzip floor    (gzip -dc FILE > /dev/null):           {_spread(rows['gzip'])}")
    print(f"nibabel floor (nib.load + get_fdata float32):         {_spread(rows['nibabel'])}")
    print("job per method (tmsnet target, outputs + HTML report), with its uncertainty:")
    for method in METHODS:
        med = statistics.median(rows[method])
        reduced = method in SLOW and args.hier_bootstrap != 100
        boot = (f"bootstrap {args.hier_bootstrap} + split-half + scan length "
                f"{max(10, args.hier_bootstrap // 2)} per piece (reduced)" if reduced
                else "bootstrap 100 + split-half + scan length 50 per piece")
        if method in SLOW:
            boot += ", round 1 only"
        name = "(default, auto)" if method == "auto" else f"--method {method}"
        print(f"  {name:<22s} {_spread(rows[method])}  {med / gz:5.2f} x gzip  "
              f"{med / nb:5.2f} x nibabel   [{boot}]")
    fresh = statistics.median(rows["fresh"])
    print(f"  default job, fresh process (python -m tmsnet.cli target, imports included) "
          f"{_spread(rows['fresh'])}  {fresh / gz:5.2f} x gzip  {fresh / nb:5.2f} x nibabel")
    default = statistics.median(rows["auto"])
    print(f"default job / gzip floor: {default / gz:.2f} (goal <= 2); "
          f"default job / nibabel floor: {default / nb:.2f} (goal <= 1.3)")
    print("default job, stages (one run each, same process):")
    for name, seconds in stages.items():
        print(f"  {name:<56s} {seconds:6.2f} s")
    writing = stages["outputs (maps, sidecars, tables)"] + stages["HTML report (median of 3)"]
    print(f"  {'writing outputs + report (goal 5: <= 1.5 s)':<56s} {writing:6.2f} s")
    peak, base = rss["job"], rss["imports"]
    data = meta["data_mib"]
    print(f"peak RSS of the default job (VmHWM, fresh subprocess): {peak:.0f} MiB = "
          f"{peak / data:.2f} x the in-mask float32 data; over a process that only imports "
          f"the job ({base:.0f} MiB): +{peak - base:.0f} MiB = {(peak - base) / data:.2f} x "
          "(goal 4: <= 2.5 x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hier-bootstrap", type=int, default=100,
                        help="resamples for --method hierarchical and all (100: the default job)")
    args = parser.parse_args()
    load_start = f"{os.getloadavg()[0]:.2f}"

    from tmsnet.io.fmriprep import load_bold
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subject = simulate_fmriprep_dataset(
            tmp / "data", n_subjects=1, seed=0, params=SimulationParameters(n_frames=args.frames)
        )[0]
        bold, confounds = subject.bold_path, subject.confounds_path
        loaded = load_bold(bold)
        meta = {"shape": nib.load(bold).shape, "dtype": nib.load(bold).get_data_dtype(),
                "size_mb": bold.stat().st_size / 1e6, "n_voxels": loaded.data.shape[1],
                "data_mib": loaded.data.nbytes / 2**20, "load_start": load_start}
        del loaded
        try:
            meta["isal"] = version("isal")
        except Exception:  # noqa: BLE001 - not installed
            meta["isal"] = "not installed"
        cli = ["target", "--bold", str(bold), "--confounds", str(confounds), "--quiet",
               "--json"]
        rss = {"imports": _peak_rss(["imports"])["vmhwm_mib"],
               "job": _peak_rss(["job", *cli, "--out", str(tmp / "rss")])["vmhwm_mib"]}
        rows, warm = _job_rows(args, bold, confounds, tmp / "jobs")
        stages = _stages(bold, confounds, tmp / "stages")
    _print_report(args, meta, rows, warm, stages, rss)


if __name__ == "__main__":
    main()
