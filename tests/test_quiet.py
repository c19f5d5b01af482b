"""``--quiet`` turns library warnings into one tmsnet line (issue 14, item 10)."""

import warnings

from tmsnet.cli import main
from tmsnet.utils.quiet import quiet_warnings


def _library_warnings():
    for library, text in (("nilearn", "Resampling binary images with continuous interpolation"),
                          ("numpy", "Warning: converting a masked element to nan."),
                          ("nilearn", "another note")):
        warnings.warn_explicit(text, UserWarning,
                               f"/venv/lib/python3.11/site-packages/{library}/module.py", 10)


def test_quiet_records_library_warnings_and_prints_one_line(capsys):
    with quiet_warnings(True):
        _library_warnings()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tmsnet: 3 library warnings not shown (--quiet): nilearn 2, numpy 1"]


def test_without_quiet_the_warnings_are_python_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_warnings(False):
            _library_warnings()
    assert len(caught) == 3


def test_the_cli_applies_it_to_every_command(monkeypatch, tmp_path, capsys):
    import tmsnet.report.commands as report_commands

    def noisy(args, parser):
        _library_warnings()
        print("done")
        return 0

    monkeypatch.setattr(report_commands, "_run_report", noisy)
    assert main(["report", str(tmp_path), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "done"
    assert captured.err.strip().splitlines() == [
        "tmsnet: 3 library warnings not shown (--quiet): nilearn 2, numpy 1"]
