"""BIDS-App end to end on a generated 4-subject cohort (one 2-min run each, planted targets).

One cohort and one dask LocalCluster per module. Three output folders are
produced from the same inputs: serially in this process, on a 2-worker
LocalCluster, and on 2 local processes with one subject's BOLD corrupted and
then repaired (resume). All three must give byte-identical targets.tsv and maps.
"""

import filecmp
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tmsnet.bids_app.derivatives import validate_derivatives
from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError

N_SUBJECTS = 4
# Fast but complete: bootstrap on (few resamples, fixed seed), scan-length advice off.
FAST = ["--method", "peak", "cluster", "--n-bootstrap", "3", "--random-seed", "7",
        "--option", "scan_length_fractions=null", "--quiet"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from tmsnet.simulate import SimulationParameters
    from tmsnet.simulate.bids import simulate_bids_dataset

    root = tmp_path_factory.mktemp("bids_app")
    runs = simulate_bids_dataset(root / "bids", n_subjects=N_SUBJECTS, seed=5,
                                 params=SimulationParameters(n_frames=60))
    return root, runs


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      silence_logs=40) as local:
        yield local


@pytest.fixture(scope="module")
def serial_run(cohort):
    root, _ = cohort
    out = root / "out_serial"
    rc = main([str(root / "bids"), str(out), "participant", "--no-report", *FAST])
    assert rc == 0
    assert main([str(root / "bids"), str(out), "group", "--no-report"]) == 0
    return out


def _maps(out):
    return sorted(p.relative_to(out) for p in out.glob("sub-*/func/*_connectivity.nii.gz"))


def test_serial_run_aggregates_every_subject(serial_run):
    table = pd.read_csv(serial_run / "targets.tsv", sep="\t", dtype={"run_id": str})
    assert len(table) == N_SUBJECTS * 2  # subjects x methods
    assert list(table["participant_id"]) == [f"sub-{i:02d}" for i in range(1, 5) for _ in "ab"]
    assert list(table["method"][:2]) == ["cluster", "peak"]
    assert table["run_id"].isna().all() and table["session_id"].isna().all()
    assert (table["n_frames"] == 60).all()
    cluster_rows = table[table["method"] == "cluster"]
    for _, row in cluster_rows.iterrows():  # the table holds each subject's own target file
        sub = row["participant_id"]
        body = json.loads(next((serial_run / sub / "func").glob("*_desc-cluster_target.json"))
                          .read_text())
        assert (row["x"], row["y"], row["z"], row["r_at_target"]) == (
            body["x"], body["y"], body["z"], body["r_at_target"])
        assert row["uncertainty_p95_radius_mm"] == body["uncertainty"]["p95_radius_mm"]
    assert cluster_rows["uncertainty_median_distance_mm"].notna().all()
    distance = np.linalg.norm(cluster_rows[["x", "y", "z"]].to_numpy(float)
                              - np.array([-37.0, 26.0, 49.0]), axis=1)  # F3 Beam, Fox 2012 Table 1
    assert np.allclose(cluster_rows["distance_f3_beam_mm"], distance, atol=0.02)
    assert validate_derivatives(serial_run) == []
    description = json.loads((serial_run / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "tmsnet"


def test_dask_cluster_gives_identical_targets_and_maps(cohort, serial_run, cluster):
    root, _ = cohort
    out = root / "out_dask"
    rc = main([str(root / "bids"), str(out), "participant", "--no-report", *FAST,
               "--dask-scheduler", cluster.scheduler_address])
    assert rc == 0
    assert main([str(root / "bids"), str(out), "group", "--no-report"]) == 0
    assert (out / "targets.tsv").read_bytes() == (serial_run / "targets.tsv").read_bytes()
    maps = _maps(out)
    assert maps == _maps(serial_run) and len(maps) == 2 * N_SUBJECTS
    for rel in maps:
        assert filecmp.cmp(out / rel, serial_run / rel, shallow=False), rel


def test_failure_is_recorded_others_finish_and_rerun_computes_only_it(cohort, serial_run,
                                                                      capsys):
    root, runs = cohort
    out = root / "out_resume"
    bold = next(r.bold_path for r in runs if r.subject == "02")
    backup = root / "backup.nii.gz"
    shutil.copy2(bold, backup)
    bold.write_bytes(backup.read_bytes()[:5000])  # truncated: a corrupt input
    try:
        rc = main([str(root / "bids"), str(out), "participant", "--jobs", "2", "--no-report",
                   *FAST])
    finally:
        shutil.copy2(backup, bold)
    printed = capsys.readouterr().out
    assert rc == 1
    assert "3 done, 0 up to date, 1 failed" in printed
    crash = out / "logs" / "sub-02_task-rest_crash.json"
    record = json.loads(crash.read_text())
    assert record["Participant"] == "sub-02" and record["Error"] and record["Traceback"]
    assert not (out / "sub-02").exists()  # no partial subject output
    assert not (out / ".tmsnet-work").exists()
    assert all((out / f"sub-{s}" / f"sub-{s}_task-rest_provenance.json").is_file()
               for s in ("01", "03", "04"))
    stamp = (out / "sub-01" / "sub-01_task-rest_provenance.json").stat().st_mtime_ns

    rc = main([str(root / "bids"), str(out), "participant", "--jobs", "2", "--no-report", *FAST])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "1 done, 3 up to date, 0 failed" in printed
    assert not crash.exists()
    assert (out / "sub-01" / "sub-01_task-rest_provenance.json").stat().st_mtime_ns == stamp

    assert main([str(root / "bids"), str(out), "group"]) == 0
    assert (out / "targets.tsv").read_bytes() == (serial_run / "targets.tsv").read_bytes()
    html = (out / "group_report.html").read_text()
    assert "sub-04" in html and "data:image/png;base64," in html
    assert (out / "figures" / "group_desc-glassbrain_targets.png").stat().st_size > 10_000
    assert validate_derivatives(out) == []

    # A changed parameter invalidates a finished participant.
    rc = main([str(root / "bids"), str(out), "participant", "--participant-label", "sub-03",
               "--no-report", *FAST, "--smoothing-fwhm", "4"])
    assert rc == 0
    assert "1 done, 0 up to date" in capsys.readouterr().out


def test_bids_validator_accepts_raw_dataset_and_output_root(cohort, serial_run):
    bids_validator = pytest.importorskip("bids_validator")
    root, _ = cohort
    validator = bids_validator.BIDSValidator()
    raw = [p for p in (root / "bids").rglob("*") if p.is_file() and "derivatives" not in p.parts]
    assert len(raw) == 4 + N_SUBJECTS * 2
    for path in raw:
        assert validator.is_bids("/" + path.relative_to(root / "bids").as_posix()), path
    assert validator.is_bids("/dataset_description.json")


def test_cli_errors_are_one_line_with_status_1(cohort, tmp_path, capsys):
    root, _ = cohort
    rc = main([str(root / "bids"), str(tmp_path / "o"), "participant", "--participant-label", "09"])
    err = capsys.readouterr().err
    assert rc == 1 and "tmsnet: error:" in err and "09" in err and "found: 01, 02, 03, 04" in err
    rc = main([str(root / "bids"), str(tmp_path / "o"), "participant", "--task", "movie"])
    assert rc == 1  # every participant fails with a layout error, recorded in crash files
    crash = json.loads((tmp_path / "o" / "logs" / "sub-01_task-movie_crash.json").read_text())
    assert "task-movie" in crash["Error"] and "tasks: rest" in crash["Error"]
    rc = main([str(root / "bids"), str(tmp_path / "o2"), "participant", "--option", "nope=1"])
    assert rc == 1 and "nope" in capsys.readouterr().err
    rc = main([str(root / "bids"), str(tmp_path / "o3"), "group"])
    assert rc == 1 and "Run the participant level first" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([str(root / "bids"), str(tmp_path / "o4"), "participant", "--jobs", "2",
              "--dask-scheduler", "tcp://127.0.0.1:1"])
    assert exc.value.code == 2


def test_run_participants_keywords_plan_the_same_jobs_as_the_cli(cohort, serial_run, tmp_path):
    """The Python keywords (turned into a ParticipantPlan) give the CLI's fingerprints."""
    from tmsnet.bids_app import commands
    from tmsnet.bids_app.participant import run_participants

    root, _ = cohort
    out = tmp_path / "out"
    shutil.copytree(serial_run, out)
    args = commands.build_parser().parse_args([str(root / "bids"), str(out), "participant",
                                               "--no-report", *FAST])
    outcomes = run_participants(root / "bids", out, progress=False, report=False,
                                options=commands._targeting_options(args), n_threads=1)
    assert [o.status for o in outcomes] == ["skipped"] * N_SUBJECTS


def test_run_participants_refuses_an_unknown_keyword_by_name(cohort, tmp_path):
    from tmsnet.bids_app.participant import run_participants

    root, _ = cohort
    with pytest.raises(InvalidParameterError, match="'participant_label'.*participant_labels"):
        run_participants(root / "bids", tmp_path / "o", participant_label=["01"])
    with pytest.raises(InvalidParameterError, match="--threads-per-job"):
        run_participants(root / "bids", tmp_path / "o", n_threads=0)
    assert not (tmp_path / "o").exists()


def test_plan_defaults_are_the_cli_and_job_defaults():
    import dataclasses

    from tmsnet.bids_app.commands import build_parser
    from tmsnet.bids_app.participant import ParticipantJob, ParticipantPlan

    plan, args = ParticipantPlan(), build_parser().parse_args(["b", "o", "participant"])
    assert (args.participant_label, args.session_label, args.fmriprep_dir, args.task, args.space,
            args.res, args.runs, args.run_label, not args.no_report, args.force,
            args.threads_per_job) == (
        plan.participant_labels, plan.session_labels, plan.fmriprep_dir, plan.task, plan.space,
        plan.res, plan.runs, plan.run_labels, plan.report, plan.force, plan.n_threads)
    job = {f.name: f.default for f in dataclasses.fields(ParticipantJob)}
    assert [job[k] for k in ("runs", "report", "force", "n_threads")] == [
        plan.runs, plan.report, plan.force, plan.n_threads]


def test_runs_of_a_session_are_concatenated_after_per_run_cleaning(tmp_path):
    from tmsnet.simulate import SimulationParameters
    from tmsnet.simulate.bids import simulate_bids_dataset

    simulate_bids_dataset(tmp_path / "bids", n_subjects=1, seed=2, n_sessions=1, n_runs=2,
                          params=SimulationParameters(n_frames=60))
    out = tmp_path / "out"
    rc = main([str(tmp_path / "bids"), str(out), "participant", *FAST, "--n-bootstrap", "0",
               "--no-report"])
    assert rc == 0, json.loads(next((out / "logs").glob("*_crash.json")).read_text())["Error"]
    assert main([str(tmp_path / "bids"), str(out), "group", "--no-report"]) == 0
    table = pd.read_csv(out / "targets.tsv", sep="\t", dtype={"run_id": str})
    assert list(table["run_id"]) == ["1+2", "1+2"] and list(table["session_id"]) == ["ses-1"] * 2
    assert (table["n_frames"] == 120).all()  # both 2-min runs, cleaned separately, concatenated
    assert table["uncertainty_median_distance_mm"].isna().all()  # bootstrap off
    assert (out / "sub-01" / "ses-1" / "sub-01_ses-1_task-rest_provenance.json").is_file()
    assert validate_derivatives(out) == []
