"""Label files as regions on the surface (issue 15 item 3): GIFTI label pairs, CIFTI dlabel.

Label files are written here with nibabel from known vertex sets; the readers must select
exactly those vertices, refuse the wrong hemisphere, the wrong mesh and unknown labels with
typed errors, and the surface job must use them as its seed and search region.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel import cifti2

from test_surface_meshes import SGACC_RIGHT, write_fslr_dtseries
from tmsnet.exceptions import (
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    SpaceError,
)
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.io.surface import load_surface_bold
from tmsnet.io.surface_labels import check_label_mesh, load_surface_labels, select_label
from tmsnet.simulate.surface import simulate_surface_dataset
from tmsnet.surface.mesh import load_template_medial_wall, load_template_mesh
from tmsnet.targeting.regions import SearchRegion, SeedRegion, seed_mask
from tmsnet.targeting.surface_regions import surface_regions
from tmsnet.targeting.surface_workflow import compute_surface_targets
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

N_FSA5 = 10242
N_FSLR = 32492
STRUCTURES = {"L": "CortexLeft", "R": "CortexRight"}
DLPFC_CENTRES = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                          (-37.0, 26.0, 49.0)])
ALL_COLUMNS = BoldCleaningParameters(confounds_all_columns=True)
NO_BOOTSTRAP = UncertaintyParameters(n_bootstrap=0)


def write_label_pair(folder: Path, stem: str, values: dict[str, np.ndarray],
                     table: dict[int, str], *, structures: dict[str, str] = STRUCTURES,
                     left: str = "hemi-L", right: str = "hemi-R") -> Path:
    """``<stem with hemi>.label.gii`` for both hemispheres; returns the left file."""
    paths = {}
    for hemi, tag in (("L", left), ("R", right)):
        labels = nib.gifti.GiftiLabelTable()
        for key, name in table.items():
            entry = nib.gifti.GiftiLabel(key=key, red=1.0, green=0.5, blue=0.0, alpha=1.0)
            entry.label = name
            labels.labels.append(entry)
        array = nib.gifti.GiftiDataArray(np.asarray(values[hemi], dtype=np.int32),
                                         intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32")
        image = nib.gifti.GiftiImage(labeltable=labels, darrays=[array], meta=nib.gifti.GiftiMetaData(
            {"AnatomicalStructurePrimary": structures[hemi]}))
        paths[hemi] = folder / stem.format(hemi=tag)
        nib.save(image, paths[hemi])
    return paths["L"]


def write_dlabel(path: Path, cortex: dict[str, np.ndarray], values: dict[str, np.ndarray],
                 table: dict[int, str], *, n_maps: int = 1, n_volume: int = 0) -> Path:
    """A CIFTI dlabel whose cortex models list the ``cortex`` vertices, with ``values`` there."""
    models = (cifti2.BrainModelAxis.from_mask(cortex["L"], "CortexLeft")
              + cifti2.BrainModelAxis.from_mask(cortex["R"], "CortexRight"))
    row = [np.asarray(values[h])[cortex[h]] for h in ("L", "R")]
    if n_volume:
        mask = np.zeros((10, 10, 10), dtype=bool)
        mask.flat[:n_volume] = True
        models = models + cifti2.BrainModelAxis.from_mask(mask, "thalamus_left", affine=np.eye(4))
        row.append(np.ones(n_volume))
    colours = {k: (name, (1.0, 0.0, 0.0, 1.0)) for k, name in table.items()}
    maps = cifti2.LabelAxis([f"map{i}" for i in range(n_maps)], [colours] * n_maps)
    data = np.tile(np.concatenate(row), (n_maps, 1)).astype(np.float32)
    nib.save(cifti2.Cifti2Image(data, header=(maps, models)), path)
    return path


def _vertex_sets(rng: np.random.Generator, n: int, sizes: dict[int, int]) -> dict[int, np.ndarray]:
    order = rng.permutation(n)
    out, start = {}, 0
    for value, size in sizes.items():
        out[value] = np.sort(order[start:start + size])
        start += size
    return out


def _values(n: int, sets: dict[int, np.ndarray]) -> np.ndarray:
    values = np.zeros(n, dtype=np.int64)
    for value, vertices in sets.items():
        values[vertices] = value
    return values


# ------------------------------------------------------------------------------ readers

def test_gifti_label_pair_selects_exactly_the_vertices_written(tmp_path):
    rng = np.random.default_rng(0)
    sets = {h: _vertex_sets(rng, N_FSA5, {2: 40, 3: 7}) for h in ("L", "R")}
    table = {0: "???", 2: "DLPFC", 3: "other"}
    left = write_label_pair(tmp_path, "sub-01_{hemi}_desc-x_dseg.label.gii",
                            {h: _values(N_FSA5, sets[h]) for h in sets}, table)
    labels = load_surface_labels(left)
    assert labels.n_mesh_vertices == {"L": N_FSA5, "R": N_FSA5} and labels.source_format == "gifti"
    assert labels.inputs["right"].name == "sub-01_hemi-R_desc-x_dseg.label.gii"
    for asked, value in (("DLPFC", 2), ("dlpfc", 2), (3, 3), ("3", 3), ("other", 3)):
        masks, record = select_label(labels, asked)
        for hemi in ("L", "R"):
            assert np.array_equal(np.flatnonzero(masks[hemi]), sets[hemi][value])
        assert record["values"] == [value] and record["n_mesh_vertices"] == {
            h: sets[h][value].size for h in sets}
    # FreeSurfer naming (lh./rh.) and a binary file, where no label needs naming
    binary = write_label_pair(tmp_path, "{hemi}.roi.label.gii",
                              {h: (_values(N_FSA5, sets[h]) == 3).astype(int) for h in sets},
                              {0: "unknown", 1: "roi"}, left="lh", right="rh")
    masks, record = select_label(load_surface_labels(binary))
    assert record["names"] == ["roi"]
    assert all(np.array_equal(np.flatnonzero(masks[h]), sets[h][3]) for h in sets)


def test_cifti_dlabel_selects_exactly_the_vertices_written(tmp_path):
    rng = np.random.default_rng(1)
    wall = {h: ~load_template_medial_wall("fsLR", n) for h, n in (("L", "left"), ("R", "right"))}
    sets = {h: _vertex_sets(rng, N_FSLR, {5: 60, 181: 30}) for h in ("L", "R")}
    path = write_dlabel(tmp_path / "x.dlabel.nii", wall, {h: _values(N_FSLR, sets[h]) for h in sets},
                        {0: "???", 5: "L_46_ROI", 181: "R_46_ROI"}, n_volume=8)
    labels = load_surface_labels(path)
    assert labels.n_volume == 8 and labels.source_format == "cifti"
    for hemi in ("L", "R"):                  # vertices the cortex model leaves out: no label
        assert np.all(labels.keys[hemi][~wall[hemi]] == -1)
    masks, _ = select_label(labels, "L_46_ROI")
    for hemi in ("L", "R"):
        assert np.array_equal(np.flatnonzero(masks[hemi]),
                              np.intersect1d(sets[hemi][5], np.flatnonzero(wall[hemi])))
    masks, record = select_label(labels, 181)
    assert record["names"] == ["R_46_ROI"]
    assert np.array_equal(np.flatnonzero(masks["R"]),
                          np.intersect1d(sets["R"][181], np.flatnonzero(wall["R"])))


def test_wrong_files_and_unknown_labels_are_refused_with_typed_errors(tmp_path):
    values = {"L": np.r_[np.ones(10, int), np.zeros(N_FSA5 - 10, int)], "R": np.zeros(N_FSA5, int)}
    values["L"][20:25] = 2
    table = {0: "???", 1: "Area", 2: "AREA"}
    swapped = write_label_pair(tmp_path, "a_{hemi}.label.gii", values, table,
                               structures={"L": "CortexRight", "R": "CortexLeft"})
    with pytest.raises(SpaceError, match="CortexRight"):
        load_surface_labels(swapped)
    good = write_label_pair(tmp_path, "b_{hemi}.label.gii", values, table)
    with pytest.raises(InvalidParameterError, match="LEFT"):
        load_surface_labels(tmp_path / "b_hemi-R.label.gii")
    (tmp_path / "c_hemi-L.label.gii").write_bytes(good.read_bytes())
    with pytest.raises(InputFileNotFoundError, match="c_hemi-R.label.gii"):
        load_surface_labels(tmp_path / "c_hemi-L.label.gii")
    (tmp_path / "e_hemi-L.func.gii").write_bytes(good.read_bytes())
    with pytest.raises(InvalidParameterError, match="not a surface label file"):
        load_surface_labels(tmp_path / "e_hemi-L.func.gii")
    labels = load_surface_labels(good)
    with pytest.raises(SpaceError, match=f"10242 vertices.*{N_FSLR}"):
        check_label_mesh(labels, {"L": N_FSLR, "R": N_FSLR}, "fsLR")
    with pytest.raises(InvalidParameterError, match="no label named 'dlpfc'.*'Area'"):
        select_label(labels, "dlpfc")
    with pytest.raises(InvalidParameterError, match="no label value 7"):
        select_label(labels, 7)
    with pytest.raises(InvalidParameterError, match="2 labels other than 0"):
        select_label(labels)
    with pytest.raises(InvalidParameterError, match="case is ignored"):
        select_label(labels, "area")
    assert select_label(labels, "AREA")[1]["values"] == [2]         # exact match wins
    fractional = write_label_pair(tmp_path, "d_{hemi}.label.gii", values, table)
    image = nib.load(fractional)
    image.darrays[0] = nib.gifti.GiftiDataArray(np.full(N_FSA5, 0.5, np.float32))
    nib.save(image, fractional)
    with pytest.raises(InvalidImageError, match="non-integer"):
        load_surface_labels(fractional)
    cortex = {h: np.ones(N_FSLR, bool) for h in ("L", "R")}
    two_maps = write_dlabel(tmp_path / "two.dlabel.nii", cortex,
                            {h: np.zeros(N_FSLR, int) for h in cortex}, {0: "???"}, n_maps=2)
    with pytest.raises(InvalidImageError, match="2 label maps"):
        load_surface_labels(two_maps)


def test_label_parameters_go_with_label_files(tmp_path):
    with pytest.raises(InvalidParameterError, match="--seed-label.*not given"):
        SeedRegion(seed_label="sgACC")
    with pytest.raises(InvalidParameterError, match="roi.nii.gz"):
        SeedRegion(seed_roi=tmp_path / "roi.nii.gz", seed_label="1")
    with pytest.raises(InvalidParameterError, match="--search-label"):
        SearchRegion(search_label="DLPFC")
    assert SearchRegion(search_roi=tmp_path / "x.dlabel.nii", search_label="3").search_label == "3"
    image = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(InvalidParameterError, match="surface label file"):  # on a volume job
        seed_mask(image, np.ones((4, 4, 4), bool), SeedRegion(seed_roi=tmp_path / "s.label.gii"))


# ------------------------------------------------------- regions on a generated scan

@pytest.fixture(scope="module")
def fsa5_subject(tmp_path_factory):
    return simulate_surface_dataset(tmp_path_factory.mktemp("fsa5"), n_subjects=1, seed=3,
                                    snr=0.5, n_frames=200)[0]


def _pial(hemi: str) -> np.ndarray:
    from nilearn.datasets import load_fsaverage

    return np.asarray(load_fsaverage("fsaverage5")["pial"].parts[hemi].coordinates, float)


def test_label_regions_are_the_label_vertices_with_signal(fsa5_subject, tmp_path):
    bold = load_surface_bold(fsa5_subject.bold_left)
    meshes = {h: load_template_mesh("fsaverage5", n) for h, n in (("L", "left"), ("R", "right"))}
    default = surface_regions(bold, meshes, TargetingParameters())
    custom = surface_regions(bold, meshes, TargetingParameters(
        seed_region=SeedRegion(seed_coordinates_mm=[tuple(SGACC_RIGHT)])))
    assert np.array_equal(custom[0], default[0])                 # --seed-coords on the surface
    # the sgACC sphere and the DLPFC spheres written as labels, medial wall included
    pial = {"L": _pial("left"), "R": _pial("right")}
    sphere = {h: np.linalg.norm(pial[h] - SGACC_RIGHT, axis=1) <= 10.0 for h in pial}
    dlpfc = (np.linalg.norm(pial["L"][:, None] - DLPFC_CENTRES[None], axis=2) <= 20).any(axis=1)
    values = {"L": np.where(dlpfc, 7, 0) + np.where(sphere["L"], 9, 0), "R": np.where(sphere["R"], 9, 0)}
    assert not (dlpfc & sphere["L"]).any()
    path = write_label_pair(tmp_path, "sub-01_{hemi}_regions.label.gii", values,
                            {0: "???", 7: "dlpfc", 9: "sgacc"})
    parameters = TargetingParameters(seed_region=SeedRegion(seed_roi=path, seed_label="sgacc"),
                                     search_region=SearchRegion(search_roi=path, search_label="7"))
    seed, search, seed_info, search_info = surface_regions(bold, meshes, parameters)
    assert np.array_equal(seed, default[0]) and np.array_equal(search, default[1])
    in_data = {h: np.isin(np.flatnonzero(sphere[h]), bold.vertex[bold.hemisphere == h]) for h in pial}
    assert seed_info["n_outside_data"] == {h: int((~in_data[h]).sum()) for h in pial}
    assert sum(seed_info["n_outside_data"].values()) > 0          # |x| < 4 mm: the medial wall
    assert search_info["names"] == ["dlpfc"] and search_info["space"] == "fsaverage5"
    wall_only = write_label_pair(tmp_path, "w_{hemi}.label.gii",
                                 {h: (np.abs(pial[h][:, 0]) < 2.0).astype(int) for h in pial},
                                 {0: "???", 1: "wall"})
    with pytest.raises(EmptyRegionError, match="none with usable signal"):
        surface_regions(bold, meshes, TargetingParameters(
            seed_region=SeedRegion(seed_roi=wall_only)))
    fslr = write_dlabel(tmp_path / "fslr.dlabel.nii", {h: np.ones(N_FSLR, bool) for h in "LR"},
                        {h: np.ones(N_FSLR, int) for h in "LR"}, {0: "???", 1: "all"})
    with pytest.raises(SpaceError, match="fsaverage5 mesh has 10242"):
        surface_regions(bold, meshes, TargetingParameters(
            search_region=SearchRegion(search_roi=fslr)))
    with pytest.raises(InvalidParameterError, match="not a surface label file"):
        surface_regions(bold, meshes, TargetingParameters(
            seed_region=SeedRegion(seed_roi=tmp_path / "seed.nii.gz")))


def test_gifti_search_label_restricts_the_job(fsa5_subject, tmp_path):
    """A search label that leaves out the planted target: every target lies in the label."""
    left = _pial("left")
    dlpfc = (np.linalg.norm(left[:, None] - DLPFC_CENTRES[None], axis=2) <= 20).any(axis=1)
    away = dlpfc & (np.linalg.norm(left - fsa5_subject.target_mm, axis=1) > 25.0)
    path = write_label_pair(tmp_path, "away_{hemi}.label.gii",
                            {"L": away.astype(int), "R": np.zeros(N_FSA5, int)},
                            {0: "???", 1: "away"})
    parameters = TargetingParameters(methods=("peak", "cluster"), cleaning=ALL_COLUMNS,
                                     uncertainty=NO_BOOTSTRAP,
                                     search_region=SearchRegion(search_roi=path))
    result = compute_surface_targets(fsa5_subject.bold_left, fsa5_subject.confounds, parameters)
    assert result.search_info["type"] == "label" and result.search_info["n_vertices"]["R"] == 0
    # both label files are inputs of the run (hashed into its sidecars)
    labels = {p.name for k, p in result.inputs.items() if k.startswith("search_label_")}
    assert labels == {"away_hemi-L.label.gii", "away_hemi-R.label.gii"}
    for target in result.targets:
        assert target.details["hemisphere"] == "L" and away[target.details["vertex"]]
        assert np.linalg.norm(target.coordinate_mm - fsa5_subject.target_mm) > 25.0


def test_cifti_dlabel_seed_and_search_regions_end_to_end(tmp_path):
    """fsLR CIFTI with both regions from one dlabel: the seed label holds the sgACC sphere's
    cortical vertices, the search label a 15 mm patch around the planted target."""
    scan = write_fslr_dtseries(tmp_path, seed=7)
    cortex = scan["cortex"]
    xyz = {h: load_template_mesh("fsLR", n).coords_mm for h, n in (("L", "left"), ("R", "right"))}
    sgacc = {h: np.linalg.norm(xyz[h] - SGACC_RIGHT, axis=1) <= 10.0 for h in xyz}
    patch = np.linalg.norm(xyz["L"] - scan["target_mm"], axis=1) <= 15.0
    values = {"L": np.where(sgacc["L"], 1, 0) + np.where(patch & ~sgacc["L"], 2, 0),
              "R": np.where(sgacc["R"], 1, 0)}
    path = write_dlabel(tmp_path / "regions.dlabel.nii", cortex, values,
                        {0: "???", 1: "sgACC", 2: "patch"})
    parameters = TargetingParameters(
        methods=("peak", "cluster"), cleaning=ALL_COLUMNS, uncertainty=NO_BOOTSTRAP,
        seed_region=SeedRegion(seed_roi=path, seed_label="sgACC"),
        search_region=SearchRegion(search_roi=path, search_label="patch"))
    result = compute_surface_targets(scan["bold"], scan["confounds"], parameters)
    assert result.seed_info["n_vertices"] == {h: int((sgacc[h] & cortex[h]).sum()) for h in "LR"}
    assert result.search_info["n_vertices"]["L"] == int((patch & cortex["L"]).sum())
    errors = {}
    for target in result.targets:
        assert target.details["hemisphere"] == "L" and patch[target.details["vertex"]]
        errors[target.method] = float(np.linalg.norm(target.coordinate_mm - scan["target_mm"]))
    print(f"fsLR CIFTI with dlabel regions: errors {errors} mm")
    assert max(errors.values()) <= 6.0                 # the patch alone allows up to 15 mm
