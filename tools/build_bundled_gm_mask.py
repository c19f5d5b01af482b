"""Regenerate the bundled 2 mm gray-matter mask (a copy of nilearn's, computed once).

``nilearn.datasets.load_mni152_gm_mask(resolution=2)`` resamples nilearn's 1 mm MNI152
gray-matter template to 2 mm and closes it on every call: 0.6-0.7 s, paid by every fresh
``tmsnet target`` process (the DLPFC search region is intersected with it). tmsnet ships
its output instead::

    .venv/bin/python tools/build_bundled_gm_mask.py

``tests/test_bundled_masks.py`` checks that the file still equals nilearn's output.
"""

from __future__ import annotations

from importlib.metadata import version

import nibabel as nib
import numpy as np

from tmsnet.data import BUNDLED_GM_MASK_2MM


def main() -> None:
    from nilearn.datasets import load_mni152_gm_mask

    img = load_mni152_gm_mask(resolution=2)
    data = np.asarray(img.dataobj).astype(np.uint8)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_data_dtype(np.uint8)
    BUNDLED_GM_MASK_2MM.parent.mkdir(parents=True, exist_ok=True)
    nib.save(out, BUNDLED_GM_MASK_2MM)
    print(f"wrote {BUNDLED_GM_MASK_2MM} ({int(data.sum())} voxels) from nilearn {version('nilearn')}")


if __name__ == "__main__":
    main()
