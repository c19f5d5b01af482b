"""Reading 3D images given as a path or an image (atlases, ROI masks)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from tmsnet.exceptions import InputFileNotFoundError

__all__ = ["read_volume"]


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
