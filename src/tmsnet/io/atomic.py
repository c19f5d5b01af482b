"""Atomic file writers: a result file is either complete or absent.

Every writer serialises into a hidden temporary file in the destination
folder (``.<name>.<random>.tmp``), flushes and fsyncs it, then renames
it over the destination with :func:`os.replace`, which is atomic on POSIX and
Windows when source and destination are on the same file system (hence the
temporary file lives in the destination folder). If anything fails on the way
the temporary file is removed and an existing destination is left untouched,
so an interrupted run never leaves a half-written NIfTI, TSV or JSON behind.

Operating-system errors (permission denied, disk full, missing folder) are
re-raised as :class:`~tmsnet.exceptions.OutputNotWritableError`; any other
exception (e.g. a serialisation error) propagates unchanged.

JSON output is deterministic (``indent=2``, insertion-ordered keys, trailing
newline) and strictly valid: NaN and infinities are written as ``null``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from tmsnet.exceptions import OutputNotWritableError
from tmsnet.utils.docs import add_doc, fill_doc

if TYPE_CHECKING:  # pragma: no cover
    import nibabel as nib
    import pandas as pd

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_nifti",
    "atomic_write_text",
    "atomic_write_tsv",
    "ensure_output_dir",
    "json_compatible",
]

_NIFTI_SUFFIXES = (".nii.gz", ".nii")

add_doc("atomic_path", """path : str or Path
    Destination file; its folder must exist.""")
add_doc("atomic_returns", """Returns
-------
Path
    The destination path.""")


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # pragma: no cover - non-Linux fallback
    os.umask(mask)  # pragma: no cover
    return mask  # pragma: no cover


def _not_writable(path: Path, exc: OSError) -> OutputNotWritableError:
    reason = exc.strerror or type(exc).__name__
    return OutputNotWritableError(
        f"Cannot write {path} ({reason}). Check that the folder {path.parent} exists, "
        "is writable by you and has free space, or choose another output folder."
    )


def ensure_output_dir(path: str | Path) -> Path:
    """Create an output folder (with parents) and prove that it is writable.

    Parameters
    ----------
    path : str or Path
        The folder to create or reuse.

    Returns
    -------
    Path
        The absolute folder path.

    Raises
    ------
    OutputNotWritableError
        If the folder cannot be created (e.g. a parent is a regular file, or
        permission is denied) or a file cannot be created inside it.
    """
    folder = Path(path).expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise OutputNotWritableError(
            f"Cannot use {folder} as output folder: a file with that name exists. "
            "Remove or rename the file, or choose another output folder."
        ) from exc
    except OSError as exc:
        raise OutputNotWritableError(
            f"Cannot create the output folder {folder} ({exc.strerror or exc}). Check that "
            "the parent folders exist as folders (not files) and that you may write there, "
            "or choose another output folder."
        ) from exc
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmsnet-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputNotWritableError(
            f"The output folder {folder} is not writable ({exc.strerror or exc}). Fix its "
            "permissions (e.g. chmod u+w), free disk space, or choose another output folder."
        ) from exc
    return folder


@fill_doc
def atomic_write_with(path: str | Path, write: Callable[[Path], None], *, suffix: str = ".tmp") -> Path:
    """Run ``write(temp_path)`` then atomically move the temp file to ``path``.

    Parameters
    ----------
    path : str or Path
        Destination file.
    write : callable
        Writes the complete content to the temporary path it is given.
    suffix : str
        Suffix of the temporary file name (``.tmp`` or ``.tmp.nii.gz`` so that
        nibabel picks the right format).

    %(atomic_returns)s
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{dest.name}.", suffix=suffix)
    except OSError as exc:
        raise _not_writable(dest, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates 0600 files; give the result the usual permissions.
        mode = 0o666 & ~_umask()
        if dest.exists():
            mode = dest.stat().st_mode & 0o7777
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputNotWritableError):
            raise _not_writable(dest, exc) from exc
        raise
    _fsync_dir(folder)
    return dest


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); silently skipped where unsupported."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_stream(
    path: str | Path, fill: Callable[[IO[Any]], None], *, binary: bool
) -> Path:
    def write(tmp: Path) -> None:
        if binary:
            with open(tmp, "wb") as fh:
                fill(fh)
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fill(fh)

    return atomic_write_with(path, write)


@fill_doc
def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write a UTF-8 text file atomically.

    Parameters
    ----------
    %(atomic_path)s
    text : str
        Complete content (line endings are written as given).

    %(atomic_returns)s
    """
    return _write_stream(path, lambda fh: fh.write(text), binary=False)


@fill_doc
def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write a binary file atomically.

    Parameters
    ----------
    %(atomic_path)s
    data : bytes
        Complete content.

    %(atomic_returns)s
    """
    return _write_stream(path, lambda fh: fh.write(data), binary=True)


def json_compatible(obj: Any) -> Any:
    """Convert nested data to plain JSON types, NaN/inf to ``None``.

    Parameters
    ----------
    obj : object
        Nested mappings / sequences of numbers, strings, numpy scalars and
        arrays, paths, booleans and None.

    Returns
    -------
    object
        The same structure with dicts (string keys), lists, str, int, float
        (finite), bool and None only. Unknown objects become ``str(obj)``.
    """
    if isinstance(obj, Mapping):
        return {str(k): json_compatible(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return json_compatible(obj.tolist())
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [json_compatible(v) for v in items]
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


@fill_doc
def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write a JSON file atomically (indent 2, NaN/inf as ``null``).

    Parameters
    ----------
    %(atomic_path)s
    obj : object
        Anything :func:`json_compatible` accepts.

    %(atomic_returns)s
    """
    clean = json_compatible(obj)

    def fill(fh: IO[str]) -> None:
        json.dump(clean, fh, indent=2, allow_nan=False, ensure_ascii=False)
        fh.write("\n")

    return _write_stream(path, fill, binary=False)


@fill_doc
def atomic_write_tsv(path: str | Path, df: pd.DataFrame) -> Path:
    """Write a table as BIDS TSV atomically (tab-separated, ``n/a``, no index).

    Parameters
    ----------
    %(atomic_path)s
    df : pandas.DataFrame
        The table; missing values are written as ``n/a``.

    %(atomic_returns)s
    """

    def fill(fh: IO[str]) -> None:
        df.to_csv(fh, sep="\t", na_rep="n/a", index=False, lineterminator="\n")

    return _write_stream(path, fill, binary=False)


@fill_doc
def atomic_write_nifti(path: str | Path, img: nib.spatialimages.SpatialImage) -> Path:
    """Write a NIfTI image atomically; ``.nii.gz`` destinations are gzipped.

    The temporary file keeps the destination's ``.nii``/``.nii.gz`` ending so
    that nibabel chooses the same format; nibabel's gzip writer stores neither
    a file name nor a time stamp, so identical images give identical files.

    Parameters
    ----------
    path : str or Path
        Destination ending in ``.nii`` or ``.nii.gz``; its folder must exist.
    img : nibabel image
        The image; it is not modified (its file map is left as it was).

    %(atomic_returns)s
    """
    import nibabel as nib

    name = Path(path).name
    ext = next((s for s in _NIFTI_SUFFIXES if name.endswith(s)), None)
    if ext is None:
        raise ValueError(f"NIfTI output {path} must end in .nii.gz or .nii.")

    def write(tmp: Path) -> None:
        if isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            # A fresh image object so that saving does not repoint img.file_map.
            copy = img.__class__(img.dataobj, img.affine, img.header, extra=img.extra)
            copy.to_filename(tmp)
        else:
            nib.save(img, tmp)

    return atomic_write_with(path, write, suffix=".tmp" + ext)
