"""The same generated person on the volume and on the surface (issue 15, "Must show").

Usage::

    .venv/bin/python benchmarks/bench_volume_vs_surface.py [--subjects 3]

Generates full-size volume subjects (seed 271828, snr 0.5), projects each BOLD onto
nilearn's fsaverage5 cortical ribbon (``nilearn.surface.vol_to_surf`` between the white and
pial surfaces, linear), and runs the default cluster method on both. Prints the planted
target, each job's target and error, and the volume-surface distance (goal: <= 6 mm).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np


def _project(bold: Path, out: Path, subject: str) -> Path:
    from nilearn.datasets import load_fsaverage
    from nilearn.surface import vol_to_surf

    mesh = load_fsaverage("fsaverage5")
    img = nib.load(bold)
    out.mkdir(parents=True, exist_ok=True)
    for hemi, part in (("L", "left"), ("R", "right")):
        data = np.nan_to_num(vol_to_surf(img, mesh["pial"].parts[part],
                                         inner_mesh=mesh["white_matter"].parts[part],
                                         interpolation="linear"))
        meta = nib.gifti.GiftiMetaData({"TimeStep": f"{img.header.get_zooms()[3] * 1000:f}"})
        arrays = [nib.gifti.GiftiDataArray(frame.astype(np.float32), datatype="NIFTI_TYPE_FLOAT32",
                                           intent="NIFTI_INTENT_TIME_SERIES", meta=meta)
                  for frame in data.T]
        nib.save(nib.gifti.GiftiImage(darrays=arrays),
                 str(out / f"sub-{subject}_task-rest_hemi-{hemi}_space-fsaverage5_bold.func.gii"))
    return out / f"sub-{subject}_task-rest_hemi-L_space-fsaverage5_bold.func.gii"


def main() -> None:
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset
    from tmsnet.targeting.surface_workflow import compute_surface_targets
    from tmsnet.targeting.uncertainty import UncertaintyParameters
    from tmsnet.targeting.workflow import TargetingParameters, compute_targets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    args = parser.parse_args()
    parameters = TargetingParameters(methods=("cluster",),
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    with tempfile.TemporaryDirectory() as tmp:
        subjects = simulate_fmriprep_dataset(Path(tmp) / "vol", n_subjects=args.subjects,
                                             seed=271828, params=SimulationParameters(snr=0.5),
                                             progress=False)
        for s in subjects:
            left = _project(s.bold_path, Path(tmp) / "surf" / s.subject, s.subject)
            vol = compute_targets(s.bold_path, s.confounds_path, parameters,
                                  progress=False).targets[0].coordinate_mm
            surf = compute_surface_targets(left, s.confounds_path, parameters).targets[0].coordinate_mm
            print(f"sub-{s.subject}: planted {np.round(s.target_mm, 1)}; volume {np.round(vol, 1)} "
                  f"({np.linalg.norm(vol - s.target_mm):.1f} mm); surface {np.round(surf, 1)} "
                  f"({np.linalg.norm(surf - s.target_mm):.1f} mm); volume-surface "
                  f"{np.linalg.norm(vol - surf):.1f} mm")


if __name__ == "__main__":
    main()
