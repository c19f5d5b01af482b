"""Load surface BOLD (both hemispheres) and headerless confound matrices.

:func:`load_surface_bold` reads a preprocessed surface BOLD run and returns a
:class:`SurfaceBold`: one ``(n_frames, n_vertices)`` float32 matrix holding the
usable vertices of the left hemisphere, then of the right one, with the
hemisphere and mesh vertex index of every column. :func:`load_confounds_matrix`
reads a plain numeric confounds matrix without a header row.

Formats
-------
* **GIFTI** (fMRIPrep ``*_hemi-L_space-fsaverage5_bold.func.gii``; also
  ``fsaverage6``, ``fsaverage`` and ``fsLR``): one data array per frame (a
  single 2D array ``(n_vertices, n_frames)`` is read as well). Surface meshes
  (``*.surf.gii``: point set and triangle arrays) are refused.
* **FreeSurfer MGH/MGZ** surface time series (``lh.<name>.mgz``, or names
  holding ``.lh.`` such as LEMON's ``...fsa5.lh.mgz``): image shape
  ``(n_vertices, 1, 1, n_frames)``.
* **CIFTI-2 dense time series** (fMRIPrep ``--cifti-output``:
  ``*_space-fsLR_den-91k_bold.dtseries.nii``), read through nibabel's CIFTI-2
  axes. The ``CORTEX_LEFT`` and ``CORTEX_RIGHT`` brain models become the two
  hemispheres, with the vertex indices they list into the 32k fsLR mesh (the
  medial wall is already left out of those lists). Every other grayordinate
  (subcortical and cerebellar voxels) is kept out of ``data``: only its count
  is recorded, in ``n_subcortical``; :func:`load_cifti_volume_part` reads
  where those voxels are (and, on request, their time series).

Finding the right hemisphere
----------------------------
For GIFTI and MGH, ``path`` is the LEFT hemisphere file and the right one must
lie beside it, named by the first rule that applies to the file name: the
BIDS entity ``hemi-L`` becomes ``hemi-R``; a leading ``lh.`` becomes ``rh.``;
the last ``.lh.`` becomes ``.rh.``. A missing partner is refused
(:class:`~tmsnet.exceptions.InputFileNotFoundError` naming the file
expected). A CIFTI file holds both hemispheres.

Space
-----
From the ``space-`` entity of the file name or from the ``space`` argument;
when both are given they must agree, and when neither is, the load is
refused (pass ``--space``). The number of mesh vertices per hemisphere is
then checked against the space (:data:`SURFACE_SPACES`; for CIFTI the mesh
size that each cortex model declares, the model itself listing fewer
vertices). The space is never guessed from the vertex count.

Repetition time
---------------
The ``t_r`` argument wins (source ``"argument"``; the file's own value, if
any, is recorded in ``t_r_file``). Otherwise the file's value (source
``"file"``): GIFTI ``TimeStep`` metadata of the first data array, in
milliseconds (what FreeSurfer's ``mri_vol2surf``/``mris_convert`` write, as
used by fMRIPrep; nibabel writes none), the MGH header's ``tr`` field in
milliseconds, or the CIFTI series-axis step in seconds; a value of 0 means
unknown. Otherwise ``RepetitionTime`` (s) of the JSON sidecar beside the LEFT
file (``<name without .func.gii / .mgz / .mgh / .dtseries.nii>.json``; source
``"sidecar"``). File and sidecar must agree within 1 %, and both hemisphere
files too; no TR anywhere, or a TR outside 0.05-30 s, is refused -- pass
``--t-r``. A corrupt sidecar is refused, never ignored.

Excluded vertices
-----------------
A vertex whose time series holds a NaN/inf, or never changes, is dropped and
counted per hemisphere in ``excluded``. The medial wall is taken to be the
constant vertices: fMRIPrep writes 0 there on fsaverage meshes (about 888 of
the 10242 fsaverage5 vertices per hemisphere).

The scan length is not checked here; callers apply
:func:`tmsnet.io.fmriprep.check_scan_length`.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel import cifti2

from tmsnet.exceptions import (
    ConfoundsError,
    EmptyRegionError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    SpaceError,
)
from tmsnet.io.fmriprep import _compact_columns, _existing_file, _read_sidecar
from tmsnet.spaces import space_from_filename

__all__ = ["HEMISPHERE_LABELS", "SURFACE_SPACES", "SURFACE_SUFFIXES", "CiftiVolumePart",
           "SurfaceBold", "cifti_cortex_models", "is_surface_bold", "load_cifti_volume_part",
           "load_confounds_matrix", "load_surface_bold", "right_hemisphere_file"]

#: Mesh vertices per hemisphere of each surface space tmsnet reads (fsLR: the 32k mesh of
#: fMRIPrep's ``den-91k`` CIFTI and ``den-32k`` GIFTI outputs).
SURFACE_SPACES: dict[str, int] = {
    "fsaverage5": 10242,
    "fsaverage6": 40962,
    "fsaverage": 163842,
    "fsLR": 32492,
}
#: Hemisphere labels, in the order of the columns of :attr:`SurfaceBold.data`.
HEMISPHERE_LABELS: tuple[str, str] = ("L", "R")

_HEMI_NAMES = {"L": "left", "R": "right"}
_CIFTI_CORTEX = {"L": "CIFTI_STRUCTURE_CORTEX_LEFT", "R": "CIFTI_STRUCTURE_CORTEX_RIGHT"}
_GIFTI_STRUCTURE = {"L": "CortexLeft", "R": "CortexRight"}
_MESH_INTENTS = {nib.nifti1.intent_codes.code[name]
                 for name in ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE")}
_SIDECAR_SUFFIX = re.compile(r"(\.func)?\.gii$|\.mgz$|\.mgh$|\.dtseries\.nii$")
_HEMI_L_ENTITY = re.compile(r"(^|_)hemi-L(?=[_.])")
_RIGHT_NAME = re.compile(r"(^|_)hemi-R(?=[_.])|^rh\.|\.rh\.")
_T_R_RANGE_S = (0.05, 30.0)
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError)
_SPACE_CHOICES = "|".join(SURFACE_SPACES)


@dataclass(frozen=True, eq=False)
class SurfaceBold:
    """A validated surface BOLD run: the usable vertices of both hemispheres.

    Attributes
    ----------
    data : ndarray of float32, shape (n_frames, n_vertices)
        Time series of the usable vertices (arbitrary BOLD units, as in the
        file): the left hemisphere's columns first, then the right's, each in
        the order of the file (ascending vertex index for GIFTI and MGH).
    hemisphere : ndarray of str, shape (n_vertices,)
        ``"L"`` or ``"R"`` for every column of ``data``.
    vertex : ndarray of int64, shape (n_vertices,)
        Index of every column's vertex on its hemisphere's mesh
        (``0 <= vertex < n_mesh_vertices[hemisphere]``).
    n_mesh_vertices : dict
        ``{"L": int, "R": int}``: vertices of each hemisphere's mesh (10242 for
        fsaverage5, 32492 for fsLR-32k), usable or not.
    excluded : dict
        ``{"L": {"constant": k, "nonfinite": m}, "R": {...}}``: vertices of the
        file dropped because their time series never changed (the medial wall,
        where fMRIPrep writes 0) or held a NaN/inf value. For CIFTI, counted
        among the vertices the cortex models list.
    space : str
        Surface space, one of :data:`SURFACE_SPACES`.
    t_r : float
        Repetition time (s).
    t_r_source : str
        Where ``t_r`` came from: ``"argument"``, ``"file"`` or ``"sidecar"``.
    t_r_file : float or None
        The repetition time (s) the file itself states (GIFTI ``TimeStep``, MGH
        ``tr``, CIFTI series step), also when ``t_r`` came from the argument;
        None when the file states none.
    n_frames : int
        Number of frames (time points).
    inputs : dict
        Paths read, by role: ``"left"`` and ``"right"`` (GIFTI, MGH) or
        ``"cifti"``, and ``"sidecar"`` when the JSON sidecar was read.
    source_format : str
        ``"gifti"``, ``"mgh"`` or ``"cifti"``.
    n_subcortical : int
        CIFTI grayordinates outside the two cortex models (subcortical and
        cerebellar voxels), left out of ``data``; 0 for GIFTI and MGH.
    """

    data: np.ndarray
    hemisphere: np.ndarray
    vertex: np.ndarray
    n_mesh_vertices: dict[str, int]
    excluded: dict[str, dict[str, int]]
    space: str
    t_r: float
    t_r_source: str
    t_r_file: float | None
    n_frames: int
    inputs: dict[str, Path]
    source_format: str
    n_subcortical: int = 0

    @property
    def n_vertices(self) -> int:
        """Number of usable vertices (columns of ``data``), both hemispheres."""
        return int(self.data.shape[1])

    @property
    def n_excluded(self) -> dict[str, int]:
        """Vertices dropped per hemisphere, all reasons together."""
        return {hemi: sum(counts.values()) for hemi, counts in self.excluded.items()}

    def columns(self, hemisphere: str) -> np.ndarray:
        """Indices of the columns of ``data`` on one hemisphere (``"L"`` or ``"R"``)."""
        if hemisphere not in HEMISPHERE_LABELS:
            raise InvalidParameterError(f"hemisphere must be 'L' or 'R', got {hemisphere!r}.")
        return np.flatnonzero(self.hemisphere == hemisphere)


@dataclass(frozen=True)
class _Hemisphere:
    """One hemisphere as found in a file, before its data are read."""

    hemi: str
    path: Path
    n_frames: int
    n_columns: int
    n_mesh: int
    vertex: np.ndarray
    #: Stated TR (s); None if unstated, NaN if stated but unreadable.
    file_t_r: float | None
    fill: Callable[[np.ndarray], None]
    what: str


# ------------------------------------------------------------------ names, formats and spaces


def _surface_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".dtseries.nii"):
        return "cifti"
    if name.endswith(".gii"):
        return "gifti"
    if name.endswith((".mgz", ".mgh")):
        return "mgh"
    if name.endswith((".nii", ".nii.gz")):
        raise InvalidImageError(
            f"{path.name} is a NIfTI volume (or a CIFTI file other than a dense time series): "
            "surface BOLD is read from .func.gii, .mgz/.mgh or .dtseries.nii files. Load volume "
            "BOLD with tmsnet.io.fmriprep.load_bold.")
    raise InvalidImageError(
        f"Cannot tell the format of {path.name}: surface BOLD is read from GIFTI (*.func.gii), "
        "FreeSurfer MGH (*.mgz, *.mgh) or CIFTI-2 dense time series (*.dtseries.nii) files.")


def _surface_space(path: Path, space: str | None) -> str:
    named = space_from_filename(path)
    if named is None and space is None:
        raise SpaceError(
            f"Cannot tell the surface space of {path.name}: its name has no 'space-' entity. "
            f"Pass it: --space {_SPACE_CHOICES} (space=... in Python). The vertex count is "
            "checked against it, never used to guess it.")
    if None not in (named, space) and named != space:
        raise SpaceError(
            f"{path.name} says space-{named} but space {space!r} was given. Pass the space "
            "the data are really on, or rename the file.")
    chosen = space if space is not None else named
    if chosen not in SURFACE_SPACES:
        raise SpaceError(
            f"Space {chosen!r} of {path.name} is not a surface space tmsnet reads; use one of "
            f"{_SPACE_CHOICES} (--space). Volume BOLD is loaded with "
            "tmsnet.io.fmriprep.load_bold.")
    return str(chosen)


def right_hemisphere_file(left: Path) -> Path:
    """The right-hemisphere file named after the left one (module docstring, rules in order)."""
    name = left.name
    if _HEMI_L_ENTITY.search(name):
        right = _HEMI_L_ENTITY.sub(r"\1hemi-R", name, count=1)
    elif name.startswith("lh."):
        right = "rh." + name[3:]
    elif ".lh." in name:
        cut = name.rindex(".lh.")
        right = name[:cut] + ".rh." + name[cut + 4:]
    elif _RIGHT_NAME.search(name):
        raise InvalidParameterError(
            f"{name} is a right-hemisphere file; give the LEFT one (hemi-L, lh.) and the right "
            "one is found beside it.")
    else:
        raise InvalidParameterError(
            f"Cannot tell the hemisphere of {name}: give the left-hemisphere file, named with "
            "'hemi-L' (fMRIPrep), a leading 'lh.' or '.lh.' (FreeSurfer), so that its right "
            "partner (hemi-R, rh.) can be found beside it.")
    partner = left.with_name(right)
    if not partner.is_file():
        raise InputFileNotFoundError(
            f"The right hemisphere of {name} should be {partner}, but that file does not exist. "
            "Put both hemisphere files of the run in the same folder.")
    return partner


def _check_mesh(hemispheres: list[_Hemisphere], space: str) -> None:
    expected = SURFACE_SPACES[space]
    for part in hemispheres:
        if part.n_mesh == expected:
            continue
        known = [name for name, count in SURFACE_SPACES.items() if count == part.n_mesh]
        hint = f" ({part.n_mesh} is the count of {known[0]})" if known else ""
        raise SpaceError(
            f"The {_HEMI_NAMES[part.hemi]} hemisphere of {part.path.name} has {part.n_mesh} "
            f"mesh vertices{hint}, but {space} has {expected} per hemisphere. Pass the space "
            f"the data are really on (--space {_SPACE_CHOICES}); tmsnet never guesses it from "
            "the vertex count.")


def _check_pair(left: _Hemisphere, right: _Hemisphere) -> None:
    if left.n_frames != right.n_frames:
        raise InvalidImageError(
            f"The left hemisphere ({left.path.name}) has {left.n_frames} frames but the right "
            f"one ({right.path.name}) has {right.n_frames}; both must come from the same run.")
    if left.n_frames < 2:
        raise InvalidImageError(
            f"{left.path.name} has {left.n_frames} frame(s): a BOLD time series is needed, "
            "not a single map.")


# --------------------------------------------------------------------------- file readers


def _load(path: Path, what: str) -> Any:
    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InvalidImageError(
            f"Cannot read {path} as a {what} file ({type(exc).__name__}: {exc}). If it is "
            "one, the file may be truncated -- copy it again.") from exc


def _milliseconds(value: Any) -> float | None:
    """A stated TR in ms as seconds; None when 0 (unknown), NaN when not a positive number."""
    try:
        ms = float(value)
    except (TypeError, ValueError):
        return math.nan
    if ms == 0:
        return None
    return ms / 1000.0 if math.isfinite(ms) and ms > 0 else math.nan


def _fill_gifti(arrays: list[Any], block: np.ndarray) -> None:
    if len(arrays) == 1 and arrays[0].data.ndim == 2 and arrays[0].data.shape[1] > 1:
        block[...] = arrays[0].data.T
        return
    for frame, array in enumerate(arrays):
        block[frame] = array.data.reshape(-1)


def _open_gifti(path: Path, hemi: str) -> _Hemisphere:
    img = _load(path, "GIFTI")
    if not isinstance(img, nib.gifti.GiftiImage):
        raise InvalidImageError(f"{path.name} is not a GIFTI file although it is named .gii.")
    arrays = list(img.darrays)
    if not arrays:
        raise InvalidImageError(f"The GIFTI file {path.name} holds no data array.")
    if any(a.intent in _MESH_INTENTS for a in arrays):
        raise InvalidImageError(
            f"{path.name} is a surface mesh (point set / triangles), not a BOLD time series; "
            "give fMRIPrep's *_hemi-L_space-<space>_bold.func.gii.")
    structure = img.meta.get("AnatomicalStructurePrimary")
    if structure in _GIFTI_STRUCTURE.values() and structure != _GIFTI_STRUCTURE[hemi]:
        raise InvalidImageError(
            f"{path.name} is used as the {_HEMI_NAMES[hemi]} hemisphere but its metadata say "
            f"AnatomicalStructurePrimary={structure}; check the file names.")
    first = arrays[0].data
    if len(arrays) == 1 and first.ndim == 2 and first.shape[1] > 1:
        n_vertices, n_frames = first.shape
    else:
        sizes = sorted({int(a.data.size) for a in arrays})
        if len(sizes) > 1:
            raise InvalidImageError(
                f"The data arrays of {path.name} have different lengths ({sizes}); a surface "
                "time series has one array of n_vertices values per frame.")
        n_vertices, n_frames = sizes[0], len(arrays)
    step = arrays[0].meta.get("TimeStep")
    return _Hemisphere(hemi, path, n_frames, n_vertices, n_vertices, np.arange(n_vertices),
                       None if step is None else _milliseconds(step),
                       functools.partial(_fill_gifti, arrays), "the GIFTI TimeStep metadata")


def _fill_mgh(img: Any, block: np.ndarray) -> None:
    values = np.asanyarray(img.dataobj)
    block[...] = values.reshape(values.shape[0], -1).T


def _open_mgh(path: Path, hemi: str) -> _Hemisphere:
    img = _load(path, "FreeSurfer MGH")
    shape = tuple(int(s) for s in img.shape)
    if not isinstance(img, nib.MGHImage) or len(shape) != 4 or shape[1:3] != (1, 1):
        raise InvalidImageError(
            f"{path.name} has shape {shape}; a FreeSurfer surface time series has shape "
            "(n_vertices, 1, 1, n_frames).")
    n_vertices = shape[0]
    return _Hemisphere(hemi, path, shape[3], n_vertices, n_vertices, np.arange(n_vertices),
                       _milliseconds(img.header["tr"]), functools.partial(_fill_mgh, img),
                       "the MGH header's tr field")


def _fill_cifti(dataobj: Any, columns: slice, block: np.ndarray) -> None:
    block[...] = np.asanyarray(dataobj[:, columns])


def _cifti_axes(path: Path, first: type, what: str) -> tuple[Any, Any, cifti2.BrainModelAxis]:
    """A dense CIFTI-2 file and its two axes: ``first`` (series, labels) and the brain models."""
    img = _load(path, "CIFTI-2")
    try:
        axis, models = img.header.get_axis(0), img.header.get_axis(1)
    except Exception as exc:  # a NIfTI without CIFTI extension, or a malformed one
        raise InvalidImageError(
            f"{path.name} has no readable CIFTI-2 axes ({type(exc).__name__}: {exc}); give "
            f"a {what}.") from exc
    if not isinstance(axis, first) or not isinstance(models, cifti2.BrainModelAxis):
        raise InvalidImageError(
            f"{path.name} has axes ({type(axis).__name__}, {type(models).__name__}); a {what} "
            f"has ({first.__name__}, BrainModelAxis).")
    return img, axis, models


def _open_cifti(path: Path) -> tuple[list[_Hemisphere], int]:
    """The two cortex models of a dtseries, and the number of other grayordinates."""
    img, series, models = _cifti_axes(
        path, cifti2.SeriesAxis, "dense time series (fMRIPrep's *_space-fsLR_den-91k_bold."
        "dtseries.nii)")
    if series.unit != "SECOND":
        raise InvalidImageError(
            f"The series axis of {path.name} is in {series.unit}, not SECOND: it is not a BOLD "
            "time series.")
    step = float(series.step)
    stated = None if step == 0 else (step if math.isfinite(step) and step > 0 else math.nan)
    parts = [_Hemisphere(hemi, path, int(series.size), len(model), n_mesh,
                         np.asarray(model.vertex), stated,
                         functools.partial(_fill_cifti, img.dataobj, columns),
                         "the CIFTI series-axis step")
             for hemi, (columns, model, n_mesh) in cifti_cortex_models(models, path.name).items()]
    return parts, len(models) - sum(p.n_columns for p in parts)


def cifti_cortex_models(models: cifti2.BrainModelAxis,
                        name: str) -> dict[str, tuple[slice, cifti2.BrainModelAxis, int]]:
    """The two cortex models of a CIFTI brain-model axis.

    Parameters
    ----------
    models : nibabel.cifti2.BrainModelAxis
        The axis.
    name : str
        The file's name, for the message.

    Returns
    -------
    dict
        ``{"L": (columns, model, n_mesh_vertices), "R": ...}``: the model's columns along the
        axis (a slice), the model (its ``vertex`` indexes the mesh) and the size of the mesh
        it declares.

    Raises
    ------
    InvalidImageError
        When a cortex model is missing.
    """
    found = {structure: (columns, model) for structure, columns, model in models.iter_structures()}
    out = {}
    for hemi, structure in _CIFTI_CORTEX.items():
        if structure not in found:
            raise InvalidImageError(
                f"{name} has no {structure} brain model (it has {sorted(found)}); both "
                "cortical hemispheres are needed.")
        columns, model = found[structure]
        out[hemi] = (columns, model, int(model.nvertices[structure]))
    return out


def _read_usable(parts: list[_Hemisphere]) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, int]]]:
    """Both hemispheres in one float32 matrix without NaN/inf and constant columns."""
    n_frames = parts[0].n_frames
    out = np.empty((n_frames, sum(p.n_columns for p in parts)), dtype=np.float32)
    keep = np.empty(out.shape[1], dtype=bool)
    excluded = {}
    start = 0
    for part in parts:
        stop = start + part.n_columns
        block = out[:, start:stop]
        try:
            part.fill(block)
        except _READ_ERRORS as exc:
            raise InvalidImageError(
                f"Reading the data of {part.path} failed ({type(exc).__name__}: {exc}). The "
                "file is truncated or corrupt: copy it again.") from exc
        low, high = block.min(axis=0), block.max(axis=0)
        nonfinite = ~(np.isfinite(low) & np.isfinite(high))
        constant = (low == high) & ~nonfinite
        keep[start:stop] = ~(nonfinite | constant)
        excluded[part.hemi] = {"constant": int(constant.sum()), "nonfinite": int(nonfinite.sum())}
        if not keep[start:stop].any():
            raise EmptyRegionError(
                f"No vertex of the {_HEMI_NAMES[part.hemi]} hemisphere of {part.path.name} has a "
                f"usable signal ({excluded[part.hemi]['constant']} constant over time, "
                f"{excluded[part.hemi]['nonfinite']} with NaN/inf); check that the file is a "
                "preprocessed BOLD run.")
        start = stop
    data = out if keep.all() else _compact_columns(out, keep)
    return data, keep, excluded


# ------------------------------------------------------------------------ repetition time


def _sidecar_of(path: Path) -> Path:
    return path.with_name(_SIDECAR_SUFFIX.sub("", path.name) + ".json")


def _sidecar_t_r(sidecar: Path) -> float | None:
    """``RepetitionTime`` (s) of a sidecar; None when absent or not positive."""
    stated = _read_sidecar(sidecar).get("RepetitionTime")
    if stated is None:
        return None
    try:
        seconds = float(stated)
    except (TypeError, ValueError):
        raise InvalidParameterError(
            f"{sidecar.name} gives RepetitionTime {stated!r}, which is not a number of seconds; "
            "fix the sidecar or pass the TR with --t-r.") from None
    return seconds if seconds > 0 else None


def _decide_t_r(left: _Hemisphere, right: _Hemisphere,
                t_r: float | None) -> tuple[float, str, Path | None]:
    """The TR (s), its source and the sidecar read (module docstring, "Repetition time")."""
    name, stated = left.path.name, left.file_t_r
    if t_r is not None:
        value = float(t_r)
        if not (math.isfinite(value) and value > 0):
            raise InvalidParameterError(f"t_r must be a positive number of seconds, got {t_r!r}.")
        return value, "argument", None
    if stated is not None and math.isnan(stated):
        raise InvalidParameterError(
            f"The repetition time in {left.what} of {name} is not a positive number; pass the "
            "true TR explicitly (t_r=..., --t-r).")
    other = right.file_t_r
    if stated is not None and other is not None and not abs(stated - other) <= 0.01 * stated:
        raise InvalidParameterError(
            f"{name} states a TR of {stated:g} s but {right.path.name} {other:g} s; check that "
            "both files come from the same run, and pass the true TR explicitly (t_r=..., --t-r).")
    sidecar = _sidecar_of(left.path)
    from_sidecar = _sidecar_t_r(sidecar) if sidecar.is_file() else None
    read = sidecar if sidecar.is_file() else None
    if stated is None and from_sidecar is None:
        raise InvalidParameterError(
            f"Cannot tell the repetition time of {name}: {left.what} states none and there is "
            f"no RepetitionTime in {sidecar.name} beside it. Pass it explicitly (t_r=2.0, "
            "--t-r 2.0).")
    if stated is None:
        return float(from_sidecar), "sidecar", read
    if from_sidecar is not None and abs(stated - from_sidecar) > 0.01 * from_sidecar:
        raise InvalidParameterError(
            f"The repetition time of {name} is {stated:g} s in {left.what} but "
            f"{from_sidecar:g} s in {sidecar.name}. Pass the true TR explicitly (t_r=..., --t-r).")
    return stated, "file", read


def _check_t_r_range(t_r: float, source: str, left: _Hemisphere) -> None:
    low, high = _T_R_RANGE_S
    if low <= t_r <= high:
        return
    origin = {"argument": "the t_r argument", "file": left.what,
              "sidecar": "the JSON sidecar"}[source]
    raise InvalidParameterError(
        f"The repetition time of {left.path.name} would be {t_r:g} s (from {origin}), outside "
        f"{low:g}-{high:g} s: its unit is probably wrong (GIFTI TimeStep and the MGH tr field are "
        "in milliseconds). Pass the TR in seconds (t_r=..., --t-r).")


# ------------------------------------------------------------------------------ public API


def load_surface_bold(
    path: str | Path, *, space: str | None = None, t_r: float | None = None
) -> SurfaceBold:
    """Load a surface BOLD run, both hemispheres, as one vertex-by-time matrix.

    Parameters
    ----------
    path : str or Path
        The LEFT hemisphere file (GIFTI ``*_hemi-L_space-<space>_bold.func.gii``
        or FreeSurfer ``lh.*.mgz`` / ``*.lh.mgz``; the right one is found
        beside it), or a CIFTI-2 ``*_space-fsLR_den-91k_bold.dtseries.nii``.
    space : str, optional
        Surface space (``fsaverage5``, ``fsaverage6``, ``fsaverage``,
        ``fsLR``), required when the file name has no ``space-`` entity; must
        agree with the entity when both are given.
    t_r : float, optional
        Repetition time (s); overrides the file and the sidecar.

    Returns
    -------
    SurfaceBold
        Usable vertices of both hemispheres (left first) as float32
        ``(n_frames, n_vertices)``; constant (medial wall) and NaN/inf vertices
        are dropped and counted in ``excluded``.

    Raises
    ------
    InputFileNotFoundError
        The file, or its right-hemisphere partner, does not exist.
    InvalidImageError
        Unreadable or not a surface time series; the hemispheres differ in
        frame count; a CIFTI file lacks a cortex model.
    InvalidParameterError
        The right-hemisphere file was given, or the hemisphere cannot be
        told from the name; no credible TR, or file and sidecar (or the two
        hemisphere files) disagree.
    SpaceError
        No space known, space and file name disagree, unknown space, or the
        vertex count does not match the space.
    EmptyRegionError
        A hemisphere has no vertex with a usable signal.
    """
    left_path = _existing_file(path, "surface BOLD")
    source_format = _surface_format(left_path)
    resolved_space = _surface_space(left_path, space)
    n_subcortical = 0
    if source_format == "cifti":
        parts, n_subcortical = _open_cifti(left_path)
        inputs = {"cifti": left_path}
    else:
        right_path = right_hemisphere_file(left_path)
        opener = _open_gifti if source_format == "gifti" else _open_mgh
        parts = [opener(left_path, "L"), opener(right_path, "R")]
        inputs = {"left": left_path, "right": right_path}
    _check_mesh(parts, resolved_space)
    _check_pair(*parts)
    tr, tr_source, sidecar = _decide_t_r(*parts, t_r)
    _check_t_r_range(tr, tr_source, parts[0])
    if sidecar is not None:
        inputs["sidecar"] = sidecar
    data, keep, excluded = _read_usable(parts)
    labels = np.concatenate([np.full(p.n_columns, p.hemi) for p in parts])
    vertices = np.concatenate([p.vertex for p in parts]).astype(np.int64)
    stated = parts[0].file_t_r
    return SurfaceBold(
        data=data,
        hemisphere=labels[keep],
        vertex=vertices[keep],
        n_mesh_vertices={p.hemi: p.n_mesh for p in parts},
        excluded=excluded,
        space=resolved_space,
        t_r=tr,
        t_r_source=tr_source,
        t_r_file=None if stated is None or math.isnan(stated) else stated,
        n_frames=parts[0].n_frames,
        inputs=inputs,
        source_format=source_format,
        n_subcortical=n_subcortical,
    )


@dataclass(frozen=True, eq=False)
class CiftiVolumePart:
    """Where the volume grayordinates of a CIFTI-2 dense time series are.

    The brain models of a ``den-91k`` file other than the two cortices: subcortical and
    cerebellar voxels on a 2 mm grid (fMRIPrep: MNI152NLin6Asym), 31870 of them in HCP's
    91282 grayordinates.

    Attributes
    ----------
    path : Path
        The dtseries.
    columns : ndarray of int64, shape (n_voxels,)
        Index of each voxel along the file's brain-model axis (a column of the data).
    ijk : ndarray of int64, shape (n_voxels, 3)
        Voxel indices on the volume grid.
    coords_mm : ndarray of float64, shape (n_voxels, 3)
        Voxel centres, mm (``affine @ ijk``).
    structure : ndarray of str, shape (n_voxels,)
        CIFTI structure of each voxel, e.g. ``"CIFTI_STRUCTURE_ACCUMBENS_RIGHT"``.
    affine : ndarray, shape (4, 4)
        Voxel-to-mm affine of the grid.
    volume_shape : tuple of int
        Shape of the grid.
    """

    path: Path
    columns: np.ndarray
    ijk: np.ndarray
    coords_mm: np.ndarray
    structure: np.ndarray
    affine: np.ndarray
    volume_shape: tuple[int, int, int]

    @property
    def n_voxels(self) -> int:
        """Number of volume grayordinates."""
        return int(self.columns.size)

    def read(self, index: np.ndarray | None = None) -> np.ndarray:
        """Time series of the voxels (all, or ``index`` of them), float32 ``(n_frames, n)``."""
        columns = self.columns if index is None else self.columns[np.asarray(index)]
        if columns.size == 0:
            raise InvalidParameterError("No volume voxel selected: nothing to read.")
        start, stop = int(columns.min()), int(columns.max()) + 1
        dataobj = _load(self.path, "CIFTI-2").dataobj
        try:
            block = np.asanyarray(dataobj[:, start:stop])
            return np.asarray(block[:, columns - start], dtype=np.float32)
        except _READ_ERRORS as exc:
            raise InvalidImageError(
                f"Reading the volume part of {self.path} failed ({type(exc).__name__}: {exc}); "
                "the file is truncated or corrupt: copy it again.") from exc


def load_cifti_volume_part(path: str | Path) -> CiftiVolumePart:
    """The volume brain models of a CIFTI-2 dense time series (positions, no data read).

    Parameters
    ----------
    path : str or Path
        A ``*.dtseries.nii`` file.

    Returns
    -------
    CiftiVolumePart
        Voxels in the file's column order.

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    InvalidImageError
        Not a dense time series, or it has no volume brain model.
    """
    cifti = _existing_file(path, "CIFTI-2 dense time series")
    _, _, models = _cifti_axes(cifti, cifti2.SeriesAxis, "CIFTI-2 dense time series")
    in_volume = np.asarray(models.volume_mask, dtype=bool)
    if not in_volume.any():
        raise InvalidImageError(
            f"{cifti.name} has no volume brain model (only {sorted(set(models.name))}); a seed "
            "from the CIFTI volume part needs the subcortical grayordinates (den-91k).")
    ijk = np.asarray(models.voxel[in_volume], dtype=np.int64)
    affine = np.asarray(models.affine, dtype=np.float64)
    return CiftiVolumePart(path=cifti, columns=np.flatnonzero(in_volume).astype(np.int64),
                           ijk=ijk, coords_mm=ijk @ affine[:3, :3].T + affine[:3, 3],
                           structure=np.asarray(models.name[in_volume]), affine=affine,
                           volume_shape=tuple(int(n) for n in models.volume_shape))


def _numeric_rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank lines of a text matrix as (line number, cells), all rows the same width."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfoundsError(
            f"Cannot read the confounds file {path} as text ({exc}); give a plain matrix of "
            "numbers, one row per frame.") from exc
    rows = [(number, line.split()) for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()]
    if not rows:
        raise ConfoundsError(
            f"The confounds file {path} is empty; give a matrix of numbers with one row per "
            "frame and one column per regressor.")
    width = len(rows[0][1])
    for number, cells in rows:
        if len(cells) != width:
            raise ConfoundsError(
                f"Line {number} of the confounds file {path.name} has {len(cells)} values but "
                f"the first row has {width}; every row must hold one value per regressor.")
    return rows


def _refuse_cell(path: Path, number: int, column: int, cell: str) -> None:
    if "," in cell:
        advice = "the file looks comma-separated: separate the numbers with tabs or spaces"
    elif number == 1:
        advice = ("the first row looks like a header: remove it, or read an fMRIPrep TSV with "
                  "tmsnet.io.fmriprep.load_confounds_table")
    else:
        advice = "give numbers only"
    raise ConfoundsError(
        f"The confounds file {path.name} has {cell!r} on line {number}, column {column + 1}, "
        f"which is not a number; {advice}.")


def load_confounds_matrix(path: str | Path, *, n_frames: int) -> pd.DataFrame:
    """Read a headerless confounds matrix: every column is a regressor.

    For confounds given as a plain matrix of numbers (such as the LEMON
    ``..._confounds.txt`` files), as opposed to fMRIPrep's TSV with named
    columns (:func:`tmsnet.io.fmriprep.load_confounds_table`).

    Parameters
    ----------
    path : str or Path
        Text file, one row per frame, values separated by whitespace (tabs or
        spaces), no header; blank lines are skipped.
    n_frames : int
        Frames of the BOLD run; the matrix must have one row per frame.

    Returns
    -------
    pandas.DataFrame
        float64, ``n_frames`` rows, columns named ``c00``, ``c01``, ... (zero
        padded to at least two digits, in file order).

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    ConfoundsError
        Empty, unreadable, ragged rows, a cell that is not a finite number
        (a header, commas, NaN/inf), or a row count different from ``n_frames``.
    """
    p = _existing_file(path, "confounds")
    rows = _numeric_rows(p)
    try:
        values = np.array([cells for _, cells in rows], dtype=np.float64)
    except ValueError:
        for number, cells in rows:
            for column, cell in enumerate(cells):
                try:
                    float(cell)
                except ValueError:
                    _refuse_cell(p, number, column, cell)
        raise  # pragma: no cover - numpy and float() accept the same numbers
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = (int(i) for i in bad[0])
        raise ConfoundsError(
            f"The confounds file {p.name} holds {rows[row][1][column]!r} on line {rows[row][0]}, "
            f"column {column + 1}: every column is used as a regressor, so each value must be a "
            "finite number (replace missing values, e.g. by 0 on the first row of derivatives).")
    if values.shape[0] != n_frames:
        raise ConfoundsError(
            f"The confounds file {p.name} has {values.shape[0]} rows but the BOLD has {n_frames} "
            "frames; use the confounds matrix written for this run (one row per frame).")
    digits = max(2, len(str(values.shape[1] - 1)))
    return pd.DataFrame(values, columns=[f"c{j:0{digits}d}" for j in range(values.shape[1])])


#: File endings of surface BOLD that :func:`is_surface_bold` recognises.
SURFACE_SUFFIXES = (".func.gii", ".mgz", ".mgh", ".dtseries.nii")


def is_surface_bold(path: str | Path | None) -> bool:
    """Whether ``path`` names a surface time series (by its ending), as ``tmsnet target`` decides."""
    return path is not None and str(path).endswith(SURFACE_SUFFIXES)
