"""Small reference data shipped with tmsnet, and loaders for nilearn's templates.

The published coordinates live in ``reference_coordinates.tsv`` beside this
module (one row per coordinate, with its source). Templates and tissue masks
come from nilearn's *bundled* MNI152 files (no download).
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

#: The four standard DLPFC targets whose 20 mm spheres form the search region
#: (Fox et al. 2012; contarg ``DLPFCspheres``).
STANDARD_DLPFC_TARGETS: tuple[str, ...] = ("five_cm_rule", "ba9", "ba46", "f3_beam")

#: Coordinates a target is compared with in reports (standard targets plus the
#: Fox 2012 group-optimal coordinate and the Fitzgerald 2009 target).
COMPARISON_TARGETS: tuple[str, ...] = STANDARD_DLPFC_TARGETS + (
    "fitzgerald_2009",
    "fox_2012_optimal",
)


@lru_cache(maxsize=1)
def _reference_table() -> pd.DataFrame:
    path = files("tmsnet.data").joinpath("reference_coordinates.tsv")
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, sep="\t").set_index("name")


def reference_coordinates() -> pd.DataFrame:
    """Published MNI152 coordinates used by tmsnet.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name`` with columns ``x``, ``y``, ``z`` (mm), ``space``,
        ``role`` and ``source`` (citation).
    """
    return _reference_table().copy()


def reference_coordinate(name: str) -> np.ndarray:
    """One published coordinate, in mm.

    Parameters
    ----------
    name : str
        A row name of :func:`reference_coordinates`, e.g. ``"sgacc_right"``.

    Returns
    -------
    numpy.ndarray, shape (3,)
        x, y, z in mm (MNI152).
    """
    table = _reference_table()
    if name not in table.index:
        from tmsnet.exceptions import InvalidParameterError

        raise InvalidParameterError(
            f"Unknown reference coordinate {name!r}; choose one of {sorted(table.index)}."
        )
    return table.loc[name, ["x", "y", "z"]].to_numpy(dtype=float)


@lru_cache(maxsize=2)
def _mni_brain_mask(resolution: int) -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_brain_mask

    return load_mni152_brain_mask(resolution=resolution)


#: nilearn's 2 mm MNI152 gray-matter mask, computed once (``tools/build_bundled_gm_mask.py``;
#: ``masks/README.md``): nilearn recomputes it from its 1 mm template in 0.6-0.7 s a process.
BUNDLED_GM_MASK_2MM = Path(__file__).parent / "masks" / "nilearn_mni152_gm_mask_res-2mm.nii.gz"


@lru_cache(maxsize=2)
def _mni_gm_mask(resolution: int) -> nib.Nifti1Image:
    if resolution == 2 and BUNDLED_GM_MASK_2MM.is_file():
        return nib.load(BUNDLED_GM_MASK_2MM)
    from nilearn.datasets import load_mni152_gm_mask

    return load_mni152_gm_mask(resolution=resolution)


@lru_cache(maxsize=2)
def _mni_wm_mask(resolution: int) -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_wm_mask

    return load_mni152_wm_mask(resolution=resolution)


def load_brain_mask(resolution: int = 2) -> nib.Nifti1Image:
    """Nilearn's bundled MNI152 (ICBM 2009) brain mask at ``resolution`` mm."""
    return _mni_brain_mask(resolution)


def load_gray_matter_mask(resolution: int = 2) -> nib.Nifti1Image:
    """Nilearn's bundled MNI152 (ICBM 2009) gray-matter mask at ``resolution`` mm."""
    return _mni_gm_mask(resolution)


def load_white_matter_mask(resolution: int = 2) -> nib.Nifti1Image:
    """Nilearn's bundled MNI152 (ICBM 2009) white-matter mask at ``resolution`` mm."""
    return _mni_wm_mask(resolution)
