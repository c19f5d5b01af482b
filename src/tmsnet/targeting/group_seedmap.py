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
from tmsnet.targeting.connectivity import correlation_with_seed, fisher_z, seed_time_series
from tmsnet.targeting.regions import SeedRegion, seed_mask
from tmsnet.targeting.workflow import load_and_clean
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


def _sum_fisher_z(bolds: list, confounds: list, cleaning: BoldCleaningParameters,
                  seed_region: SeedRegion, progress: bool) -> tuple[Any, Any, Any, Any, Any]:
    """Sum of the scans' Fisher z sgACC maps and of their brain masks, on the first scan's grid."""
    from nilearn.image import resample_to_img

    total = count = reference = space = seed_info = None
    for bold, table in tqdm(list(zip(bolds, confounds, strict=True)), desc="group seedmap",
                            file=sys.stderr, disable=not progress, leave=False):
        scan = load_and_clean(bold, table, cleaning)
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


def build_group_seedmap(
    bolds: Sequence[str | Path],
    confounds: Sequence[str | Path],
    *,
    out_path: str | Path,
    cleaning: BoldCleaningParameters | None = None,
    seed_region: SeedRegion | None = None,
    description: str | None = None,
    parameters: GroupSeedmapParameters | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Average sgACC connectivity (Fisher z) over scans and write it as a seedmap.

    Parameters
    ----------
    bolds, confounds : sequence of path
        One fMRIPrep BOLD and confounds file per scan (same order), all in one
        template space.
    out_path : path
        Output NIfTI (``.nii.gz``); its sidecar is written beside it. Name it
        ``tpl-<space>_res-02_desc-<label>_seedmap.nii.gz`` (or with
        ``space-<space>``) so that the space is visible.
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
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    path : Path
        The written image.
    sidecar : dict
        Its sidecar.

    Raises
    ------
    InvalidParameterError
        Fewer than :data:`MIN_SCANS` scans or unequal list lengths.
    SpaceError
        Scans in different spaces.
    """
    bolds, confounds = list(bolds), list(confounds)
    if len(bolds) != len(confounds):
        raise InvalidParameterError(
            f"Give one confounds file per BOLD: got {len(bolds)} BOLD and {len(confounds)} confounds."
        )
    if len(bolds) < MIN_SCANS:
        raise InvalidParameterError(f"A group seedmap needs at least {MIN_SCANS} scans, got {len(bolds)}.")
    out_path = Path(out_path)
    if not out_path.name.endswith((".nii", ".nii.gz")):
        raise InvalidParameterError(f"The seedmap must be written as .nii or .nii.gz, got {out_path.name}.")
    cleaning = BoldCleaningParameters() if cleaning is None else cleaning
    seed_region = SeedRegion() if seed_region is None else seed_region
    parameters = GroupSeedmapParameters() if parameters is None else parameters
    # The sidecar records the cleaning choices this command offers.
    cleaning_record = {name: getattr(cleaning, name) for name in _RECORDED_CLEANING}
    total, count, reference, space, seed_info = _sum_fisher_z(bolds, confounds, cleaning,
                                                              seed_region, progress)
    mean_z = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    seedmap = np.tanh(mean_z).astype(np.float32)
    seedmap[np.abs(seedmap) < parameters.min_abs_r] = 0.0
    img = nib.Nifti1Image(seedmap, reference.affine)
    img.header.set_xyzt_units("mm")
    inputs = {f"bold_{i:03d}": Path(p) for i, p in enumerate(bolds)}
    inputs.update({f"confounds_{i:03d}": Path(p) for i, p in enumerate(confounds)})
    sidecar = make_sidecar(
        description=(
            "Group sgACC seedmap: tanh of the mean Fisher z of the individual sgACC connectivity "
            "maps (Fox et al. 2013; Cash et al. 2021). Input of the tmsnet 'seedmap' method."
        ),
        parameters={"seed": seed_info, "cleaning": cleaning_record, "n_scans": len(bolds),
                    "statistic": "r (tanh of mean Fisher z)", "cohort": description,
                    "min_abs_r": parameters.min_abs_r,
                    "n_nonzero_voxels": int(np.count_nonzero(seedmap))},
        inputs=inputs,
        space=space,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_nifti(out_path, img)
    atomic_write_json(sidecar_path_for(out_path), sidecar)
    return out_path, sidecar
