"""Regenerate the bundled sample-cohort group seedmap.

The seedmap is built from simulated subjects that are *not* the demo or test
subjects (simulator seed 1000), so no test sees its own data in the seedmap:

    .venv/bin/python tools/build_bundled_seedmap.py [--n-subjects 8]

It says nothing about real brains; see ``tmsnet.targeting.seedmap``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from tmsnet.io.atomic import atomic_write_json, atomic_write_nifti
from tmsnet.io.provenance import sidecar_path_for
from tmsnet.simulate import simulate_fmriprep_dataset
from tmsnet.targeting.group_seedmap import GroupSeedmapParameters, build_group_seedmap
from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP

SIMULATOR_SEED = 1000
#: Noise floor of the 8-scan map (|r| ~ 0.03 is sampling noise; ~6x that). Without it the
#: seedmap method's seed time series is mostly noise summed over the brain (issue 13: median
#: error 15.6 mm on 12 random full-size subjects, 3.7 mm with it).
MIN_ABS_R = 0.2


def main() -> None:
    """Simulate the cohort, build its seedmap and write it into the package."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-subjects", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subjects = simulate_fmriprep_dataset(Path(tmp) / "cohort", n_subjects=args.n_subjects,
                                             seed=SIMULATOR_SEED, progress=True)
        path, sidecar = build_group_seedmap(
            [s.bold_path for s in subjects], [s.confounds_path for s in subjects],
            out_path=Path(tmp) / "seedmap.nii.gz",
            description=(f"Simulated sample cohort: tmsnet.simulate.simulate_fmriprep_dataset(seed="
                         f"{SIMULATOR_SEED}, n_subjects={args.n_subjects}), default parameters. "
                         "Not a real cohort: replace it with a seedmap built from real data."),
            parameters=GroupSeedmapParameters(min_abs_r=MIN_ABS_R),
        )
        img = nib.load(path)
        data = np.asarray(img.get_fdata(), dtype=np.float32)
        # Store as int16 with nibabel's scale factor (~3e-5 in r) to keep the package small.
        out = nib.Nifti1Image(data, img.affine)
        out.set_data_dtype(np.int16)
        out.header.set_xyzt_units("mm")
        BUNDLED_SEEDMAP.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_nifti(BUNDLED_SEEDMAP, out)
        for source in sidecar["Sources"].values():  # temporary paths mean nothing later
            source["path"] = Path(source["path"]).name
        sidecar["Parameters"]["storage"] = "int16 with scl_slope (nibabel)"
        atomic_write_json(sidecar_path_for(BUNDLED_SEEDMAP), sidecar)
    print(f"wrote {BUNDLED_SEEDMAP} ({BUNDLED_SEEDMAP.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps(sidecar["Parameters"], indent=1, default=str)[:400])


if __name__ == "__main__":
    main()
