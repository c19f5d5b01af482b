"""All or nothing for one job: write into a hidden staging folder, then move into place.

Every file is written atomically (:mod:`tmsnet.io.atomic`), but a job writes
many files: a failure after the first ones (the plan after the targets, the
report after the maps) would leave a half set. :func:`staged_output_dir` gives
the job a private folder ``OUT/.tmsnet-stage-<random>/`` inside the output
folder (same file system, so moves are renames); when the job's body returns,
every staged file is moved to the same relative place under ``OUT``; when it
raises, the staging folder is deleted and ``OUT`` is left as it was. A run
killed while staging leaves only the hidden folder, which
``tmsnet.bids_app.derivatives.validate_derivatives`` reports.

Files that a job writes only when absent (``dataset_description.json``) keep
the existing copy in ``OUT``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tmsnet.io.atomic import ensure_output_dir

#: Files kept as they are in the output folder when it has them already.
WRITE_IF_ABSENT = ("dataset_description.json",)
STAGE_PREFIX = ".tmsnet-stage-"


@dataclass(frozen=True)
class Staging:
    """The staging folder of one job and where its files will end up."""

    path: Path
    out: Path

    def final(self, path: str | Path) -> Path:
        """Where a staged ``path`` lands in the output folder (other paths are returned as is)."""
        path = Path(path)
        try:
            return self.out / path.relative_to(self.path)
        except ValueError:
            return path

    def final_all(self, outputs: dict) -> dict:
        """``outputs`` (role -> path) with every staged path mapped by :meth:`final`."""
        return {role: self.final(path) if isinstance(path, (str, Path)) else path
                for role, path in outputs.items()}


def final_output_dir(folder: str | Path) -> Path:
    """The output folder a (possibly staging) folder stands for, e.g. in a report's footer."""
    folder = Path(folder)
    return folder.parent if folder.name.startswith(STAGE_PREFIX) else folder


def _move_into_place(staging: Staging) -> None:
    for source in sorted(p for p in staging.path.rglob("*") if p.is_file()):
        relative = source.relative_to(staging.path)
        destination = staging.out / relative
        if relative.as_posix() in WRITE_IF_ABSENT and destination.exists():
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)


@contextlib.contextmanager
def staged_output_dir(out_dir: str | Path) -> Iterator[Staging]:
    """Stage a job's outputs; move them into ``out_dir`` only if the block succeeds.

    Parameters
    ----------
    out_dir : str or Path
        The output folder (created if needed, checked to be writable).

    Yields
    ------
    Staging
        ``path`` to write into; ``final(p)`` maps a staged path to its place in ``out_dir``.
    """
    out = ensure_output_dir(out_dir)
    staging = Staging(path=Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out)), out=out)
    try:
        yield staging
        _move_into_place(staging)
    finally:
        shutil.rmtree(staging.path, ignore_errors=True)
