"""Generated fMRIPrep-like surface BOLD on fsaverage5 with a planted sgACC-anticorrelated patch.

For planted-truth tests of the surface job (issue 15). Written from first principles and
imports none of the code it is used to test (no ``tmsnet.surface``, ``tmsnet.io.surface``
or ``tmsnet.targeting``): the mesh comes from nilearn's packaged fsaverage5 pial surface,
the published coordinates are typed here (REFERENCES.md section 1; Fox et al. 2012 Table 1).

Per subject (one layout per subject, drawn from ``seed``):

* a source ``s(t)`` (AR(1), unit variance) carried by the sgACC vertices (within 10 mm of
  MNI (6, 16, -10), both hemispheres' medial surfaces);
* the target: a left-hemisphere vertex drawn among those within 20 mm of the four
  standard DLPFC targets, loading ``-snr * s(t)`` with a Gaussian taper (sigma 6 mm,
  Euclidean distance on the template surface); a positively correlated decoy patch
  >= 25 mm away in the same region;
* spatially smooth noise: 400 random Gaussian blobs (sigma 6 mm) with AR(1) time courses,
  plus white noise, standardised per vertex; a global signal shared by every vertex;
* a medial wall, constant 0 as fMRIPrep writes it: by default (``medial_wall="band"``) the
  vertices with |x| < 4 mm, a crude band that keeps only 7 of the 41 right pial vertices of
  the sgACC sphere; with ``medial_wall="fmriprep"`` the vertices a real fMRIPrep fsaverage5
  scan leaves constant (888 left, 881 right; the file ``tpl-fsaverage5_desc-medialwall_mask.npz``
  of ``tmsnet/data/meshes``, read here as data), which keep 24 of the 41.

Files: ``sub-XX_task-rest_hemi-{L,R}_space-fsaverage5_bold.func.gii`` (TimeStep in ms) and
``sub-XX_task-rest_desc-confounds_timeseries.txt`` (a plain matrix: 6 motion-like
regressors, no header), plus the truth.

With ``subdivide=True`` the subjects live on a finer, ico6-like mesh instead: every triangle
of the fsaverage5 pial surface split in four at its edge midpoints (40962 vertices per
hemisphere, the first 10242 being fsaverage5's own, as FreeSurfer's icosahedra are said to be
nested). It stands in for fsaverage6, whose real surface is not available offline: the mesh is
written as ``tpl-fsaverage6_hemi-{L,R}_pial.surf.gii`` under ``root``, the BOLD as
``space-fsaverage6``, and the same data on the first 10242 vertices of each hemisphere as the
``space-fsaverage5`` pair beside it (the same person on both meshes); the planted target is
drawn among those shared vertices.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import nibabel as nib
import numpy as np

from tmsnet.exceptions import InvalidParameterError

#: Published coordinates (MNI152, mm), typed from REFERENCES.md section 1 (Fox et al. 2012).
SGACC_MM = (6.0, 16.0, -10.0)
DLPFC_CENTRES_MM = ((-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                    (-37.0, 26.0, 49.0))
SEED_RADIUS_MM, SEARCH_RADIUS_MM, PATCH_SIGMA_MM = 10.0, 20.0, 6.0
#: How the medial wall is drawn (module docstring).
MEDIAL_WALLS = ("band", "fmriprep")


@dataclass
class SurfaceSubject:
    """One generated subject: its files and the planted truth."""

    subject: str
    bold_left: Path
    confounds: Path
    target_mm: np.ndarray
    target_vertex: int
    decoy_mm: np.ndarray
    mesh_left: Path | None = None
    bold_left_fsaverage5: Path | None = None


def _pial() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")["pial"]
    return {h: (np.asarray(mesh.parts[h].coordinates, float), np.asarray(mesh.parts[h].faces))
            for h in ("left", "right")}


def _subdivided(coords: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each triangle split in four at its edge midpoints; the old vertices keep their indices."""
    pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges, which = np.unique(pairs, axis=0, return_inverse=True)
    middle = len(coords) + which.reshape(3, -1).T          # midpoint of (0,1), (1,2), (2,0)
    a, b, c = faces.T
    ab, bc, ca = middle.T
    new_faces = np.concatenate([np.column_stack(f) for f in
                                ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return np.vstack([coords, coords[edges].mean(axis=1)]), new_faces


def _write_mesh(path: Path, coords: np.ndarray, faces: np.ndarray, structure: str) -> None:
    meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure,
                                    "AnatomicalStructureSecondary": "Pial"})
    img = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(coords.astype(np.float32), intent="NIFTI_INTENT_POINTSET",
                                 datatype="NIFTI_TYPE_FLOAT32", meta=meta),
        nib.gifti.GiftiDataArray(faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE",
                                 datatype="NIFTI_TYPE_INT32")])
    nib.save(img, str(path))


def _check_wall(kind: str, subdivide: bool) -> None:
    if kind not in MEDIAL_WALLS:
        raise InvalidParameterError(f"medial_wall must be one of {MEDIAL_WALLS}, got {kind!r}.")
    if subdivide and kind != "band":
        raise InvalidParameterError("medial_wall='fmriprep' is the fsaverage5 wall; it has no "
                                    "subdivided form: use 'band' with subdivide=True.")


def _wall(kind: str, xyz: np.ndarray) -> np.ndarray:
    if kind == "band":
        return np.abs(xyz[:, 0]) < 4.0
    resource = files("tmsnet.data").joinpath("meshes", "tpl-fsaverage5_desc-medialwall_mask.npz")
    with resource.open("rb") as handle, np.load(handle) as walls:
        return np.concatenate([walls["left"], walls["right"]]).astype(bool)


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float = 0.5) -> np.ndarray:
    e = rng.standard_normal(shape)
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * e[t]
    return out


def _taper(xyz: np.ndarray, centre: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * np.sum((xyz - centre) ** 2, axis=1) / PATCH_SIGMA_MM**2)


def _layout(rng: np.random.Generator, left: np.ndarray) -> tuple[int, int]:
    """Target and decoy among the vertices of ``left`` (the shared ones on a subdivided mesh)."""
    near = np.zeros(len(left), dtype=bool)
    for centre in DLPFC_CENTRES_MM:
        near |= np.linalg.norm(left - np.asarray(centre), axis=1) <= SEARCH_RADIUS_MM
    candidates = np.flatnonzero(near)
    target = int(rng.choice(candidates))
    far = candidates[np.linalg.norm(left[candidates] - left[target], axis=1) >= 25.0]
    return target, int(rng.choice(far))


def _noise(rng: np.random.Generator, xyz: np.ndarray, n_frames: int) -> np.ndarray:
    centres = xyz[rng.choice(len(xyz), 400, replace=False)]
    kernel = np.exp(-0.5 * ((xyz[:, None, :] - centres[None]) ** 2).sum(-1) / 6.0**2)
    smooth = _ar1(rng, (n_frames, 400)) @ kernel.T
    noise = smooth / smooth.std(axis=0) + 0.5 * rng.standard_normal((n_frames, len(xyz)))
    return noise / noise.std(axis=0)


def _write_gifti(path: Path, data: np.ndarray, t_r: float, structure: str) -> None:
    arrays = [nib.gifti.GiftiDataArray(frame.astype(np.float32), intent="NIFTI_INTENT_TIME_SERIES",
                                       datatype="NIFTI_TYPE_FLOAT32",
                                       meta=nib.gifti.GiftiMetaData({"TimeStep": f"{t_r * 1000:f}"}))
              for frame in data]
    img = nib.gifti.GiftiImage(darrays=arrays, meta=nib.gifti.GiftiMetaData(
        {"AnatomicalStructurePrimary": structure}))
    nib.save(img, str(path))


def simulate_surface_dataset(root: str | Path, *, n_subjects: int = 5, seed: int = 0,
                             snr: float = 0.5, n_frames: int = 300, t_r: float = 2.0,
                             subdivide: bool = False,
                             medial_wall: str = "band") -> list[SurfaceSubject]:
    """Write ``n_subjects`` generated surface subjects under ``root`` (see the module docstring)."""
    root = Path(root)
    _check_wall(medial_wall, subdivide)  # before anything is written
    meshes = _pial()
    n_coarse = len(meshes["left"][0])
    if subdivide:
        meshes = {h: _subdivided(*mesh) for h, mesh in meshes.items()}
        root.mkdir(parents=True, exist_ok=True)
        for h, structure in (("left", "CortexLeft"), ("right", "CortexRight")):
            _write_mesh(root / f"tpl-fsaverage6_hemi-{h[0].upper()}_pial.surf.gii", *meshes[h],
                        structure)
    left, right = meshes["left"][0], meshes["right"][0]
    space = "fsaverage6" if subdivide else "fsaverage5"
    xyz = np.vstack([left, right])
    n_left = len(left)
    wall = _wall(medial_wall, xyz)
    seed_vertices = np.linalg.norm(xyz - np.asarray(SGACC_MM), axis=1) <= SEED_RADIUS_MM
    subjects = []
    for index in range(n_subjects):
        rng = np.random.default_rng([seed, index])
        target, decoy = _layout(rng, left[:n_coarse])
        source = _ar1(rng, (n_frames,))
        source = (source - source.mean()) / source.std()
        loading = np.zeros(len(xyz))
        loading[:n_left] = -_taper(left, left[target]) + 0.8 * _taper(left, left[decoy])
        loading[seed_vertices] = 2.0
        data = _noise(rng, xyz, n_frames) + snr * source[:, None] * loading[None]
        data += 0.5 * rng.standard_normal(n_frames)[:, None]  # a global signal
        data = 1000.0 + 10.0 * data
        data[:, wall] = 0.0
        label = f"{index + 1:02d}"
        func = root / f"sub-{label}" / "func"
        func.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{label}_task-rest"
        parts = (("L", slice(0, n_left), "CortexLeft"), ("R", slice(n_left, None), "CortexRight"))
        for hemi, part, structure in parts:
            _write_gifti(func / f"{stem}_hemi-{hemi}_space-{space}_bold.func.gii",
                         data[:, part], t_r, structure)
            if subdivide:  # the same person on the shared (fsaverage5) vertices
                _write_gifti(func / f"{stem}_hemi-{hemi}_space-fsaverage5_bold.func.gii",
                             data[:, part][:, :n_coarse], t_r, structure)
        confounds = func / f"{stem}_desc-confounds_timeseries.txt"
        np.savetxt(confounds, 0.1 * np.cumsum(rng.standard_normal((n_frames, 6)), axis=0),
                   fmt="%.6f")
        subjects.append(SurfaceSubject(
            subject=label, bold_left=func / f"{stem}_hemi-L_space-{space}_bold.func.gii",
            confounds=confounds, target_mm=left[target].copy(), target_vertex=target,
            decoy_mm=left[decoy].copy(),
            mesh_left=root / "tpl-fsaverage6_hemi-L_pial.surf.gii" if subdivide else None,
            bold_left_fsaverage5=(func / f"{stem}_hemi-L_space-fsaverage5_bold.func.gii"
                                  if subdivide else None)))
    return subjects
