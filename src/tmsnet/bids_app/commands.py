"""Command line of the BIDS-App: ``tmsnet BIDS_DIR OUTPUT_DIR participant|group [options]``.

This form follows the BIDS-Apps convention (Gorgolewski et al. 2017, PLoS
Comput Biol 13:e1005209) and coexists with the subcommands (``tmsnet target
...``): :func:`tmsnet.cli.main` hands the arguments over here when
:func:`is_bids_app_call` says so. No science here: arguments are turned into
calls of :func:`tmsnet.bids_app.participant.run_participants` and
:func:`tmsnet.bids_app.group.run_group`.

Exit status: 0 when every job succeeded (or was up to date), 1 when any
participant failed (see ``OUTPUT_DIR/logs/*_crash.json``) or on a
:class:`~tmsnet.exceptions.TmsnetError`, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tmsnet import __version__
from tmsnet.exceptions import InvalidParameterError, TmsnetError

__all__ = ["build_parser", "is_bids_app_call", "main"]

LEVELS = ("participant", "group")


def is_bids_app_call(argv: Sequence[str], subcommands: Sequence[str]) -> bool:
    """Whether ``argv`` is the BIDS-App form rather than a subcommand.

    True when the first argument is neither an option nor a known subcommand
    and the third argument is ``participant`` or ``group``.
    """
    return (len(argv) >= 3 and not argv[0].startswith("-") and argv[0] not in subcommands
            and argv[2] in LEVELS)


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: use KEY=VALUE, e.g. n_bootstrap=200")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    """The BIDS-App argument parser."""
    from tmsnet.targeting.methods import available_methods

    methods = available_methods()
    p = argparse.ArgumentParser(
        prog="tmsnet",
        usage="tmsnet BIDS_DIR OUTPUT_DIR {participant,group} [options]",
        description=(
            "tmsnet as a BIDS-App: personalized sgACC-anticorrelated DLPFC targets for every "
            "participant of a BIDS dataset with fMRIPrep outputs (participant level), then one "
            "targets.tsv, group figures and a group report (group level). Jobs run serially, on "
            "local processes (--jobs) or on a Dask cluster (--dask-scheduler); finished "
            "participants are skipped on a re-run."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("bids_dir", type=Path, metavar="BIDS_DIR", help="raw BIDS dataset root")
    p.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR",
                   help="output folder (a BIDS-Derivatives dataset), e.g. BIDS_DIR/derivatives/tmsnet")
    p.add_argument("analysis_level", choices=LEVELS, metavar="{participant,group}",
                   help="participant: one job per participant/session; group: aggregate")
    p.add_argument("--version", action="version", version=f"tmsnet {__version__}")

    sel = p.add_argument_group("selection")
    sel.add_argument("--participant-label", "--participant_label", nargs="+", default=None,
                     metavar="LABEL", help="participants to process (01 or sub-01); default all")
    sel.add_argument("--session-label", nargs="+", default=None, metavar="LABEL",
                     help="sessions to process; default all")
    sel.add_argument("--fmriprep-dir", type=Path, default=None,
                     help="fMRIPrep outputs (default BIDS_DIR/derivatives/fmriprep)")
    sel.add_argument("--task", default="rest", help="BIDS task label of the resting-state scan")
    sel.add_argument("--space", default="MNI152NLin2009cAsym",
                     help="template space of the fMRIPrep BOLD (space- entity)")
    sel.add_argument("--res", default=None, help="res- label, if fMRIPrep wrote several resolutions")
    sel.add_argument("--runs", choices=("concat", "each"), default="concat",
                     help="several runs in a session: concatenate after per-run cleaning, or one "
                          "target per run")
    sel.add_argument("--run-label", nargs="+", default=None, metavar="LABEL",
                     help="use only these runs (e.g. 1 or 1 2)")

    method = p.add_argument_group("method (see `tmsnet target --help`)")
    method.add_argument("--method", nargs="+", default=["cluster"], choices=[*methods, "all"],
                        metavar="METHOD", help=f"targeting method(s): {', '.join(methods)} or all")
    method.add_argument("--cluster-percentile", type=float, default=10.0,
                        help="cluster method: share (%%) of the negative r values kept")
    method.add_argument("--weighted-centroid", action="store_true",
                        help="cluster method: weight the centroid by |r|")
    method.add_argument("--confound-strategy", default="simple",
                        help="confound strategy: simple, scrubbing, minimal or none")
    method.add_argument("--no-gsr", action="store_true", help="no global signal regression")
    method.add_argument("--low-pass", type=float, default=0.1, help="low-pass edge (Hz)")
    method.add_argument("--high-pass", type=float, default=0.01, help="high-pass edge (Hz)")
    method.add_argument("--smoothing-fwhm", type=float, default=6.0,
                        help="Gaussian smoothing FWHM in mm (0 = none)")
    method.add_argument("--discard-frames", type=int, default=0, help="initial frames to drop")
    method.add_argument("--seed", default="sgacc", choices=["sgacc", "sgacc-bilateral"],
                        help="built-in seed ROI")
    method.add_argument("--search-radius", type=float, default=20.0,
                        help="radius of the standard DLPFC search spheres (mm)")
    method.add_argument("--n-bootstrap", type=int, default=None,
                        help="block-bootstrap resamples for the target uncertainty (0 = off; "
                             "default: compute_targets' default)")
    method.add_argument("--random-seed", type=int, default=None,
                        help="seed of every random step (same seed, same result on any backend)")
    method.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                        help="any other keyword of tmsnet.targeting.workflow.compute_targets "
                             "(VALUE read as JSON, e.g. n_bootstrap=200, random_seed=0); repeatable")

    run = p.add_argument_group("execution")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--jobs", "-j", type=int, default=1,
                       help="local worker processes (1 = serial in this process)")
    where.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                       help="run on a running dask.distributed scheduler (e.g. tcp://host:8786, or "
                            "a dask-jobqueue SLURM cluster, see docs/cluster.md); OUTPUT_DIR must "
                            "be on a file system the workers share")
    run.add_argument("--threads-per-job", type=int, default=1,
                     help="BLAS threads per job (fixed for bit-identical results on any backend)")
    run.add_argument("--force", action="store_true",
                     help="recompute participants whose outputs are up to date")
    run.add_argument("--no-report", action="store_true", help="skip the HTML reports")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _targeting_options(args: argparse.Namespace) -> dict[str, Any]:
    from tmsnet.targeting.methods import available_methods

    if args.smoothing_fwhm < 0:
        raise InvalidParameterError("--smoothing-fwhm must be >= 0 mm (0 = no smoothing).")
    methods = list(available_methods()) if "all" in args.method else list(args.method)
    options: dict[str, Any] = {
        "methods": methods,
        "confound_strategy": args.confound_strategy,
        "global_signal_regression": not args.no_gsr,
        "low_pass_hz": args.low_pass,
        "high_pass_hz": args.high_pass,
        "smoothing_fwhm_mm": args.smoothing_fwhm or None,
        "discard_frames": args.discard_frames,
        "seed": args.seed,
        "search_radius_mm": args.search_radius,
        "cluster_percentile": args.cluster_percentile,
        "weighted_centroid": args.weighted_centroid,
    }
    if args.n_bootstrap is not None:
        options["n_bootstrap"] = args.n_bootstrap
    if args.random_seed is not None:
        options["random_seed"] = args.random_seed
    for key, value in args.option:
        options[key] = value
    return options


def _participant(args: argparse.Namespace) -> int:
    from tmsnet.bids_app.participant import run_participants
    from tmsnet.parallel import choose_backend

    backend = choose_backend(jobs=args.jobs, dask_scheduler=args.dask_scheduler)
    progress = not args.quiet

    def say(outcome: Any) -> None:
        if outcome.status == "failed":
            text = f"{outcome.label}: FAILED: {outcome.error} (details: {outcome.crash_file})"
        elif outcome.status == "skipped":
            text = f"{outcome.label}: up to date, skipped"
        else:
            text = f"{outcome.label}: done in {outcome.seconds:.1f} s"
        if progress:
            from tqdm.auto import tqdm

            tqdm.write(f"tmsnet: {text}", file=sys.stderr)

    if progress:
        print(f"tmsnet: participant level on {backend.describe()}", file=sys.stderr)
    outcomes = run_participants(
        args.bids_dir, args.output_dir, backend=backend, progress=progress, on_outcome=say,
        participant_labels=args.participant_label, session_labels=args.session_label,
        fmriprep_dir=args.fmriprep_dir, task=args.task, space=args.space, res=args.res,
        runs=args.runs, run_labels=args.run_label, options=_targeting_options(args),
        report=not args.no_report, force=args.force, n_threads=args.threads_per_job,
    )
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    print(f"tmsnet participant: {counts['done']} done, {counts['skipped']} up to date, "
          f"{counts['failed']} failed ({len(outcomes)} jobs); output: {args.output_dir}")
    for outcome in outcomes:
        if outcome.status == "failed":
            print(f"  {outcome.label}: {outcome.error}\n    crash file: {outcome.crash_file}")
    return 1 if counts["failed"] else 0


def _group(args: argparse.Namespace) -> int:
    from tmsnet.bids_app.group import run_group

    written = run_group(args.output_dir, report=not args.no_report)
    for role, path in written.items():
        print(f"{role}: {path}")
    return 0


def main(argv: Sequence[str]) -> int:
    """Run the BIDS-App form of the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(argv))
    try:
        if args.analysis_level == "participant":
            return _participant(args)
        return _group(args)
    except TmsnetError as error:
        print(f"tmsnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("tmsnet: interrupted; finished participants are kept, unfinished ones left no "
              "output (re-run to continue).", file=sys.stderr)
        return 130
