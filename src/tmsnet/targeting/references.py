"""Distances from a target to the published DLPFC coordinates (a leaf module).

Used by the targeting job (the result's ``comparison`` table), the report and
the group summaries, so the one definition lives here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tmsnet.data import COMPARISON_TARGETS, reference_coordinates

__all__ = ["distances_to_references"]


def distances_to_references(coordinate_mm: Sequence[float]) -> pd.DataFrame:
    """Distance (mm) from a coordinate to each published comparison coordinate.

    Parameters
    ----------
    coordinate_mm : (x, y, z)
        A target in mm (template space).

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``x``, ``y``, ``z``, ``distance_mm``, ``source``;
        rows are :data:`tmsnet.data.COMPARISON_TARGETS`.
    """
    refs = reference_coordinates().loc[list(COMPARISON_TARGETS)]
    xyz = refs[["x", "y", "z"]].to_numpy(dtype=float)
    distance = np.linalg.norm(xyz - np.asarray(coordinate_mm, dtype=float), axis=1)
    table = refs[["x", "y", "z", "source"]].copy()
    table.insert(3, "distance_mm", np.round(distance, 2))
    return table.reset_index()
