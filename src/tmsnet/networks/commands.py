"""``tmsnet connectome``, ``tmsnet compare`` and ``tmsnet propagate`` (parsing and composition only)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tmsnet.exceptions import EmptyRegionError, InputFileNotFoundError, InvalidParameterError

__all__ = ["add_parsers"]

#: Fox et al. 2012 group-optimal left-DLPFC target (MNI, mm; REFERENCES.md section 1).
DEFAULT_TARGET_MM = (-38.0, 44.0, 26.0)
#: sgACC seed (Fox et al. 2012, MNI, mm).
SGACC_MM = (6.0, 16.0, -10.0)
_ENTITY = re.compile(r"(sub|ses|task|run)-([A-Za-z0-9]+)")


def _entities(path: Path, fallback: str) -> dict[str, str]:
    found = dict(_ENTITY.findall(path.name))
    found.setdefault("sub", fallback)
    return found


def _stem(ent: dict[str, str]) -> str:
    parts = [f"sub-{ent['sub']}"] + [f"{k}-{ent[k]}" for k in ("ses", "task", "run") if k in ent]
    return "_".join(parts)


def _print(summary: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        from tmsnet.io.atomic import json_compatible

        print(json.dumps(json_compatible(summary), allow_nan=False))
    else:
        print("\n".join(lines))


def _atlas(args: argparse.Namespace) -> Any:
    from tmsnet.networks.atlases import load_atlas, load_schaefer100

    if args.atlas_image is None:
        return load_schaefer100()
    if args.atlas_labels is None:
        raise InvalidParameterError("--atlas-image needs --atlas-labels (TSV: label_value, name, network).")
    return load_atlas(args.atlas_image, args.atlas_labels, space=args.atlas_space)


def _add_atlas_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("atlas (default: bundled Schaefer 2018, 100 parcels, 7 networks, 2 mm)")
    g.add_argument("--atlas-image", type=Path, default=None, help="3D label image")
    g.add_argument("--atlas-labels", type=Path, default=None, help="TSV: label_value, name, network")
    g.add_argument("--atlas-space", default=None, help="template space of --atlas-image")


# ------------------------------------------------------------------------- connectome


def _run_connectome(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.io.atomic import atomic_write_json, atomic_write_tsv, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for
    from tmsnet.networks.atlases import region_at_coordinate
    from tmsnet.networks.connectomes import (
        Connectome,
        clean_roi_timeseries,
        compute_connectomes,
        connectome_from_bold,
        load_roi_timeseries,
        write_connectome,
    )
    from tmsnet.networks.report import connectome_sections, write_report
    from tmsnet.networks.summaries import graph_measures, network_blocks, region_profile, within_between

    if bool(args.bold) == bool(args.timeseries):
        parser.error("give either --bold (fMRIPrep BOLD images) or --timeseries (ROI tables)")
    inputs = args.bold or args.timeseries
    confounds = args.confounds or [None] * len(inputs)
    if len(confounds) != len(inputs):
        parser.error("give one --confounds file per input")
    kinds = [k.replace("partial", "partial correlation") if k == "partial" else k for k in args.kind]
    atlas = _atlas(args)
    out = ensure_output_dir(args.out)
    cleaning = {
        "strategy": args.confound_strategy,
        "global_signal": not args.no_gsr,
        "low_pass_hz": args.low_pass,
        "high_pass_hz": args.high_pass,
        "discard_frames": args.discard_frames,
    }
    series, base_params, ents, sources, space = [], [], [], [], atlas.space
    for k, (path, conf) in enumerate(zip(inputs, confounds, strict=True)):
        ent = _entities(Path(path), f"{k + 1:02d}")
        if args.bold:
            if args.confound_columns:
                parser.error(
                    "--confound-columns applies to --timeseries tables; BOLD runs use --confound-strategy"
                )
            conn, ts = connectome_from_bold(
                path,
                conf,
                atlas,
                kind="correlation",
                cov_estimator=args.cov_estimator,
                t_r=args.t_r,
                **cleaning,
            )
            params, space = conn.parameters, conn.space
        else:
            if args.t_r is None:
                parser.error("--timeseries needs --t-r (repetition time in seconds)")
            table = load_roi_timeseries(path)
            if table.shape[1] != atlas.n_regions:
                raise InvalidParameterError(
                    f"{Path(path).name} has {table.shape[1]} columns but the atlas has {atlas.n_regions} "
                    "regions; give the atlas the table was extracted with (--atlas-image/--atlas-labels)."
                )
            conf_table = None
            if conf is not None:
                if not Path(conf).is_file():
                    raise InputFileNotFoundError(f"Confounds file {conf} does not exist.")
                conf_table = pd.read_csv(conf, sep="\t", na_values=["n/a"])
            ts, clean_params = clean_roi_timeseries(
                table,
                conf_table,
                t_r=args.t_r,
                confound_columns=args.confound_columns,
                min_frames=args.min_frames,
                min_duration_min=args.min_duration,
                **cleaning,
            )
            params = {
                "cleaning": clean_params,
                "atlas": atlas.name,
                "atlas_space": atlas.space,
                "cov_estimator": args.cov_estimator,
                "connectivity_implementation": "nilearn.connectome.ConnectivityMeasure",
            }
        series.append(ts)
        base_params.append(params)
        ents.append(ent)
        sources.append(
            {"bold" if args.bold else "timeseries": Path(path), "confounds": conf, "atlas": atlas.path}
        )
    target = region_at_coordinate(atlas, args.target_coords or DEFAULT_TARGET_MM)
    try:
        sgacc: int | None = region_at_coordinate(atlas, SGACC_MM, max_distance_mm=20.0)
    except EmptyRegionError:  # an atlas without a region near the sgACC
        sgacc = None
    sections, summary_subjects = [], []
    for kind in kinds:
        mats = compute_connectomes(series, kind=kind, cov_estimator=args.cov_estimator)
        for ent, matrix, params, src in zip(ents, mats, base_params, sources, strict=True):
            stem = f"{_stem(ent)}_atlas-{atlas.name}_meas-{kind.replace(' ', '')}"
            folder = out / f"sub-{ent['sub']}" / (f"ses-{ent['ses']}" if "ses" in ent else "") / "func"
            conn = Connectome(
                matrix=matrix,
                kind=kind,
                labels=atlas.labels,
                networks=atlas.networks,
                parameters={**params, "kind": kind, "n_subjects_in_fit": len(series)},
                space=space,
                inputs=src,
            )
            written = write_connectome(conn, folder, stem=stem)
            blocks = network_blocks(matrix, atlas.networks, order=atlas.networks_order)
            within = within_between(matrix, atlas.networks, order=atlas.networks_order)
            nodes, graph = graph_measures(matrix, atlas.networks, labels=atlas.labels, seed=args.seed)
            profile = region_profile(
                matrix,
                atlas.networks,
                target,
                labels=atlas.labels,
                extra_regions=None if sgacc is None else {f"sgACC ({atlas.labels[sgacc]})": [sgacc]},
                order=atlas.networks_order,
            )
            written["within_between"] = atomic_write_tsv(
                folder / f"{stem}_desc-withinbetween_stats.tsv", within
            )
            written["graph"] = atomic_write_tsv(folder / f"{stem}_desc-graph_stats.tsv", nodes)
            written["profile"] = atomic_write_tsv(folder / f"{stem}_desc-targetprofile_stats.tsv", profile)
            for role in ("within_between", "graph", "profile"):
                atomic_write_json(
                    sidecar_path_for(written[role]),
                    make_sidecar(
                        description=f"{role.replace('_', ' ')} summary of the {kind} connectome "
                        f"(tmsnet.networks.summaries); target region {atlas.labels[target]}",
                        parameters={**conn.parameters, "louvain_seed": args.seed},
                        inputs=src,
                        space=space,
                    ),
                )
            sections += connectome_sections(
                f"{_stem(ent)} {kind}", conn, blocks, within, graph, profile, anchor=f"c-{len(sections)}"
            )
            summary_subjects.append(
                {
                    "subject": _stem(ent),
                    "kind": kind,
                    "outputs": {k: str(v) for k, v in written.items()},
                    "within_between": within.set_index("network")[["within", "between"]].to_dict("index"),
                    "graph": graph,
                    "target_region": atlas.labels[target],
                    "target_profile": profile.set_index("to")["mean"].to_dict(),
                }
            )
    summary: dict[str, Any] = {
        "atlas": atlas.name,
        "n_regions": atlas.n_regions,
        "kinds": kinds,
        "connectomes": summary_subjects,
    }
    if not args.no_report:
        report = write_report(
            out / "tmsnet_connectome_report.html",
            title="tmsnet connectomes",
            summary={
                "atlas": atlas.name,
                "inputs": len(inputs),
                "kinds": kinds,
                "target region": atlas.labels[target],
            },
            sections=sections,
            parameters={"kinds": kinds, **cleaning},
            inputs={f"input_{k}": Path(p) for k, p in enumerate(inputs)},
            space=space,
        )
        summary["report"] = str(report)
    lines = [f"{s['subject']} {s['kind']}: {s['outputs']['tsv']}" for s in summary_subjects]
    _print(summary, args.json, lines)
    return 0


# ---------------------------------------------------------------------------- compare


def _find_connectome(folder: Path, sub: str, ses: str | None, kind: str) -> Path:
    sub = sub if sub.startswith("sub-") else f"sub-{sub}"
    pattern = f"{sub}_{'ses-' + ses + '_' if ses else ''}*meas-{kind.replace(' ', '')}*_relmat.tsv"
    hits = sorted(p for p in folder.rglob(pattern) if ses is not None or "_ses-" not in p.name)
    if len(hits) != 1:
        raise InputFileNotFoundError(
            f"Expected one connectome {pattern} under {folder}, found {len(hits)}"
            f"{': ' + ', '.join(p.name for p in hits[:3]) if hits else ''}. Run `tmsnet connectome` for "
            "every participant/session, or pass --kind."
        )
    return hits[0]


def _networks_for(labels: list[str], folder: Path, networks_tsv: Path | None) -> np.ndarray:
    from tmsnet.networks.atlases import load_schaefer100

    table_path = networks_tsv or (folder / "networks.tsv")
    if table_path.is_file():
        table = pd.read_csv(table_path, sep="\t")
        mapping = dict(zip(table["name"].astype(str), table["network"].astype(str), strict=True))
        missing = [lab for lab in labels if lab not in mapping]
        if missing:
            raise InvalidParameterError(f"{table_path.name} lacks regions {missing[:5]}.")
        return np.array([mapping[lab] for lab in labels])
    atlas = load_schaefer100()
    if labels == atlas.labels:
        return atlas.networks
    raise InvalidParameterError(
        "Cannot tell the network of each region: give --networks TSV (columns name, network)."
    )


def _run_compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.io.atomic import atomic_write_json, atomic_write_tsv, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for
    from tmsnet.networks.connectomes import edge_values, read_connectome
    from tmsnet.networks.nbs import network_based_statistic
    from tmsnet.networks.report import compare_sections, write_report
    from tmsnet.networks.stats import edge_statistics, make_design, network_block_statistics, upper_triangle

    if not args.participants.is_file():
        raise InputFileNotFoundError(f"participants file {args.participants} does not exist.")
    participants = pd.read_csv(args.participants, sep="\t", na_values=["n/a"])
    if "participant_id" not in participants.columns:
        raise InvalidParameterError("participants.tsv needs a participant_id column (BIDS).")
    paired = args.sessions is not None
    if paired and args.contrast:
        parser.error("use --contrast for two groups or --sessions for pre/post, not both")
    kind = args.kind
    contrast = tuple(args.sessions) if paired else (tuple(args.contrast) if args.contrast else None)
    if not paired and contrast is not None and args.group_column in participants.columns:
        participants = participants[participants[args.group_column].astype(str).isin(contrast)]
    participants = participants.reset_index(drop=True)
    mats, labels, files = [], None, {}
    for pid in participants["participant_id"].astype(str):
        sessions = args.sessions if paired else [None]
        per = []
        for ses in sessions:
            path = _find_connectome(args.connectomes, pid, ses, kind)
            m, lab = read_connectome(path)
            if labels is None:
                labels = lab
            elif lab != labels:
                raise InvalidParameterError(f"{path.name} has other regions than the first connectome.")
            per.append(m)
            files[f"{pid}{'_ses-' + ses if ses else ''}"] = path
        mats.append(per)
    z = edge_values(np.array(mats), kind)  # (n, n_sessions, R, R)
    data = z[:, 1] - z[:, 0] if paired else z[:, 0]
    networks = _networks_for(labels, args.connectomes, args.networks)
    design = make_design(
        participants,
        kind="paired" if paired else "two-sample",
        group_column=args.group_column,
        contrast=contrast,
        covariates=args.covariates,
    )
    edges, index = upper_triangle(data)
    nbs = network_based_statistic(
        edges,
        design,
        n_regions=len(labels),
        threshold=args.threshold,
        tail=args.tail,
        n_permutations=args.n_permutations,
        seed=args.seed,
        n_jobs=args.n_jobs,
    )
    edge_table = edge_statistics(edges, design, index=index, labels=labels)
    block_table = network_block_statistics(data, networks, design)
    comp_table = nbs.components_table(labels)
    out = ensure_output_dir(args.out)
    desc = "prepost" if paired else "groups"
    parameters = {
        **nbs.parameters,
        "kind": kind,
        "edge_values": "tangent" if kind == "tangent" else "Fisher z",
        "edge_correction": "Benjamini-Hochberg FDR over all edges",
        "block_correction": "Benjamini-Hochberg FDR over network blocks",
    }
    written = {}
    inputs = {"participants": args.participants, **files}
    for name, table, what in (
        ("nbs", comp_table, "NBS components"),
        ("edges", edge_table, "edge-wise GLM"),
        ("blocks", block_table, "network-block GLM"),
    ):
        path = atomic_write_tsv(out / f"group_desc-{desc}{name}_stats.tsv", table)
        atomic_write_json(
            sidecar_path_for(path),
            make_sidecar(
                description=f"{what}: {design.description}", parameters=parameters, inputs=inputs, space=None
            ),
        )
        written[name] = path
    comp_edges = pd.DataFrame(
        [
            {"component": k + 1, "i": i, "j": j, "region_i": labels[i], "region_j": labels[j]}
            for k, c in enumerate(nbs.components)
            for i, j in c.edges
        ],
        columns=["component", "i", "j", "region_i", "region_j"],
    )
    written["nbs_edges"] = atomic_write_tsv(out / f"group_desc-{desc}nbsedges_stats.tsv", comp_edges)
    atomic_write_json(
        sidecar_path_for(written["nbs_edges"]),
        make_sidecar(
            description="Edges of each NBS component", parameters=parameters, inputs=inputs, space=None
        ),
    )
    summary: dict[str, Any] = {
        "design": design.as_dict(),
        "n_subjects": int(edges.shape[0]),
        "n_regions": len(labels),
        "components": [
            {
                "sign": "positive" if c.sign > 0 else "negative",
                "n_edges": c.n_edges,
                "n_nodes": len(c.nodes),
                "p_fwer": c.p_fwer,
            }
            for c in nbs.components[:10]
        ],
        "n_significant_components": len(nbs.significant(args.alpha)),
        "n_edges_fdr": int((edge_table["p_fdr"] < args.alpha).sum()),
        "significant_blocks": block_table[block_table["p_fdr"] < args.alpha][
            ["network_a", "network_b", "effect", "ci_low", "ci_high", "p_fdr", "d"]
        ].to_dict("records"),
        "outputs": {k: str(v) for k, v in written.items()},
    }
    if not args.no_report:
        sections = compare_sections(
            design.as_dict(), comp_table, edge_table, block_table, nbs.null_max, parameters
        )
        written["report"] = write_report(
            out / f"group_desc-{desc}_report.html",
            title="tmsnet group comparison",
            summary={
                "effect": design.description,
                "significant NBS components": summary["n_significant_components"],
                "edges at FDR < alpha": summary["n_edges_fdr"],
            },
            sections=sections,
            parameters=parameters,
            inputs=inputs,
            space=None,
        )
        summary["outputs"]["report"] = str(written["report"])
    lines = [
        f"{design.description}: {summary['n_significant_components']} NBS component(s) at FWER p <= "
        f"{args.alpha}; {summary['n_edges_fdr']} edges at FDR < {args.alpha}"
    ]
    lines += [
        f"  component {k + 1}: {c['n_edges']} edges, {c['sign']}, p = {c['p_fwer']:.4f}"
        for k, c in enumerate(summary["components"][:5])
    ]
    _print(summary, args.json, lines)
    return 0


# -------------------------------------------------------------------------- propagate


def _load_matrix(path: Path, key: str | None) -> np.ndarray:
    if not path.is_file():
        raise InputFileNotFoundError(f"Matrix file {path} does not exist.")
    if path.suffix == ".mat":
        from scipy.io import loadmat

        content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        if key is None and len(content) == 1:
            key = next(iter(content))
        if key not in content:
            raise InvalidParameterError(f"{path.name} holds {sorted(content)}; choose one with --mat-key.")
        return np.asarray(content[key], dtype=float)
    from tmsnet.networks.connectomes import read_connectome

    return read_connectome(path)[0]


def _run_propagate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tmsnet.io.atomic import atomic_write_json, atomic_write_tsv, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for
    from tmsnet.networks.atlases import region_at_coordinate, resolve_region
    from tmsnet.networks.propagation import (
        PropagationModel,
        impulse_response,
        normalize_connectome,
        rank_response,
        steady_state_response,
    )
    from tmsnet.networks.report import propagation_sections, write_report

    sc = _load_matrix(args.connectome, args.mat_key)
    if args.clip_negative:
        sc = np.clip(sc, 0.0, None)
    lengths = None if args.lengths is None else _load_matrix(args.lengths, args.mat_key_lengths)
    atlas = _atlas(args)
    if sc.shape[0] == atlas.n_regions:
        labels, networks = atlas.labels, atlas.networks
    else:
        if args.target_coords is not None:
            raise InvalidParameterError(
                f"The connectome has {sc.shape[0]} regions but the atlas {atlas.n_regions}; give the atlas "
                "it was built with (--atlas-image/--atlas-labels) to place --target-coords."
            )
        labels, networks = [str(i) for i in range(sc.shape[0])], None
    if (args.target_coords is None) == (args.target_region is None):
        parser.error("give --target-coords X Y Z or --target-region NAME|INDEX")
    if args.target_coords is not None:
        target = region_at_coordinate(atlas, args.target_coords)
    elif networks is not None:
        region = int(args.target_region) if args.target_region.isdigit() else args.target_region
        target = resolve_region(atlas, region)
    else:
        if not args.target_region.isdigit() or not 0 <= int(args.target_region) < sc.shape[0]:
            raise InvalidParameterError(f"--target-region must be an index 0..{sc.shape[0] - 1}.")
        target = int(args.target_region)
    if not 0 < args.gain < 1:
        raise InvalidParameterError(
            "--gain (g * tau * spectral radius) must be in (0, 1) for a stable model."
        )
    c = normalize_connectome(sc)
    model = PropagationModel(
        c, tau_ms=args.tau, coupling=args.gain / args.tau, lengths_mm=lengths, velocity_m_per_s=args.velocity
    )
    steady = steady_state_response(model, target)
    times, impulse = impulse_response(model, target, duration_ms=args.duration, dt_ms=args.dt)
    regions, nets = rank_response(steady, times, impulse, stimulated=target, labels=labels, networks=networks)
    out = ensure_output_dir(args.out)
    stem = f"{args.prefix}_desc-{re.sub('[^A-Za-z0-9]', '', labels[target])}"
    parameters = {
        **model.as_dict(),
        "normalisation": "spectral radius 1",
        "duration_ms": args.duration,
        "dt_ms": args.dt,
        "stimulated_region": labels[target],
        "target_coordinate_mm": args.target_coords,
        "atlas": atlas.name,
    }
    inputs = {"connectome": args.connectome, "lengths": args.lengths}
    written = {
        "regions": atomic_write_tsv(out / f"{stem}_propagation.tsv", regions),
        "networks": atomic_write_tsv(out / f"{stem}_networks.tsv", nets),
    }
    for path in written.values():
        atomic_write_json(
            sidecar_path_for(path),
            make_sidecar(
                description="Predicted spread of a perturbation at the stimulated region (linear delayed "
                "network "
                "model; tmsnet.networks.propagation)",
                parameters=parameters,
                inputs=inputs,
                space=atlas.space,
            ),
        )
    summary: dict[str, Any] = {
        "stimulated_region": labels[target],
        "stimulated_network": None if networks is None else networks[target],
        "top_regions": regions.iloc[1 : args.top + 1][
            ["name", "network", "steady_state_relative", "arrival_ms"]
        ].to_dict("records"),
        "networks": nets.to_dict("records"),
        "parameters": parameters,
        "outputs": {k: str(v) for k, v in written.items()},
    }
    if not args.no_report:
        path = write_report(
            out / f"{stem}_report.html",
            title="tmsnet propagation",
            summary={
                "stimulated region": labels[target],
                "most affected network": nets.iloc[0]["network"] if len(nets) else None,
            },
            sections=propagation_sections(regions, nets, times, impulse, target, parameters, args.top),
            parameters=parameters,
            inputs=inputs,
            space=atlas.space,
        )
        summary["outputs"]["report"] = str(path)
    lines = [f"Stimulated: {labels[target]}"] + [
        f"  {int(r['rank'])}. {r['name']} ({r['network']}): {r['steady_state_relative']:.3g}, arrival "
        f"{r['arrival_ms']:.1f} ms"
        for _, r in regions.iloc[1 : args.top + 1].iterrows()
    ]
    _print(summary, args.json, lines)
    return 0


# ---------------------------------------------------------------------------- parsers


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Add ``connectome``, ``compare`` and ``propagate`` to the ``tmsnet`` parser."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = subparsers.add_parser(
        "connectome",
        formatter_class=fmt,
        help="parcellated functional connectomes, network summaries and graph measures",
        description="Connectivity matrices (correlation, partial correlation, tangent) from fMRIPrep BOLD "
        "runs or ROI time-series tables, cleaned like `tmsnet target`, with within/between "
        "network summaries, graph measures and the target region's network profile.",
    )
    src = p.add_argument_group("inputs")
    src.add_argument("--bold", type=Path, nargs="+", help="fMRIPrep *_desc-preproc_bold.nii.gz run(s)")
    src.add_argument("--timeseries", type=Path, nargs="+", help="ROI time-series TSV(s): frames x regions")
    src.add_argument("--confounds", type=Path, nargs="+", help="confounds TSV per input")
    src.add_argument("--t-r", type=float, default=None, help="repetition time (s)")
    _add_atlas_args(p)
    p.add_argument(
        "--kind",
        nargs="+",
        default=["correlation"],
        choices=["correlation", "partial", "tangent"],
        help="connectivity measure(s)",
    )
    p.add_argument("--cov-estimator", default="ledoit-wolf", choices=["ledoit-wolf", "empirical"])
    cl = p.add_argument_group("cleaning (shared with `tmsnet target`)")
    cl.add_argument("--confound-strategy", default="simple", help="simple, scrubbing, minimal or none")
    cl.add_argument(
        "--confound-columns",
        nargs="+",
        default=None,
        help="regress exactly these columns (ROI tables with non-fMRIPrep confounds)",
    )
    cl.add_argument("--no-gsr", action="store_true", help="no global signal regression")
    cl.add_argument("--low-pass", type=float, default=0.1, help="Hz")
    cl.add_argument("--high-pass", type=float, default=0.01, help="Hz")
    cl.add_argument("--discard-frames", type=int, default=0)
    cl.add_argument("--min-frames", type=int, default=50)
    cl.add_argument("--min-duration", type=float, default=2.0, help="minutes")
    p.add_argument(
        "--target-coords",
        type=float,
        nargs=3,
        default=None,
        metavar=("X", "Y", "Z"),
        help=f"stimulation target (mm) for the network profile; default {DEFAULT_TARGET_MM}",
    )
    p.add_argument("--seed", type=int, default=0, help="Louvain seed")
    _add_output_args(p)
    p.set_defaults(func=_run_connectome)

    c = subparsers.add_parser(
        "compare",
        formatter_class=fmt,
        help="patients vs controls or pre vs post: edges (FDR), NBS (FWER), network blocks",
        description="Group statistics on connectomes written by `tmsnet connectome`.",
    )
    c.add_argument(
        "--participants", type=Path, required=True, help="participants.tsv (participant_id, group...)"
    )
    c.add_argument("--connectomes", type=Path, required=True, help="folder holding *_relmat.tsv files")
    c.add_argument(
        "--kind", default="correlation", help="connectivity measure to compare (file meas- entity)"
    )
    c.add_argument("--group-column", default="group")
    c.add_argument("--contrast", nargs=2, default=None, metavar=("A", "B"), help="two-sample effect A - B")
    c.add_argument(
        "--sessions",
        nargs=2,
        default=None,
        metavar=("PRE", "POST"),
        help="paired design: effect POST - PRE (ses- entities)",
    )
    c.add_argument("--covariates", nargs="+", default=[], help="participants.tsv columns (age sex mean_fd)")
    c.add_argument("--networks", type=Path, default=None, help="TSV name/network (default: Schaefer-100)")
    c.add_argument("--threshold", type=float, default=3.0, help="NBS primary t threshold")
    c.add_argument("--tail", default="both", choices=["both", "positive", "negative"])
    c.add_argument("--n-permutations", type=int, default=5000)
    c.add_argument("--alpha", type=float, default=0.05)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--n-jobs", type=int, default=1)
    _add_output_args(c)
    c.set_defaults(func=_run_compare)

    g = subparsers.add_parser(
        "propagate",
        formatter_class=fmt,
        help="predicted spread of stimulation over a connectome (linear model with delays)",
        description="Steady-state and impulse response of a linear delayed network model to input at the "
        "stimulated region; ranked regions and networks.",
    )
    g.add_argument(
        "--connectome", type=Path, required=True, help="structural/functional matrix (.tsv, .npy, .mat)"
    )
    g.add_argument("--mat-key", default=None, help="variable in a .mat connectome")
    g.add_argument("--lengths", type=Path, default=None, help="tract lengths in mm (.tsv, .npy, .mat)")
    g.add_argument("--mat-key-lengths", default=None)
    g.add_argument(
        "--clip-negative", action="store_true", help="set negative weights to 0 (functional input)"
    )
    _add_atlas_args(g)
    g.add_argument("--target-coords", type=float, nargs=3, default=None, metavar=("X", "Y", "Z"))
    g.add_argument("--target-region", default=None, help="region name or 0-based index")
    g.add_argument("--tau", type=float, default=10.0, help="local time constant (ms)")
    g.add_argument("--gain", type=float, default=0.9, help="g * tau * spectral radius (< 1)")
    g.add_argument("--velocity", type=float, default=7.0, help="conduction velocity (m/s)")
    g.add_argument("--duration", type=float, default=200.0, help="impulse response length (ms)")
    g.add_argument("--dt", type=float, default=0.1, help="integration step (ms)")
    g.add_argument("--top", type=int, default=10, help="regions listed")
    g.add_argument("--prefix", default="sub-01", help="file-name prefix (BIDS entities)")
    _add_output_args(g)
    g.set_defaults(func=_run_propagate)


def _add_output_args(p: argparse.ArgumentParser) -> None:
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, required=True, help="output folder")
    o.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    o.add_argument("--no-report", action="store_true", help="skip the HTML report")
