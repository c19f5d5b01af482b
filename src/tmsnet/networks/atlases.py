"""Parcellations with regions grouped into large-scale networks.

An :class:`Atlas` is a 3D label image plus a table with one row per region
(label value, name, network, centroid in mm). tmsnet bundles the Schaefer 2018
100-parcel 7-network 2 mm atlas (:func:`load_schaefer100`; Schaefer et al.
2018, Cereb Cortex 28:3095; networks of Yeo et al. 2011) and accepts any label
image with a TSV (:func:`load_atlas`).

The seven Yeo networks map onto the circuits psychiatry talks about
(:data:`NETWORK_DESCRIPTIONS`): ``Cont`` = frontoparietal/executive control,
``SalVentAttn`` = salience / ventral attention, ``Limbic`` =
orbitofrontal/temporal-pole limbic, ``Default`` = default mode
(self-referential). The sgACC is not a parcel of its own in Schaefer-100; the
region nearest to it is found with :func:`region_at_coordinate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.exceptions import (
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
)
from tmsnet.io.images import read_volume

if TYPE_CHECKING:
    from tmsnet.networks.parameters import AtlasParameters

__all__ = [
    "NETWORK_DESCRIPTIONS",
    "SCHAEFER_NETWORKS",
    "Atlas",
    "atlas_from_parameters",
    "load_atlas",
    "load_schaefer100",
    "region_at_coordinate",
    "resolve_region",
]

#: The 7 Yeo networks in Schaefer's order.
SCHAEFER_NETWORKS: tuple[str, ...] = (
    "Vis",
    "SomMot",
    "DorsAttn",
    "SalVentAttn",
    "Limbic",
    "Cont",
    "Default",
)

#: Plain-language names of the 7 networks.
NETWORK_DESCRIPTIONS: dict[str, str] = {
    "Vis": "visual",
    "SomMot": "somatomotor",
    "DorsAttn": "dorsal attention",
    "SalVentAttn": "salience / ventral attention",
    "Limbic": "limbic (orbitofrontal, temporal pole)",
    "Cont": "frontoparietal / executive control",
    "Default": "default mode (self-referential)",
}

_SCHAEFER_IMAGE = "Schaefer2018_100Parcels_7Networks_order_FSLMNI152_2mm.nii.gz"
_SCHAEFER_TABLE = "Schaefer2018_100Parcels_7Networks_rois.tsv"


@dataclass
class Atlas:
    """A label image and its region table.

    Attributes
    ----------
    name : str
        Short identifier, used in file names (``atlas-<name>``).
    image : nibabel.Nifti1Image
        3D integer label image (0 = background).
    regions : pandas.DataFrame
        One row per region in analysis order: ``label_value`` (int),
        ``name`` (str), ``network`` (str), ``x``, ``y``, ``z`` (centroid, mm).
    space : str or None
        Template space of the image.
    path : Path or None
        The image file (None for an in-memory atlas).
    """

    name: str
    image: nib.Nifti1Image
    regions: pd.DataFrame
    space: str | None = None
    path: Path | None = None
    networks_order: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.networks_order:
            seen = list(dict.fromkeys(self.regions["network"].astype(str)))
            known = [n for n in SCHAEFER_NETWORKS if n in seen]
            self.networks_order = tuple(known + [n for n in seen if n not in known])

    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return len(self.regions)

    @property
    def labels(self) -> list[str]:
        """Region names in analysis order."""
        return self.regions["name"].astype(str).tolist()

    @property
    def networks(self) -> np.ndarray:
        """Network of each region (array of str)."""
        return self.regions["network"].astype(str).to_numpy()


def _centroids(data: np.ndarray, affine: np.ndarray, values: np.ndarray) -> np.ndarray:
    ijk = np.nonzero(data)
    lab = data[ijk]
    order = np.searchsorted(values, lab)
    counts = np.bincount(order, minlength=values.size).astype(float)
    xyz = nib.affines.apply_affine(affine, np.column_stack(ijk))
    sums = np.column_stack([np.bincount(order, weights=xyz[:, k], minlength=values.size) for k in range(3)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def load_atlas(
    image: str | Path | nib.Nifti1Image,
    labels: str | Path | pd.DataFrame,
    *,
    name: str | None = None,
    space: str | None = None,
) -> Atlas:
    """Load any label image with its region table.

    Parameters
    ----------
    image : path or nibabel image
        3D integer label image (0 = background).
    labels : path or DataFrame
        Tab-separated table with a label-value column (``label_value``,
        ``index`` or ``label``), a ``name`` column and a ``network`` column
        (the network may be absent: every region then belongs to network
        ``"all"``). Centroid columns ``x``, ``y``, ``z`` (mm) are computed from
        the image when missing.
    name : str, optional
        Identifier for file names (default: the image file's stem).
    space : str, optional
        Template space of the image.

    Returns
    -------
    Atlas

    Raises
    ------
    InputFileNotFoundError
        A file does not exist.
    InvalidImageError
        The image is not 3D, or the table lists a label absent from the image.
    """
    path = None if isinstance(image, nib.spatialimages.SpatialImage) else Path(image)
    image, data = read_volume(image, missing=f"Atlas image {path} does not exist; give a 3D label NIfTI.")
    if data.ndim != 3:
        raise InvalidImageError(
            f"The atlas image has shape {data.shape}; give a 3D label image (one integer per voxel)."
        )
    if not np.allclose(data, np.round(data)):
        raise InvalidImageError("The atlas image holds non-integer values; give a label image.")
    data = np.round(data).astype(np.int64)
    img = nib.Nifti1Image(data.astype(np.int32), image.affine)
    if isinstance(labels, pd.DataFrame):
        table = labels.copy()
    else:
        lpath = Path(labels)
        if not lpath.is_file():
            raise InputFileNotFoundError(
                f"Atlas label table {lpath} does not exist; give a TSV with label_value, name, network."
            )
        table = pd.read_csv(lpath, sep="\t")
    value_col = next((c for c in ("label_value", "index", "label") if c in table.columns), None)
    if value_col is None or "name" not in table.columns:
        raise InvalidImageError(
            f"The atlas label table has columns {list(table.columns)}; it needs 'label_value' (or "
            "'index') and 'name', optionally 'network' and centroid 'x', 'y', 'z' (mm)."
        )
    table = table.rename(columns={value_col: "label_value"})
    table["label_value"] = table["label_value"].astype(int)
    if "network" not in table.columns:
        table["network"] = "all"
    present = np.unique(data[data > 0])
    missing = sorted(set(table["label_value"]) - set(present.tolist()))
    if missing:
        raise InvalidImageError(
            f"Labels {missing[:10]} of the table are absent from the atlas image; give the table "
            "that belongs to this image."
        )
    values = table["label_value"].to_numpy()
    if not {"x", "y", "z"} <= set(table.columns):
        order = np.argsort(values)
        cents = _centroids(np.where(np.isin(data, values), data, 0), image.affine, values[order])
        table[["x", "y", "z"]] = cents[np.argsort(order)]
    regions = table[["label_value", "name", "network", "x", "y", "z"]].reset_index(drop=True)
    stem = name or (path.name.split(".")[0] if path else "custom")
    return Atlas(name=stem, image=img, regions=regions, space=space, path=path)


@lru_cache(maxsize=1)
def _schaefer_cached() -> Atlas:
    folder = files("tmsnet.data").joinpath("atlases")
    with (
        as_file(folder.joinpath(_SCHAEFER_IMAGE)) as img_path,
        as_file(folder.joinpath(_SCHAEFER_TABLE)) as tsv_path,
    ):
        atlas = load_atlas(img_path, tsv_path, name="Schaefer2018x100x7", space="MNI152NLin6Asym")
        atlas.image = nib.Nifti1Image(np.asarray(atlas.image.dataobj), atlas.image.affine)
    return atlas


def load_schaefer100() -> Atlas:
    """The bundled Schaefer 2018 100-parcel 7-network atlas (2 mm, FSL MNI152).

    Returns
    -------
    Atlas
        100 regions with their Yeo-7 network and centroid (mm), space
        ``MNI152NLin6Asym`` (the FSL MNI152 template). A fresh copy each call.
    """
    base = _schaefer_cached()
    return Atlas(
        name=base.name,
        image=base.image,
        regions=base.regions.copy(),
        space=base.space,
        path=base.path,
        networks_order=base.networks_order,
    )


def atlas_from_parameters(parameters: AtlasParameters | None = None) -> Atlas:
    """The atlas chosen by an :class:`~tmsnet.networks.parameters.AtlasParameters`.

    Parameters
    ----------
    parameters : AtlasParameters, optional
        ``atlas_image`` + ``atlas_labels`` (+ ``atlas_space``) for your own
        parcellation; None or no image gives :func:`load_schaefer100`.

    Returns
    -------
    Atlas
    """
    if parameters is None or parameters.atlas_image is None:
        return load_schaefer100()
    return load_atlas(parameters.atlas_image, parameters.atlas_labels, space=parameters.atlas_space)


def region_at_coordinate(
    atlas: Atlas, coordinate_mm: tuple[float, float, float] | np.ndarray, *, max_distance_mm: float = 10.0
) -> int:
    """Region containing (or nearest to) a coordinate.

    Parameters
    ----------
    atlas : Atlas
        The parcellation.
    coordinate_mm : sequence of 3 float
        Point in the atlas space (mm).
    max_distance_mm : float
        If the point lies in background, the region of the nearest labelled
        voxel is returned when it is at most this far (mm).

    Returns
    -------
    int
        Row index of the region in ``atlas.regions``.

    Raises
    ------
    EmptyRegionError
        No labelled voxel within ``max_distance_mm``.
    """
    xyz = np.asarray(coordinate_mm, dtype=float).reshape(3)
    data = np.asanyarray(atlas.image.dataobj)
    ijk = np.column_stack(np.nonzero(data))
    world = nib.affines.apply_affine(atlas.image.affine, ijk)
    dist = np.linalg.norm(world - xyz, axis=1)
    best = int(np.argmin(dist))
    if dist[best] > max_distance_mm:
        raise EmptyRegionError(
            f"No region of atlas {atlas.name} lies within {max_distance_mm:g} mm of "
            f"{tuple(np.round(xyz, 1))} mm (nearest: {dist[best]:.1f} mm). Check the coordinate's "
            "space and sign, or give the region by name."
        )
    value = int(data[tuple(ijk[best])])
    return int(np.flatnonzero(atlas.regions["label_value"].to_numpy() == value)[0])


def resolve_region(atlas: Atlas, region: str | int) -> int:
    """Row index of a region given by name, 0-based row or label value string.

    Parameters
    ----------
    atlas : Atlas
        The parcellation.
    region : str or int
        Exact region name (``"7Networks_LH_Cont_PFCl_1"``), or an int row index.

    Returns
    -------
    int

    Raises
    ------
    InvalidParameterError
        Unknown name or index out of range.
    """
    if isinstance(region, int | np.integer):
        if not 0 <= int(region) < atlas.n_regions:
            raise InvalidParameterError(
                f"Region index {region} is outside 0..{atlas.n_regions - 1} of atlas {atlas.name}."
            )
        return int(region)
    names = atlas.labels
    if region in names:
        return names.index(region)
    close = [n for n in names if str(region).lower() in n.lower()][:5]
    raise InvalidParameterError(
        f"No region named {region!r} in atlas {atlas.name}"
        + (f"; did you mean {close}?" if close else "; give an exact name from its table.")
    )
