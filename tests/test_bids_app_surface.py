"""The BIDS-App on fMRIPrep surface outputs (``--space fsaverage5``; fsaverage6 with its mesh).

fMRIPrep writes ``sub-XX_task-rest_hemi-{L,R}_space-fsaverage5_bold.func.gii`` beside the
confounds TSV; the generated surface subjects of :mod:`tmsnet.simulate.surface` are named so,
and get a confounds TSV with fMRIPrep's columns (the short volume subject's, same frame
count). Checked: the participant and group levels run, the table holds each subject's own
target, the derivatives pass the validator (GIFTI maps included), a changed right hemisphere
invalidates the job (both files are hashed), several surface runs are concatenated (one
target, every run's files among its sources) or, with ``--runs each``, targeted one by one,
and fsaverage6 runs with ``--surface-mesh``.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tmsnet.bids_app.derivatives import validate_derivatives
from tmsnet.cli import main

N_FRAMES = 100  # the short volume subject's length: its confounds TSV is reused
FAST = ["--method", "cluster", "--n-bootstrap", "3", "--random-seed", "7",
        "--option", "scan_length_fractions=null", "--quiet", "--no-report"]


def _dataset(root, short_subject, *, subdivide=False, n_subjects=2):
    from tmsnet.simulate.surface import simulate_surface_dataset

    fmriprep = root / "bids" / "derivatives" / "fmriprep"
    subjects = simulate_surface_dataset(fmriprep, n_subjects=n_subjects, seed=4, snr=1.0,
                                        n_frames=N_FRAMES, subdivide=subdivide)
    for subject in subjects:
        shutil.copy(short_subject.confounds_path, subject.confounds.with_name(
            f"sub-{subject.subject}_task-rest_desc-confounds_timeseries.tsv"))
        subject.confounds.unlink()
        if subdivide:  # only the fsaverage6 pair, as fMRIPrep --output-spaces fsaverage6
            for path in subject.bold_left.parent.glob("*space-fsaverage5*"):
                path.unlink()
    return root / "bids", subjects


@pytest.fixture(scope="module")
def surface_run(tmp_path_factory, short_subject):
    root = tmp_path_factory.mktemp("bids_surface")
    bids, subjects = _dataset(root, short_subject)
    out = root / "out"
    assert main([str(bids), str(out), "participant", "--space", "fsaverage5", *FAST]) == 0
    assert main([str(bids), str(out), "group", "--no-report"]) == 0
    return bids, out, subjects


def test_participant_and_group_levels_on_fsaverage5(surface_run):
    _, out, subjects = surface_run
    table = pd.read_csv(out / "targets.tsv", sep="\t")
    assert list(table["participant_id"]) == ["sub-01", "sub-02"]
    assert set(table["space"]) == {"fsaverage5"} and (table["n_frames"] == N_FRAMES).all()
    for subject, (_, row) in zip(subjects, table.iterrows(), strict=True):
        body = json.loads(next((out / f"sub-{subject.subject}" / "func")
                               .glob("*_space-fsaverage5_desc-cluster_target.json")).read_text())
        assert (row["x"], row["y"], row["z"]) == (body["x"], body["y"], body["z"])
        assert body["hemisphere"] == "L" and "mni152" in body
        found = np.array([row["x"], row["y"], row["z"]])
        assert np.linalg.norm(found - subject.target_mm) < 10.0          # its own planted patch
    assert list(out.glob("sub-01/func/*hemi-R_space-fsaverage5_*_connectivity.shape.gii"))
    assert validate_derivatives(out) == []
    provenance = json.loads((out / "sub-01" / "sub-01_task-rest_provenance.json").read_text())
    assert set(provenance["Sources"]) == {"bold", "bold_right", "confounds"}
    roles = {entry["role"] for entry in provenance["Fingerprint"]["inputs"]}
    assert roles == {"bold", "bold_right", "confounds"}


def test_a_changed_right_hemisphere_invalidates_the_job(surface_run, capsys):
    bids, out, subjects = surface_run
    right = subjects[1].bold_left.with_name(subjects[1].bold_left.name.replace("hemi-L", "hemi-R"))
    backup = right.read_bytes()
    try:
        right.write_bytes(backup.replace(b"<Data>", b"<Data> ", 1))      # same data, new bytes
        capsys.readouterr()
        assert main([str(bids), str(out), "participant", "--space", "fsaverage5", *FAST]) == 0
        assert "1 done, 1 up to date, 0 failed" in capsys.readouterr().out
    finally:
        right.write_bytes(backup)


def test_several_surface_runs_are_concatenated_or_run_each(tmp_path, short_subject, capsys):
    bids, subjects = _dataset(tmp_path, short_subject, n_subjects=1)
    func = subjects[0].bold_left.parent
    for path in list(func.iterdir()):                                   # run-1 and run-2
        for run in ("1", "2"):
            shutil.copy(path, func / path.name.replace("task-rest_", f"task-rest_run-{run}_"))
        path.unlink()
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--space", "fsaverage5", *FAST]) == 0
    found = list((out / "sub-01" / "func").glob("*_desc-cluster_target.json"))
    assert [p.name for p in found] == ["sub-01_task-rest_space-fsaverage5_desc-cluster_target.json"]
    body = json.loads(found[0].read_text())
    sources = set(body["Provenance"]["Sources"])
    assert sources >= {"left_1", "right_1", "confounds_1", "left_2", "right_2", "confounds_2"}
    assert body["Provenance"]["Parameters"]["cleaning"]["n_runs"] == 2
    provenance = json.loads((out / "sub-01" / "sub-01_task-rest_provenance.json").read_text())
    assert {e["role"] for e in provenance["Fingerprint"]["inputs"]} == {"bold", "bold_right",
                                                                        "confounds"}
    assert {e["run"] for e in provenance["Fingerprint"]["inputs"]} == {"1", "2"}
    assert main([str(bids), str(out), "participant", "--space", "fsaverage5", "--runs", "each",
                 *FAST]) == 0
    assert len(list((out / "sub-01" / "func").glob("*_run-*_desc-cluster_target.json"))) == 2


def test_fsaverage6_needs_and_takes_the_mesh(tmp_path, short_subject, capsys):
    bids, subjects = _dataset(tmp_path, short_subject, subdivide=True, n_subjects=1)
    out = tmp_path / "out"
    assert main([str(bids), str(out), "participant", "--space", "fsaverage6", *FAST]) == 1
    assert "ships no fsaverage6 mesh" in capsys.readouterr().out
    assert main([str(bids), str(out), "participant", "--space", "fsaverage6", *FAST,
                 "--surface-mesh", str(subjects[0].mesh_left)]) == 0
    provenance = json.loads((out / "sub-01" / "sub-01_task-rest_provenance.json").read_text())
    assert {"mesh_left", "mesh_right"} <= set(provenance["Sources"])
    assert validate_derivatives(out) == []
    assert main([str(bids), str(out), "participant", "--space", "fsaverage6", *FAST,
                 "--surface-mesh", str(tmp_path / "lh.pial")]) == 1
    assert "lh.pial does not exist" in capsys.readouterr().err
