"""Does this machine run two processes at once at full speed? (issue 16, goal 3)

Usage::

    .venv/bin/python benchmarks/check_core_scaling.py

A parallel efficiency below 100 % on two workers can come from the machine (two vCPUs
that are hyperthreads of one core, a shared memory bus) or from the work (start-up,
imbalance, contention in the job). This script separates them: it times three kinds of
work alone and then two copies at once on forked processes, and prints the efficiency
(time alone / slower of the two): pure Python arithmetic (no memory traffic), a BLAS
matrix product on one thread (the cores' vector units and caches) and a streaming sum over
400 MB (the memory bus). Near 100 % for all three: the cores are real and not shared, so
a cohort's lower efficiency is the job's.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np


def _python(_: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(15_000_000):
        total += i * i % 7
    return time.perf_counter() - start


def _blas(_: int) -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((1500, 1500))
    with threadpool_limits(limits=1):
        start = time.perf_counter()
        for _ in range(6):
            a @ a
    return time.perf_counter() - start


def _stream(_: int) -> float:
    a = np.ones(50_000_000)
    start = time.perf_counter()
    for _ in range(10):
        a.sum()
    return time.perf_counter() - start


def main() -> None:
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
    for name, work in (("pure Python", _python), ("BLAS, 1 thread", _blas), ("streaming sum", _stream)):
        alone = work(0)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            both = pool.map(work, [0, 1])
        print(f"{name:<15s} alone {alone:.2f} s, two at once {both[0]:.2f} / {both[1]:.2f} s: "
              f"efficiency {alone / max(both):.0%}")


if __name__ == "__main__":
    main()
