"""The TMS-EEG job's parameter objects and the ``tmsnet tep`` flags built from them."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
from pathlib import Path

import pytest

import tmsnet
from tmsnet.eeg import commands
from tmsnet.eeg.cleaning import CleaningParameters
from tmsnet.eeg.io import RecordingParameters
from tmsnet.eeg.workflow import TepMeasureParameters
from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.params import parameters_from_args

CLASSES = (RecordingParameters, CleaningParameters, TepMeasureParameters)


def tep_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tmsnet")
    commands.add_parsers(parser.add_subparsers(dest="command"))
    return parser


def tep_subparser() -> argparse.ArgumentParser:
    parser = tep_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["tep"]


@pytest.mark.parametrize("cls", CLASSES)
def test_cli_defaults_are_the_dataclass_defaults(cls):
    args = tep_parser().parse_args(["tep", "--demo", "--out", "x"])
    assert parameters_from_args(cls, args) == cls()


def test_flags_reach_the_parameters():
    args = tep_parser().parse_args([
        "tep", "--demo", "--out", "x", "--decay", "exp", "--resample", "500", "--no-ica1",
        "--ica-components", "10", "--random-seed", "7", "--roi", "C3", "C1",
        "--pcist-convention", "inclusive", "--refractory", "0.3", "--detect-pulses",
        "--montage", "standard_1020"])
    cleaning = parameters_from_args(CleaningParameters, args)
    assert (cleaning.decay, cleaning.resample_sfreq, cleaning.ica1, cleaning.ica_n_components,
            cleaning.random_seed) == ("exp", 500.0, False, 10, 7)
    measures = parameters_from_args(TepMeasureParameters, args)
    assert measures.roi == ("C3", "C1") and measures.pcist_convention == "inclusive"
    recording = parameters_from_args(RecordingParameters, args)
    assert recording.refractory_s == 0.3 and recording.montage == "standard_1020"
    assert recording.pulse_options() == {"annotation": "TMS", "stim_channel": None, "detect": True,
                                         "refractory_s": 0.3}
    none = tep_parser().parse_args(["tep", "--demo", "--out", "x", "--decay", "none"])
    assert parameters_from_args(CleaningParameters, none).decay is None


def test_seed_flag_is_deprecated(capsys):
    args = tep_parser().parse_args(["tep", "--demo", "--out", "x", "--seed", "4"])
    assert parameters_from_args(CleaningParameters, args).random_seed == 4
    err = capsys.readouterr().err
    assert "--seed is deprecated" in err and "--random-seed" in err


def test_parameters_are_frozen_and_validated_at_construction():
    params = CleaningParameters()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.ica_n_components = 3
    for bad, phrase in [
        ({"ica_n_components": 1}, "--ica-components"),
        ({"resample_sfreq": 0.0}, "--resample"),
        ({"interpolation": "spline"}, "--interpolation"),
        ({"decay": "linear"}, "--decay"),
        ({"l_freq": 40.0, "h_freq": 30.0}, "--l-freq"),
        ({"ica1_rules": ("nonsense",)}, "ica1_rules"),
        ({"cut1": (-0.002, 2.0)}, "cut1"),
        ({"random_seed": -1}, "--random-seed"),
    ]:
        with pytest.raises(InvalidParameterError, match=re.escape(phrase)):
            CleaningParameters(**bad)
    with pytest.raises(InvalidParameterError, match="--refractory"):
        RecordingParameters(refractory_s=0.0)
    with pytest.raises(InvalidParameterError, match="--pcist-convention"):
        TepMeasureParameters(pcist_convention="matlab")
    with pytest.raises(InvalidParameterError, match="Peak window 'N15'"):
        TepMeasureParameters(windows_ms={"N15": (20.0, 10.0)})


def test_cleaning_record_keeps_the_seed_key():
    record = CleaningParameters(random_seed=3).as_dict()
    assert record["seed"] == 3 and "random_seed" not in record
    assert record["rules"]["blink_z"] == 2.5
    assert record["cut1"] == [-0.002, 0.01]
    assert list(record)[-1] == "seed"


def _flags_in_messages() -> set[str]:
    """Flags named in the error messages of the tep code path (raise ... / parser.error)."""
    root = Path(tmsnet.__file__).parent
    files = [*sorted((root / "eeg").glob("*.py")), root / "jobs" / "tep.py"]
    flags: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            is_error_call = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                             and node.func.attr == "error")
            if not isinstance(node, ast.Raise) and not is_error_call:
                continue
            for const in ast.walk(node):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    flags.update(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", const.value))
    return flags


def test_error_messages_name_existing_flags():
    flags = _flags_in_messages()
    assert "--events" in flags  # the scan sees the messages
    options = {s for action in tep_subparser()._actions for s in action.option_strings}
    assert not flags - options, sorted(flags - options)
