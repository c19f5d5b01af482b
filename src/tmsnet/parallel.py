"""Where work runs: in this process, on local processes, or on a Dask cluster.

This is the one place that decides it. Science functions know nothing about
it: :func:`map_tasks` takes a plain, picklable top-level function and a list
of items, runs ``function(item)`` for each on the chosen :class:`Backend` and
hands every result back *as soon as it finishes* (``on_result``), with a tqdm
progress bar and an ETA on stderr.

Backends
--------
``serial``
    In this process, one item after another (``jobs=1``, the default).
``processes``
    ``jobs`` local worker processes (:class:`concurrent.futures.ProcessPoolExecutor`,
    ``forkserver`` start method on Linux so that workers do not inherit the
    parent's threads). :func:`forked_backend` starts them by ``fork`` instead, for
    short work on what this process has already imported and read (a report's
    figures): a forked worker is ready in milliseconds, a fresh one imports for seconds.
``dask``
    An existing ``dask.distributed`` scheduler (``dask_scheduler="tcp://host:8786"``)
    or a :class:`distributed.Client` you pass in -- e.g. one connected to a
    ``LocalCluster`` or to a SLURM/PBS cluster from ``dask-jobqueue``
    (see ``docs/cluster.md``). Workers must see the same file system paths.

A task that raises does not stop the others: its exception is caught and
returned as :class:`TaskResult` with ``ok=False`` (the traceback as text), so
callers decide how to record it. Results are returned in input order whatever
the order of completion, so the output of a run does not depend on the
backend or the number of workers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from tqdm.auto import tqdm

from tmsnet.exceptions import InvalidParameterError, SchedulerConnectionError

__all__ = ["DASK_WORKER_SETTINGS", "Backend", "TaskResult", "available_workers", "choose_backend",
           "forked_backend", "map_tasks", "map_values"]

#: Dask settings for the workers that run tmsnet jobs (docs/cluster.md gives them as a
#: YAML file; ``dask.config.set(DASK_WORKER_SETTINGS)`` around a ``LocalCluster``).
#: A job is one long task whose arrays are allocated and freed all the time, on workers
#: that have no core to spare: the nanny's ``MALLOC_TRIM_THRESHOLD_`` hands every freed
#: array back to the kernel (0.5-0.9 s more a full-size scan), and the worker's own
#: event loop wakes about 160 times a second (the statistical profiler every 10 ms, the
#: blocked-loop tick every 20 ms, the memory monitor every 100 ms, the system monitor
#: every 500 ms), each time taking the GIL from the job. Measured on 8 full-size scans,
#: 2 workers on 2 cores, interleaved (docs/benchmarks.md): 7-11 % less wall time with the
#: monitors below than with Dask's defaults. The memory limit is then checked once a
#: second instead of ten times (a job's peak is ~1.6 GB, far below a worker's memory).
DASK_WORKER_SETTINGS: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
}

BackendKind = Literal["serial", "processes", "dask"]


@dataclass(frozen=True)
class Backend:
    """Where :func:`map_tasks` runs its tasks.

    Attributes
    ----------
    kind : {"serial", "processes", "dask"}
        See the module docstring.
    n_workers : int
        Local processes (``processes``); 1 for ``serial``; for ``dask`` the
        number of workers is the cluster's.
    address : str or None
        Scheduler address (``dask`` without a client).
    start_method : {"forkserver", "fork"}
        How ``processes`` workers start (see the module docstring); ``spawn`` where
        the platform has neither.
    """

    kind: BackendKind = "serial"
    n_workers: int = 1
    address: str | None = None
    start_method: Literal["forkserver", "fork"] = "forkserver"

    def describe(self) -> str:
        """One line for logs and provenance."""
        if self.kind == "serial":
            return "serial (this process)"
        if self.kind == "processes":
            return f"{self.n_workers} local processes"
        return f"dask.distributed scheduler {self.address or '(client given)'}"


@dataclass
class TaskResult:
    """Outcome of one task.

    Attributes
    ----------
    index : int
        Position of the item in the input list.
    ok : bool
        False when the function raised (or its worker died).
    value : object
        Return value (None when not ``ok``).
    error : str or None
        ``"ExceptionType: message"`` when not ``ok``.
    traceback : str or None
        Formatted traceback when not ``ok``.
    seconds : float
        Wall time from submission to completion (s).
    exception : BaseException or None
        The exception itself when not ``ok`` (from a worker process: its pickled copy,
        of the same type).
    """

    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    traceback: str | None = field(default=None, repr=False)
    seconds: float = 0.0
    exception: BaseException | None = field(default=None, repr=False)


def choose_backend(*, jobs: int = 1, dask_scheduler: str | None = None) -> Backend:
    """The backend for the ``--jobs`` / ``--dask-scheduler`` options.

    Parameters
    ----------
    jobs : int
        Local worker processes; 1 runs serially in this process.
    dask_scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler; overrides ``jobs``.

    Returns
    -------
    Backend

    Raises
    ------
    InvalidParameterError
        If ``jobs`` < 1 or both options are given.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidParameterError(f"--jobs must be an integer >= 1, got {jobs!r}.")
    if dask_scheduler:
        if jobs != 1:
            raise InvalidParameterError(
                "Give either --jobs (local processes) or --dask-scheduler (a running Dask "
                "cluster), not both; the cluster decides how many workers run."
            )
        return Backend(kind="dask", n_workers=0, address=str(dask_scheduler))
    if jobs == 1:
        return Backend()
    return Backend(kind="processes", n_workers=jobs)


def available_workers(n_jobs: int | None = None, *, limit: int = 8) -> int:
    """How many workers ``n_jobs`` means: itself (at least 1), or the CPUs this process may use.

    Parameters
    ----------
    n_jobs : int or None
        Workers asked for; None: the CPUs in this process's affinity mask (a
        batch system's allocation), at most ``limit``.
    limit : int
        Cap of the automatic choice.

    Returns
    -------
    int
    """
    if n_jobs is not None:
        return max(1, int(n_jobs))
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        available = os.cpu_count() or 1
    return max(1, min(available, limit))


def forked_backend(n_workers: int) -> Backend:
    """Up to ``n_workers`` local processes forked from this one, or serial where they cannot be.

    For short tasks on objects this process already holds: the workers inherit its
    imports and memory, so they start in milliseconds. Serial when ``n_workers`` is 1,
    where the platform cannot fork, and inside a daemonic process (a Dask worker),
    which may not have children.

    Parameters
    ----------
    n_workers : int
        Processes wanted.

    Returns
    -------
    Backend
    """
    if (n_workers <= 1 or "fork" not in multiprocessing.get_all_start_methods()
            or multiprocessing.current_process().daemon):
        return Backend()
    return Backend(kind="processes", n_workers=int(n_workers), start_method="fork")


def _failure(index: int, exc: BaseException, started: float) -> TaskResult:
    return TaskResult(
        index=index, ok=False, error=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)), seconds=time.perf_counter() - started,
        exception=exc,
    )


def _process_context(backend: Backend) -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context(backend.start_method if backend.start_method in methods
                                       else "spawn")


def _check_tls_configured(address: str) -> None:
    """A ``tls://`` scheduler needs client credentials in dask's configuration (docs/cluster.md)."""
    from distributed.security import Security

    security = Security()  # reads distributed.comm.tls.* of dask's configuration
    if address.startswith("tls://") and not (security.tls_ca_file and security.tls_client_cert):
        raise SchedulerConnectionError(
            f"The Dask scheduler at {address} uses TLS but no client certificate is configured: "
            "set distributed.comm.tls.ca-file and distributed.comm.tls.client.cert / .key in "
            "dask's configuration (see docs/cluster.md, 'A scheduler shared with others: TLS').")


def _connect(address: str, timeout_s: float) -> Any:
    from distributed import Client

    # Checked before the Client exists: a half-built Client prints a traceback when collected.
    _check_tls_configured(address)
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerConnectionError(
            f"Cannot connect to the Dask scheduler at {address} ({exc}). Check that the scheduler "
            "is running and reachable (e.g. 'dask scheduler' prints its address, "
            "tcp://host:8786), or use --jobs N for local processes."
        ) from exc


def map_tasks(
    function: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    backend: Backend | None = None,
    client: Any = None,
    labels: Sequence[str] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    progress: bool = True,
    desc: str = "tmsnet",
    unit: str = "task",
    connect_timeout_s: float = 30.0,
) -> list[TaskResult]:
    """Run ``function(item)`` for every item on one backend.

    Parameters
    ----------
    function : callable
        A top-level (picklable) function of one argument.
    items : sequence
        Picklable arguments, one per task.
    backend : Backend, optional
        Where to run (default serial); ignored when ``client`` is given.
    client : distributed.Client, optional
        An existing Dask client (LocalCluster, dask-jobqueue...); it is not closed.
    labels : sequence of str, optional
        A short name per item (Dask task keys and progress messages).
    on_result : callable, optional
        Called in this process with each :class:`TaskResult` as soon as the
        task finishes (completion order).
    progress : bool
        Show a tqdm bar with elapsed time and ETA on stderr.
    desc, unit : str
        Progress bar text.
    connect_timeout_s : float
        Seconds to wait for a Dask scheduler.

    Returns
    -------
    list of TaskResult
        In input order.

    Raises
    ------
    SchedulerConnectionError
        If the Dask scheduler cannot be reached.
    """
    items = list(items)
    if labels is None:
        labels = [str(i) for i in range(len(items))]
    if len(labels) != len(items):
        raise InvalidParameterError("map_tasks: give one label per item.")
    backend = backend or Backend()
    results: list[TaskResult | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, unit=unit, file=sys.stderr, disable=not progress,
               dynamic_ncols=True)

    def finish(result: TaskResult) -> None:
        results[result.index] = result
        bar.update()
        if on_result is not None:
            on_result(result)

    started = time.perf_counter()
    try:
        if not items:
            return []
        if client is not None or backend.kind == "dask":
            _run_dask(function, items, labels, client, backend, finish, started, connect_timeout_s)
        elif backend.kind == "processes":
            _run_processes(function, items, backend, finish, started)
        else:
            for index, item in enumerate(items):
                t0 = time.perf_counter()
                try:
                    value = function(item)
                except Exception as exc:  # noqa: BLE001 - recorded, others go on
                    finish(_failure(index, exc, t0))
                else:
                    finish(TaskResult(index=index, ok=True, value=value,
                                      seconds=time.perf_counter() - t0))
    finally:
        bar.close()
    return [r for r in results if r is not None]


def map_values(function: Callable[[Any], Any], items: Sequence[Any], *, backend: Backend | None = None,
               progress: bool = False, desc: str = "tmsnet", unit: str = "task") -> list[Any]:
    """:func:`map_tasks` for work that must all succeed: the values, in input order.

    Parameters
    ----------
    function, items, backend, progress, desc, unit
        As for :func:`map_tasks` (no progress bar by default).

    Returns
    -------
    list
        ``function(item)`` of every item.

    Raises
    ------
    Exception
        The first failed task's own exception (in input order), its type kept across
        processes, so that a tmsnet error surfaces as if the work had run here.
    """
    results = map_tasks(function, items, backend=backend, progress=progress, desc=desc, unit=unit)
    for result in results:
        if not result.ok:
            raise result.exception if result.exception is not None else RuntimeError(result.error)
    return [result.value for result in results]


def _run_processes(function: Callable[[Any], Any], items: list[Any], backend: Backend,
                   finish: Callable[[TaskResult], None], started: float) -> None:
    # Forked workers share this process's memory until they write to it; the garbage
    # collector's first pass in a worker would touch (and so copy) every object. Frozen
    # objects are left out of collection (the gc.freeze recipe of the Python docs).
    frozen = backend.start_method == "fork"
    if frozen:
        gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=min(backend.n_workers, len(items)),
                                 mp_context=_process_context(backend)) as pool:
            futures = {pool.submit(function, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                index = futures[future]
                try:
                    finish(TaskResult(index=index, ok=True, value=future.result(),
                                      seconds=time.perf_counter() - started))
                except Exception as exc:  # noqa: BLE001 - recorded, others go on
                    finish(_failure(index, exc, started))
    finally:
        if frozen:
            gc.unfreeze()


def _run_dask(
    function: Callable[[Any], Any],
    items: list[Any],
    labels: Sequence[str],
    client: Any,
    backend: Backend,
    finish: Callable[[TaskResult], None],
    started: float,
    connect_timeout_s: float,
) -> None:
    from distributed import as_completed as dask_as_completed

    own_client = client is None
    if own_client:
        client = _connect(str(backend.address), connect_timeout_s)
    token = uuid.uuid4().hex[:8]
    try:
        futures = {}
        for index, (item, label) in enumerate(zip(items, labels, strict=True)):
            future = client.submit(function, item, key=f"tmsnet-{label}-{token}", pure=False)
            futures[future.key] = (future, index)
        for future in dask_as_completed([f for f, _ in futures.values()], loop=client.loop):
            index = futures[future.key][1]
            try:
                value = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded, others go on
                finish(_failure(index, exc, started))
            else:
                finish(TaskResult(index=index, ok=True, value=value,
                                  seconds=time.perf_counter() - started))
            future.release()
    finally:
        if own_client:
            client.close()
