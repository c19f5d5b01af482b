"""Cortical-surface meshes: loading, adjacency, clusters, smoothing and regions.

The surface counterpart of the voxel-grid pieces of :mod:`tmsnet.targeting.regions`
(seed sphere, DLPFC search region) and of the 26-connected clusters of
:func:`tmsnet.targeting.methods.cluster_target` (REFERENCES.md section 1, "Surfaces"):

- :class:`TemplateMesh`, :func:`load_template_mesh` (fsaverage5, shipped inside nilearn; fsLR
  32k midthickness, shipped inside tmsnet), :func:`load_template_medial_wall` (fsLR;
  fsaverage5 from a real fMRIPrep scan), :func:`load_mesh_file` (a GIFTI or FreeSurfer
  surface) and :func:`load_mesh_pair` (both hemispheres of a given template: fsaverage6,
  fsaverage);
- :func:`mesh_edges`, :func:`mesh_adjacency` and :func:`connected_clusters` (vertices are
  neighbours when they share a triangle edge, as in contarg's face-adjacency constraint);
- :func:`smoothing_operator`: iterated heat-kernel smoothing with a FWHM in mm (Chung et al.
  2005), confined to the cortex (the medial wall neither gives nor receives weight);
- :func:`vertices_within`, :func:`surface_seed` and :func:`surface_search_region`: the sgACC
  seed and the union of the DLPFC spheres as vertex masks, from the same published
  coordinates and radii as the volume regions.

Coordinates are the template surface's own, in mm, and each mesh names their space
(:attr:`TemplateMesh.coordinate_space`). For fsaverage they are FreeSurfer's MNI305 space, while
the published targeting coordinates are MNI152; the two differ by a few mm (see
:func:`vertices_within`). The fsLR midthickness is in MNI152 (``MNI152NLin6Asym``). Every region
is a Euclidean ball around the published centre, intersected with the mesh: no geodesic
distance is computed anywhere in this module.

fsaverage6 and fsaverage (ico6, ico7) do not ship: give their surface files
(:func:`load_mesh_pair`; on the command line ``--surface-mesh``), FreeSurfer's own
``subjects/fsaverage6/surf/lh.pial`` or TemplateFlow's GIFTI. FreeSurfer's icosahedral meshes
are said to be nested (the first 10242 vertices of fsaverage6 and fsaverage being
fsaverage5's, at the same positions), which would let their data be targeted on the fsaverage5
subset without a file. The nesting holds inside fsaverage5 itself: on nilearn's fsaverage5
sphere the first ``10 * 4**k + 2`` vertices are ico-``k`` for k = 0..4 (every later vertex
lies within 0.01 degrees of the normalised midpoint of two adjacent earlier ones;
tests/test_surface_meshes.py), but no fsaverage6 or fsaverage file is available offline to
check the claim itself, so tmsnet does not rely on it: without the mesh file those spaces are
refused with a message saying what to give.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from tmsnet.data import STANDARD_DLPFC_TARGETS, reference_coordinate
from tmsnet.exceptions import (
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    SpaceError,
)
from tmsnet.io.surface import right_hemisphere_file
from tmsnet.targeting.regions import DEFAULT_SEARCH_RADIUS_MM, SEED_DEFINITIONS
from tmsnet.utils.check import check_number, check_option, ensure_int

__all__ = [
    "HEMISPHERES",
    "MESH_KINDS",
    "SURFACE_DISTANCE",
    "MESH_COORDINATE_SPACES",
    "TEMPLATE_MESH_KINDS",
    "TEMPLATE_MESH_SPACES",
    "SurfaceSmoother",
    "TemplateMesh",
    "connected_clusters",
    "load_mesh_file",
    "load_mesh_pair",
    "mesh_pair_files",
    "check_template_geometry",
    "load_template_medial_wall",
    "load_template_mesh",
    "points_within",
    "mesh_adjacency",
    "mesh_edges",
    "smoothing_operator",
    "surface_search_region",
    "surface_seed",
    "vertices_within",
]

#: Spaces whose meshes tmsnet can load without a file: fsaverage5 ships inside nilearn, fsLR
#: (32k) inside tmsnet (``tmsnet/data/meshes``, from brainspace 0.3.0, BSD-3-Clause).
TEMPLATE_MESH_SPACES: tuple[str, ...] = ("fsaverage5", "fsLR")
#: Surfaces of the fsaverage5 mesh, named as nilearn's ``load_fsaverage`` names them.
MESH_KINDS: tuple[str, ...] = ("pial", "white_matter", "inflated", "sphere", "flat")
#: Surfaces each template space ships.
TEMPLATE_MESH_KINDS: dict[str, tuple[str, ...]] = {"fsaverage5": MESH_KINDS,
                                                   "fsLR": ("midthickness",)}
#: The space of each template mesh's coordinates (mm).
MESH_COORDINATE_SPACES: dict[str, str] = {"fsaverage5": "MNI305", "fsaverage6": "MNI305",
                                          "fsaverage": "MNI305", "fsLR": "MNI152NLin6Asym"}
#: Kinds that ask for an anatomical (folded) surface; on fsLR all three give the midthickness.
_FSLR_KINDS: tuple[str, ...] = ("midthickness", "pial", "white_matter")
#: Icosahedral fsaverage meshes tmsnet reads data on but has no mesh for (order of the ico).
_UNSHIPPED_ICOSAHEDRA: dict[str, int] = {"fsaverage6": 6, "fsaverage": 7}
_FSLR_FILE = "tpl-fsLR_den-32k_hemi-{hemi}_midthickness.npz"
HEMISPHERES: tuple[str, ...] = ("left", "right")
#: How every surface region is measured (recorded in the region's description).
SURFACE_DISTANCE = "Euclidean from the template surface"

_HEMISPHERE_ALIASES = {"left": "left", "lh": "left", "l": "left", "cortexleft": "left",
                       "right": "right", "rh": "right", "r": "right", "cortexright": "right"}
#: FWHM = sqrt(8 ln 2) sigma for a Gaussian.
_FWHM_PER_SIGMA = math.sqrt(8.0 * math.log(2.0))
#: Largest total neighbour weight of one smoothing step (the self weight stays >= 1/2): with it
#: every eigenvalue of the step matrix lies in [0, 1] (Gershgorin), so no pattern oscillates.
_MAX_NEIGHBOUR_WEIGHT = 0.5

_FSAVERAGE_NOTE = (
    "fsaverage surface coordinates are FreeSurfer's MNI305 space; the published coordinates "
    "are MNI152 and are used unchanged. The two spaces differ by a few mm (FreeSurfer's "
    "MNI152-to-MNI305 affine moves points near these targets by about 2 mm), below the "
    "region radii.")
_COORDINATE_NOTES = {
    "fsaverage5": _FSAVERAGE_NOTE, "fsaverage6": _FSAVERAGE_NOTE, "fsaverage": _FSAVERAGE_NOTE,
    "fsLR": (
        "fsLR midthickness coordinates are MNI152 (MNI152NLin6Asym: an average of HCP subjects' "
        "surfaces in MNINonLinear space); the published MNI152 coordinates are used unchanged."),
}
_DEFAULT_COORDINATE_NOTE = (
    "The published MNI152 coordinates are used unchanged in the coordinates of the {space} "
    "mesh; they are meaningful only if that mesh lies in an MNI-like space (fsLR Conte69 does, "
    "a subject's native surface does not).")


def _hemisphere(value: object) -> str:
    key = str(value).strip().lower() if isinstance(value, str) else None
    if key not in _HEMISPHERE_ALIASES:
        raise InvalidParameterError(
            f"hemisphere must be 'left' or 'right' (or 'lh', 'rh'), got {value!r}.")
    return _HEMISPHERE_ALIASES[key]


@dataclass(frozen=True, eq=False)
class TemplateMesh:
    """A triangulated surface of one hemisphere.

    The arrays are copied and made read-only on construction.

    Attributes
    ----------
    coords_mm : ndarray of float64, shape (n_vertices, 3)
        Vertex positions in mm, in the coordinates of ``space``.
    faces : ndarray of int64, shape (n_faces, 3)
        Vertex indices of each triangle (0-based).
    space : str
        Name of the mesh's space, e.g. ``"fsaverage5"`` or ``"fsLR32k"``.
    hemisphere : {"left", "right"}
        The hemisphere.
    kind : str
        Which surface: ``"pial"``, ``"white_matter"``, ``"midthickness"``, ...
    coordinate_space : str or None
        The space of ``coords_mm``: by default :data:`MESH_COORDINATE_SPACES` of ``space``
        (``"MNI305"`` for fsaverage5, ``"MNI152NLin6Asym"`` for fsLR), None when unknown.
    """

    coords_mm: np.ndarray
    faces: np.ndarray
    space: str
    hemisphere: str
    kind: str = "pial"
    coordinate_space: str | None = None

    def __post_init__(self) -> None:
        coords = np.array(self.coords_mm, dtype=np.float64)
        if coords.ndim != 2 or coords.shape[1] != 3 or coords.shape[0] < 3:
            raise InvalidImageError(
                f"Mesh coordinates must have shape (n_vertices, 3) with n_vertices >= 3, got "
                f"{coords.shape}.")
        if not np.all(np.isfinite(coords)):
            raise InvalidImageError("Mesh coordinates must be finite (no NaN or infinity).")
        faces = _checked_faces(self.faces, coords.shape[0])
        if not isinstance(self.space, str) or not self.space:
            raise InvalidParameterError(f"space must be a non-empty name, got {self.space!r}.")
        coords.flags.writeable = False
        faces.flags.writeable = False
        object.__setattr__(self, "coords_mm", coords)
        object.__setattr__(self, "faces", faces)
        object.__setattr__(self, "hemisphere", _hemisphere(self.hemisphere))
        object.__setattr__(self, "kind", str(self.kind))
        if self.coordinate_space is None:
            object.__setattr__(self, "coordinate_space", MESH_COORDINATE_SPACES.get(self.space))

    @property
    def n_vertices(self) -> int:
        """Number of vertices."""
        return int(self.coords_mm.shape[0])

    @property
    def n_faces(self) -> int:
        """Number of triangles."""
        return int(self.faces.shape[0])


def _checked_faces(faces: object, n_vertices: int) -> np.ndarray:
    array = np.asarray(faces)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise InvalidImageError(f"Mesh faces must have shape (n_faces, 3), got {array.shape}.")
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidImageError(f"Mesh faces must be integer vertex indices, got {array.dtype}.")
    if array.min() < 0 or array.max() >= n_vertices:
        raise InvalidImageError(
            f"Mesh faces index vertices {int(array.min())}..{int(array.max())}, but the mesh has "
            f"{n_vertices} vertices (0-based indices expected).")
    return np.array(array, dtype=np.int64)


def _refuse_unshipped(space: str) -> None:
    if space in _UNSHIPPED_ICOSAHEDRA:
        raise SpaceError(
            f"tmsnet ships no {space} mesh (ico{_UNSHIPPED_ICOSAHEDRA[space]}): give its "
            f"template surface (--surface-mesh on the command line, mesh= in the API: "
            f"FreeSurfer's subjects/{space}/surf/lh.pial, the right one, rh.pial, is found "
            "beside it), or resample the BOLD to fsaverage5 "
            f"(fMRIPrep --output-spaces fsaverage5, or mri_surf2surf --srcsubject {space} "
            "--trgsubject fsaverage5), or use fMRIPrep's fsLR CIFTI (--cifti-output 91k).")
    if space not in TEMPLATE_MESH_SPACES:
        raise SpaceError(
            f"No template mesh is shipped for space {space!r}; available: "
            f"{', '.join(TEMPLATE_MESH_SPACES)} (fsaverage5 from nilearn's package data, fsLR "
            "32k from tmsnet's). For another mesh give its file: load_mesh_file(path, space, "
            "hemisphere) reads a GIFTI surface.")


def load_template_mesh(space: str, hemisphere: str, kind: str = "pial") -> TemplateMesh:
    """One hemisphere of a template mesh shipped with tmsnet or its dependencies.

    - ``"fsaverage5"`` (10242 vertices per hemisphere) comes from the GIFTI files inside the
      nilearn package, through ``nilearn.datasets.load_fsaverage("fsaverage5")``. In nilearn
      0.14 that path (``fetch_surf_fsaverage`` -> ``_fetch_surf_fsaverage5``) only builds paths
      into ``nilearn/datasets/data/fsaverage5`` and never downloads. Coordinates: MNI305.
    - ``"fsLR"`` (32492 vertices per hemisphere, the mesh whose vertices fMRIPrep's and HCP's
      ``den-91k`` CIFTI files index) is tmsnet's own copy of brainspace 0.3.0's
      ``conte69_32k`` midthickness (``tmsnet/data/meshes``, BSD-3-Clause; see the README
      there). Only the midthickness ships: ``kind`` ``"pial"`` and ``"white_matter"`` also
      return it, and the mesh's ``kind`` then says ``"midthickness"`` (it lies half a cortical
      thickness, 1-1.5 mm, from either). Coordinates: MNI152 (``MNI152NLin6Asym``).
    - ``"fsaverage6"`` and ``"fsaverage"`` are refused: give their files to
      :func:`load_mesh_pair` (module docstring).

    Parameters
    ----------
    space : str
        Template space; one of :data:`TEMPLATE_MESH_SPACES`.
    hemisphere : {"left", "right"}
        Hemisphere (``"lh"`` and ``"rh"`` are accepted).
    kind : str
        Surface: for fsaverage5 one of :data:`MESH_KINDS`, for fsLR ``"midthickness"``,
        ``"pial"`` or ``"white_matter"`` (all the midthickness); default ``"pial"``.

    Returns
    -------
    TemplateMesh
        Coordinates in mm, their space in ``coordinate_space``.

    Raises
    ------
    SpaceError
        If ``space`` has no shipped mesh (the message says what to do instead).
    InvalidParameterError
        If ``hemisphere`` or ``kind`` is unknown for the space.
    """
    _refuse_unshipped(space)
    hemisphere = _hemisphere(hemisphere)
    if space == "fsLR":
        check_option("kind", kind, _FSLR_KINDS,
                     extra="fsLR ships only the midthickness; pial and white_matter give it too.")
        return _fslr_mesh(hemisphere)
    check_option("kind", kind, MESH_KINDS)
    return _fsaverage5_mesh(hemisphere, kind)


def load_template_medial_wall(space: str, hemisphere: str) -> np.ndarray:
    """The medial-wall mask of a shipped template mesh.

    - fsLR: brainspace's ``conte69_32k_*_mask.csv`` (29271 left and 29287 right cortex
      vertices), which is more conservative than the medial wall of HCP's 91k grayordinates
      (29696 and 29716 cortex vertices): a CIFTI file's own vertex lists take precedence.
    - fsaverage5: the vertices fMRIPrep leaves constant (0) on fsaverage5 (FreeSurfer's cortex
      label is the template's, so they are the same for every subject), read off a real
      fMRIPrep scan (LEMON sub-010188; 888 left, 881 right; ``tools/build_fsaverage5_medial_wall.py``).
      The surface job takes the wall from the data themselves; this mask is for generated
      data, display and checks.

    Parameters
    ----------
    space : str
        ``"fsLR"`` or ``"fsaverage5"``.
    hemisphere : {"left", "right"}
        Hemisphere (``"lh"`` and ``"rh"`` are accepted).

    Returns
    -------
    ndarray of bool, shape (n_vertices,)
        True on the medial wall (read-only).

    Raises
    ------
    SpaceError
        If no mask ships for ``space``.
    """
    _refuse_unshipped(space)
    hemisphere = _hemisphere(hemisphere)
    if space == "fsaverage5":
        return _fsaverage5_wall()[hemisphere]
    return _fslr_arrays(hemisphere)[2]


#: The bundled fsaverage5 medial wall (``tools/build_fsaverage5_medial_wall.py``).
FSAVERAGE5_WALL_FILE = "tpl-fsaverage5_desc-medialwall_mask.npz"


@lru_cache(maxsize=1)
def _fsaverage5_wall() -> dict[str, np.ndarray]:
    resource = files("tmsnet.data").joinpath("meshes").joinpath(FSAVERAGE5_WALL_FILE)
    try:
        with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            walls = {h: np.array(archive[h], dtype=bool) for h in HEMISPHERES}
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileNotFoundError(
            f"The bundled {FSAVERAGE5_WALL_FILE} is missing or damaged ({exc}); reinstall "
            "tmsnet, or rebuild it with tools/build_fsaverage5_medial_wall.py.") from exc
    for wall in walls.values():
        wall.flags.writeable = False
    return walls


@lru_cache(maxsize=len(HEMISPHERES))
def _fslr_arrays(hemisphere: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    name = _FSLR_FILE.format(hemi="L" if hemisphere == "left" else "R")
    resource = files("tmsnet.data").joinpath("meshes").joinpath(name)
    try:
        with resource.open("rb") as handle, np.load(handle, allow_pickle=False) as archive:
            coords, faces, cortex = (np.array(archive[k]) for k in ("coords_mm", "faces", "cortex"))
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileNotFoundError(
            f"The bundled fsLR mesh {name} is missing or damaged ({exc}); reinstall tmsnet, or "
            "rebuild it with tools/build_bundled_meshes.py.") from exc
    wall = ~cortex.astype(bool)
    wall.flags.writeable = False
    return coords, faces, wall


@lru_cache(maxsize=len(HEMISPHERES))
def _fslr_mesh(hemisphere: str) -> TemplateMesh:
    coords, faces, _ = _fslr_arrays(hemisphere)
    return TemplateMesh(coords, faces, "fsLR", hemisphere, "midthickness")


@lru_cache(maxsize=len(MESH_KINDS) * len(HEMISPHERES))
def _fsaverage5_mesh(hemisphere: str, kind: str) -> TemplateMesh:
    from nilearn.datasets import load_fsaverage

    part = load_fsaverage("fsaverage5")[kind].parts[hemisphere]
    return TemplateMesh(np.asarray(part.coordinates), np.asarray(part.faces), "fsaverage5",
                        hemisphere, kind)


def load_mesh_file(path: str | Path, space: str, hemisphere: str, *,
                   kind: str | None = None) -> TemplateMesh:
    """Read one hemisphere's surface: GIFTI (``*.surf.gii``) or FreeSurfer (``lh.pial``).

    A file whose name ends in ``.gii`` is read as GIFTI; any other as a FreeSurfer surface
    (``nibabel.freesurfer.read_geometry``: ``$FREESURFER_HOME/subjects/fsaverage6/surf/lh.pial``
    and the like, whose coordinates are the subject's surface RAS, MNI305 for fsaverage).

    Parameters
    ----------
    path : str or Path
        A GIFTI file with one pointset (vertex coordinates, mm) and one triangle array, or a
        FreeSurfer surface file.
    space : str
        Name of the mesh's space (e.g. ``"fsaverage6"``); recorded, not checked. It sets the
        mesh's ``coordinate_space`` (:data:`MESH_COORDINATE_SPACES`; MNI305 for the fsaverage
        family).
    hemisphere : {"left", "right"}
        Hemisphere. When the file's ``AnatomicalStructurePrimary`` metadata names a
        hemisphere (``CortexLeft``, ``CortexRight``) it must agree.
    kind : str, optional
        Which surface; by default the file's ``AnatomicalStructureSecondary`` metadata in
        lower case (``"midthickness"``, ``"pial"``), for a FreeSurfer file the part of its name
        after ``lh.``/``rh.`` (``"pial"``, ``"white"``), else ``"unknown"``.

    Returns
    -------
    TemplateMesh

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    InvalidImageError
        If it is not a GIFTI or FreeSurfer surface.
    SpaceError
        If its metadata names the other hemisphere.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"The mesh file {path} does not exist.")
    hemisphere = _hemisphere(hemisphere)
    if path.name.endswith(".gii"):
        coords, faces, declared, file_kind = _read_gifti_mesh(path)
    else:
        coords, faces, declared, file_kind = _read_freesurfer_mesh(path)
    said = _HEMISPHERE_ALIASES.get(declared.lower())
    if said is not None and said != hemisphere:
        evidence = (f"AnatomicalStructurePrimary={declared}" if path.name.endswith(".gii")
                    else f"by its name ({declared}.)")
        raise SpaceError(
            f"{path.name} says it holds the {said} hemisphere ({evidence}) but hemisphere "
            f"{hemisphere!r} was given. Pass the hemisphere the file holds.")
    return TemplateMesh(coords, faces, space, hemisphere, kind or file_kind)


def _read_gifti_mesh(path: Path) -> tuple[np.ndarray, np.ndarray, str, str]:
    try:
        image = nib.load(path)
        coords, faces = image.agg_data(("pointset", "triangle"))
    except Exception as exc:  # nibabel raises many types for a file it cannot read
        raise InvalidImageError(
            f"{path.name} is not a readable GIFTI surface with a pointset and a triangle array "
            f"({exc}).") from exc
    if not (isinstance(coords, np.ndarray) and isinstance(faces, np.ndarray)):
        raise InvalidImageError(
            f"{path.name} must hold exactly one pointset (NIFTI_INTENT_POINTSET) and one "
            "triangle array (NIFTI_INTENT_TRIANGLE).")
    meta = dict(image.get_arrays_from_intent("pointset")[0].meta)
    declared = str(meta.get("AnatomicalStructurePrimary", ""))
    kind = str(meta.get("AnatomicalStructureSecondary", "unknown")).lower() or "unknown"
    return coords, faces, declared, kind


def _read_freesurfer_mesh(path: Path) -> tuple[np.ndarray, np.ndarray, str, str]:
    try:
        coords, faces = nib.freesurfer.read_geometry(str(path))
    except Exception as exc:  # a wrong magic number, a short file, ...
        raise InvalidImageError(
            f"{path.name} is neither a GIFTI surface (*.gii) nor a readable FreeSurfer surface "
            f"such as lh.pial ({exc}).") from exc
    prefix, _, rest = path.name.partition(".")
    declared = prefix if prefix.lower() in ("lh", "rh") else ""
    return coords, faces, declared, (rest if declared and rest else "unknown")


def mesh_pair_files(left: str | Path) -> dict[str, Path]:
    """The files of a given template surface pair, by input role (``mesh_left``, ``mesh_right``).

    The right file is named after the left one as a surface BOLD's partner is
    (:func:`tmsnet.io.surface.right_hemisphere_file`). The roles are those recorded among a
    job's inputs (hashed in its sidecars, read back by the report).

    A missing left file raises :class:`~tmsnet.exceptions.InputFileNotFoundError`, and so does
    a missing right one (naming the file expected).
    """
    if not Path(left).is_file():
        raise InputFileNotFoundError(f"The mesh file {left} does not exist.")
    return {"mesh_left": Path(left), "mesh_right": right_hemisphere_file(Path(left))}


def load_mesh_pair(left: str | Path, space: str, *, kind: str | None = None,
                   n_vertices: dict[str, int] | None = None) -> dict[str, TemplateMesh]:
    """Both hemispheres of a template surface given by the user: the left file and its partner.

    The right file lies beside the left one, named by the same rules as a surface BOLD's
    (``hemi-L`` -> ``hemi-R``, ``lh.`` -> ``rh.``; :func:`tmsnet.io.surface.right_hemisphere_file`).
    This is how data on meshes tmsnet does not ship (fsaverage6, fsaverage) are targeted:
    FreeSurfer's own ``subjects/fsaverage6/surf/lh.pial`` (every fMRIPrep installation has
    it), or TemplateFlow's ``tpl-fsaverage_hemi-L_den-41k_pial.surf.gii``.

    Parameters
    ----------
    left : str or Path
        The left hemisphere's surface (GIFTI or FreeSurfer; :func:`load_mesh_file`).
    space : str
        The data's space; names the meshes and their coordinates' space.
    kind : str, optional
        Which surface (default: from the files).
    n_vertices : dict, optional
        Vertices per hemisphere (``{"L": ..., "R": ...}``) the meshes must have: the data's.

    Returns
    -------
    dict
        ``{"L": TemplateMesh, "R": TemplateMesh}``.

    Raises
    ------
    SpaceError
        If a mesh has another vertex count than the data, or the two files look swapped (the
        left mesh lies to the right of the right one).
    """
    files = mesh_pair_files(left)
    left = files["mesh_left"]
    meshes = {"L": load_mesh_file(left, space, "left", kind=kind),
              "R": load_mesh_file(files["mesh_right"], space, "right", kind=kind)}
    for hemi, mesh in meshes.items():
        expected = (n_vertices or {}).get(hemi)
        if expected is not None and mesh.n_vertices != expected:
            raise SpaceError(
                f"The {mesh.hemisphere} mesh {mesh.space} from {left.name} has {mesh.n_vertices} "
                f"vertices but the data have {expected}: give the template surface of the space "
                "the data are on (for fsaverage6, FreeSurfer's subjects/fsaverage6/surf/lh.pial).")
    if meshes["L"].coords_mm[:, 0].mean() > meshes["R"].coords_mm[:, 0].mean():
        raise SpaceError(
            f"The left mesh {left.name} lies to the right of its partner (mean x "
            f"{meshes['L'].coords_mm[:, 0].mean():.1f} vs {meshes['R'].coords_mm[:, 0].mean():.1f} "
            "mm): the hemisphere files look swapped.")
    return meshes


#: A given template surface must lie within this of fsaverage5's pial centroid (mm) ...
TEMPLATE_CENTROID_TOLERANCE_MM = 10.0
#: ... with a spread per axis within these ratios of it (pial, white, midthickness and fsLR
#: lie within 0.94-1.0; inflated 1.3-1.4, sphere and flat 1.5-3.8).
TEMPLATE_SPREAD_RATIOS = (0.85, 1.15)


def check_template_geometry(meshes: dict[str, TemplateMesh]) -> None:
    """Refuse a given mesh pair that is not a folded surface in the templates' MNI-like frame.

    The regions are Euclidean balls around published MNI coordinates, so a given mesh must be
    a folded template surface (pial, white, midthickness) in the frame of the shipped ones.
    Each hemisphere is compared with nilearn's fsaverage5 pial surface of the same
    hemisphere: centroid within :data:`TEMPLATE_CENTROID_TOLERANCE_MM` and spread (standard
    deviation per axis) within :data:`TEMPLATE_SPREAD_RATIOS`. An inflated surface, a sphere,
    a flat map, or a subject's native surface (tens of mm off in FreeSurfer's surface RAS)
    fails.

    Raises
    ------
    SpaceError
        Naming the hemisphere, the centroid offset and the spread ratios.
    """
    for mesh in meshes.values():
        reference = load_template_mesh("fsaverage5", mesh.hemisphere, "pial").coords_mm
        offset = float(np.linalg.norm(mesh.coords_mm.mean(axis=0) - reference.mean(axis=0)))
        spread = mesh.coords_mm.std(axis=0) / reference.std(axis=0)
        low, high = TEMPLATE_SPREAD_RATIOS
        if offset > TEMPLATE_CENTROID_TOLERANCE_MM or not np.all((spread >= low) & (spread <= high)):
            raise SpaceError(
                f"The given {mesh.hemisphere} surface does not look like a folded template surface "
                f"in MNI space: its centroid is {offset:.0f} mm from fsaverage5's pial one and its "
                f"spread {np.round(spread, 2).tolist()} times it (allowed: within "
                f"{TEMPLATE_CENTROID_TOLERANCE_MM:g} mm, {low}-{high}). Give the template's pial, "
                "white or midthickness surface (not inflated, sphere, or a subject's own).")


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """The undirected edges of a triangle mesh, each once.

    Parameters
    ----------
    faces : ndarray of int, shape (n_faces, 3)
        Vertex indices of each triangle.

    Returns
    -------
    ndarray of int64, shape (n_edges, 2)
        ``(i, j)`` with ``i < j``, sorted; degenerate edges (``i == j``) are dropped.
    """
    faces = np.asarray(faces, dtype=np.int64)
    pairs = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if pairs.size == 0:
        return pairs.reshape(0, 2)
    # one int64 key per edge, ordered as (i, j) lexicographically: a 1-D unique is ~10x faster
    # than np.unique(axis=0) on fsLR-32k, with the same result
    base = int(pairs.max()) + 1
    keys = np.unique(pairs[:, 0] * base + pairs[:, 1])
    return np.column_stack([keys // base, keys % base])


def mesh_adjacency(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """Vertex adjacency of a triangle mesh: vertices sharing a triangle edge.

    Parameters
    ----------
    faces : ndarray of int, shape (n_faces, 3)
        Vertex indices of each triangle (0-based).
    n_vertices : int
        Number of vertices (isolated vertices get empty rows).

    Returns
    -------
    scipy.sparse.csr_matrix of bool, shape (n_vertices, n_vertices)
        Symmetric, with an empty diagonal; ``nnz == 2 * n_edges``.
    """
    n_vertices = ensure_int(n_vertices, "n_vertices")
    edges = mesh_edges(_checked_faces(faces, n_vertices))
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    data = np.ones(rows.size, dtype=bool)
    return sp.csr_matrix((data, (rows, cols)), shape=(n_vertices, n_vertices), dtype=bool)


def connected_clusters(mask: np.ndarray, adjacency: sp.spmatrix) -> np.ndarray:
    """Label the connected clusters of a vertex mask on a mesh.

    The surface analogue of 26-connected voxel clusters: two masked vertices belong to one
    cluster when a path of masked, adjacent vertices joins them
    (``scipy.sparse.csgraph.connected_components`` on the masked sub-graph).

    Parameters
    ----------
    mask : ndarray of bool, shape (n_vertices,)
        Vertices to cluster.
    adjacency : scipy.sparse matrix, shape (n_vertices, n_vertices)
        Vertex adjacency (:func:`mesh_adjacency`).

    Returns
    -------
    ndarray of int64, shape (n_vertices,)
        0 for unmasked vertices, 1..k for the clusters by decreasing size (ties: the cluster
        holding the lower vertex index first).
    """
    mask = _vertex_mask(mask, adjacency.shape[0], "mask")
    if adjacency.shape[0] != adjacency.shape[1]:
        raise InvalidParameterError(f"adjacency must be square, got shape {adjacency.shape}.")
    labels = np.zeros(mask.size, dtype=np.int64)
    index = np.flatnonzero(mask)
    if index.size == 0:
        return labels
    sub = sp.csr_matrix(adjacency)[index][:, index]
    n_components, component = connected_components(sub, directed=False)
    sizes = np.bincount(component, minlength=n_components)
    first = np.full(n_components, index.size)
    np.minimum.at(first, component, np.arange(index.size))
    order = np.lexsort((first, -sizes))
    rank = np.empty(n_components, dtype=np.int64)
    rank[order] = np.arange(1, n_components + 1)
    labels[index] = rank[component]
    return labels


def _vertex_mask(mask: object, n_vertices: int, name: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.shape != (n_vertices,):
        raise InvalidParameterError(
            f"{name} must be a boolean array of shape ({n_vertices},) (one value per vertex), "
            f"got shape {array.shape}.")
    return array.astype(bool)


def _cortex(mesh: TemplateMesh, medial_wall: np.ndarray | None) -> np.ndarray:
    if medial_wall is None:
        return np.ones(mesh.n_vertices, dtype=bool)
    return ~_vertex_mask(medial_wall, mesh.n_vertices, "medial_wall")


@dataclass(frozen=True, eq=False)
class SurfaceSmoother:
    """Iterated heat-kernel smoothing on a mesh; call it on vertex data.

    ``smoother(data)`` applies ``step`` ``n_iterations`` times. Build it with
    :func:`smoothing_operator`.

    Attributes
    ----------
    step : scipy.sparse.csr_matrix, shape (n_vertices, n_vertices)
        One smoothing step: symmetric, non-negative, every row and every column summing to 1.
    n_iterations : int
        Number of steps (0: no smoothing).
    fwhm_mm : float
        Requested full width at half maximum, mm.
    step_sigma_mm : float
        Standard deviation per tangent axis of one step, mm (mesh average):
        ``n_iterations * step_sigma_mm**2 == (fwhm_mm / sqrt(8 ln 2))**2``.
    edge_scale_mm : float
        Bandwidth of the Gaussian edge weights: the mean cortical edge length, mm.
    """

    step: sp.csr_matrix
    n_iterations: int
    fwhm_mm: float
    step_sigma_mm: float
    edge_scale_mm: float

    @property
    def n_vertices(self) -> int:
        """Number of mesh vertices the smoother expects."""
        return int(self.step.shape[0])

    def __call__(self, data: np.ndarray) -> np.ndarray:
        """Smooth vertex data.

        Parameters
        ----------
        data : array_like, shape (n_vertices,) or (n_vertices, n_frames)
            Values on the vertices (any unit; e.g. BOLD frames as columns). NaN spreads to
            the neighbours: put such vertices in the ``medial_wall`` mask.

        Returns
        -------
        ndarray of float64, same shape as ``data``
            Smoothed values; medial-wall vertices are returned unchanged.
        """
        values = np.array(data, dtype=np.float64)
        if values.ndim not in (1, 2) or values.shape[0] != self.n_vertices:
            raise InvalidImageError(
                f"Surface data must have shape ({self.n_vertices},) or ({self.n_vertices}, "
                f"n_frames) to match the mesh, got {values.shape}.")
        for _ in range(self.n_iterations):
            values = self.step @ values
        return np.asarray(values)

    def matrix(self) -> sp.csr_matrix:
        """The whole smoothing as one sparse matrix, ``step ** n_iterations``.

        Rows and columns sum to 1. It fills in with the iterations (about
        ``3 * n_iterations**2`` non-zeros per row): prefer calling the smoother on the data.
        """
        result = sp.identity(self.n_vertices, format="csr", dtype=np.float64)
        for _ in range(self.n_iterations):
            result = result @ self.step
        return sp.csr_matrix(result)


def smoothing_operator(mesh: TemplateMesh, fwhm_mm: float, *,
                       medial_wall: np.ndarray | None = None) -> SurfaceSmoother:
    """Iterated heat-kernel smoothing with a given FWHM in mm (Chung et al. 2005).

    Chung, Robbins, Dalton, Davidson, Alexander & Evans (2005), NeuroImage 25:1256,
    "Cortical thickness analysis in autism with heat kernel smoothing": the heat kernel of a
    large bandwidth is approximated by repeating a weighted average over each vertex and its
    one-ring neighbours, with Gaussian weights of the edge lengths. No geodesic distance is
    computed. This implementation:

    1. Edge weights ``g_ij = exp(-d_ij**2 / (2 h**2))`` for every edge between two cortical
       vertices, ``d_ij`` the edge length (mm) and ``h`` the mean cortical edge length (so
       shorter edges weigh more, and no edge is weighted down to nothing).
    2. One step ``S = I - c L``: vertex ``i`` gets ``c g_ij`` from each neighbour ``j`` and
       keeps ``1 - c sum_j g_ij``. ``S`` is symmetric, non-negative and row- and
       column-stochastic: a constant stays constant and a delta keeps its total mass.
       Vertices in ``medial_wall`` have no edge: they neither give nor receive weight and
       keep their values.
    3. One step moves a random walker by a mean squared distance ``c sum_j g_ij d_ij**2``
       (two tangent axes), i.e. a per-axis variance ``tau**2 = c m / 2`` with ``m`` the mean
       over cortical vertices of ``sum_j g_ij d_ij**2``; ``k`` steps add up to ``k tau**2``.
    4. mm-to-iterations rule: ``sigma = fwhm_mm / sqrt(8 ln 2)``; the largest step allowed keeps
       every self weight at 1/2 or more (``c <= 0.5 / max_i sum_j g_ij``, which keeps the
       spectrum of ``S`` in [0, 1]); ``k = ceil(sigma**2 / tau_max**2)``, then ``c`` is set so
       that ``k tau**2 = sigma**2`` exactly.

    Approximations: the variance matches on average over the mesh; where edges are shorter
    than average (e.g. pial sulcal fundi) the local kernel is narrower, where they are longer
    it is wider (on the fsaverage5 pial surface the per-step variance of 80 % of the vertices is
    0.7-1.2 times the mean), and at the 12 five-neighbour vertices of an icosahedral mesh the
    kernel is 10-12 % narrower. A FWHM below about the edge length is not resolved (one
    step of a one-ring average). Each vertex counts as one sample (no area weighting).

    Parameters
    ----------
    mesh : TemplateMesh
        The surface whose edge lengths (mm) set the kernel; use the surface the data were
        sampled on (pial, midthickness, white) rather than the inflated one.
    fwhm_mm : float
        Full width at half maximum of the Gaussian kernel along the surface, mm (0: none).
    medial_wall : ndarray of bool, shape (n_vertices,), optional
        True for vertices outside the cortex (the medial wall).

    Returns
    -------
    SurfaceSmoother
        Callable on ``(n_vertices,)`` or ``(n_vertices, n_frames)`` arrays; ``.step`` is the
        sparse one-step matrix, ``.matrix()`` the whole operator.
    """
    fwhm = float(check_number(fwhm_mm, "fwhm_mm", low=0.0, high=100.0, units="mm"))
    cortex = _cortex(mesh, medial_wall)
    edges = mesh_edges(mesh.faces)
    edges = edges[cortex[edges[:, 0]] & cortex[edges[:, 1]]]
    n = mesh.n_vertices
    identity = sp.identity(n, format="csr", dtype=np.float64)
    if fwhm == 0.0 or edges.shape[0] == 0:
        return SurfaceSmoother(identity, 0, fwhm, 0.0, 0.0)
    length2 = np.sum((mesh.coords_mm[edges[:, 0]] - mesh.coords_mm[edges[:, 1]]) ** 2, axis=1)
    scale = float(np.mean(np.sqrt(length2)))
    if scale == 0.0:
        raise InvalidImageError("Every cortical edge of the mesh has zero length: cannot smooth.")
    weight = np.exp(-length2 / (2.0 * scale**2))
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    weight_sum = np.bincount(ends, np.concatenate([weight, weight]), minlength=n)
    moment = np.bincount(ends, np.concatenate([weight * length2] * 2), minlength=n)
    mean_moment = float(np.mean(moment[weight_sum > 0]))
    sigma2 = (fwhm / _FWHM_PER_SIGMA) ** 2
    tau2_max = _MAX_NEIGHBOUR_WEIGHT / float(weight_sum.max()) * mean_moment / 2.0
    n_iterations = max(1, math.ceil(sigma2 / tau2_max))
    c = 2.0 * sigma2 / (n_iterations * mean_moment)
    rows = np.concatenate([edges[:, 0], edges[:, 1], np.arange(n)])
    cols = np.concatenate([edges[:, 1], edges[:, 0], np.arange(n)])
    values = np.concatenate([c * weight, c * weight, 1.0 - c * weight_sum])
    step = sp.csr_matrix((values, (rows, cols)), shape=(n, n))
    return SurfaceSmoother(step, n_iterations, fwhm, math.sqrt(sigma2 / n_iterations), scale)


def points_within(points_mm: np.ndarray, centre_mm: Sequence[float],
                  radius_mm: float) -> np.ndarray:
    """Points within a Euclidean distance of a centre (a vertex or voxel at ``radius_mm`` is in).

    Parameters
    ----------
    points_mm : ndarray, shape (n, 3)
        Positions, mm.
    centre_mm : sequence of 3 float
        x, y, z of the centre, mm, in the points' coordinates.
    radius_mm : float
        Radius, mm (0 < radius <= 200).

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    centre = np.asarray(centre_mm, dtype=np.float64)
    if centre.shape != (3,) or not np.all(np.isfinite(centre)):
        raise InvalidParameterError(f"centre_mm must be finite (x, y, z) in mm, got {centre_mm!r}.")
    radius = float(check_number(radius_mm, "radius_mm", low=0.0, low_inclusive=False,
                                high=200.0, units="mm"))
    return np.sum((np.asarray(points_mm, dtype=np.float64) - centre) ** 2, axis=1) <= radius**2


def vertices_within(mesh: TemplateMesh, centre_mm: Sequence[float],
                    radius_mm: float) -> np.ndarray:
    """Vertices within a Euclidean distance of a point.

    The distance is the straight line from the template-surface vertex to the centre, not a
    distance along the surface. fsaverage coordinates are approximately MNI305 (FreeSurfer's
    average space), not MNI152 in which the published targeting coordinates are given: the
    offset between the two is a few mm (about 2 mm near the sgACC and DLPFC coordinates by
    FreeSurfer's MNI152-to-MNI305 affine; locally more, Wu et al. 2018, Hum Brain Mapp
    39:3793), small against the 10-20 mm radii but not zero. fsLR coordinates are MNI152.

    Parameters
    ----------
    mesh : TemplateMesh
        The surface; its ``coords_mm`` are used as they are.
    centre_mm : sequence of 3 float
        x, y, z of the centre, mm, in the mesh's coordinates.
    radius_mm : float
        Radius, mm; a vertex at exactly ``radius_mm`` is inside.

    Returns
    -------
    ndarray of bool, shape (n_vertices,)
    """
    return points_within(mesh.coords_mm, centre_mm, radius_mm)


def _spheres_on_mesh(mesh: TemplateMesh, centres: Sequence[Sequence[float]], radius: float,
                     medial_wall: np.ndarray | None) -> np.ndarray:
    if len(centres) == 0:
        raise InvalidParameterError("A surface region needs at least one sphere centre.")
    mask = np.zeros(mesh.n_vertices, dtype=bool)
    for centre in centres:
        mask |= vertices_within(mesh, centre, radius)
    return mask & _cortex(mesh, medial_wall)


def _region_record(mesh: TemplateMesh, mask: np.ndarray, centres: list, radius: float,
                   **extra: object) -> dict:
    note = _COORDINATE_NOTES.get(mesh.space, _DEFAULT_COORDINATE_NOTE.format(space=mesh.space))
    return {"type": "spheres", **extra, "centers_mm": centres, "radius_mm": float(radius),
            "n_vertices": int(mask.sum()), "space": mesh.space, "hemisphere": mesh.hemisphere,
            "surface": mesh.kind, "coordinate_space": mesh.coordinate_space,
            "distance": SURFACE_DISTANCE, "coordinate_note": note}


def surface_seed(mesh: TemplateMesh, seed_region: str = "sgacc", *,
                 centres_mm: Sequence[Sequence[float]] | None = None,
                 radius_mm: float | None = None, medial_wall: np.ndarray | None = None,
                 allow_empty: bool = False) -> tuple[np.ndarray, dict]:
    """The seed ROI (default the sgACC sphere) as a vertex mask of one hemisphere's mesh.

    The same definition as the volume seed (:func:`tmsnet.targeting.regions.seed_mask`):
    ``"sgacc"`` is the 10 mm sphere at MNI (6, 16, -10) (Fox et al. 2012, Biol Psychiatry
    72:595), ``"sgacc-bilateral"`` its union with the left mirror (-6, 16, -10); the centres and
    radius come from :data:`tmsnet.targeting.regions.SEED_DEFINITIONS` and
    :func:`tmsnet.data.reference_coordinate`. A vertex is in the seed when its template-surface
    position lies in a sphere (see :func:`vertices_within` for the MNI305/MNI152 offset), so a
    sphere near the midline also reaches the other hemisphere's medial surface: take both
    hemispheres' seed vertices for the seed time series.

    Parameters
    ----------
    mesh : TemplateMesh
        One hemisphere's surface.
    seed_region : str
        A named seed (``"sgacc"``, ``"sgacc-bilateral"``).
    centres_mm : sequence of (x, y, z), optional
        Custom sphere centres in mm (override ``seed_region``).
    radius_mm : float, optional
        Sphere radius, mm (default: the named seed's, 10 mm).
    medial_wall : ndarray of bool, shape (n_vertices,), optional
        True for vertices outside the cortex; they are never in the seed.
    allow_empty : bool
        Return an empty mask instead of raising when no vertex of this hemisphere is in the
        seed (e.g. the left hemisphere of a right-sided seed on a white surface).

    Returns
    -------
    mask : ndarray of bool, shape (n_vertices,)
    description : dict
        ``type``, ``name``, ``centers_mm``, ``radius_mm``, ``n_vertices``, ``space``,
        ``hemisphere``, ``surface``, ``distance`` (``"Euclidean from the template surface"``)
        and ``coordinate_note`` (the keys of the volume seed's description, with
        ``n_vertices`` for ``n_voxels``).

    Raises
    ------
    EmptyRegionError
        If no vertex is in the seed and ``allow_empty`` is False.
    """
    if centres_mm is not None:
        centres = [np.asarray(c, dtype=np.float64).tolist() for c in centres_mm]
        name, default_radius = "custom", SEED_DEFINITIONS["sgacc"][1]
    else:
        check_option("seed_region", seed_region, SEED_DEFINITIONS)
        names, default_radius = SEED_DEFINITIONS[seed_region]
        centres = [reference_coordinate(n).tolist() for n in names]
        name = seed_region
    radius = default_radius if radius_mm is None else radius_mm
    mask = _spheres_on_mesh(mesh, centres, radius, medial_wall)
    record = _region_record(mesh, mask, centres, radius, name=name)
    if not mask.any() and not allow_empty:
        raise EmptyRegionError(
            f"The seed {name!r} (spheres of {radius:g} mm at {centres}) holds no cortical vertex "
            f"of the {mesh.hemisphere} {mesh.kind} mesh ({mesh.space}). A seed near the midline "
            "may lie on the other hemisphere only: pass allow_empty=True and take both "
            "hemispheres' vertices, or check the mesh's space.")
    return mask, record


def surface_search_region(mesh: TemplateMesh, *,
                          centres: Sequence[str] = STANDARD_DLPFC_TARGETS,
                          radius_mm: float = DEFAULT_SEARCH_RADIUS_MM,
                          medial_wall: np.ndarray | None = None,
                          allow_empty: bool = False) -> tuple[np.ndarray, dict]:
    """The left-DLPFC search region as a vertex mask.

    The union of 20 mm spheres at the four standard DLPFC targets (Fox et al. 2012 Table 1:
    5-cm rule, BA9, BA46, F3; contarg ``DLPFCspheres``), the same centres
    (:data:`tmsnet.data.STANDARD_DLPFC_TARGETS`) and radius
    (:data:`tmsnet.targeting.regions.DEFAULT_SEARCH_RADIUS_MM`) as the volume region
    (:func:`tmsnet.targeting.regions.dlpfc_search_mask`). The spheres are in the left
    hemisphere: use the left mesh. The surface replaces the volume's gray-matter restriction.

    Parameters
    ----------
    mesh : TemplateMesh
        The left hemisphere's surface.
    centres : sequence of str
        Names of reference coordinates (:func:`tmsnet.data.reference_coordinates`) used as
        sphere centres.
    radius_mm : float
        Sphere radius, mm.
    medial_wall : ndarray of bool, shape (n_vertices,), optional
        True for vertices outside the cortex; they are never in the region.
    allow_empty : bool
        Return an empty mask instead of raising when no vertex is in the region (e.g. the
        right hemisphere).

    Returns
    -------
    mask : ndarray of bool, shape (n_vertices,)
    description : dict
        ``type``, ``centers`` (names), ``centers_mm``, ``radius_mm``, ``n_vertices``, ``space``,
        ``hemisphere``, ``surface``, ``distance`` and ``coordinate_note``.

    Raises
    ------
    EmptyRegionError
        If no vertex is in the region and ``allow_empty`` is False.
    """
    centres_mm = [reference_coordinate(n).tolist() for n in centres]
    mask = _spheres_on_mesh(mesh, centres_mm, radius_mm, medial_wall)
    record = _region_record(mesh, mask, centres_mm, radius_mm, centers=list(centres))
    if not mask.any() and not allow_empty:
        raise EmptyRegionError(
            f"The DLPFC search spheres ({radius_mm:g} mm at {', '.join(centres)}) hold no "
            f"cortical vertex of the {mesh.hemisphere} {mesh.kind} mesh ({mesh.space}). The "
            "standard spheres are in the left hemisphere: use the left mesh, or check its space.")
    return mask, record
