"""The main job end to end: planted-target recovery, outputs, provenance, CLI."""

import json
import re
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from accuracy_baselines import (
    check_beats_baselines,
    distances,
    fixed_guess_mm,
    identified,
    nearest_published_errors,
    published_search_region,
)
from tmsnet.cli import main
from tmsnet.io.provenance import file_sha256
from tmsnet.targeting.seedmap import BUNDLED_SEEDMAP
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters, compute_targets

#: Subjects of the full simulator per signal level, drawn with a seed fixed before any result
#: was seen (the benchmark's, benchmarks/bench_accuracy.py), not the sample cohort (seed 0),
#: which happens to sit near the search region's centre.
N_RANDOM_SUBJECTS = 12
RANDOM_SUBJECTS_SEED = 271828
METHODS = ("peak", "cluster", "seedmap", "hierarchical")


@pytest.fixture(scope="module", params=[0.35, 0.5], ids=["snr0.35", "snr0.5"])
def cohort_targets(request, tmp_path_factory):
    """Every method's target for 12 random full-size subjects at one signal level.

    The seedmap method uses the bundled sample-cohort seedmap, which was built from other
    simulated subjects (simulator seed 1000). ~12 s a subject (4 methods, no bootstrap).
    """
    from tmsnet.simulate import SimulationParameters, simulate_fmriprep_dataset

    snr = request.param
    subjects = simulate_fmriprep_dataset(
        tmp_path_factory.mktemp(f"random_{snr}"), n_subjects=N_RANDOM_SUBJECTS,
        seed=RANDOM_SUBJECTS_SEED, params=SimulationParameters(snr=snr), progress=False)
    parameters = TargetingParameters(methods=METHODS,
                                     uncertainty=UncertaintyParameters(n_bootstrap=0))
    results = [(subject, compute_targets(subject.bold_path, subject.confounds_path, parameters,
                                         progress=False)) for subject in subjects]
    return snr, results


def _cohort_errors(cohort_targets):
    """Per method and per chance baseline, the errors (mm) to each planted target.

    Baselines (tests/accuracy_baselines.py, from the PUBLISHED coordinates of
    REFERENCES.md section 1, not from tmsnet): the fixed guess at the centroid of
    the published search spheres in gray matter, the nearest published target (an
    oracle), and the bundled group seedmap's most negative search voxel (that map
    was built from other layouts: simulator seed 1000, not 271828).
    """
    _, results = cohort_targets
    subjects = [s for s, _ in results]
    planted = np.array([s.target_mm for s in subjects])
    region, xyz = published_search_region(nib.load(subjects[0].mask_path))
    group = np.asarray(nib.load(BUNDLED_SEEDMAP).dataobj)[region]
    baselines = {"fixed_guess": distances(xyz.mean(axis=0), planted),
                 "nearest_published": nearest_published_errors(planted),
                 "seedmap_extremum": distances(xyz[np.argmin(group)], planted)}
    found = {m: np.array([next(t.coordinate_mm for t in r.targets if t.method == m)
                          for _, r in results]) for m in METHODS}
    errors = {m: distances(f, planted) for m, f in found.items()}
    return planted, found, errors, baselines


def test_methods_beat_half_the_chance_baselines(cohort_targets):
    """Median error <= 0.5 x the best baseline computed on the same 12 random subjects.

    Seen (best baseline: nearest published 9.5 mm, limit 4.75 mm; fixed guess 20.7 mm):
    snr 0.5: cluster 2.4, seedmap 2.4, hierarchical 1.5 mm; snr 0.35: seedmap 3.7,
    hierarchical 2.0 mm (1.1 and 1.3 mm with SNT's rank product, which misses by 17 mm at
    signal 0.3 with a strong decoy: tests/test_hierarchical_accuracy.py), and cluster 5.9 mm,
    which misses the bar (test below). Seedmap was at 15.6 mm before the bundled map got its
    noise floor (issue 13; tools/build_bundled_seedmap.py).
    """
    snr, _ = cohort_targets
    _, _, errors, baselines = _cohort_errors(cohort_targets)
    methods = ("seedmap", "hierarchical") if snr < 0.5 else ("cluster", "seedmap", "hierarchical")
    medians = check_beats_baselines({m: errors[m] for m in methods}, baselines)
    print(f"snr {snr}: median errors (mm):", medians)


def test_cluster_at_low_signal_beats_chance_but_not_half(cohort_targets):
    """At snr 0.35 the cluster centroid still beats chance (<= 0.8 x), not half (issue 13 finding).

    Seen: 5.9 mm against 9.5 mm (factor 0.62). The cluster rule takes the largest cluster of
    the most negative 10 %: at low signal a decoy or noise cluster wins for some subjects.
    """
    snr, _ = cohort_targets
    _, _, errors, baselines = _cohort_errors(cohort_targets)
    check_beats_baselines({"cluster": errors["cluster"]}, baselines, factor=0.8)
    if snr < 0.5:  # record the finding: it is not <= half (fails when the method improves)
        assert float(np.median(errors["cluster"])) > 0.5 * min(
            float(np.median(e)) for e in baselines.values())


def test_the_default_method_beats_half_the_baselines_where_the_old_default_does_not(
        cohort_targets):
    """Issue 15 item 7: the method a user gets without --method (seedmap on a volume scan).

    At snr 0.35 the old default (cluster, 5.9 mm) misses the bar of half the best baseline
    (4.75 mm, the nearest published target) while the default (seedmap) is under it (3.7 mm);
    at snr 0.5 both are (2.4 mm). The job's default target is the seedmap target (checked on
    one subject at each level, n_bootstrap 0, ~9 s).
    """
    snr, results = cohort_targets
    _, found, errors, baselines = _cohort_errors(cohort_targets)
    for index in (0,):
        subject = results[index][0]
        default = compute_targets(subject.bold_path, subject.confounds_path,
                                  TargetingParameters(uncertainty=UncertaintyParameters(n_bootstrap=0)),
                                  progress=False).targets
        assert [t.method for t in default] == ["seedmap"]
        np.testing.assert_array_equal(default[0].coordinate_mm, found["seedmap"][index])
    medians = check_beats_baselines({"seedmap": errors["seedmap"]}, baselines)
    assert medians["seedmap"] <= float(np.median(errors["cluster"]))
    if snr < 0.5:  # the old default's failure at low signal, shown on the same subjects
        best = min(float(np.median(e)) for e in baselines.values())
        assert float(np.median(errors["cluster"])) > 0.5 * best >= medians["seedmap"]


def test_cluster_beats_the_single_voxel(cohort_targets):
    """The cluster centroid is more accurate than the peak voxel (REFERENCES.md: Ning 2019)."""
    _, _, errors, _ = _cohort_errors(cohort_targets)
    assert np.median(errors["cluster"]) < np.median(errors["peak"])


def test_targets_identify_their_own_subject(cohort_targets):
    """Found targets lie nearer their own planted target than any other subject's.

    (Replaces ``ptp(found) > 10``, which scattered wrong targets pass.) Planted targets of the
    12 subjects are as close as ~5 mm, so not all can be; a fixed guess identifies at most 1.
    Seen: snr 0.35 seedmap and hierarchical 8 of 12, cluster 7; snr 0.5 10 of 12 for each.
    """
    snr, _ = cohort_targets
    planted, found, _, _ = _cohort_errors(cohort_targets)
    for method in ("cluster", "seedmap", "hierarchical"):
        assert identified(found[method], planted).sum() >= (6 if snr < 0.5 else 9), method


def test_sign_is_right_positive_decoy_never_chosen(cohort_targets):
    for subject, result in cohort_targets[1]:
        positive = [np.asarray(d["centroid_mm"], dtype=float)
                    for d in subject.truth["decoys"] if d["sign"] > 0]
        assert positive, "the sample must plant a positively correlated decoy"
        for target in result.targets:
            if target.method == "hierarchical":  # chosen by its cluster's net correlation
                assert target.details["cluster_net_correlation"] < 0
            else:
                assert target.r_at_target < 0
            # Never inside the positively correlated patch (it extends target_radius_mm).
            for centroid in positive:
                distance = np.linalg.norm(target.coordinate_mm - centroid)
                assert distance > subject.truth["target_radius_mm"], (
                    subject.subject, target.method, distance)


def test_cli_writes_bids_outputs_with_provenance(short_subject, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["target", "--bold", str(short_subject.bold_path), "--confounds",
                 str(short_subject.confounds_path), "--out", str(out), "--json", "--quiet",
                 "--method", "peak", "cluster", "--n-bootstrap", "0"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("x", "y", "z", "space", "method", "r_at_target"):
        assert key in summary
    assert summary["space"] == "MNI152NLin2009cAsym"
    assert summary["method"] == "peak"
    assert [t["method"] for t in summary["targets"]] == ["peak", "cluster"]

    outputs = {role: out / p.split(str(out) + "/")[1] for role, p in summary["outputs"].items()}
    for role in ("connectivity_r", "connectivity_z", "seed_mask", "search_mask", "markers",
                 "report", "target_cluster", "target_peak", "coordsystem"):
        assert outputs[role].is_file(), role
    assert (out / "dataset_description.json").is_file()
    r_img = nib.load(outputs["connectivity_r"])
    z_img = nib.load(outputs["connectivity_z"])
    assert r_img.shape == nib.load(short_subject.mask_path).shape
    np.testing.assert_allclose(r_img.affine, nib.load(short_subject.bold_path).affine)
    r = r_img.get_fdata()
    np.testing.assert_allclose(z_img.get_fdata(), np.arctanh(np.clip(r, -0.9999999, 0.9999999)),
                               atol=1e-4)
    assert "_stat-r_desc-sgacc_connectivity.nii.gz" in outputs["connectivity_r"].name

    # The map holds the reported r at the target voxel.
    target = json.loads(outputs["target_peak"].read_text())
    assert r[tuple(target["voxel_ijk"])] == pytest.approx(target["r_at_target"], abs=1e-4)

    # Every non-JSON file has a sidecar with parameters, versions, hashes, space.
    for role in ("connectivity_r", "connectivity_z", "seed_mask", "search_mask", "markers",
                 "report"):
        path = outputs[role]
        sidecar_path = path.parent / (path.name.split(".")[0] + ".json")
        sidecar = json.loads(sidecar_path.read_text())
        assert sidecar["Space"] == "MNI152NLin2009cAsym"
        assert sidecar["Sources"]["bold"]["sha256"] == file_sha256(short_subject.bold_path)
        assert sidecar["Sources"]["confounds"]["sha256"] == file_sha256(
            short_subject.confounds_path)
        assert sidecar["Parameters"]["cleaning"]["global_signal"] is True
        assert "nilearn" in sidecar["SoftwareVersions"]
    assert target["Provenance"]["Parameters"]["methods"] == ["peak", "cluster"]

    markers = pd.read_csv(outputs["markers"], sep="\t")
    assert list(markers["method"]) == ["peak", "cluster"]
    assert markers.loc[1, "target_x"] == pytest.approx(summary["targets"][1]["x"])

    report = outputs["report"].read_text()
    assert f"{summary['x']:.1f}" in report
    # Self-contained: nothing is fetched from the network.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report)
    assert "five_cm_rule" in report and "fox_2012_optimal" in report
    # No temp file is left behind.
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_no_gsr_is_reflected_in_sidecar_and_changes_the_map(short_subject, tmp_path, capsys):
    common = ["target", "--bold", str(short_subject.bold_path), "--confounds",
              str(short_subject.confounds_path), "--json", "--quiet", "--no-report",
              "--n-bootstrap", "0"]
    assert main([*common, "--out", str(tmp_path / "gsr")]) == 0
    with_gsr = json.loads(capsys.readouterr().out)
    assert main([*common, "--out", str(tmp_path / "nogsr"), "--no-gsr"]) == 0
    without = json.loads(capsys.readouterr().out)
    assert with_gsr["global_signal_regression"] is True
    assert without["global_signal_regression"] is False
    sidecar_on = json.loads(next((tmp_path / "gsr").rglob("*stat-r*connectivity.json")).read_text())
    sidecar = json.loads(next((tmp_path / "nogsr").rglob("*stat-r*connectivity.json")).read_text())
    assert sidecar["Parameters"]["cleaning"]["global_signal"] is False
    assert "global_signal" not in sidecar["Parameters"]["cleaning"]["confound_columns"]
    assert "global_signal" in sidecar_on["Parameters"]["cleaning"]["confound_columns"]
    r_on = nib.load(next((tmp_path / "gsr").rglob("*stat-r*connectivity.nii.gz"))).get_fdata()
    r_off = nib.load(next((tmp_path / "nogsr").rglob("*stat-r*connectivity.nii.gz"))).get_fdata()
    # The planted global signal pushes correlations up when it is left in.
    brain = r_on != 0
    assert r_off[brain].mean() > r_on[brain].mean() + 0.05


def test_outputs_are_reproducible(short_subject, tmp_path, capsys):
    args = ["target", "--bold", str(short_subject.bold_path), "--confounds",
            str(short_subject.confounds_path), "--json", "--quiet", "--no-report",
            "--n-bootstrap", "20", "--random-seed", "7"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            if path.suffix == ".json":
                text_a = path.read_text().replace(str(tmp_path / "a"), "")
                text_b = twin.read_text().replace(str(tmp_path / "b"), "")
                assert text_a == text_b, path.name
            else:
                assert path.read_bytes() == twin.read_bytes(), path.name


def test_demo_command_end_to_end(tmp_path):
    """The README's demo command, as a user runs it (subprocess, installed entry point)."""
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "tmsnet.cli", "target", "--demo", "--out",
                           str(out), "--json"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    # The job chose the method (no --method): seedmap on a volume, and it says why.
    assert summary["method"] == "seedmap" == summary["method_choice"]["method"]
    assert "was used because" in summary["method_choice"]["reason"]
    # The demo reports its own error against the planted target, and reports it right.
    found = np.array([summary["x"], summary["y"], summary["z"]])
    planted = np.asarray(summary["planted_target_mm"])
    assert summary["error_mm"]["seedmap"] == pytest.approx(np.linalg.norm(found - planted),
                                                           abs=0.02)
    # Bounded against chance on this subject: the fixed guess (published search spheres'
    # centroid) and the nearest published target (docs: the demo's target lands within ~2 mm).
    mask = nib.load(next((out / "sourcedata").rglob("*_desc-brain_mask.nii.gz")))
    chance = min(float(distances(fixed_guess_mm(mask), planted)[0]),
                 float(nearest_published_errors(planted)[0]))
    assert summary["error_mm"]["seedmap"] <= 0.5 * chance, (summary["error_mm"], chance)
    report = next(out.glob("sub-01*_report.html"))
    assert report.stat().st_size < 15e6
    assert "Planted target" in report.read_text()


def test_target_with_plan_writes_the_treatment_plan_of_the_first_target(short_subject, tmp_path,
                                                                         capsys):
    out = tmp_path / "plan"
    code = main(["target", "--bold", str(short_subject.bold_path), "--confounds",
                 str(short_subject.confounds_path), "--out", str(out), "--json", "--quiet",
                 "--no-report", "--n-bootstrap", "0", "--plan", "--mt", "50"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    plan = json.loads(open(summary["outputs"]["plan_plan_json"]).read())
    np.testing.assert_allclose(plan["target_input_mm"], [summary["x"], summary["y"], summary["z"]],
                               atol=0.01)
    assert plan["input_space"] == summary["space"]
    assert (out / "sub-01_desc-treatment_plan.html").is_file()
    # Plan options without --plan are an argument error (exit 2), before any work.
    with pytest.raises(SystemExit) as excinfo:
        main(["target", "--bold", str(short_subject.bold_path), "--confounds",
              str(short_subject.confounds_path), "--out", str(tmp_path / "x"), "--mt", "50"])
    assert excinfo.value.code == 2
