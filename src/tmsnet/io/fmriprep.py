"""Load and validate the fMRIPrep inputs of the targeting job.

:func:`load_bold` reads a preprocessed 4D BOLD image (fMRIPrep
``*_space-<template>_desc-preproc_bold.nii.gz``), its brain mask and its
repetition time, checks them, and returns a :class:`BoldData` holding only the
in-mask voxels as one ``(n_frames, n_voxels)`` float32 matrix.
:func:`load_confounds_table` reads the matching
``*_desc-confounds_timeseries.tsv``.

Reading speed and memory
------------------------
The BOLD is streamed frame by frame straight from the (gzip) file: each
frame's bytes are read into one reusable buffer and the in-mask voxels are
gathered into the output row, while a running minimum / maximum per voxel
detects NaN and constant voxels on the fly. The whole 4D array (about 1.1 GB
in float32 for a 2 mm MNI grid with 300 frames) is never materialised, no
float64 copy is made, and the peak memory is the in-mask matrix itself (about
276 MB for 230k voxels x 300 frames). Decompression runs in a reader thread
(it releases the GIL) while the main thread gathers, so loading costs about
as much as decompressing the file -- less than ``nib.load(p).get_fdata(
dtype=np.float32)``, which also allocates the full 4D array. ``.gz`` files are
decompressed with ISA-L (the ``isal`` package, a dependency: 1.7 x the speed of
Python's zlib reader on a 139 MB 2 mm BOLD, the same bytes) and with nibabel's
zlib reader when ``isal`` does not import.
"""

from __future__ import annotations

import contextlib
import json
import math
import queue
import re
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from tmsnet.exceptions import (
    ConfoundsError,
    EmptyRegionError,
    GridMismatchError,
    InputFileNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    ScanTooShortError,
)
from tmsnet.spaces import resolve_template_space

try:  # ISA-L's gzip reader (a dependency); zlib through nibabel without it
    from isal import igzip as _isal_gzip
    from isal.isal_zlib import error as _isal_error

    _ISAL_ERRORS: tuple[type[BaseException], ...] = (_isal_error,)
except ImportError:  # pragma: no cover
    _isal_gzip = None
    _ISAL_ERRORS = ()

__all__ = [
    "MIN_DURATION_MIN",
    "MIN_FRAMES",
    "BoldData",
    "BrainGrid",
    "check_scan_length",
    "find_brain_mask",
    "load_bold",
    "load_confounds_table",
    "repetition_time",
]

#: Fewest frames accepted for a connectivity estimate (absolute floor; reliable
#: individual targets need far longer scans -- REFERENCES.md section 1).
MIN_FRAMES = 50
#: Shortest scan accepted, in minutes (absolute floor, see :data:`MIN_FRAMES`).
MIN_DURATION_MIN = 2.0

#: Voxel-grid affines closer than this (mm) are treated as the same grid.
AFFINE_TOLERANCE_MM = 1e-3

_NIFTI_EXT = re.compile(r"\.nii(\.gz)?$")
_TIME_UNIT_SECONDS = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}
_READ_ERRORS = (OSError, EOFError, zlib.error, ValueError, *_ISAL_ERRORS)


@dataclass(frozen=True, eq=False)
class BrainGrid:
    """A voxel grid and the brain voxels on it: what every in-mask array is laid out on.

    The columns of an ``(n_frames, n_voxels)`` matrix (:class:`BoldData`,
    cleaned data, connectivity maps) are the ``True`` voxels of ``mask`` in the
    C order of ``mask.nonzero()``.

    Attributes
    ----------
    reference : nibabel.Nifti1Image
        3D image holding the grid (shape, affine, header).
    mask : ndarray of bool, shape (X, Y, Z)
        The brain voxels.
    """

    reference: nib.Nifti1Image
    mask: np.ndarray

    @property
    def affine(self) -> np.ndarray:
        """Voxel-to-mm affine of the grid."""
        return self.reference.affine

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (3D)."""
        return tuple(int(v) for v in self.mask.shape)

    @property
    def n_voxels(self) -> int:
        """Number of brain voxels."""
        return int(self.mask.sum())

    def map_image(self, values: np.ndarray) -> nib.Nifti1Image:
        """A 3D float32 image of per-brain-voxel ``values`` (0 outside the brain)."""
        volume = np.zeros(self.mask.shape, dtype=np.float32)
        volume[self.mask] = values
        return nib.Nifti1Image(volume, self.reference.affine)

    def mask_image(self, mask: np.ndarray) -> nib.Nifti1Image:
        """A 3D uint8 image of a boolean mask on this grid."""
        return nib.Nifti1Image(mask.astype(np.uint8), self.reference.affine)


@dataclass
class BoldData:
    """A validated BOLD run restricted to its brain mask.

    Attributes
    ----------
    path : Path
        The BOLD file.
    reference : nibabel.Nifti1Image
        3D uint8 image of zeros on the BOLD grid (shape, affine, header) used
        to write maps.
    mask : ndarray of bool, shape (X, Y, Z)
        Brain mask minus NaN and constant voxels: the voxels in ``data``.
    data : ndarray of float32, shape (n_frames, n_voxels)
        In-mask time series, voxels in the C order of ``mask.nonzero()``.
    t_r : float
        Repetition time (s).
    space : str
        Template space (``MNI152NLin2009cAsym``...).
    n_frames : int
        Number of frames (volumes).
    n_voxels_excluded : dict
        ``{"nan": k, "constant": m}``: voxels of the given mask removed
        because their time series held a NaN/inf, or never changed.
    mask_path : Path or None
        The mask file used; None when the mask was derived from the data.
    mask_source : str
        How the mask was obtained (``"given"``, ``"fmriprep"``,
        ``"nonzero-variance"``).
    t_r_source : str
        Where the TR came from (``"argument"``, ``"header"``, ``"sidecar"``).
    """

    path: Path
    reference: nib.Nifti1Image
    mask: np.ndarray
    data: np.ndarray
    t_r: float
    space: str
    n_frames: int
    n_voxels_excluded: dict[str, int]
    mask_path: Path | None
    mask_source: str = "given"
    t_r_source: str = "header"

    @property
    def grid(self) -> BrainGrid:
        """The grid and brain mask the columns of ``data`` belong to."""
        return BrainGrid(self.reference, self.mask)

    @property
    def n_voxels(self) -> int:
        """Number of in-mask voxels (columns of ``data``)."""
        return int(self.data.shape[1])

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths (mm) along the three grid axes."""
        return np.sqrt((self.reference.affine[:3, :3] ** 2).sum(axis=0))

    def unmask(self, values: np.ndarray) -> nib.Nifti1Image:
        """Put in-mask values back on the BOLD grid.

        Parameters
        ----------
        values : ndarray, shape (n_voxels,) or (k, n_voxels)
            One value per in-mask voxel, or ``k`` such rows.

        Returns
        -------
        nibabel.Nifti1Image
            3D (or 4D with ``k`` volumes) float32 image, 0 outside the mask.
        """
        values = np.asarray(values)
        n_vox = int(self.mask.sum())
        if values.ndim not in (1, 2) or values.shape[-1] != n_vox:
            raise InvalidParameterError(
                f"unmask expects shape ({n_vox},) or (k, {n_vox}) -- one value per in-mask "
                f"voxel -- but got {values.shape}."
            )
        shape3 = self.mask.shape
        if values.ndim == 1:
            volume = np.zeros(shape3, dtype=np.float32)
            volume[self.mask] = values
        else:
            volume = np.zeros((*shape3, values.shape[0]), dtype=np.float32)
            volume[self.mask] = values.T
        img = nib.Nifti1Image(volume, self.reference.affine, self.reference.header)
        img.set_data_dtype(np.float32)
        img.header.set_slope_inter(None, None)
        return img


# --------------------------------------------------------------------------- helpers


def _existing_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputFileNotFoundError(
            f"The {what} file {p} does not exist. Check the path (fMRIPrep writes it under "
            "derivatives/fmriprep/sub-<label>/[ses-<label>/]func/)."
        )
    if p.is_dir():
        raise InputFileNotFoundError(
            f"The {what} path {p} is a folder; give the file itself."
        )
    return p


def _load_image(path: Path, what: str) -> nib.spatialimages.SpatialImage:
    try:
        return nib.load(path)
    except Exception as exc:  # nibabel raises many types for non-images
        raise InvalidImageError(
            f"Cannot read the {what} {path} as a NIfTI image ({type(exc).__name__}: {exc}). "
            "Give a .nii or .nii.gz file (fMRIPrep's *_desc-preproc_bold.nii.gz); if it is "
            "one, the file may be truncated -- copy it again."
        ) from exc


def _json_sidecar(path: Path) -> Path:
    return path.with_name(_NIFTI_EXT.sub("", path.name) + ".json")


def _read_sidecar(sidecar: Path) -> dict[str, Any]:
    """A BIDS JSON sidecar; a corrupt one is refused, never ignored (it may hold the TR)."""
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidImageError(
            f"The sidecar {sidecar} is not readable JSON ({error}); fix it or remove it (and pass "
            "the TR with --t-r if the image header lacks it).") from None
    if not isinstance(meta, dict):
        raise InvalidImageError(f"The sidecar {sidecar} must hold a JSON object, not "
                                f"{type(meta).__name__}; fix it or remove it.")
    return meta


def repetition_time(
    img: nib.spatialimages.SpatialImage, path: Path, t_r: float | None = None
) -> tuple[float, str]:
    """Decide the repetition time of a 4D image.

    Order: the ``t_r`` argument; the header's 4th zoom converted with the
    header's time unit (a zoom of 0, or of exactly 1 with no time unit -- the
    nibabel placeholder -- counts as unknown); ``RepetitionTime`` of the JSON
    sidecar beside the image. Header and sidecar must agree within 1 %.

    Parameters
    ----------
    img : nibabel image
        The 4D image.
    path : Path
        Its file (to find ``<name>.json``).
    t_r : float, optional
        Repetition time (s) declared by the user; overrides the files.

    Returns
    -------
    t_r : float
        Repetition time (s).
    source : str
        ``"argument"``, ``"header"`` or ``"sidecar"``.

    Raises
    ------
    InvalidParameterError
        If no credible TR is found, or header and sidecar disagree.
    """
    if t_r is not None:
        value = float(t_r)
        if not math.isfinite(value) or value <= 0:
            raise InvalidParameterError(f"t_r must be a positive number of seconds, got {t_r!r}.")
        return value, "argument"
    header_tr = None
    zooms = img.header.get_zooms()
    if len(zooms) >= 4:
        zoom = float(zooms[3])
        try:
            unit = img.header.get_xyzt_units()[1]
        except Exception:  # non-NIfTI headers
            unit = "unknown"
        scale = _TIME_UNIT_SECONDS.get(unit)
        if math.isfinite(zoom) and zoom > 0 and not (scale is None and zoom == 1.0):
            header_tr = zoom * (scale or 1.0)
    sidecar_tr = None
    sidecar = _json_sidecar(path)
    if sidecar.exists():
        meta = _read_sidecar(sidecar)
        value = meta.get("RepetitionTime")
        try:
            sidecar_tr = float(value) if value is not None and float(value) > 0 else None
        except (TypeError, ValueError):
            raise InvalidParameterError(
                f"RepetitionTime in {sidecar.name} is {value!r}, not a number of seconds; fix "
                "the sidecar or pass the TR explicitly (--t-r).") from None
    if header_tr is not None and sidecar_tr is not None:
        if abs(header_tr - sidecar_tr) > 0.01 * sidecar_tr:
            raise InvalidParameterError(
                f"The repetition time of {path.name} is {header_tr:g} s in the NIfTI header "
                f"but {sidecar_tr:g} s in {sidecar.name}. Pass the true TR explicitly "
                "(t_r=..., --t-r)."
            )
        return header_tr, "header"
    if header_tr is not None:
        return header_tr, "header"
    if sidecar_tr is not None:
        return sidecar_tr, "sidecar"
    raise InvalidParameterError(
        f"Cannot tell the repetition time of {path.name}: the header's time zoom is "
        f"{float(zooms[3]) if len(zooms) >= 4 else 'missing'} (unknown) and there is no "
        f"RepetitionTime in {sidecar.name}. Pass it explicitly (t_r=2.0, --t-r 2.0) or "
        "use the .json sidecar fMRIPrep wrote beside the BOLD."
    )


def check_scan_length(
    n_frames: int,
    t_r: float,
    *,
    min_frames: int = MIN_FRAMES,
    min_duration_min: float = MIN_DURATION_MIN,
    what: str = "The BOLD",
) -> None:
    """Raise :class:`ScanTooShortError` if a scan is below either floor.

    Parameters
    ----------
    n_frames : int
        Frames available.
    t_r : float
        Repetition time (s).
    min_frames : int
        Minimum number of frames.
    min_duration_min : float
        Minimum duration (minutes) = ``n_frames * t_r / 60``.
    what : str
        Subject of the message ("The BOLD", "After scrubbing, the BOLD"...).
    """
    minutes = n_frames * t_r / 60.0
    if n_frames < min_frames or minutes < min_duration_min - 1e-9:
        raise ScanTooShortError(
            f"{what} has {n_frames} frames ({minutes:.1f} min at TR {t_r:g} s), below the "
            f"minimum for connectivity targeting: at least {min_frames} frames and "
            f"{min_duration_min:g} min (reliable individual targets need 10 min or more). "
            "Use a longer or additional "
            "resting-state run, discard/scrub fewer frames, or lower min_frames / "
            "min_duration_min if you accept a noisier estimate."
        )


def find_brain_mask(bold_path: str | Path) -> Path | None:
    """The brain mask fMRIPrep wrote beside a BOLD file, if present.

    ``sub-01_task-rest_space-X_res-2_desc-preproc_bold.nii.gz`` ->
    ``sub-01_task-rest_space-X_res-2_desc-brain_mask.nii.gz`` (same entities
    up to ``desc-``).

    Parameters
    ----------
    bold_path : str or Path
        The BOLD file.

    Returns
    -------
    Path or None
        The mask file, or None if there is none.
    """
    p = Path(bold_path)
    stem = _NIFTI_EXT.sub("", p.name)
    if "_desc-" in stem:
        base = stem[: stem.index("_desc-")]
    elif stem.endswith("_bold"):
        base = stem[: -len("_bold")]
    else:
        return None
    for ext in (".nii.gz", ".nii"):
        candidate = p.with_name(f"{base}_desc-brain_mask{ext}")
        if candidate.exists() and candidate != p:
            return candidate
    return None


def _voxel_sizes(affine: np.ndarray) -> np.ndarray:
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def _load_mask(
    mask_path: Path, bold: nib.spatialimages.SpatialImage, bold_path: Path
) -> np.ndarray:
    mask_img = _load_image(mask_path, "brain mask")
    shape = tuple(mask_img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    bold_shape = tuple(bold.shape[:3])
    same_affine = np.allclose(mask_img.affine, bold.affine, atol=AFFINE_TOLERANCE_MM)
    if len(shape) != 3 or shape != bold_shape or not same_affine:
        vox_m = np.round(_voxel_sizes(mask_img.affine), 3).tolist()
        vox_b = np.round(_voxel_sizes(bold.affine), 3).tolist()
        detail = (
            f"mask {mask_path.name}: shape {tuple(mask_img.shape)}, voxel size {vox_m} mm; "
            f"BOLD {bold_path.name}: shape {bold_shape}, voxel size {vox_b} mm"
        )
        if shape == bold_shape:
            detail += " (same shape but different affine: the grids are shifted/rotated)"
        raise GridMismatchError(
            f"The brain mask is not on the BOLD voxel grid ({detail}). Use the mask fMRIPrep "
            "wrote for the same space and resolution (*_space-<same>_res-<same>_desc-"
            "brain_mask.nii.gz), or resample it: nilearn.image.resample_to_img(mask, bold, "
            "interpolation='nearest')."
        )
    data = np.asanyarray(mask_img.dataobj).reshape(shape)
    mask = np.asarray(data > 0) if data.dtype.kind != "b" else np.asarray(data, dtype=bool)
    if not mask.any():
        raise EmptyRegionError(
            f"The brain mask {mask_path} has no non-zero voxel. Give the brain mask fMRIPrep "
            "wrote for this run (*_desc-brain_mask.nii.gz)."
        )
    return mask


def _reference_image(bold: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    shape3 = tuple(int(s) for s in bold.shape[:3])
    header = bold.header.copy() if isinstance(bold, nib.Nifti1Image) else None
    ref = nib.Nifti1Image(np.zeros(shape3, dtype=np.uint8), bold.affine, header)
    ref.set_data_dtype(np.uint8)
    ref.header.set_slope_inter(None, None)
    return ref


# ---------------------------------------------------------------- streaming reader


def _open_image_file(path: str | Path) -> Any:
    """A binary reader of an image file, decompressing ``.gz`` with ISA-L when installed.

    ``isal.igzip`` (Intel's ISA-L inflate, faster than zlib, same bytes out) when the
    ``isal`` package imports, else nibabel's own opener (zlib for ``.gz``).
    """
    if str(path).endswith(".gz") and _isal_gzip is not None:
        return _isal_gzip.open(path, "rb")
    from nibabel.openers import ImageOpener

    return ImageOpener(path)


def _frames_from_file(proxy: Any, n_frames: int) -> Iterator[np.ndarray]:
    """Yield frames (flat, Fortran order, stored dtype) read sequentially.

    A reader thread decompresses the next frames into a small ring of buffers
    while the consumer gathers the current one.
    """
    n_vox = int(np.prod(proxy.shape[:3]))
    dtype = np.dtype(proxy.dtype)
    n_buffers = 4
    buffers = [np.empty(n_vox, dtype=dtype) for _ in range(n_buffers)]
    # Unbounded: at most n_buffers items are ever in flight.
    filled: queue.Queue[Any] = queue.Queue()
    free: queue.Queue[int] = queue.Queue()
    for i in range(n_buffers):
        free.put(i)
    stop = threading.Event()

    def reader() -> None:
        try:
            with _open_image_file(proxy.file_like) as fh:
                fh.seek(proxy.offset)
                for _ in range(n_frames):
                    i = free.get()
                    if stop.is_set():
                        return
                    view = memoryview(buffers[i]).cast("B")
                    got = 0
                    while got < view.nbytes:
                        n = fh.readinto(view[got:])
                        if not n:
                            raise EOFError(
                                f"file ends after {got} of {view.nbytes} bytes of a frame"
                            )
                        got += n
                    filled.put(i)
        except BaseException as exc:  # handed to the consumer
            filled.put(exc)

    thread = threading.Thread(target=reader, name="tmsnet-bold-reader", daemon=True)
    thread.start()
    try:
        for _ in range(n_frames):
            item = filled.get()
            if isinstance(item, BaseException):
                raise item
            yield buffers[item]
            free.put(item)
    finally:
        stop.set()
        free.put(0)  # unblock the reader if it waits for a buffer
        thread.join()


def _frames_from_proxy(img: nib.spatialimages.SpatialImage) -> Iterator[np.ndarray]:
    """Generic fallback: slices of ``img.dataobj`` in chunks of frames."""
    shape = img.shape
    n_frames = shape[3]
    chunk = max(1, int(64e6 // (np.prod(shape[:3]) * 4)))
    for start in range(0, n_frames, chunk):
        block = np.asanyarray(img.dataobj[..., start : start + chunk])
        for k in range(block.shape[3]):
            yield block[..., k].ravel(order="F")


def _iter_frames(img: nib.spatialimages.SpatialImage) -> tuple[Iterator[np.ndarray], float, float]:
    """Frames of a 4D image plus the (slope, intercept) still to apply."""
    proxy = img.dataobj
    fast = (
        isinstance(proxy, nib.arrayproxy.ArrayProxy)
        and getattr(proxy, "order", "F") == "F"
        and isinstance(proxy.file_like, str | Path)
        and len(proxy.shape) == 4
    )
    if fast:
        slope, inter = float(proxy.slope), float(proxy.inter)
        return _frames_from_file(proxy, int(proxy.shape[3])), slope, inter
    return _frames_from_proxy(img), 1.0, 0.0


def _read_in_mask(
    img: nib.spatialimages.SpatialImage, mask: np.ndarray, bold_path: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream the in-mask voxels into a (T, V) float32 matrix.

    Returns the matrix and per-voxel flags (non-finite, constant).
    """
    n_frames = int(img.shape[3])
    flat_f = np.ravel_multi_index(np.nonzero(mask), mask.shape, order="F")
    n_vox = flat_f.size
    out = np.empty((n_frames, n_vox), dtype=np.float32)
    lo = np.full(n_vox, np.inf, dtype=np.float32)
    hi = np.full(n_vox, -np.inf, dtype=np.float32)
    frames, slope, inter = _iter_frames(img)
    scaled = slope != 1.0 or inter != 0.0
    native_f32 = np.dtype(np.float32)
    t = -1
    try:
        with contextlib.closing(frames):  # stops the reader thread on any error
            for t, frame in enumerate(frames):
                row = out[t]
                if frame.dtype == native_f32:
                    np.take(frame, flat_f, out=row)
                else:
                    row[...] = frame[flat_f]
                if scaled:
                    row *= np.float32(slope)
                    row += np.float32(inter)
                np.minimum(lo, row, out=lo)
                np.maximum(hi, row, out=hi)
    except _READ_ERRORS as exc:
        raise InvalidImageError(
            f"Reading frame {t + 2} of {n_frames} of {bold_path} failed ({type(exc).__name__}: "
            f"{exc}). The file is truncated or corrupt: copy it again from the fMRIPrep "
            "output."
        ) from exc
    if t + 1 != n_frames:  # pragma: no cover - defensive
        raise InvalidImageError(f"Read {t + 1} of {n_frames} frames of {bold_path}.")
    nonfinite = ~(np.isfinite(lo) & np.isfinite(hi))
    constant = (lo == hi) & ~nonfinite
    return out, nonfinite, constant


def _compact_columns(data: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``data[:, keep]`` as a C-contiguous array, computed in place.

    Row ``t`` of the result is written to ``flat[t*k:(t+1)*k]``, never beyond
    the start of the unread row ``t+1``, so no second (T, V) buffer is needed.
    """
    n_frames, _ = data.shape
    k = int(keep.sum())
    flat = data.reshape(-1)
    idx = np.flatnonzero(keep)
    n_vox = data.shape[1]
    for t in range(n_frames):
        row = flat[t * n_vox : (t + 1) * n_vox][idx]  # a copy
        flat[t * k : (t + 1) * k] = row
    return flat[: n_frames * k].reshape(n_frames, k)


# --------------------------------------------------------------------- public API


def _brain_mask(path: Path, given_mask: Path | None, img: Any,
                shape: tuple[int, ...]) -> tuple[Path | None, str, np.ndarray]:
    """The mask file used (or None), how it was found, and the mask itself."""
    if given_mask is None:
        found = find_brain_mask(path)
        mask_source = "fmriprep" if found is not None else "nonzero-variance"
    else:
        found, mask_source = given_mask, "given"
    if found is not None:
        return found, mask_source, _load_mask(found, img, path)
    warnings.warn(
        f"No brain mask given or found beside {path.name}; using every voxel whose signal "
        "varies over time. Pass fMRIPrep's *_desc-brain_mask.nii.gz for a brain-only "
        "analysis.",
        UserWarning,
        stacklevel=3,
    )
    return None, mask_source, np.ones(shape[:3], dtype=bool)


def _usable_voxels(img: Any, mask: np.ndarray, path: Path,
                   count_constant: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """In-mask data without NaN/inf and constant voxels, the mask that matches, and the counts."""
    data, nonfinite, constant = _read_in_mask(img, mask, path)
    keep = ~(nonfinite | constant)
    n_nonfinite = int(nonfinite.sum())
    n_constant = int(constant.sum()) if count_constant else 0
    if not keep.any():
        raise EmptyRegionError(
            f"No voxel of {path.name} inside the brain mask has a usable signal "
            f"({n_nonfinite} with NaN/inf values, {int(constant.sum())} constant over time). "
            "Check that the BOLD and mask belong to the same run and that the BOLD is not "
            "empty."
        )
    if not keep.all():
        data = _compact_columns(data, keep)
        new_mask = np.zeros_like(mask)
        new_mask[tuple(a[keep] for a in np.nonzero(mask))] = True
        mask = new_mask
    return data, mask, n_nonfinite, n_constant


def load_bold(
    bold_path: str | Path,
    *,
    mask_path: str | Path | None = None,
    space: str | None = None,
    t_r: float | None = None,
    min_frames: int = MIN_FRAMES,
    min_duration_min: float = MIN_DURATION_MIN,
) -> BoldData:
    """Load and validate a preprocessed 4D BOLD run and its brain mask.

    Parameters
    ----------
    bold_path : str or Path
        fMRIPrep ``*_space-<template>_desc-preproc_bold.nii.gz`` (4D).
    mask_path : str or Path, optional
        Brain mask on the BOLD grid. Default: fMRIPrep's
        ``*_desc-brain_mask.nii.gz`` beside the BOLD (same entities up to
        ``desc-``); if there is none, voxels whose signal varies over time
        (a warning is issued and ``mask_source`` records it; every voxel of
        the grid is read then, about 4x the memory of a brain mask).
    space : str, optional
        Template space, if the file name has no ``space-`` entity (checked by
        :func:`tmsnet.spaces.resolve_template_space`).
    t_r : float, optional
        Repetition time (s); default from the header, else the JSON sidecar.
    min_frames : int
        Fewest frames accepted (default :data:`MIN_FRAMES`).
    min_duration_min : float
        Shortest scan accepted in minutes (default :data:`MIN_DURATION_MIN`).

    Returns
    -------
    BoldData
        In-mask data as float32 ``(n_frames, n_voxels)``; voxels with NaN/inf
        values or a constant time series are excluded from the mask and
        counted in ``n_voxels_excluded``.

    Raises
    ------
    InputFileNotFoundError
        The BOLD or mask file does not exist.
    InvalidImageError
        Not a readable NIfTI, not 4D, or truncated.
    SpaceError
        Unknown or non-template space.
    InvalidParameterError
        Unknown repetition time.
    ScanTooShortError
        Fewer than ``min_frames`` frames or ``min_duration_min`` minutes.
    GridMismatchError
        The mask is on another voxel grid.
    EmptyRegionError
        The mask is empty, or no voxel has usable signal.
    """
    path = _existing_file(bold_path, "BOLD")
    given_mask = None if mask_path is None else _existing_file(mask_path, "brain mask")
    resolved_space = resolve_template_space(path, space)
    img = _load_image(path, "BOLD")
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 3:
        raise InvalidImageError(
            f"{path.name} is 3D (shape {shape}); targeting needs the 4D preprocessed BOLD "
            "time series (fMRIPrep's *_space-<template>_desc-preproc_bold.nii.gz), not a "
            "mask, reference or statistical map."
        )
    if len(shape) != 4:
        raise InvalidImageError(
            f"{path.name} has shape {shape}; targeting needs a 4D image (x, y, z, time) "
            "such as fMRIPrep's *_desc-preproc_bold.nii.gz."
        )
    tr, tr_source = repetition_time(img, path, t_r)
    if not 0.05 <= tr <= 30.0:
        raise InvalidParameterError(
            f"The repetition time of {path.name} would be {tr:g} s, outside 0.05-30 s: the "
            "header's time unit is probably wrong. Pass the TR in seconds (t_r=..., --t-r)."
        )
    check_scan_length(shape[3], tr, min_frames=min_frames, min_duration_min=min_duration_min)

    found, mask_source, mask = _brain_mask(path, given_mask, img, shape)
    data, mask, n_nonfinite, n_constant = _usable_voxels(img, mask, path, found is not None)
    return BoldData(
        path=path,
        reference=_reference_image(img),
        mask=mask,
        data=data,
        t_r=tr,
        space=resolved_space,
        n_frames=shape[3],
        n_voxels_excluded={"nan": n_nonfinite, "constant": n_constant},
        mask_path=found,
        mask_source=mask_source,
        t_r_source=tr_source,
    )


def _without_duplicate_columns(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Refuse a header naming one column twice with different values; drop exact copies.

    pandas renames a repeated header ``x`` to ``x.1``; the true header is read again here.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
    if len(header) != table.shape[1] or len(set(header)) == len(header):
        return table
    drop = []
    for name in sorted({h for h in header if header.count(h) > 1}):
        columns = [j for j, h in enumerate(header) if h == name]
        first = table.iloc[:, columns[0]]
        for j in columns[1:]:
            if not first.equals(table.iloc[:, j]):
                raise ConfoundsError(
                    f"The confounds file {path.name} has two columns named {name!r} with "
                    "different values, so which one to regress is ambiguous; keep one (fMRIPrep "
                    "writes each name once).")
            drop.append(j)
    keep = [j for j in range(table.shape[1]) if j not in drop]
    table = table.iloc[:, keep]
    table.columns = [header[j] for j in keep]
    return table


def load_confounds_table(confounds_path: str | Path, *, n_frames: int) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV and check it matches the BOLD.

    Parameters
    ----------
    confounds_path : str or Path
        ``*_desc-confounds_timeseries.tsv`` (tab-separated, header row, ``n/a``
        for missing values).
    n_frames : int
        Frames of the BOLD run; the table must have one row per frame.

    Returns
    -------
    pandas.DataFrame
        One row per frame; ``n/a`` read as NaN.

    Raises
    ------
    InputFileNotFoundError
        The file does not exist.
    ConfoundsError
        Unreadable, not tab-separated, or a row count different from the BOLD.
    """
    path = _existing_file(confounds_path, "confounds")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfoundsError(
            f"Cannot read the confounds file {path} as a tab-separated table ({exc}). Give "
            "fMRIPrep's *_desc-confounds_timeseries.tsv for this run."
        ) from exc
    table = _without_duplicate_columns(table, path)
    if table.shape[1] == 1 and "," in str(table.columns[0]):
        raise ConfoundsError(
            f"The confounds file {path.name} looks comma-separated; fMRIPrep confounds are "
            "tab-separated (*_desc-confounds_timeseries.tsv)."
        )
    if len(table) != n_frames:
        raise ConfoundsError(
            f"The confounds file {path.name} has {len(table)} rows but the BOLD has {n_frames} "
            "frames; use the confounds file fMRIPrep wrote for this run "
            "(*_desc-confounds_timeseries.tsv with the same sub/ses/task/run entities)."
        )
    return table
