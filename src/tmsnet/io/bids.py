"""BIDS naming in one place: entities, file names, folders, ``dataset_description.json``.

Every tmsnet job names its outputs through this module, so the rules of
BIDS (1.9, "Common principles: file names" and "Derivatives") live here once:

* :func:`parse_entities` / :func:`parse_bids_name`: the entities of a file
  name (lenient: the ``key-value`` pairs found; strict: every part, plus the
  suffix and extension).
* :func:`entity_prefix`, :func:`bids_name`, :func:`bids_label`: the
  ``sub-01_ses-1_task-rest_run-1`` prefix of a result, a whole name
  (``sub-01_task-rest_space-X_desc-Y_suffix.ext``, entities in the
  specification's order) and a label from free text.
* :func:`subject_folder`: ``OUT/sub-<label>[/ses-<label>][/<datatype>]``.
* :func:`check_label`: the BIDS label rule (``[a-zA-Z0-9]+``). Every value
  that goes into a name or a folder is checked by it before the path is
  built, so a hostile label (``../../evil``, ``a/b``, ``01_x``) is refused
  with a one-line :class:`~tmsnet.exceptions.InvalidParameterError` and
  never creates a folder outside the subject tree.
* :func:`derivatives_description` / :func:`write_dataset_description`: the
  ``dataset_description.json`` of a dataset (``GeneratedBy``,
  ``SourceDatasets``), and writing it without clobbering another
  program's dataset.

Examples
--------
>>> ent = parse_entities("sub-01_ses-1_task-rest_space-MNI_desc-preproc_bold.nii.gz")
>>> ent
{'sub': '01', 'ses': '1', 'task': 'rest'}
>>> bids_name({**ent, "space": "MNI152NLin2009cAsym", "desc": "seed"}, "mask", ".nii.gz")
'sub-01_ses-1_task-rest_space-MNI152NLin2009cAsym_desc-seed_mask.nii.gz'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tmsnet import __version__
from tmsnet.exceptions import InvalidParameterError, OutputNotWritableError
from tmsnet.io.atomic import atomic_write_json

__all__ = [
    "BIDS_VERSION",
    "DERIVATIVES_NAME",
    "ENTITY_OPTIONS",
    "ENTITY_ORDER",
    "INDEX_ENTITIES",
    "NAME_ORDER",
    "PREFIX_ENTITIES",
    "bids_label",
    "bids_name",
    "check_label",
    "derivatives_description",
    "entity_prefix",
    "parse_bids_name",
    "parse_entities",
    "subject_folder",
    "write_dataset_description",
]

#: BIDS version written in every ``dataset_description.json``.
BIDS_VERSION = "1.9.0"
#: ``Name`` of the derivatives folder of ``tmsnet target`` and ``tmsnet tep``
#: (both jobs may write into one folder, so they share one description).
DERIVATIVES_NAME = "tmsnet targeting derivatives"
#: Entity keys in the order BIDS requires them in a file name (BIDS schema
#: ``rules.entities``), with ``stat`` (BEP041) inserted before ``desc``.
ENTITY_ORDER: tuple[str, ...] = (
    "sub", "tpl", "ses", "cohort", "sample", "task", "tracksys", "acq", "nuc", "voi", "ce", "trc",
    "stain", "rec", "dir", "run", "mod", "echo", "flip", "inv", "mt", "part", "proc", "hemi",
    "space", "split", "recording", "chunk", "atlas", "seg", "scale", "res", "den", "label",
    "stat", "desc",
)
#: The order :func:`bids_name` writes entities in: :data:`ENTITY_ORDER` plus
#: ``meas`` (the connectivity measure, BEP017) after ``label``.
NAME_ORDER: tuple[str, ...] = ENTITY_ORDER[:-2] + ("meas",) + ENTITY_ORDER[-2:]
#: Entities whose value is an index (digits) rather than a label.
INDEX_ENTITIES = frozenset({"run", "echo", "flip", "inv", "split", "chunk"})
#: The entities of an input scan that name its outputs (:func:`entity_prefix`).
PREFIX_ENTITIES: tuple[str, ...] = ("sub", "ses", "task", "acq", "run")

#: The command-line option that gives each entity (named in label errors).
ENTITY_OPTIONS: dict[str, str] = {
    "sub": "--subject", "ses": "--session", "task": "--task", "acq": "--acq", "run": "--run",
    "space": "--space", "res": "--res",
}

_NON_LABEL = re.compile(r"[^A-Za-z0-9]")
_LABEL = re.compile(r"[A-Za-z0-9]+")
_ENTITY_RE_CACHE: dict[tuple[str, ...], re.Pattern[str]] = {}


def _entity_re(keys: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _ENTITY_RE_CACHE.get(keys)
    if pattern is None:
        alternatives = "|".join(re.escape(k) for k in keys)
        pattern = re.compile(rf"(?:^|_)({alternatives})-([A-Za-z0-9]+)")
        _ENTITY_RE_CACHE[keys] = pattern
    return pattern


def parse_entities(
    path: str | Path | None,
    *,
    keys: Iterable[str] = PREFIX_ENTITIES,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The ``key-value`` entities of a file name (lenient).

    Only the file name is read (not its folders). A key counts where it starts
    the name or follows ``_``; its value is the run of letters and digits after
    ``key-``. When a key occurs twice, the last occurrence wins. Parts that are
    not entities (the suffix, the extension, unknown keys) are ignored.

    Parameters
    ----------
    path : str or Path or None
        A file name or path; None gives only ``defaults``.
    keys : iterable of str
        The entity keys to look for (default :data:`PREFIX_ENTITIES`:
        ``sub``, ``ses``, ``task``, ``acq``, ``run``).
    defaults : mapping, optional
        Values for keys the name lacks (e.g. ``{"sub": "01"}``); added after
        the keys found.

    Returns
    -------
    dict of str to str
        Entities in file-name order, then the defaults not found.

    Examples
    --------
    >>> parse_entities("sub-02_task-tms_run-3_eeg.vhdr", defaults={"sub": "01", "task": "tms"})
    {'sub': '02', 'task': 'tms', 'run': '3'}
    """
    found: dict[str, str] = {}
    if path is not None:
        found = dict(_entity_re(tuple(keys)).findall(Path(path).name))
    for key, value in (defaults or {}).items():
        found.setdefault(key, value)
    return found


def parse_bids_name(name: str) -> tuple[dict[str, str], str, str]:
    """Split a BIDS file name into entities, suffix and extension (strict).

    Parameters
    ----------
    name : str
        ``sub-01_task-rest_run-1_bold.nii.gz``.

    Returns
    -------
    entities : dict
        ``{"sub": "01", "task": "rest", "run": "1"}`` in file-name order.
    suffix : str
        ``bold``.
    extension : str
        ``.nii.gz`` (everything from the first dot).

    Raises
    ------
    ValueError
        If a part before the suffix is not a ``key-value`` pair.
    """
    stem, dot, rest = name.partition(".")
    extension = dot + rest
    parts = stem.split("_")
    suffix = parts[-1]
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        key, sep, value = part.partition("-")
        if not sep or not key or not value:
            raise ValueError(f"{name!r}: {part!r} is not a key-value entity.")
        entities[key] = value
    return entities, suffix, extension


def bids_label(text: str) -> str:
    """A BIDS label (letters and digits only) from free text.

    Parameters
    ----------
    text : str
        E.g. ``"sgacc-bilateral"``.

    Returns
    -------
    str
        Camel-cased label (``"sgaccBilateral"``); ``"unknown"`` when ``text``
        holds no letter or digit.
    """
    parts = [p for p in _NON_LABEL.split(text) if p]
    if not parts:
        return "unknown"
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def check_label(value: object, name: str) -> str:
    """Check a BIDS label (``[a-zA-Z0-9]+``) before it goes into a path.

    Parameters
    ----------
    value : object
        The label (``"01"``); converted with ``str``.
    name : str
        What gives it, named in the error: the command-line option
        (``"--subject"``) or ``"<entity> label (<option>)"``.

    Returns
    -------
    str
        ``value`` as a string, unchanged.

    Raises
    ------
    InvalidParameterError
        If ``value`` is empty or holds anything but ASCII letters and digits
        (``-``, ``_``, ``/``, ``.``, spaces, ``..``); the one-line message
        names ``name`` and says what to give instead.

    Examples
    --------
    >>> check_label("01", "--subject")
    '01'
    >>> check_label("../../evil", "--subject")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tmsnet.exceptions.InvalidParameterError: --subject '../../evil' is not a BIDS label: ...
    """
    text = str(value)
    if _LABEL.fullmatch(text) is None:
        raise InvalidParameterError(
            f"{name} {text!r} is not a BIDS label: use letters and digits only (A-Z, a-z, 0-9; "
            "no '-', '_', '.', '/' or spaces), e.g. '01'."
        )
    return text


def _entity_name(key: str) -> str:
    option = ENTITY_OPTIONS.get(key)
    return f"{key} label ({option})" if option else f"{key} label"


def _checked(entities: Mapping[str, object], keys: Iterable[str]) -> dict[str, str]:
    return {k: check_label(entities[k], _entity_name(k)) for k in keys if k in entities}


def entity_prefix(
    entities: Mapping[str, str],
    *,
    keys: Iterable[str] = PREFIX_ENTITIES,
    default_sub: str = "unknown",
) -> str:
    """The file-name prefix of a result: ``sub-01_ses-1_task-rest_run-1``.

    Parameters
    ----------
    entities : mapping
        Entities of the input (other keys are ignored).
    keys : iterable of str
        Keys to write, in this order (default :data:`PREFIX_ENTITIES`).
    default_sub : str
        Subject label used when ``entities`` has no ``sub``.

    Returns
    -------
    str

    Raises
    ------
    InvalidParameterError
        If a value written is not a BIDS label (:func:`check_label`).
    """
    values = dict(entities)
    values.setdefault("sub", default_sub)
    keys = tuple(keys)
    checked = _checked(values, keys)
    return "_".join(f"{k}-{checked[k]}" for k in keys if k in checked)


def bids_name(entities: Mapping[str, str], suffix: str | None = None, extension: str = "") -> str:
    """A BIDS file name: entities in the specification's order, suffix, extension.

    Parameters
    ----------
    entities : mapping
        Entity key -> value, each key one of :data:`NAME_ORDER`; the order of
        the mapping does not matter.
    suffix : str, optional
        ``bold``, ``mask``, ``connectivity``...; None for a bare prefix.
    extension : str
        ``.nii.gz``, ``.tsv``... (with its dot), or ``""``.

    Returns
    -------
    str
        E.g. ``sub-01_task-rest_space-MNI152NLin2009cAsym_desc-seed_mask.nii.gz``.

    Raises
    ------
    InvalidParameterError
        If a key is not a known entity, or a value is empty or not a BIDS
        label (:func:`check_label`).
    """
    unknown = [k for k in entities if k not in NAME_ORDER]
    if unknown:
        raise InvalidParameterError(
            f"Unknown BIDS entities {unknown}; known entities are {', '.join(NAME_ORDER)}."
        )
    empty = [k for k, v in entities.items() if not str(v)]
    if empty:
        raise InvalidParameterError(f"BIDS entities {empty} have an empty value.")
    checked = _checked(entities, NAME_ORDER)
    parts = [f"{k}-{checked[k]}" for k in NAME_ORDER if k in checked]
    if suffix:
        parts.append(suffix)
    return "_".join(parts) + extension


def subject_folder(
    out_dir: str | Path,
    entities: Mapping[str, str],
    datatype: str | None = None,
    *,
    default_sub: str = "unknown",
) -> Path:
    """The folder of a subject's outputs: ``out_dir/sub-<label>[/ses-<label>][/<datatype>]``.

    Parameters
    ----------
    out_dir : str or Path
        Dataset root.
    entities : mapping
        Entities of the input (``sub``, ``ses``; others ignored).
    datatype : str, optional
        ``func``, ``eeg``, ``nibs``...; None for the subject (session) folder.
    default_sub : str
        Subject label used when ``entities`` has no ``sub``.

    Returns
    -------
    Path
        Not created; always inside ``out_dir``.

    Raises
    ------
    InvalidParameterError
        If the subject or session is not a BIDS label, or ``datatype`` is not
        letters and digits (:func:`check_label`).
    """
    checked = _checked({"sub": default_sub, **entities}, ("sub", "ses"))
    folder = Path(out_dir) / f"sub-{checked['sub']}"
    if "ses" in checked:
        folder = folder / f"ses-{checked['ses']}"
    return folder / check_label(datatype, "datatype") if datatype else folder


def derivatives_description(
    name: str,
    *,
    generated_by: str = "tmsnet",
    version: str | None = None,
    description: str | None = None,
    source_dirs: Mapping[str, str | Path] | None = None,
    dataset_type: str = "derivative",
    authors: list[str] | None = None,
) -> dict[str, Any]:
    """The content of a ``dataset_description.json``.

    Parameters
    ----------
    name : str
        ``Name`` of the dataset (REQUIRED by BIDS).
    generated_by : str
        ``GeneratedBy[0].Name``: ``"tmsnet"`` or ``"tmsnet.simulate"``.
    version : str, optional
        ``GeneratedBy[0].Version``; default the installed tmsnet version.
    description : str, optional
        ``GeneratedBy[0].Description`` (omitted when None).
    source_dirs : mapping, optional
        Source datasets by role (``raw``, ``fmriprep``); recorded as
        ``SourceDatasets`` with absolute ``file://`` URLs (omitted when empty).
    dataset_type : {"derivative", "raw"}
        ``DatasetType``.
    authors : list of str, optional
        ``Authors`` (omitted when None).

    Returns
    -------
    dict
        JSON-able description, keys in BIDS order (``Name``, ``BIDSVersion``,
        ``DatasetType``, ``Authors``, ``GeneratedBy``, ``SourceDatasets``).

    Raises
    ------
    InvalidParameterError
        If ``dataset_type`` is not ``"derivative"`` or ``"raw"``.
    """
    if dataset_type not in ("derivative", "raw"):
        raise InvalidParameterError(
            f"dataset_type must be 'derivative' or 'raw', got {dataset_type!r}."
        )
    generator: dict[str, Any] = {"Name": generated_by,
                                 "Version": __version__ if version is None else version}
    if description is not None:
        generator["Description"] = description
    out: dict[str, Any] = {"Name": name, "BIDSVersion": BIDS_VERSION, "DatasetType": dataset_type}
    if authors is not None:
        out["Authors"] = list(authors)
    out["GeneratedBy"] = [generator]
    if source_dirs:
        out["SourceDatasets"] = [
            {"URL": Path(path).absolute().as_uri(), "Description": role}
            for role, path in source_dirs.items()
        ]
    return out


def _generator_names(path: Path) -> list[Any]:
    try:
        existing = json.loads(path.read_text(encoding="utf-8"))
        return [g.get("Name") for g in existing.get("GeneratedBy", [])]
    except (ValueError, AttributeError):
        return []


def write_dataset_description(
    out_dir: str | Path,
    description: Mapping[str, Any],
    *,
    overwrite: bool = False,
    refuse_foreign: bool = False,
) -> Path:
    """Write ``out_dir/dataset_description.json`` atomically.

    Parameters
    ----------
    out_dir : str or Path
        Dataset root (must exist).
    description : mapping
        Content, e.g. from :func:`derivatives_description`.
    overwrite : bool
        Replace an existing file (default: keep it, as when several jobs write
        into one folder).
    refuse_foreign : bool
        Raise if an existing file was generated by another program (its
        ``GeneratedBy`` names do not include ``tmsnet``).

    Returns
    -------
    Path
        The path of ``dataset_description.json`` (written or kept).

    Raises
    ------
    OutputNotWritableError
        If ``refuse_foreign`` and the folder holds another program's dataset.
    """
    path = Path(out_dir) / "dataset_description.json"
    if path.is_file() and refuse_foreign:
        names = _generator_names(path)
        if names and "tmsnet" not in names:
            raise OutputNotWritableError(
                f"{Path(out_dir)} holds another dataset (GeneratedBy {names}); tmsnet will not "
                "write into it. Choose an empty folder or a previous tmsnet output folder."
            )
    if overwrite or not path.exists():
        atomic_write_json(path, dict(description))
    return path


def write_tmsnet_description(out_dir: str | Path) -> Path:
    """``dataset_description.json`` of a tmsnet derivatives folder (kept when it exists)."""
    return write_dataset_description(out_dir, derivatives_description(DERIVATIVES_NAME))
