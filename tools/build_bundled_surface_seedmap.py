"""Regenerate the bundled fsaverage5 surface seedmap from the bundled volume seedmap.

    .venv/bin/python tools/build_bundled_surface_seedmap.py [--out-dir DIR]

No network and no simulation: the bundled volume map of the simulated sample cohort
(``tmsnet.targeting.seedmap.BUNDLED_SEEDMAP``, MNI152NLin2009cAsym 2 mm, built by
``tools/build_bundled_seedmap.py``) is projected onto nilearn's packaged fsaverage5 meshes
(10242 vertices per hemisphere), the way fMRIPrep projects BOLD onto a surface
(``mri_vol2surf --projfrac-avg 0 1 0.2``):

1. for every vertex, six points on the segment from its white-matter position to its pial
   position (fractions 0, 0.2, ..., 1);
2. each point moved from MNI305 (fsaverage's coordinates) to MNI152 with FreeSurfer's
   affine (``tmsnet.spaces.mni305_to_mni152``; about 1.5 mm in y and 1.2 mm in z near the
   sgACC). The affine's target is FSL's MNI152 (MNI152NLin6Asym); the remaining difference
   to MNI152NLin2009cAsym, the volume map's space, is not corrected: a few mm, below the
   10 mm seed sphere and 6 mm smoothing the map was built with;
3. the volume map read there by trilinear interpolation (0 outside the image);
4. the six values averaged, then the volume map's noise floor (``min_abs_r`` of its
   sidecar, 0.2) applied again: the interpolation's ramp at the edge of the thresholded
   map is set to 0, so every non-zero value is one the volume map could hold.

The map is therefore the same simulated cohort's: positive around the sgACC, zero
elsewhere (the volume map has no negative voxel above its floor). It says nothing about
real brains. Writes ``src/tmsnet/data/seedmaps/tpl-fsaverage5_hemi-{L,R}_desc-
sgaccSampleCohort_seedmap.shape.gii`` and ``tpl-fsaverage5_desc-sgaccSampleCohort_seedmap.json``
(or the same names under ``--out-dir``); the same environment gives the same bytes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from tmsnet.io.provenance import file_sha256, make_sidecar
from tmsnet.spaces import MNI305_TO_MNI152, mni305_to_mni152
from tmsnet.surface.mesh import load_template_mesh
from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP, BUNDLED_SURFACE_SEEDMAP, write_surface_seedmap

#: Fractions of the white -> pial segment sampled (fMRIPrep: --projfrac-avg 0 1 0.2).
PROJECTION_FRACTIONS = tuple(round(0.2 * k, 1) for k in range(6))
_HEMISPHERES = {"L": "left", "R": "right"}


def project(volume: nib.Nifti1Image, white: np.ndarray, pial: np.ndarray) -> np.ndarray:
    """Mean of the volume's trilinear values on the white -> pial segment of every vertex.

    ``white`` and ``pial`` are MNI305 vertex coordinates (mm), shape (n, 3); the volume
    is in MNI152 (mm affine).
    """
    data = np.asarray(volume.get_fdata(dtype=np.float64))
    to_voxel = np.linalg.inv(volume.affine)
    samples = []
    for fraction in PROJECTION_FRACTIONS:
        xyz = mni305_to_mni152(white + fraction * (pial - white))
        ijk = xyz @ to_voxel[:3, :3].T + to_voxel[:3, 3]
        samples.append(ndimage.map_coordinates(data, ijk.T, order=1, mode="constant", cval=0.0))
    return np.mean(samples, axis=0)


def _nilearn_mesh_sources() -> dict[str, dict[str, str]]:
    from nilearn.datasets import fetch_surf_fsaverage

    files = fetch_surf_fsaverage("fsaverage5")
    return {f"fsaverage5_{kind}_{side}": {
        "path": "nilearn/datasets/data/fsaverage5/" + Path(files[f"{kind}_{side}"]).name,
        "sha256": file_sha256(files[f"{kind}_{side}"])}
        for kind in ("white", "pial") for side in ("left", "right")}


def build(out_dir: Path) -> dict[str, Path]:
    """Project the bundled volume map and write the pair and its sidecar under ``out_dir``."""
    volume = nib.load(BUNDLED_SEEDMAP)
    volume_sidecar = json.loads(BUNDLED_SEEDMAP.with_name(
        BUNDLED_SEEDMAP.name.replace(".nii.gz", ".json")).read_text())
    floor = float(volume_sidecar["Parameters"]["min_abs_r"])
    values = {}
    for hemi, side in _HEMISPHERES.items():
        white = load_template_mesh("fsaverage5", side, "white_matter").coords_mm
        pial = load_template_mesh("fsaverage5", side, "pial").coords_mm
        mapped = project(volume, white, pial)
        mapped[np.abs(mapped) < floor] = 0.0
        values[hemi] = mapped.astype(np.float32)
    sidecar = make_sidecar(
        description=(
            "Group sgACC seedmap of tmsnet's simulated sample cohort on fsaverage5: the bundled "
            "volume seedmap projected onto the surface (tools/build_bundled_surface_seedmap.py). "
            "Input of the tmsnet 'seedmap' method on surface BOLD. Not a real cohort: replace it "
            "with a seedmap built from real data ('tmsnet seedmap build' with surface scans)."),
        parameters={
            "statistic": "r (the volume map's tanh of mean Fisher z, projected)",
            "projection": {
                "surfaces": "nilearn fsaverage5 white_matter -> pial, per vertex",
                "fractions": list(PROJECTION_FRACTIONS),
                "average": "mean over the fractions (fMRIPrep mri_vol2surf --projfrac-avg 0 1 0.2)",
                "interpolation": "trilinear (scipy.ndimage.map_coordinates order 1), 0 outside",
                "coordinate_transform": {
                    "from": "MNI305 (fsaverage)", "to": "MNI152 (FreeSurfer's affine)",
                    "affine": MNI305_TO_MNI152.tolist(),
                    "accepted_offset": "the affine maps to FSL's MNI152 (MNI152NLin6Asym); the "
                                       "difference to MNI152NLin2009cAsym, the volume map's "
                                       "space, is a few mm and is not corrected"}},
            "min_abs_r": floor,
            "min_abs_r_note": "the volume map's floor, applied again after the projection",
            "n_nonzero_vertices": {h: int(np.count_nonzero(v)) for h, v in values.items()},
            "volume_seedmap": {"space": volume_sidecar["Space"],
                               "cohort": volume_sidecar["Parameters"]["cohort"],
                               "n_scans": volume_sidecar["Parameters"]["n_scans"],
                               "seed": volume_sidecar["Parameters"]["seed"],
                               "cleaning": volume_sidecar["Parameters"]["cleaning"]},
        },
        inputs={"volume_seedmap": BUNDLED_SEEDMAP},
        space="fsaverage5",
    )
    # Paths of this checkout mean nothing elsewhere: names only, as the volume map's sidecar.
    sidecar["Sources"] = {"volume_seedmap": {"path": BUNDLED_SEEDMAP.name,
                                             "sha256": sidecar["Sources"]["volume_seedmap"]["sha256"]},
                          **_nilearn_mesh_sources()}
    return write_surface_seedmap(out_dir / BUNDLED_SURFACE_SEEDMAP.name, values, sidecar)


def main() -> None:
    """Build into the package (or ``--out-dir``) and print what was written."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=BUNDLED_SURFACE_SEEDMAP.parent,
                        help="folder to write into (default: the package's data/seedmaps)")
    args = parser.parse_args()
    written = build(args.out_dir)
    for role, path in written.items():
        print(f"wrote {role}: {path} ({path.stat().st_size} bytes, sha256 {file_sha256(path)[:12]})")


if __name__ == "__main__":
    main()
