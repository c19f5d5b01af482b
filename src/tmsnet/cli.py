"""Command-line interface: parses arguments, calls the API, prints results.

No science here. Every :class:`tmsnet.exceptions.TmsnetError` is printed as
one line (``tmsnet: error: ...``) without a traceback and the process exits
with status 1; argument errors exit with status 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tmsnet import __version__
from tmsnet.exceptions import TmsnetError


def _add_target_parser(subparsers: argparse._SubParsersAction) -> None:
    from tmsnet.targeting.methods import available_methods

    methods = available_methods()
    p = subparsers.add_parser(
        "target",
        help="personalized sgACC-anticorrelated DLPFC target from one resting-state scan",
        description=(
            "Find the left-DLPFC target most anticorrelated with the subgenual cingulate "
            "(sgACC) in one fMRIPrep resting-state scan, and write the connectivity map, the "
            "target (JSON, NIBS-BIDS markers), sidecars and an HTML report under --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    inputs = p.add_argument_group("inputs (or --demo)")
    inputs.add_argument("--demo", action="store_true",
                        help="generate the bundled sample subject (simulated, with a planted "
                             "target) under OUT/sourcedata and run on it")
    inputs.add_argument("--bold", type=Path,
                        help="fMRIPrep *_desc-preproc_bold.nii.gz (4D, MNI152NLin2009cAsym or "
                             "MNI152NLin6Asym)")
    inputs.add_argument("--confounds", type=Path,
                        help="fMRIPrep *_desc-confounds_timeseries.tsv of the same run")
    inputs.add_argument("--mask", type=Path, default=None,
                        help="brain mask on the BOLD grid (default: fMRIPrep's "
                             "*_desc-brain_mask.nii.gz beside the BOLD)")
    inputs.add_argument("--space", default=None,
                        help="template space of the BOLD if its name has no space- entity")
    inputs.add_argument("--t-r", type=float, default=None,
                        help="repetition time in seconds if neither header nor sidecar has it")

    method = p.add_argument_group("method")
    method.add_argument("--method", nargs="+", default=["cluster"],
                        choices=[*methods, "all"], metavar="METHOD",
                        help=f"targeting method(s): {', '.join(methods)} or all")
    method.add_argument("--cluster-percentile", type=float, default=10.0,
                        help="cluster method: share (%%) of the negative r values kept")
    method.add_argument("--weighted-centroid", action="store_true",
                        help="cluster method: weight the centroid by |r|")
    method.add_argument("--seedmap", type=Path, default=None,
                        help="seedmap method: group sgACC connectivity image in the BOLD's space "
                             "(default: the bundled map of the simulated sample cohort; build a "
                             "real one with 'tmsnet seedmap build')")
    method.add_argument("--seedmap-rule", default="cluster", choices=["cluster", "peak"],
                        help="seedmap method: rule applied to the seedmap-based map")
    method.add_argument("--hierarchical-threshold", type=float, default=0.5,
                        help="hierarchical method: dendrogram cut on 1-|rho|")
    method.add_argument("--hierarchical-min-voxels", type=int, default=51,
                        help="hierarchical method: smallest DLPFC cluster kept (voxels)")

    plan = p.add_argument_group("treatment plan (see 'tmsnet plan')")
    plan.add_argument("--plan", action="store_true",
                      help="also write the treatment plan of the first target: scalp point, coil "
                           "orientation, depth, dose, Brainsight/Localite/NIBS-BIDS files")
    plan.add_argument("--t1w", type=Path, default=None, help="plan: the subject's T1w image")
    plan.add_argument("--xfm", type=Path, default=None,
                      help="plan: fMRIPrep *_from-<space>_to-T1w_mode-image_xfm.h5")
    plan.add_argument("--mt", type=float, default=None,
                      help="plan: resting motor threshold (%% of maximum stimulator output)")
    plan.add_argument("--coil", default="fig8-70mm", help="plan: coil name or .ccd path")

    stability = p.add_argument_group("uncertainty")
    stability.add_argument("--n-bootstrap", type=int, default=100,
                           help="block-bootstrap resamples per method (0 = no uncertainty)")
    stability.add_argument("--bootstrap-block-frames", type=int, default=None,
                           help="bootstrap block length in frames (default: 30 s worth)")
    stability.add_argument("--stability-tolerance", type=float, default=5.0,
                           help="scan-length advice: 95%% radius wanted (mm)")
    stability.add_argument("--no-scan-length", action="store_true",
                           help="skip the scan-length advice (bootstrap of 25/50/75%% of the scan)")
    stability.add_argument("--random-seed", type=int, default=0,
                           help="seed of the bootstrap (same seed, same result)")

    cleaning = p.add_argument_group("cleaning")
    cleaning.add_argument("--confound-strategy", default="simple",
                          help="confound strategy: simple, scrubbing, minimal or none")
    cleaning.add_argument("--no-gsr", action="store_true",
                          help="do not regress the global signal (recorded in every sidecar)")
    cleaning.add_argument("--low-pass", type=float, default=0.1, help="low-pass edge (Hz)")
    cleaning.add_argument("--high-pass", type=float, default=0.01, help="high-pass edge (Hz)")
    cleaning.add_argument("--smoothing-fwhm", type=float, default=6.0,
                          help="Gaussian smoothing FWHM in mm (0 = none)")
    cleaning.add_argument("--discard-frames", type=int, default=0,
                          help="initial frames to drop")

    regions = p.add_argument_group("regions")
    regions.add_argument("--seed", default="sgacc", choices=["sgacc", "sgacc-bilateral"],
                         help="built-in seed: 10 mm sphere at MNI (6, 16, -10) (Fox 2012), "
                              "or its union with the left mirror")
    regions.add_argument("--seed-coords", type=float, nargs=3, action="append", default=None,
                         metavar=("X", "Y", "Z"),
                         help="custom seed sphere centre in mm (repeatable)")
    regions.add_argument("--seed-radius", type=float, default=None,
                         help="seed sphere radius in mm (default 10)")
    regions.add_argument("--seed-roi", type=Path, default=None,
                         help="seed ROI image on the BOLD grid (overrides the spheres)")
    regions.add_argument("--search-roi", type=Path, default=None,
                         help="search region image on the BOLD grid (default: 20 mm spheres "
                              "at the four standard DLPFC targets, gray matter only)")
    regions.add_argument("--search-radius", type=float, default=20.0,
                         help="radius of the standard search spheres in mm")
    regions.add_argument("--no-gray-matter", action="store_true",
                         help="do not restrict the search region to gray matter")

    output = p.add_argument_group("output")
    output.add_argument("--out", type=Path, required=True,
                        help="output folder (BIDS-Derivatives); created if needed")
    output.add_argument("--json", action="store_true",
                        help="print one JSON object with the target on stdout")
    output.add_argument("--no-report", action="store_true", help="skip the HTML report")
    output.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_run_target)


def _add_seedmap_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "seedmap",
        help="group seedmaps for the seedmap targeting method",
        description="Group sgACC seedmaps (Fox et al. 2013) for --method seedmap.",
    )
    actions = p.add_subparsers(dest="seedmap_command", metavar="ACTION")
    actions.required = True
    build = actions.add_parser(
        "build",
        help="average the sgACC connectivity of a cohort into a group seedmap",
        description=(
            "Clean every scan as 'tmsnet target' does, correlate the mean sgACC time series with "
            "every voxel, average the Fisher z maps and write tanh(mean z) as a NIfTI seedmap "
            "with a provenance sidecar."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("--bold", type=Path, nargs="+", required=True,
                       help="fMRIPrep *_desc-preproc_bold.nii.gz, one per scan")
    build.add_argument("--confounds", type=Path, nargs="+", required=True,
                       help="the matching *_desc-confounds_timeseries.tsv, same order")
    build.add_argument("--out", type=Path, required=True,
                       help="output seedmap, e.g. "
                            "tpl-MNI152NLin2009cAsym_res-02_desc-mycohort_seedmap.nii.gz")
    build.add_argument("--description", default=None, help="cohort description for the sidecar")
    build.add_argument("--confound-strategy", default="simple")
    build.add_argument("--no-gsr", action="store_true", help="do not regress the global signal")
    build.add_argument("--smoothing-fwhm", type=float, default=6.0, help="smoothing FWHM (mm)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument("--json", action="store_true", help="print the sidecar as JSON")
    build.set_defaults(func=_run_seedmap_build)


def _run_seedmap_build(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.targeting.group_seedmap import build_group_seedmap

    path, sidecar = build_group_seedmap(
        args.bold, args.confounds, out_path=args.out, confound_strategy=args.confound_strategy,
        global_signal_regression=not args.no_gsr, smoothing_fwhm_mm=args.smoothing_fwhm or None,
        description=args.description, progress=not args.quiet,
    )
    if args.json:
        print(json.dumps({"seedmap": str(path), "sidecar": sidecar}, default=str))
    else:
        print(f"Seedmap ({len(args.bold)} scans, {sidecar['Space']}): {path}")
    return 0


#: Simulator seed of the demo subject (``--demo``). Subject 1 of seed 1: a subject on
#: which the single-voxel peak misses by ~40 mm while the cluster and hierarchical
#: methods land within ~2 mm (see docs/benchmarks.md for the cohort-wide figures,
#: including the subjects where the cluster method lands on a decoy).
DEMO_SIMULATOR_SEED = 1


# Modules that add their own subcommands: each defines
# ``add_parsers(subparsers: argparse._SubParsersAction) -> None`` and sets
# ``func(args, parser) -> int`` on every parser it adds (see ``_add_target_parser``).
_COMMAND_MODULES: tuple[str, ...] = (
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
    _add_target_parser(subparsers)
    _add_seedmap_parser(subparsers)
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).add_parsers(subparsers)
    return parser


def _demo_inputs(out: Path, progress: bool) -> tuple[Path, Path, dict]:
    """Generate (or reuse) the sample subject under ``out/sourcedata``."""
    from tmsnet.simulate import simulate_fmriprep_dataset

    sample_dir = out / "sourcedata" / "tmsnet-sample"
    if progress:
        print(f"tmsnet: writing the sample subject to {sample_dir}", file=sys.stderr)
    subject = simulate_fmriprep_dataset(sample_dir, n_subjects=1, seed=DEMO_SIMULATOR_SEED,
                                        progress=progress)[0]
    return subject.bold_path, subject.confounds_path, subject.truth


def _run_target(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.exceptions import InvalidParameterError
    from tmsnet.io.atomic import ensure_output_dir
    from tmsnet.targeting.uncertainty import DEFAULT_SCAN_FRACTIONS
    from tmsnet.targeting.workflow import ALL_METHODS, result_summary, run_targeting

    if args.demo and (args.bold or args.confounds):
        parser.error("--demo generates its own input; do not combine it with --bold/--confounds")
    if not args.demo and (args.bold is None or args.confounds is None):
        parser.error("give --bold and --confounds (or --demo)")
    if not args.plan and (args.t1w or args.xfm or args.mt is not None):
        parser.error("--t1w, --xfm and --mt belong to the treatment plan: add --plan")
    for option, path in (("--t1w", args.t1w), ("--xfm", args.xfm)):
        if path is not None and not Path(path).is_file():
            from tmsnet.exceptions import InputFileNotFoundError

            raise InputFileNotFoundError(f"{option} file not found: {path}")
    methods = list(ALL_METHODS) if "all" in args.method else args.method
    if args.smoothing_fwhm < 0:
        raise InvalidParameterError("--smoothing-fwhm must be >= 0 mm (0 = no smoothing).")
    progress = not args.quiet
    truth = None
    out = ensure_output_dir(args.out)
    bold, confounds = args.bold, args.confounds
    if args.demo:
        bold, confounds, truth = _demo_inputs(out, progress)
    result, written = run_targeting(
        bold,
        confounds,
        out_dir=out,
        report=not args.no_report,
        truth=truth,
        mask=args.mask,
        space=args.space,
        t_r=args.t_r,
        methods=methods,
        confound_strategy=args.confound_strategy,
        global_signal_regression=not args.no_gsr,
        low_pass_hz=args.low_pass,
        high_pass_hz=args.high_pass,
        smoothing_fwhm_mm=args.smoothing_fwhm or None,
        discard_frames=args.discard_frames,
        seed=args.seed,
        seed_coordinates_mm=args.seed_coords,
        seed_radius_mm=args.seed_radius,
        seed_roi=args.seed_roi,
        search_roi=args.search_roi,
        search_radius_mm=args.search_radius,
        gray_matter_only=not args.no_gray_matter,
        cluster_percentile=args.cluster_percentile,
        weighted_centroid=args.weighted_centroid,
        seedmap=args.seedmap,
        seedmap_rule=args.seedmap_rule,
        hierarchical_threshold=args.hierarchical_threshold,
        hierarchical_min_voxels=args.hierarchical_min_voxels,
        n_bootstrap=args.n_bootstrap,
        bootstrap_block_frames=args.bootstrap_block_frames,
        scan_length_fractions=None if args.no_scan_length else DEFAULT_SCAN_FRACTIONS,
        stability_tolerance_mm=args.stability_tolerance,
        random_seed=args.random_seed,
        progress=progress,
    )
    summary = result_summary(result)
    summary["outputs"] = {role: str(path) for role, path in written.items()}
    if args.plan:
        from tmsnet.navigation.plan import plan_from_target

        _, plan_files = plan_from_target(
            result.targets[0].coordinate_mm, result.space, out, t1w=args.t1w, xfm=args.xfm,
            mt_percent=args.mt, coil=args.coil, subject=result.entities.get("sub", "01"),
        )
        summary["outputs"].update({f"plan_{k}": str(v) for k, v in plan_files.items()})
    if args.json:
        print(json.dumps(summary, allow_nan=False, default=str))
    else:
        for target in summary["targets"]:
            print(
                f"Target ({target['method']}): ({target['x']:.1f}, {target['y']:.1f}, "
                f"{target['z']:.1f}) mm {target['space']}, r = {target['r_at_target']:.3f}"
            )
        for target in summary["targets"]:
            u = target.get("uncertainty") or {}
            if u.get("p95_radius_mm") is not None:
                print(f"  stability ({target['method']}): 95% radius {u['p95_radius_mm']:.1f} mm, "
                      f"{100 * u['share_within_10mm']:.0f}% of resamples within 10 mm")
            if target.get("scan_length_advice"):
                print(f"  {target['scan_length_advice']['message']}")
        for warning in result.warnings:
            print(f"Warning: {warning}")
        if "report" in written:
            print(f"Report: {written['report']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tmsnet`` command; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    from tmsnet.bids_app.commands import is_bids_app_call
    from tmsnet.bids_app.commands import main as bids_app_main

    if is_bids_app_call(argv, parser._subparsers._group_actions[0].choices):  # BIDS-App form
        return bids_app_main(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args, parser))
    except TmsnetError as error:
        print(f"tmsnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print("tmsnet: interrupted; no partial output was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
