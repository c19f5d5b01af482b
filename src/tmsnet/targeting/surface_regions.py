"""The sgACC seed, the DLPFC search region and the mesh elements of a surface scan.

Step 4 of :mod:`tmsnet.targeting.surface_workflow`: the seed and search masks on the
scan's data vertices, and the :class:`~tmsnet.targeting.methods.SurfaceElements` the methods
cluster with. Each region is, in order of precedence:

* a **label file** given as ``seed_roi`` / ``search_roi`` (detected by its ending,
  :data:`tmsnet.io.surface_labels.LABEL_SUFFIXES`): the vertices of the label
  ``seed_label`` / ``search_label`` (:func:`tmsnet.io.surface_labels.select_label`), on
  the BOLD's mesh (same vertex count per hemisphere); its vertices on the medial wall (not
  in the data) are left out and counted. A label may cover both hemispheres;
* for the seed, custom sphere centres (``seed_coordinates_mm``), else the named seed; for the
  search region, the standard DLPFC spheres: the published centres and radii on the template
  surface (:func:`tmsnet.surface.mesh.surface_seed`, :func:`~tmsnet.surface.mesh.surface_search_region`).

The seed always comes from the cortical surface, also for CIFTI input. The sgACC (Brodmann
area 25) is cortex, and the fsLR-32k surface covers it: 81 right and 2 left cortical vertices
of the bundled midthickness lie within 10 mm of MNI (6, 16, -10). The volume part of an fsLR-91k
file holds subcortical structures only (accumbens, caudate, putamen, pallidum, thalamus,
amygdala, hippocampus, ventral diencephalon, brainstem, cerebellum), so its voxels within the
same sphere are ventral striatum (in the AAL2 atlas the sphere holds 131 right-caudate
voxels), a different region with its own connectivity. :func:`cifti_volume_seed` gives those
voxels for a deliberate choice; the job does not read the volume data yet.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from tmsnet.exceptions import EmptyRegionError, InvalidParameterError
from tmsnet.io.surface import HEMISPHERE_LABELS as HEMISPHERES
from tmsnet.io.surface_labels import (
    check_label_mesh,
    is_surface_label_file,
    load_surface_labels,
    select_label,
)
from tmsnet.surface.mesh import (
    mesh_adjacency,
    points_within,
    surface_search_region,
    surface_seed,
)
from tmsnet.targeting.methods import SurfaceElements
from tmsnet.targeting.regions import SeedRegion, seed_spheres

if TYPE_CHECKING:
    from tmsnet.io.surface import CiftiVolumePart, SurfaceBold
    from tmsnet.surface.mesh import TemplateMesh
    from tmsnet.targeting.workflow import TargetingParameters


def surface_elements(bold: SurfaceBold, meshes: dict[str, TemplateMesh]) -> SurfaceElements:
    """Coordinates, mesh adjacency, hemisphere and vertex of the scan's data vertices."""
    blocks = []
    coords = np.empty((bold.vertex.size, 3))
    for hemi in HEMISPHERES:
        columns = np.flatnonzero(bold.hemisphere == hemi)
        mesh = meshes[hemi]
        adjacency = mesh_adjacency(mesh.faces, mesh.coords_mm.shape[0])
        vertex = bold.vertex[columns]
        blocks.append(adjacency[vertex][:, vertex])
        coords[columns] = mesh.coords_mm[vertex]
    return SurfaceElements(coords_mm=coords, adjacency=sp.block_diag(blocks, format="csr"),
                           hemisphere=np.asarray(bold.hemisphere), vertex=np.asarray(bold.vertex))


def _refuse_volume_image(path: Path | None, flag: str) -> None:
    if path is not None and not is_surface_label_file(path):
        raise InvalidParameterError(
            f"{flag} {Path(path).name} is not a surface label file: on the surface a region file "
            "is a GIFTI label file (.label.gii, the left hemisphere's, with the right one beside "
            "it) or a CIFTI dense label file (.dlabel.nii) on the BOLD's mesh. Volume ROI images "
            "go with volume BOLD.")


def label_region(bold: SurfaceBold, path: str | Path, label: str | int | None,
                 role: str) -> tuple[np.ndarray, dict[str, Any]]:
    """A region from a label file, on the scan's data vertices.

    Parameters
    ----------
    bold : SurfaceBold
        The scan: its space, mesh sizes and data vertices.
    path : str or Path
        A ``.label.gii`` (left; the right one beside it) or ``.dlabel.nii``.
    label : str, int or None
        Name or value of the label (:func:`tmsnet.io.surface_labels.select_label`).
    role : str
        ``"seed"`` or ``"search region"``, for the messages.

    Returns
    -------
    mask : ndarray of bool, shape (n_data_vertices,)
    record : dict
        The label's record (:func:`~tmsnet.io.surface_labels.select_label`) with ``role``,
        ``space``, ``n_vertices`` (in the data, per hemisphere) and ``n_outside_data`` (label
        vertices on the medial wall or otherwise without usable signal).

    Raises
    ------
    SpaceError
        The label file is on another mesh (vertex count per hemisphere).
    EmptyRegionError
        No vertex of the label has usable signal.
    """
    labels = load_surface_labels(path)
    check_label_mesh(labels, bold.n_mesh_vertices, bold.space)
    masks, record = select_label(labels, label)
    mask = np.zeros(bold.vertex.size, dtype=bool)
    for hemi in HEMISPHERES:
        columns = np.flatnonzero(bold.hemisphere == hemi)
        mask[columns] = masks[hemi][bold.vertex[columns]]
    inside = {h: int(mask[bold.hemisphere == h].sum()) for h in HEMISPHERES}
    record.update(role=role, space=bold.space, n_vertices=inside,
                  n_outside_data={h: record["n_mesh_vertices"][h] - inside[h] for h in HEMISPHERES})
    if not mask.any():
        raise EmptyRegionError(
            f"The {role} label {record['names']} of {Path(path).name} holds "
            f"{sum(record['n_mesh_vertices'].values())} mesh vertices, none with usable signal in "
            "the BOLD (all on the medial wall or constant). Pick another label.")
    return mask, record


def _off_data(bold: SurfaceBold, mesh: TemplateMesh, hemi: str) -> tuple[np.ndarray, np.ndarray]:
    """The data columns of a hemisphere, and its mesh vertices without data (the medial wall)."""
    columns = np.flatnonzero(bold.hemisphere == hemi)
    wall = np.ones(mesh.n_vertices, dtype=bool)
    wall[bold.vertex[columns]] = False
    return columns, wall


def _sphere_seed(bold: SurfaceBold, meshes: dict[str, TemplateMesh],
                 seed_region: SeedRegion) -> tuple[np.ndarray, dict[str, Any]]:
    seed = np.zeros(bold.vertex.size, bool)
    info: dict[str, Any] = {}
    coords = seed_region.seed_coordinates_mm
    for hemi in HEMISPHERES:
        columns, wall = _off_data(bold, meshes[hemi], hemi)
        mask, info[hemi] = surface_seed(
            meshes[hemi], seed_region.seed_region,
            centres_mm=None if coords is None else list(coords),
            radius_mm=seed_region.seed_radius_mm, medial_wall=wall, allow_empty=True)
        seed[columns] = mask[bold.vertex[columns]]
    if not seed.any():
        raise EmptyRegionError(
            f"The seed ({info['L']['centers_mm']}, {info['L']['radius_mm']:g} mm) holds no "
            f"vertex with usable signal on either hemisphere of the {bold.space} mesh. Check "
            "the seed coordinates (mm, in the mesh's space) or give a seed label file.")
    return seed, info


def _sphere_search(bold: SurfaceBold, meshes: dict[str, TemplateMesh],
                   radius_mm: float) -> tuple[np.ndarray, dict[str, Any]]:
    search = np.zeros(bold.vertex.size, bool)
    columns, wall = _off_data(bold, meshes["L"], "L")
    mask, info = surface_search_region(meshes["L"], radius_mm=radius_mm, medial_wall=wall)
    search[columns] = mask[bold.vertex[columns]]
    return search, info


def surface_regions(bold: SurfaceBold, meshes: dict[str, TemplateMesh],
                    parameters: TargetingParameters
                    ) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """The seed and search masks on the data's vertices, and their records.

    Label files (``seed_roi``, ``search_roi``) take precedence over spheres (module
    docstring). The records: for spheres as before (the seed's per hemisphere, ``{"L": ...,
    "R": ...}``; the search region's of the left mesh); for a label file the record of
    :func:`label_region`.
    """
    seed_region, search_region = parameters.seed_region, parameters.search_region
    _refuse_volume_image(seed_region.seed_roi, "--seed-roi")
    _refuse_volume_image(search_region.search_roi, "--search-roi")
    if seed_region.seed_roi is not None:
        seed, seed_info = label_region(bold, seed_region.seed_roi, seed_region.seed_label, "seed")
    else:
        seed, seed_info = _sphere_seed(bold, meshes, seed_region)
    if search_region.search_roi is not None:
        search, search_info = label_region(bold, search_region.search_roi,
                                           search_region.search_label, "search region")
    else:
        search, search_info = _sphere_search(bold, meshes, search_region.search_radius_mm)
    return seed, search, seed_info, search_info


def cifti_volume_seed(volume: CiftiVolumePart,
                      seed_region: SeedRegion | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The seed spheres on the volume grayordinates of a CIFTI file.

    Voxels of :func:`tmsnet.io.surface.load_cifti_volume_part` whose centres lie within the
    seed radius of the seed centres (the named seed's published coordinates, or
    ``seed_coordinates_mm``), in the file's volume coordinates (fMRIPrep's fsLR CIFTI:
    MNI152NLin6Asym, where the published MNI152 coordinates apply). Not the default seed (see
    the module docstring: these voxels are subcortical).

    Parameters
    ----------
    volume : CiftiVolumePart
        The volume part of a dtseries.
    seed_region : SeedRegion, optional
        Named seed, custom centres and radius (default: the sgACC, 10 mm).

    Returns
    -------
    mask : ndarray of bool, shape (n_volume_voxels,)
        Over ``volume.columns``.
    record : dict
        ``type`` (``"cifti_volume_spheres"``), ``name``, ``centers_mm``, ``radius_mm``,
        ``n_voxels``, ``structures`` (voxels per CIFTI structure) and ``path``.

    Raises
    ------
    EmptyRegionError
        If no volume grayordinate lies in the seed.
    """
    name, centres, radius = seed_spheres(SeedRegion() if seed_region is None else seed_region)
    mask = np.zeros(volume.n_voxels, dtype=bool)
    for centre in centres:
        mask |= points_within(volume.coords_mm, centre, radius)
    structures = Counter(str(s).removeprefix("CIFTI_STRUCTURE_") for s in volume.structure[mask])
    record = {"type": "cifti_volume_spheres", "name": name, "centers_mm": centres,
              "radius_mm": radius, "n_voxels": int(mask.sum()),
              "structures": dict(sorted(structures.items())), "path": str(volume.path)}
    if not mask.any():
        raise EmptyRegionError(
            f"No volume grayordinate of {volume.path.name} lies within {radius:g} mm of "
            f"{centres}: the seed is on the cortical surface there (the default).")
    return mask, record
