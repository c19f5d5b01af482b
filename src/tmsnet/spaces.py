"""Named coordinate spaces and the checks that keep them from being mixed.

tmsnet works in the template spaces that fMRIPrep writes. Published targeting
coordinates (Fox et al. 2012) were reported in "MNI152"; the nonlinear MNI
templates fMRIPrep offers differ from each other by a few millimetres in
prefrontal cortex, below the 10-20 mm radii of the ROIs built from them, so
the published coordinates are used as-is in either space. That assumption is
recorded in every sidecar (``coordinate_space_note``) rather than hidden.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tmsnet.exceptions import SpaceError

#: Template spaces in which the published MNI coordinates may be used directly.
TEMPLATE_SPACES: tuple[str, ...] = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")

PUBLISHED_COORDINATE_NOTE = (
    "Published coordinates (Fox et al. 2012) are reported in MNI152 and are used "
    "unchanged in {space}; MNI152 nonlinear templates differ by a few mm in prefrontal "
    "cortex, below the ROI radii."
)

#: MNI305 -> MNI152 affine (FreeSurfer wiki, "CoordinateSystems"; RAS mm). fsaverage
#: surfaces are in MNI305; an affine only, within a few mm of either nonlinear MNI152.
MNI305_TO_MNI152 = np.array([
    [0.9975, -0.0073, 0.0176, -0.0429],
    [0.0146, 1.0009, -0.0024, 1.5496],
    [-0.0130, -0.0093, 0.9971, 1.1840],
    [0.0, 0.0, 0.0, 1.0],
])
#: Surface spaces whose coordinates are MNI305 (the fsaverage family).
MNI305_SURFACE_SPACES: tuple[str, ...] = ("fsaverage", "fsaverage5", "fsaverage6")


def mni305_to_mni152(xyz_mm: np.ndarray) -> np.ndarray:
    """MNI305 (fsaverage) coordinates (mm) to MNI152 with FreeSurfer's published affine."""
    xyz = np.asarray(xyz_mm, dtype=float)
    return xyz @ MNI305_TO_MNI152[:3, :3].T + MNI305_TO_MNI152[:3, 3]


_SPACE_ENTITY = re.compile(r"(?:^|_)space-([A-Za-z0-9]+)")


def space_from_filename(path: str | Path) -> str | None:
    """The BIDS ``space-`` entity of a file name, or None when it has none."""
    match = _SPACE_ENTITY.search(Path(path).name)
    return match.group(1) if match else None


def resolve_template_space(path: str | Path, space: str | None = None) -> str:
    """Decide and check the template space of an input image.

    Parameters
    ----------
    path : str or Path
        The image file; its ``space-`` entity is read when present.
    space : str or None
        The space the user declared. When both are known they must agree.

    Returns
    -------
    str
        One of :data:`TEMPLATE_SPACES`.

    Raises
    ------
    SpaceError
        If the space is unknown, not a supported template space (e.g. ``T1w``),
        or the declared space contradicts the file name.
    """
    from_name = space_from_filename(path)
    if space is not None and from_name is not None and space != from_name:
        raise SpaceError(
            f"The file {Path(path).name} says space-{from_name} but space {space!r} was "
            "declared. Pass the space the image is really in (or rename the file)."
        )
    resolved = space or from_name
    if resolved is None:
        raise SpaceError(
            f"Cannot tell the space of {Path(path).name}: it has no 'space-' entity. "
            f"Declare it with --space (one of {', '.join(TEMPLATE_SPACES)})."
        )
    if resolved not in TEMPLATE_SPACES:
        raise SpaceError(
            f"Targeting needs BOLD in a standard template space ({', '.join(TEMPLATE_SPACES)}), "
            f"got space {resolved!r}. Run fMRIPrep with --output-spaces MNI152NLin2009cAsym "
            "(or MNI152NLin6Asym) and use that output; native-space targets are derived "
            "from the MNI target afterwards."
        )
    return resolved
