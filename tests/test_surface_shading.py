"""The folding background of the report's surface views (:mod:`tmsnet.surface.shading`).

Truth: FreeSurfer's sulcal depth of fsaverage5 as nilearn ships it (an independent measure,
from the inflation), and a sphere with a planted dent. The convexity must rank the vertices
as minus the sulcal depth does, also when computed on a finer mesh of the same surface (the
fsaverage6-like stand-in: the kernel is in mm, not in edges); on a sphere it is flat, and a
dent is dark.
"""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.datasets import load_fsaverage_data
from scipy.stats import spearmanr

from reference_sphere_bem import icosphere
from tmsnet.surface.mesh import TemplateMesh, load_template_mesh
from tmsnet.surface.shading import convexity_mm, vertex_normals

RADIUS_MM = 70.0


def _minus_sulc(hemisphere):
    sulc = load_fsaverage_data(mesh="fsaverage5", mesh_type="pial", data_type="sulcal")
    return -np.asarray(sulc.data.parts[hemisphere], dtype=float)


@pytest.mark.parametrize("hemisphere", ["left", "right"])
def test_convexity_ranks_vertices_as_freesurfers_sulcal_depth(hemisphere):
    mesh = load_template_mesh("fsaverage5", hemisphere, "pial")
    rho = spearmanr(convexity_mm(mesh), _minus_sulc(hemisphere)).statistic
    assert rho >= 0.8                            # measured 0.87 (left)
    assert spearmanr(mesh.coords_mm[:, 2], _minus_sulc(hemisphere)).statistic < 0.3  # not height


def test_convexity_does_not_depend_on_the_mesh_resolution():
    from tmsnet.simulate.surface import _subdivided

    mesh = load_template_mesh("fsaverage5", "left", "pial")
    coords, faces = _subdivided(mesh.coords_mm, mesh.faces)
    fine = TemplateMesh(coords_mm=coords, faces=faces, space="fsaverage6", hemisphere="left")
    on_fine = convexity_mm(fine)[: mesh.n_vertices]          # the shared vertices come first
    assert spearmanr(on_fine, _minus_sulc("left")).statistic >= 0.8
    assert spearmanr(on_fine, convexity_mm(mesh)).statistic >= 0.95


def test_a_sphere_is_flat_and_a_dent_is_dark():
    unit, faces = icosphere(4)
    normals = vertex_normals(RADIUS_MM * unit, faces)
    assert np.einsum("ij,ij->i", normals, unit).min() > 0.999          # outward, unit length
    sphere = TemplateMesh(coords_mm=RADIUS_MM * unit, faces=faces, space="test", hemisphere="left")
    flat = convexity_mm(sphere)
    angle = np.degrees(np.arccos(np.clip(unit[:, 2], -1, 1)))        # from the north pole
    dent = np.where(angle < 15, 6.0 * np.cos(np.radians(angle) * 6) ** 2, 0.0)   # 6 mm deep
    dented = TemplateMesh(coords_mm=(RADIUS_MM - dent)[:, None] * unit, faces=faces,
                          space="test", hemisphere="left")
    values = convexity_mm(dented)
    pole, far = angle < 5, angle > 60
    assert np.ptp(flat) < 0.15 * np.ptp(values)   # no folding: 0.5 mm (uneven icosphere edges)
    assert values[pole].max() < np.percentile(values[far], 1) - 2.0   # the dent's floor: dark
    assert abs(np.median(values[far]) - np.median(flat[far])) < 1.0
