"""Per-subject report assembly: the provider registry contract and the targeting provider."""

import json

import nibabel as nib
import numpy as np
import pytest

from tmsnet.exceptions import InputFileNotFoundError, InvalidParameterError
from tmsnet.report.html import ReportSection
from tmsnet.report.subject import (
    SubjectSections,
    build_subject_report,
    register_section_provider,
    section_providers,
    unregister_section_provider,
    write_job_report,
    write_subject_report,
)

AFFINE = np.array([[2.0, 0, 0, -60], [0, 2, 0, -40], [0, 0, 2, -20], [0, 0, 0, 1]])


@pytest.fixture
def derivatives(tmp_path):
    """A tiny targeting derivatives folder: one target (cluster) on a 40^3 2 mm grid."""
    func = tmp_path / "sub-07" / "func"
    func.mkdir(parents=True)
    prefix = "sub-07_task-rest_space-MNI152NLin2009cAsym"
    r = np.zeros((40, 40, 40), np.float32)
    r[8:13, 38:40, 22:27] = -0.6
    nib.save(nib.Nifti1Image(r, AFFINE), func / f"{prefix}_stat-r_desc-sgacc_connectivity.nii.gz")
    search = (r != 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(search, AFFINE), func / f"{prefix}_desc-search_mask.nii.gz")
    target = {"x": -40.0, "y": 38.0, "z": 28.0, "space": "MNI152NLin2009cAsym", "method": "cluster",
              "r_at_target": -0.6}
    (func / f"{prefix}_desc-cluster_target.json").write_text(json.dumps(target))
    (tmp_path / "sub-07_task-rest_report.json").write_text(json.dumps(
        {"Summary": {"qc": {"n_frames": 100, "duration_min": 3.3},
                     "warnings": ["Short scan: 3.3 min."]}}))
    return tmp_path


@pytest.fixture
def clean_registry():
    before = [name for name, _ in section_providers()]
    yield
    for name, _ in section_providers():
        if name not in before:
            unregister_section_provider(name)


def test_targeting_provider_fills_the_summary_card(derivatives):
    page = build_subject_report(derivatives, "sub-07", providers=["targeting"]).html
    assert 'id="target-coordinates" data-x="-40.00" data-y="38.00" data-z="28.00"' in page
    assert "Short scan: 3.3 min." in page
    assert 'class="tmsnet-viewer"' in page and "viewer-fallback" in page


def _job_report(folder, name, n_jobs):
    return write_job_report(folder, providers=("targeting",), subject="07", select="sub-07_task-rest",
                            filename=name, title="t", n_jobs=n_jobs).read_bytes()


def test_figures_drawn_in_forked_processes_give_the_same_page(derivatives, monkeypatch):
    import tmsnet.report.providers.targeting as targeting

    serial = _job_report(derivatives, "serial.html", 1)
    assert serial.count(b"data:image/png;base64,") >= 3  # the connectivity figure twice + the glass brain
    assert _job_report(derivatives, "forked.html", 2) == serial
    # a part that fails in a worker fails the job with its own type, as it would here
    def refuse(run, anchor):
        raise InputFileNotFoundError("the references table is missing")
    monkeypatch.setitem(targeting._SECTIONS, "references", refuse)
    with pytest.raises(InputFileNotFoundError, match="references table"):
        _job_report(derivatives, "failed.html", 2)


def test_providers_plug_in_by_order_and_failures_are_shown(derivatives, clean_registry):
    calls = []

    def dose(context):
        calls.append(context.subject)
        return SubjectSections(
            sections=[ReportSection("Plan and dose", "<p>dose body</p>", "dose")],
            summary=[("Dose", "120 % rMT")], warnings=["Coil far from scalp."])

    def broken(context):
        raise RuntimeError("no E-field mesh")

    register_section_provider("dose", dose, order=20)
    register_section_provider("broken", broken, order=30)
    register_section_provider("empty", lambda context: None, order=40)
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_section_provider("dose", dose)
    page = build_subject_report(derivatives, "07").html
    assert calls == ["07"]
    assert page.index('id="targeting-1"') < page.index('id="dose"') < page.index('id="broken-failed"')
    assert "120 % rMT" in page and "Coil far from scalp." in page
    assert "no E-field mesh" in page
    assert "empty" not in page.split("Jobs in this report", 1)[1].split("</dd>", 1)[0]


def test_missing_subject_and_bad_labels(derivatives):
    with pytest.raises(InputFileNotFoundError, match="sub-99"):
        build_subject_report(derivatives, "99")
    with pytest.raises(InvalidParameterError, match="letters and digits"):
        build_subject_report(derivatives, "07/../x")
    with pytest.raises(InvalidParameterError, match="Unknown section provider"):
        build_subject_report(derivatives, "07", providers=["nope"])


def test_write_subject_report_is_atomic_with_sidecar(derivatives):
    path = write_subject_report(derivatives, "07", providers=["targeting"])
    assert path.name == "sub-07_report.html"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["Parameters"]["subject"] == "07"
    assert not list(derivatives.glob("*.tmp"))


def test_coordinate_table_and_missing_provider_modules(derivatives, clean_registry, monkeypatch):
    from tmsnet.report import subject
    from tmsnet.report.subject import SummaryCoordinate, build_subject_report

    def plan(context):
        return SubjectSections(coordinates=[SummaryCoordinate("Scalp point", "T1w", (-52.1, 38.0, 60.25),
                                                              "plan")])

    register_section_provider("fakeplan", plan, order=20)
    # A listed module whose package is not installed is skipped, not an error.
    monkeypatch.setattr(subject, "PROVIDER_MODULES",
                        (*subject.PROVIDER_MODULES, "tmsnet_missing_pkg.report_provider"))
    report = build_subject_report(derivatives, "07", providers=["targeting", "fakeplan"])
    assert report.jobs == ["targeting", "fakeplan"]
    card = report.html.split('id="summary"', 1)[1].split("</section>", 1)[0]
    assert ('data-label="Scalp point" data-space="T1w" data-x="-52.10" data-y="38.00" data-z="60.25"'
            in card)
    assert 'data-label="Target (cluster)" data-space="MNI152NLin2009cAsym" data-x="-40.00"' in card
    facts = report.as_dict()
    assert facts["coordinates"][-1] == {"label": "Scalp point", "space": "T1w", "x": -52.1, "y": 38.0,
                                        "z": 60.25, "units": "mm", "source": "plan"}
    # tmsnet's own provider modules are never optional: a missing one is an error.
    monkeypatch.setattr(subject, "PROVIDER_MODULES", ("tmsnet.report.no_such_module_here",))
    with pytest.raises(ModuleNotFoundError):
        subject.section_providers()
    monkeypatch.setattr(subject, "PROVIDER_MODULES", ("tmsnet_missing_pkg.report_provider",))
    assert [n for n, _ in subject.section_providers()][:1] == ["targeting"]


def test_a_corrupt_derivative_file_stops_the_report_with_one_line(tmp_path, capsys):
    """Issue 14: a garbage *_target.json used to print a traceback, then exit 0 with a '(failed)' page."""
    from tmsnet.cli import main

    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    bad = func / "sub-01_task-rest_space-MNI152NLin2009cAsym_desc-cluster_target.json"
    bad.write_text('{"x": 1,')
    assert main(["report", str(tmp_path), "--participant-label", "01"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tmsnet: error: Cannot read") and str(bad) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.html"))
