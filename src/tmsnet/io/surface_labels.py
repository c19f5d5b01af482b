"""Read surface label files (GIFTI ``.label.gii`` pairs, CIFTI-2 ``.dlabel.nii``) and pick a label.

For regions given as files on the surface (issue 15): the DLPFC search region or the seed as
the vertices of one label of a parcellation, or of a binary label file drawn by the user.

Formats
-------
* **GIFTI label** (``*_hemi-L_*.label.gii``, ``lh.*.label.gii``): one file per hemisphere,
  one integer data array of one value per mesh vertex and a label table (value -> name). The
  LEFT file is given and the right one is found beside it by the rules of
  :mod:`tmsnet.io.surface` (``hemi-L`` -> ``hemi-R``, ``lh.`` -> ``rh.``, ``.lh.`` ->
  ``.rh.``). When a file's ``AnatomicalStructurePrimary`` names a hemisphere, it must be the
  one its name says.
* **CIFTI-2 dense label** (``*.dlabel.nii``): one label map over grayordinates (a
  ``LabelAxis`` of length 1 and a ``BrainModelAxis``). The ``CORTEX_LEFT`` and
  ``CORTEX_RIGHT`` models give the two hemispheres; vertices a model does not list (the
  medial wall) have no label (-1 here); volume models are counted, not read.

Selecting a label
-----------------
:func:`select_label` takes a label name (exact, else the one name that matches without regard
to case), an integer value, a text holding an integer value (``"3"``, as the command line
gives it) or None. None picks the only label in use other than value 0 (a binary region file)
and refuses a file with several, listing them. A name may stand for different values in the
two hemispheres (HCP's ``L_46_ROI`` and ``R_46_ROI`` are different names; FreeSurfer's
``rostralmiddlefrontal`` has one value in both tables): the selection is made per hemisphere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel import cifti2

from tmsnet.exceptions import InvalidImageError, InvalidParameterError, SpaceError
from tmsnet.io.fmriprep import _existing_file
from tmsnet.io.surface import (
    HEMISPHERE_LABELS,
    _cifti_axes,
    _load,
    cifti_cortex_models,
    right_hemisphere_file,
)

__all__ = ["LABEL_SUFFIXES", "SurfaceLabels", "check_label_mesh", "is_surface_label_file",
           "load_surface_labels", "select_label"]

#: File endings of the surface label files tmsnet reads.
LABEL_SUFFIXES: tuple[str, ...] = (".label.gii", ".dlabel.nii")

_GIFTI_STRUCTURE = {"L": "cortexleft", "R": "cortexright"}
_HEMI_NAMES = {"L": "left", "R": "right"}
_MESH_INTENTS = {nib.nifti1.intent_codes.code[name]
                 for name in ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE")}
#: Value that no label takes: vertices a CIFTI cortex model does not list.
NO_LABEL = -1
_LISTED = 12


def is_surface_label_file(path: str | Path | None) -> bool:
    """Whether ``path`` names a surface label file (by its ending, any case)."""
    return path is not None and str(path).lower().endswith(LABEL_SUFFIXES)


@dataclass(frozen=True, eq=False)
class SurfaceLabels:
    """The label values of both hemispheres' mesh vertices, and the label tables.

    Attributes
    ----------
    keys : dict
        ``{"L": ndarray, "R": ndarray}``, int64, one value per mesh vertex; -1 where the file
        gives none (vertices a CIFTI cortex model leaves out).
    tables : dict
        ``{"L": {value: name}, "R": {...}}``: the label table of each hemisphere (the same
        table for both in a CIFTI file).
    inputs : dict
        Paths read: ``"left"`` and ``"right"`` (GIFTI) or ``"cifti"``.
    source_format : str
        ``"gifti"`` or ``"cifti"``.
    n_volume : int
        Grayordinates of a CIFTI file outside the cortex models (not read); 0 for GIFTI.
    """

    keys: dict[str, np.ndarray]
    tables: dict[str, dict[int, str]]
    inputs: dict[str, Path]
    source_format: str
    n_volume: int = 0

    @property
    def n_mesh_vertices(self) -> dict[str, int]:
        """Mesh vertices per hemisphere (``{"L": int, "R": int}``)."""
        return {hemi: int(self.keys[hemi].size) for hemi in HEMISPHERE_LABELS}


def _integer_values(values: np.ndarray, path: Path) -> np.ndarray:
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.integer):
        if not (np.all(np.isfinite(values)) and np.array_equal(values, np.round(values))):
            raise InvalidImageError(
                f"{path.name} holds non-integer values: a label file gives one integer label "
                "value per vertex. For a map of numbers threshold it into a label file first.")
    return values.astype(np.int64)


def _gifti_hemisphere(path: Path, hemi: str) -> tuple[np.ndarray, dict[int, str]]:
    img = _load(path, "GIFTI label")
    if not isinstance(img, nib.gifti.GiftiImage):
        raise InvalidImageError(f"{path.name} is not a GIFTI file although it is named .gii.")
    arrays = list(img.darrays)
    if any(a.intent in _MESH_INTENTS for a in arrays):
        raise InvalidImageError(f"{path.name} is a surface mesh, not a label file.")
    if len(arrays) != 1:
        raise InvalidImageError(
            f"{path.name} holds {len(arrays)} data arrays; a label file for tmsnet holds one "
            "(one label value per vertex). Split the file into one map per file.")
    meta = {**dict(img.meta), **dict(arrays[0].meta)}
    declared = str(meta.get("AnatomicalStructurePrimary", "")).lower()
    if declared in _GIFTI_STRUCTURE.values() and declared != _GIFTI_STRUCTURE[hemi]:
        raise SpaceError(
            f"{path.name} should hold the {_HEMI_NAMES[hemi]} hemisphere (by its name) but says "
            f"AnatomicalStructurePrimary={meta['AnatomicalStructurePrimary']}. Give the left "
            "hemisphere's file (hemi-L, lh.) with the right one beside it, named to match.")
    values = _integer_values(arrays[0].data.reshape(-1), path)
    table = {int(k): str(v) for k, v in img.labeltable.get_labels_as_dict().items()}
    return values, table


def _cifti_labels(path: Path) -> SurfaceLabels:
    img, maps, models = _cifti_axes(path, cifti2.LabelAxis, "CIFTI-2 dense label file")
    if len(maps) != 1:
        raise InvalidImageError(
            f"{path.name} holds {len(maps)} label maps ({', '.join(map(str, maps.name))}); tmsnet "
            "reads files with one map: extract one, e.g. wb_command -cifti-merge out.dlabel.nii "
            "-cifti in.dlabel.nii -column N.")
    table = {int(k): str(v[0]) for k, v in maps.label[0].items()}
    data = _integer_values(np.asanyarray(img.dataobj).reshape(len(models)), path)
    keys = {}
    n_cortex = 0
    for hemi, (columns, model, n_mesh) in cifti_cortex_models(models, path.name).items():
        keys[hemi] = np.full(n_mesh, NO_LABEL, dtype=np.int64)
        keys[hemi][np.asarray(model.vertex)] = data[columns]
        n_cortex += len(model)
    return SurfaceLabels(keys=keys, tables={"L": table, "R": dict(table)}, inputs={"cifti": path},
                         source_format="cifti", n_volume=len(models) - n_cortex)


def load_surface_labels(path: str | Path) -> SurfaceLabels:
    """Read a surface label file: a GIFTI pair (the left file given) or a CIFTI dlabel.

    Parameters
    ----------
    path : str or Path
        The LEFT hemisphere's ``.label.gii`` (the right one is found beside it), or a
        ``.dlabel.nii`` holding both hemispheres.

    Returns
    -------
    SurfaceLabels

    Raises
    ------
    InputFileNotFoundError
        The file or its right-hemisphere partner does not exist.
    InvalidParameterError
        The file is not a label file, is the right hemisphere's, or its name does not say
        the hemisphere.
    InvalidImageError
        Unreadable, more than one map, non-integer values, no cortex model.
    SpaceError
        A GIFTI file's metadata names the other hemisphere.
    """
    left = _existing_file(path, "surface label")
    name = left.name.lower()
    if name.endswith(".dlabel.nii"):
        return _cifti_labels(left)
    if not name.endswith(".label.gii"):
        raise InvalidParameterError(
            f"{left.name} is not a surface label file: give a GIFTI label file (.label.gii, the "
            "left hemisphere, with the right one beside it) or a CIFTI dense label file "
            "(.dlabel.nii).")
    right = right_hemisphere_file(left)
    parts = {"L": _gifti_hemisphere(left, "L"), "R": _gifti_hemisphere(right, "R")}
    return SurfaceLabels(keys={h: parts[h][0] for h in parts},
                         tables={h: parts[h][1] for h in parts},
                         inputs={"left": left, "right": right}, source_format="gifti")


def check_label_mesh(labels: SurfaceLabels, n_mesh_vertices: dict[str, int], space: str) -> None:
    """Refuse a label file whose hemispheres do not have the BOLD's mesh vertex counts.

    Raises
    ------
    SpaceError
        When a hemisphere's vertex count differs from ``n_mesh_vertices``.
    """
    for hemi in HEMISPHERE_LABELS:
        have, want = labels.n_mesh_vertices[hemi], int(n_mesh_vertices[hemi])
        if have != want:
            path = next(iter(labels.inputs.values()))
            raise SpaceError(
                f"The {_HEMI_NAMES[hemi]} hemisphere of the label file {path.name} has {have} "
                f"vertices but the BOLD's {space} mesh has {want}: the labels must be on the "
                "BOLD's surface space (resample them, e.g. with mri_surf2surf or wb_command "
                "-label-resample).")


def _names(labels: SurfaceLabels) -> list[str]:
    return sorted({name for table in labels.tables.values() for name in table.values()})


def _in_use(labels: SurfaceLabels) -> list[int]:
    return sorted({int(v) for keys in labels.keys.values() for v in np.unique(keys)} - {0, NO_LABEL})


def _listing(labels: SurfaceLabels) -> str:
    names = _names(labels)
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    values = _in_use(labels)
    value_text = ", ".join(map(str, values[:_LISTED])) + (" ..." if len(values) > _LISTED else "")
    return f"names {shown or '(none)'}{more}; values in use {value_text or '(none)'}"


def _keys_for_name(labels: SurfaceLabels, name: str) -> dict[str, set[int]] | None:
    names = _names(labels)
    matches = [n for n in names if n == name] or [n for n in names if n.lower() == name.lower()]
    if len(matches) > 1:
        raise InvalidParameterError(
            f"Label {name!r} matches {matches} when case is ignored; give the name exactly.")
    if not matches:
        return None
    return {h: {k for k, v in labels.tables[h].items() if v == matches[0]}
            for h in HEMISPHERE_LABELS}


def _resolve(labels: SurfaceLabels, label: str | int | None) -> dict[str, set[int]]:
    """The label values to select in each hemisphere."""
    if label is None:
        in_use = _in_use(labels)
        if len(in_use) != 1:
            raise InvalidParameterError(
                f"The label file holds {len(in_use)} labels other than 0; say which one to use "
                f"(--seed-label / --search-label NAME or VALUE): {_listing(labels)}.")
        return {h: {in_use[0]} for h in HEMISPHERE_LABELS}
    if isinstance(label, str):
        by_name = _keys_for_name(labels, label.strip())
        if by_name is not None:
            return by_name
        try:
            label = int(label.strip())
        except ValueError:
            raise InvalidParameterError(
                f"The label file has no label named {label!r}: {_listing(labels)}.") from None
    if isinstance(label, bool) or not isinstance(label, int | np.integer):
        raise InvalidParameterError(f"A label is a name or an integer value, got {label!r}.")
    value = int(label)
    known = {k for table in labels.tables.values() for k in table} | set(_in_use(labels))
    if value not in known or value == NO_LABEL:
        raise InvalidParameterError(
            f"The label file has no label value {value}: {_listing(labels)}.")
    return {h: {value} for h in HEMISPHERE_LABELS}


def select_label(labels: SurfaceLabels,
                 label: str | int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The mesh vertices of one label, per hemisphere.

    Parameters
    ----------
    labels : SurfaceLabels
        From :func:`load_surface_labels`.
    label : str, int or None
        A label name, a value, a text holding a value, or None for the only label in use
        other than 0 (module docstring, "Selecting a label").

    Returns
    -------
    masks : dict
        ``{"L": ndarray of bool, "R": ...}``, one entry per mesh vertex.
    record : dict
        ``type`` (``"label"``), ``format``, ``paths``, ``label`` (as asked), ``names`` and
        ``values`` (what was selected), ``n_mesh_vertices`` per hemisphere (the label's
        vertices on the mesh, medial wall included).

    Raises
    ------
    InvalidParameterError
        Unknown name or value, or None for a file with several labels.
    """
    values = _resolve(labels, label)
    masks = {h: np.isin(labels.keys[h], sorted(values[h])) for h in HEMISPHERE_LABELS}
    names = sorted({labels.tables[h].get(v, f"value {v}") for h in values for v in values[h]})
    record = {"type": "label", "format": labels.source_format,
              "paths": {role: str(p) for role, p in labels.inputs.items()},
              "label": label if label is None or isinstance(label, str) else int(label),
              "names": names, "values": sorted({v for h in values for v in values[h]}),
              "n_mesh_vertices": {h: int(masks[h].sum()) for h in HEMISPHERE_LABELS}}
    return masks, record
