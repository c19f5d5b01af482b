"""File names of the network outputs (BIDS rules from :mod:`tmsnet.io.bids`)."""

from __future__ import annotations

import re
from pathlib import Path

from tmsnet.io.bids import bids_label, bids_name, entity_prefix, parse_entities, subject_folder

__all__ = [
    "connectome_folder",
    "connectome_stem",
    "group_stem",
    "input_entities",
    "input_prefix",
    "propagation_stem",
]

#: Entities of an input that name its connectome outputs, in file-name order.
_KEYS = ("sub", "ses", "task", "run")


def input_entities(path: str | Path, fallback_sub: str) -> dict[str, str]:
    """``sub``/``ses``/``task``/``run`` of an input file name (``sub`` = ``fallback_sub`` when absent)."""
    return parse_entities(path, keys=_KEYS, defaults={"sub": fallback_sub})


def input_prefix(entities: dict[str, str]) -> str:
    """``sub-01_ses-1_task-rest_run-1`` (the entities present, BIDS order)."""
    return entity_prefix(entities, keys=_KEYS)


def connectome_folder(out_dir: str | Path, entities: dict[str, str]) -> Path:
    """``OUT/sub-<label>[/ses-<label>]/func`` (not created)."""
    return subject_folder(out_dir, entities, "func")


def connectome_stem(entities: dict[str, str], atlas_name: str, kind: str) -> str:
    """``<prefix>_atlas-<name>_meas-<kind without spaces>``."""
    named = {k: entities[k] for k in _KEYS if k in entities}
    return bids_name({**named, "atlas": bids_label(atlas_name), "meas": kind.replace(" ", "")})


def group_stem(paired: bool) -> str:
    """``group_desc-prepost`` or ``group_desc-groups`` (the suffix follows)."""
    return f"group_desc-{'prepost' if paired else 'groups'}"


def propagation_stem(prefix: str, region_name: str) -> str:
    """``<prefix>_desc-<region name, letters and digits only>``."""
    return f"{prefix}_desc-{re.sub('[^A-Za-z0-9]', '', region_name)}"
