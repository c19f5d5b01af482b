"""``tmsnet efield`` and ``tmsnet plan``: argument parsing and printing only.

The options are generated from the parameter objects
(:class:`~tmsnet.physics.metrics.EfieldParameters`,
:class:`~tmsnet.navigation.plan.PlanParameters` and its
:class:`~tmsnet.physics.dose.DoseParameters`); ``tmsnet target --plan`` adds
the same plan options with :func:`add_plan_arguments` and reads them back with
:func:`plan_parameters_from_args`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tmsnet.navigation.plan import PlanParameters
from tmsnet.navigation.realistic_plan import RealisticParameters
from tmsnet.physics.dose import DoseParameters
from tmsnet.physics.head_model import Conductivities, HeadModelParameters
from tmsnet.physics.metrics import EfieldParameters
from tmsnet.physics.realistic_placement import PlacementSearchParameters
from tmsnet.utils.params import add_parameter_arguments, parameters_from_args

__all__ = ["add_parsers", "add_plan_arguments", "add_realistic_arguments", "plan_parameters_from_args"]


def add_plan_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the treatment-plan options (coil, protocol, sweep, dose) to a parser or group."""
    add_parameter_arguments(group, PlanParameters)
    add_parameter_arguments(group, DoseParameters)


#: Prefixes of the realistic head's nested options on the command line (their dest names).
_SEARCH_PREFIX, _SIGMA_PREFIX = "search_", "sigma_"


def add_realistic_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the realistic head's options (anatomical files, head rule, conductivities, search) as a group."""
    group = parser.add_argument_group(
        "realistic head (--head-model realistic)",
        "fMRIPrep's anatomy beside --t1w is used unless a file is given; the head rule, the tissue "
        "conductivities and the placement search (--optimize)")
    add_parameter_arguments(group, RealisticParameters)
    add_parameter_arguments(group, HeadModelParameters)
    add_parameter_arguments(group, Conductivities, prefix=_SIGMA_PREFIX)
    add_parameter_arguments(group, PlacementSearchParameters, prefix=_SEARCH_PREFIX,
                            exclude=("coil_distance_mm",))  # the plan's --coil-distance


def plan_parameters_from_args(args: argparse.Namespace) -> PlanParameters:
    """The :class:`PlanParameters` of options added by :func:`add_plan_arguments` (and the realistic ones)."""
    realistic = parameters_from_args(
        RealisticParameters, args, head=parameters_from_args(HeadModelParameters, args),
        conductivities=parameters_from_args(Conductivities, args, prefix=_SIGMA_PREFIX),
        search=parameters_from_args(PlacementSearchParameters, args, prefix=_SEARCH_PREFIX))
    return parameters_from_args(PlanParameters, args, dose=parameters_from_args(DoseParameters, args),
                                realistic=realistic)


_EFIELD_DESCRIPTION = (
    "E-field of a coil: Deng et al. 2013 depth/focality metrics on an 8.5 cm head with a 7.0 cm "
    "brain, from the analytic sphere kernel (default) or with --head-model realistic from the "
    "voxel-head solver of the realistic path on the same sphere; optional figure of |E| on the "
    "brain surface. The field in a subject's head: tmsnet plan --head-model realistic.")


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``efield`` and ``plan`` subcommands."""
    p = subparsers.add_parser("efield", help="coil field metrics on the Deng 2013 sphere (d½, S½, V½)",
                              description=_EFIELD_DESCRIPTION)
    add_parameter_arguments(p, EfieldParameters)
    p.add_argument("--figure", type=Path, default=None, help="write a PNG of |E| on the brain surface")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_efield)

    q = subparsers.add_parser(
        "plan",
        help="treatment plan for a target: scalp point, coil orientation, depth, dose, navigator files",
        description=("From a target to the treatment room: scalp point, coil orientation, "
                     "scalp-to-cortex depth, nearest 10-10 electrode, Stokes and E-field-matched dose, "
                     "Brainsight/Localite/NIBS-BIDS files and a one-page plan; on the sphere model, or "
                     "with --head-model realistic in the subject's head built from fMRIPrep's anatomy "
                     "(--optimize: search the coil position and orientation). Decision support to be "
                     "checked by the operator."),
    )
    q.add_argument("--target", type=float, nargs=3, required=True, metavar=("X", "Y", "Z"),
                   help="target in mm")
    q.add_argument("--space", required=True,
                   help="space of the target: MNI152NLin2009cAsym, MNI152NLin6Asym or T1w")
    q.add_argument("--t1w", type=Path, default=None, help="subject T1w image (head surface)")
    q.add_argument("--xfm", type=Path, default=None,
                   help="fMRIPrep *_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5 (or the reverse)")
    q.add_argument("--brain-mask", type=Path, default=None,
                   help="brain mask in the plan's space for scalp-to-cortex depth (realistic head: "
                        "default fMRIPrep's *_desc-brain_mask beside --t1w)")
    add_plan_arguments(q)
    add_realistic_arguments(q)
    q.add_argument("--subject", default="01", help="subject label of the output names (default: 01)")
    q.add_argument("--out", type=Path, required=True, help="output folder")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_run_plan)


def _run_efield(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.jobs.efield import coil_metrics

    result = coil_metrics(parameters_from_args(EfieldParameters, args), figure=args.figure)
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        print(f"{result['coil']}: d½ = {result['d_half_cm']:.2f} cm, S½ = {result['s_half_cm2']:.1f} cm², "
              f"V½ = {result['v_half_cm3']:.1f} cm³, "
              f"Emax = {result['e_max_v_per_m_per_a_per_us']:.3f} V/m per A/us "
              f"({result['head_model']} head, {result['compute_s']:.1f} s)")
    return 0


def _print_plan(s: dict, written: dict) -> None:
    print(f"Target {tuple(round(v, 1) for v in s['target_mm'])} mm ({s['space']}); scalp point "
          f"{tuple(round(v, 1) for v in s['scalp_point_mm'])} mm, nearest 10-10: "
          f"{s['nearest_electrode_1010'].get('label')}")
    rule = {"clinical": "clinical convention, handle 45 deg back and out",
            "optimized": "optimised in the realistic head"}.get(
        s["coil_orientation_rule"], "largest sphere-model field")
    print(f"Head model: {s['head_model']}; depth {s['depth_target_mm']:.1f} mm ({s['depth_method']}); coil "
          f"angle {s['coil_angle_deg']:.0f} deg ({rule}); field at the target "
          f"{s['e_at_target_v_per_m_per_a_per_us']:.3f} V/m per A/us")
    if s["head_model"] == "realistic":
        r = s["realistic"]
        print(f"Clinical placement at the scalp projection: {r['baseline']['magnitude']:.3f} V/m per A/us "
              f"(gain {r['gain']:.3f}); focality {r['focality_cm3']:.1f} cm3 of grey matter; "
              f"{r['n_placements']} placement(s) evaluated")
    if s["dose"]:
        print(f"Dose: Stokes {s['dose']['stokes_adjusted_mt_percent']:.0f} %MSO, E-field matched "
              f"{s['dose']['efield_matched_mt_percent']:.0f} %MSO (MT {s['dose']['mt_percent']:.0f})")
    for w in s["warnings"]:
        print(f"Warning: {w}")
    print(f"Plan: {written['plan_html']}")


def _run_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.io.atomic import json_compatible
    from tmsnet.jobs.plan import plan

    result, written = plan(args.target, args.space, args.out, plan_parameters_from_args(args), t1w=args.t1w,
                           xfm=args.xfm, brain_mask=args.brain_mask, subject=args.subject)
    summary = result.summary()
    summary["outputs"] = {k: str(v) for k, v in written.items()}
    if args.json:
        print(json.dumps(json_compatible(summary), allow_nan=False))
    else:
        _print_plan(summary, written)
    return 0
