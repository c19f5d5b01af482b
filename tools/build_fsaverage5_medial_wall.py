"""Rebuild tmsnet's bundled fsaverage5 medial-wall mask from a real fMRIPrep scan.

fMRIPrep writes its fsaverage5 BOLD as 0 on every vertex outside FreeSurfer's cortex label
(the medial wall): the same vertices for every subject, since the label is the template's.
nilearn ships the fsaverage5 meshes without that label, so tmsnet takes the wall from the
real scan of ``../shared/data/lemon_fsaverage5`` (MPI-Leipzig LEMON sub-010188, fMRIPrep,
from the PyPI package brainspace 0.3.0, BSD-3-Clause): the vertices whose time series is
exactly constant (888 left, 881 right)::

    .venv/bin/python tools/build_fsaverage5_medial_wall.py [--source DIR] [--out DIR]

Writes (by default into ``src/tmsnet/data/meshes``) ``tpl-fsaverage5_desc-medialwall_mask.npz``
(arrays ``left`` and ``right``: bool, 10242 each, True = medial wall) and its sidecar
``tpl-fsaverage5_desc-medialwall_mask.json`` (counts and the SHA-256 of the sources and of
the file). The ``.npz`` is byte-identical from one run to the next (fixed zip time stamps,
as for the fsLR meshes of ``tools/build_bundled_meshes.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_bundled_meshes import TARGET, _npz_bytes, _sha256  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "lemon_fsaverage5"
SCAN = "sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.{tag}.mgz"
NAME = "tpl-fsaverage5_desc-medialwall_mask"
N_VERTICES = 10242


def medial_wall(path: Path) -> np.ndarray:
    """The vertices of one hemisphere's surface BOLD that are constant over time."""
    data = np.asarray(nib.load(path).dataobj, dtype=np.float64).reshape(N_VERTICES, -1)
    return np.ptp(data, axis=1) == 0


def build(source: Path, target: Path) -> dict[str, Path]:
    """Write the mask and its sidecar into ``target``; return their paths."""
    target.mkdir(parents=True, exist_ok=True)
    scans = {hemi: source / SCAN.format(tag=tag) for hemi, tag in (("left", "lh"), ("right", "rh"))}
    walls = {hemi: medial_wall(path) for hemi, path in scans.items()}
    out = target / f"{NAME}.npz"
    out.write_bytes(_npz_bytes(walls))
    sidecar = {
        "Description": "fsaverage5 medial wall: the vertices fMRIPrep leaves constant (0) on "
                       "fsaverage5, read off a real fMRIPrep scan (MPI-Leipzig LEMON "
                       "sub-010188).",
        "Source": "PyPI package brainspace 0.3.0, brainspace/datasets/preprocessing/ "
                  "(BSD-3-Clause)",
        "n_vertices": N_VERTICES,
        "n_medial_wall": {hemi: int(wall.sum()) for hemi, wall in walls.items()},
        "sha256": _sha256(out),
        "sources": {path.name: _sha256(path) for path in scans.values()},
    }
    side = target / f"{NAME}.json"
    side.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return {"mask": out, "sidecar": side}


def main() -> None:
    """Build the mask from ``--source`` into ``--out`` and print the counts."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET)
    args = parser.parse_args()
    written = build(args.source, args.out)
    print(json.loads(written["sidecar"].read_text())["n_medial_wall"], written["mask"])


if __name__ == "__main__":
    main()
