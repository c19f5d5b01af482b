"""Ambiguous inputs are refused or recorded, never resolved silently (issue 14, item 8)."""

import json
import shutil

import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.exceptions import ConfoundsError, InvalidImageError
from tmsnet.io.fmriprep import load_bold, load_confounds_table
from tmsnet.targeting.uncertainty import UncertaintyParameters
from tmsnet.targeting.workflow import TargetingParameters, compute_targets


def _copy_subject(subject, tmp_path):
    """The short subject's BOLD, mask, sidecar and confounds in a folder of the test's own."""
    folder = tmp_path / "func"
    folder.mkdir()
    for path in subject.bold_path.parent.iterdir():
        shutil.copy2(path, folder / path.name)
    return folder / subject.bold_path.name, folder / subject.confounds_path.name


def _write_with_duplicate(table, path, name, values):
    header = "\t".join([*table.columns, name])
    rows = ["\t".join([*("n/a" if pd.isna(v) else repr(float(v)) for v in row), repr(float(extra))])
            for row, extra in zip(table.itertuples(index=False), values, strict=True)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def test_duplicate_confound_column_with_other_values_is_refused(short_subject, tmp_path):
    table = pd.read_csv(short_subject.confounds_path, sep="\t", na_values=["n/a"])
    path = tmp_path / "dup_desc-confounds_timeseries.tsv"
    _write_with_duplicate(table, path, "trans_x", table["trans_x"].to_numpy() + 1.0)
    # pandas alone would read it as trans_x and trans_x.1 and tmsnet would use the first
    with pytest.raises(ConfoundsError, match="two columns named 'trans_x' with different"):
        load_confounds_table(path, n_frames=len(table))


def test_duplicate_confound_column_with_equal_values_is_one_column(short_subject, tmp_path):
    table = pd.read_csv(short_subject.confounds_path, sep="\t", na_values=["n/a"])
    path = tmp_path / "dup_desc-confounds_timeseries.tsv"
    _write_with_duplicate(table, path, "trans_x", table["trans_x"].to_numpy())
    loaded = load_confounds_table(path, n_frames=len(table))
    assert list(loaded.columns) == list(table.columns)  # an exact copy: one column, no ".1"
    pd.testing.assert_series_equal(loaded["trans_x"], table["trans_x"], check_exact=False)


def test_corrupt_json_sidecar_is_refused_with_its_name(short_subject, tmp_path, capsys):
    bold, confounds = _copy_subject(short_subject, tmp_path)
    sidecar = bold.with_name(bold.name.replace(".nii.gz", ".json"))
    assert sidecar.is_file()
    sidecar.write_text('{"RepetitionTime": 2.0,')  # truncated
    with pytest.raises(InvalidImageError, match="not readable JSON"):
        load_bold(bold)
    rc = main(["target", "--bold", str(bold), "--confounds", str(confounds), "--out",
               str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and sidecar.name in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.nii.gz"))


def test_first_row_fill_of_derivatives_is_recorded(short_subject, tmp_path):
    table = pd.read_csv(short_subject.confounds_path, sep="\t", na_values=["n/a"])
    na_first = [c for c in table.columns if pd.isna(table[c].iloc[0])]
    assert na_first, "the generated confounds must have n/a in the first row (as fMRIPrep)"
    result = compute_targets(short_subject.bold_path, short_subject.confounds_path,
                             TargetingParameters(methods=("peak",),
                                                 uncertainty=UncertaintyParameters(n_bootstrap=0)),
                             progress=False)
    record = result.parameters["cleaning"]
    used_na = [c for c in record["confound_columns"] if c in na_first]
    assert used_na, "the default strategy regresses derivatives"
    assert record["first_row_filled_columns"] == used_na
    assert "second row" in record["first_row_fill"]
    json.dumps(record)  # recordable as is
