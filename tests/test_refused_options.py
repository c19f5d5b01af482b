"""Bad option values are refused before any work, by the parameter objects themselves (issue 14).

Generated from the parameter classes: every numeric field of every
:class:`tmsnet.utils.params.Parameters` subclass in the package refuses NaN and
infinity with a message naming its command-line flag, and every declared bound
is enforced; a new option cannot escape the checks.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil

import pytest

import tmsnet
from tmsnet.exceptions import InvalidParameterError
from tmsnet.targeting.uncertainty import MIN_BOOTSTRAP_BLOCKS, check_block_count
from tmsnet.utils.params import Parameters, flag_of, parameter_specs


def _parameter_classes() -> list[type]:
    for module in pkgutil.walk_packages(tmsnet.__path__, "tmsnet."):
        if ".simulate" not in module.name:
            importlib.import_module(module.name)
    found, stack = [], list(Parameters.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("tmsnet.") and "test" not in cls.__module__:
            found.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__name__}")


CLASSES = _parameter_classes()
NUMERIC = [(cls, name) for cls in CLASSES for name, (_, spec) in parameter_specs(cls).items()
           if spec.kind in ("float", "int")]


def test_the_package_declares_its_options_as_parameter_objects():
    assert len(CLASSES) >= 15 and len(NUMERIC) >= 40


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC])
def test_nan_and_infinity_are_refused_with_the_flag(cls, name):
    field, spec = parameter_specs(cls)[name]
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(InvalidParameterError) as error:
            cls(**{name: bad})
        if spec.cli:
            assert flag_of(field) in str(error.value)


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC])
def test_declared_bounds_are_enforced(cls, name):
    _, spec = parameter_specs(cls)[name]
    if spec.low is not None:
        below = spec.low - 1 if spec.low_inclusive else spec.low
        with pytest.raises(InvalidParameterError, match="must be"):
            cls(**{name: below})
    if spec.high is not None:
        above = spec.high + 1 if spec.high_inclusive else spec.high
        with pytest.raises(InvalidParameterError, match="must be"):
            cls(**{name: above})


def test_every_default_is_valid():
    for cls in CLASSES:
        fields = [f for f in dataclasses.fields(cls)
                  if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if not fields:  # a class with required fields is built by its job, not from defaults
            assert isinstance(cls(), cls)


def test_a_block_as_long_as_the_scan_is_refused():
    """``--bootstrap-block-frames 150`` on a 150-frame scan gave '95 % radius 0.0 mm ... stable'."""
    with pytest.raises(InvalidParameterError, match=r"--bootstrap-block-frames 150 leaves 1 whole block"):
        check_block_count(150, [150])
    with pytest.raises(InvalidParameterError, match=f"at least {MIN_BOOTSTRAP_BLOCKS}"):
        check_block_count(40, [100, 50])  # 2 + 1 blocks: runs are never crossed
    assert check_block_count(15, [300]) == 20
    assert check_block_count(15, [30, 30]) == MIN_BOOTSTRAP_BLOCKS


@pytest.mark.parametrize(("cls", "name"), NUMERIC, ids=[f"{c.__name__}.{n}" for c, n in NUMERIC])
def test_negative_zero_and_absurd_values_are_refused_or_valid(cls, name):
    """Every numeric option has an upper bound; -1, 0 and 1e12 are refused or accepted, never
    anything else (``--smoothing-fwhm 1e6`` ran for more than 12 minutes before)."""
    field, spec = parameter_specs(cls)[name]
    assert spec.high is not None, f"{cls.__name__}.{name} declares no upper bound"
    cast = int if spec.kind == "int" else float
    for value in (cast(-1), cast(0), cast(1e12)):
        try:
            cls(**{name: value})
        except InvalidParameterError as error:
            if spec.cli:
                assert flag_of(field) in str(error)
        else:
            assert value <= spec.high, f"{cls.__name__}.{name}={value} accepted"
    with pytest.raises(InvalidParameterError):
        cls(**{name: cast(1e12)})
