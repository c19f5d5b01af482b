"""Head models for the realistic E-field: a five-tissue label volume and its conductivities.

A head model is a label volume on a voxel grid (:data:`TISSUE_LABELS`: 0
background, 1 scalp, 2 skull, 3 CSF, 4 grey matter, 5 white matter) with an
affine to world millimetres, and one conductivity per tissue
(:class:`Conductivities`, the SimNIBS defaults, ``../shared/REFERENCES.md``
section 3). :mod:`tmsnet.physics.volume_conductor` solves for the field in it.

From fMRIPrep anatomical derivatives (:func:`head_model_from_fmriprep`), the
rule is:

* **brain**: ``desc-brain_mask``; inside it each voxel takes the tissue of the
  largest of ``label-CSF/GM/WM_probseg`` (a tie goes to CSF, then GM);
* **head**: ``desc-preproc_T1w`` above ``head_threshold`` times its 98th
  percentile (of the non-zero voxels), joined with the brain, its holes filled
  in 3-D and in each axial slice (the dark skull, CSF and air cavities enclosed
  by the scalp become head) and the largest 6-connected piece kept;
* **layers outside the brain**, by the distance ``d`` (mm) from the surface of
  the brain mask (a smooth dilation, see ``_near``):
  CSF for ``d <= csf_thickness_mm`` (the brain mask dilated by a few mm),
  skull for ``d <= csf_thickness_mm + skull_thickness_mm``, scalp (all soft
  tissue) beyond; the outer ``min_scalp_thickness_mm`` of the head is always
  scalp. This is a documented approximation of the skull, not a segmentation
  of it: its thickness is a parameter, not measured.

Checks (:func:`check_head_labels`): every tissue present, and the head inside
the field of view: the brain and the skull must not touch the border of the
volume, and the scalp may touch it only on the inferior face (the neck, cut
by every head scan; ``allow_neck_cut``). Images on different grids are refused
(:class:`~tmsnet.exceptions.GridMismatchError`).

Phantoms with known answers: :func:`sphere_phantom` (concentric shells, the
Deng et al. 2013 head of scalp radius 85 mm and brain radius 70 mm), where the
field inside does not depend on the conductivities and equals the sphere
kernel of :mod:`tmsnet.physics.efield`; and :func:`ellipsoid_phantom`, an
ellipsoidal head with a CSF-filled sulcus (the fold) lined with grey matter,
for convergence checks on a head that is not spherical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from tmsnet.exceptions import GridMismatchError, InvalidImageError, InvalidParameterError
from tmsnet.io.images import read_volume
from tmsnet.utils.params import Parameters, param

__all__ = [
    "HEAD_MODELS",
    "SPHERE_RADII_MM",
    "TISSUE_LABELS",
    "Conductivities",
    "HeadModel",
    "HeadModelParameters",
    "check_head_labels",
    "ellipsoid_phantom",
    "fill_head_cavities",
    "head_model_from_fmriprep",
    "inferior_face",
    "layered_labels",
    "sphere_phantom",
    "write_head_model",
]

#: Head models of ``tmsnet plan`` and ``tmsnet efield``: the spherical model (default) and a voxel head.
HEAD_MODELS = ("sphere", "realistic")
#: Label value of each tissue (0 is background, outside the head).
TISSUE_LABELS: dict[str, int] = {"scalp": 1, "skull": 2, "csf": 3, "gm": 4, "wm": 5}
#: Long names written into the sidecar's label table.
_TISSUE_NAMES = {"scalp": "scalp (all soft tissue outside the skull)", "skull": "skull",
                 "csf": "cerebrospinal fluid", "gm": "grey matter", "wm": "white matter"}
#: Outer radius of each shell of :func:`sphere_phantom` (mm); the scalp and brain (GM)
#: radii are Deng et al. 2013's 8.5 cm and 7.0 cm.
SPHERE_RADII_MM: dict[str, float] = {"scalp": 85.0, "skull": 79.0, "csf": 73.0, "gm": 70.0, "wm": 66.0}
#: Empty voxels kept around a phantom, so the head never touches the border.
_PHANTOM_MARGIN_VOXELS = 2
#: Two affines are the same grid if they differ by less than this (mm).
_AFFINE_ATOL_MM = 1e-3


def _sigma(default: float, tissue: str) -> Any:
    return param(default, help=f"electrical conductivity of {tissue}", units="S/m",
                 flag=f"--sigma-{tissue.split()[0].lower()}", low=0.0, low_inclusive=False, high=10.0)


@dataclass(frozen=True)
class Conductivities(Parameters):
    """Tissue conductivities (S/m); the defaults are SimNIBS's (REFERENCES.md section 3)."""

    scalp: float = _sigma(0.465, "scalp")
    skull: float = _sigma(0.010, "skull")
    csf: float = _sigma(1.654, "CSF")
    gm: float = _sigma(0.275, "GM (grey matter)")
    wm: float = _sigma(0.126, "WM (white matter)")

    def by_label(self) -> np.ndarray:
        """Conductivity indexed by label value (entry 0, the background, is 0).

        Returns
        -------
        numpy.ndarray, shape (6,)
            S/m.
        """
        table = np.zeros(max(TISSUE_LABELS.values()) + 1)
        for tissue, label in TISSUE_LABELS.items():
            table[label] = getattr(self, tissue)
        return table


@dataclass(frozen=True)
class HeadModelParameters(Parameters):
    """The rule that turns fMRIPrep anatomical derivatives into a label volume."""

    head_threshold: float = param(
        0.1, help="T1w intensity above which a voxel is head, as a fraction of the 98th percentile",
        low=0.0, low_inclusive=False, high=1.0, high_inclusive=False)
    csf_thickness_mm: float = param(
        3.0, help="CSF layer outside the brain mask (the mask dilated by this much)", units="mm",
        low=0.0, high=20.0)
    skull_thickness_mm: float = param(
        6.0, help="skull layer outside the CSF layer", units="mm", low=0.0, low_inclusive=False,
        high=30.0)
    min_scalp_thickness_mm: float = param(
        3.0, help="outer layer of the head that is always scalp", units="mm", low=0.0, high=30.0)
    allow_neck_cut: bool = param(
        True, flag="--no-allow-neck-cut",
        help="accept a head that touches the inferior border of the image (the neck)")


@dataclass(frozen=True)
class HeadModel:
    """A label volume of the head (see :data:`TISSUE_LABELS`).

    Attributes
    ----------
    labels : numpy.ndarray of uint8, shape (nx, ny, nz)
        Tissue label per voxel.
    affine : numpy.ndarray, shape (4, 4)
        Voxel indices to world coordinates (mm).
    space : str or None
        Coordinate space of the world frame (``"T1w"``, ``"phantom"``...).
    description : str
        How it was built (written into the sidecar).
    inputs : dict of str to Path
        The files it was built from, by role (hashed into the sidecar).
    parameters : dict
        The rule and its parameters (JSON-ready).
    """

    labels: np.ndarray
    affine: np.ndarray
    space: str | None
    description: str
    inputs: dict[str, Path] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths (mm) along the three array axes."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def tissue_volumes_ml(self) -> dict[str, float]:
        """Volume of each tissue (mL)."""
        voxel_ml = float(np.prod(self.voxel_size_mm)) / 1000.0
        counts = np.bincount(self.labels.ravel(), minlength=len(TISSUE_LABELS) + 1)
        return {t: float(counts[v]) * voxel_ml for t, v in TISSUE_LABELS.items()}


def _grid(voxel_size_mm: float, half_extent_mm: np.ndarray, centre_mm: Any) -> tuple[np.ndarray, ...]:
    """Voxel-centre coordinates (mm, relative to the centre) of a grid centred on ``centre_mm``."""
    if not 0.1 <= float(voxel_size_mm) <= 20.0:
        raise InvalidParameterError(f"voxel_size_mm must be between 0.1 and 20 mm, got {voxel_size_mm}.")
    h = float(voxel_size_mm)
    n = 2 * np.ceil(np.asarray(half_extent_mm) / h + 0.5).astype(int) + 1 + 2 * _PHANTOM_MARGIN_VOXELS
    axes = [(np.arange(k) - (k - 1) / 2.0) * h for k in n]
    affine = np.diag([h, h, h, 1.0])
    affine[:3, 3] = np.asarray(centre_mm, dtype=float) - np.array([a[-1] for a in axes])
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    return x, y, z, affine


def sphere_phantom(voxel_size_mm: float = 1.0, *, radii_mm: dict[str, float] | None = None,
                   centre_mm: Any = (0.0, 0.0, 0.0)) -> HeadModel:
    """Concentric-shell head: WM core, GM, CSF, skull and scalp shells.

    A voxel takes the tissue of the smallest shell whose outer radius holds
    its centre. The grid is centred on ``centre_mm`` (an odd number of voxels
    a side, so the centre is a voxel centre) with two empty voxels of margin.

    Parameters
    ----------
    voxel_size_mm : float
        Isotropic voxel size (mm).
    radii_mm : dict, optional
        Outer radius of each tissue (mm); default :data:`SPHERE_RADII_MM`
        (scalp 85, skull 79, CSF 73, GM 70, WM 66).
    centre_mm : array of 3 floats
        World position of the sphere centre (mm).

    Returns
    -------
    HeadModel
        In space ``"phantom"``.
    """
    radii = {t: float(r) for t, r in (SPHERE_RADII_MM if radii_mm is None else radii_mm).items()}
    values = [radii.get(t, np.nan) for t in TISSUE_LABELS]  # scalp ... wm, outer to inner
    shrinking = all(a > b > 0 for a, b in zip(values, values[1:], strict=False))
    if set(radii) != set(TISSUE_LABELS) or not shrinking:
        raise InvalidParameterError(f"radii_mm needs the outer radius of {list(TISSUE_LABELS)}, shrinking "
                                    f"from scalp to WM; got {radii}.")
    x, y, z, affine = _grid(voxel_size_mm, np.full(3, radii["scalp"]), centre_mm)
    r2 = x * x + y * y + z * z
    labels = np.zeros(r2.shape, dtype=np.uint8)
    for tissue in TISSUE_LABELS:  # outer to inner: each shell overwrites the inside of the previous
        labels[r2 <= radii[tissue] ** 2] = TISSUE_LABELS[tissue]
    return HeadModel(labels, affine, "phantom", "Layered-sphere head phantom (concentric shells).",
                     parameters={"phantom": "sphere", "radii_mm": radii, "voxel_size_mm": voxel_size_mm,
                                 "centre_mm": [float(c) for c in centre_mm]})


def _ellipsoid(x: np.ndarray, y: np.ndarray, z: np.ndarray, semi: np.ndarray) -> np.ndarray:
    return (x / semi[0]) ** 2 + (y / semi[1]) ** 2 + (z / semi[2]) ** 2 <= 1.0


def ellipsoid_phantom(voxel_size_mm: float = 1.0, *, semi_axes_mm: Any = (75.0, 95.0, 85.0),
                      layers_mm: Any = (6.0, 6.0, 3.0), gm_thickness_mm: float = 3.0,
                      fold_mm: Any = (20.0, 3.0, 40.0), centre_mm: Any = (0.0, 0.0, 0.0)) -> HeadModel:
    """Ellipsoidal head with one sulcus (a fold) under its vertex.

    The scalp is the ellipsoid of ``semi_axes_mm`` (x left-right, y
    posterior-anterior, z inferior-superior); the skull, CSF and brain
    surfaces are ellipsoids whose semi-axes are smaller by the cumulative
    ``layers_mm`` (scalp, skull and CSF thickness; not exactly parallel
    surfaces). The fold is a CSF-filled slab ``|y| <= width/2``,
    ``|x| <= length/2`` cut from the top of the brain down to ``depth``; grey
    matter is the brain within ``gm_thickness_mm`` of CSF (voxel centres
    within ``gm_thickness_mm + h/2`` of a non-brain voxel centre, so at least
    one voxel; it lines the sulcal walls), white matter the rest.

    Parameters
    ----------
    voxel_size_mm : float
        Isotropic voxel size (mm).
    semi_axes_mm : array of 3 floats
        Scalp semi-axes (mm).
    layers_mm : array of 3 floats
        Scalp, skull and CSF thickness (mm).
    gm_thickness_mm : float
        Grey-matter thickness (mm).
    fold_mm : array of 3 floats
        Depth, width and length of the sulcus (mm).
    centre_mm : array of 3 floats
        Where the common centre of the ellipsoids lies in the world frame (mm).

    Returns
    -------
    HeadModel
        The labels on an isotropic grid with two empty voxels of margin around the
        scalp, in space ``"phantom"``; its ``parameters`` record the geometry.
    """
    semi = np.asarray(semi_axes_mm, dtype=float)
    depth, width, length = (float(v) for v in fold_mm)
    inner = np.cumsum(np.asarray(layers_mm, dtype=float))
    if semi.shape != (3,) or inner.shape != (3,) or np.any(semi - inner[-1] <= gm_thickness_mm):
        raise InvalidParameterError("semi_axes_mm must exceed the summed layers_mm plus gm_thickness_mm.")
    x, y, z, affine = _grid(voxel_size_mm, semi, centre_mm)
    shape = np.broadcast_shapes(x.shape, y.shape, z.shape)
    labels = np.zeros(shape, dtype=np.uint8)
    for tissue, shrink in zip(("scalp", "skull", "csf"), (0.0, *inner[:2]), strict=True):
        labels[_ellipsoid(x, y, z, semi - shrink)] = TISSUE_LABELS[tissue]
    b = semi - inner[-1]
    brain = _ellipsoid(x, y, z, b)
    top = b[2] * np.sqrt(np.clip(1.0 - (x / b[0]) ** 2 - (y / b[1]) ** 2, 0.0, None))
    brain &= ~((np.abs(y) <= width / 2) & (np.abs(x) <= length / 2) & (z >= top - depth))
    # A voxel centre at distance d from the nearest non-brain centre is about d - h/2 below the surface.
    depth_mm = ndimage.distance_transform_edt(brain, sampling=voxel_size_mm)
    near_csf = depth_mm <= gm_thickness_mm + voxel_size_mm / 2
    labels[brain] = TISSUE_LABELS["wm"]
    labels[brain & near_csf] = TISSUE_LABELS["gm"]
    return HeadModel(labels, affine, "phantom", "Ellipsoidal head phantom with one CSF-filled sulcus.",
                     parameters={"phantom": "ellipsoid-with-fold", "semi_axes_mm": semi.tolist(),
                                 "layers_mm": [float(v) for v in layers_mm],
                                 "gm_thickness_mm": gm_thickness_mm,
                                 "fold_depth_width_length_mm": [depth, width, length],
                                 "voxel_size_mm": voxel_size_mm, "centre_mm": [float(c) for c in centre_mm]})


def _border_faces(mask: np.ndarray) -> list[tuple[int, int]]:
    """(axis, side) of each face of the volume that ``mask`` touches (side 0: index 0, 1: last)."""
    touched = []
    for axis in range(3):
        for side, index in ((0, 0), (1, mask.shape[axis] - 1)):
            if np.take(mask, index, axis=axis).any():
                touched.append((axis, side))
    return touched


def inferior_face(affine: np.ndarray) -> tuple[int, int]:
    """(axis, side) of the volume face that points most towards world -z (inferior)."""
    z_of_axis = affine[2, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    axis = int(np.argmax(np.abs(z_of_axis)))
    return axis, (0 if z_of_axis[axis] > 0 else 1)


def check_head_labels(labels: np.ndarray, affine: np.ndarray, *, allow_neck_cut: bool = True) -> np.ndarray:
    """Refuse a label volume that cannot be a head model.

    Parameters
    ----------
    labels : array, shape (nx, ny, nz)
        Integer labels (:data:`TISSUE_LABELS`, 0 background).
    affine : array, shape (4, 4)
        Voxel to world (mm).
    allow_neck_cut : bool
        Accept scalp on the inferior face of the volume (the neck).

    Returns
    -------
    numpy.ndarray of uint8
        The labels.

    Raises
    ------
    InvalidImageError
        If the volume is not 3-D integer labels in 0-5, a tissue is empty, or
        the head is cut off by the field of view.
    """
    arr = np.asarray(labels)
    if arr.ndim != 3 or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.bool_)):
        raise InvalidImageError(
            f"Head labels must be a 3-D integer volume, got {arr.dtype} of shape {arr.shape}.")
    if np.asarray(affine).shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InvalidImageError("The head-label affine must be a finite 4 x 4 matrix.")
    if arr.size and (arr.min() < 0 or arr.max() > max(TISSUE_LABELS.values())):
        raise InvalidImageError(
            f"Head labels must lie in 0-5 ({TISSUE_LABELS}), found {arr.min()}-{arr.max()}.")
    counts = np.bincount(arr.ravel().astype(np.int64), minlength=len(TISSUE_LABELS) + 1)
    empty = [t for t, v in TISSUE_LABELS.items() if counts[v] == 0]
    if empty:
        raise InvalidImageError(
            f"The head model has no {', '.join(empty)} voxel. Check the inputs (an empty probseg or brain "
            "mask, a wrong file), or the layer thicknesses, which may be smaller than one voxel.")
    _check_field_of_view(arr, affine, allow_neck_cut)
    return arr.astype(np.uint8, copy=False)


def _check_field_of_view(labels: np.ndarray, affine: np.ndarray, allow_neck_cut: bool) -> None:
    names = {0: "first", 1: "last"}
    cranium = _border_faces(labels >= TISSUE_LABELS["skull"])
    head = _border_faces(labels > 0)
    allowed = {inferior_face(affine)} if allow_neck_cut else set()
    cut = cranium or [f for f in head if f not in allowed]
    if cut:
        where = ", ".join(f"the {names[s]} slice of array axis {a}" for a, s in cut)
        what = "skull or brain" if cranium else "head"
        raise InvalidImageError(
            f"The {what} touches the edge of the image ({where}): the field of view cuts off part of the "
            "head, and current would be modelled as stopping there. Use an image that holds the whole "
            "head (only the neck may leave it at the inferior border).")


def _load_same_grid(images: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Path]]:
    """Data of each image (3-D, float), their common affine, and the paths given."""
    data, paths = {}, {}
    reference: tuple[str, Any] | None = None
    for role, image in images.items():
        missing = f"The {role} image {image} does not exist; give an existing file."
        img, arr = read_volume(image, missing=missing)
        if arr.ndim != 3:
            raise InvalidImageError(f"The {role} image must be 3-D, got shape {arr.shape}.")
        if reference is None:
            reference = (role, img)
        elif arr.shape != reference[1].shape[:3] or not np.allclose(img.affine, reference[1].affine,
                                                                     atol=_AFFINE_ATOL_MM):
            raise GridMismatchError(
                f"The {role} image (shape {arr.shape}) is not on the grid of the {reference[0]} image "
                f"(shape {reference[1].shape[:3]}); give fMRIPrep derivatives of one space (e.g. all "
                "in T1w space), or resample them onto one grid.")
        data[role] = np.asarray(arr, dtype=np.float32)
        if not isinstance(image, nib.spatialimages.SpatialImage):
            paths[role] = Path(image)
    assert reference is not None
    return data, np.asarray(reference[1].affine, dtype=float), paths


def fill_head_cavities(shell: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``shell`` with what it encloses, in 3-D and in every axial slice.

    The axial slices matter when the field of view cuts the head open at the neck: the 3-D
    fill then leaves the inside unfilled, each axial slice's outline still closes it.
    """
    axial_axis = inferior_face(affine)[0]
    filled = ndimage.binary_fill_holes(shell)
    for k in range(shell.shape[axial_axis]):
        index = tuple(k if a == axial_axis else slice(None) for a in range(3))
        filled[index] |= ndimage.binary_fill_holes(shell[index])
    return filled


def _head_mask(t1w: np.ndarray, brain: np.ndarray, threshold: float, affine: np.ndarray) -> np.ndarray:
    """T1w above threshold x its 98th percentile, with the brain, holes filled, largest piece."""
    positive = t1w[t1w > 0]
    if positive.size == 0:
        raise InvalidImageError("The T1w image is empty (no positive voxel); give desc-preproc_T1w.")
    bright = (t1w > threshold * np.percentile(positive, 98)) | brain
    # Holes first (the dark skull separates the scalp from the brain), then the largest piece.
    head = fill_head_cavities(bright, affine)
    pieces, n = ndimage.label(head)
    if n > 1:
        sizes = np.bincount(pieces.ravel())
        sizes[0] = 0
        head = pieces == int(np.argmax(sizes))
    return head


def _near(mask: np.ndarray, distance_mm: float, zooms: np.ndarray) -> np.ndarray:
    """Voxels within ``distance_mm`` of ``mask`` (a smooth dilation), ``mask`` included.

    ``mask`` is smoothed by a Gaussian of width ``sigma = max(distance/2, 1.5 voxels)``; a
    voxel is within ``d`` of a flat surface of the mask where the smoothed value is at least
    ``Phi(-d / sigma)``. Unlike a distance transform between voxel centres, the level set does
    not keep the staircase of the mask, whose offset is up to a voxel thicker along the grid
    axes than along the diagonals: enough, for a 3 mm CSF layer on a 2 mm grid, to change the
    field in the brain by several per cent.
    """
    from scipy.special import ndtr

    sigma_mm = max(distance_mm / 2.0, 1.5 * float(np.max(zooms)))
    smooth = ndimage.gaussian_filter(mask.astype(np.float32), sigma_mm / zooms, mode="constant")
    return mask | (smooth >= ndtr(-distance_mm / sigma_mm))


def layered_labels(head: np.ndarray, brain: np.ndarray, probs: np.ndarray, affine: np.ndarray,
                   params: HeadModelParameters) -> np.ndarray:
    """The five-tissue labels of the module docstring's rule from a head mask and a brain mask.

    Parameters
    ----------
    head, brain : ndarray of bool, the grid's shape
        The whole head (the brain included) and the brain.
    probs : ndarray, shape (3, *grid)
        CSF, GM and WM probabilities; inside the brain the largest wins (ties: CSF, then GM).
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine (mm).
    params : HeadModelParameters
        Layer thicknesses and the field-of-view rule.

    Returns
    -------
    ndarray of uint8
        Checked by :func:`check_head_labels`.
    """
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    labels = np.zeros(brain.shape, dtype=np.uint8)
    labels[head] = TISSUE_LABELS["scalp"]
    skull_mm = params.csf_thickness_mm + params.skull_thickness_mm
    labels[head & _near(brain, skull_mm, zooms)] = TISSUE_LABELS["skull"]
    if params.csf_thickness_mm > 0:
        labels[head & _near(brain, params.csf_thickness_mm, zooms)] = TISSUE_LABELS["csf"]
    if params.min_scalp_thickness_mm > 0:
        labels[head & ~brain & _near(~head, params.min_scalp_thickness_mm, zooms)] = TISSUE_LABELS["scalp"]
    tissue = np.array([TISSUE_LABELS["csf"], TISSUE_LABELS["gm"], TISSUE_LABELS["wm"]], dtype=np.uint8)
    labels[brain] = tissue[np.argmax(probs[:, brain], axis=0)]
    return check_head_labels(labels, affine, allow_neck_cut=params.allow_neck_cut)


def head_model_from_fmriprep(t1w: Any, brain_mask: Any, gm_probseg: Any, wm_probseg: Any, csf_probseg: Any,
                             *, parameters: HeadModelParameters | None = None,
                             space: str | None = "T1w") -> HeadModel:
    """Five-tissue head model from fMRIPrep anatomical derivatives (the rule of the module docstring).

    Parameters
    ----------
    t1w : str, Path or nibabel image
        ``desc-preproc_T1w``.
    brain_mask : str, Path or nibabel image
        ``desc-brain_mask`` (non-zero inside).
    gm_probseg, wm_probseg, csf_probseg : str, Path or nibabel image
        ``label-GM/WM/CSF_probseg`` (probabilities 0-1).
    parameters : HeadModelParameters, optional
        The rule's thicknesses and thresholds.
    space : str or None
        Space of the images (recorded).

    Returns
    -------
    HeadModel

    Raises
    ------
    InputFileNotFoundError
        If a file does not exist.
    GridMismatchError
        If the images are not on one grid.
    InvalidImageError
        If an image is not 3-D, the brain mask or a tissue is empty, or the
        head is cut off by the field of view.
    """
    params = HeadModelParameters() if parameters is None else parameters
    data, affine, paths = _load_same_grid({"t1w": t1w, "brain_mask": brain_mask, "gm_probseg": gm_probseg,
                                           "wm_probseg": wm_probseg, "csf_probseg": csf_probseg})
    brain = data["brain_mask"] > 0.5
    if not brain.any():
        raise InvalidImageError("The brain mask is empty; give fMRIPrep's desc-brain_mask.")
    head = _head_mask(data["t1w"], brain, params.head_threshold, affine)
    probs = np.stack([data["csf_probseg"], data["gm_probseg"], data["wm_probseg"]])
    labels = layered_labels(head, brain, probs, affine, params)
    return HeadModel(labels, affine, space, "Five-tissue head model from fMRIPrep anatomical derivatives "
                     "(brain tissues from the probsegs, CSF and skull as layers of set thickness outside "
                     "the brain mask, scalp from the T1w head mask).", inputs=paths,
                     parameters={"rule": "fmriprep-layers", **params.as_dict()})


def write_head_model(head: HeadModel, path: str | Path, *,
                     conductivities: Conductivities | None = None) -> Path:
    """Write the labels as NIfTI (uint8) with a provenance sidecar holding the label table.

    Parameters
    ----------
    head : HeadModel
        The model.
    path : str or Path
        Destination ending in ``.nii.gz`` (e.g. ``sub-01_desc-head_dseg.nii.gz``);
        the sidecar is written beside it (same stem, ``.json``).
    conductivities : Conductivities, optional
        Recorded per label in the sidecar when given.

    Returns
    -------
    Path
        The NIfTI file.
    """
    from tmsnet.io.atomic import atomic_write_json, atomic_write_nifti, ensure_output_dir
    from tmsnet.io.provenance import make_sidecar, sidecar_path_for

    out = Path(path)
    ensure_output_dir(out.parent)
    img = nib.Nifti1Image(np.asarray(head.labels, dtype=np.uint8), head.affine)
    img.header.set_xyzt_units("mm")
    table = {str(v): _TISSUE_NAMES[t] for t, v in TISSUE_LABELS.items()}
    extra: dict[str, Any] = {"Labels": {"0": "background", **table},
                             "TissueVolumes_mL": head.tissue_volumes_ml()}
    if conductivities is not None:
        extra["Conductivities_S_per_m"] = {str(v): getattr(conductivities, t)
                                           for t, v in TISSUE_LABELS.items()}
    sidecar = make_sidecar(description=head.description, parameters=head.parameters, inputs=head.inputs,
                           space=head.space, extra=extra)
    atomic_write_nifti(out, img)
    atomic_write_json(sidecar_path_for(out), sidecar)
    return out
