"""BIDS naming in one module (tmsnet.io.bids): entities, names, folders, descriptions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tmsnet import __version__
from tmsnet.exceptions import InvalidParameterError, OutputNotWritableError
from tmsnet.io.bids import (
    ENTITY_ORDER,
    NAME_ORDER,
    bids_label,
    bids_name,
    derivatives_description,
    entity_prefix,
    parse_bids_name,
    parse_entities,
    subject_folder,
    write_dataset_description,
)

BOLD = "sub-01_ses-2_task-rest_acq-mb4_run-3_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"


def test_parse_entities_default_keys_in_file_name_order():
    ent = parse_entities(Path("/data/sub-x/func") / BOLD)
    assert ent == {"sub": "01", "ses": "2", "task": "rest", "acq": "mb4", "run": "3"}
    assert list(ent) == ["sub", "ses", "task", "acq", "run"]


def test_parse_entities_ignores_folders_unknown_keys_and_unanchored_matches():
    assert parse_entities("/x/sub-99/mysub-02_task-rest_bold.nii.gz") == {"task": "rest"}
    assert parse_entities("sub-01_desc-preproc_bold.nii.gz") == {"sub": "01"}


def test_parse_entities_keys_and_defaults():
    name = "sub-02_ses-1_task-tms_acq-x_run-1_eeg.vhdr"
    assert parse_entities(name, keys=("sub", "ses", "task", "run")) == {
        "sub": "02", "ses": "1", "task": "tms", "run": "1"}
    assert parse_entities("recording.vhdr", defaults={"sub": "01", "task": "tms"}) == {
        "sub": "01", "task": "tms"}
    assert parse_entities(None, defaults={"sub": "01"}) == {"sub": "01"}
    # found values win over defaults
    assert parse_entities(name, defaults={"sub": "01"})["sub"] == "02"


def test_parse_entities_last_occurrence_wins():
    assert parse_entities("sub-01_run-1_run-2_bold.nii.gz") == {"sub": "01", "run": "2"}


def test_parse_bids_name_strict():
    ent, suffix, ext = parse_bids_name("sub-01_task-rest_run-1_bold.nii.gz")
    assert ent == {"sub": "01", "task": "rest", "run": "1"}
    assert (suffix, ext) == ("bold", ".nii.gz")
    with pytest.raises(ValueError, match="not a key-value entity"):
        parse_bids_name("sub-01_junk_bold.nii.gz")


def test_bids_label():
    assert bids_label("sgacc-bilateral") == "sgaccBilateral"
    assert bids_label("Fox 2012 (sgACC)") == "Fox2012SgACC"
    assert bids_label("--") == "unknown"


def test_entity_prefix():
    ent = {"run": "1", "task": "rest", "sub": "01", "ses": "1", "space": "MNI"}
    assert entity_prefix(ent) == "sub-01_ses-1_task-rest_run-1"
    assert entity_prefix({"task": "rest"}) == "sub-unknown_task-rest"
    assert entity_prefix({"task": "rest"}, default_sub="01") == "sub-01_task-rest"
    assert entity_prefix({"sub": "01", "acq": "x", "task": "t"}, keys=("sub", "ses", "task", "run")) \
        == "sub-01_task-t"


def test_bids_name_orders_entities():
    name = bids_name({"desc": "seed", "space": "MNI", "task": "rest", "sub": "01"}, "mask", ".nii.gz")
    assert name == "sub-01_task-rest_space-MNI_desc-seed_mask.nii.gz"
    assert bids_name({"sub": "01", "stat": "r", "desc": "x", "space": "S"}, "connectivity") == \
        "sub-01_space-S_stat-r_desc-x_connectivity"
    assert bids_name({"sub": "01", "task": "rest", "atlas": "A", "meas": "correlation",
                      "desc": "graph"}, "stats", ".tsv") == \
        "sub-01_task-rest_atlas-A_meas-correlation_desc-graph_stats.tsv"
    assert bids_name({"sub": "01", "ses": "1"}) == "sub-01_ses-1"


def test_bids_name_rejects_unknown_or_empty():
    with pytest.raises(InvalidParameterError, match="Unknown BIDS entities"):
        bids_name({"sub": "01", "foo": "x"}, "bold")
    with pytest.raises(InvalidParameterError, match="empty value"):
        bids_name({"sub": ""}, "bold")


def test_name_order_extends_entity_order():
    assert [k for k in NAME_ORDER if k != "meas"] == list(ENTITY_ORDER)
    assert NAME_ORDER.index("label") < NAME_ORDER.index("meas") < NAME_ORDER.index("stat")


def test_subject_folder(tmp_path):
    assert subject_folder(tmp_path, {"sub": "01"}) == tmp_path / "sub-01"
    assert subject_folder(tmp_path, {"sub": "01", "ses": "2"}, "func") == \
        tmp_path / "sub-01" / "ses-2" / "func"
    assert subject_folder(str(tmp_path), {}, "eeg") == tmp_path / "sub-unknown" / "eeg"


def test_derivatives_description_targeting_job():
    assert derivatives_description("tmsnet targeting derivatives") == {
        "Name": "tmsnet targeting derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "tmsnet", "Version": __version__}],
    }


def test_derivatives_description_bids_app(tmp_path):
    desc = derivatives_description(
        "tmsnet: connectivity-guided TMS targets",
        description="Personalized targets.",
        source_dirs={"raw": tmp_path, "fmriprep": tmp_path / "derivatives" / "fmriprep"},
    )
    assert desc == {
        "Name": "tmsnet: connectivity-guided TMS targets",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "tmsnet", "Version": __version__,
                         "Description": "Personalized targets."}],
        "SourceDatasets": [
            {"URL": tmp_path.absolute().as_uri(), "Description": "raw"},
            {"URL": (tmp_path / "derivatives" / "fmriprep").absolute().as_uri(),
             "Description": "fmriprep"},
        ],
    }


def test_derivatives_description_raw_dataset_key_order():
    desc = derivatives_description("sim", generated_by="tmsnet.simulate", dataset_type="raw",
                                   authors=["tmsnet.simulate"], version="1.2.3")
    assert list(desc) == ["Name", "BIDSVersion", "DatasetType", "Authors", "GeneratedBy"]
    assert desc["GeneratedBy"] == [{"Name": "tmsnet.simulate", "Version": "1.2.3"}]
    with pytest.raises(InvalidParameterError, match="dataset_type"):
        derivatives_description("x", dataset_type="other")


def test_write_dataset_description_keeps_or_replaces(tmp_path):
    first = derivatives_description("first")
    path = write_dataset_description(tmp_path, first)
    assert path == tmp_path / "dataset_description.json"
    assert json.loads(path.read_text()) == first
    write_dataset_description(tmp_path, derivatives_description("second"))
    assert json.loads(path.read_text())["Name"] == "first"
    write_dataset_description(tmp_path, derivatives_description("second"), overwrite=True)
    assert json.loads(path.read_text())["Name"] == "second"


def test_write_dataset_description_refuses_foreign(tmp_path):
    path = tmp_path / "dataset_description.json"
    path.write_text(json.dumps({"Name": "x", "GeneratedBy": [{"Name": "fMRIPrep"}]}))
    with pytest.raises(OutputNotWritableError, match="another dataset"):
        write_dataset_description(tmp_path, derivatives_description("t"), overwrite=True,
                                  refuse_foreign=True)
    assert json.loads(path.read_text())["Name"] == "x"
    path.write_text("not json")
    write_dataset_description(tmp_path, derivatives_description("t"), overwrite=True,
                              refuse_foreign=True)
    assert json.loads(path.read_text())["Name"] == "t"
