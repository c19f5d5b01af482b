"""The bundled 2 mm gray-matter mask is nilearn's, voxel for voxel."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from tmsnet.data import BUNDLED_GM_MASK_2MM, load_gray_matter_mask


def test_the_bundled_gray_matter_mask_equals_nilearns():
    from nilearn.datasets import load_mni152_gm_mask

    reference = load_mni152_gm_mask(resolution=2)
    bundled = nib.load(BUNDLED_GM_MASK_2MM)
    assert bundled.shape == reference.shape == (99, 117, 95)
    np.testing.assert_array_equal(bundled.affine, reference.affine)
    np.testing.assert_array_equal(np.asarray(bundled.dataobj), np.asarray(reference.dataobj))
    assert np.asarray(bundled.dataobj).dtype == np.asarray(reference.dataobj).dtype
    assert 0 < np.asarray(bundled.dataobj).mean() < 0.5  # a real mask, not all or nothing
    # the loader hands it out at 2 mm (other resolutions still come from nilearn)
    assert load_gray_matter_mask(2).get_filename() == str(BUNDLED_GM_MASK_2MM)
