"""The voxel-head field solver (issue 17) against closed forms, the sphere kernel and a second method.

Grids here are coarse (2-4 mm) to keep the file quick; the 1 mm figures are in
``benchmarks/bench_realistic_efield.py`` (docs/benchmarks.md). Relative errors
are ``|E - E_ref| / |E_ref|`` over the brain voxels (GM and WM) where
``|E_ref|`` is at least 1 % of its brain maximum (this drops the few voxels
around the sphere centre, where the exact field vanishes).

Tolerances at 3 mm come from the convergence measured on the sphere phantom,
where the truth is known (``bench_realistic_efield.py --convergence``; median /
95th percentile over the brain, Magstim 70 mm coil at the vertex): 4 mm 6.7 % /
21.7 %, 3 mm 1.44 % / 12.9 %, 2 mm 1.10 % / 9.7 %, 1 mm 0.67 % / 5.1 %. The
issue's bound (3 % / 10 %) holds from 2 mm on. Here the sphere goes through the
whole path (written as fMRIPrep derivatives, rebuilt by the head-model rule,
whose CSF and skull layers are not exact spheres) at 3 mm, where it measured
2.1 % / 11.0 %: the test keeps the 3 % median and allows 15 % at the 95th
percentile, the errors of a voxel method within a voxel of a tissue boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyamg
import pytest
import scipy.sparse as sp

from test_physics_head_model import write_fmriprep_like
from tmsnet.exceptions import InvalidImageError, InvalidParameterError
from tmsnet.physics.coils import load_coil, read_ccd
from tmsnet.physics.efield import MU0_OVER_4PI, efield, transform_dipoles
from tmsnet.physics.head_model import (
    TISSUE_LABELS,
    Conductivities,
    ellipsoid_phantom,
    head_model_from_fmriprep,
    sphere_phantom,
)
from tmsnet.physics.volume_conductor import (
    SolverParameters,
    VolumeConductor,
    primary_field,
    reciprocal_field,
    solve_field,
)

#: The coil over the vertex: +z of the coil towards the head centre, its y axis along -y (posterior).
VERTEX = np.diag([1.0, -1.0, -1.0])
COIL = load_coil("fig8-70mm")
DRAKAKI = "../shared/data/coils/drakaki2022/MagVenture_Cool-B65.ccd"


def placed(coil, height_m, rotation=VERTEX, shift=(0.0, 0.0)):
    return transform_dipoles(coil.positions_m, coil.moments, rotation, np.array([*shift, height_m]))


def relative_error(field, reference, floor=0.01):
    norm = np.linalg.norm(reference, axis=1)
    keep = norm >= floor * norm.max()
    return np.linalg.norm(field - reference, axis=1)[keep] / norm[keep]


def assert_within(err, median, p95):
    """Median and 95th percentile of relative errors at most the given fractions."""
    measured = (float(np.median(err)), float(np.percentile(err, 95)))
    assert measured[0] <= median and measured[1] <= p95, measured


def brain_of(conductor):
    return conductor.labels[conductor.inside] >= TISSUE_LABELS["gm"]


@pytest.fixture(scope="module")
def sphere(tmp_path_factory):
    """The 3 mm layered sphere, written as fMRIPrep derivatives and built back (the whole path)."""
    folder = tmp_path_factory.mktemp("sphere_fmriprep")
    head = head_model_from_fmriprep(*write_fmriprep_like(sphere_phantom(3.0), folder).values())
    conductor = VolumeConductor(head.labels, head.affine)
    pos, mom = placed(COIL, 0.085)
    a = conductor.primary_field(pos, mom)
    brain = brain_of(conductor)
    reference = efield(conductor.cell_centres_m[brain], pos, mom)
    return {"head": head, "conductor": conductor, "a": a, "solution": conductor.solve(a), "brain": brain,
            "reference": reference, "dipoles": (pos, mom)}


def test_primary_field_is_the_dipole_vector_potential_and_its_curl_the_dipole_field():
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.05, 0.05, (40, 3))
    pos, mom = rng.uniform(0.1, 0.2, (7, 3)), rng.normal(size=(7, 3))
    d = points[:, None, :] - pos[None]
    cube = np.linalg.norm(d, axis=2)[..., None] ** 3
    direct = 1e6 * MU0_OVER_4PI * np.sum(np.cross(mom[None], d) / cube, axis=1)
    assert np.allclose(primary_field(points, pos, mom, didt_a_per_us=2.0), 2.0 * direct, rtol=1e-12)
    # curl A of one dipole is its magnetic field (mu0/4pi)(3 (m.u) u - m)/r^3: central differences.
    step = 1e-6
    curl = np.zeros(3)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        e = np.eye(3)
        da_k = primary_field(np.array([e[j] * step, -e[j] * step]), pos[:1], mom[:1])[:, k]
        da_j = primary_field(np.array([e[k] * step, -e[k] * step]), pos[:1], mom[:1])[:, j]
        curl[i] = (da_k[0] - da_k[1] - da_j[0] + da_j[1]) / (2 * step)
    r = -pos[0]
    u = r / np.linalg.norm(r)
    dipole_b = 1e6 * MU0_OVER_4PI * (3 * (mom[0] @ u) * u - mom[0]) / np.linalg.norm(r) ** 3
    assert np.allclose(curl, dipole_b, rtol=1e-5)
    with pytest.raises(InvalidParameterError, match="on a dipole"):
        primary_field(pos[:1], pos, mom)


def test_uniform_dbdt_in_a_homogeneous_ellipsoid_matches_the_closed_form():
    """E = dB/dt (a^2 y, -b^2 x, 0) / (a^2 + b^2) for dB/dt along z in an ellipsoid of semi-axes a, b (x, y).

    The potential k x y with k = (dB/dt / 2)(b^2 - a^2)/(a^2 + b^2) is harmonic and cancels the
    normal field on the ellipsoid; it does not depend on the third semi-axis.
    """
    head = ellipsoid_phantom(3.0)
    conductor = VolumeConductor(head.labels, head.affine, Conductivities(scalp=0.3, skull=0.3, csf=0.3,
                                                                         gm=0.3, wm=0.3))
    nodes = conductor.node_positions_m
    a = 0.5 * np.column_stack([-nodes[:, 1], nodes[:, 0], np.zeros(len(nodes))])  # dA/dt for dB/dt = 1 T/s
    solution = conductor.solve(a)
    c = conductor.cell_centres_m
    ax, by = 0.075, 0.095
    exact = np.column_stack([ax**2 * c[:, 1], -by**2 * c[:, 0], np.zeros(len(c))]) / (ax**2 + by**2)
    brain = brain_of(conductor)
    err = relative_error(solution.e_field[brain], exact[brain])
    # Measured 0.22 % / 0.34 %; without the boundary charges (E = -a) the error would be 22 %.
    assert_within(err, 0.005, 0.01)
    assert np.median(relative_error(-a_cells(conductor, a)[brain], exact[brain])) > 0.1


def a_cells(conductor, a_nodes):
    """Mean of the eight corner values: the primary field at the voxel centres."""
    out = np.zeros((conductor.n_cells, 3))
    for offset in np.ndindex(2, 2, 2):
        out += a_nodes[conductor.node_index[tuple((conductor.voxels + offset).T)]] / 8.0
    return out


def test_a_gradient_added_to_the_primary_field_changes_nothing(sphere):
    """E = -a - grad(phi) is gauge invariant; a uniform dA/dt induces no field in any conductor."""
    conductor, a = sphere["conductor"], sphere["a"]
    uniform = conductor.solve(np.tile([0.3, -0.2, 0.5], (conductor.n_nodes, 1)))
    assert np.max(np.linalg.norm(uniform.e_field, axis=1)) <= 1e-4 * np.linalg.norm([0.3, -0.2, 0.5])
    n = conductor.node_positions_m
    gradient = np.column_stack([2.0 * n[:, 0], 3.0 * n[:, 2], 3.0 * n[:, 1]])  # grad(x^2 + 3 y z)
    again = conductor.solve(a + gradient)
    e = sphere["solution"].e_field
    assert np.max(np.linalg.norm(again.e_field - e, axis=1)) <= 1e-5 * np.max(np.linalg.norm(e, axis=1))


def test_layered_sphere_matches_the_sphere_kernel_in_the_brain(sphere):
    solution, brain = sphere["solution"], sphere["brain"]
    err = relative_error(solution.e_field[brain], sphere["reference"])
    assert_within(err, 0.03, 0.15)
    # Chance baseline: the coil's own field -a, without the boundary charges, is far off.
    baseline = relative_error(-a_cells(sphere["conductor"], sphere["a"])[brain], sphere["reference"])
    assert np.median(baseline) > 0.3
    peak = int(np.argmax(np.linalg.norm(sphere["reference"], axis=1)))
    assert 1.0 < np.linalg.norm(sphere["reference"][peak]) < 2.0  # about 1.4 V/m per A/us at 1.5 cm
    assert solution.relative_residual <= 1e-6 and 5 <= solution.iterations <= 60


@pytest.mark.parametrize("change", [{"skull": 0.02}, {"skull": 0.005}, {"csf": 0.8}],
                         ids=["skull-x2", "skull-half", "csf-half"])
def test_the_sphere_field_does_not_depend_on_skull_or_csf_conductivity(sphere, change):
    head, base = sphere["head"], sphere["solution"]
    conductor = VolumeConductor(head.labels, head.affine, Conductivities(**change))
    solution = conductor.solve(sphere["a"])
    brain = sphere["brain"]
    err = relative_error(solution.e_field[brain], sphere["reference"])
    assert_within(err, 0.03, 0.15)
    shift = relative_error(solution.e_field[brain], base.e_field[brain])  # measured <= 0.6 % / 3.7 %
    assert_within(shift, 0.01, 0.06)


def test_the_field_scales_with_didt_from_the_newer_ccd_header(sphere):
    path = Path(__file__).parents[1] / DRAKAKI
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared Drakaki 2022 coil models are not on this machine)")
    coil = read_ccd(path)
    assert coil.didt_max_a_per_us is not None and coil.didt_max_a_per_us > 50
    head = sphere["head"]
    pos, mom = placed(coil, 0.085)
    full = solve_field(head.labels, head.affine, None, pos, mom, didt_a_per_us=coil.didt_max_a_per_us)
    unit = full.conductor.solve(full.conductor.primary_field(pos, mom))
    assert np.allclose(full.e_field, coil.didt_max_a_per_us * unit.e_field, rtol=1e-5,
                       atol=1e-6 * np.abs(full.e_field).max())
    brain = brain_of(full.conductor)
    err = relative_error(unit.e_field[brain], efield(full.conductor.cell_centres_m[brain], pos, mom))
    assert np.median(err) <= 0.03


def test_reciprocity_gives_the_target_field_of_any_coil_from_one_adjoint_solve(sphere):
    conductor, brain = sphere["conductor"], sphere["brain"]
    reference = sphere["reference"]
    target = np.flatnonzero(brain)[np.argsort(np.linalg.norm(reference, axis=1))[-5:]]  # a 5-voxel patch
    weights = np.zeros((conductor.n_cells, 3))
    weights[target] = np.array([0.0, 1.0, 0.0]) / len(target)
    kernel = conductor.reciprocal_kernel(weights)
    c, s = np.cos(0.3), np.sin(0.3)
    tilted = VERTEX @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])  # tipped 17 degrees about x
    for rotation, shift in ((VERTEX, (0.0, 0.0)), (tilted, (0.01, -0.02))):
        pos, mom = placed(COIL, 0.09, rotation, shift)
        direct = conductor.solve(conductor.primary_field(pos, mom)).e_field
        value = np.sum(weights * direct)
        assert np.sum(kernel * conductor.primary_field(pos, mom)) == pytest.approx(value, rel=1e-5)
        b = reciprocal_field(pos, conductor.node_positions_m, kernel)
        assert np.sum(mom * b) == pytest.approx(value, rel=1e-5)


def test_the_solution_does_not_depend_on_how_the_grid_is_stored(sphere):
    """Flipping and permuting the voxel axes (same world geometry) gives the same field."""
    head, base = sphere["head"], sphere["solution"]
    labels = np.transpose(head.labels[::-1], (1, 0, 2))
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, head.labels.shape[0] - 1
    permute = np.eye(4)[[1, 0, 2, 3]]
    affine = head.affine @ flip @ permute
    conductor = VolumeConductor(labels, affine)
    solution = conductor.solve(conductor.primary_field(*sphere["dipoles"]))
    order = np.lexsort(np.round(conductor.cell_centres_m * 1e5).T)
    base_order = np.lexsort(np.round(base.conductor.cell_centres_m * 1e5).T)
    scale = np.abs(base.e_field).max()
    assert np.allclose(solution.e_field[order], base.e_field[base_order], atol=1e-5 * scale)


@pytest.fixture(scope="module")
def fold():
    """The ellipsoid with a fold at 4 mm and 2 mm, coil over the fold, induced field across it."""
    pos, mom = placed(COIL, 0.087)
    out = {}
    for h in (4.0, 2.0):
        head = ellipsoid_phantom(h)
        conductor = VolumeConductor(head.labels, head.affine)
        out[h] = conductor.solve(conductor.primary_field(pos, mom))
    return out


def test_ellipsoid_with_a_fold_converges_under_grid_refinement(fold):
    """4 mm vs 2 mm at the 4 mm voxel centres (which are 2 mm voxel centres too).

    On the sphere the same pair differs by 6.3 % / 19.1 % (median / 95th percentile),
    tracking the 4 mm error against the kernel (6.7 % / 21.7 %); on the fold the
    difference measured 2.6 % / 19.4 %, and 0.83 % / 10.3 % for 2 mm vs 1 mm (the
    benchmark). Tolerance: 5 % / 25 %.
    """
    coarse, fine = fold[4.0], fold[2.0]
    key = {tuple(k): i for i, k in enumerate(np.round(fine.conductor.cell_centres_m * 1e4).astype(int))}
    coarse_keys = np.round(coarse.conductor.cell_centres_m * 1e4).astype(int)
    index = np.array([key.get(tuple(k), -1) for k in coarse_keys])
    lab_c = coarse.conductor.labels[coarse.conductor.inside]
    lab_f = fine.conductor.labels[fine.conductor.inside]
    same = (index >= 0) & (lab_c >= TISSUE_LABELS["gm"])
    same[same] &= lab_f[index[same]] == lab_c[same]
    diff = relative_error(coarse.e_field[same], fine.e_field[index[same]])
    assert_within(diff, 0.05, 0.25)


def test_the_normal_current_is_continuous_across_the_sulcal_wall(fold):
    """Across a flat CSF/GM wall, sigma E_normal is continuous: E_y(GM) / E_y(CSF) = 1.654 / 0.275.

    Measured 5.58 (-7 %) at 2 mm: the grey-matter value is the mean over the 2 mm next to the
    wall, where the normal field still changes; tolerance 10 %.
    """
    solution = fold[2.0]
    conductor = solution.conductor
    c = conductor.cell_centres_m * 1e3
    lab = conductor.labels[conductor.inside]
    top = 70.0 * np.sqrt(np.clip(1 - (c[:, 0] / 60) ** 2 - (c[:, 1] / 80) ** 2, 0, None))
    wall = (np.abs(c[:, 0]) <= 12) & (c[:, 2] <= top - 6) & (c[:, 2] >= top - 14)  # away from its ends
    csf = wall & (np.abs(c[:, 1]) < 1) & (lab == TISSUE_LABELS["csf"])
    gm = wall & (np.abs(np.abs(c[:, 1]) - 2) < 1) & (lab == TISSUE_LABELS["gm"])
    assert csf.sum() >= 10 and gm.sum() >= 20
    ratio = np.median(np.abs(solution.e_field[gm, 1])) / np.median(np.abs(solution.e_field[csf, 1]))
    assert ratio == pytest.approx(1.654 / 0.275, rel=0.1)


def q1_fem_field(labels, affine, conductivities, a_nodes):
    """Second method: trilinear hexahedral finite elements on the same voxels (27-point stencil).

    Nodes at the voxel corners (the solver's own node numbering, from ``VolumeConductor``),
    element stiffness by 2x2x2 Gauss quadrature, right-hand side ``-int sigma a . grad N``
    with ``a`` trilinear, E at the element centre; solved by pyamg's own solver (not the
    solver's preconditioned CG).
    """
    grid = VolumeConductor(labels, affine, conductivities)
    h = float(grid.spacing_m[0])
    corners = np.array(list(np.ndindex(2, 2, 2)))
    signs = 2.0 * corners - 1.0
    gauss = np.array(list(np.ndindex(2, 2, 2))) * (2 / np.sqrt(3)) - 1 / np.sqrt(3)
    stiffness, load = np.zeros((8, 8)), np.zeros((8, 8, 3))
    for p in gauss:
        shape = np.prod((1 + signs * p) / 2, axis=1)
        grad = np.stack([signs[:, d] / h * np.prod(np.delete((1 + signs * p) / 2, d, axis=1), axis=1)
                         for d in range(3)], axis=1)
        stiffness += grad @ grad.T * (h / 2) ** 3
        load += grad[:, None, :] * shape[None, :, None] * (h / 2) ** 3  # int grad N_i N_j
    nodes = grid.node_index[tuple((grid.voxels[:, None, :] + corners[None]).transpose(2, 0, 1))]
    sigma = conductivities.by_label()[labels[grid.inside]]
    n = grid.n_nodes
    rows, cols = np.repeat(nodes, 8, axis=1).ravel(), np.tile(nodes, (1, 8)).ravel()
    matrix = sp.coo_matrix(((sigma[:, None, None] * stiffness).ravel(), (rows, cols)), shape=(n, n)).tocsr()
    a_vox = a_nodes @ grid.axes
    drive = -(sigma[:, None] * np.einsum("ijd,ejd->ei", load, a_vox[nodes]))
    rhs = np.bincount(nodes.ravel(), drive.ravel(), n)
    matrix = (matrix + sp.csr_matrix(([matrix[0, 0]], ([0], [0])), shape=(n, n))).tocsr()  # ground node 0
    phi = pyamg.smoothed_aggregation_solver(matrix, symmetry="symmetric").solve(rhs, tol=1e-9, accel="cg")
    grad_centre = signs / (4 * h)
    e = -np.einsum("en,nd->ed", phi[nodes], grad_centre) - a_vox[nodes].mean(axis=1)
    return e @ grid.axes.T


def test_a_second_method_agrees_on_the_ellipsoid_with_a_fold():
    """Trilinear hexahedral FEM (another discretisation of the same problem) vs the solver at 3 mm.

    On the sphere at 3 mm the two are 2.2 % / 17.5 % (FEM) and 1.45 % / 13.0 % (this
    solver) from the kernel (median / 95th percentile); here their difference measured
    1.3 % / 7.6 % and is held to 3 % / 15 %.
    """
    head = ellipsoid_phantom(3.0)
    conductor = VolumeConductor(head.labels, head.affine)
    pos, mom = placed(COIL, 0.087)
    a = conductor.primary_field(pos, mom)
    ours = conductor.solve(a).e_field
    theirs = q1_fem_field(head.labels, head.affine, Conductivities(), a)
    brain = brain_of(conductor)
    diff = relative_error(ours[brain], theirs[brain])
    assert_within(diff, 0.03, 0.15)


def test_bad_grids_fields_and_unconverged_solves_are_refused(sphere):
    head = sphere["head"]
    sheared = head.affine.copy()
    sheared[0, 1] = 0.5
    with pytest.raises(InvalidImageError, match="sheared"):
        VolumeConductor(head.labels, sheared)
    with pytest.raises(InvalidImageError, match="no scalp"):
        VolumeConductor(np.where(head.labels == 1, 2, head.labels), head.affine)
    conductor = sphere["conductor"]
    with pytest.raises(InvalidParameterError, match="rows for"):
        conductor.solve(sphere["a"][:-1])
    with pytest.raises(InvalidParameterError, match="rows for"):
        conductor.reciprocal_kernel(np.zeros((3, 3)))
    stingy = VolumeConductor(head.labels, head.affine, parameters=SolverParameters(max_iterations=2))
    with pytest.raises(InvalidParameterError, match="did not converge"):
        stingy.solve(sphere["a"])
    with pytest.raises(InvalidParameterError, match="--fem-rtol"):
        SolverParameters(rtol=0.5)
