"""A five-tissue template head for users with MNI-space data only (issue 17 item 1).

Built from what installed packages ship, nothing downloaded:

* **brain and its tissues**: nilearn's ICBM152 2009a templates
  (``load_mni152_brain_mask``, ``load_mni152_gm_template``,
  ``load_mni152_wm_template``, at 1 or 2 mm), CSF probability ``1 - GM - WM``
  (clipped to [0, 1]) inside the brain mask;
* **head**: MNE's ``fsaverage-head.fif`` scalp surface (fsaverage = MNI305),
  mapped to MNI152 with FreeSurfer's published MNI305 -> MNI152 affine (the
  template head surface of :func:`tmsnet.navigation.scalp.template_head_surface`,
  which the sphere-model plan already uses), voxelised on the grid: the
  surface, sampled every half voxel and closed by a one-voxel dilation, is
  filled in 3-D and in every axial slice (the grid cuts the neck), then eroded
  back by one voxel, and joined with the brain;
* **layers**: CSF and skull as layers of set thickness outside the brain mask,
  scalp beyond, exactly the rule of fMRIPrep heads
  (:func:`tmsnet.physics.head_model.layered_labels`, :class:`HeadModelParameters`).

The grid is nilearn's, widened so that the whole scalp lies inside it with a
margin (the nose and the back of the head reach beyond nilearn's box); only
its inferior face cuts the head (the neck, 12 mm below nilearn's box, where the
brain stem ends). Space: ``MNI152NLin2009cAsym``;
the tissue templates are the 2009a symmetric ones and the head an affine map
of fsaverage's, both within a few millimetres of it, as the plan's sphere-model
template head already is. A template head is a population average: it shows
where the field goes in an average head, not in this person's (the plan says so).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from scipy import ndimage

from tmsnet.exceptions import InvalidParameterError
from tmsnet.navigation.scalp import template_head_surface
from tmsnet.physics.head_model import (
    HeadModel,
    HeadModelParameters,
    fill_head_cavities,
    inferior_face,
    layered_labels,
)

__all__ = ["TEMPLATE_HEAD_SPACE", "TEMPLATE_RESOLUTIONS_MM", "template_head_model"]

#: Space of the template head's world coordinates.
TEMPLATE_HEAD_SPACE = "MNI152NLin2009cAsym"
#: Voxel sizes nilearn ships its tissue templates at (mm).
TEMPLATE_RESOLUTIONS_MM = (1, 2)
_MARGIN_MM = 6.0


def _widened_grid(affine: np.ndarray, shape: tuple[int, ...], points_mm: np.ndarray,
                  voxel_mm: float) -> tuple[tuple[int, int, int], tuple[int, int, int], np.ndarray]:
    """Padding below and above each axis (voxels) so ``points_mm`` fit with a margin; new affine.

    The inferior face (world -z) is widened by ``2 * _MARGIN_MM`` only, so that the brain stem
    (cut by nilearn's box) ends inside the neck and only the neck leaves the grid.
    """
    inv = np.linalg.inv(affine)
    ijk = points_mm @ inv[:3, :3].T + inv[:3, 3]
    margin = int(np.ceil(_MARGIN_MM / voxel_mm))
    low = np.maximum(0, np.ceil(-ijk.min(axis=0)).astype(int) + margin)
    high = np.maximum(0, np.ceil(ijk.max(axis=0) - (np.array(shape) - 1)).astype(int) + margin)
    axis, side = inferior_face(affine)
    (low if side == 0 else high)[axis] = 2 * margin
    new = affine.copy()
    new[:3, 3] = affine[:3, :3] @ (-low) + affine[:3, 3]
    return tuple(int(v) for v in low), tuple(int(v) for v in high), new


def _voxelised_head(points_mm: np.ndarray, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Inside of the closed scalp surface sampled at ``points_mm`` (see the module docstring)."""
    inv = np.linalg.inv(affine)
    ijk = np.rint(points_mm @ inv[:3, :3].T + inv[:3, 3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(shape)), axis=1)
    shell = np.zeros(shape, dtype=bool)
    shell[tuple(ijk[inside].T)] = True
    shell = ndimage.binary_dilation(shell, structure=np.ones((3, 3, 3), bool))
    filled = fill_head_cavities(shell, affine)
    return ndimage.binary_erosion(filled, structure=np.ones((3, 3, 3), bool), border_value=1)


def _package_files() -> dict[str, Path]:
    """The installed files the template head is built from (for the provenance's input hashes)."""
    data = files("nilearn.datasets").joinpath("data")
    return {
        "t1_template": Path(str(data.joinpath("mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))),
        "gm_template": Path(str(data.joinpath("mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"))),
        "wm_template": Path(str(data.joinpath("mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"))),
        "scalp_surface": Path(str(files("mne").joinpath("data", "fsaverage", "fsaverage-head.fif"))),
    }


@lru_cache(maxsize=2)
def _template_head_cached(resolution_mm: int, params: HeadModelParameters) -> HeadModel:
    import mne
    import nilearn
    from nilearn.datasets import load_mni152_brain_mask, load_mni152_gm_template, load_mni152_wm_template

    brain_img = load_mni152_brain_mask(resolution=resolution_mm)
    gm = np.asarray(load_mni152_gm_template(resolution=resolution_mm).get_fdata(), dtype=np.float32)
    wm = np.asarray(load_mni152_wm_template(resolution=resolution_mm).get_fdata(), dtype=np.float32)
    brain = np.asarray(brain_img.dataobj) > 0
    surface = template_head_surface()
    points = surface.sample_points(0.5 * resolution_mm)
    low, high, affine = _widened_grid(brain_img.affine, brain.shape, points, float(resolution_mm))
    pad = tuple(zip(low, high, strict=True))
    brain, gm, wm = (np.pad(a, pad) for a in (brain, gm, wm))
    head = _voxelised_head(points, brain.shape, affine) | brain
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    labels = layered_labels(head, brain, np.stack([csf, gm, wm]), affine, params)
    return HeadModel(
        labels, affine, TEMPLATE_HEAD_SPACE,
        "Five-tissue template head: brain, GM and WM from nilearn's ICBM152 2009a templates, scalp from "
        "MNE's fsaverage head mapped to MNI152 (FreeSurfer's MNI305->MNI152 affine), CSF and skull as "
        "layers of set thickness outside the brain mask. A population average, not this person's head.",
        inputs=_package_files(),
        parameters={"rule": "template-layers", "resolution_mm": resolution_mm, "nilearn": nilearn.__version__,
                    "mne": mne.__version__, **params.as_dict()})


def template_head_model(resolution_mm: int = 1, *,
                        parameters: HeadModelParameters | None = None) -> HeadModel:
    """The template head (see the module docstring), cached per resolution and rule.

    Parameters
    ----------
    resolution_mm : {1, 2}
        Voxel size (mm): nilearn's template resolutions. 1 mm is the grid to dose on
        (docs/benchmarks.md, the realistic head's convergence table).
    parameters : HeadModelParameters, optional
        Layer thicknesses (CSF, skull, minimum scalp) and the field-of-view rule.

    Returns
    -------
    HeadModel
        In space ``MNI152NLin2009cAsym``.

    Raises
    ------
    InvalidParameterError
        If ``resolution_mm`` is not one of :data:`TEMPLATE_RESOLUTIONS_MM`.
    """
    if resolution_mm not in TEMPLATE_RESOLUTIONS_MM:
        raise InvalidParameterError(
            f"The template head comes at {TEMPLATE_RESOLUTIONS_MM} mm (nilearn's templates); got "
            f"{resolution_mm!r}.")
    return _template_head_cached(int(resolution_mm), parameters or HeadModelParameters())
