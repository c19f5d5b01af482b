"""Fast checks of fMRIPrep discovery, staging recovery and the BIDS-Derivatives check (no fMRI jobs)."""

import json
import os

import pytest

from tmsnet.bids_app.derivatives import (
    ENTITY_ORDER,
    check_derivatives,
    derivatives_description,
    validate_derivatives,
)
from tmsnet.bids_app.layout import (
    collect_sessions,
    list_participants,
    normalize_labels,
    parse_bids_name,
    resolve_fmriprep_dir,
)
from tmsnet.bids_app.participant import recover_staging
from tmsnet.exceptions import DerivativesValidationError, InputFileNotFoundError, InvalidParameterError

SPACE = "MNI152NLin2009cAsym"


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _fmriprep_tree(root, files):
    fp = root / "derivatives" / "fmriprep"
    for name in files:
        entities, _, _ = parse_bids_name(name)
        folder = fp / f"sub-{entities['sub']}"
        if "ses" in entities:
            folder = folder / f"ses-{entities['ses']}"
        _touch(folder / "func" / name)
    return fp


def _run(stem, space=SPACE, res="2"):
    base = f"{stem}_space-{space}" + (f"_res-{res}" if res else "")
    return [f"{base}_desc-preproc_bold.nii.gz", f"{base}_desc-brain_mask.nii.gz",
            f"{stem}_desc-confounds_timeseries.tsv"]


def test_sessions_and_runs_are_grouped_in_order(tmp_path):
    files = []
    for ses in ("2", "1"):
        for run in ("10", "2", "1"):
            files += _run(f"sub-01_ses-{ses}_task-rest_run-{run}")
    files += _run("sub-01_ses-1_task-movie_run-1")  # another task: ignored
    files += ["sub-01_ses-1_task-rest_run-1_space-MNI152NLin6Asym_desc-preproc_bold.nii.gz"]
    fp = _fmriprep_tree(tmp_path, files)
    assert resolve_fmriprep_dir(tmp_path) == fp
    sessions = collect_sessions(fp, "01")
    assert [s.label for s in sessions] == ["sub-01_ses-1", "sub-01_ses-2"]
    assert [r.run for r in sessions[0].runs] == ["1", "2", "10"]  # numeric order
    first = sessions[0].runs[0]
    assert first.confounds.name == "sub-01_ses-1_task-rest_run-1_desc-confounds_timeseries.tsv"
    assert first.mask.name.endswith("_desc-brain_mask.nii.gz")
    picked = collect_sessions(fp, "01", sessions=["2"], runs=["2"])
    assert [(s.session, [r.run for r in s.runs]) for s in picked] == [("2", ["2"])]
    six = collect_sessions(fp, "01", space="MNI152NLin6Asym", runs=None)
    assert six[0].runs[0].mask is None
    os.remove(fp / "sub-01/ses-1/func/sub-01_ses-1_task-rest_run-2_desc-confounds_timeseries.tsv")
    with pytest.raises(InputFileNotFoundError, match="run-2_desc-confounds_timeseries.tsv is missing"):
        collect_sessions(fp, "01", sessions=["1"])


def test_missing_confounds_and_resolutions_and_tasks_give_clear_errors(tmp_path):
    files = _run("sub-01_task-rest") + _run("sub-01_task-rest", res="1")[:1]
    files += [f"sub-02_task-rest_space-{SPACE}_desc-preproc_bold.nii.gz"]
    fp = _fmriprep_tree(tmp_path, files)
    with pytest.raises(InvalidParameterError, match="--res"):
        collect_sessions(fp, "01")
    assert collect_sessions(fp, "01", res="2")[0].runs[0].run is None
    with pytest.raises(InputFileNotFoundError, match="no confounds table"):
        collect_sessions(fp, "02")
    with pytest.raises(InputFileNotFoundError, match=r"tasks: rest; spaces: MNI152NLin2009cAsym"):
        collect_sessions(fp, "01", task="movie")
    with pytest.raises(InputFileNotFoundError, match=r"found: 01, 02"):
        list_participants(tmp_path, fp, ["03"])
    assert list_participants(tmp_path, fp) == ["01", "02"]
    assert normalize_labels(["sub-01", "01", "02"], "sub") == ["01", "02"]
    with pytest.raises(InvalidParameterError, match="BIDS label"):
        normalize_labels(["sub_1"], "sub")
    with pytest.raises(InputFileNotFoundError, match="--fmriprep-dir"):
        resolve_fmriprep_dir(tmp_path / "derivatives")  # no fmriprep inside
    with pytest.raises(InputFileNotFoundError, match="not a folder"):
        resolve_fmriprep_dir(tmp_path / "nope")


def _valid_output(root):
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps(derivatives_description()))
    func = root / "sub-01" / "ses-1" / "func"
    func.mkdir(parents=True)
    name = f"sub-01_ses-1_task-rest_run-1_space-{SPACE}_stat-r_desc-sgacc_connectivity"
    (func / f"{name}.nii.gz").write_bytes(b"x")
    (func / f"{name}.json").write_text("{}")
    (root / "sub-01" / "ses-1" / "sub-01_ses-1_task-rest_provenance.json").write_text("{}")
    (root / "targets.tsv").write_text("a\n")
    (root / "targets.json").write_text("{}")
    return func, name


def test_derivatives_check_accepts_valid_and_names_each_problem(tmp_path):
    root = tmp_path / "out"
    func, name = _valid_output(root)
    assert validate_derivatives(root) == []
    check_derivatives(root)
    (func / f"{name}.json").unlink()
    (func / f"sub-01_ses-1_space-{SPACE}_task-rest_bold.json").write_text("{}")  # wrong order
    (func / "sub-02_ses-1_task-rest_bold.json").write_text("{}")  # wrong subject
    (func / "sub-01_ses-1_task-rest_run-a_bold.json").write_text("{}")  # run is an index
    (func / "sub-01_ses-1_foo-1_bold.json").write_text("{}")  # unknown entity
    (root / ".tmsnet-work").mkdir()
    description = derivatives_description()
    del description["GeneratedBy"]
    description["DatasetType"] = "raw"
    (root / "dataset_description.json").write_text(json.dumps(description))
    problems = "\n".join(validate_derivatives(root))
    for expected in ("no JSON sidecar", "'task' is out of order", "sub-02 does not match",
                     "run-a is not a valid index", "unknown entity 'foo'", "staging folder",
                     "GeneratedBy is REQUIRED", "DatasetType must be 'derivative'"):
        assert expected in problems, expected
    with pytest.raises(DerivativesValidationError, match="not a valid BIDS-Derivatives"):
        check_derivatives(root)


def test_entity_order_matches_the_bids_schema():
    schema = pytest.importorskip("bidsschematools.schema").load_schema()
    official = [schema.objects.entities[e].name for e in schema.rules.entities]
    assert [e for e in ENTITY_ORDER if e != "stat"] == official
    rules = schema.rules.json.dataset
    assert rules.derivative_description.fields["GeneratedBy"] == "required"
    assert {k for k, v in rules.dataset_description.fields.items() if v == "required"} == {
        "Name", "BIDSVersion"}


def test_recover_staging_restores_a_folder_moved_out_by_a_killed_commit(tmp_path):
    out = tmp_path / "out"
    stage = out / ".tmsnet-work" / "sub-01.abc"
    (stage / "previous").mkdir(parents=True)
    (stage / "previous" / "kept.json").write_text("{}")
    (stage / "destination.txt").write_text(str(out / "sub-01"))
    (out / ".tmsnet-work" / "sub-02.def" / "out" / "sub-02").mkdir(parents=True)  # unfinished job
    restored = recover_staging(out)
    assert restored == [out / "sub-01"]
    assert (out / "sub-01" / "kept.json").is_file()
    assert not (out / ".tmsnet-work").exists() and not (out / "sub-02").exists()
