"""Command-line interface: parses arguments, calls the API, prints results.

No science here. Every :class:`tmsnet.exceptions.TmsnetError` is printed as
one line (``tmsnet: error: ...``) without a traceback and the process exits
with status 1; argument errors exit with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tmsnet import __version__
from tmsnet.exceptions import TmsnetError
from tmsnet.utils.quiet import quiet_warnings

# Modules that add their own subcommands: each defines
# ``add_parsers(subparsers: argparse._SubParsersAction) -> None`` and sets
# ``func(args, parser) -> int`` on every parser it adds (see tmsnet.targeting.commands).
_COMMAND_MODULES: tuple[str, ...] = (
    "tmsnet.targeting.commands",
    "tmsnet.navigation.commands",
    "tmsnet.networks.commands",
    "tmsnet.eeg.commands",
    "tmsnet.report.commands",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``tmsnet`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="tmsnet",
        description="Connectivity-guided TMS: personalized targets from resting-state fMRI.",
    )
    parser.add_argument("--version", action="version", version=f"tmsnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).add_parsers(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tmsnet`` command; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    from tmsnet.bids_app.commands import is_bids_app_call
    from tmsnet.bids_app.commands import main as bids_app_main

    if is_bids_app_call(argv, parser._subparsers._group_actions[0].choices):  # BIDS-App form
        with quiet_warnings("--quiet" in argv):
            return bids_app_main(argv)
    args = parser.parse_args(argv)
    try:
        with quiet_warnings(bool(getattr(args, "quiet", False))):
            return int(args.func(args, parser))
    except TmsnetError as error:
        print(f"tmsnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("tmsnet: interrupted; no partial output was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
