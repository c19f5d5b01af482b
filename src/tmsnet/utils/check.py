"""Argument checks shared by every module (in the style of ``mne.utils.check``).

Each helper returns the checked (and normalised) value or raises
:class:`tmsnet.exceptions.InvalidParameterError` with a message that names the
parameter and says what to fix. ``name`` is what the user typed: pass the
command-line flag and the Python name together (``"--smoothing-fwhm
(smoothing_fwhm_mm)"``) where both exist, as :mod:`tmsnet.utils.params` does.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from typing import Any

from tmsnet.exceptions import InvalidParameterError

__all__ = ["check_number", "check_option", "ensure_int", "validate_type"]


def check_option(name: str, value: Any, allowed: Iterable[Any], *, extra: str = "") -> Any:
    """Check that ``value`` is one of ``allowed``.

    Parameters
    ----------
    name : str
        Name of the parameter, for the message.
    value : object
        The value given.
    allowed : iterable
        The accepted values.
    extra : str
        Appended to the message (e.g. how to add a choice).

    Returns
    -------
    value : object
        ``value`` unchanged.
    """
    allowed = list(allowed)
    if value in allowed:
        return value
    options = ", ".join(repr(a) for a in allowed)
    message = f"Invalid value for {name}: {value!r}; choose from {options}."
    raise InvalidParameterError(f"{message} {extra}".strip())


def validate_type(value: Any, types: type | tuple[type, ...], name: str, type_name: str | None = None) -> Any:
    """Check that ``value`` is an instance of ``types``; ``bool`` is never taken as a number."""
    types = types if isinstance(types, tuple) else (types,)
    numeric = any(t in (int, float, numbers.Number, numbers.Real, numbers.Integral) for t in types)
    if isinstance(value, types) and not (numeric and isinstance(value, bool) and bool not in types):
        return value
    wanted = type_name or " or ".join(t.__name__ for t in types)
    raise InvalidParameterError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}.")


def ensure_int(value: Any, name: str) -> int:
    """``value`` as an ``int``; refuses booleans, non-integral floats, NaN and text."""
    if isinstance(value, bool) or value is None:
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}.")
    try:
        as_int = operator.index(value)
    except TypeError:
        if isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
            return int(value)
        raise InvalidParameterError(f"{name} must be an integer, got {value!r}.") from None
    return int(as_int)


def _number(value: float) -> str:
    """A bound as written: integers in full (4294967295, not 4.29497e+09), others with %g."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def _bound_text(low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {_number(low)}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {_number(high)}")
    return " and ".join(parts)


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_none: bool = False,
    integer: bool = False,
    units: str | None = None,
) -> float | int | None:
    """Check a finite real number (or an integer) against optional bounds.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        Name of the parameter, for the message.
    low, high : float, optional
        Bounds.
    low_inclusive, high_inclusive : bool
        Whether the bounds themselves are allowed (default True).
    allow_none : bool
        Accept ``None`` (returned as is).
    integer : bool
        Require an integer (see :func:`ensure_int`); returns ``int``.
    units : str, optional
        Units of the bounds, for the message (``"mm"``, ``"Hz"``).

    Returns
    -------
    value : float, int or None
        The checked value (``float`` unless ``integer``).
    """
    if value is None:
        if allow_none:
            return None
        raise InvalidParameterError(f"{name} is required (got None).")
    if integer:
        number: float | int = ensure_int(value, name)
    else:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise InvalidParameterError(f"{name} must be a number, got {value!r}.")
        number = float(value)
        if not math.isfinite(number):
            raise InvalidParameterError(f"{name} must be a finite number, got {value!r}.")
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and (number > high if high_inclusive else number >= high)
    if too_low or too_high:
        unit = f" {units}" if units else ""
        bounds = _bound_text(low, high, low_inclusive, high_inclusive)
        raise InvalidParameterError(f"{name} must be {bounds}{unit}, got {value!r}.")
    return number
