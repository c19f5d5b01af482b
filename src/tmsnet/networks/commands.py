"""``tmsnet connectome``, ``tmsnet compare`` and ``tmsnet propagate``: parse, call one job, print.

The scientific options are generated from the parameter objects
(:mod:`tmsnet.networks.parameters`, :class:`tmsnet.fmri.cleaning.BoldCleaningParameters`);
the jobs are :func:`tmsnet.jobs.connectome.run_connectomes`,
:func:`tmsnet.jobs.compare.run_comparison` and
:func:`tmsnet.jobs.propagate.run_propagation`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.networks.outputs import DEFAULT_PREFIX
from tmsnet.networks.parameters import (
    AtlasParameters,
    ComparisonParameters,
    ConnectomeParameters,
    PropagationParameters,
)
from tmsnet.utils.params import add_parameter_arguments, parameter_specs, parameters_from_args

__all__ = ["add_parsers"]

#: Cleaning fields that do not apply to connectomes (regions are averaged, not smoothed).
_NOT_FOR_CONNECTOMES = ("smoothing_fwhm_mm",)


def _print(summary: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        from tmsnet.io.atomic import json_compatible

        print(json.dumps(json_compatible(summary), allow_nan=False))
    else:
        print("\n".join(lines))


def _atlas(args: argparse.Namespace) -> Any:
    from tmsnet.networks.atlases import atlas_from_parameters

    return atlas_from_parameters(parameters_from_args(AtlasParameters, args))


# ------------------------------------------------------------------------- connectome


def _run_connectome(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.jobs.connectome import run_connectomes

    if bool(args.bold) == bool(args.timeseries):
        parser.error("give either --bold (fMRIPrep BOLD images) or --timeseries (ROI tables)")
    inputs = args.bold or args.timeseries
    if args.confounds and len(args.confounds) != len(inputs):
        parser.error("give one --confounds file per input")
    if args.bold and args.confound_columns:
        parser.error("--confound-columns applies to --timeseries tables; BOLD runs use --confound-strategy")
    if args.timeseries and args.t_r is None:
        parser.error("--timeseries needs --t-r (repetition time in seconds)")
    results = run_connectomes(
        args.out,
        bold=args.bold,
        timeseries=args.timeseries,
        confounds=args.confounds,
        t_r=args.t_r,
        atlas=_atlas(args),
        parameters=parameters_from_args(ConnectomeParameters, args),
        cleaning=parameters_from_args(BoldCleaningParameters, args, min_frames=args.min_frames,
                                      min_duration_min=args.min_duration_min),
        report=not args.no_report,
    )
    lines = [f"{c.name} {c.kind}: {c.outputs['tsv']}" for c in results.connectomes]
    _print(results.summary(), args.json, lines)
    return 0


# ---------------------------------------------------------------------------- compare


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.jobs.compare import run_comparison

    if args.sessions is not None and args.contrast:
        parser.error("use --contrast for two groups or --sessions for pre/post, not both")
    result = run_comparison(
        args.participants,
        args.connectomes,
        args.out,
        parameters=parameters_from_args(ComparisonParameters, args),
        networks=args.networks,
        report=not args.no_report,
    )
    alpha = result.alpha
    lines = [
        f"{result.design.description}: {result.n_significant_components} NBS component(s) at FWER p <= "
        f"{alpha}; {result.n_edges_fdr} edges at FDR < {alpha}"
    ]
    lines += [
        f"  component {k + 1}: {c.n_edges} edges, {'positive' if c.sign > 0 else 'negative'}, "
        f"p = {c.p_fwer:.4f}"
        for k, c in enumerate(result.nbs.components[:5])
    ]
    _print(result.summary(), args.json, lines)
    return 0


# -------------------------------------------------------------------------- propagate


def _run_propagate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.jobs.propagate import run_propagation

    parameters = parameters_from_args(PropagationParameters, args)
    if (args.target_coords is None) == (args.target_region is None):
        parser.error("give --target-coords X Y Z or --target-region NAME|INDEX")
    result = run_propagation(
        args.connectome,
        args.out,
        lengths=args.lengths,
        mat_key=args.mat_key,
        mat_key_lengths=args.mat_key_lengths,
        target_coords=args.target_coords,
        target_region=args.target_region,
        atlas=_atlas(args),
        parameters=parameters,
        prefix=args.prefix,
        report=not args.no_report,
    )
    lines = [f"Stimulated: {result.stimulated_name}"] + [
        f"  {int(r['rank'])}. {r['name']} ({r['network']}): {r['steady_state_relative']:.3g}, arrival "
        f"{r['arrival_ms']:.1f} ms"
        for _, r in result.top_regions.iterrows()
    ]
    _print(result.summary(), args.json, lines)
    return 0


# ---------------------------------------------------------------------------- parsers


def _add_atlas_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("atlas (default: bundled Schaefer 2018, 100 parcels, 7 networks, 2 mm)")
    add_parameter_arguments(g, AtlasParameters)


def _add_output_args(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="output folder")
    o.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    o.add_argument("--no-report", action="store_true", help="skip the HTML report")


def _add_scan_length_args(group: argparse._ArgumentGroup) -> None:
    # Written by hand because BoldCleaningParameters keeps min_frames / min_duration_min off its generated
    # options (cli=False); defaults and checks are the fields'. If those fields become cli=True, delete this.
    specs = parameter_specs(BoldCleaningParameters)
    for flag, name, kind in (("--min-frames", "min_frames", int),
                             ("--min-duration", "min_duration_min", float)):
        field, spec = specs[name]
        units = f" ({spec.units})" if spec.units else ""
        action = group.add_argument(flag, dest=name, type=kind, default=field.default,
                                    help=f"{spec.help}{units}")
        action.tmsnet_parameter = (BoldCleaningParameters, name)


def _add_connectome_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("inputs")
    src.add_argument("--bold", type=Path, nargs="+", help="fMRIPrep *_desc-preproc_bold.nii.gz run(s)")
    src.add_argument("--timeseries", type=Path, nargs="+", help="ROI time-series TSV(s): frames x regions")
    src.add_argument("--confounds", type=Path, nargs="+", help="confounds TSV per input")
    src.add_argument("--t-r", type=float, default=None, help="repetition time (s)")
    _add_atlas_args(p)
    add_parameter_arguments(p, ConnectomeParameters, exclude=("confound_columns",))
    cl = p.add_argument_group("cleaning (shared with `tmsnet target`)")
    add_parameter_arguments(cl, BoldCleaningParameters, exclude=_NOT_FOR_CONNECTOMES)
    _add_scan_length_args(cl)
    add_parameter_arguments(cl, ConnectomeParameters, only=("confound_columns",))
    _add_output_args(p)
    p.set_defaults(func=_run_connectome)


def _add_compare_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--participants", type=Path, required=True, help="participants.tsv (participant_id, group...)"
    )
    c.add_argument("--connectomes", type=Path, required=True, help="folder holding *_relmat.tsv files")
    c.add_argument("--networks", type=Path, default=None, help="TSV name/network (default: Schaefer-100)")
    add_parameter_arguments(c, ComparisonParameters)
    _add_output_args(c)
    c.set_defaults(func=_run_compare)


def _add_propagate_arguments(g: argparse.ArgumentParser) -> None:
    g.add_argument(
        "--connectome", type=Path, required=True, help="structural/functional matrix (.tsv, .npy, .mat)"
    )
    g.add_argument("--mat-key", default=None, help="variable in a .mat connectome")
    g.add_argument("--lengths", type=Path, default=None, help="tract lengths in mm (.tsv, .npy, .mat)")
    g.add_argument("--mat-key-lengths", default=None)
    _add_atlas_args(g)
    g.add_argument("--target-coords", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"),
                   help="stimulated point (mm, atlas space)")
    g.add_argument("--target-region", default=None, help="region name or 0-based index")
    add_parameter_arguments(g, PropagationParameters)
    g.add_argument("--prefix", default=DEFAULT_PREFIX, help="file-name prefix (BIDS entities)")
    _add_output_args(g)
    g.set_defaults(func=_run_propagate)


#: Name, help, description and arguments of each subcommand.
_SUBCOMMANDS = (
    ("connectome", "parcellated functional connectomes, network summaries and graph measures",
     "Connectivity matrices (correlation, partial correlation, tangent) from fMRIPrep BOLD "
     "runs or ROI time-series tables, cleaned like `tmsnet target`, with within/between "
     "network summaries, graph measures and the target region's network profile.",
     _add_connectome_arguments),
    ("compare", "patients vs controls or pre vs post: edges (FDR), NBS (FWER), network blocks",
     "Group statistics on connectomes written by `tmsnet connectome`.",
     _add_compare_arguments),
    ("propagate", "predicted spread of stimulation over a connectome (linear model with delays)",
     "Steady-state and impulse response of a linear delayed network model to input at the "
     "stimulated region; ranked regions and networks.",
     _add_propagate_arguments),
)


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``connectome``, ``compare`` and ``propagate`` to the ``tmsnet`` parser."""
    for name, help_text, description, add_arguments in _SUBCOMMANDS:
        add_arguments(subparsers.add_parser(
            name, help=help_text,
            description=description,
        ))
