"""Parameter objects: one frozen dataclass per concern, validated once, CLI built from the fields.

A concern's parameters (the fMRI cleaning, a targeting method's options, the
bootstrap, a treatment plan...) are one frozen dataclass deriving from
:class:`Parameters`, each field declared with :func:`param`: its default
(declared once, here and nowhere else), its help text and units, its
command-line flag and its valid range. Construction validates every field
(type, finiteness, bounds, choices) and then the cross-field rules of
:meth:`Parameters.check`, so an object that exists is valid; the messages name
the command-line flag and the Python name together.

The command line is generated from the fields: :func:`add_parameter_arguments`
adds one option per field to an :mod:`argparse` parser or group (help text with
units and default, choices, ``--no-x`` switches for fields that default to
True, deprecated spellings that still work but warn), and
:func:`parameters_from_args` builds the object back from the parsed namespace.
Adding a parameter is therefore one edit: a new field.

Examples
--------
>>> from tmsnet.utils.params import Parameters, param
>>> @dataclass(frozen=True)
... class Smoothing(Parameters):
...     fwhm_mm: float | None = param(6.0, help="Gaussian smoothing FWHM", units="mm",
...                                   flag="--smoothing-fwhm", low=0, allow_none=True)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any

from tmsnet.exceptions import InvalidParameterError
from tmsnet.utils.check import check_number, check_option

__all__ = [
    "ParamSpec",
    "Parameters",
    "add_parameter_arguments",
    "parameter_specs",
    "parameters_from_args",
    "parameters_from_mapping",
    "param",
]

_KEY = "tmsnet"


@dataclass(frozen=True)
class ParamSpec:
    """What the CLI and the checks need to know about one field (see :func:`param`)."""

    help: str
    units: str | None = None
    flag: str | None = None
    deprecated_flags: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    allow_none: bool = False
    kind: str | None = None
    nargs: str | int | None = None
    metavar: str | tuple[str, ...] | None = None
    cli: bool = True
    from_cli: Callable[[Any], Any] | None = None
    item_kind: str | None = None


def param(
    default: Any = MISSING,
    *,
    help: str,  # noqa: A002 - argparse's name
    default_factory: Callable[[], Any] | None = None,
    **spec: Any,
) -> Any:
    """A dataclass field of a :class:`Parameters` object, with its checks and CLI metadata.

    Parameters
    ----------
    default : object
        The default value (declared here once). Use ``default_factory`` for mutable ones.
    help : str
        One line for ``--help`` and the documentation (without the units).
    units : str, optional
        Units of the value (``"mm"``, ``"Hz"``, ``"s"``, ``"%"``), shown in the help text
        and the error messages.
    flag : str, optional
        Command-line flag; default ``--`` + the field name with dashes. For a boolean
        that defaults to True, the flag that turns it off (``--no-gsr``).
    deprecated_flags : sequence of str
        Old spellings that still work for one release and print a warning on stderr.
    choices : iterable, optional
        The accepted values.
    low, high : float, optional
        Bounds. NaN and infinity are always refused for numbers.
    low_inclusive, high_inclusive : bool
        Whether the bounds themselves are allowed (default True).
    allow_none : bool, optional
        Accept None; default True when the default is None.
    kind : {"float", "int", "bool", "str", "path", "tuple", "any"}, optional
        What the field holds; default from the default's type (``float`` for None).
    item_kind : {"float", "int", "str", "path"}, optional
        For ``kind="tuple"``: what each item is (checked with the same bounds).
    nargs, metavar : optional
        Passed to :mod:`argparse` (``nargs="+"`` for lists, ``3`` for coordinates).
    cli : bool
        Whether the command line offers the field.
    from_cli : callable, optional
        Converts the parsed command-line value (e.g. ``0`` -> ``None``).
    default_factory : callable, optional
        For mutable defaults.
    **spec
        The other entries above (``units``, ``flag``, ``deprecated_flags``, ``choices``,
        ``low``, ``high``, ``low_inclusive``, ``high_inclusive``, ``allow_none``, ``kind``,
        ``item_kind``, ``nargs``, ``metavar``, ``cli``, ``from_cli``): the fields of
        :class:`ParamSpec`, where each is declared once; an unknown name is a TypeError.

    Returns
    -------
    dataclasses.Field
    """
    if spec.get("allow_none") is None:
        spec["allow_none"] = default is None
    if spec.get("kind") is None:
        spec["kind"] = _kind_of(default if default is not MISSING else None)
    for key in ("deprecated_flags", "choices"):
        if spec.get(key) is not None:
            spec[key] = tuple(spec[key])
    spec = ParamSpec(help=help, **spec)
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata={_KEY: spec})
    return dataclasses.field(default=default, metadata={_KEY: spec})


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Path):
        return "path"
    if isinstance(value, tuple | list):
        return "tuple"
    return "float"


def flag_of(field: dataclasses.Field, prefix: str = "") -> str:
    """The command-line flag of a field."""
    spec: ParamSpec = field.metadata[_KEY]
    return spec.flag or f"--{prefix}{field.name}".replace("_", "-")


def parameter_specs(cls: type) -> dict[str, tuple[dataclasses.Field, ParamSpec]]:
    """Field and :class:`ParamSpec` of every declared parameter of ``cls``, in order."""
    return {f.name: (f, f.metadata[_KEY]) for f in dataclasses.fields(cls) if _KEY in f.metadata}


def _label(field: dataclasses.Field, spec: ParamSpec) -> str:
    if not spec.cli:
        return field.name
    return f"{flag_of(field)} ({field.name})"


def _check_scalar(value: Any, kind: str, label: str, spec: ParamSpec) -> Any:
    if kind in ("float", "int"):
        return check_number(value, label, low=spec.low, high=spec.high, low_inclusive=spec.low_inclusive,
                            high_inclusive=spec.high_inclusive, integer=kind == "int", units=spec.units)
    if kind == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise InvalidParameterError(f"{label} must be True or False, got {value!r}.")
        return bool(value)
    if kind == "str" and not isinstance(value, str):
        raise InvalidParameterError(f"{label} must be text, got {value!r}.")
    if kind == "path":
        if not isinstance(value, str | Path):
            raise InvalidParameterError(f"{label} must be a file path, got {value!r}.")
        return Path(value)
    return value


def _check_field(value: Any, field: dataclasses.Field, spec: ParamSpec) -> Any:
    label = _label(field, spec)
    if value is None:
        if spec.allow_none:
            return None
        raise InvalidParameterError(f"{label} is required (got None).")
    if spec.kind == "tuple":
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise InvalidParameterError(f"{label} must be a list of values, got {value!r}.")
        items = tuple(value)
        if spec.item_kind is not None:
            items = tuple(_check_scalar(item, spec.item_kind, label, spec) for item in items)
        if spec.choices is not None:
            for item in items:
                check_option(label, item, spec.choices)
        return items
    value = _check_scalar(value, spec.kind or "any", label, spec)
    if spec.choices is not None:
        check_option(label, value, spec.choices)
    return value


@dataclass(frozen=True)
class Parameters:
    """Base of tmsnet's parameter objects: frozen, validated at construction.

    Subclasses are ``@dataclass(frozen=True)`` with fields declared by
    :func:`param`, and override :meth:`check` for rules that involve several
    fields. Values are normalised on construction (an int given for a float
    field becomes a float, a list for a tuple field a tuple, a str for a path a
    :class:`~pathlib.Path`).
    """

    def __post_init__(self) -> None:
        for name, (field, spec) in parameter_specs(type(self)).items():
            object.__setattr__(self, name, _check_field(getattr(self, name), field, spec))
        self.check()

    def check(self) -> None:
        """Cross-field rules; raise :class:`~tmsnet.exceptions.InvalidParameterError`."""

    def replace(self, **changes: Any) -> Parameters:
        """A copy with some fields changed (validated again)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise InvalidParameterError(
                f"{type(self).__name__} has no parameter {sorted(unknown)}; "
                f"valid: {[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """All parameters as JSON-compatible plain data (for sidecars and provenance)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, Parameters):
        return value.as_dict()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _DeprecatedFlag(argparse.Action):
    """An old spelling of an option: works, and says which flag replaces it."""

    def __init__(self, option_strings, dest, new_flag: str, inner: argparse.Action, **kwargs):
        self.new_flag, self.inner = new_flag, inner
        super().__init__(option_strings, dest, nargs=inner.nargs, const=inner.const, type=inner.type,
                         choices=inner.choices, metavar=inner.metavar, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"tmsnet: warning: {option_string} is deprecated and will be removed in the next "
              f"release; use {self.new_flag}", file=sys.stderr)
        self.inner(parser, namespace, values, option_string)


def _argparse_type(spec: ParamSpec) -> Callable[[str], Any] | None:
    kind = spec.item_kind if spec.kind == "tuple" else spec.kind
    return {"float": float, "int": int, "path": Path, "str": str}.get(kind or "", None)


def _help_text(field: dataclasses.Field, spec: ParamSpec, flag: str) -> str:
    text = spec.help.replace("%", "%%")
    if spec.units:
        text += f" ({spec.units.replace('%', '%%')})"
    if spec.kind == "bool":
        return text + (f" (on by default; {flag} turns it off)" if field.default is True else "")
    return text + " (default: %(default)s)"


def add_parameter_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    *,
    prefix: str = "",
    exclude: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> list[str]:
    """Add one command-line option per field of a :class:`Parameters` class.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
        Where the options go.
    cls : type
        A :class:`Parameters` subclass.
    prefix : str
        Prepended to the default flag and to the ``dest`` (for two classes with a
        field of the same name on one command line).
    exclude, only : iterable of str
        Field names to leave out / the only ones to add.

    Returns
    -------
    list of str
        The ``dest`` names added (``prefix`` + field name), for
        :func:`parameters_from_args`.
    """
    exclude, only = set(exclude), None if only is None else set(only)
    added = []
    for name, (field, spec) in parameter_specs(cls).items():
        if not spec.cli or name in exclude or (only is not None and name not in only):
            continue
        dest = f"{prefix}{name}".replace("-", "_")
        flag = spec.flag or f"--{prefix}{name}".replace("_", "-")
        default = field.default if field.default is not MISSING else None
        kwargs: dict[str, Any] = {"dest": dest, "help": _help_text(field, spec, flag)}
        if spec.kind == "bool":
            kwargs.update(action="store_false" if default else "store_true", default=default)
        else:
            kwargs.update(default=default, type=_argparse_type(spec))
            if spec.choices is not None:
                kwargs["choices"] = list(spec.choices)
            if spec.nargs is not None or spec.kind == "tuple":
                kwargs["nargs"] = spec.nargs or "+"
            if spec.metavar is not None:
                kwargs["metavar"] = spec.metavar
        action = parser.add_argument(flag, **kwargs)
        action.tmsnet_parameter = (cls, name)  # lets tests check that CLI defaults are the fields'
        for old in spec.deprecated_flags:
            parser.add_argument(old, dest=dest, action=_DeprecatedFlag, new_flag=flag, inner=action)
        added.append(dest)
    return added


def parameters_from_args(cls: type, namespace: argparse.Namespace, *, prefix: str = "", **overrides: Any):
    """Build a :class:`Parameters` object from a namespace filled by :func:`add_parameter_arguments`.

    Fields the command line does not offer take their defaults (or ``overrides``).
    """
    values: dict[str, Any] = {}
    for name, (_field, spec) in parameter_specs(cls).items():
        dest = f"{prefix}{name}".replace("-", "_")
        if name in overrides:
            values[name] = overrides.pop(name)
        elif spec.cli and hasattr(namespace, dest):
            value = getattr(namespace, dest)
            if spec.kind == "tuple" and isinstance(value, list):
                value = tuple(value)
            values[name] = spec.from_cli(value) if spec.from_cli is not None else value
    if overrides:
        values.update(overrides)
    return cls(**values)


def parameters_from_mapping(cls: type, mapping: Mapping[str, Any], *, base: Any = None):
    """Build (or update ``base``) from ``{field: value}``; values given as text are read as JSON.

    Used by ``--option KEY=VALUE`` of the BIDS-App: ``"null"`` is None, ``"[1, 2]"``
    a list, other text stays text. Unknown keys raise
    :class:`~tmsnet.exceptions.InvalidParameterError` listing the valid ones.
    """
    specs = parameter_specs(cls)
    unknown = sorted(set(mapping) - set(specs))
    if unknown:
        raise InvalidParameterError(f"Unknown {cls.__name__} option(s) {unknown}; valid: {sorted(specs)}.")
    values = {}
    for key, value in mapping.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        values[key] = value
    if base is not None:
        return base.replace(**values)
    return cls(**values)
