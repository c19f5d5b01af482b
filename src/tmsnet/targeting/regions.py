"""Seed ROIs and the DLPFC search region, as boolean masks on a voxel grid.

Defaults follow REFERENCES.md section 1: the sgACC seed is a 10 mm sphere at
MNI (6, 16, -10) (Fox et al. 2012, Biol Psychiatry 72:595); the DLPFC search
region is the union of 20 mm spheres at the four standard targets (5-cm rule,
BA9, BA46, F3/Beam; Fox 2012 Table 1, as in contarg's ``DLPFCspheres``),
intersected with gray matter so that a target cannot fall in white matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img

from tmsnet.data import STANDARD_DLPFC_TARGETS, load_gray_matter_mask, reference_coordinate
from tmsnet.exceptions import (
    EmptyRegionError,
    GridMismatchError,
    InvalidParameterError,
)
from tmsnet.io.images import read_volume
from tmsnet.io.surface_labels import is_surface_label_file
from tmsnet.utils.docs import add_doc, fill_doc
from tmsnet.utils.params import Parameters, param

add_doc("reference_brain_mask", """reference : Nifti1Image
    Image that defines the grid (the BOLD).
brain_mask : ndarray of bool
    Brain mask on the same grid.""")

#: Named seed definitions: list of reference-coordinate names and a radius (mm).
SEED_DEFINITIONS: dict[str, tuple[tuple[str, ...], float]] = {
    "sgacc": (("sgacc_right",), 10.0),
    "sgacc-bilateral": (("sgacc_right", "sgacc_left"), 10.0),
}

DEFAULT_SEARCH_RADIUS_MM = 20.0


def voxel_coordinates_mm(shape: Sequence[int], affine: np.ndarray) -> np.ndarray:
    """World coordinates (mm) of every voxel centre of a 3D grid.

    Parameters
    ----------
    shape : sequence of int
        The first three dimensions of the grid.
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine.

    Returns
    -------
    ndarray, shape (*shape[:3], 3)
        x, y, z in mm.
    """
    ijk = np.indices(tuple(shape[:3]), dtype=np.float64)
    ijk = np.moveaxis(ijk, 0, -1)
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def sphere_mask(
    centers_mm: Iterable[Sequence[float]],
    radius_mm: float,
    *,
    shape: Sequence[int],
    affine: np.ndarray,
) -> np.ndarray:
    """Boolean mask of the union of spheres on a voxel grid.

    Parameters
    ----------
    centers_mm : iterable of (x, y, z)
        Sphere centres in mm, in the grid's space.
    radius_mm : float
        Sphere radius in mm; a voxel is inside when its centre is within it.
    shape, affine
        The voxel grid.

    Returns
    -------
    ndarray of bool, shape ``shape[:3]``
    """
    grid = tuple(int(n) for n in shape[:3])
    affine = np.asarray(affine, dtype=float)
    mask = np.zeros(grid, dtype=bool)
    for center in centers_mm:
        center = np.asarray(center, dtype=float)
        box = _voxel_box(center, radius_mm, affine, grid)
        if box is None:
            continue
        ijk = np.moveaxis(np.indices(tuple(b.stop - b.start for b in box), dtype=np.float64), 0, -1)
        ijk += [b.start for b in box]
        dist2 = np.sum((ijk @ affine[:3, :3].T + affine[:3, 3] - center) ** 2, axis=-1)
        mask[box] |= dist2 <= radius_mm**2
    return mask


def _voxel_box(center_mm: np.ndarray, radius_mm: float, affine: np.ndarray,
               grid: tuple[int, ...]) -> tuple[slice, ...] | None:
    """The voxel box holding every voxel centre within ``radius_mm`` of ``center_mm`` (None: none).

    The sphere lies in its bounding cube; the cube's corners in voxel space bound the box
    for any affine (oblique too), so only the box's voxels need their distance.
    """
    corners = center_mm + radius_mm * np.array(np.meshgrid(*[[-1.0, 1.0]] * 3)).reshape(3, -1).T
    ijk = nib.affines.apply_affine(np.linalg.inv(affine), corners)
    low = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, grid)
    if np.any(high <= low):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def _load_roi_image(path: str | Path, reference: nib.Nifti1Image, what: str) -> np.ndarray:
    path = Path(path)
    if is_surface_label_file(path):
        raise InvalidParameterError(
            f"The {what} {path.name} is a surface label file; it applies to surface BOLD "
            "(.func.gii, .mgz, .dtseries.nii). For volume BOLD give a NIfTI mask on the BOLD grid.")
    img, data = read_volume(path, missing=f"The {what} image {path} does not exist.")
    if data.ndim != 3:
        raise GridMismatchError(f"The {what} image {path.name} must be 3D, got shape {data.shape}.")
    if data.shape != reference.shape[:3] or not np.allclose(img.affine, reference.affine, atol=1e-3):
        raise GridMismatchError(
            f"The {what} image {path.name} (shape {data.shape}) is not on the BOLD grid "
            f"(shape {reference.shape[:3]}). Resample it to the BOLD image first, e.g. "
            "nilearn.image.resample_to_img(roi, bold, interpolation='nearest')."
        )
    return np.asarray(data) > 0


def gray_matter_mask_on_grid(reference: nib.Nifti1Image, threshold: float = 0.5) -> np.ndarray:
    """Nilearn's MNI152 gray-matter mask resampled to ``reference``'s grid.

    Parameters
    ----------
    reference : Nifti1Image
        Image whose grid (first three dims and affine) defines the output.
    threshold : float
        Linear interpolation is thresholded at this value (0-1).
    """
    gm = load_gray_matter_mask(resolution=2)
    ref3d = nib.Nifti1Image(np.zeros(reference.shape[:3], dtype=np.uint8), reference.affine)
    if gm.shape == ref3d.shape and np.allclose(gm.affine, ref3d.affine):
        return np.asarray(gm.dataobj) > 0
    resampled = resample_to_img(
        gm, ref3d, interpolation="linear", force_resample=True, copy_header=True
    )
    return np.asarray(resampled.get_fdata()) >= threshold


def _seed_coordinates(value: Any) -> tuple[tuple[float, float, float], ...] | None:
    if value is None:
        return None
    try:
        centers = tuple(tuple(float(v) for v in c) for c in value)
    except (TypeError, ValueError):
        centers = ()
    if not centers or any(len(c) != 3 or not all(np.isfinite(c)) for c in centers):
        raise InvalidParameterError(
            f"--seed-coords (seed_coordinates_mm) must be one or more (x, y, z) triples in mm, "
            f"got {value!r}.")
    return centers


def _roi_param(what: str, default: str) -> Any:
    return param(None, kind="path", allow_none=True,
                 help=f"{what} image on the BOLD grid, or for surface BOLD a label file "
                      f"(.label.gii of the left hemisphere with the right one beside it, or "
                      f".dlabel.nii); {default}")


def _label_param(roi_flag: str) -> Any:
    return param(None, kind="str", allow_none=True,
                 help=f"label of a {roi_flag} label file to use: its name or integer value; "
                      "without it, the file's only label other than 0")


@dataclass(frozen=True)
class SeedRegion(Parameters):
    """How the seed ROI is defined (one of: an image, sphere centres, a named seed).

    Precedence: ``seed_roi`` (image), then ``seed_coordinates_mm`` (spheres of
    ``seed_radius_mm``, default 10 mm), then the built-in ``seed_region``.
    """

    seed_region: str = param(
        "sgacc", flag="--seed-region", deprecated_flags=("--seed",),
        choices=tuple(SEED_DEFINITIONS),
        help="built-in seed: 10 mm sphere at MNI (6, 16, -10) (Fox 2012), or its union with "
             "the left mirror")
    seed_coordinates_mm: tuple | None = param(
        None, cli=False, kind="any", allow_none=True, units="mm",
        help="custom seed sphere centres (x, y, z), one or more (--seed-coords X Y Z, repeatable)")
    seed_radius_mm: float | None = param(
        None, flag="--seed-radius", units="mm", low=0, low_inclusive=False, allow_none=True,
        help="seed sphere radius (default: the named seed's, 10 mm)", high=50)
    seed_roi: Path | None = _roi_param("seed ROI", "it overrides the spheres")
    seed_label: str | None = _label_param("--seed-roi")

    def check(self) -> None:
        """Coordinates are (x, y, z) triples; a label goes with a label file."""
        object.__setattr__(self, "seed_coordinates_mm", _seed_coordinates(self.seed_coordinates_mm))
        _check_label(self.seed_label, self.seed_roi, "--seed-label", "--seed-roi")


@dataclass(frozen=True)
class SearchRegion(Parameters):
    """The DLPFC search region: the standard spheres (or an image), gray matter only by default."""

    search_roi: Path | None = _roi_param(
        "search region", "without it, 20 mm spheres at the four standard DLPFC targets, gray "
        "matter only")
    search_label: str | None = _label_param("--search-roi")
    search_radius_mm: float = param(
        DEFAULT_SEARCH_RADIUS_MM, flag="--search-radius", units="mm", low=0, low_inclusive=False,
        help="radius of the standard search spheres", high=100)
    gray_matter_only: bool = param(
        True, flag="--no-gray-matter",
        help="restrict the search region to gray matter")

    def check(self) -> None:
        """A label goes with a label file."""
        _check_label(self.search_label, self.search_roi, "--search-label", "--search-roi")


def _check_label(label: str | None, roi: Path | None, flag: str, roi_flag: str) -> None:
    if label is not None and not is_surface_label_file(roi):
        raise InvalidParameterError(
            f"{flag} picks a label of a surface label file given as {roi_flag} (.label.gii, "
            f".dlabel.nii), but {roi_flag} is {'not given' if roi is None else Path(roi).name}.")


def seed_spheres(region: SeedRegion) -> tuple[str, list[list[float]], float]:
    """The seed's name, sphere centres (mm) and radius (mm), from custom centres or the name.

    Custom ``seed_coordinates_mm`` win (name ``"custom"``, default radius 10 mm); otherwise the
    named seed's published coordinates and radius (:data:`SEED_DEFINITIONS`).
    ``seed_radius_mm`` overrides the radius.
    """
    if region.seed_coordinates_mm is not None:
        centers = [list(c) for c in region.seed_coordinates_mm]
        default_radius, name = 10.0, "custom"
    else:
        names, default_radius = SEED_DEFINITIONS[region.seed_region]
        centers = [reference_coordinate(n).tolist() for n in names]
        name = region.seed_region
    radius = float(region.seed_radius_mm if region.seed_radius_mm is not None else default_radius)
    return name, centers, radius


@fill_doc
def seed_mask(
    reference: nib.Nifti1Image,
    brain_mask: np.ndarray,
    region: SeedRegion | None = None,
) -> tuple[np.ndarray, dict]:
    """The seed ROI as a boolean mask restricted to the brain mask.

    Parameters
    ----------
    %(reference_brain_mask)s
    region : SeedRegion, optional
        The seed definition (default: the sgACC 10 mm sphere at MNI (6, 16, -10),
        Fox et al. 2012).

    Returns
    -------
    mask : ndarray of bool
    description : dict
        How the seed was defined (recorded in sidecars).

    Raises
    ------
    EmptyRegionError
        If no brain voxel lies in the seed.
    """
    region = SeedRegion() if region is None else region
    if region.seed_roi is not None:
        mask = _load_roi_image(region.seed_roi, reference, "seed ROI")
        description = {"type": "image", "path": str(region.seed_roi)}
    else:
        name, centers, radius = seed_spheres(region)
        mask = sphere_mask(centers, radius, shape=reference.shape, affine=reference.affine)
        description = {"type": "spheres", "name": name, "centers_mm": centers, "radius_mm": radius}
    mask &= brain_mask
    n = int(mask.sum())
    if n == 0:
        raise EmptyRegionError(
            f"The seed ROI ({description}) holds no brain voxel with usable signal. Check that "
            "the BOLD is in MNI space and its brain mask covers the subgenual cingulate, or give "
            "another seed."
        )
    description["n_voxels"] = n
    return mask, description


@fill_doc
def dlpfc_search_mask(
    reference: nib.Nifti1Image,
    brain_mask: np.ndarray,
    region: SearchRegion | None = None,
    *,
    centers: Sequence[str] = STANDARD_DLPFC_TARGETS,
) -> tuple[np.ndarray, dict]:
    """The left-DLPFC search region as a boolean mask.

    Default: union of 20 mm spheres at the four standard DLPFC targets (Fox
    2012 Table 1: 5-cm rule, BA9, BA46, F3), intersected with nilearn's MNI152
    gray-matter mask and the brain mask.

    Parameters
    ----------
    %(reference_brain_mask)s
    region : SearchRegion, optional
        Sphere radius or image, gray matter only or not (default: 20 mm spheres,
        gray matter only). An image is still intersected with the brain mask,
        and with gray matter if requested.
    centers : sequence of str
        Names of reference coordinates used as sphere centres.

    Returns
    -------
    mask : ndarray of bool
    description : dict

    Raises
    ------
    EmptyRegionError
        If no usable voxel remains.
    """
    region = SearchRegion() if region is None else region
    if region.search_roi is not None:
        mask = _load_roi_image(region.search_roi, reference, "search ROI")
        description: dict = {"type": "image", "path": str(region.search_roi)}
    else:
        centers_mm = [reference_coordinate(n).tolist() for n in centers]
        radius_mm = region.search_radius_mm
        mask = sphere_mask(centers_mm, radius_mm, shape=reference.shape, affine=reference.affine)
        description = {
            "type": "spheres",
            "centers": list(centers),
            "centers_mm": centers_mm,
            "radius_mm": float(radius_mm),
        }
    mask &= brain_mask
    if region.gray_matter_only:
        mask &= gray_matter_mask_on_grid(reference)
    description["gray_matter_only"] = bool(region.gray_matter_only)
    n = int(mask.sum())
    if n == 0:
        raise EmptyRegionError(
            f"The search region ({description.get('type')}) holds no brain/gray-matter voxel with "
            "usable signal. Check the BOLD's space and brain mask, or pass another --search-roi."
        )
    description["n_voxels"] = n
    return mask, description
