"""The seedmap method on the cortical surface (issue 15 item 4).

The bundled fsaverage5 seedmap (the bundled volume map projected onto the surface), the
surface ``tmsnet seedmap build``, ``--seedmap`` on the surface job with its refusals,
planted truth on the surface generator, and the real LEMON scan from the command line.
"""

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from accuracy_baselines import check_beats_baselines, distances
from tmsnet.cli import main
from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError, SpaceError
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.simulate.surface import simulate_surface_dataset
from tmsnet.spaces import MNI305_TO_MNI152
from tmsnet.targeting.group_seedmap import build_group_seedmap
from tmsnet.targeting.seedmap import (
    BUNDLED_SEEDMAP,
    BUNDLED_SURFACE_SEEDMAP,
    SeedmapOptions,
    load_seedmap_weights,
    read_surface_seedmap,
    surface_seedmap_sidecar,
)
from tmsnet.targeting.surface_workflow import compute_surface_targets
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

ROOT = Path(__file__).resolve().parents[1]
LEMON = ROOT.parent / "shared" / "data" / "lemon_fsaverage5"
LEMON_LH = LEMON / "sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.lh.mgz"
LEMON_CONFOUNDS = LEMON / "sub-010188_ses-02_task-rest_acq-AP_run-01_confounds.txt"
#: Published coordinates (MNI152, mm; REFERENCES.md section 1, Fox et al. 2012).
SGACC = np.array([6.0, 16.0, -10.0])
DLPFC = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                  (-37.0, 26.0, 49.0)])
N_FSA5 = 10242
ALL_COLUMNS = BoldCleaningParameters(confounds_all_columns=True)
#: Signal level of the planted-truth subjects (see test_seedmap_finds_the_planted_surface_target).
PLANTED_SNR = 1.0


def _mesh(kind):
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")[kind]
    return {h: np.asarray(mesh.parts[p].coordinates, float) for h, p in (("L", "left"),
                                                                          ("R", "right"))}


def _search_vertices(left_pial):
    return (np.linalg.norm(left_pial[:, None, :] - DLPFC[None], axis=2) <= 20.0).any(axis=1)


def _volume_at(points_305):
    """The volume map's nearest voxel at MNI305 points (the affine typed from spaces.py)."""
    img = nib.load(BUNDLED_SEEDMAP)
    volume = np.asarray(img.get_fdata())
    xyz = points_305 @ MNI305_TO_MNI152[:3, :3].T + MNI305_TO_MNI152[:3, 3]
    ijk = np.rint((xyz - img.affine[:3, 3]) / np.diag(img.affine)[:3]).astype(int)
    inside = np.all((ijk >= 0) & (ijk < volume.shape), axis=1)
    out = np.zeros(len(points_305))
    out[inside] = volume[tuple(ijk[inside].T)]
    return out


# ----------------------------------------------------------------------- the bundled map


def test_bundled_surface_seedmap_projects_the_volume_map():
    """Structure of the bundled fsaverage5 map against the volume map it was projected from.

    The volume map (8 simulated scans, noise floor 0.2) is positive around the sgACC and has
    no negative voxel: the DLPFC anticorrelation of people whose targets lie in different
    places stays below its floor (tests/test_targeting_uncertainty.py). So its projection has
    no negative part either (its "most negative part" is the zero of the whole DLPFC region),
    and its sign must agree with the volume map read independently (nearest voxel at the
    midthickness) at the same points.
    """
    seedmap = read_surface_seedmap(None)
    sidecar = json.loads(surface_seedmap_sidecar(BUNDLED_SURFACE_SEEDMAP).read_text())
    assert seedmap.space == sidecar["Space"] == "fsaverage5" and seedmap.bundled
    assert "simulated sample cohort" in sidecar["Description"]
    floor = sidecar["Parameters"]["min_abs_r"]
    assert floor == json.loads(BUNDLED_SEEDMAP.with_name(BUNDLED_SEEDMAP.name.replace(
        ".nii.gz", ".json")).read_text())["Parameters"]["min_abs_r"]
    pial, white = _mesh("pial"), _mesh("white_matter")
    assert np.asarray(nib.load(BUNDLED_SEEDMAP).dataobj).min() >= 0  # the volume map's sign
    volume_peak = None
    for hemi in ("L", "R"):
        values = seedmap.values[hemi]
        assert values.shape == (N_FSA5,)
        kept = values[values != 0]
        assert kept.min() >= floor - 1e-6 and kept.max() < 1.0
        assert sidecar["Parameters"]["n_nonzero_vertices"][hemi] == kept.size
        # every weighted vertex is near the sgACC; none is on the DLPFC
        near = np.linalg.norm(pial[hemi] - SGACC, axis=1)
        assert near[values != 0].max() < 20.0
        volume = _volume_at((pial[hemi] + white[hemi]) / 2)
        strong = volume > 0.5
        assert strong.any() == (hemi == "R")  # the seed sphere at x = +6 mm
        assert np.all(values[strong] > 0)  # sign agreement where the volume map is clear
        assert np.all(volume[values > 0.5] > 0)
        assert np.all(values[volume == 0] < 0.5)  # at most the projection's reach
        if hemi == "R":
            volume_peak = pial[hemi][int(np.argmax(volume))]
            surface_peak = pial[hemi][int(np.argmax(values))]
    assert not np.any(seedmap.values["L"][_search_vertices(pial["L"])])
    # the two peaks agree within the 6-point projection's depth (~2.5 mm pial-white) + a voxel
    assert np.linalg.norm(surface_peak - volume_peak) < 6.0
    assert np.mean(seedmap.values["R"][np.linalg.norm(pial["R"] - SGACC, axis=1) <= 10]) > 0.3


def test_bundled_surface_seedmap_rebuilds_byte_identically(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "build_bundled_surface_seedmap", ROOT / "tools" / "build_bundled_surface_seedmap.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    written = tool.build(tmp_path)
    bundled = {"left": BUNDLED_SURFACE_SEEDMAP,
               "right": BUNDLED_SURFACE_SEEDMAP.with_name(
                   BUNDLED_SURFACE_SEEDMAP.name.replace("hemi-L", "hemi-R")),
               "sidecar": surface_seedmap_sidecar(BUNDLED_SURFACE_SEEDMAP)}
    for role, path in written.items():
        assert path.name == bundled[role].name
        assert path.read_bytes() == bundled[role].read_bytes(), role


# ----------------------------------------------------------------------- planted truth


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Five generated surface subjects, the seedmap (bundled map) and peak targets of each."""
    root = tmp_path_factory.mktemp("surface_seedmap")
    subjects = simulate_surface_dataset(root, n_subjects=5, seed=21, snr=PLANTED_SNR)
    parameters = TargetingParameters(methods=("seedmap", "peak"), cleaning=ALL_COLUMNS,
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    return root, [(s, compute_surface_targets(s.bold_left, s.confounds, parameters))
                  for s in subjects]


def _errors_and_baselines(found: np.ndarray, planted_mm: np.ndarray) -> tuple[np.ndarray, dict]:
    """The seedmap's errors and the medians of :func:`check_beats_baselines` (which asserts).

    Baselines: the fixed guess (centroid of the published search spheres on the left pial
    surface) and the bundled group map's own extremum in the search region.
    """
    left = _mesh("pial")["L"]
    search = _search_vertices(left)
    group = read_surface_seedmap(None).values["L"][search]
    baselines = {"fixed_guess": distances(left[search].mean(axis=0), planted_mm),
                 "group_extremum": distances(left[search][int(np.argmin(group))], planted_mm)}
    errors = distances(found, planted_mm)
    return errors, check_beats_baselines({"seedmap": errors}, baselines)


def _target(result, method):
    return next(t for t in result.targets if t.method == method)


def test_seedmap_finds_the_planted_surface_target(planted):
    """Median error <= 8 mm over 5 subjects (issue 15) and <= half the best baseline.

    Baselines (tests/accuracy_baselines.py): the fixed guess (centroid of the published
    search spheres on the left pial surface) and the group map's own extremum (its most
    negative search vertex; the bundled map is 0 over the whole region, so that is the
    region's first vertex: a fixed point as well).

    Seen (seed 21, snr 1.0): seedmap 0.0, 2.0, 4.9, 3.1, 2.5 mm (median 2.5); fixed
    guess 19.2 mm, group extremum 25.8 mm (limit 9.6 mm). The signal level matters on
    this generator. Its medial wall (|x| < 4 mm) keeps 7 of the 41 right pial vertices
    of the sgACC sphere, so the planted source sits on 7 vertices, while the bundled map
    weights 36 of the generator's cortical vertices, 29 of them 10-15 mm from the sgACC
    centre, where the generator puts smooth noise and no source. Seen at snr 0.5 (8
    subjects): median 28.0 mm (seed 3) and 12.6 mm (seed 11) against cluster's 4.6 and
    4.4; at snr 0.8, 4.5 and 9.1 mm. Group maps built from other generated subjects, or
    a subject's own sgACC map above r 0.5, do no better there: the noise is coherent
    over ~12 mm around the 7-vertex seed. With the medial wall of a real fMRIPrep scan
    instead (``medial_wall="fmriprep"``, 24 seed vertices kept) the next test holds the
    seedmap to the same limits at snr 0.5.
    """
    _, results = planted
    planted_mm = np.array([s.target_mm for s, _ in results])
    found = np.array([_target(r, "seedmap").coordinate_mm for _, r in results])
    errors, medians = _errors_and_baselines(found, planted_mm)
    print(f"seedmap errors {np.round(errors, 1)}; medians {medians}")
    assert medians["seedmap"] <= 8.0
    # the map's weights reach the data's vertices: its non-zero vertices off the generator's
    # medial wall (|x| < 4 mm), 36 of its 100
    bundled, pial = read_surface_seedmap(None), _mesh("pial")
    off_wall = sum(int(np.count_nonzero(bundled.values[h][np.abs(pial[h][:, 0]) >= 4.0]))
                   for h in ("L", "R"))
    for _, result in results:
        target = _target(result, "seedmap")
        assert target.details["hemisphere"] == "L" and target.r_at_target < 0
        assert result.parameters["seedmap"]["bundled"]
        assert result.parameters["seedmap"]["n_weighted_vertices"] == off_wall


def test_seedmap_at_half_the_signal_with_fmripreps_medial_wall(tmp_path):
    """The second signal level (issue 13 item 2): snr 0.5 on 16 random subjects (seed 2026,
    chosen before the run), with the medial wall a real fMRIPrep fsaverage5 scan has
    (``medial_wall="fmriprep"``: 24 of the 41 right sgACC-sphere vertices keep the source,
    against 7 in the generator's |x| < 4 mm band, where the bundled map's weights mostly fall
    on noise; see the docstring above). Median <= 8 mm and <= half the best baseline.

    Seen: 18.8, 8.1, 40.1, 0.0, 0.0, 0.0, 3.4, 1.5, 2.5, 13.7, 20.0, 1.8, 24.4, 4.8, 2.7,
    21.3 mm, median 4.1 mm (benchmarks/bench_surface_accuracy.py: 5-subject medians 2.5, 9.8,
    25.2, 5.7 mm over seeds 21, 3, 5, 11 with this wall, 6.6, 14.3, 27.0, 11.9 with the band;
    cluster 2.1-3.8 mm with either). Seedmap misses more often than cluster at this level,
    which is why surfaces default to cluster (docs/validation.md).
    """
    subjects = simulate_surface_dataset(tmp_path, n_subjects=16, seed=2026, snr=0.5,
                                        medial_wall="fmriprep")
    parameters = TargetingParameters(methods=("seedmap",), cleaning=ALL_COLUMNS,
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    found = np.array([compute_surface_targets(s.bold_left, s.confounds, parameters,
                                              n_jobs=1).targets[0].coordinate_mm
                      for s in subjects])
    planted_mm = np.array([s.target_mm for s in subjects])
    errors, medians = _errors_and_baselines(found, planted_mm)
    print(f"seedmap at snr 0.5 (fMRIPrep wall) {np.round(errors, 1)}; medians {medians}")
    assert medians["seedmap"] <= 8.0


def test_surface_seedmap_build_recovers_planted_structure(planted, capsys):
    """``tmsnet seedmap build`` on 2 generated subjects, against the mean Fisher z computed
    here from each subject's own sgACC map (the peak method's connectivity map), and against
    the planted structure: the sgACC seed positive, every planted target negative."""
    root, results = planted
    used = results[:2]
    out = root / "tpl-fsaverage5_hemi-L_desc-generated_seedmap.shape.gii"
    code = main(["seedmap", "build", "--bold", *[str(s.bold_left) for s, _ in used],
                 "--confounds", *[str(s.confounds) for s, _ in used],
                 "--confounds-all-columns", "--out", str(out), "--quiet", "--json"])
    assert code == 0
    sidecar = json.loads(capsys.readouterr().out)["sidecar"]
    assert sidecar["Space"] == "fsaverage5" and sidecar["Parameters"]["n_scans"] == 2
    assert sidecar["Parameters"]["cleaning"]["confounds_all_columns"] is True
    assert surface_seedmap_sidecar(out).is_file()
    built = read_surface_seedmap(out)
    assert built.space == "fsaverage5" and not built.bundled
    # direct computation: tanh(mean arctanh r) on every data vertex (the same in each subject)
    elements = used[0][1].elements
    maps = [_target(r, "peak").connectivity_r for _, r in used]
    expected = np.tanh(np.mean(np.arctanh(np.clip(maps, -0.9999999, 0.9999999)), axis=0))
    got = np.empty(elements.vertex.size)
    for hemi in ("L", "R"):
        on = elements.hemisphere == hemi
        got[on] = built.values[hemi][elements.vertex[on]]
        wall = np.ones(N_FSA5, bool)
        wall[elements.vertex[on]] = False
        assert not np.any(built.values[hemi][wall])  # vertices of no scan are 0
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # the planted structure
    pial = _mesh("pial")
    seed = (np.linalg.norm(pial["R"] - SGACC, axis=1) <= 10.0) & (np.abs(pial["R"][:, 0]) >= 4)
    assert built.values["R"][seed].mean() > 0.5
    search = _search_vertices(pial["L"])
    values = built.values["L"]
    print("at the planted targets", [round(float(values[s.target_vertex]), 3) for s, _ in used],
          "search-region percentiles 5, 25, 50:", np.round(np.percentile(values[search], [5, 25, 50]), 3))
    for subject, _ in used:
        assert values[subject.target_vertex] < np.percentile(values[search], 25), subject.subject
    lowest = pial["L"][search][int(np.argmin(values[search]))]
    assert min(np.linalg.norm(lowest - s.target_mm) for s, _ in used) <= 10.0


# ----------------------------------------------------------------------- refusals


def _write_pair(folder, name, n_vertices):
    from tmsnet.targeting.seedmap import write_surface_seedmap

    values = {h: np.full(n_vertices, 0.5) for h in ("L", "R")}
    return write_surface_seedmap(folder / name, values, {"Description": "test map"})["left"]


def test_surface_job_refuses_seedmaps_that_do_not_fit(planted, tmp_path):
    _, results = planted
    subject = results[0][0]

    def run(seedmap):
        parameters = TargetingParameters(methods=("seedmap",), cleaning=ALL_COLUMNS,
                                         uncertainty=UncertaintyParameters(n_bootstrap=0),
                                         method_options=(SeedmapOptions(seedmap=seedmap),))
        return compute_surface_targets(subject.bold_left, subject.confounds, parameters)

    with pytest.raises(SpaceError, match="volume .NIfTI. map but the BOLD is on a surface"):
        run(BUNDLED_SEEDMAP)
    fsaverage4 = _write_pair(tmp_path, "tpl-fsaverage5_hemi-L_desc-small_seedmap.shape.gii", 2562)
    with pytest.raises(SpaceError, match="has 2562 vertices but the fsaverage5 BOLD's L mesh"):
        run(fsaverage4)
    other = _write_pair(tmp_path, "tpl-fsaverage6_hemi-L_desc-other_seedmap.shape.gii", N_FSA5)
    with pytest.raises(SpaceError, match="on fsaverage6 but the BOLD is on fsaverage5"):
        run(other)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    left = _write_pair(lonely, "tpl-fsaverage5_hemi-L_desc-x_seedmap.shape.gii", N_FSA5)
    left.with_name(left.name.replace("hemi-L", "hemi-R")).unlink()
    with pytest.raises(InputFileNotFoundError, match="hemi-R"):
        run(left)
    # and the other way round: a surface map for a volume BOLD
    reference = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    with pytest.raises(SpaceError, match="surface .GIFTI. map but the BOLD is a"):
        load_seedmap_weights(BUNDLED_SURFACE_SEEDMAP, reference=reference,
                             brain_mask=np.ones((4, 4, 4), bool), space="MNI152NLin2009cAsym")


def test_bundled_map_of_another_space_is_skipped_beside_other_methods(planted, tmp_path,
                                                                      monkeypatch):
    """The bundled map is fsaverage5 only: on a scan of another space the seedmap method is
    skipped with a warning when other methods run (``--method all`` on fsLR), refused alone."""
    import tmsnet.targeting.seedmap as seedmap_module

    _, results = planted
    subject = results[0][0]
    elsewhere = _write_pair(tmp_path, "tpl-fsaverage6_hemi-L_desc-x_seedmap.shape.gii", N_FSA5)
    monkeypatch.setattr(seedmap_module, "BUNDLED_SURFACE_SEEDMAP", elsewhere)

    def run(methods):
        return compute_surface_targets(subject.bold_left, subject.confounds, TargetingParameters(
            methods=methods, cleaning=ALL_COLUMNS, uncertainty=UncertaintyParameters(n_bootstrap=0)))

    with pytest.raises(SpaceError, match="on fsaverage6 but the BOLD is on fsaverage5"):
        run(("seedmap",))
    result = run(("cluster", "seedmap"))
    assert [t.method for t in result.targets] == ["cluster"]
    assert result.parameters["methods"] == ["cluster"] and result.parameters["seedmap"] is None
    assert any(w.startswith("Method seedmap skipped: the bundled surface seedmap is on "
                            "fsaverage6") for w in result.warnings)
    assert "seedmap" not in result.inputs


def test_seedmap_build_refuses_mixed_inputs_and_wrong_output_names(planted, tmp_path, capsys):
    _, results = planted
    subject = results[0][0]
    bolds, confounds = [subject.bold_left] * 2, [subject.confounds] * 2
    with pytest.raises(InvalidParameterError, match="GIFTI pair"):
        build_group_seedmap(bolds, confounds, out_path=tmp_path / "map.nii.gz")
    with pytest.raises(InvalidParameterError, match="only volume BOLD or only surface BOLD"):
        build_group_seedmap([subject.bold_left, tmp_path / "x_bold.nii.gz"], confounds,
                            out_path=tmp_path / "map.nii.gz")
    with pytest.raises(InvalidParameterError, match="hemi-L entity"):
        build_group_seedmap(bolds, confounds, out_path=tmp_path / "map.shape.gii",
                            cleaning=ALL_COLUMNS)
    assert not list(tmp_path.iterdir())
    # on the command line: a volume map for a surface scan is a clear error, nothing written
    out = tmp_path / "out"
    code = main(["target", "--bold", str(subject.bold_left), "--confounds", str(subject.confounds),
                 "--confounds-all-columns", "--method", "seedmap", "--seedmap",
                 str(BUNDLED_SEEDMAP), "--out", str(out), "--quiet"])
    assert code == 1
    assert "give a surface seedmap" in capsys.readouterr().err
    assert not out.exists() or not list(out.rglob("*_target.json"))


# ----------------------------------------------------------------------- the real scan


def test_lemon_scan_with_the_seedmap_method(tmp_path, capsys):
    """The real LEMON scan (fsaverage5, 652 frames, TR 1.4 s), --method seedmap, bundled map.

    Seen (--n-bootstrap 20): (-41.8, 22.6, 42.6) mm on fsaverage5 (vertex 2923 L),
    r = -0.376, 95 % radius 13.0 mm, split-half 12.2 mm; 60 weighted vertices (the others of
    the map's 100 are on LEMON's medial wall). The seedmap-weighted map keeps the structure
    of the sgACC map: positive over the posterior cingulate / precuneus, lower over the DLPFC.
    """
    if not LEMON.is_dir():
        pytest.skip(f"real data not present: {LEMON}")
    out = tmp_path / "out"
    code = main(["target", "--bold", str(LEMON_LH), "--confounds", str(LEMON_CONFOUNDS),
                 "--confounds-all-columns", "--space", "fsaverage5", "--t-r", "1.4",
                 "--method", "seedmap", "--n-bootstrap", "20", "--no-report", "--out", str(out),
                 "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    target = summary["targets"][0]
    print({k: target[k] for k in ("x", "y", "z", "vertex", "r_at_target")}, target["uncertainty"])
    assert target["method"] == "seedmap" and target["hemisphere"] == "L"
    xyz = np.array([target["x"], target["y"], target["z"]])
    assert np.linalg.norm(DLPFC - xyz, axis=1).min() <= 20.0 + 0.01
    assert target["r_at_target"] < -0.1
    u = target["uncertainty"]
    assert 0 < u["p95_radius_mm"] < 60 and u["split_half_distance_mm"] is not None
    record = json.loads(Path(summary["outputs"]["target_seedmap"]).read_text())
    used = record["Provenance"]["Parameters"]["seedmap"]
    assert used["bundled"] and used["space"] == "fsaverage5"
    assert 40 <= used["n_weighted_vertices"] <= 100
    assert record["Provenance"]["Sources"]["seedmap"]["sha256"] == used["sha256"]
    assert record["Provenance"]["Sources"]["seedmap_right"]["sha256"] == used["sha256_right"]
    pial = _mesh("pial")
    r = np.concatenate([nib.load(summary["outputs"][f"connectivity_r_seedmapweighted_{h}"])
                        .darrays[0].data for h in ("L", "R")])
    xyz_all = np.vstack([pial["L"], pial["R"]])
    pcc = np.linalg.norm(np.column_stack([np.abs(xyz_all[:, 0]) - 6.0, xyz_all[:, 1] + 52.0,
                                          xyz_all[:, 2] - 26.0]), axis=1) <= 12.0
    dlpfc = np.zeros(len(xyz_all), bool)
    dlpfc[:N_FSA5] = _search_vertices(pial["L"])
    r_pcc, r_dlpfc = float(np.nanmean(r[pcc])), float(np.nanmean(r[dlpfc]))
    print(f"seedmap-weighted map: PCC/precuneus {r_pcc:.3f}, DLPFC {r_dlpfc:.3f}")
    assert r_pcc > 0.2 and r_dlpfc < r_pcc - 0.2
