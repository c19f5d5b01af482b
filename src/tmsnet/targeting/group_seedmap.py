"""Build a group seedmap (the input of the ``seedmap`` method) from a cohort.

A group seedmap (Fox et al. 2013, NeuroImage 66:151; Cash et al. 2021) is
the average sgACC connectivity map of many people. tmsnet builds it the way it
builds an individual map, so that cleaning and seed are the same: every scan is
cleaned (:func:`tmsnet.targeting.workflow.load_and_clean`), the mean sgACC
time series is correlated with every voxel, r is Fisher-z transformed,
averaged over scans, and transformed back to r (``tanh`` of the mean z).
Voxels outside any scan's brain mask are 0. All scans must be in the same
space; scans on another grid than the first are resampled to it (nilearn,
linear).

A map averaged over few scans carries sampling noise at every voxel (about
``1 / sqrt(n_scans x effective frames)`` in r: |r| ~ 0.03 for 8 scans of 300
frames). The seedmap method sums ``w_v x_v(t)`` over all brain voxels, so
~200,000 voxels of such noise can outweigh the few hundred seed voxels and
turn the seed time series into noise. ``min_abs_r`` (``--min-abs-r``) sets
the voxels with ``|r|`` below it to 0 (they then take no part); the default 0
keeps the published definition, right for maps of hundreds of people.

The image is written atomically with a JSON sidecar holding the cleaning and
seed parameters, the software versions and the SHA-256 of every input.

Surface scans (left-hemisphere GIFTI or MGH files, the right one beside each, as the
surface job reads them: :func:`tmsnet.targeting.surface_workflow.load_and_clean_surface`)
give a surface seedmap: the same average on every vertex of each hemisphere's template
mesh, the seed the surface job's (:func:`tmsnet.targeting.surface_regions.surface_regions`),
written as a GIFTI pair with one sidecar
(:func:`tmsnet.targeting.seedmap.write_surface_seedmap`). Vertices left out of every scan
(the medial wall) are 0. All scans must be on one surface space.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.io.atomic import atomic_write_json, atomic_write_nifti
from tmsnet.io.provenance import make_sidecar, sidecar_path_for
from tmsnet.io.surface import HEMISPHERE_LABELS, is_surface_bold
from tmsnet.surface.mesh import mesh_pair_files
from tmsnet.targeting.connectivity import correlation_with_seed, fisher_z, seed_time_series
from tmsnet.targeting.regions import SeedRegion, seed_mask
from tmsnet.targeting.seedmap import write_surface_seedmap
from tmsnet.targeting.surface_regions import surface_regions
from tmsnet.targeting.surface_workflow import load_and_clean_surface
from tmsnet.targeting.workflow import TargetingParameters, load_and_clean
from tmsnet.utils.params import Parameters, param

#: Fewest scans accepted for a group seedmap.
MIN_SCANS = 2
_RECORDED_CLEANING = ("confound_strategy", "global_signal_regression", "low_pass_hz",
                      "high_pass_hz", "smoothing_fwhm_mm")


@dataclass(frozen=True)
class GroupSeedmapParameters(Parameters):
    """How the group map is summarised (besides the cleaning and the seed)."""

    min_abs_r: float = param(
        0.0, low=0, high=1, high_inclusive=False,
        help="voxels of the group map with |r| below this are set to 0 (the noise floor of a "
             "small cohort; 0 keeps every voxel)")


def _scans(bolds: list, confounds: list, progress: bool):
    return tqdm(list(zip(bolds, confounds, strict=True)), desc="group seedmap", file=sys.stderr,
                disable=not progress, leave=False)


def _sum_fisher_z(bolds: list, confounds: list, cleaning: BoldCleaningParameters,
                  seed_region: SeedRegion, progress: bool, **load: Any
                  ) -> tuple[Any, Any, Any, Any, Any]:
    """Sum of the scans' Fisher z sgACC maps and of their brain masks, on the first scan's grid."""
    from nilearn.image import resample_to_img

    total = count = reference = space = seed_info = None
    for bold, table in _scans(bolds, confounds, progress):
        scan = load_and_clean(bold, table, cleaning, **load)
        grid = scan.grid
        seed3d, seed_info = seed_mask(grid.reference, grid.mask, seed_region)
        r = correlation_with_seed(scan.data, seed_time_series(scan.data, seed3d[grid.mask]))
        z = np.zeros(grid.shape, dtype=np.float64)
        z[grid.mask] = fisher_z(r)
        inside = grid.mask.astype(np.float64)
        if reference is None:
            reference, space = grid.reference, scan.space
            total, count = z, inside
            continue
        if scan.space != space:
            raise SpaceError(f"{Path(bold).name} is in {scan.space} but the first scan is in {space}; "
                             "a group seedmap needs one space.")
        if grid.shape != total.shape or not np.allclose(grid.affine, reference.affine, atol=1e-3):
            target = nib.Nifti1Image(np.zeros(total.shape, np.float32), reference.affine)
            z = resample_to_img(nib.Nifti1Image(z, grid.affine), target,
                                interpolation="continuous", force_resample=True,
                                copy_header=True).get_fdata()
            inside = resample_to_img(nib.Nifti1Image(inside, grid.affine), target,
                                     interpolation="nearest", force_resample=True,
                                     copy_header=True).get_fdata()
        total += z
        count += inside
    return total, count, reference, space, seed_info


def _sum_fisher_z_surface(bolds: list, confounds: list, cleaning: BoldCleaningParameters,
                          seed_region: SeedRegion, progress: bool, **load: Any
                          ) -> tuple[dict, dict, str, dict]:
    """Per hemisphere, the sum of the scans' Fisher z sgACC maps and of their vertex counts.

    On every vertex of the first scan's template meshes; a vertex left out of a scan (the
    medial wall) adds nothing there.
    """
    parameters = TargetingParameters(methods=("peak",), cleaning=cleaning,
                                     seed_region=seed_region)
    total: dict[str, np.ndarray] = {}
    count: dict[str, np.ndarray] = {}
    space = seed_info = None
    for bold, table in _scans(bolds, confounds, progress):
        scan = load_and_clean_surface(bold, table, parameters, **load)
        seed, _, seed_info, _ = surface_regions(scan.bold, scan.meshes, parameters)
        z = fisher_z(correlation_with_seed(scan.data, seed_time_series(scan.data, seed)))
        if space is None:
            space = scan.bold.space
            for hemi in HEMISPHERE_LABELS:
                total[hemi] = np.zeros(scan.bold.n_mesh_vertices[hemi])
                count[hemi] = np.zeros(scan.bold.n_mesh_vertices[hemi])
        elif scan.bold.space != space:
            raise SpaceError(f"{Path(bold).name} is on {scan.bold.space} but the first scan on "
                             f"{space}; a group seedmap needs one space.")
        for hemi in HEMISPHERE_LABELS:
            columns = scan.bold.columns(hemi)
            np.add.at(total[hemi], scan.bold.vertex[columns], z[columns])
            np.add.at(count[hemi], scan.bold.vertex[columns], 1.0)
    return total, count, space, seed_info


def _check_inputs(bolds: list, confounds: list, out_path: Path) -> bool:
    """Lengths, one kind of scan (volume or surface) and an output name of that kind."""
    if len(bolds) != len(confounds):
        raise InvalidParameterError(
            f"Give one confounds file per BOLD: got {len(bolds)} BOLD and {len(confounds)} confounds."
        )
    if len(bolds) < MIN_SCANS:
        raise InvalidParameterError(f"A group seedmap needs at least {MIN_SCANS} scans, got {len(bolds)}.")
    kinds = {is_surface_bold(b) for b in bolds}
    if len(kinds) > 1:
        raise InvalidParameterError(
            "Give only volume BOLD or only surface BOLD (left-hemisphere files): a group seedmap "
            "is built on one kind of data.")
    surface = kinds == {True}
    if surface and not out_path.name.endswith(".gii"):
        raise InvalidParameterError(
            f"Surface scans give a surface seedmap, written as a GIFTI pair: name the left file "
            f"like tpl-fsaverage5_hemi-L_desc-mycohort_seedmap.shape.gii; got {out_path.name}.")
    if not surface and not out_path.name.endswith((".nii", ".nii.gz")):
        raise InvalidParameterError(f"The seedmap must be written as .nii or .nii.gz, got {out_path.name}.")
    return surface


def _mean_r(total: np.ndarray, count: np.ndarray, min_abs_r: float) -> np.ndarray:
    """The tanh of the mean Fisher z where any scan counts; 0 elsewhere and below the floor."""
    mean_z = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    seedmap = np.tanh(mean_z).astype(np.float32)
    seedmap[np.abs(seedmap) < min_abs_r] = 0.0
    return seedmap


def build_group_seedmap(
    bolds: Sequence[str | Path],
    confounds: Sequence[str | Path],
    *,
    out_path: str | Path,
    cleaning: BoldCleaningParameters | None = None,
    seed_region: SeedRegion | None = None,
    description: str | None = None,
    parameters: GroupSeedmapParameters | None = None,
    space: str | None = None,
    t_r: float | None = None,
    mesh: str | Path | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Average sgACC connectivity (Fisher z) over scans and write it as a seedmap.

    Parameters
    ----------
    bolds, confounds : sequence of path
        One BOLD and confounds file per scan (same order), all in one template
        space: fMRIPrep volume BOLD, or the LEFT hemisphere's surface file of each scan
        (GIFTI ``hemi-L``, ``lh.``/``.lh.`` MGH; the right one beside it), which gives a
        surface seedmap.
    out_path : path
        Output NIfTI (``.nii.gz``); its sidecar is written beside it. Name it
        ``tpl-<space>_res-02_desc-<label>_seedmap.nii.gz`` (or with
        ``space-<space>``) so that the space is visible. For surface scans the
        left GIFTI, named with ``hemi-L``
        (``tpl-<space>_hemi-L_desc-<label>_seedmap.shape.gii``): the right one and the
        sidecar are written beside it (:func:`tmsnet.targeting.seedmap.write_surface_seedmap`).
    cleaning : BoldCleaningParameters, optional
        The cleaning (default: its defaults); use the same as for the
        individual scans the seedmap will serve.
    seed_region : SeedRegion, optional
        The seed (default: the sgACC sphere; see
        :func:`tmsnet.targeting.regions.seed_mask`).
    description : str, optional
        Free text recorded in the sidecar (e.g. which cohort).
    parameters : GroupSeedmapParameters, optional
        ``min_abs_r``: the noise floor below which voxels are set to 0
        (default 0: none; see the module docstring).
    space : str, optional
        Template space of the scans when their names have no ``space-`` entity.
    t_r : float, optional
        Repetition time (s) when neither the files nor their sidecars state it.
    mesh : path, optional
        Surface scans only: the left file of the template surface pair they are on, needed
        for fsaverage6 and fsaverage (:func:`tmsnet.surface.mesh.load_mesh_pair`); recorded
        as an input.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    path : Path
        The written image (for surface scans: the left GIFTI).
    sidecar : dict
        Its sidecar.

    Raises
    ------
    InvalidParameterError
        Fewer than :data:`MIN_SCANS` scans, unequal list lengths, volume and surface scans
        mixed, an output name of the wrong kind, or a mesh given for volume scans.
    SpaceError
        Scans in different spaces.
    """
    bolds, confounds, out_path = list(bolds), list(confounds), Path(out_path)
    surface = _check_inputs(bolds, confounds, out_path)
    cleaning = BoldCleaningParameters() if cleaning is None else cleaning
    seed_region = SeedRegion() if seed_region is None else seed_region
    parameters = GroupSeedmapParameters() if parameters is None else parameters
    # The sidecar records the cleaning choices this command offers.
    recorded = _RECORDED_CLEANING + (("confounds_all_columns",)
                                     if cleaning.confounds_all_columns else ())
    record = {"cleaning": {name: getattr(cleaning, name) for name in recorded},
              "n_scans": len(bolds), "statistic": "r (tanh of mean Fisher z)",
              "cohort": description, "min_abs_r": parameters.min_abs_r}
    inputs = {f"bold_{i:03d}": Path(p) for i, p in enumerate(bolds)}
    inputs.update({f"confounds_{i:03d}": Path(p) for i, p in enumerate(confounds)})
    load = {"space": space, "t_r": t_r}
    if mesh is not None and not surface:
        raise InvalidParameterError("--surface-mesh is for surface scans; these are volumes.")
    if surface:
        return _build_surface_seedmap(bolds, confounds, out_path, cleaning, seed_region,
                                      parameters, record, inputs, progress, mesh=mesh, **load)
    total, count, reference, space, seed_info = _sum_fisher_z(bolds, confounds, cleaning,
                                                              seed_region, progress, **load)
    seedmap = _mean_r(total, count, parameters.min_abs_r)
    img = nib.Nifti1Image(seedmap, reference.affine)
    img.header.set_xyzt_units("mm")
    sidecar = _seedmap_sidecar(record | {"seed": seed_info,
                                         "n_nonzero_voxels": int(np.count_nonzero(seedmap))},
                               inputs, space)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_nifti(out_path, img)
    atomic_write_json(sidecar_path_for(out_path), sidecar)
    return out_path, sidecar


def _build_surface_seedmap(bolds: list, confounds: list, out_path: Path,
                           cleaning: BoldCleaningParameters, seed_region: SeedRegion,
                           parameters: GroupSeedmapParameters, record: dict[str, Any],
                           inputs: dict[str, Path], progress: bool, *, mesh: str | Path | None,
                           **load: Any) -> tuple[Path, dict[str, Any]]:
    """The surface branch of :func:`build_group_seedmap`: a GIFTI pair and its sidecar."""
    if mesh is not None:
        load["mesh"] = mesh
        inputs = inputs | mesh_pair_files(mesh)
    total, count, space, seed_info = _sum_fisher_z_surface(bolds, confounds, cleaning,
                                                           seed_region, progress, **load)
    values = {hemi: _mean_r(total[hemi], count[hemi], parameters.min_abs_r)
              for hemi in HEMISPHERE_LABELS}
    record = record | {"seed": seed_info, "n_nonzero_vertices": {
        hemi: int(np.count_nonzero(v)) for hemi, v in values.items()}}
    sidecar = _seedmap_sidecar(record, inputs, space)
    return write_surface_seedmap(out_path, values, sidecar)["left"], sidecar


def _seedmap_sidecar(record: dict[str, Any], inputs: dict[str, Path], space: str) -> dict[str, Any]:
    """The seedmap's sidecar; ``Parameters`` in the order seed, cleaning, ..., counts."""
    return make_sidecar(
        description=(
            "Group sgACC seedmap: tanh of the mean Fisher z of the individual sgACC connectivity "
            "maps (Fox et al. 2013; Cash et al. 2021). Input of the tmsnet 'seedmap' method."
        ),
        parameters={key: record[key] for key in ("seed", "cleaning", "n_scans", "statistic",
                                                 "cohort", "min_abs_r")} | {
            key: value for key, value in record.items() if key.startswith("n_nonzero")},
        inputs=inputs,
        space=space,
    )
