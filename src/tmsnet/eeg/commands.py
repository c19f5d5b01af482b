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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
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
    ev.add_argument("--annotation", default="TMS",
                    help="regular expression matching the annotation descriptions of the pulses")
    ev.add_argument("--stim-channel", default=None, help="stimulus channel with the pulse triggers")
    ev.add_argument("--detect-pulses", action="store_true",
                    help="detect pulses from the artifact (slope rule) even if events exist")
    ev.add_argument("--refractory", type=float, default=0.5,
                    help="minimum interval between detected pulses (s)")
    ev.add_argument("--montage", default="auto",
                    help="'auto' (file positions, else standard 10-05), a built-in montage or a file")
    cl = p.add_argument_group("cleaning (TESA defaults)")
    cl.add_argument("--interpolation", default="cubic", choices=["cubic", "linear", "window", "constant"],
                    help="pulse-window interpolation")
    cl.add_argument("--decay", default="none", choices=["none", "exp", "double"],
                    help="decay artifact fit (exponential or double exponential)")
    cl.add_argument("--resample", type=float, default=1000.0, help="sampling rate after cleaning (Hz)")
    cl.add_argument("--ica-components", type=int, default=15, help="ICA components per round")
    cl.add_argument("--ica-method", default="fastica", choices=["fastica", "picard", "infomax"])
    cl.add_argument("--no-ica1", action="store_true", help="skip ICA round 1 (TMS-evoked muscle)")
    cl.add_argument("--no-ica2", action="store_true", help="skip ICA round 2 (blink, eye, muscle, noise)")
    cl.add_argument("--l-freq", type=float, default=1.0, help="high-pass edge (Hz)")
    cl.add_argument("--h-freq", type=float, default=100.0, help="low-pass edge (Hz)")
    cl.add_argument("--line-freq", type=float, default=50.0, help="line frequency for the band-stop (Hz)")
    cl.add_argument("--sound", action="store_true", help="SOUND (mne-denoise) after filtering")
    cl.add_argument("--sspsir", action="store_true", help="SSP-SIR (mne-denoise) after filtering")
    cl.add_argument("--seed", type=int, default=0, help="seed of ICA (and of the demo)")
    me = p.add_argument_group("measures")
    me.add_argument("--roi", nargs="+", default=None, help="channels over the stimulated area")
    me.add_argument("--pcist-convention", default="reference", choices=["reference", "inclusive"],
                    help="PCIst window convention: reference Python (w0 <= t < w1) or MATLAB (inclusive)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, required=True, help="output folder (BIDS-Derivatives)")
    out.add_argument("--json", action="store_true", help="print one JSON object with the measures")
    out.add_argument("--no-report", action="store_true", help="skip the HTML report")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_tep)


def _demo_recording(out: Path, seed: int, progress: bool, n_trials: int = 80) -> Path:
    from tmsnet.io.atomic import atomic_write_with
    from tmsnet.simulate.eeg import simulate_tms_eeg

    folder = out / "sourcedata" / "tmsnet-eeg-demo"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sub-demo_task-tms_eeg.fif"
    if progress:
        print(f"tmsnet: simulating the demo recording at {path}", file=sys.stderr)
    sim = simulate_tms_eeg(seed=seed, n_trials=n_trials, natural_frequency_hz=25.0,
                           natural_frequency_uv=6.0)
    atomic_write_with(path, lambda tmp: sim.raw.save(tmp, overwrite=True, verbose=False),
                      suffix="_eeg.fif")
    return path


def _run_tep(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.eeg.cleaning import CleaningParameters
    from tmsnet.eeg.io import find_pulses, read_eeg
    from tmsnet.eeg.workflow import analyze_tep, entities_from_path, tep_summary, write_tep_outputs
    from tmsnet.exceptions import InvalidParameterError
    from tmsnet.io.atomic import ensure_output_dir, json_compatible

    if args.demo and args.raw is not None:
        parser.error("--demo generates its own recording; do not give RAW as well")
    if not args.demo and args.raw is None:
        parser.error("give a RAW recording (or --demo)")
    if args.resample <= 0 or args.ica_components < 2 or args.refractory <= 0:
        raise InvalidParameterError("--resample and --refractory must be > 0 and --ica-components >= 2.")
    progress = not args.quiet
    out = ensure_output_dir(args.out)
    if args.demo_trials < 10:
        raise InvalidParameterError("--demo-trials must be >= 10.")
    raw_path = _demo_recording(out, args.seed, progress, args.demo_trials) if args.demo else args.raw
    raw = read_eeg(raw_path, montage=args.montage)
    events, source = find_pulses(raw, events_file=args.events, annotation=args.annotation,
                                 stim_channel=args.stim_channel,
                                 detect=True if args.detect_pulses else None,
                                 refractory_s=args.refractory)
    if progress:
        print(f"tmsnet: {len(events)} pulses ({source}); cleaning...", file=sys.stderr)
    params = CleaningParameters(
        interpolation=args.interpolation, decay=None if args.decay == "none" else args.decay,
        resample_sfreq=args.resample, ica_n_components=args.ica_components, ica_method=args.ica_method,
        ica1=not args.no_ica1, ica2=not args.no_ica2, l_freq=args.l_freq, h_freq=args.h_freq,
        line_freq=args.line_freq, sound=args.sound, sspsir=args.sspsir, seed=args.seed)
    # some libraries print to stdout; keep it for the --json object only
    with contextlib.redirect_stdout(sys.stderr):
        analysis = analyze_tep(raw, events, cleaning=params, roi=args.roi,
                               pcist_convention=args.pcist_convention, pulse_source=source)
        inputs = {"raw": raw_path if Path(raw_path).is_file() else None}
        if args.events is not None:
            inputs["events"] = args.events
        written = write_tep_outputs(analysis, out, entities=entities_from_path(raw_path), inputs=inputs,
                                    report=not args.no_report)
    summary = tep_summary(analysis)
    summary["outputs"] = {role: str(path) for role, path in written.items()}
    if args.json:
        print(json.dumps(json_compatible(summary), allow_nan=False))
    else:
        peaks = ", ".join(f"{k} {v:.0f} ms" for k, v in summary["gmfp_peaks_ms"].items()
                          if v == v)
        print(f"Trials: {summary['n_trials']}; removed components: {len(summary['removed_components'])}")
        print(f"GMFP peaks: {peaks}")
        print(f"PCIst: {summary['pcist']['value']:.1f}; natural frequency: "
              f"{summary['natural_frequency']['frequency_hz']:.0f} Hz")
        if "report" in written:
            print(f"Report: {written['report']}")
    return 0
