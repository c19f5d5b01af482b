"""The BIDS-Derivatives dataset a BIDS-App run writes, and a check of its rules.

:func:`derivatives_description` builds ``dataset_description.json``
(``DatasetType: derivative``, ``GeneratedBy``, ``SourceDatasets``);
:func:`validate_derivatives` checks a folder against the parts of the
BIDS-Derivatives specification (BIDS 1.9-1.11, "Common data types and
metadata" and "Derivatives: file naming") that apply to tmsnet's outputs:

* ``dataset_description.json``: ``Name`` and ``BIDSVersion`` (REQUIRED),
  ``DatasetType == "derivative"``, ``GeneratedBy`` (REQUIRED for derivatives): a
  non-empty array of objects, each with a string ``Name``;
  ``SourceDatasets``, if present, an array of objects.
* Below ``sub-<label>/[ses-<label>/]``: files named
  ``sub-<label>[_<key>-<value>]..._<suffix><extension>`` with known entity keys
  in the specification's order, labels of ``[0-9a-zA-Z+]+`` (indices of
  ``[0-9]+`` for ``run``), ``sub``/``ses`` entities equal to their folders,
  and datatype folders from the specification (plus ``nibs``, BEP037).
* tmsnet's own rule: every data file has a JSON sidecar with the same stem,
  and no hidden staging folder is left behind (a run that was killed).

The entity order (:data:`tmsnet.io.bids.ENTITY_ORDER`, re-exported here) is the
specification's (``rules.entities`` of the BIDS schema); the test suite
compares it with ``bidsschematools`` when installed.
``stat`` (a statistic label, BEP041 statistical-model derivatives) is the one
entity tmsnet uses beyond the released specification; it is accepted just
before ``desc``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tmsnet.exceptions import DerivativesValidationError
from tmsnet.io import bids
from tmsnet.io.bids import ENTITY_ORDER, INDEX_ENTITIES
from tmsnet.io.lock import LOCK_NAME

__all__ = [
    "ENTITY_ORDER",
    "check_derivatives",
    "derivatives_description",
    "validate_derivatives",
]

#: Datatype folders of the specification, plus ``nibs`` (BEP037, NIBS-BIDS).
DATATYPES = frozenset({"anat", "beh", "dwi", "eeg", "emg", "fmap", "func", "ieeg", "meg", "micr",
                       "motion", "mrs", "perf", "pet", "nirs", "nibs"})
#: Extensions tmsnet writes (all in the schema's ``objects.extensions``): the surface job's
#: maps are GIFTI ``.shape.gii`` and, for CIFTI input, ``.dscalar.nii``.
EXTENSIONS = frozenset({".json", ".tsv", ".nii.gz", ".nii", ".html", ".png", ".svg", ".txt",
                        ".shape.gii", ".dscalar.nii"})
#: Top-level names allowed besides ``sub-*`` (specification + tmsnet's group outputs).
TOP_LEVEL = frozenset({"dataset_description.json", "README", "README.md", "CHANGES", "LICENSE",
                       "participants.tsv", "participants.json", "logs", "figures", "sourcedata",
                       "code"})
_LABEL = re.compile(r"^[0-9a-zA-Z+]+$")
_INDEX = re.compile(r"^[0-9]+$")
_SUFFIX = re.compile(r"^[a-zA-Z0-9]+$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+")
_GROUP_FILE = re.compile(r"^[a-z0-9]+(?:_[a-z]+-[0-9a-zA-Z+]+)*(?:_[a-z0-9]+)?\.(?:tsv|json|html|png)$")


def derivatives_description(
    *, source_dirs: dict[str, Path] | None = None, name: str = "tmsnet"
) -> dict[str, Any]:
    """``dataset_description.json`` of a tmsnet BIDS-App output folder.

    Parameters
    ----------
    source_dirs : dict, optional
        Source datasets by role (``raw``, ``fmriprep``); recorded as
        ``SourceDatasets`` with ``file://`` URLs.
    name : str
        Dataset name.

    Returns
    -------
    dict
        JSON-able description.

    See Also
    --------
    tmsnet.io.bids.derivatives_description : the general builder this fills in.
    """
    return bids.derivatives_description(
        f"{name}: connectivity-guided TMS targets",
        description="Personalized sgACC-anticorrelated DLPFC targets from fMRIPrep "
                    "resting-state outputs (tmsnet BIDS-App).",
        source_dirs=source_dirs,
    )


def _check_description(root: Path, problems: list[str]) -> None:
    path = root / "dataset_description.json"
    if not path.is_file():
        problems.append("dataset_description.json is missing (REQUIRED at the dataset root).")
        return
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        problems.append(f"dataset_description.json is not valid JSON ({exc}).")
        return
    if not isinstance(desc, dict):
        problems.append("dataset_description.json must hold a JSON object.")
        return
    for key in ("Name", "BIDSVersion"):
        if not isinstance(desc.get(key), str) or not desc[key].strip():
            problems.append(f"dataset_description.json: {key} is REQUIRED (a non-empty string).")
    if isinstance(desc.get("BIDSVersion"), str) and not _VERSION.match(desc["BIDSVersion"]):
        problems.append(f"dataset_description.json: BIDSVersion {desc['BIDSVersion']!r} is not "
                        "a version number (e.g. 1.9.0).")
    if desc.get("DatasetType") != "derivative":
        problems.append("dataset_description.json: DatasetType must be 'derivative' for a "
                        f"derivatives dataset (got {desc.get('DatasetType')!r}).")
    generated = desc.get("GeneratedBy")
    if not isinstance(generated, list) or not generated:
        problems.append("dataset_description.json: GeneratedBy is REQUIRED for derivatives (a "
                        "non-empty array of objects).")
    else:
        for i, entry in enumerate(generated):
            if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str):
                problems.append(f"dataset_description.json: GeneratedBy[{i}] must be an object "
                                "with a string Name.")
            elif "Version" in entry and not isinstance(entry["Version"], str):
                problems.append(f"dataset_description.json: GeneratedBy[{i}].Version must be a "
                                "string.")
    sources = desc.get("SourceDatasets")
    if sources is not None and (not isinstance(sources, list)
                                or not all(isinstance(s, dict) for s in sources)):
        problems.append("dataset_description.json: SourceDatasets must be an array of objects.")


def _check_name(rel: Path, folders: dict[str, str], problems: list[str]) -> None:
    name = rel.name
    stem, dot, rest = name.partition(".")
    extension = dot + rest
    if extension not in EXTENSIONS:
        problems.append(f"{rel}: extension {extension or '(none)'!r} is not one tmsnet writes.")
    parts = stem.split("_")
    suffix = parts[-1]
    if len(parts) < 2 or not _SUFFIX.match(suffix):
        problems.append(f"{rel}: name must be <entities>_<suffix><extension>.")
        return
    last = -1
    seen: dict[str, str] = {}
    for part in parts[:-1]:
        key, sep, value = part.partition("-")
        if not sep:
            problems.append(f"{rel}: {part!r} is not a key-value entity.")
            continue
        if key not in ENTITY_ORDER:
            problems.append(f"{rel}: unknown entity {key!r}.")
            continue
        position = ENTITY_ORDER.index(key)
        if position <= last:
            problems.append(f"{rel}: entity {key!r} is out of order (BIDS order: "
                            f"{', '.join(k for k in ENTITY_ORDER if k in seen or k == key)}).")
        last = max(last, position)
        pattern = _INDEX if key in INDEX_ENTITIES else _LABEL
        if not pattern.match(value):
            kind = "index" if key in INDEX_ENTITIES else "label"
            problems.append(f"{rel}: {key}-{value} is not a valid {kind}.")
        seen[key] = value
    if parts[0].partition("-")[0] != "sub":
        problems.append(f"{rel}: file names below sub-* must start with sub-<label>.")
    for key, value in folders.items():
        if seen.get(key) != value:
            problems.append(f"{rel}: {key}-{seen.get(key)} does not match its folder {key}-{value}.")


def validate_derivatives(root: str | Path) -> list[str]:
    """Problems of a derivatives folder (empty list: valid).

    Parameters
    ----------
    root : path
        The dataset root (the BIDS-App ``OUTPUT_DIR``).

    Returns
    -------
    list of str
        One plain-language problem per line; empty when the folder passes.
    """
    root = Path(root)
    problems: list[str] = []
    if not root.is_dir():
        return [f"{root} is not a folder."]
    _check_description(root, problems)
    for entry in sorted(root.iterdir()):
        if entry.name == LOCK_NAME:
            if entry.stat().st_size:
                problems.append(f"{entry.name}: a run holds the output folder or was killed; "
                                "re-run the participant level to finish it.")
            continue
        if entry.name.startswith("."):
            if entry.name.startswith(".tmsnet"):
                problems.append(f"{entry.name}: staging folder left behind (an interrupted run); "
                                "re-run the participant level to finish it.")
            continue
        if entry.name.startswith("sub-"):
            if not entry.is_dir() or not _LABEL.match(entry.name[4:]):
                problems.append(f"{entry.name}: sub-<label> must be a folder with a valid label.")
                continue
            _check_subject(root, entry, problems)
        elif entry.is_file() and not (entry.name in TOP_LEVEL or _GROUP_FILE.match(entry.name)):
            problems.append(f"{entry.name}: unexpected file at the dataset root.")
    return problems


def _check_subject(root: Path, sub_dir: Path, problems: list[str]) -> None:
    for path in sorted(sub_dir.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            problems.append(f"{rel}: hidden file inside a subject folder.")
            continue
        if path.is_dir():
            continue
        parts = rel.parts[1:-1]
        folders = {"sub": sub_dir.name[4:]}
        if parts and parts[0].startswith("ses-"):
            folders["ses"] = parts[0][4:]
            parts = parts[1:]
        if len(parts) > 1 or (parts and parts[0] not in DATATYPES):
            problems.append(f"{rel}: expected sub-<label>/[ses-<label>/][<datatype>/]<file>, "
                            f"with a datatype among {', '.join(sorted(DATATYPES))}.")
        _check_name(rel, folders, problems)
        if not path.name.endswith(".json"):
            from tmsnet.io.provenance import sidecar_path_for

            if not sidecar_path_for(path).is_file():
                problems.append(f"{rel}: no JSON sidecar ({sidecar_path_for(path).name}).")


def check_derivatives(root: str | Path) -> None:
    """Raise :class:`DerivativesValidationError` listing every problem of ``root``."""
    problems = validate_derivatives(root)
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more"
                                               if len(problems) > 20 else "")
        raise DerivativesValidationError(
            f"{root} is not a valid BIDS-Derivatives dataset:\n  {shown}"
        )
