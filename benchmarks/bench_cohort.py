"""Cohort throughput of the BIDS-App: serial vs 2 local processes vs a 2-worker Dask LocalCluster.

Generates a cohort (default 8 subjects, one 5-min run each), then runs the
participant level three times into fresh output folders and prints wall
times, speed-up and parallel efficiency (serial time / (workers x parallel
time)). Also checks that the three targets.tsv files are byte-identical, and prints
each subject's own job time (a worker's first job pays its imports and compiled
kernels; two jobs at once run slower than one).

The Dask cluster stands for long-lived workers: it is started with docs/cluster.md's
worker settings (``tmsnet.parallel.DASK_WORKER_SETTINGS``: the nanny's
``MALLOC_TRIM_THRESHOLD_`` unset, the workers' profiler off and their monitors slowed;
the ``dask-defaults`` row keeps Dask's own) and each worker runs one untimed job first;
``--jobs`` processes start fresh, as a command starts them.
``benchmarks/check_core_scaling.py`` tells whether the machine itself runs two
processes at once at full speed.

With ``--scaling 4,8,16,32`` it instead generates the largest cohort and runs the first 4,
8, 16 and 32 subjects on one warm Dask LocalCluster, printing the wall time per subject of
each size (flat means the cluster adds no cost per subject as the cohort grows) and the
peak memory of each worker.

Usage::

    .venv/bin/python benchmarks/bench_cohort.py [--subjects 8] [--frames 150] [--workers 2]
    .venv/bin/python benchmarks/bench_cohort.py --frames 300 --scaling 4,8,16,32
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from tmsnet.bids_app.group import run_group
from tmsnet.bids_app.participant import run_participants
from tmsnet.parallel import Backend

#: The rows: this process; local processes; Dask with docs/cluster.md's worker settings;
#: Dask with its own defaults (what those settings are worth, in the same run).
BACKENDS = ("serial", "processes", "dask", "dask-defaults")


def _run(bids: Path, out: Path, *, backend=None, client=None, options) -> float:
    t0 = time.perf_counter()
    outcomes = run_participants(bids, out, backend=backend, client=client, progress=False,
                                options=options, report=False)
    elapsed = time.perf_counter() - t0
    failed = [o for o in outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"unexpected outcomes: {failed}")
    run_group(out, report=False)
    # each subject's own job time: a worker's first job pays its imports and compiled
    # kernels, and two jobs at once run slower than one (compare with the serial row)
    print("    seconds per subject: " + " ".join(f"{o.seconds:.2f}" for o in outcomes), flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150, help="frames per subject (TR 2 s)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n-bootstrap", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved repeats of the three backends; the minimum is reported")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    parser.add_argument("--scaling", type=str, default=None,
                        help="cohort sizes for the Dask scaling row, e.g. 4,8,16,32")
    args = parser.parse_args()
    if args.scaling:
        args.subjects = max(int(n) for n in args.scaling.split(","))

    from distributed import Client

    from tmsnet.simulate import SimulationParameters
    from tmsnet.simulate.bids import simulate_bids_dataset

    root = args.keep or Path(tempfile.mkdtemp(prefix="tmsnet-bench-cohort-"))
    bids = root / "bids"
    t0 = time.perf_counter()
    if not (bids / "participants.tsv").is_file():
        simulate_bids_dataset(bids, n_subjects=args.subjects, seed=0,
                              params=SimulationParameters(n_frames=args.frames))
    print(f"generated {args.subjects} subjects x {args.frames} frames in "
          f"{time.perf_counter() - t0:.1f} s ({bids})")
    options = {"methods": ["peak", "cluster"], "n_bootstrap": args.n_bootstrap, "random_seed": 0,
               "scan_length_fractions": None}
    if args.scaling:
        _scaling_row(args, bids, root, options)
        return
    times: dict[str, float] = {}
    for repeat in range(args.repeats):
        for name in BACKENDS:
            out = root / f"out_{name}"
            shutil.rmtree(out, ignore_errors=True)
            if name == "serial":
                elapsed = _run(bids, out, backend=Backend(), options=options)
            elif name == "processes":
                elapsed = _run(bids, out, options=options,
                               backend=Backend(kind="processes", n_workers=args.workers))
            else:
                with _local_cluster(args.workers, dask_defaults=name == "dask-defaults") as cluster, \
                        Client(cluster) as client:
                    client.wait_for_workers(args.workers)
                    # Long-lived workers have run jobs already, like this (serial) process:
                    # one untimed job on each worker first (imports, compiled kernels).
                    client.run(importlib.import_module, "tmsnet.bids_app.participant")
                    labels = sorted(p.name[4:] for p in bids.glob("sub-*") if p.is_dir())
                    run_participants(bids, root / "out_dask_warmup", client=client, progress=False,
                                     options=options, report=False,
                                     participant_labels=labels[:args.workers])
                    elapsed = _run(bids, out, client=client, options=options)
            times[name] = min(times.get(name, float("inf")), elapsed)
            print(f"repeat {repeat + 1}: {name:>13}: {elapsed:7.1f} s  (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
    reference = (root / "out_serial" / "targets.tsv").read_bytes()
    identical = all((root / f"out_{n}" / "targets.tsv").read_bytes() == reference
                    for n in BACKENDS[1:])
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.subjects} subjects, {args.frames} frames, "
          f"methods peak+cluster, n_bootstrap={args.n_bootstrap}")
    print(f"minimum of {args.repeats} interleaved repeats")
    print("| backend | wall time (s) | speed-up | parallel efficiency |")
    print("|---|---|---|---|")
    for name in BACKENDS:
        workers = 1 if name == "serial" else args.workers
        speedup = times["serial"] / times[name]
        print(f"| {name}{'' if name == 'serial' else f' ({workers} workers)'} | "
              f"{times[name]:.1f} | {speedup:.2f} | {100 * speedup / workers:.0f} % |")
    print(f"\ntargets.tsv identical across backends: {identical}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _local_cluster(n_workers: int, *, dask_defaults: bool = False):
    """A LocalCluster of ``n_workers`` x 1 thread, with docs/cluster.md's worker settings.

    (``tmsnet.parallel.DASK_WORKER_SETTINGS``; with Dask's defaults, ``dask_defaults``,
    a nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` and the workers' monitors cost tmsnet
    jobs up to a second a scan.)
    """
    import dask
    from distributed import LocalCluster

    from tmsnet.parallel import DASK_WORKER_SETTINGS

    settings = {} if dask_defaults else DASK_WORKER_SETTINGS
    with dask.config.set(settings), LocalCluster(n_workers=n_workers, processes=True,
                                              threads_per_worker=1, dashboard_address=None) as cluster:
        yield cluster


def _worker_peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _scaling_row(args: argparse.Namespace, bids: Path, root: Path, options: dict) -> None:
    """Wall time per subject for growing cohorts on one warm 2-worker LocalCluster."""
    from distributed import Client

    labels = sorted(p.name[4:] for p in bids.glob("sub-*") if p.is_dir())
    sizes = [int(n) for n in args.scaling.split(",")]
    rows = []
    with _local_cluster(args.workers) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers)
        client.run(importlib.import_module, "tmsnet.bids_app.participant")
        # one job on each worker first (compiled kernels loaded, caches warm), not counted
        run_participants(bids, root / "out_scaling_warmup", client=client, progress=False,
                         options=options, report=False, participant_labels=labels[:args.workers])
        for n in sizes:
            out = root / f"out_scaling_{n}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            outcomes = run_participants(bids, out, client=client, progress=False, options=options,
                                        report=False, participant_labels=labels[:n])
            elapsed = time.perf_counter() - t0
            if any(o.status != "done" for o in outcomes):
                raise SystemExit(f"unexpected outcomes: {outcomes}")
            rows.append((n, elapsed))
            print(f"{n:3d} subjects: {elapsed:7.1f} s, {elapsed / n:5.2f} s a subject (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
        peaks = client.run(_worker_peak_rss_mib)
    per_subject = [t / n for n, t in rows]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; Dask LocalCluster, {args.workers} workers x 1 thread; "
          f"{args.frames} frames a subject, methods peak+cluster, n_bootstrap={args.n_bootstrap}")
    print("| subjects | wall time (s) | s a subject | / the smallest cohort's |")
    print("|---|---|---|---|")
    for (n, t), each in zip(rows, per_subject, strict=True):
        print(f"| {n} | {t:.1f} | {each:.2f} | {each / per_subject[0]:.2f} |")
    print(f"spread of the time a subject: {max(per_subject) / min(per_subject) - 1:.1%} "
          "(goal: flat within 10 %)")
    print("peak RSS of each worker (MiB): "
          + ", ".join(f"{v:.0f}" for v in peaks.values()) + " (goal: <= 3 GB)")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
