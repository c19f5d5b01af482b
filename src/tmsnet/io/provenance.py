"""Provenance sidecars: parameters, software versions and input hashes.

Every file tmsnet writes gets a BIDS-Derivatives style JSON sidecar
(``GeneratedBy``, ``Sources``) built by :func:`make_sidecar`. Sidecars contain
no time stamps or host names, so identical inputs and parameters give
byte-identical outputs; the SHA-256 of each input file pins down exactly what
was analysed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import threading
from collections.abc import Mapping
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tmsnet.exceptions import InputFileNotFoundError
from tmsnet.io.atomic import json_compatible

__all__ = [
    "SOFTWARE_PACKAGES",
    "file_sha256",
    "make_sidecar",
    "sidecar_path_for",
    "software_versions",
]

#: Distributions whose versions are recorded in every sidecar.
SOFTWARE_PACKAGES: tuple[str, ...] = (
    "tmsnet",
    "numpy",
    "scipy",
    "pandas",
    "nibabel",
    "nilearn",
    "scikit-learn",
    "matplotlib",
)

_CHUNK_BYTES = 1 << 20  # 1 MiB
_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()

#: File endings replaced by ``.json`` in :func:`sidecar_path_for` (longest first).
_DATA_SUFFIXES: tuple[str, ...] = (
    ".nii.gz",
    ".tsv.gz",
    ".dtseries.nii",
    ".dscalar.nii",
    ".func.gii",
    ".shape.gii",
    ".nii",
    ".tsv",
    ".html",
    ".h5",
    ".txt",
    ".xml",
    ".csv",
    ".png",
    ".svg",
)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, streamed in 1 MiB chunks and cached.

    The cache key is (resolved path, size, modification time in ns), so a
    300 MB BOLD is hashed once per process however many sidecars cite it, and
    a file changed on disk is hashed again.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        Lower-case hexadecimal digest (64 characters).

    Raises
    ------
    InputFileNotFoundError
        If the file does not exist.
    """
    resolved = Path(path).expanduser().resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError as exc:
        raise InputFileNotFoundError(
            f"Cannot hash {path}: the file does not exist. Check the path."
        ) from exc
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(resolved, "rb") as fh:
        buffer = bytearray(_CHUNK_BYTES)
        view = memoryview(buffer)
        while n := fh.readinto(buffer):
            digest.update(view[:n])
    value = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = value
    return value


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages in :data:`SOFTWARE_PACKAGES`.

    Returns
    -------
    dict of str to str
        ``{"python": "3.11.7", "tmsnet": ..., "numpy": ..., ...}``; a package
        that is not installed is reported as ``"not installed"``.
    """
    return dict(_installed_versions(tuple(SOFTWARE_PACKAGES)))


@lru_cache(maxsize=4)
def _installed_versions(packages: tuple[str, ...]) -> dict[str, str]:
    # Read once per process: a job writes a dozen sidecars, and each lookup of the
    # installed metadata scans the environment (about 2 ms a package).
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _tmsnet_version() -> str:
    from tmsnet import __version__

    return __version__


_RESERVED_KEYS = ("Description", "GeneratedBy", "Space", "Parameters", "Sources",
                  "SoftwareVersions")


def make_sidecar(
    *,
    description: str,
    parameters: Mapping[str, Any],
    inputs: Mapping[str, str | Path | None],
    space: str | None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A BIDS-Derivatives style provenance sidecar.

    Parameters
    ----------
    description : str
        What the file holds, in one or two sentences.
    parameters : mapping
        Every parameter that influenced the result (nested, JSON-able after
        :func:`tmsnet.io.atomic.json_compatible`).
    inputs : mapping of str to path or None
        Input files by role (``bold``, ``confounds``, ``mask``...); each is
        recorded with its absolute path and SHA-256. ``None`` records that the
        role had no file.
    space : str or None
        Coordinate space of the file (``MNI152NLin2009cAsym``...), None if it
        has none.
    extra : mapping, optional
        Further top-level keys (e.g. BIDS column descriptions); must not reuse
        the keys above.

    Returns
    -------
    dict
        ``{"Description", "GeneratedBy", "Space", "Parameters", "Sources",
        "SoftwareVersions", **extra}`` with JSON types only; no time stamps.

    Raises
    ------
    InputFileNotFoundError
        If an input file does not exist.
    ValueError
        If ``extra`` reuses a reserved key.
    """
    sources: dict[str, Any] = {}
    for role, path in inputs.items():
        if path is None:
            sources[str(role)] = None
            continue
        sources[str(role)] = {
            "path": os.path.abspath(os.fspath(path)),
            "sha256": file_sha256(path),
        }
    sidecar: dict[str, Any] = {
        "Description": description,
        "GeneratedBy": [{"Name": "tmsnet", "Version": _tmsnet_version()}],
        "Space": space,
        "Parameters": json_compatible(dict(parameters)),
        "Sources": sources,
        "SoftwareVersions": software_versions(),
    }
    if extra:
        clash = [k for k in extra if k in _RESERVED_KEYS]
        if clash:
            raise ValueError(
                f"make_sidecar: extra keys {clash} would overwrite reserved sidecar keys; "
                "rename them."
            )
        sidecar.update(json_compatible(dict(extra)))
    return sidecar


def sidecar_path_for(path: str | Path) -> Path:
    """The JSON sidecar path of a data file (same folder, same stem).

    Parameters
    ----------
    path : str or Path
        A data file: ``x.nii.gz``, ``x.nii``, ``x.tsv``, ``x_markers.tsv``,
        ``x_report.html``...

    Returns
    -------
    Path
        ``x.json``, ``x_markers.json``, ``x_report.json``...

    Raises
    ------
    ValueError
        If ``path`` is itself a ``.json`` file.
    """
    p = Path(path)
    name = p.name
    if name.lower().endswith(".json"):
        raise ValueError(f"{p} is a JSON file already; it has no sidecar.")
    for suffix in _DATA_SUFFIXES:
        if name.lower().endswith(suffix):
            return p.with_name(name[: -len(suffix)] + ".json")
    return p.with_suffix(".json")
