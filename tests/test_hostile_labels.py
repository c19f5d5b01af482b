"""Hostile input refused or escaped (issue 14, item 9).

* Every BIDS label that goes into a file name or a folder must match the BIDS
  label rule ``[a-zA-Z0-9]+`` (BIDS 1.9, "Common principles: entities")
  before any path is built: ``tmsnet plan --subject '../../evil'`` used to
  create ``OUT/sub-..`` and ``OUT/evil/nibs``. Now a one-line
  :class:`InvalidParameterError` names the option and nothing is written.
* Every text that reaches a report's HTML is escaped: a derivatives folder
  whose JSON holds ``<script>alert(1)</script>`` in every string field gives
  a report in which that string never appears raw.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tmsnet.cli import main
from tmsnet.exceptions import InvalidParameterError
from tmsnet.io.bids import bids_name, check_label, entity_prefix, subject_folder
from tmsnet.report.html import ReportSection, details_json, key_value_table, render_report, table_html

HOSTILE_LABELS = ["../../evil", "..", "a/b", "01_x", "01-x", "0 1", "", "évil", "01\n", "a\\b", "."]
XSS = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(2)>'


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("label", HOSTILE_LABELS)
def test_check_label_refuses_every_non_label_with_one_line(label):
    with pytest.raises(InvalidParameterError) as info:
        check_label(label, "--subject")
    message = str(info.value)
    assert "\n" not in message and message.startswith("--subject ")
    assert "letters and digits only" in message


@pytest.mark.parametrize("label", ["01", "A1b2", "MNI152NLin2009cAsym", "0"])
def test_check_label_keeps_valid_labels_unchanged(label):
    assert check_label(label, "--subject") == label


@pytest.mark.parametrize("key", ["sub", "ses", "task", "acq", "run", "desc", "space", "atlas"])
def test_every_entity_is_checked_in_names_and_prefixes(key, tmp_path):
    base = {"sub": "01", "task": "rest"}
    valid = bids_name({**base, key: "ok1"}, "bold", ".nii.gz")  # the same entity, valid: accepted
    assert f"{key}-ok1" in valid
    with pytest.raises(InvalidParameterError, match=f"{key} label"):
        bids_name({**base, key: "../../evil"}, "bold", ".nii.gz")
    if key in ("sub", "ses", "task", "acq", "run"):
        with pytest.raises(InvalidParameterError, match=f"{key} label"):
            entity_prefix({**base, key: "x/../y"})
    assert _tree(tmp_path) == set()


@pytest.mark.parametrize("entities", [{"sub": "../../evil"}, {"sub": "01", "ses": "../x"},
                                      {"sub": ".."}, {}])
def test_subject_folder_never_leaves_the_output_folder(entities, tmp_path):
    if not entities:  # a hostile default subject is refused as well
        with pytest.raises(InvalidParameterError, match="--subject"):
            subject_folder(tmp_path, entities, default_sub="../up")
        return
    with pytest.raises(InvalidParameterError, match="--s"):
        subject_folder(tmp_path, entities, "nibs")
    with pytest.raises(InvalidParameterError, match="datatype"):
        subject_folder(tmp_path, {"sub": "01"}, "../nibs")
    folder = subject_folder(tmp_path, {"sub": "01", "ses": "1"}, "nibs")
    assert folder == tmp_path / "sub-01" / "ses-1" / "nibs"


@pytest.mark.parametrize("label", ["../../evil", "..", "01/../../x"])
def test_plan_cli_refuses_hostile_subject_and_writes_nothing(label, tmp_path, capsys):
    out = tmp_path / "deep" / "out"
    out.mkdir(parents=True)
    code = main(["plan", "--target", "-38", "44", "26", "--space", "MNI152NLin2009cAsym",
                 "--subject", label, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("tmsnet: error: --subject ")
    assert "Traceback" not in err[0] and "letters and digits only" in err[0]
    assert _tree(tmp_path) == {"deep", os.path.join("deep", "out")}  # nothing inside or outside OUT


def test_participant_refuses_hostile_task_before_any_file(tmp_path):
    from tmsnet.bids_app.participant import ParticipantPlan, plan_jobs

    bids = tmp_path / "bids"
    (bids / "derivatives" / "fmriprep" / "sub-01" / "func").mkdir(parents=True)
    out = tmp_path / "out"
    for kwargs, flag in (({"task": "../../evil"}, "--task"), ({"space": "a/b"}, "--space"),
                         ({"res": ".."}, "--res"), ({"run_labels": ["1/.."]}, "--run-label")):
        with pytest.raises(InvalidParameterError, match=flag):
            plan_jobs(bids, out, ParticipantPlan(**kwargs))
    assert not out.exists() and not (tmp_path / "evil").exists()


def _poison(obj, text):
    """Every string leaf of a JSON value replaced by ``text`` + the original."""
    if isinstance(obj, dict):
        return {k: _poison(v, text) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_poison(v, text) for v in obj]
    if isinstance(obj, str):
        return text + obj
    return obj


def _assert_escaped(page: str) -> None:
    for raw in (XSS, ATTR):
        assert raw not in page
    # the escaped form is there: the hostile text was shown, not dropped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "\\u003cscript\\u003e" in page


def test_html_helpers_escape_every_field():
    text = XSS + ATTR
    page = render_report(title=text, subtitle=text, summary_html="",
                         sections=[ReportSection(title=text, html="", anchor="s1")])
    frame = pd.DataFrame({text: [text], "b": [text]}, index=pd.Index([text], name=text))
    parts = [table_html(frame, caption=text), key_value_table({text: text}, caption=text),
             details_json({text: text}, summary=text)]
    for part in [page, *parts]:
        _assert_escaped(part)


def test_plan_report_escapes_hostile_strings_in_every_shown_field(tmp_path):
    from tmsnet.jobs.plan import plan as plan_job
    from tmsnet.navigation.plan import PlanParameters
    from tmsnet.physics.dose import DoseParameters
    from tmsnet.report.subject import build_subject_report

    params = PlanParameters(protocol="10hz", dose=DoseParameters(mt_percent=48.0))
    _, written = plan_job((-38.0, 44.0, 26.0), "MNI152NLin2009cAsym", tmp_path, params, report=False)
    path = written["plan_json"]
    plan = json.loads(path.read_text())
    poisoned = _poison(plan, XSS + ATTR)
    # Fields the provider uses as keys (spaces) stay readable so the page is drawn; their
    # free-text neighbours (coil name, protocol name, method, warnings, provenance) are hostile.
    for key in ("space", "input_space"):
        poisoned[key] = plan[key]
    poisoned.setdefault("warnings", []).append(XSS)
    path.write_text(json.dumps(poisoned))
    page = build_subject_report(tmp_path, "01").html
    _assert_escaped(page)
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # many fields shown, all escaped
