"""Scratch arrays reused across the repeated calls of one loop (the bootstrap's resamples).

A large temporary array costs more to obtain than to fill: the kernel hands out fresh,
zeroed pages on first touch. The hierarchical method makes two 108 MB temporaries on
the 2 mm DLPFC region (the rank correlations and the condensed distances) on every
resample; taking them fresh cost about 35 ms of the 60 ms that filling the distances
takes (benchmarks/bench_target.py, docs/benchmarks.md). Inside :func:`reuse_scratch`,
:func:`scratch` hands the same array back to each call with the same name, shape and
dtype; outside it, a fresh one (nothing is held after the loop).

A scratch array's contents are garbage on entry and belong to the caller only until its
next call for the same name: it must never be returned or kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_ACTIVE: ContextVar[dict | None] = ContextVar("tmsnet_scratch", default=None)


@contextmanager
def reuse_scratch() -> Iterator[None]:
    """Reuse :func:`scratch` arrays until the block ends (then they are released)."""
    token = _ACTIVE.set({})
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def scratch(name: str, shape: tuple[int, ...], dtype: type | np.dtype, *,
            order: str = "C") -> np.ndarray:
    """An uninitialised array: the one kept under ``name`` inside :func:`reuse_scratch`."""
    held = _ACTIVE.get()
    if held is None:
        return np.empty(shape, dtype=dtype, order=order)
    key = (name, tuple(shape), np.dtype(dtype).str, order)
    if key not in held:
        held[key] = np.empty(shape, dtype=dtype, order=order)
    return held[key]
