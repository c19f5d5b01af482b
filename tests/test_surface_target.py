"""The surface targeting job (issue 15): planted truth on generated fsaverage5 data, outputs,
and the real LEMON scan end to end from the command line."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.fmri.cleaning import BoldCleaningParameters
from tmsnet.simulate.surface import simulate_surface_dataset
from tmsnet.targeting.surface_workflow import compute_surface_targets
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters

LEMON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lemon_fsaverage5"
LEMON_LH = LEMON / "sub-010188_ses-02_task-rest_acq-AP_run-01.fsa5.lh.mgz"
LEMON_CONFOUNDS = LEMON / "sub-010188_ses-02_task-rest_acq-AP_run-01_confounds.txt"
#: Published DLPFC targets (MNI, mm; REFERENCES.md section 1, Fox et al. 2012 Table 1).
DLPFC = np.array([(-41.0, 16.0, 54.0), (-36.0, 39.0, 43.0), (-44.0, 40.0, 29.0),
                  (-37.0, 26.0, 49.0)])
ALL_COLUMNS = BoldCleaningParameters(confounds_all_columns=True)


def _pial():
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")["pial"]
    return {h: np.asarray(mesh.parts[p].coordinates) for h, p in (("L", "left"), ("R", "right"))}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    subjects = simulate_surface_dataset(tmp_path_factory.mktemp("surface"), n_subjects=5, seed=3,
                                        snr=0.5)
    parameters = TargetingParameters(methods=("peak", "cluster", "hierarchical"),
                                     cleaning=ALL_COLUMNS,
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    return [(s, compute_surface_targets(s.bold_left, s.confounds, parameters)) for s in subjects]


def _errors(planted, method):
    return np.array([np.linalg.norm(next(t for t in r.targets if t.method == method).coordinate_mm
                                    - s.target_mm) for s, r in planted])


def test_cluster_finds_the_planted_surface_target(planted):
    """Cluster median error <= 6 mm over 5 generated subjects (issue 15) and <= half the fixed
    guess (the centroid of the published search spheres on the left pial surface).

    Seen (seed 3, snr 0.5): cluster 3.4 mm median (3.0-11.4 mm, one subject missed by 42 mm
    by every method); fixed guess 24.3 mm.
    """
    left = _pial()["L"]
    near = (np.linalg.norm(left[:, None, :] - DLPFC[None], axis=2) <= 20.0).any(axis=1)
    guess = left[near].mean(axis=0)
    chance = float(np.median([np.linalg.norm(guess - s.target_mm) for s, _ in planted]))
    cluster = float(np.median(_errors(planted, "cluster")))
    print(f"cluster {cluster:.1f} mm, fixed guess {chance:.1f} mm")
    assert cluster <= 6.0
    assert cluster <= 0.5 * chance


def test_hierarchical_finds_the_planted_surface_target(planted):
    """Hierarchical median error <= 8 mm (issue 15) and <= half the fixed guess.

    SNT's published rank product (``hierarchical_selection="rank-product"``) picks large noise
    clusters on this generator (median 15.3 mm: 11.5, 22.1, 15.3, 10.8, 31.4; ~22 mm with the
    earlier 51-vertex size limit; the issue 15 item 7 finding); the default
    ``"size-core"`` ranks the clusters by size and by their anticorrelated core instead
    (tmsnet.targeting.hierarchical).
    """
    left = _pial()["L"]
    near = (np.linalg.norm(left[:, None, :] - DLPFC[None], axis=2) <= 20.0).any(axis=1)
    guess = left[near].mean(axis=0)
    chance = float(np.median([np.linalg.norm(guess - s.target_mm) for s, _ in planted]))
    errors = _errors(planted, "hierarchical")
    print(f"hierarchical {np.round(errors, 1)} mm, fixed guess {chance:.1f} mm")
    assert float(np.median(errors)) <= 8.0
    assert float(np.median(errors)) <= 0.5 * chance


def test_targets_are_vertices_of_the_left_search_region(planted):
    pial = _pial()
    for _, result in planted:
        for target in result.targets:
            hemi, vertex = target.details["hemisphere"], target.details["vertex"]
            assert hemi == "L"
            np.testing.assert_allclose(target.coordinate_mm, pial[hemi][vertex])  # on the cortex
            assert np.linalg.norm(DLPFC - target.coordinate_mm, axis=1).min() <= 20.0 + 1e-6
            assert target.r_at_target < 0 or target.method == "hierarchical"


def test_lemon_scan_end_to_end(tmp_path, capsys):
    """The real LEMON scan (fsaverage5, 652 frames, TR 1.4 s) from the command line.

    Seen: cluster (-48.5, 27.7, 31.6) mm (vertex 8671 L), peak (-40.2, 4.2, 38.5), hierarchical
    (-45.1, 17.9, 45.6); bootstrap 95 % radii 20-26 mm, split-half 10-24 mm (100 resamples);
    with global signal regression the sgACC map is +0.43 over the posterior cingulate /
    precuneus and -0.04 over the DLPFC search region.
    """
    if not LEMON.is_dir():
        pytest.skip(f"real data not present: {LEMON}")
    out = tmp_path / "out"
    rc = main(["target", "--bold", str(LEMON_LH), "--confounds", str(LEMON_CONFOUNDS),
               "--confounds-all-columns", "--space", "fsaverage5", "--t-r", "1.4",
               "--method", "peak", "cluster", "hierarchical", "--n-bootstrap", "20",
               "--plan", "--mt", "50", "--out", str(out), "--json", "--quiet"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    # the plan and the navigator files of the first target, at its MNI152 coordinate
    mni = summary["mni152"]
    assert mni["space"] == "MNI152NLin6Asym"
    shift = np.linalg.norm([mni["x"] - summary["x"], mni["y"] - summary["y"], mni["z"] - summary["z"]])
    assert 0.5 < shift < 4.0  # FreeSurfer's MNI305 -> MNI152 affine moves it by a few mm
    for role in ("plan_plan_json", "plan_plan_html", "plan_brainsight", "plan_localite"):
        assert Path(summary["outputs"][role]).is_file(), role
    assert {t["method"] for t in summary["targets"]} == {"peak", "cluster", "hierarchical"}
    for target in summary["targets"]:
        assert target["space"] == "fsaverage5" and target["hemisphere"] == "L"
        xyz = np.array([target["x"], target["y"], target["z"]])
        assert np.linalg.norm(DLPFC - xyz, axis=1).min() <= 20.0 + 0.01
        assert target["uncertainty"]["p95_radius_mm"] > 0
        assert target["uncertainty"]["split_half_distance_mm"] is not None
    assert summary["effective_dof"] > 100  # 652 frames of TR 1.4 s, 29 + 1 regressors
    # the MGH header says 1.0 s: the given 1.4 s is used, and the difference is said, not silent
    assert any("given (1.4 s) differs from the 1 s stated" in w for w in summary["warnings"])
    # the seed map's expected structure, read back from the written GIFTI maps
    pial = _pial()
    values = {}
    for hemi in ("L", "R"):
        path = Path(summary["outputs"][f"connectivity_r_{hemi}"])
        values[hemi] = nib.load(path).darrays[0].data
        assert values[hemi].shape == (10242,)
        assert 800 <= int(np.isnan(values[hemi]).sum()) <= 1000  # the medial wall
        sidecar = path.with_name(path.name.removesuffix(".shape.gii") + ".json")
        assert json.loads(sidecar.read_text())["Space"] == "fsaverage5"
    r, xyz = np.concatenate([values["L"], values["R"]]), np.vstack([pial["L"], pial["R"]])
    # within 12 mm of the posterior cingulate / precuneus, (+-6, -52, 26), either hemisphere
    pcc = np.linalg.norm(np.column_stack([np.abs(xyz[:, 0]) - 6.0, xyz[:, 1] + 52.0,
                                          xyz[:, 2] - 26.0]), axis=1) <= 12.0
    dlpfc = np.zeros(len(xyz), dtype=bool)
    dlpfc[:10242] = (np.linalg.norm(pial["L"][:, None, :] - DLPFC[None], axis=2) <= 20.0).any(1)
    r_pcc, r_dlpfc = float(np.nanmean(r[pcc])), float(np.nanmean(r[dlpfc]))
    print(f"sgACC map: PCC/precuneus {r_pcc:.3f}, DLPFC {r_dlpfc:.3f}")
    assert r_pcc > 0.2
    assert r_dlpfc < r_pcc - 0.2
    assert not [p for p in out.iterdir() if p.name.startswith(".tmsnet")]


def test_surface_job_with_fmriprep_confounds_tsv(short_subject, tmp_path, capsys):
    """The README's example: a GIFTI pair with an fMRIPrep confounds TSV (default strategy)."""
    subject = simulate_surface_dataset(tmp_path / "in", n_subjects=1, seed=8, snr=0.8,
                                       n_frames=100)[0]
    out = tmp_path / "out"
    rc = main(["target", "--bold", str(subject.bold_left), "--confounds",
               str(short_subject.confounds_path), "--n-bootstrap", "5", "--out", str(out),
               "--json", "--quiet"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "cluster" and summary["space"] == "fsaverage5"
    cleaning = json.loads(Path(summary["outputs"]["target_cluster"]).read_text())
    assert cleaning["Provenance"]["Parameters"]["cleaning"]["confound_strategy"] == "simple"
    assert (out / "dataset_description.json").is_file()
    report = Path(summary["outputs"]["report"]).read_text()
    assert "Targeting on the surface" in report
    assert 'alt="sgACC connectivity on the inflated left hemisphere' in report
    assert ".tmsnet-stage" not in report
    # uncertainty as for volumes: the scan-length curve is written and drawn, and the report
    # reads the run's parameters (the target JSON's Provenance, as a volume target's)
    curve = Path(summary["outputs"]["scan_length"])
    assert curve.name.endswith("_space-fsaverage5_desc-scanlength_stability.tsv")
    table = pd.read_csv(curve, sep="\t")
    assert list(table.columns) == ["method", "fraction", "n_frames", "minutes", "effective_dof",
                                   "p95_radius_mm", "median_distance_mm", "n_failed"]
    assert table["fraction"].tolist() == [0.25, 0.5, 0.75, 1.0] and set(table["method"]) == {"cluster"}
    assert json.loads(curve.with_suffix(".json").read_text())["minutes"] == {"Units": "min"}
    assert 'alt="95 percent radius against scan length for each method"' in report
    # and the scan QC of a volume job: frames, duration, head motion from the TSV's FD
    assert summary["qc"]["n_frames"] == 100 and summary["qc"]["duration_min"] == round(100 * 2 / 60, 2)
    assert summary["qc"]["mean_framewise_displacement_mm"] is not None
    assert "Scan quality" in report and 'alt="Framewise displacement over time"' in report
    assert "Each target was recomputed on 5 block-bootstrap resamples" in report


def test_surface_job_without_smoothing_records_none(planted):
    subject = planted[0][0]
    parameters = TargetingParameters(
        methods=("cluster",), uncertainty=UncertaintyParameters(n_bootstrap=0),
        cleaning=BoldCleaningParameters(confounds_all_columns=True, smoothing_fwhm_mm=0))
    result = compute_surface_targets(subject.bold_left, subject.confounds, parameters)
    record = result.parameters["cleaning"]
    assert record["smoothing_fwhm_mm"] is None and record["smoothing_method"] is None
    assert record["smoothing_sigma_voxels"] is None
    assert np.linalg.norm(result.targets[0].coordinate_mm - subject.target_mm) < 10.0
