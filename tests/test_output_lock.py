"""One writer per output folder (issue 14, item 4), with real processes.

Before the lock, a second ``participant`` run on the same folder deleted the first
run's staging folder (``recover_staging``) while it was in use, and the first then
failed a subject with a misleading "free space" message.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tmsnet.exceptions import OutputLockedError
from tmsnet.io.lock import LOCK_NAME, output_lock, read_lock_holder

CLI = [sys.executable, "-c", "import sys; from tmsnet.cli import main; sys.exit(main())"]
FAST = ["--method", "peak", "--n-bootstrap", "0", "--no-report", "--quiet"]

HOLDER = """
import sys, time
from tmsnet.io.lock import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(out):
    """A real process that holds the lock of ``out`` (the same code a run uses)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_second_run_is_refused_and_leaves_the_first_runs_staging(small_bids, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    staging = out / ".tmsnet-work" / "sub-01.abc123"
    staging.mkdir(parents=True)
    (staging / "in-use.txt").write_text("the first run's half-written subject")
    holder = _hold(out)
    try:
        second = subprocess.run([*CLI, str(small_bids), str(out), "participant", *FAST],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"tmsnet process {holder.pid} on host {socket.gethostname()}" in lines[0]
        assert "Traceback" not in second.stderr
        assert (staging / "in-use.txt").is_file()  # not deleted under the first run
        assert not list(out.glob("sub-*"))  # and nothing computed
        # the group level is refused too
        group = subprocess.run([*CLI, str(small_bids), str(out), "group", "--no-report"],
                               capture_output=True, text=True, timeout=300)
        assert group.returncode != 0 and "is in use by" in group.stderr
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_of_a_killed_run_is_taken_over(small_bids, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = _hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    stale = read_lock_holder(out)
    assert stale is not None and stale["pid"] == holder.pid  # the dead holder is still written
    run = subprocess.run([*CLI, str(small_bids), str(out), "participant", *FAST],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.glob("sub-*")) == ["sub-01", "sub-02"]
    assert (out / LOCK_NAME).read_text() == ""  # released cleanly: no holder


#: A second run that has imported tmsnet already and starts its participant level the moment
#: the first run's lock holds a holder (so the overlap does not depend on import speed).
WAIT_THEN_RUN = """
import sys, time
from pathlib import Path
from tmsnet.cli import main
lock = Path(sys.argv[1])
print("ready", flush=True)
while not (lock.is_file() and lock.read_text()):
    time.sleep(0.002)
sys.exit(main(sys.argv[2:]))
"""


def test_two_real_participant_runs_on_one_folder(small_bids, tmp_path):
    """Two participant runs on one folder at once: the first computes, the second refuses."""
    out = tmp_path / "out"
    out.mkdir()
    second = subprocess.Popen([sys.executable, "-c", WAIT_THEN_RUN, str(out / LOCK_NAME),
                               str(small_bids), str(out), "participant", *FAST],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert second.stdout.readline().strip() == "ready"  # imported: it now waits for the lock
    first = subprocess.run([*CLI, str(small_bids), str(out), "participant", *FAST],
                           capture_output=True, text=True, timeout=600)
    second_err = second.communicate(timeout=300)[1]
    assert first.returncode == 0, first.stderr
    assert second.returncode != 0, second_err
    assert "is in use by tmsnet process" in second_err and len(second_err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.glob("sub-*")) == ["sub-01", "sub-02"]
    assert not (out / ".tmsnet-work").exists()


def test_lock_in_process_refuses_a_second_holder_and_records_its_holder(tmp_path):
    with output_lock(tmp_path) as previous:
        assert previous is None
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(OutputLockedError, match="in use by tmsnet process"):
            with output_lock(tmp_path):
                pass
    assert read_lock_holder(tmp_path) is None
