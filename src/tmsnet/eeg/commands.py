"""``tmsnet tep``: TMS-EEG from a raw recording to TEPs, oscillations, propagation and PCIst.

Only argument parsing and printing live here; the science is in
:mod:`tmsnet.eeg.workflow` and the modules it composes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from tmsnet.eeg.cleaning import CleaningParameters
from tmsnet.eeg.io import RecordingParameters
from tmsnet.eeg.workflow import TepMeasureParameters
from tmsnet.utils.params import add_parameter_arguments, parameters_from_args

__all__ = ["add_parsers"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tep`` subcommand."""
    p = subparsers.add_parser(
        "tep",
        help="TMS-EEG: clean a recording, TEPs, peaks, ERSP/ITC, synchrony, propagation, PCIst",
        description=(
            "Clean a TMS-EEG recording with the TESA reference chain on MNE (pulse cut and cubic "
            "interpolation, downsampling, bad channels/trials, two ICA rounds with automatic "
            "component rules, filtering, interpolation, average reference) and write cleaned "
            "epochs and evoked (FIF), a peaks TSV, a measures JSON (PCIst, natural frequency, "
            "spread), sidecars and an HTML report under --out."
        ),
    )
    p.add_argument("raw", nargs="?", type=Path, default=None,
                   help="raw recording MNE reads (BrainVision .vhdr, EDF/BDF, EEGLAB .set, FIF) or a "
                        "BIDS-EEG file (sub-*_eeg.*)")
    p.add_argument("--demo", action="store_true",
                   help="simulate a recording with planted TEP and artifacts (32 channels, 2 kHz, 80 "
                        "pulses) under OUT/sourcedata and run on it")
    p.add_argument("--demo-trials", type=int, default=80, help=argparse.SUPPRESS)
    ev = p.add_argument_group("pulses (first source that has them)")
    ev.add_argument("--events", type=Path, default=None,
                    help="BIDS events.tsv (onset in s) or MNE events file of the pulses")
    add_parameter_arguments(ev, RecordingParameters)
    add_parameter_arguments(p.add_argument_group("cleaning (TESA defaults)"), CleaningParameters)
    add_parameter_arguments(p.add_argument_group("measures"), TepMeasureParameters)
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, help="output folder (BIDS-Derivatives)")
    out.add_argument("--json", action="store_true", help="print one JSON object with the measures")
    out.add_argument("--no-report", action="store_true", help="skip the HTML report")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_tep)


def _demo_recording(out: Path, seed: int, progress: bool, n_trials: int = 80) -> Path:
    from tmsnet.io.atomic import atomic_write_with
    from tmsnet.simulate.eeg import EegSimulationParameters, simulate_tms_eeg

    folder = out / "sourcedata" / "tmsnet-eeg-demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sub-demo_task-tms_eeg.fif"
    if progress:
        print(f"tmsnet: simulating the demo recording at {path}", file=sys.stderr)
    sim = simulate_tms_eeg(EegSimulationParameters(n_trials=n_trials, natural_frequency_hz=25.0,
                                                   natural_frequency_uv=6.0), seed=seed)
    atomic_write_with(path, lambda tmp: sim.raw.save(tmp, overwrite=True, verbose=False),
                      suffix="_eeg.fif")
    return path


def _run_tep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.exceptions import InvalidParameterError
    from tmsnet.io.atomic import ensure_output_dir
    from tmsnet.jobs.tep import run_tep

    if args.demo and args.raw is not None:
        parser.error("--demo generates its own recording; do not give RAW as well")
    if not args.demo and args.raw is None:
        parser.error("give a RAW recording (or --demo)")
    recording = parameters_from_args(RecordingParameters, args)
    cleaning = parameters_from_args(CleaningParameters, args)
    measures = parameters_from_args(TepMeasureParameters, args)
    if args.demo_trials < 10:
        raise InvalidParameterError("--demo-trials must be >= 10.")
    progress = not args.quiet
    out = ensure_output_dir(args.out)
    raw_path = (_demo_recording(out, cleaning.random_seed, progress, args.demo_trials) if args.demo
                else args.raw)

    def on_pulses(n_pulses: int, source: str) -> None:
        if progress:
            print(f"tmsnet: {n_pulses} pulses ({source}); cleaning...", file=sys.stderr)

    # some libraries print to stdout; keep it for the --json object only
    with contextlib.redirect_stdout(sys.stderr):
        job = run_tep(raw_path, out, events_file=args.events, recording=recording, cleaning=cleaning,
                      measures=measures, report=not args.no_report, on_pulses=on_pulses)
    _print_summary(job, args.json)
    return 0


def _print_summary(job, as_json: bool) -> None:
    from tmsnet.eeg.workflow import tep_summary
    from tmsnet.io.atomic import json_compatible

    written = job.written
    summary = tep_summary(job.analysis)
    summary["outputs"] = {role: str(path) for role, path in written.items()}
    if as_json:
        print(json.dumps(json_compatible(summary), allow_nan=False))
        return
    peaks = ", ".join(f"{k} {v:.0f} ms" for k, v in summary["gmfp_peaks_ms"].items() if v == v)
    print(f"Trials: {summary['n_trials']}; removed components: {len(summary['removed_components'])}")
    print(f"GMFP peaks: {peaks}")
    print(f"PCIst: {summary['pcist']['value']:.1f}; natural frequency: "
          f"{summary['natural_frequency']['frequency_hz']:.0f} Hz")
    print(f"Signal-to-noise (GMFP after the pulse / baseline): {summary['signal_to_noise']:.1f}")
    for warning in summary["warnings"]:
        print(f"Warning: {warning}")
    if "report" in written:
        print(f"Report: {written['report']}")
