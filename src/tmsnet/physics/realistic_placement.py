"""E-field-guided coil placement in a voxel head (issue 17 item 3): reciprocity search, direct checks.

Given a head (:class:`~tmsnet.physics.volume_conductor.VolumeConductor`), a
coil and a target patch (a voxel mask, or the grey matter within
``patch_radius_mm`` of a point), :func:`search_placement`:

1. builds the linear functionals of the objective (``objective``):
   ``"normal"``: the patch mean of the field component along the inward
   cortical normal (:func:`~tmsnet.physics.realistic_geometry.cortical_normals`),
   one functional; ``"magnitude"``: the patch-mean field **vector** (three
   functionals, x, y, z), whose length ``|mean E|`` is the field component
   along the best single direction, ``max_d d . mean E``; with an avoidance
   mask, three more for the mean vector there;
2. solves one adjoint problem per functional (reciprocity) and tabulates ``b``
   where the coil's dipoles go (:mod:`tmsnet.physics.reciprocity_table`);
3. evaluates every placement: positions on the scalp within
   ``search_radius_mm`` of the scalp projection of the target
   (:func:`~tmsnet.physics.realistic_geometry.scalp_positions`), coil origin
   ``coil_distance_mm`` out along the scalp normal, +z into the head, angles
   ``0, angle_step_deg, ...`` below 360 in the convention of
   :func:`tmsnet.physics.placement.coil_rotation` (0: coil +y towards
   anterior, +y of the world);
4. re-solves the ``n_verify`` best placements directly and keeps the best by
   the direct objective; reports its field, the gain over the plain scalp
   projection with the clinical orientation
   (:func:`tmsnet.physics.placement.clinical_angle_deg`, also solved directly),
   and how far the fast values were from the direct ones.

Which objective is exact by reciprocity: the normal component (and any mean of
a fixed direction) is linear in the coil's field, so its fast value equals a
direct solve's up to the table and compression errors (tested within 1 %).
``mean |E|`` is not linear; the search ranks placements by ``|mean E|``, which
is exact by reciprocity and equals ``mean |E|`` for a patch where the field
keeps one direction (``|mean E| <= mean |E|``), then the direct solves of the
best candidates rank them by the true ``mean |E|``. With an avoidance mask the
objective is the TANS-style ratio on-target / off-target, ranked by the fast
ratio (off-target: ``|mean E|`` over the avoidance mask) and decided by the
direct ratio with ``mean |E|`` there.

Focality: the grey-matter volume where ``|E|`` is at least half its grey-matter
maximum (cm³).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tmsnet.exceptions import InvalidParameterError
from tmsnet.physics.coils import Coil
from tmsnet.physics.head_model import TISSUE_LABELS
from tmsnet.physics.placement import clinical_angle_deg, coil_rotation
from tmsnet.physics.realistic_geometry import (
    NORMAL_SURFACES,
    HeadSurface,
    cortical_normals,
    scalp_positions,
    scalp_projection,
    target_patch,
)
from tmsnet.physics.reciprocity_table import ReciprocityTable, compress_kernel
from tmsnet.physics.volume_conductor import FieldSolution, VolumeConductor
from tmsnet.utils.params import Parameters, param

__all__ = ["OBJECTIVES", "PlacementSearchParameters", "RealisticPlacement", "patch_measures",
           "search_placement", "solve_placement", "write_field_map"]

#: What the search maximises (module docstring).
OBJECTIVES = ("magnitude", "normal")
#: Floor of the off-target field in the on/off ratio (V/m per A/µs).
_RATIO_FLOOR = 1e-12


@dataclass(frozen=True)
class PlacementSearchParameters(Parameters):
    """Options of the realistic-head placement search (:func:`search_placement`)."""

    objective: str = param("magnitude", choices=OBJECTIVES, flag="--placement-objective",
                           help="maximise the patch-mean |E| or the patch-mean field along the inward "
                                "cortical normal")
    patch_radius_mm: float = param(5.0, units="mm", low=0.0, low_inclusive=False, high=50.0,
                                   help="target patch: grey matter within this distance of the target point")
    search_radius_mm: float = param(20.0, units="mm", low=0.0, high=80.0, flag="--search-radius",
                                    help="coil positions within this distance of the scalp projection")
    position_step_mm: float = param(2.0, units="mm", low=0.0, low_inclusive=False, high=20.0,
                                    flag="--position-step", help="grid step of the coil positions")
    angle_step_deg: float = param(5.0, units="degrees", low=0.0, low_inclusive=False, high=180.0,
                                  flag="--search-angle-step", help="step of the coil orientations")
    coil_distance_mm: float = param(0.0, units="mm", low=0.0, high=50.0, flag="--search-coil-distance",
                                    help="gap between scalp and coil bottom (hair, cap)")
    n_verify: int = param(4, low=0, high=100, flag="--verify-placements",
                          help="best placements of the fast search re-solved directly (0: the best only)")
    table_step_mm: float = param(3.0, units="mm", low=0.1, high=10.0, flag="--reciprocity-table-step",
                                 help="grid step of the reciprocity table")
    kernel_block_mm: float = param(4.0, units="mm", low=0.1, high=50.0,
                                   help="block edge of the compressed reciprocity kernel far from the target")
    kernel_exact_radius_mm: float = param(40.0, units="mm", low=0.0, high=500.0,
                                          help="reciprocity kernel kept node by node within this distance")
    normal_surface: str = param("pial", choices=NORMAL_SURFACES,
                                help="tissue boundary of the cortical normal (GM/CSF or GM/WM)")
    normal_smoothing_mm: float = param(2.0, units="mm", low=0.0, low_inclusive=False, high=20.0,
                                       help="smoothing of the brain mask before its gradient (the normal)")


def patch_measures(e_field: np.ndarray, cells: np.ndarray, normals: np.ndarray) -> dict[str, Any]:
    """Patch means of a field: ``|E|``, the inward-normal component and the vector.

    Parameters
    ----------
    e_field : array, shape (n_cells, 3)
        E at the head voxels (V/m per A/µs).
    cells : array of int, shape (n,)
        Rows of the patch.
    normals : array, shape (n, 3)
        Inward unit normals of those rows.

    Returns
    -------
    dict
        ``magnitude`` (mean |E|), ``normal`` (mean E . n), ``vector`` (mean E, list).
    """
    e = np.asarray(e_field)[cells]
    return {"magnitude": float(np.linalg.norm(e, axis=1).mean()),
            "normal": float(np.sum(e * normals, axis=1).mean()), "vector": e.mean(axis=0).tolist()}


def solve_placement(conductor: VolumeConductor, coil: Coil, rotation: Any, origin_mm: Any) -> FieldSolution:
    """Direct solve of one coil placement (world frame: rotation columns = coil axes, origin in mm)."""
    rot = np.asarray(rotation, dtype=float)
    pos = coil.positions_m @ rot.T + np.asarray(origin_mm, dtype=float) * 1e-3
    return conductor.solve(conductor.primary_field(pos, coil.moments @ rot.T))


@dataclass
class RealisticPlacement:
    """The chosen coil placement in a voxel head, its field and how it was found.

    Attributes
    ----------
    target_mm : numpy.ndarray, shape (3,)
        Centroid of the target patch (world mm).
    scalp_point_mm, coil_origin_mm : numpy.ndarray, shape (3,)
        Scalp point under the coil centre and the coil origin (mm).
    rotation : numpy.ndarray, shape (3, 3)
        Coil axes (columns x, y, z; z into the head), world frame.
    angle_deg : float
        Angle about the coil axis (:func:`tmsnet.physics.placement.coil_rotation`).
    objective : str
        ``"magnitude"`` or ``"normal"`` (and ``ratio`` when an avoidance mask was given).
    field : dict
        Direct-solve patch measures (:func:`patch_measures`, V/m per A/µs) and
        ``objective`` (the direct value of the objective).
    baseline : dict
        The same for the scalp projection with the clinical orientation, and its
        angle and position.
    gain : float
        Direct objective of the chosen placement over the baseline's; NaN when the
        baseline's is not positive (e.g. the clinical orientation drives the normal
        component the wrong way: compare ``field`` and ``baseline`` then).
    focality_cm3 : float
        Grey matter with |E| >= half its grey-matter maximum (cm³).
    scalp_to_cortex_mm : float
        Distance from the scalp point to the nearest grey-matter voxel centre (mm).
    checks : list of dict
        Fast and direct objective of every directly solved placement.
    n_placements : int
        Placements evaluated by the fast path.
    timings_s : dict
        Seconds per stage.
    patch : numpy.ndarray of bool
        The target patch on the label grid.
    solution : FieldSolution
        The field of the chosen placement.
    """

    target_mm: np.ndarray
    scalp_point_mm: np.ndarray
    coil_origin_mm: np.ndarray
    rotation: np.ndarray
    angle_deg: float
    objective: str
    field: dict[str, Any]
    baseline: dict[str, Any]
    gain: float
    focality_cm3: float
    scalp_to_cortex_mm: float
    checks: list[dict[str, Any]]
    n_placements: int
    timings_s: dict[str, float]
    patch: np.ndarray = field(repr=False)
    solution: FieldSolution = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (mm, V/m per A/µs, cm³)."""
        return {"target_mm": self.target_mm.tolist(), "scalp_point_mm": self.scalp_point_mm.tolist(),
                "coil_origin_mm": self.coil_origin_mm.tolist(), "rotation": self.rotation.tolist(),
                "angle_deg": self.angle_deg, "objective": self.objective, "field": self.field,
                "baseline": self.baseline, "gain": self.gain, "focality_cm3": self.focality_cm3,
                "scalp_to_cortex_mm": self.scalp_to_cortex_mm, "checks": self.checks,
                "n_placements": self.n_placements, "patch_voxels": int(self.patch.sum()),
                "timings_s": self.timings_s, "frame": "world (the label affine's mm frame)"}


def _functionals(conductor: VolumeConductor, rows: np.ndarray, normals: np.ndarray, objective: str,
                 avoid_rows: np.ndarray | None) -> np.ndarray:
    """Weights (k, n_cells, 3) of the linear functionals (module docstring)."""
    weights = []
    if objective == "normal":
        w = np.zeros((conductor.n_cells, 3))
        w[rows] = normals / len(rows)
        weights.append(w)
    groups = ([rows] if objective == "magnitude" else []) + ([] if avoid_rows is None else [avoid_rows])
    for group in groups:
        for axis in range(3):
            w = np.zeros((conductor.n_cells, 3))
            w[group, axis] = 1.0 / len(group)
            weights.append(w)
    return np.stack(weights)


def _fast_objective(values: np.ndarray, objective: str, ratio: bool) -> np.ndarray:
    on = np.linalg.norm(values[:, :3], axis=1) if objective == "magnitude" else values[:, 0]
    if not ratio:
        return on
    return on / np.maximum(np.linalg.norm(values[:, -3:], axis=1), _RATIO_FLOOR)


def _direct_objective(measures: dict[str, Any], objective: str, off: float | None) -> float:
    on = measures[objective]
    return on if off is None else on / max(off, _RATIO_FLOOR)


def _placements(surface: HeadSurface, target_mm: np.ndarray,
                params: PlacementSearchParameters) -> dict[str, np.ndarray]:
    """Scalp positions, rotations and origins of the search grid, plus the clinical baseline."""
    point, normal = scalp_projection(surface, target_mm)
    points, normals = scalp_positions(surface, point, normal, params.search_radius_mm,
                                      params.position_step_mm)
    angles = np.arange(0.0, 360.0 - 1e-9, params.angle_step_deg)
    rots = np.concatenate([coil_rotation(-n, angles) for n in normals])
    origins = np.repeat(points + params.coil_distance_mm * normals, len(angles), axis=0)
    side = normal[0] if abs(normal[0]) > 0.05 else 0.0  # as tmsnet.physics.placement's clinical rule
    clinical = clinical_angle_deg(-normal, side)
    return {"points": np.repeat(points, len(angles), axis=0), "rotations": rots, "origins_mm": origins,
            "angles": np.tile(angles, len(points)), "baseline_angle": np.array(clinical),
            "baseline_rotation": coil_rotation(-normal, clinical)[None],
            "baseline_origin_mm": (point + params.coil_distance_mm * normal)[None], "baseline_point": point}


def _distinct_best(score: np.ndarray, count: int) -> np.ndarray:
    order = np.argsort(-score, kind="stable")
    return order[:max(1, count)]


def _gm_focality_cm3(conductor: VolumeConductor, e_field: np.ndarray) -> float:
    gm = conductor.labels[conductor.inside] == TISSUE_LABELS["gm"]
    e = np.linalg.norm(e_field[gm], axis=1)
    voxel_cm3 = float(np.prod(conductor.spacing_m)) * 1e6
    return float(np.count_nonzero(e >= 0.5 * e.max())) * voxel_cm3


def _scalp_to_cortex_mm(conductor: VolumeConductor, point_mm: np.ndarray) -> float:
    gm = conductor.labels[conductor.inside] == TISSUE_LABELS["gm"]
    return float(np.min(np.linalg.norm(conductor.cell_centres_m[gm] * 1e3 - point_mm, axis=1)))


def _verify(conductor: VolumeConductor, coil: Coil, candidates: list[tuple[np.ndarray, np.ndarray, float]],
            rows: np.ndarray, normals: np.ndarray, objective: str,
            avoid_rows: np.ndarray | None) -> list[tuple[float, dict[str, Any], FieldSolution]]:
    """Direct solves of (rotation, origin_mm, fast value): (direct objective, measures, solution)."""
    out = []
    for rotation, origin, fast in candidates:
        solution = solve_placement(conductor, coil, rotation, origin)
        measures = patch_measures(solution.e_field, rows, normals)
        off = None
        if avoid_rows is not None:
            off = float(np.linalg.norm(solution.e_field[avoid_rows], axis=1).mean())
            measures["off_target_magnitude"] = off
        measures["objective"] = _direct_objective(measures, objective, off)
        measures["objective_fast"] = float(fast)
        out.append((measures["objective"], measures, solution))
    return out


def _rows_of(conductor: VolumeConductor, mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask)[conductor.inside])


def search_placement(conductor: VolumeConductor, coil: Coil, target: Any, *, avoid: Any = None,
                     parameters: PlacementSearchParameters | None = None) -> RealisticPlacement:
    """Search coil positions x orientations for the largest field in a target patch (module docstring).

    Parameters
    ----------
    conductor : VolumeConductor
        The head (labels, affine, conductivities), e.g.
        ``VolumeConductor(head.labels, head.affine)``.
    coil : Coil
        The coil model.
    target : array, shape (3,) or bool array on the label grid
        Target point (world mm; the patch is the grey matter within
        ``patch_radius_mm``) or the patch itself.
    avoid : bool array on the label grid, optional
        Avoidance region: the objective becomes on-target / off-target.
    parameters : PlacementSearchParameters, optional
        Search grid, objective and approximation options.

    Returns
    -------
    RealisticPlacement

    Raises
    ------
    InvalidParameterError
        For an empty patch or avoidance mask, or a search that leaves the scalp.
    """
    params = PlacementSearchParameters() if parameters is None else parameters
    clock = {"start": time.perf_counter()}
    patch = target_patch(conductor.labels, conductor.affine, target, params.patch_radius_mm)
    rows = _rows_of(conductor, patch)
    avoid_rows = None if avoid is None else _rows_of(conductor, np.asarray(avoid, dtype=bool) & ~patch)
    if avoid_rows is not None and avoid_rows.size == 0:
        raise InvalidParameterError("The avoidance mask holds no head voxel outside the target patch.")
    normals = cortical_normals(conductor.labels, conductor.affine, conductor.voxels[rows],
                               surface=params.normal_surface, smoothing_mm=params.normal_smoothing_mm)
    centre_mm = conductor.cell_centres_m[rows].mean(axis=0) * 1e3
    grid = _placements(HeadSurface(conductor.labels, conductor.affine), centre_mm, params)
    clock["geometry"] = time.perf_counter()
    weights = _functionals(conductor, rows, normals, params.objective, avoid_rows)
    kernels = np.stack([conductor.reciprocal_kernel(w) for w in weights])
    clock["adjoint solves"] = time.perf_counter()
    sources = compress_kernel(conductor.node_positions_m, kernels, centre_mm * 1e-3,
                              exact_radius_mm=params.kernel_exact_radius_mm, block_mm=params.kernel_block_mm)
    all_rots = np.concatenate([grid["rotations"], grid["baseline_rotation"]])
    all_origins = np.concatenate([grid["origins_mm"], grid["baseline_origin_mm"]]) * 1e-3
    table = ReciprocityTable(*sources, coil.positions_m, coil.moments, all_rots, all_origins,
                             params.table_step_mm)
    clock["table"] = time.perf_counter()
    score = _fast_objective(table.evaluate(all_rots, all_origins), params.objective, avoid_rows is not None)
    clock["fast evaluation"] = time.perf_counter()
    best = _distinct_best(score[:-1], params.n_verify)
    candidates = [(all_rots[i], all_origins[i] * 1e3, score[i]) for i in [*best, len(score) - 1]]
    checked = _verify(conductor, coil, candidates, rows, normals, params.objective, avoid_rows)
    clock["direct solves"] = time.perf_counter()
    base = checked.pop()
    pick = int(np.argmax([c[0] for c in checked]))
    _, measures, solution = checked[pick]
    i = int(best[pick])
    baseline = {**base[1], "angle_deg": float(grid["baseline_angle"]),
                "scalp_point_mm": grid["baseline_point"].tolist(),
                "rotation": grid["baseline_rotation"][0].tolist()}
    stages = list(clock)
    timings = {s: clock[s] - clock[p] for p, s in zip(stages, stages[1:], strict=False)}
    return RealisticPlacement(
        target_mm=centre_mm, scalp_point_mm=grid["points"][i], coil_origin_mm=grid["origins_mm"][i],
        rotation=all_rots[i], angle_deg=float(grid["angles"][i]),
        objective=params.objective + (" ratio" if avoid_rows is not None else ""), field=measures,
        baseline=baseline, gain=float(measures["objective"] / base[0]) if base[0] > 0 else float("nan"),
        focality_cm3=_gm_focality_cm3(conductor, solution.e_field),
        scalp_to_cortex_mm=_scalp_to_cortex_mm(conductor, grid["points"][i]),
        checks=[c[1] for c in checked] + [base[1]], n_placements=len(score) - 1,
        timings_s={**timings, "table_points": float(table.n_points)}, patch=patch, solution=solution)


def write_field_map(solution: FieldSolution, path: str | Path) -> Path:
    """Write |E| (V/m per A/µs, float32) on the label grid as NIfTI (atomically)."""
    import nibabel as nib

    from tmsnet.io.atomic import atomic_write_nifti

    magnitude = np.linalg.norm(solution.volume(), axis=-1).astype(np.float32)
    img = nib.Nifti1Image(magnitude, solution.conductor.affine)
    img.header.set_xyzt_units("mm")
    out = Path(path)
    atomic_write_nifti(out, img)
    return out
