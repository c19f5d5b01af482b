"""3D images: reading them from a path or an image (atlases, ROI masks), cropping them to their content."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from tmsnet.exceptions import InputFileNotFoundError

__all__ = ["crop_to_nonzero", "read_volume"]


def read_volume(
    image: str | Path | nib.spatialimages.SpatialImage, *, missing: str
) -> tuple[nib.spatialimages.SpatialImage, np.ndarray]:
    """An image and its data array, a trailing 4th axis of length 1 dropped.

    Parameters
    ----------
    image : str, Path or nibabel image
        The image, or the path of a file nibabel reads.
    missing : str
        Message of the error raised when ``image`` is a path to no file.

    Returns
    -------
    image : nibabel image
        The image (loaded when a path was given).
    data : ndarray
        Its data; the caller checks the number of dimensions.

    Raises
    ------
    InputFileNotFoundError
        If ``image`` is a path to no file.
    """
    if not isinstance(image, nib.spatialimages.SpatialImage):
        path = Path(image)
        if not path.is_file():
            raise InputFileNotFoundError(missing)
        image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    return image, data


def crop_to_nonzero(img: nib.Nifti1Image, *, margin: int = 1,
                    keep_mm: Sequence[Sequence[float]] = ()) -> nib.Nifti1Image:
    """The smallest box of ``img`` holding its non-zero voxels (plus ``margin`` voxels).

    Zero voxels of an overlay are transparent, so cropping changes nothing on
    screen but saves bytes and time (a viewer's browser, nilearn's drawing, which
    works on the whole volume at every call). The affine is shifted so every
    voxel keeps its mm position.

    Parameters
    ----------
    img : Nifti1Image
        3D image.
    margin : int
        Voxels kept around the box.
    keep_mm : sequence of (x, y, z)
        Points (mm) the box must hold as well, e.g. the cuts of a slice display:
        nilearn cuts at a point's voxel index, and an index left of a small box wraps
        round to its far side (a mask drawn on a cut that misses it).

    Returns
    -------
    Nifti1Image
        Cropped image (a single voxel if ``img`` is all zero and no point is kept).
    """
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    corners = [np.argwhere(np.nan_to_num(data) != 0)]
    points = np.asarray(keep_mm, dtype=float).reshape(-1, 3)
    if points.size:
        ijk = nib.affines.apply_affine(np.linalg.inv(img.affine), points)
        corners += [np.floor(ijk), np.ceil(ijk)]
    held = np.vstack(corners)
    if held.size == 0:
        lo, hi = np.zeros(3, dtype=int), np.ones(3, dtype=int)
    else:
        lo = np.maximum(held.min(axis=0).astype(int) - margin, 0)
        hi = np.minimum(held.max(axis=0).astype(int) + 1 + margin, data.shape[:3])
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ lo + img.affine[:3, 3]
    return nib.Nifti1Image(np.ascontiguousarray(data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]), affine)
