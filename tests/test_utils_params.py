"""Shared checks, docstring fragments and parameter objects (tmsnet.utils)."""

from __future__ import annotations

import argparse
import math
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.check import check_number, check_option, ensure_int, validate_type
from tmsnet.utils.docs import docdict, fill_doc
from tmsnet.utils.params import (
    Parameters,
    add_parameter_arguments,
    param,
    parameters_from_args,
    parameters_from_mapping,
)


@dataclass(frozen=True)
class Toy(Parameters):
    fwhm_mm: float | None = param(6.0, help="smoothing FWHM", units="mm", flag="--smoothing-fwhm", low=0,
                                  allow_none=True, from_cli=lambda v: v or None)
    gsr: bool = param(True, help="regress the global signal", flag="--no-gsr")
    random_seed: int = param(0, help="seed", low=0, deprecated_flags=("--seed",))
    strategy: str = param("simple", help="confound strategy", choices=("simple", "none"))
    roi: Path | None = param(None, help="ROI image", kind="path")
    centre_mm: tuple = param((), help="centre", kind="tuple", item_kind="float", nargs=3)
    low_hz: float = param(0.01, help="high-pass", units="Hz", low=0, low_inclusive=False)
    high_hz: float = param(0.1, help="low-pass", units="Hz", low=0, low_inclusive=False)

    def check(self):
        if self.high_hz <= self.low_hz:
            raise InvalidParameterError("--high-hz must be above --low-hz.")


def test_checks_accept_good_and_name_the_parameter_on_bad():
    assert check_option("kind", "a", ["a", "b"]) == "a"
    with pytest.raises(InvalidParameterError, match=r"kind: 'c'; choose from 'a', 'b'"):
        check_option("kind", "c", ["a", "b"])
    assert ensure_int(3.0, "n") == 3 and isinstance(ensure_int(3.0, "n"), int)
    for bad in (True, 2.5, "3", None, math.nan):
        with pytest.raises(InvalidParameterError, match="n must be an integer"):
            ensure_int(bad, "n")
    assert check_number(5, "x", low=0, high=10) == 5.0
    with pytest.raises(InvalidParameterError, match=r"x must be > 0 mm, got 0"):
        check_number(0, "x", low=0, low_inclusive=False, units="mm")
    for bad in (math.nan, math.inf, -math.inf, True, "1"):
        with pytest.raises(InvalidParameterError, match="x must be a"):
            check_number(bad, "x")
    assert check_number(None, "x", allow_none=True) is None
    with pytest.raises(InvalidParameterError, match="must be int"):
        validate_type(True, int, "n")
    assert validate_type(1, int, "n") == 1


def test_parameters_validate_normalise_and_freeze():
    toy = Toy(fwhm_mm=4, centre_mm=[1, 2, 3], roi="x.nii.gz")
    assert toy.fwhm_mm == 4.0 and isinstance(toy.fwhm_mm, float)
    assert toy.centre_mm == (1.0, 2.0, 3.0) and toy.roi == Path("x.nii.gz")
    with pytest.raises(FrozenInstanceError):
        toy.fwhm_mm = 2.0
    for bad, message in [({"fwhm_mm": -1}, r"--smoothing-fwhm \(fwhm_mm\) must be >= 0 mm"),
                         ({"fwhm_mm": math.nan}, "finite"), ({"random_seed": -1}, "random_seed"),
                         ({"random_seed": 1.5}, "integer"), ({"strategy": "x"}, "choose from"),
                         ({"gsr": 1}, "True or False"), ({"low_hz": 0.2}, "must be above")]:
        with pytest.raises(InvalidParameterError, match=message):
            Toy(**bad)
    assert toy.replace(random_seed=3).random_seed == 3
    with pytest.raises(InvalidParameterError, match="no parameter"):
        toy.replace(nope=1)
    assert toy.as_dict()["roi"] == "x.nii.gz" and toy.as_dict()["centre_mm"] == [1.0, 2.0, 3.0]


def test_cli_is_built_from_the_fields(capsys):
    parser = argparse.ArgumentParser()
    dests = add_parameter_arguments(parser, Toy)
    assert dests == ["fwhm_mm", "gsr", "random_seed", "strategy", "roi", "centre_mm", "low_hz", "high_hz"]
    assert parameters_from_args(Toy, parser.parse_args([])) == Toy()
    args = parser.parse_args(["--smoothing-fwhm", "0", "--no-gsr", "--centre-mm", "1", "2", "3",
                              "--seed", "4"])
    toy = parameters_from_args(Toy, args)
    assert toy == Toy(fwhm_mm=None, gsr=False, centre_mm=(1, 2, 3), random_seed=4)
    assert "--seed is deprecated" in capsys.readouterr().err
    help_text = parser.format_help()
    assert "smoothing FWHM (mm) (default: 6.0)" in help_text and "--seed" not in help_text
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategy", "other"])


def test_mapping_reads_json_values_and_refuses_unknown_keys():
    toy = parameters_from_mapping(Toy, {"fwhm_mm": "null", "random_seed": "7", "strategy": "none"})
    assert toy == Toy(fwhm_mm=None, random_seed=7, strategy="none")
    with pytest.raises(InvalidParameterError, match="Unknown Toy option"):
        parameters_from_mapping(Toy, {"fwhmm": "1"})


def test_fill_doc_pastes_shared_text_with_the_docstring_indent():
    @fill_doc
    def f(random_seed=0):
        """Do.

        Parameters
        ----------
        %(random_seed)s
        """

    first_line = docdict["random_seed"].splitlines()[1].strip()
    assert "        random_seed : int\n            " + first_line in f.__doc__
    with pytest.raises(KeyError):
        fill_doc(type("X", (), {"__doc__": "%(not_a_key)s"}))
