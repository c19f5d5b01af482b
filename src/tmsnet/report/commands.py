"""``tmsnet report``: one self-contained HTML report per subject (parsing and printing only)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parsers"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="one self-contained HTML report per subject from every job's derivatives",
        description=("Gather what every tmsnet job wrote for a subject (targeting, treatment plan and "
                     "dose, connectomes, TMS-EEG) into one self-contained HTML page that opens offline: "
                     "a summary card (target in each space, scalp point, dose, plain-language QC "
                     "warnings), then one section per job. Writes "
                     "sub-<label>[_ses-<label>]_report.html (+ JSON sidecar)."),

    )
    p.add_argument("derivatives_dir", type=Path, metavar="DERIVATIVES_DIR",
                   help="the tmsnet derivatives folder (holding sub-<label>/)")
    p.add_argument("--participant-label", nargs="+", default=None, metavar="LABEL",
                   help="subject label(s), with or without 'sub-' (default: every sub-* folder)")
    p.add_argument("--session", default=None, metavar="LABEL",
                   help="only this session (default: all sessions together)")
    p.add_argument("--providers", nargs="+", default=None, metavar="NAME",
                   help="only these sections (default: all: targeting, plan, connectome, tep)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for the reports (default: DERIVATIVES_DIR)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true",
                   help="library warnings as one line (the report's own warnings are printed)")
    p.set_defaults(func=_run_report)


def _run_report(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.exceptions import InputFileNotFoundError
    from tmsnet.io.atomic import json_compatible
    from tmsnet.report.subject import build_subject_report, save_subject_report

    root = args.derivatives_dir
    if not root.is_dir():
        raise InputFileNotFoundError(f"Derivatives folder {root} does not exist; give the --out folder of "
                                     "a tmsnet job.")
    labels = args.participant_label
    if labels is None:
        labels = sorted(p.name[4:] for p in root.glob("sub-*") if p.is_dir())
        if not labels:
            raise InputFileNotFoundError(f"No sub-* folder in {root}: run a tmsnet job first, or give the "
                                         "folder that holds sub-<label>/.")
    # Build every report before writing any, so that a bad label writes nothing.
    reports = [build_subject_report(root, label, session=args.session, providers=args.providers)
               for label in labels]
    written = [(report, save_subject_report(report, args.out)) for report in reports]
    if args.json:
        print(json.dumps(json_compatible({"reports": [{**r.as_dict(), "report": str(path)}
                                                      for r, path in written]}), allow_nan=False))
    else:
        for report, path in written:
            jobs = ", ".join(j for j in report.jobs if j) or "no job outputs found"
            n = len(report.warnings)
            counted = f"{n} warning{'' if n == 1 else 's'}" if n else "no warnings"
            print(f"{report.context.prefix}: {path} (jobs: {jobs}; {counted})")
            for warning in report.warnings:
                print(f"  Warning: {warning}")
    return 0
