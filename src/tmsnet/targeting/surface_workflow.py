"""Targets on the cortical surface: load -> clean -> regions -> methods -> uncertainty.

The surface job of issue 15, for fMRIPrep surface BOLD (GIFTI pairs, FreeSurfer
MGH pairs, CIFTI-2; :func:`tmsnet.io.surface.load_surface_bold`) on a template
mesh tmsnet has (fsaverage5, from nilearn's package files; fsLR 32k, its own) or one the user
gives (``mesh``: fsaverage6 and fsaverage, whose meshes do not ship):

1. load both hemispheres; vertices constant over time (the medial wall) are left out;
2. confounds: fMRIPrep's TSV, or with ``confounds_all_columns`` a plain matrix whose
   every column is a regressor; with global signal regression the mean cortical signal
   is added as ``global_signal`` when the matrix has none (recorded);
3. the same temporal cleaning as the volume job (:func:`tmsnet.fmri.cleaning.clean_bold`),
   with heat-kernel smoothing on the template mesh (FWHM in mm) instead of the grid's;
   several runs of a session are cleaned one by one and concatenated on the vertices every
   run kept;
4. the sgACC seed and the DLPFC search region on the template surface
   (:mod:`tmsnet.surface.mesh`, the published centres and radii);
5. the methods behind the same API (:mod:`tmsnet.targeting.methods`): clusters follow
   the mesh adjacency; the target of a cluster method is the member vertex nearest to
   the centroid, so it lies on the cortex; the ``seedmap`` method weights the vertices by
   a surface group seedmap (``--seedmap``: the left GIFTI of a pair, default the bundled
   fsaverage5 map; :func:`tmsnet.targeting.seedmap.read_surface_seedmap`), read before
   the cleaning so that a map of another space or mesh is refused early (the bundled map
   on a scan of another space: skipped with a warning when other methods run);
6. the block bootstrap, split-half and scan-length advice as for volumes, and the same scan
   QC (duration, head motion from ``framewise_displacement`` when the confounds have it) and
   its warnings.

Coordinates are the template surface's (fsaverage: MNI305, a few mm from MNI152);
each target records its hemisphere and vertex.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.fmri.cleaning import clean_bold
from tmsnet.io.fmriprep import load_confounds_table
from tmsnet.io.surface import (
    HEMISPHERE_LABELS,
    SurfaceBold,
    load_confounds_matrix,
    load_surface_bold,
)
from tmsnet.parallel import available_workers
from tmsnet.surface.mesh import (
    TemplateMesh,
    check_template_geometry,
    load_mesh_pair,
    load_template_mesh,
    mesh_pair_files,
    smoothing_operator,
)
from tmsnet.targeting.methods import SurfaceElements, TargetingContext
from tmsnet.targeting.results import MethodUncertainty, Target
from tmsnet.targeting.seedmap import SeedmapOptions, SurfaceSeedmap, read_surface_seedmap
from tmsnet.targeting.surface_regions import surface_elements, surface_regions
from tmsnet.targeting.workflow import (
    TargetingParameters,
    as_list,
    check_same_t_r,
    dof_warning,
    estimate_uncertainty,
    job_warnings,
    run_inputs,
    run_methods,
    scan_effective_dof,
    scan_qc,
)

HEMISPHERES = HEMISPHERE_LABELS
_MESH_HEMISPHERE = {"L": "left", "R": "right"}


@dataclass
class SurfaceScan:
    """A cleaned surface scan (``t_r``, ``run_lengths`` and ``cleaning`` as a volume scan's)."""

    data: np.ndarray
    bold: SurfaceBold
    meshes: dict[str, TemplateMesh]
    cleaning: dict[str, Any]
    t_r: float
    run_lengths: list[int]
    mesh_files: dict[str, Path] = field(default_factory=dict)
    confounds: pd.DataFrame | None = None
    inputs: dict[str, Path] = field(default_factory=dict)


@dataclass
class SurfaceTargetingResult:
    """Targets of a surface scan and everything needed to write and explain them."""

    targets: list[Target]
    space: str
    elements: SurfaceElements
    n_mesh_vertices: dict[str, int]
    seed_info: dict[str, Any]
    search_info: dict[str, Any]
    parameters: dict[str, Any]
    inputs: dict[str, Path]
    warnings: list[str]
    uncertainty: dict[str, MethodUncertainty] = field(default_factory=dict)
    qc: dict[str, Any] = field(default_factory=dict)


def _confounds(path: str | Path, bold: SurfaceBold, parameters: TargetingParameters) -> pd.DataFrame:
    cleaning = parameters.cleaning
    if not cleaning.confounds_all_columns:
        return load_confounds_table(path, n_frames=bold.n_frames)
    table = load_confounds_matrix(path, n_frames=bold.n_frames)
    if cleaning.global_signal_regression and "global_signal" not in table.columns:
        table = table.assign(global_signal=bold.data.astype(np.float64).mean(axis=1))
    return table


def _smoother(bold: SurfaceBold, meshes: dict[str, TemplateMesh], fwhm_mm: float | None):
    """Frames x data-vertices -> smoothed, hemisphere by hemisphere on its mesh.

    Without smoothing it is the identity: a smoother is always given to the cleaning, which
    then knows the data are not a voxel grid.
    """
    if not fwhm_mm:
        return lambda frames: frames
    parts = []
    for hemi in HEMISPHERES:
        columns = np.flatnonzero(bold.hemisphere == hemi)
        wall = np.ones(meshes[hemi].coords_mm.shape[0], dtype=bool)
        wall[bold.vertex[columns]] = False
        parts.append((columns, bold.vertex[columns],
                      smoothing_operator(meshes[hemi], fwhm_mm, medial_wall=wall)))

    def smooth(frames: np.ndarray) -> np.ndarray:
        out = np.empty(frames.shape, dtype=np.float32)
        for columns, vertex, smoother in parts:
            full = np.zeros((smoother.n_vertices, frames.shape[0]))
            full[vertex] = frames[:, columns].T
            out[:, columns] = smoother(full)[vertex].T
        return out

    return smooth


def _meshes(bold: SurfaceBold, kind: str, mesh: str | Path | None) -> dict[str, TemplateMesh]:
    if mesh is None:
        return {h: load_template_mesh(bold.space, _MESH_HEMISPHERE[h], kind) for h in HEMISPHERES}
    meshes = load_mesh_pair(mesh, bold.space, n_vertices=bold.n_mesh_vertices)
    check_template_geometry(meshes)
    return meshes


class _CleanedRun(NamedTuple):
    """One surface run after its own cleaning, with the files it was read from by role."""

    bold: SurfaceBold
    data: np.ndarray
    cleaning: dict[str, Any]
    confounds: pd.DataFrame
    files: dict[str, Any]


def load_and_clean_surface(bold: str | Path | Sequence[str | Path],
                           confounds: str | Path | Sequence[str | Path],
                           parameters: TargetingParameters, *, space: str | None = None,
                           t_r: float | None = None, mesh_kind: str = "pial",
                           mesh: str | Path | None = None,
                           check: Callable[[SurfaceBold], Any] | None = None) -> SurfaceScan:
    """Steps 1-3 of the module docstring: the cleaned data on the data's vertices.

    ``bold`` and ``confounds`` are one run's files, or lists of several runs of one session
    (same space, mesh and TR): each run is cleaned on its own (confounds, band-pass,
    smoothing, standardization), then the runs are concatenated in time on the vertices
    every run kept, as the volume job does (``run_lengths`` keeps the bootstrap's blocks
    inside runs). ``mesh``, when given, is the left file of the template surface pair the
    data are on (:func:`tmsnet.surface.mesh.load_mesh_pair`; needed for fsaverage6 and
    fsaverage, which tmsnet does not ship); it replaces the shipped mesh and is recorded as an
    input. ``check(surface_bold)``, when given, runs after loading the first run and before
    the cleaning (to refuse an input that does not fit the scan before the expensive step).
    """
    bolds, tables = as_list(bold), as_list(confounds)
    if not bolds or len(bolds) != len(tables):
        raise InvalidParameterError(f"Give one confounds file per surface BOLD run: got "
                                    f"{len(bolds)} BOLD and {len(tables)} confounds files.")
    runs: list[_CleanedRun] = []
    meshes: dict[str, TemplateMesh] = {}
    for path, table_path in zip(bolds, tables, strict=True):
        surface_bold = load_surface_bold(path, space=space, t_r=t_r)
        if runs:
            _check_same_surface_run(surface_bold, runs[0].bold, path)
        else:
            if check is not None:
                check(surface_bold)
            meshes = _meshes(surface_bold, mesh_kind, mesh)
        table = _confounds(table_path, surface_bold, parameters)
        smooth = _smoother(surface_bold, meshes, parameters.cleaning.smoothing_fwhm_mm)
        cleaned, record = clean_bold(surface_bold, table, parameters.cleaning, smoother=smooth)
        record["surface"] = {"mesh": f"{surface_bold.space} {meshes['L'].kind}",
                             "mesh_source": "template shipped with tmsnet" if mesh is None
                             else f"given: {Path(mesh).name} and its right partner",
                             "excluded_vertices": surface_bold.excluded,
                             "t_r_source": surface_bold.t_r_source,
                             "t_r_in_file_s": surface_bold.t_r_file}
        if len(bolds) > 1:  # free the raw run before the next one
            surface_bold = replace(surface_bold, data=np.empty((0, 0), dtype=np.float32))
        runs.append(_CleanedRun(surface_bold, cleaned, record, table,
                                {**surface_bold.inputs, "confounds": table_path}))
    return _concatenate_runs(runs, meshes, {} if mesh is None else mesh_pair_files(mesh))


def _check_same_surface_run(run: SurfaceBold, first: SurfaceBold, path: str | Path) -> None:
    """A later run must share the first run's space, mesh and TR."""
    if run.space != first.space or run.n_mesh_vertices != first.n_mesh_vertices:
        raise SpaceError(f"Run {Path(path).name} is on {run.space} "
                         f"({run.n_mesh_vertices['L']} + {run.n_mesh_vertices['R']} vertices) but "
                         f"the first run on {first.space} ({first.n_mesh_vertices['L']} + "
                         f"{first.n_mesh_vertices['R']}); give runs of one surface space.")
    check_same_t_r(run.t_r, first.t_r, path)


def _vertex_keys(bold: SurfaceBold) -> np.ndarray:
    """One integer per column: the vertex, offset by the left mesh's size on the right."""
    return bold.vertex + np.where(bold.hemisphere == "R", bold.n_mesh_vertices["L"], 0)


def _concatenate_runs(runs: list[_CleanedRun], meshes: dict[str, TemplateMesh],
                      mesh_files: dict[str, Path]) -> SurfaceScan:
    """The cleaned runs, in time, on the vertices every run kept (the first run's order)."""
    first = runs[0]
    inputs = run_inputs([run.files for run in runs])
    if len(runs) == 1:
        return SurfaceScan(data=first.data, bold=first.bold, meshes=meshes,
                           cleaning=first.cleaning, t_r=float(first.bold.t_r),
                           run_lengths=[int(first.data.shape[0])], mesh_files=mesh_files,
                           confounds=first.confounds, inputs=inputs)
    keys = _vertex_keys(first.bold)
    common = np.logical_and.reduce([np.isin(keys, _vertex_keys(run.bold)) for run in runs])
    pieces = []
    for run in runs:
        own = _vertex_keys(run.bold)
        order = np.argsort(own, kind="stable")
        pieces.append(run.data[:, order[np.searchsorted(own[order], keys[common])]])
    record = dict(first.cleaning)
    record.update(runs=[run.cleaning for run in runs], n_runs=len(runs),
                  run_concatenation="each run cleaned and standardized, then concatenated on "
                                    "the vertices every run kept",
                  vertices_not_in_every_run=int((~common).sum()))
    merged = replace(first.bold, hemisphere=first.bold.hemisphere[common],
                     vertex=first.bold.vertex[common],
                     n_frames=int(sum(run.bold.n_frames for run in runs)))
    return SurfaceScan(data=np.concatenate(pieces, axis=0), bold=merged, meshes=meshes,
                       cleaning=record, t_r=float(first.bold.t_r),
                       run_lengths=[int(p.shape[0]) for p in pieces], mesh_files=mesh_files,
                       confounds=pd.concat([run.confounds for run in runs], ignore_index=True),
                       inputs=inputs)


def t_r_warning(bold: SurfaceBold) -> list[str]:
    """A warning when the TR given differs from the one the file states (the given one is used).

    A surface file's TR field is often a converter's placeholder (the LEMON MGH files say
    1.0 s for a 1.4 s protocol), so the argument wins; but the difference must not pass
    silently, since the band-pass and every duration in minutes depend on it.
    """
    stated = bold.t_r_file
    if bold.t_r_source != "argument" or stated is None or abs(stated - bold.t_r) <= 0.01 * stated:
        return []
    return [f"The repetition time given ({bold.t_r:g} s) differs from the {stated:g} s stated in "
            f"{Path(bold.inputs.get('left', next(iter(bold.inputs.values())))).name}; the given "
            "value was used. Check it: the band-pass and every duration in minutes depend on it."]


def _region_inputs(seed_info: dict[str, Any], search_info: dict[str, Any]) -> dict[str, Path]:
    """The label files the regions came from (recorded as inputs, hashed in the sidecars)."""
    found = {}
    for role, info in (("seed", seed_info), ("search", search_info)):
        for part, path in (info.get("paths") or {}).items():
            found[f"{role}_label_{part}"] = Path(path)
    return found


def _coordinate_note(scan: SurfaceScan) -> str:
    space, where = scan.bold.space, scan.meshes["L"].coordinate_space
    note = f"Coordinates are positions on the {space} template surface ({where}"
    return note + (", a few mm from MNI152)." if where == "MNI305" else ").")


def _read_seedmap(parameters: TargetingParameters) -> SurfaceSeedmap | None:
    """The surface group seedmap of the ``seedmap`` method (None when it does not run)."""
    if "seedmap" not in parameters.methods:
        return None
    options = next(o for o in parameters.options_for("seedmap") if isinstance(o, SeedmapOptions))
    return read_surface_seedmap(options.seedmap)


def _seedmap_fitter(seedmap: SurfaceSeedmap | None, parameters: TargetingParameters,
                    prepared: dict[str, Any]) -> Callable[[SurfaceBold], None]:
    """The check run on the loaded scan: the seedmap's weights on its vertices, into ``prepared``.

    The bundled map is on fsaverage5 only: on another space, with other methods to run, the
    seedmap method is skipped (``prepared["skipped"]``, a warning) rather than failing them;
    a map the user gave must fit.
    """

    def fit(surface_bold: SurfaceBold) -> None:
        if seedmap is None:
            return
        if seedmap.bundled and seedmap.space != surface_bold.space and len(parameters.methods) > 1:
            prepared["skipped"] = [
                f"Method seedmap skipped: the bundled surface seedmap is on {seedmap.space} and "
                f"this scan on {surface_bold.space}; give a {surface_bold.space} seedmap with "
                "--seedmap (build one with 'tmsnet seedmap build')."]
            return
        prepared["weights"], prepared["record"] = seedmap.on_vertices(
            space=surface_bold.space, hemisphere=surface_bold.hemisphere,
            vertex=surface_bold.vertex, n_mesh_vertices=surface_bold.n_mesh_vertices)

    return fit


def compute_surface_targets(bold: str | Path | Sequence[str | Path],
                            confounds: str | Path | Sequence[str | Path],
                            parameters: TargetingParameters | None = None, *,
                            space: str | None = None, t_r: float | None = None,
                            mesh: str | Path | None = None, progress: bool = False,
                            n_jobs: int | None = None) -> SurfaceTargetingResult:
    """Targets of one surface scan (see the module docstring for the steps).

    Parameters
    ----------
    bold : path or list of path
        The LEFT hemisphere's file (GIFTI ``hemi-L``, ``lh.``/``.lh.`` MGH) or a CIFTI
        dtseries; the right one is found beside it. A list: several runs of one session,
        each cleaned on its own, then concatenated (:func:`load_and_clean_surface`).
    confounds : path or list of path
        fMRIPrep confounds TSV, or a plain matrix with
        ``parameters.cleaning.confounds_all_columns``; one per run.
    parameters : TargetingParameters, optional
        Methods, cleaning, regions and uncertainty, as for volumes. The ``seedmap`` method
        reads the surface seedmap of its :class:`~tmsnet.targeting.seedmap.SeedmapOptions`
        (the left GIFTI of a pair; default the bundled fsaverage5 map).
    space : str, optional
        The data's space (``fsaverage5``, ``fsaverage6``, ``fsaverage``, ``fsLR``) when the
        file name has no ``space-`` entity.
    t_r : float, optional
        Repetition time (s); overrides the files.
    mesh : path, optional
        The left file of the template surface pair the data are on (GIFTI or FreeSurfer, the
        right one beside it; :func:`tmsnet.surface.mesh.load_mesh_pair`). Needed for
        fsaverage6 and fsaverage; otherwise the shipped mesh of the space is used.
    progress : bool
        Accepted for symmetry with the volume job (no progress bar yet).
    n_jobs : int, optional
        Processes forked for the bootstrap of the hierarchical method (default: available
        CPUs, at most 8); set 1 when several subjects run in parallel processes. Results do
        not depend on it.

    Returns
    -------
    SurfaceTargetingResult
        ``parameters["seedmap"]`` records the seedmap used (None without the method).

    Raises
    ------
    SpaceError
        The seedmap is a volume, or on another space or mesh than the scan (checked
        before the cleaning).
    """
    parameters = TargetingParameters() if parameters is None else parameters
    seedmap = _read_seedmap(parameters)
    prepared: dict[str, Any] = {"skipped": []}
    scan = load_and_clean_surface(bold, confounds, parameters, space=space, t_r=t_r, mesh=mesh,
                                  check=_seedmap_fitter(seedmap, parameters, prepared))
    if prepared["skipped"]:
        parameters = replace(parameters, methods=tuple(m for m in parameters.methods
                                                       if m != "seedmap"))
    seed, search, seed_info, search_info = surface_regions(scan.bold, scan.meshes, parameters)
    n = scan.bold.vertex.size
    context = TargetingContext(data=scan.data, brain_mask=np.ones(n, dtype=bool),
                               affine=np.eye(4), seed_voxels=seed, search_voxels=search,
                               space=scan.bold.space, seed_weights=prepared.get("weights"),
                               surface=surface_elements(scan.bold, scan.meshes))
    targets, failed = run_methods(context, parameters)
    uncertainty = estimate_uncertainty(context, scan, targets, parameters,
                                       n_jobs=available_workers(n_jobs))
    qc, _, scan_warnings = scan_qc(scan.confounds, t_r=scan.t_r,
                                   n_frames_used=int(scan.data.shape[0]),
                                   n_frames=int(scan.bold.n_frames))
    warnings = job_warnings(prepared["skipped"] + t_r_warning(scan.bold) + scan_warnings
                            + dof_warning(scan, uncertainty), targets, failed, uncertainty)
    return SurfaceTargetingResult(
        targets=targets, space=scan.bold.space, elements=context.surface,
        n_mesh_vertices=dict(scan.bold.n_mesh_vertices), seed_info=seed_info,
        search_info=search_info,
        parameters={"methods": list(parameters.methods), "failed_methods": failed,
                    "cleaning": scan.cleaning, "effective_dof": scan_effective_dof(scan.cleaning),
                    "uncertainty": parameters.uncertainty.record(scan.t_r),
                    "seedmap": prepared.get("record"),
                    "coordinate_space_note": _coordinate_note(scan)},
        inputs=scan.inputs | scan.mesh_files
        | _region_inputs(seed_info, search_info)
        | ({} if "record" not in prepared else {"seedmap": seedmap.paths["left"],
                                                "seedmap_right": seedmap.paths["right"]}),
        warnings=warnings, uncertainty=uncertainty, qc=qc)

