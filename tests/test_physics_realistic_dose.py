"""Dose from the realistic field (issue 17 item 4) on the 3 mm layered sphere against the sphere kernel."""

from __future__ import annotations

import numpy as np
import pytest

from tmsnet.physics.coils import load_coil
from tmsnet.physics.dose import efield_matched_dose, stokes_adjusted_threshold
from tmsnet.physics.efield import efield, transform_dipoles
from tmsnet.physics.head_model import TISSUE_LABELS, sphere_phantom
from tmsnet.physics.realistic_dose import realistic_dose
from tmsnet.physics.realistic_placement import PlacementSearchParameters, search_placement
from tmsnet.physics.volume_conductor import VolumeConductor

COIL = load_coil("fig8-70mm")


def kernel_patch_mean(result, head):
    """Mean |E| by the analytic sphere kernel over the patch voxel centres, for the chosen placement."""
    ijk = np.argwhere(result.patch)
    points = (ijk @ head.affine[:3, :3].T + head.affine[:3, 3]) * 1e-3
    pos, mom = transform_dipoles(COIL.positions_m, COIL.moments, result.rotation,
                                 result.coil_origin_mm * 1e-3)
    return float(np.linalg.norm(efield(points, pos, mom), axis=1).mean())


def test_the_realistic_dose_matches_the_sphere_kernels_on_the_layered_sphere():
    head = sphere_phantom(3.0)
    conductor = VolumeConductor(head.labels, head.affine)
    xyz = (np.indices(head.labels.shape).reshape(3, -1).T @ head.affine[:3, :3].T + head.affine[:3, 3])
    radius = np.linalg.norm(xyz, axis=1).reshape(head.labels.shape)
    direction = np.array([0.5, 0.0, 0.8660254])
    along = (xyz @ direction).reshape(head.labels.shape)
    # the target: brain 58-63 mm from the centre (7-12 mm below the brain surface), 6 mm around the axis
    off_axis = np.sqrt(np.maximum(radius**2 - along**2, 0.0))
    deep = (radius >= 58.0) & (radius <= 63.0) & (off_axis <= 6.0) & (along > 0)
    deep &= head.labels >= TISSUE_LABELS["gm"]
    params = PlacementSearchParameters(search_radius_mm=0.0, angle_step_deg=90.0, n_verify=1,
                                       table_step_mm=3.0)
    target = search_placement(conductor, COIL, deep, parameters=params)
    m1 = search_placement(conductor, COIL, [0.0, 0.0, 68.0], parameters=params)
    dose = realistic_dose(50.0, target, m1, didt_max_a_per_us=100.0)
    truth = efield_matched_dose(50.0, kernel_patch_mean(m1, head), kernel_patch_mean(target, head))
    assert dose["efield_matched_percent"] == pytest.approx(truth, rel=0.08)
    assert dose["efield_matched_percent"] > 55.0  # the deeper target needs more than the threshold
    # depth: 15 mm from the scalp to the brain surface of the sphere, +- a 3 mm voxel
    assert abs(m1.scalp_to_cortex_mm - 15.0) <= 3.0 and abs(target.scalp_to_cortex_mm - 15.0) <= 3.0
    assert dose["stokes_percent"] == pytest.approx(
        stokes_adjusted_threshold(50.0, target.scalp_to_cortex_mm, m1.scalp_to_cortex_mm))
    assert dose["e_target_at_dose_v_per_m"] == pytest.approx(dose["e_m1_at_threshold_v_per_m"])
