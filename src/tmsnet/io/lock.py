"""One writer per output folder: an advisory lock with its holder written in it.

A BIDS-App run stages every subject under ``OUTPUT_DIR/.tmsnet-work`` and
cleans that folder up at start; a second run on the same folder would delete
the first run's staging while it is in use. :func:`output_lock` prevents that:

* the lock is ``OUTPUT_DIR/.tmsnet.lock``, held with :func:`fcntl.flock`
  (exclusive, non-blocking) for the whole run; the kernel releases it when the
  holder exits *or dies* (SIGKILL, out of memory), so a stale lock never blocks
  anyone and is taken over without guessing whether a process id is still alive;
* the file is never deleted (deleting a flock-ed file lets two processes lock
  two different files of one name); a clean release empties it;
* the file holds the holder's host, process id, start time and command line, so
  the refused run can say who holds it (one line, no traceback);
* on file systems without ``flock`` (some network mounts) the lock falls back
  to the recorded holder: refused while that process is alive on this host,
  taken over when it is dead; a holder on another host is trusted (refused).

The lock is advisory: it coordinates tmsnet runs, not other programs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tmsnet.exceptions import OutputLockedError, OutputNotWritableError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Name of the lock file inside the output folder.
LOCK_NAME = ".tmsnet.lock"


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv)[:500]}


def read_lock_holder(output_dir: str | Path) -> dict[str, Any] | None:
    """The holder recorded in the lock file (None if there is none or it is unreadable)."""
    try:
        holder = json.loads((Path(output_dir) / LOCK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _alive_here(holder: dict[str, Any]) -> bool:
    """Whether ``holder``'s process may still run (True when it is on another host)."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def _refusal(output_dir: Path, holder: dict[str, Any] | None) -> OutputLockedError:
    who = ("another tmsnet run" if holder is None else
           f"tmsnet process {holder.get('pid')} on host {holder.get('host')} "
           f"(started {holder.get('started')})")
    return OutputLockedError(
        f"The output folder {output_dir} is in use by {who}; wait for it to finish or give "
        f"another output folder (if that process is gone, delete {output_dir / LOCK_NAME}).")


def _write_holder(handle: Any) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(_holder()) + "\n")
    handle.flush()
    os.fsync(handle.fileno())


@contextlib.contextmanager
def output_lock(output_dir: str | Path) -> Iterator[dict[str, Any] | None]:
    """Hold the output folder's lock for the body of a ``with`` block.

    Parameters
    ----------
    output_dir : path
        An existing output folder.

    Yields
    ------
    dict or None
        The previous holder when a stale lock (dead process) was taken over, else None.

    Raises
    ------
    OutputLockedError
        Another live process holds the lock.
    OutputNotWritableError
        The lock file cannot be created.
    """
    output_dir = Path(output_dir)
    path = output_dir / LOCK_NAME
    previous = read_lock_holder(output_dir)
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
    except OSError as error:
        raise OutputNotWritableError(f"Cannot create the lock file {path}: {error}") from error
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _refusal(output_dir, read_lock_holder(output_dir)) from None
            except OSError:  # no flock on this file system: the recorded holder decides
                if previous is not None and _alive_here(previous):
                    raise _refusal(output_dir, previous) from None
        elif previous is not None and _alive_here(previous):  # pragma: no cover - Windows
            raise _refusal(output_dir, previous)
        _write_holder(handle)
        yield previous
        with contextlib.suppress(OSError):  # released cleanly: no holder any more
            handle.seek(0)
            handle.truncate()
            handle.flush()
    finally:
        handle.close()  # releases the flock (the kernel does so too if the process dies)
