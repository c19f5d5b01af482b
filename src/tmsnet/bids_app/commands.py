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
from tmsnet.exceptions import TmsnetError
from tmsnet.targeting.commands import add_targeting_arguments
from tmsnet.targeting.methods import resolve_methods
from tmsnet.targeting.workflow import DEPRECATED_OPTION_NAMES, targeting_parameter_classes
from tmsnet.utils.params import parameter_specs

__all__ = ["build_parser", "is_bids_app_call", "main"]

LEVELS = ("participant", "group")
#: Targeting parameters offered as flags (recorded in every job's fingerprint); any other
#: field goes through ``--option KEY=VALUE``.
BIDS_APP_FIELDS = frozenset({
    "cluster_percentile", "weighted_centroid", "confound_strategy", "global_signal_regression",
    "low_pass_hz", "high_pass_hz", "smoothing_fwhm_mm", "discard_frames", "seed_region",
    "search_radius_mm", "n_bootstrap", "random_seed",
})


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


def _plan_argument(group: Any, name: str, *flags: str, choices: bool = False, **kwargs: Any) -> None:
    """A selection/execution option with the default, help and choices of its plan field.

    The options are hand-written (an alias, ``--no-report``), but their defaults are
    those of :class:`tmsnet.bids_app.participant.ParticipantPlan`, declared once.
    """
    from tmsnet.bids_app.participant import ParticipantPlan

    field, spec = parameter_specs(ParticipantPlan)[name]
    if choices:
        kwargs["choices"] = spec.choices
    group.add_argument(*flags, default=field.default, help=spec.help, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The BIDS-App argument parser."""
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

    )
    p.add_argument("bids_dir", type=Path, metavar="BIDS_DIR", help="raw BIDS dataset root")
    p.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR",
                   help="output folder (a BIDS-Derivatives dataset), e.g. BIDS_DIR/derivatives/tmsnet")
    p.add_argument("analysis_level", choices=LEVELS, metavar="{participant,group}",
                   help="participant: one job per participant/session; group: aggregate")
    p.add_argument("--version", action="version", version=f"tmsnet {__version__}")

    sel = p.add_argument_group("selection")
    _plan_argument(sel, "participant_labels", "--participant-label", "--participant_label",
                   nargs="+", metavar="LABEL")
    _plan_argument(sel, "session_labels", "--session-label", nargs="+", metavar="LABEL")
    _plan_argument(sel, "fmriprep_dir", "--fmriprep-dir", type=Path)
    _plan_argument(sel, "task", "--task")
    _plan_argument(sel, "space", "--space")
    _plan_argument(sel, "res", "--res")
    _plan_argument(sel, "surface_mesh", "--surface-mesh", type=Path, metavar="LEFT_SURFACE")
    _plan_argument(sel, "runs", "--runs", choices=True)
    _plan_argument(sel, "run_labels", "--run-label", nargs="+", metavar="LABEL")

    method = p.add_argument_group("method (see `tmsnet target --help`)")
    add_targeting_arguments(p, only=BIDS_APP_FIELDS,
                            groups={name: method for name in ("method", "uncertainty", "cleaning",
                                                              "regions")})
    method.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                        help="any other targeting parameter (a field of the cleaning, region, "
                             "method or uncertainty parameters, as listed by 'tmsnet target "
                             "--help' with dashes as underscores; VALUE read as JSON, e.g. "
                             "scan_length_fractions=null, hierarchical_min_voxels=40); repeatable")

    run = p.add_argument_group("execution")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--jobs", "-j", type=int, default=1,
                       help="local worker processes (1 = serial in this process)")
    where.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                       help="run on a running dask.distributed scheduler (e.g. tcp://host:8786, or "
                            "a dask-jobqueue SLURM cluster, see docs/cluster.md); OUTPUT_DIR must "
                            "be on a file system the workers share")
    _plan_argument(run, "n_threads", "--threads-per-job", type=int)
    _plan_argument(run, "force", "--force", action="store_true")
    run.add_argument("--no-report", action="store_true", help="skip the HTML reports")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def _targeting_options(args: argparse.Namespace) -> dict[str, Any]:
    """The targeting options of the run, by field name: the offered flags, then ``--option``."""
    options: dict[str, Any] = {"methods": resolve_methods(args.methods)}
    for cls in targeting_parameter_classes():
        for name, (_field, spec) in parameter_specs(cls).items():
            if name in BIDS_APP_FIELDS:
                value = getattr(args, name)
                options[name] = spec.from_cli(value) if spec.from_cli is not None else value
    for key, value in args.option:
        if key in DEPRECATED_OPTION_NAMES:
            print(f"tmsnet: warning: --option {key}=... is deprecated and will be removed in the "
                  f"next release; use --option {DEPRECATED_OPTION_NAMES[key]}=...", file=sys.stderr)
            key = DEPRECATED_OPTION_NAMES[key]
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
        surface_mesh=args.surface_mesh, runs=args.runs, run_labels=args.run_label,
        options=_targeting_options(args),
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
