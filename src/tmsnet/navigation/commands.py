"""``tmsnet efield`` and ``tmsnet plan``: argument parsing and printing only."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_parsers"]


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``efield`` and ``plan`` subcommands."""
    from tmsnet.physics.coils import bundled_coil_names

    coils = ", ".join(bundled_coil_names())
    p = subparsers.add_parser(
        "efield",
        help="coil field metrics on the Deng 2013 sphere (d½, S½, V½)",
        description=("Sphere-model E-field of a coil: Deng et al. 2013 depth/focality metrics on an "
                     "8.5 cm head with a 7.0 cm brain; optional figure of |E| on the brain surface."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--coil", default="fig8-70mm", help=f"bundled coil ({coils}) or a SimNIBS .ccd file")
    p.add_argument("--metrics", choices=["deng"], default="deng", help="metric set")
    p.add_argument("--grid-mm", type=float, default=1.0, help="brain-surface sampling step (mm)")
    p.add_argument("--figure", type=Path, default=None, help="write a PNG of |E| on the brain surface")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_efield)

    q = subparsers.add_parser(
        "plan",
        help="treatment plan for a target: scalp point, coil orientation, depth, dose, navigator files",
        description=("From a target to the treatment room: scalp point, best coil orientation "
                     "(sphere model), scalp-to-cortex depth, nearest 10-10 electrode, Stokes and "
                     "E-field-matched dose, Brainsight/Localite/NIBS-BIDS files and a one-page plan. "
                     "Decision support to be checked by the operator."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    q.add_argument("--target", type=float, nargs=3, required=True, metavar=("X", "Y", "Z"),
                   help="target in mm")
    q.add_argument("--space", required=True,
                   help="space of the target: MNI152NLin2009cAsym, MNI152NLin6Asym or T1w")
    q.add_argument("--t1w", type=Path, default=None, help="subject T1w image (head surface)")
    q.add_argument("--xfm", type=Path, default=None,
                   help="fMRIPrep *_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5 (or the reverse)")
    q.add_argument("--brain-mask", type=Path, default=None,
                   help="brain mask in the plan's space for scalp-to-cortex depth")
    q.add_argument("--mt", type=float, default=None, help="resting motor threshold (%% of output)")
    q.add_argument("--coil", default="fig8-70mm", help=f"bundled coil ({coils}) or a .ccd file")
    q.add_argument("--protocol", choices=["itbs", "10hz"], default="itbs", help="protocol preset")
    q.add_argument("--stokes-slope", type=float, default=3.0,
                   help="Stokes depth slope (%%MSO per mm; 3.0 Stokes 2005, 2.8 Stokes 2007)")
    q.add_argument("--coil-distance", type=float, default=0.0, help="scalp-to-coil gap (mm)")
    q.add_argument("--projection", choices=["nearest", "centre"], default="nearest",
                   help="scalp projection: nearest scalp point or along the line from the head centre")
    q.add_argument("--subject", default="01", help="subject label of the output names")
    q.add_argument("--out", type=Path, required=True, help="output folder")
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.set_defaults(func=_run_plan)


def _run_efield(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.exceptions import InvalidParameterError
    from tmsnet.physics.coils import load_coil
    from tmsnet.physics.metrics import deng_metrics, plot_brain_surface_field

    if args.grid_mm <= 0:
        raise InvalidParameterError("--grid-mm must be > 0.")
    coil = load_coil(args.coil)
    metrics = deng_metrics(coil, grid_mm=args.grid_mm)
    result = metrics.as_dict()
    result["n_dipoles"] = coil.n_dipoles
    result["units"] = {"e_max": "V/m per A/us", "d_half": "cm", "s_half": "cm2", "v_half": "cm3"}
    if args.figure is not None:
        from tmsnet.io.atomic import atomic_write_with

        fig = plot_brain_surface_field(metrics)
        atomic_write_with(args.figure, lambda tmp: fig.savefig(tmp, format="png", dpi=110),
                          suffix=".tmp.png")
        result["figure"] = str(args.figure)
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        print(f"{coil.name}: d½ = {metrics.d_half_cm:.2f} cm, S½ = {metrics.s_half_cm2:.1f} cm², "
              f"V½ = {metrics.v_half_cm3:.1f} cm³, "
              f"Emax = {metrics.e_max_v_per_m_per_a_per_us:.3f} V/m per A/µs")
    return 0


def _run_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.io.atomic import json_compatible
    from tmsnet.navigation.plan import plan_from_target

    plan, written = plan_from_target(
        args.target, args.space, args.out, t1w=args.t1w, xfm=args.xfm, mt_percent=args.mt,
        coil=args.coil, brain_mask=args.brain_mask, subject=args.subject, protocol=args.protocol,
        stokes_slope=args.stokes_slope, coil_distance_mm=args.coil_distance, projection=args.projection,
    )
    summary = plan.summary()
    summary["outputs"] = {k: str(v) for k, v in written.items()}
    if args.json:
        print(json.dumps(json_compatible(summary), allow_nan=False))
    else:
        s = summary
        print(f"Target {tuple(round(v, 1) for v in s['target_mm'])} mm ({s['space']}); scalp point "
              f"{tuple(round(v, 1) for v in s['scalp_point_mm'])} mm, nearest 10-10: "
              f"{s['nearest_electrode_1010'].get('label')}")
        print(f"Depth {s['depth_target_mm']:.1f} mm ({s['depth_method']}); coil angle "
              f"{s['coil_angle_deg']:.0f} deg; |E| {s['e_at_target_v_per_m_per_a_per_us']:.3f} V/m per A/us")
        if s["dose"]:
            print(f"Dose: Stokes {s['dose']['stokes_adjusted_mt_percent']:.0f} %MSO, E-field matched "
                  f"{s['dose']['efield_matched_mt_percent']:.0f} %MSO (MT {s['dose']['mt_percent']:.0f})")
        for w in s["warnings"]:
            print(f"Warning: {w}")
        print(f"Plan: {written['plan_html']}")
    return 0
