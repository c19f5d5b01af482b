"""Rebuild tmsnet's bundled fsLR-32k template meshes from the brainspace originals.

The originals are the files of the PyPI package brainspace 0.3.0 (BSD-3-Clause),
``brainspace/datasets/surfaces/``, copied to ``../shared/data/surfaces``:
``conte69_32k_{lh,rh}.gii`` (midthickness, 32492 vertices per hemisphere) and
``conte69_32k_{lh,rh}_mask.csv`` (1 = cortex, 0 = medial wall)::

    .venv/bin/python tools/build_bundled_meshes.py [--source ../shared/data/surfaces] [--out DIR]

Writes (by default into) ``src/tmsnet/data/meshes/tpl-fsLR_den-32k_hemi-{L,R}_midthickness.npz``, each with
the arrays ``coords_mm`` (float32, as stored in the GIFTI), ``faces`` (int32, 0-based) and
``cortex`` (bool), and ``meshes.json`` (the SHA-256 of every source file and of every file
written). The values are copied unchanged, and the ``.npz`` files are byte-identical from
one run to the next: the zip entries carry a fixed time stamp. The licence and the
attribution are in ``src/tmsnet/data/meshes/README.md`` (hand-written, not rebuilt here).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "surfaces"
TARGET = ROOT / "src" / "tmsnet" / "data" / "meshes"
HEMISPHERES = {"L": "lh", "R": "rh"}
N_VERTICES = 32492
#: A fixed zip time stamp (the earliest zip allows), so that the files do not change.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (deflated) with fixed entry order and time stamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=9)
    return buffer.getvalue()


def _read_hemisphere(source: Path, tag: str) -> tuple[dict[str, np.ndarray], list[Path]]:
    surface = source / f"conte69_32k_{tag}.gii"
    mask_path = source / f"conte69_32k_{tag}_mask.csv"
    coords, faces = nib.load(surface).agg_data(("pointset", "triangle"))
    mask = np.loadtxt(mask_path)
    if coords.shape != (N_VERTICES, 3) or mask.shape != (N_VERTICES,):
        raise SystemExit(f"{surface.name}: expected {N_VERTICES} vertices, got {coords.shape} "
                         f"and a mask of {mask.shape}")
    if not np.isin(mask, (0.0, 1.0)).all():
        raise SystemExit(f"{mask_path.name} must hold 0 and 1 only")
    arrays = {"coords_mm": np.asarray(coords, dtype=np.float32),
              "faces": np.asarray(faces, dtype=np.int32), "cortex": mask == 1.0}
    return arrays, [surface, mask_path]


def main() -> None:
    """Read the originals, write the bundled files and the manifest, check the round trip."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=TARGET,
                        help="folder to write (default: the package's data/meshes)")
    args = parser.parse_args()
    target = args.out
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"source": "PyPI package brainspace 0.3.0, brainspace/datasets/surfaces/ "
                                "(BSD-3-Clause)", "space": "fsLR", "density": "32k",
                      "surface": "midthickness", "coordinate_space": "MNI152NLin6Asym",
                      "files": {}}
    for hemi, tag in HEMISPHERES.items():
        arrays, sources = _read_hemisphere(args.source, tag)
        out = target / f"tpl-fsLR_den-32k_hemi-{hemi}_midthickness.npz"
        out.write_bytes(_npz_bytes(arrays))
        with np.load(out) as back:
            for name, array in arrays.items():
                if not np.array_equal(back[name], array):
                    raise SystemExit(f"{out.name}: {name} did not survive the round trip")
        manifest["files"][out.name] = {
            "sha256": _sha256(out), "hemisphere": hemi, "n_vertices": N_VERTICES,
            "n_faces": int(arrays["faces"].shape[0]),
            "n_cortex": int(arrays["cortex"].sum()),
            "sources": {p.name: _sha256(p) for p in sources}}
        print(f"{out}: {out.stat().st_size} bytes, "
              f"{int(arrays['cortex'].sum())} cortex vertices")
    (target / "meshes.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
