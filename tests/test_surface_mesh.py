"""Surface geometry (issue 15): meshes, adjacency, clusters, smoothing and surface regions.

Closed forms on an icosphere built here (an icosahedron subdivided five times: 10242 vertices,
20480 faces, radius 100 mm), the fsaverage5 meshes shipped inside nilearn, and one real
resting-state scan on fsaverage5 (LEMON sub-010188, ``../shared/data/lemon_fsaverage5``).
"""

from __future__ import annotations

import socket
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.optimize import curve_fit

from tmsnet.exceptions import (
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    SpaceError,
)
from tmsnet.surface import mesh as surface_mesh
from tmsnet.surface.mesh import (
    TemplateMesh,
    connected_clusters,
    load_mesh_file,
    load_template_mesh,
    mesh_adjacency,
    mesh_edges,
    smoothing_operator,
    surface_search_region,
    surface_seed,
    vertices_within,
)

RADIUS_MM = 100.0
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEMON = SHARED_DATA / "lemon_fsaverage5"
SURFACES = SHARED_DATA / "surfaces"

# Typed from REFERENCES.md section 1 (MNI152, mm), not taken from the code.
SGACC_RIGHT = (6.0, 16.0, -10.0)
SGACC_LEFT = (-6.0, 16.0, -10.0)
SGACC_RADIUS_MM = 10.0
DLPFC_CENTRES = ((-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0), (-37.0, 26.0, 49.0))
DLPFC_RADIUS_MM = 20.0
PCC_PRECUNEUS = (0.0, -52.0, 26.0)


def _icosphere(n_subdivisions: int = 5, radius: float = RADIUS_MM) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (on a sphere of ``radius`` mm) and outward faces of a subdivided icosahedron."""
    t = (1.0 + 5.0**0.5) / 2.0
    vertices = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
                        dtype=float)
    faces = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9],
                      [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2],
                      [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
                      [8, 6, 7], [9, 8, 1]])
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    for _ in range(n_subdivisions):
        pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        middle = vertices[unique[:, 0]] + vertices[unique[:, 1]]
        middle /= np.linalg.norm(middle, axis=1, keepdims=True)
        ab, bc, ca = (inverse.reshape(3, -1) + len(vertices))
        vertices = np.vstack([vertices, middle])
        a, b, c = faces.T
        faces = np.vstack([np.c_[a, ab, ca], np.c_[b, bc, ab], np.c_[c, ca, bc], np.c_[ab, bc, ca]])
    return vertices * radius, faces


@pytest.fixture(scope="module")
def sphere() -> TemplateMesh:
    coords, faces = _icosphere()
    return TemplateMesh(coords, faces, space="icosphere", hemisphere="left", kind="sphere")


def _great_circle_mm(coords: np.ndarray, vertex: int) -> np.ndarray:
    unit = coords / np.linalg.norm(coords, axis=1, keepdims=True)
    return RADIUS_MM * np.arccos(np.clip(unit @ unit[vertex], -1.0, 1.0))


def _nearest_vertex(coords: np.ndarray, direction) -> int:
    direction = np.asarray(direction, float)
    return int(np.argmax(coords @ (direction / np.linalg.norm(direction))))


def _measured_fwhm_mm(profile: np.ndarray, distance: np.ndarray, expected: float) -> tuple[float, float]:
    """FWHM of a Gaussian fitted to the profile along the surface, and from its second moment."""
    near = distance < 3.0 * expected

    def gaussian(d, amplitude, sigma):
        return amplitude * np.exp(-d**2 / (2.0 * sigma**2))

    (_, sigma), _ = curve_fit(gaussian, distance[near], profile[near],
                              p0=(profile.max(), expected / 2.355))
    fit = np.sqrt(8.0 * np.log(2.0)) * abs(sigma)
    # Two tangent axes: the mean squared distance is 2 sigma^2.
    moment = np.sqrt(8.0 * np.log(2.0) * np.sum(profile * distance**2) / (2.0 * profile.sum()))
    return float(fit), float(moment)


# ---------------------------------------------------------------- closed forms on the icosphere

def test_icosphere_adjacency_closed_forms(sphere):
    adjacency = mesh_adjacency(sphere.faces, sphere.n_vertices)
    assert sphere.n_vertices == 10242 and sphere.n_faces == 20480
    assert adjacency.dtype == bool and adjacency.shape == (10242, 10242)
    assert (adjacency != adjacency.T).nnz == 0
    assert adjacency.diagonal().sum() == 0
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    assert set(np.unique(degree)) == {5, 6}
    assert np.sum(degree == 5) == 12                       # the icosahedron's own vertices
    n_edges = 3 * sphere.n_faces // 2
    assert mesh_edges(sphere.faces).shape == (n_edges, 2)
    assert adjacency.nnz == 2 * n_edges
    assert sphere.n_vertices - n_edges + sphere.n_faces == 2   # Euler, closed genus-0 surface


def test_clusters_of_two_planted_patches(sphere):
    north = vertices_within(sphere, (0.0, 0.0, RADIUS_MM), 25.0)
    south = vertices_within(sphere, (0.0, 0.0, -RADIUS_MM), 15.0)
    lonely = _nearest_vertex(sphere.coords_mm, (1.0, 0.0, 0.0))
    mask = north | south
    mask[lonely] = True
    labels = connected_clusters(mask, mesh_adjacency(sphere.faces, sphere.n_vertices))
    assert north.sum() > south.sum() > 1
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert np.all(labels[north] == 1) and np.all(labels[south] == 2) and labels[lonely] == 3
    assert np.sum(labels == 1) == north.sum() and np.sum(labels == 2) == south.sum()
    assert np.all(labels[~mask] == 0)
    assert not connected_clusters(np.zeros(sphere.n_vertices, bool),
                                  mesh_adjacency(sphere.faces, sphere.n_vertices)).any()


@pytest.mark.parametrize("fwhm_mm", [6.0, 10.0])
def test_smoothing_a_delta_gives_the_requested_fwhm_along_the_sphere(sphere, fwhm_mm):
    smoother = smoothing_operator(sphere, fwhm_mm)
    vertex = _nearest_vertex(sphere.coords_mm, (0.3, 0.5, 0.8))
    delta = np.zeros(sphere.n_vertices)
    delta[vertex] = 1.0
    profile = smoother(delta)
    fit, moment = _measured_fwhm_mm(profile, _great_circle_mm(sphere.coords_mm, vertex), fwhm_mm)
    print(f"FWHM {fwhm_mm} mm: {smoother.n_iterations} iterations, Gaussian fit {fit:.2f} mm, "
          f"second moment {moment:.2f} mm")
    assert profile.sum() == pytest.approx(1.0, abs=1e-12)
    assert profile.min() >= 0.0
    assert abs(fit - fwhm_mm) <= 0.10 * fwhm_mm
    assert abs(moment - fwhm_mm) <= 0.10 * fwhm_mm


def test_smoothing_keeps_a_constant_and_is_a_symmetric_stochastic_step(sphere):
    smoother = smoothing_operator(sphere, 8.0)
    step = smoother.step
    assert (abs(step - step.T) > 1e-15).nnz == 0 and step.min() >= 0.0
    np.testing.assert_allclose(np.asarray(step.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    assert smoother.step.diagonal().min() >= 0.5
    np.testing.assert_allclose(smoother(np.full(sphere.n_vertices, 3.5)), 3.5, rtol=1e-12)
    sigma = 8.0 / np.sqrt(8.0 * np.log(2.0))
    assert smoother.n_iterations * smoother.step_sigma_mm**2 == pytest.approx(sigma**2)
    frames = np.random.default_rng(0).standard_normal((sphere.n_vertices, 3))
    smoothed = smoother(frames)
    np.testing.assert_allclose(smoothed[:, 1], smoother(frames[:, 1]), atol=1e-12)
    np.testing.assert_allclose(smoother.matrix() @ frames, smoothed, atol=1e-12)
    none = smoothing_operator(sphere, 0.0)
    assert none.n_iterations == 0 and np.array_equal(none(frames), frames)
    with pytest.raises(InvalidImageError, match="10242"):
        smoother(frames[:10])
    with pytest.raises(InvalidParameterError, match="fwhm_mm"):
        smoothing_operator(sphere, -1.0)


def test_medial_wall_neither_gives_nor_receives_weight(sphere):
    wall = vertices_within(sphere, (0.0, 0.0, RADIUS_MM), 30.0)
    smoother = smoothing_operator(sphere, 10.0, medial_wall=wall)
    adjacency = mesh_adjacency(sphere.faces, sphere.n_vertices)
    border = np.flatnonzero(~wall & (adjacency @ wall))      # cortex vertices touching the wall
    delta = np.zeros(sphere.n_vertices)
    delta[border[0]] = 1.0
    spread = smoother(delta)
    assert np.all(spread[wall] == 0.0)
    assert spread.sum() == pytest.approx(1.0, abs=1e-12)
    field = np.where(wall, 1000.0, 2.0)
    smoothed = smoother(field)
    np.testing.assert_array_equal(smoothed[wall], 1000.0)
    np.testing.assert_allclose(smoothed[~wall], 2.0, rtol=1e-12)


def test_a_mesh_file_round_trip_and_its_errors(sphere, tmp_path):
    path = tmp_path / "sphere.surf.gii"
    meta = {"AnatomicalStructurePrimary": "CortexRight", "AnatomicalStructureSecondary": "Sphere"}
    nib.save(nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(sphere.coords_mm.astype(np.float32), intent="pointset",
                                 meta=meta),
        nib.gifti.GiftiDataArray(sphere.faces.astype(np.int32), intent="triangle")]), path)
    loaded = load_mesh_file(path, "icosphere", "rh")
    assert (loaded.hemisphere, loaded.kind, loaded.space) == ("right", "sphere", "icosphere")
    assert np.array_equal(loaded.faces, sphere.faces)
    np.testing.assert_allclose(loaded.coords_mm, sphere.coords_mm, atol=1e-4)
    assert not loaded.coords_mm.flags.writeable
    with pytest.raises(SpaceError, match="CortexRight"):
        load_mesh_file(path, "icosphere", "left")
    with pytest.raises(InputFileNotFoundError):
        load_mesh_file(tmp_path / "missing.gii", "icosphere", "left")
    (tmp_path / "text.gii").write_text("not a surface")
    with pytest.raises(InvalidImageError):
        load_mesh_file(tmp_path / "text.gii", "icosphere", "left")
    with pytest.raises(InvalidImageError, match="vertices"):
        TemplateMesh(sphere.coords_mm, sphere.faces + 1, "icosphere", "left")


# ---------------------------------------------------------------- fsaverage5 from nilearn

@pytest.fixture(scope="module")
def fsaverage5() -> dict[str, TemplateMesh]:
    return {h: load_template_mesh("fsaverage5", h) for h in ("left", "right")}


def test_fsaverage5_loads_from_nilearns_package_without_network(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_template_mesh tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    surface_mesh._fsaverage5_mesh.cache_clear()
    for hemisphere in ("left", "right"):
        for kind in ("pial", "white_matter"):
            mesh = load_template_mesh("fsaverage5", hemisphere, kind)
            assert mesh.n_vertices == 10242 and mesh.n_faces == 20480
            assert (mesh.space, mesh.hemisphere, mesh.kind) == ("fsaverage5", hemisphere, kind)
            assert mesh.coords_mm.dtype == np.float64
    left, right = load_template_mesh("fsaverage5", "lh"), load_template_mesh("fsaverage5", "rh")
    assert np.median(left.coords_mm[:, 0]) < 0 < np.median(right.coords_mm[:, 0])


def test_unknown_template_space_says_what_is_available():
    with pytest.raises(SpaceError, match="fsaverage5, fsLR") as info:
        load_template_mesh("fsLR32k", "left")
    assert "load_mesh_file" in str(info.value)
    with pytest.raises(InvalidParameterError, match="kind"):
        load_template_mesh("fsaverage5", "left", "midthickness")
    with pytest.raises(InvalidParameterError, match="hemisphere"):
        load_template_mesh("fsaverage5", "both")


def test_dlpfc_search_region_on_the_left_pial_surface(fsaverage5):
    left = fsaverage5["left"]
    mask, record = surface_search_region(left)
    points = left.coords_mm[mask]
    print(f"DLPFC search region: {mask.sum()} of {left.n_vertices} left pial vertices")
    assert mask.sum() > 100
    assert np.all(points[:, 0] < 0)
    distance = np.linalg.norm(points[:, None, :] - np.array(DLPFC_CENTRES)[None], axis=2)
    assert np.all(distance.min(axis=1) <= DLPFC_RADIUS_MM)
    assert record["centers_mm"] == [list(c) for c in DLPFC_CENTRES]
    assert record["radius_mm"] == DLPFC_RADIUS_MM and record["n_vertices"] == mask.sum()
    assert record["space"] == "fsaverage5" and record["distance"] == "Euclidean from the template surface"
    wall = left.coords_mm[:, 1] > 30.0                     # any mask: it is excluded
    walled, _ = surface_search_region(left, medial_wall=wall)
    assert np.array_equal(walled, mask & ~wall)
    with pytest.raises(EmptyRegionError, match="left hemisphere"):
        surface_search_region(fsaverage5["right"])
    empty, empty_record = surface_search_region(fsaverage5["right"], allow_empty=True)
    assert not empty.any() and empty_record["n_vertices"] == 0


def test_sgacc_seed_vertices_lie_in_the_published_spheres(fsaverage5):
    for seed_region, centres in (("sgacc", [SGACC_RIGHT]),
                                 ("sgacc-bilateral", [SGACC_RIGHT, SGACC_LEFT])):
        counts = {}
        for hemisphere, mesh in fsaverage5.items():
            mask, record = surface_seed(mesh, seed_region, allow_empty=True)
            assert record["centers_mm"] == [list(c) for c in centres]
            assert record["radius_mm"] == SGACC_RADIUS_MM
            assert record["name"] == seed_region and record["hemisphere"] == hemisphere
            distance = np.linalg.norm(mesh.coords_mm[mask][:, None] - np.array(centres)[None], axis=2)
            assert np.all(distance.min(axis=1) <= SGACC_RADIUS_MM)
            counts[hemisphere] = int(mask.sum())
        print(f"{seed_region} seed vertices on the pial surfaces: {counts}")
        assert counts["right"] > 0
    custom, record = surface_seed(fsaverage5["right"], centres_mm=[(6, 16, -10)], radius_mm=5.0)
    assert record["name"] == "custom" and record["radius_mm"] == 5.0 and custom.sum() < counts["right"]
    with pytest.raises(EmptyRegionError, match="allow_empty"):
        surface_seed(fsaverage5["right"], centres_mm=[(60, -90, 80)])
    with pytest.raises(InvalidParameterError, match="seed_region"):
        surface_seed(fsaverage5["right"], "amygdala")


def test_conte69_fslr_mesh_file_reads_when_present():
    path = SURFACES / "conte69_32k_lh.gii"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared template surfaces are not on this machine)")
    mesh = load_mesh_file(path, "fsLR32k", "left")
    assert (mesh.n_vertices, mesh.kind, mesh.hemisphere) == (32492, "midthickness", "left")
    cortex = np.loadtxt(SURFACES / "conte69_32k_lh_mask.csv") > 0
    mask, record = surface_search_region(mesh, medial_wall=~cortex)
    assert mask.sum() > 0 and "fsLR32k" in record["coordinate_note"]


# ---------------------------------------------------------------- a real scan (LEMON, fsaverage5)

def _lemon_clean_bold() -> dict[str, np.ndarray]:
    """(n_vertices, 652) per hemisphere: 29 confounds and the mean removed by least squares."""
    stem = "sub-010188_ses-02_task-rest_acq-AP_run-01"
    confounds = np.loadtxt(LEMON / f"{stem}_confounds.txt")
    design = np.column_stack([np.ones(confounds.shape[0]), confounds])
    bold = {}
    for hemisphere, tag in (("left", "lh"), ("right", "rh")):
        data = np.asarray(nib.load(LEMON / f"{stem}.fsa5.{tag}.mgz").dataobj, dtype=np.float64)
        assert data.shape == (10242, 1, 1, 652) and confounds.shape == (652, 29)
        series = data.reshape(10242, 652).T
        beta, *_ = np.linalg.lstsq(design, series, rcond=None)
        bold[hemisphere] = (series - design @ beta).T
    return bold


def test_real_sgacc_map_on_fsaverage5_has_the_default_mode_structure(fsaverage5):
    if not LEMON.is_dir():
        pytest.skip(f"{LEMON} is absent (the shared LEMON surface scan is not on this machine)")
    bold = _lemon_clean_bold()
    wall = {h: bold[h].std(axis=1) == 0 for h in bold}     # ~885 constant medial-wall vertices
    seed = {h: surface_seed(fsaverage5[h], medial_wall=wall[h], allow_empty=True)[0] for h in bold}
    seed_series = np.concatenate([bold[h][seed[h]] for h in bold]).mean(axis=0)
    seed_series = (seed_series - seed_series.mean()) / seed_series.std()

    def correlation(h):
        series = bold[h]
        scale = np.where(wall[h], np.inf, series.std(axis=1))
        return (series - series.mean(axis=1, keepdims=True)) @ seed_series / scale / series.shape[1]

    r = {h: correlation(h) for h in bold}
    pcc = {h: vertices_within(fsaverage5[h], PCC_PRECUNEUS, 12.0) & ~wall[h] for h in bold}
    dlpfc, _ = surface_search_region(fsaverage5["left"], medial_wall=wall["left"])
    r_pcc = float(np.concatenate([r[h][pcc[h]] for h in bold]).mean())
    r_dlpfc = float(r["left"][dlpfc].mean())
    print(f"seed vertices {({h: int(seed[h].sum()) for h in bold})}, PCC/precuneus vertices "
          f"{({h: int(pcc[h].sum()) for h in bold})}: mean r PCC/precuneus {r_pcc:.3f}, "
          f"DLPFC search region ({int(dlpfc.sum())} vertices) {r_dlpfc:.3f}")
    assert seed["right"].sum() >= 10 and all(pcc[h].sum() >= 50 for h in bold)
    assert all(np.all(np.abs(fsaverage5[h].coords_mm[pcc[h], 0]) <= 12.0) for h in bold)
    # Seen on this scan: 0.446 and 0.104 (no global-signal regression, no band-pass).
    assert r_pcc > 0.3
    assert r_pcc - r_dlpfc > 0.25
