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

from tmsnet.exceptions import SpaceError

#: Template spaces in which the published MNI coordinates may be used directly.
TEMPLATE_SPACES: tuple[str, ...] = ("MNI152NLin2009cAsym", "MNI152NLin6Asym")

PUBLISHED_COORDINATE_NOTE = (
    "Published coordinates (Fox et al. 2012) are reported in MNI152 and are used "
    "unchanged in {space}; MNI152 nonlinear templates differ by a few mm in prefrontal "
    "cortex, below the ROI radii."
)

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
