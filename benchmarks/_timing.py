"""Small helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``,
so this folder is on ``sys.path``)."""

from __future__ import annotations

import os
import time


def timed(func):
    """(result, wall seconds, process CPU seconds) of ``func()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = func()
    return out, time.perf_counter() - t0, time.process_time() - c0


def load():
    """The 1, 5 and 15 min load averages as ``a/b/c``."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
