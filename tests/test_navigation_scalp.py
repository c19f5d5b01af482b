"""Head surfaces, scalp projection, depth and 10-10 labels on phantoms with known geometry."""

import nibabel as nib
import numpy as np
import pytest

from tmsnet.exceptions import InvalidImageError, InvalidParameterError
from tmsnet.navigation.scalp import (
    electrode_table,
    electrode_table_from_mne,
    head_surface_from_t1w,
    nearest_electrode,
    project_to_scalp,
    scalp_to_cortex_distance,
    template_head_surface,
)

HEAD_R, BRAIN_R, CENTRE = 80.0, 66.0, np.array([1.0, -12.0, 5.0])


@pytest.fixture(scope="module")
def phantom():
    """A T1w-like sphere phantom: scalp radius 80 mm, brain radius 66 mm, 1.5 mm voxels, noise."""
    vox = 1.5
    n = 124
    affine = np.diag([vox, vox, vox, 1.0])
    affine[:3, 3] = CENTRE - vox * (n - 1) / 2
    ijk = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1)
    r = np.linalg.norm(ijk * vox + affine[:3, 3] - CENTRE, axis=-1)
    rng = np.random.default_rng(0)
    data = np.where(r <= HEAD_R, 300.0, 0.0) + np.where(r <= BRAIN_R, 400.0, 0.0)
    data = np.where((r > 72) & (r < 76), 30.0, data)  # dark skull band
    data += rng.normal(0, 8, data.shape)
    brain = nib.Nifti1Image((r <= BRAIN_R).astype(np.uint8), affine)
    return nib.Nifti1Image(data.astype(np.float32), affine), brain


@pytest.fixture(scope="module")
def phantom_head(phantom):
    return head_surface_from_t1w(phantom[0])


def test_t1w_head_surface_is_the_scalp_sphere(phantom_head):
    radii = np.linalg.norm(phantom_head.vertices - CENTRE, axis=1)
    assert np.median(radii) == pytest.approx(HEAD_R, abs=0.8)
    assert np.percentile(np.abs(radii - HEAD_R), 95) < 1.2


@pytest.mark.parametrize("method", ["nearest", "centre"])
def test_projection_and_depth_on_phantom(phantom, phantom_head, method):
    direction = np.array([-0.5, 0.4, 0.77])
    direction /= np.linalg.norm(direction)
    target = CENTRE + 55.0 * direction
    scalp = project_to_scalp(phantom_head, target, method=method, centre_mm=CENTRE)
    assert np.linalg.norm(scalp - (CENTRE + HEAD_R * direction)) < 2.0  # 1.5 mm voxels
    depth = scalp_to_cortex_distance(scalp, target, phantom[1])
    assert depth == pytest.approx(HEAD_R - BRAIN_R, abs=1.0)


def test_template_head_electrodes_and_labels():
    head = template_head_surface()
    table = electrode_table()
    assert len(table) == 70
    fresh = electrode_table_from_mne()
    assert np.allclose(fresh[["x", "y", "z"]].to_numpy(), table[["x", "y", "z"]].to_numpy(), atol=0.01)
    # electrodes sit on the template scalp (both come from the fsaverage head)
    for name in ("Cz", "F3", "Fp1", "O2"):
        row = table.set_index("name").loc[name]
        p = row[["x", "y", "z"]].to_numpy(dtype=float)
        assert np.linalg.norm(project_to_scalp(head, p) - p) < 7.0  # measured: median 2.3, max 6.4 mm
    # a point above the vertex is labelled Cz; a left frontal one F3
    cz = table.set_index("name").loc["Cz", ["x", "y", "z"]].to_numpy(dtype=float)
    assert nearest_electrode(cz + [0, 0, 3])["label"] == "Cz"
    f3 = table.set_index("name").loc["F3", ["x", "y", "z"]].to_numpy(float)
    assert nearest_electrode(f3)["label"] == "F3"


def test_scalp_errors(phantom):
    with pytest.raises(InvalidImageError, match="3D"):
        head_surface_from_t1w(nib.Nifti1Image(np.zeros((4, 4, 4, 2), np.float32), np.eye(4)))
    with pytest.raises(InvalidImageError, match="empty or constant"):
        head_surface_from_t1w(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)))
    with pytest.raises(InvalidParameterError, match="No brain"):
        scalp_to_cortex_distance(np.array([500.0, 0, 0]), np.array([600.0, 0, 0]), phantom[1])
    with pytest.raises(InvalidParameterError, match="Unknown projection"):
        project_to_scalp(template_head_surface(), [0, 0, 0], method="up")
