"""The sgACC seed, the DLPFC search region and the mesh elements of a surface scan.

Step 4 of :mod:`tmsnet.targeting.surface_workflow`: the seed and search masks on the
scan's data vertices (the published centres and radii on the template surface,
:mod:`tmsnet.surface.mesh`), and the :class:`~tmsnet.targeting.methods.SurfaceElements`
the methods cluster with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.surface import HEMISPHERE_LABELS as HEMISPHERES
from tmsnet.surface.mesh import mesh_adjacency, surface_search_region, surface_seed
from tmsnet.targeting.methods import SurfaceElements

if TYPE_CHECKING:
    from tmsnet.io.surface import SurfaceBold
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


def surface_regions(bold: SurfaceBold, meshes: dict[str, TemplateMesh],
                    parameters: TargetingParameters
                    ) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """The seed and search masks on the data's vertices, and their records."""
    seed_region, search_region = parameters.seed_region, parameters.search_region
    if seed_region.seed_roi is not None or search_region.search_roi is not None:
        raise InvalidParameterError(
            "ROI image files (--seed-roi, --search-roi) are volumes; on the surface the seed "
            "and search region come from their centres and radii (label files: not yet).")
    seed, search = np.zeros(bold.vertex.size, bool), np.zeros(bold.vertex.size, bool)
    seed_info: dict[str, Any] = {}
    search_info: dict[str, Any] = {}
    coords = seed_region.seed_coordinates_mm
    custom_centres = None if coords is None else [coords]
    for hemi in HEMISPHERES:
        columns = np.flatnonzero(bold.hemisphere == hemi)
        mesh, vertex = meshes[hemi], bold.vertex[columns]
        wall = np.ones(mesh.coords_mm.shape[0], dtype=bool)
        wall[vertex] = False
        mask, seed_info[hemi] = surface_seed(
            mesh, seed_region.seed_region, centres_mm=custom_centres,
            radius_mm=seed_region.seed_radius_mm,
            medial_wall=wall, allow_empty=True)
        seed[columns] = mask[vertex]
        if hemi == "L":
            mask, search_info = surface_search_region(
                mesh, radius_mm=search_region.search_radius_mm, medial_wall=wall)
            search[columns] = mask[vertex]
    return seed, search, seed_info, search_info
