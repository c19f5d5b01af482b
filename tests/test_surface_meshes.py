"""The template meshes of every surface space tmsnet reads (issue 15 item 1).

- fsLR 32k: tmsnet's bundled copy against the shared originals (brainspace 0.3.0), its
  topology, its coordinate space, and a generated fsLR-91k CIFTI dtseries through the whole
  surface job with a planted target;
- fsaverage6 / fsaverage: no mesh ships and their nesting over fsaverage5 could not be verified
  offline, so without a given mesh (tests/test_surface_given_meshes.py) they are refused with
  advice; what could be verified (fsaverage5 is nested by index inside itself) is checked here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from tmsnet.exceptions import InvalidParameterError, SpaceError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.io.surface import load_cifti_volume_part
from tmsnet.surface.mesh import (
    load_template_medial_wall,
    load_template_mesh,
    mesh_edges,
)
from tmsnet.targeting.surface_regions import cifti_volume_seed
from tmsnet.targeting.surface_workflow import compute_surface_targets
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

ROOT = Path(__file__).resolve().parents[1]
SURFACES = ROOT.parent / "shared" / "data" / "surfaces"
BUNDLED = ROOT / "src" / "tmsnet" / "data" / "meshes"
HEMIS = {"L": ("left", "lh"), "R": ("right", "rh")}

# Typed from REFERENCES.md section 1 (MNI152, mm), not taken from the code.
SGACC_RIGHT = np.array([6.0, 16.0, -10.0])
DLPFC_CENTRES = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                          (-37.0, 26.0, 49.0)])
#: fMRIPrep's / HCP's 2 mm MNI152NLin6Asym grid of the 91k volume part.
MNI_2MM = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
ACCUMBENS_RIGHT_MM = np.array([10.0, 12.0, -8.0])


def _shared(name: str) -> Path:
    path = SURFACES / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared template surfaces are not on this machine)")
    return path


# ------------------------------------------------------------------ fsLR 32k, bundled copy

@pytest.mark.parametrize("hemi", ["L", "R"])
def test_bundled_fslr_mesh_is_the_shared_original(hemi):
    name, tag = HEMIS[hemi]
    coords, faces = nib.load(_shared(f"conte69_32k_{tag}.gii")).agg_data(("pointset", "triangle"))
    cortex = np.loadtxt(_shared(f"conte69_32k_{tag}_mask.csv")) == 1
    mesh = load_template_mesh("fsLR", name, "midthickness")
    assert (mesh.n_vertices, mesh.n_faces) == (32492, 64980)
    assert np.array_equal(mesh.coords_mm, coords.astype(np.float64))     # unchanged values
    assert np.array_equal(mesh.faces, faces)
    wall = load_template_medial_wall("fsLR", name)
    assert np.array_equal(wall, ~cortex)
    print(f"fsLR {name}: {cortex.sum()} cortex vertices")
    assert (mesh.space, mesh.hemisphere, mesh.kind) == ("fsLR", name, "midthickness")
    assert mesh.coordinate_space == "MNI152NLin6Asym"


def test_bundled_files_rebuild_byte_for_byte_and_match_their_manifest(tmp_path):
    _shared("conte69_32k_lh.gii")
    manifest = json.loads((BUNDLED / "meshes.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((BUNDLED / name).read_bytes()).hexdigest() == entry["sha256"]
        for source, digest in entry["sources"].items():
            assert hashlib.sha256((SURFACES / source).read_bytes()).hexdigest() == digest
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_bundled_meshes.py"),
                    "--source", str(SURFACES), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    for name in manifest["files"]:
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes()
    total = sum((BUNDLED / n).stat().st_size for n in manifest["files"])
    print(f"bundled fsLR meshes: {total} bytes")
    assert total < 1_500_000                                       # compact: < 1.5 MB together


def test_fslr_mesh_is_a_closed_surface_in_mni152():
    for hemi, (name, _) in HEMIS.items():
        mesh = load_template_mesh("fsLR", name)
        edges = mesh_edges(mesh.faces)
        assert mesh.n_vertices - edges.shape[0] + mesh.n_faces == 2    # Euler: a closed sphere
        length = np.linalg.norm(mesh.coords_mm[edges[:, 0]] - mesh.coords_mm[edges[:, 1]], axis=1)
        print(f"fsLR {name}: mean edge {length.mean():.2f} mm")
        assert 1.0 < length.mean() < 3.0
        assert (np.median(mesh.coords_mm[:, 0]) < 0) == (hemi == "L")
        # MNI152 extent of a cortex (mm): about 70 mm lateral, 170 mm front to back
        assert 55 < np.ptp(mesh.coords_mm[:, 0]) < 80 and 150 < np.ptp(mesh.coords_mm[:, 1]) < 190
    right = load_template_mesh("fsLR", "right")
    cortex = ~load_template_medial_wall("fsLR", "right")
    near = np.linalg.norm(right.coords_mm - SGACC_RIGHT, axis=1) <= 10.0
    print(f"fsLR right cortical vertices within 10 mm of the sgACC: {(near & cortex).sum()}")
    assert (near & cortex).sum() >= 50                 # the sgACC is on the fsLR cortical surface


def test_fslr_kinds_and_other_spaces():
    pial = load_template_mesh("fsLR", "lh", "pial")
    assert pial.kind == "midthickness"                  # the only fsLR surface, and it says so
    assert pial is load_template_mesh("fsLR", "left", "white_matter")
    with pytest.raises(InvalidParameterError, match="midthickness"):
        load_template_mesh("fsLR", "left", "inflated")
    with pytest.raises(SpaceError, match="ships no fsaverage6"):
        load_template_medial_wall("fsaverage6", "left")
    assert load_template_mesh("fsaverage5", "left").coordinate_space == "MNI305"


def test_fsaverage5_medial_wall_is_fmripreps_and_medial(tmp_path):
    """The bundled fsaverage5 wall: LEMON's constant vertices (rebuilt byte for byte from the
    real scan when ../shared is there), on the medial side, and clear of the targeting regions."""
    dlpfc = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                      (-37.0, 26.0, 49.0)])              # REFERENCES.md section 1, typed here
    for name, count in (("left", 888), ("right", 881)):
        wall = load_template_medial_wall("fsaverage5", name)
        xyz = load_template_mesh("fsaverage5", name).coords_mm
        assert wall.shape == (10242,) and wall.sum() == count and not wall.flags.writeable
        assert np.median(np.abs(xyz[wall, 0])) < 0.5 * np.median(np.abs(xyz[~wall, 0]))
        near_dlpfc = np.linalg.norm(xyz[:, None] - dlpfc[None], axis=2).min(axis=1) <= 20.0
        assert not (wall & near_dlpfc).any()
    sgacc = load_template_mesh("fsaverage5", "right").coords_mm
    seed = np.linalg.norm(sgacc - (6.0, 16.0, -10.0), axis=1) <= 10.0
    assert (seed & ~load_template_medial_wall("fsaverage5", "right")).sum() == 24   # of 41
    lemon = ROOT.parent / "shared" / "data" / "lemon_fsaverage5"
    if not lemon.is_dir():
        pytest.skip("../shared/data/lemon_fsaverage5 is absent: the rebuild from the real scan "
                    "is not checked")
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_fsaverage5_medial_wall.py"),
                    "--source", str(lemon), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    name = "tpl-fsaverage5_desc-medialwall_mask"
    for suffix in (".npz", ".json"):
        assert (tmp_path / f"{name}{suffix}").read_bytes() == (BUNDLED / f"{name}{suffix}").read_bytes()


# ----------------------------------------------------------- fsaverage6 and fsaverage (ico6/7)

def test_fsaverage5_is_nested_by_vertex_index():
    """What could be checked of the nesting claim offline: inside fsaverage5 itself the first
    10 * 4**k + 2 sphere vertices are ico-k, each later vertex at the normalised midpoint of two
    adjacent earlier ones (no fsaverage6 or fsaverage file is available to check the rest)."""
    sphere = load_template_mesh("fsaverage5", "left", "sphere")
    unit = sphere.coords_mm / np.linalg.norm(sphere.coords_mm, axis=1, keepdims=True)
    edges = mesh_edges(sphere.faces)
    worst = 0.0
    for k in range(5, 0, -1):
        coarse, fine = 10 * 4 ** (k - 1) + 2, 10 * 4**k + 2
        assert edges.max() == fine - 1
        old = edges[(edges[:, 0] < coarse) & (edges[:, 1] >= coarse)]       # (parent, child)
        assert np.array_equal(np.bincount(old[:, 1] - coarse), np.full(fine - coarse, 2))
        parents = old[np.argsort(old[:, 1], kind="stable"), 0].reshape(-1, 2)
        midpoint = unit[parents[:, 0]] + unit[parents[:, 1]]
        midpoint /= np.linalg.norm(midpoint, axis=1, keepdims=True)
        cosine = np.clip(np.sum(midpoint * unit[coarse:fine], axis=1), -1, 1)
        worst = max(worst, float(np.degrees(np.arccos(cosine)).max()))
        pairs = np.unique(np.sort(parents, axis=1), axis=0)
        assert pairs.shape[0] == fine - coarse                 # one child per coarse edge
        # the coarse level: its edges are the parent pairs, and they are its whole mesh
        edges = pairs
    print(f"fsaverage5 sphere: worst child-to-midpoint angle {worst:.4f} deg")
    assert worst < 0.05 and edges.shape[0] == 30                   # ico0: the icosahedron


def _gifti_pair(folder: Path, space: str, n_vertices: int, n_frames: int = 60) -> Path:
    rng = np.random.default_rng(0)
    for hemi, structure in (("L", "CortexLeft"), ("R", "CortexRight")):
        data = rng.standard_normal((n_vertices, n_frames)).astype(np.float32)
        arrays = [nib.gifti.GiftiDataArray(frame, meta={"TimeStep": "2000"}) for frame in data.T]
        nib.save(nib.gifti.GiftiImage(darrays=arrays, meta=nib.gifti.GiftiMetaData(
            {"AnatomicalStructurePrimary": structure})),
            folder / f"sub-01_task-rest_hemi-{hemi}_space-{space}_bold.func.gii")
    return folder / f"sub-01_task-rest_hemi-L_space-{space}_bold.func.gii"


def test_fsaverage6_data_are_refused_by_the_job_with_what_to_do(tmp_path):
    for space in ("fsaverage6", "fsaverage"):
        with pytest.raises(SpaceError, match="mri_surf2surf") as info:
            load_template_mesh(space, "left")
        assert all(hint in str(info.value) for hint in ("fsaverage5", "--cifti-output",
                                                         "--surface-mesh", f"subjects/{space}/surf"))
    bold = _gifti_pair(tmp_path, "fsaverage6", 40962)
    np.savetxt(tmp_path / "confounds.txt", np.random.default_rng(1).standard_normal((60, 3)))
    parameters = TargetingParameters(cleaning=BoldCleaningParameters(confounds_all_columns=True),
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    with pytest.raises(SpaceError, match="no fsaverage6 mesh"):
        compute_surface_targets(bold, tmp_path / "confounds.txt", parameters)


# ------------------------------------------------------- a generated fsLR-91k CIFTI dtseries

def _ar1(rng: np.random.Generator, n_frames: int, n: int, phi: float = 0.5) -> np.ndarray:
    noise = rng.standard_normal((n_frames, n))
    out = np.empty_like(noise)
    out[0] = noise[0]
    for t in range(1, n_frames):
        out[t] = phi * out[t - 1] + np.sqrt(1 - phi**2) * noise[t]
    return out


def write_fslr_dtseries(folder: Path, *, seed: int = 0, n_frames: int = 150, t_r: float = 2.0,
                        snr: float = 0.6, n_volume_voxels: int | None = None) -> dict:
    """A CIFTI-2 dtseries on fsLR 32k: the sgACC sphere carries s(t); a left-DLPFC vertex (drawn
    from ``seed``) loads ``-snr * s(t)`` with a 6 mm Gaussian taper; AR(1) noise elsewhere;
    the cortex models list the bundled masks' cortex vertices; a volume model holds the
    voxels of the 2 mm MNI grid within 6 mm of the right accumbens (white noise), or with
    ``n_volume_voxels`` that many grid voxels nearest (0, -12, 0) (32724 gives fMRIPrep's
    91282 grayordinates, for benchmarks/bench_surface.py).

    Returns the paths (``bold``, ``confounds``) and the truth (``target_vertex``,
    ``target_mm``, ``cortex``, ``volume_mask``, ``data``).
    """
    rng = np.random.default_rng(seed)
    cortex = {h: ~load_template_medial_wall("fsLR", HEMIS[h][0]) for h in HEMIS}
    xyz = {h: load_template_mesh("fsLR", HEMIS[h][0]).coords_mm for h in HEMIS}
    left = xyz["L"][cortex["L"]]
    search = (np.linalg.norm(left[:, None] - DLPFC_CENTRES[None], axis=2) <= 20.0).any(axis=1)
    target = int(np.flatnonzero(cortex["L"])[rng.choice(np.flatnonzero(search))])
    source = _ar1(rng, n_frames, 1)[:, 0]
    blocks = []
    for hemi in HEMIS:
        points = xyz[hemi][cortex[hemi]]
        block = _ar1(rng, n_frames, points.shape[0])
        block += source[:, None] * (np.linalg.norm(points - SGACC_RIGHT, axis=1) <= 10.0)
        if hemi == "L":
            taper = np.exp(-np.sum((points - xyz["L"][target]) ** 2, axis=1) / (2 * 6.0**2))
            block -= snr * source[:, None] * taper[None]
        blocks.append(block)
    ijk = np.indices((91, 109, 91)).reshape(3, -1).T
    volume = np.linalg.norm(ijk @ MNI_2MM[:3, :3].T + MNI_2MM[:3, 3] - ACCUMBENS_RIGHT_MM,
                            axis=1) <= 6.0
    if n_volume_voxels is not None:
        depth = np.linalg.norm(ijk @ MNI_2MM[:3, :3].T + MNI_2MM[:3, 3] - (0.0, -12.0, 0.0), axis=1)
        volume = np.zeros(depth.size, dtype=bool)
        volume[np.argsort(depth, kind="stable")[:n_volume_voxels]] = True
    blocks.append(rng.standard_normal((n_frames, int(volume.sum()))))
    models = (cifti2.BrainModelAxis.from_mask(cortex["L"], "CortexLeft")
              + cifti2.BrainModelAxis.from_mask(cortex["R"], "CortexRight")
              + cifti2.BrainModelAxis.from_mask(volume.reshape(91, 109, 91), "accumbens_right",
                                                affine=MNI_2MM))
    data = np.concatenate(blocks, axis=1).astype(np.float32)
    bold = folder / "sub-01_task-rest_space-fsLR_den-91k_bold.dtseries.nii"
    series = cifti2.SeriesAxis(0.0, t_r, n_frames, unit="SECOND")
    nib.save(cifti2.Cifti2Image(data, header=(series, models)), bold)
    confounds = folder / "sub-01_task-rest_confounds.txt"
    np.savetxt(confounds, rng.standard_normal((n_frames, 6)))
    return {"bold": bold, "confounds": confounds, "target_vertex": target,
            "target_mm": xyz["L"][target], "cortex": cortex, "volume_mask": volume, "data": data}


@pytest.fixture(scope="module")
def fslr_scan(tmp_path_factory):
    return write_fslr_dtseries(tmp_path_factory.mktemp("fslr"), seed=4)


def test_fslr_cifti_dtseries_end_to_end_recovers_the_planted_target(fslr_scan):
    parameters = TargetingParameters(methods=("peak", "cluster"),
                                     cleaning=BoldCleaningParameters(confounds_all_columns=True),
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    result = compute_surface_targets(fslr_scan["bold"], fslr_scan["confounds"], parameters)
    left = load_template_mesh("fsLR", "left").coords_mm
    cortex = fslr_scan["cortex"]
    assert result.space == "fsLR" and result.n_mesh_vertices == {"L": 32492, "R": 32492}
    # the seed: the right cortical vertices of the sphere, counted here from the mesh
    right = load_template_mesh("fsLR", "right").coords_mm
    expected_seed = int((cortex["R"] & (np.linalg.norm(right - SGACC_RIGHT, axis=1) <= 10)).sum())
    assert result.seed_info["R"]["n_vertices"] == expected_seed
    assert result.seed_info["R"]["coordinate_space"] == "MNI152NLin6Asym"
    # chance: a vertex of the search region drawn at random (median distance to the truth)
    near = (np.linalg.norm(left[:, None] - DLPFC_CENTRES[None], axis=2) <= 20).any(axis=1)
    chance = float(np.median(np.linalg.norm(left[near & cortex["L"]] - fslr_scan["target_mm"],
                                            axis=1)))
    errors = {}
    for target in result.targets:
        vertex = target.details["vertex"]
        assert target.details["hemisphere"] == "L" and cortex["L"][vertex]
        np.testing.assert_allclose(target.coordinate_mm, left[vertex])   # a vertex of fsLR 32k
        errors[target.method] = float(np.linalg.norm(target.coordinate_mm - fslr_scan["target_mm"]))
    print(f"fsLR CIFTI: errors {errors} mm (planted vertex {fslr_scan['target_vertex']}), "
          f"chance {chance:.1f} mm")
    assert errors["cluster"] <= 6.0 and errors["peak"] <= 6.0
    assert errors["cluster"] <= 0.25 * chance


def test_cifti_volume_part_and_its_seed(fslr_scan):
    volume = load_cifti_volume_part(fslr_scan["bold"])
    written = fslr_scan["volume_mask"]
    assert volume.n_voxels == int(written.sum()) and volume.volume_shape == (91, 109, 91)
    np.testing.assert_allclose(volume.affine, MNI_2MM)
    ijk = np.indices((91, 109, 91)).reshape(3, -1).T[written]
    assert np.array_equal(np.sort(np.ravel_multi_index(volume.ijk.T, (91, 109, 91))),
                          np.sort(np.ravel_multi_index(ijk.T, (91, 109, 91))))
    assert set(volume.structure) == {"CIFTI_STRUCTURE_ACCUMBENS_RIGHT"}
    n_cortex = int(fslr_scan["cortex"]["L"].sum() + fslr_scan["cortex"]["R"].sum())
    assert np.array_equal(volume.columns, np.arange(n_cortex, n_cortex + volume.n_voxels))
    first = np.array([0, volume.n_voxels - 1])
    assert np.array_equal(volume.read(first), fslr_scan["data"][:, volume.columns[first]])
    mask, record = cifti_volume_seed(volume)
    expected = np.linalg.norm(volume.coords_mm - SGACC_RIGHT, axis=1) <= 10.0
    assert np.array_equal(mask, expected) and 0 < mask.sum() < volume.n_voxels
    assert record["structures"] == {"ACCUMBENS_RIGHT": int(expected.sum())}
    assert record["radius_mm"] == 10.0 and record["centers_mm"] == [SGACC_RIGHT.tolist()]
