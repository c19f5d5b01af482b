"""tmsnet.parallel: same results on every backend, failures isolated, results as they finish."""

import gc
import multiprocessing
import os
import time

import pytest

from tmsnet.exceptions import InvalidParameterError, SchedulerConnectionError
from tmsnet.parallel import (
    Backend,
    available_workers,
    choose_backend,
    forked_backend,
    map_tasks,
    map_values,
)

#: Set by a test after import: a forked worker sees it, a fresh (forkserver) one does not.
_STATE = {"value": "as imported"}


def _square_or_fail(x):
    if x == 3:
        raise ValueError("three is refused")
    time.sleep(0.05 * (5 - x))  # later items finish first on parallel backends
    return x * x


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      silence_logs=40) as local:
        yield local


def _check(results, seen):
    assert [r.index for r in results] == list(range(6))
    assert [r.value for r in results if r.ok] == [0, 1, 4, 16, 25]
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and failed[0].index == 3
    assert failed[0].error == "ValueError: three is refused"
    assert "_square_or_fail" in failed[0].traceback
    assert sorted(seen) == list(range(6))  # on_result saw every task once


@pytest.mark.parametrize("backend", [Backend(), Backend(kind="processes", n_workers=2),
                                     Backend(kind="processes", n_workers=2, start_method="fork")],
                         ids=["serial", "processes", "forked"])
def test_local_backends_keep_order_and_isolate_failures(backend):
    seen = []
    results = map_tasks(_square_or_fail, range(6), backend=backend, progress=False,
                        on_result=lambda r: seen.append(r.index))
    _check(results, seen)
    if backend.kind == "serial":
        assert seen == list(range(6))


def _state(_):
    return _STATE["value"]


def _kind_of_forked_backend(queue):
    queue.put(forked_backend(2).kind)


def test_forked_workers_inherit_this_process_and_leave_nothing_frozen(monkeypatch):
    monkeypatch.setitem(_STATE, "value", "set at run time")
    forked = forked_backend(2)
    assert (forked.kind, forked.n_workers, forked.start_method) == ("processes", 2, "fork")
    results = map_tasks(_state, range(3), backend=forked, progress=False)
    assert [r.value for r in results] == ["set at run time"] * 3
    fresh = map_tasks(_state, range(2), backend=Backend(kind="processes", n_workers=2), progress=False)
    assert [r.value for r in fresh] == ["as imported"] * 2
    assert gc.get_freeze_count() == 0  # frozen for the fork only
    assert forked_backend(1) == Backend()


def _refuse_three(x):
    if x == 3:
        raise InvalidParameterError("three is refused")
    return x * x


@pytest.mark.parametrize("backend", [Backend(), forked_backend(2)], ids=["serial", "forked"])
def test_map_values_returns_values_or_raises_the_tasks_own_error(backend):
    assert map_values(_refuse_three, [2, 1, 4], backend=backend) == [4, 1, 16]
    with pytest.raises(InvalidParameterError, match="three is refused"):  # its type, from a worker
        map_values(_refuse_three, [1, 3, 2], backend=backend)


def test_forked_backend_is_serial_inside_a_daemonic_process():
    # a Dask worker is daemonic: multiprocessing refuses it children
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_kind_of_forked_backend, args=(queue,), daemon=True)
    child.start()
    kind = queue.get(timeout=30)
    child.join(timeout=30)
    assert kind == "serial"


def test_available_workers():
    assert available_workers(3) == 3 and available_workers(0) == 1
    automatic = available_workers()
    assert 1 <= automatic <= min(8, len(os.sched_getaffinity(0)))
    assert available_workers(limit=1) == 1


def test_dask_scheduler_address_and_client(cluster):
    from distributed import Client

    seen = []
    backend = choose_backend(dask_scheduler=cluster.scheduler_address)
    assert backend.kind == "dask"
    results = map_tasks(_square_or_fail, range(6), backend=backend, progress=False,
                        labels=[f"item{i}" for i in range(6)], on_result=lambda r: seen.append(r.index))
    _check(results, seen)
    with Client(cluster) as client:
        seen = []
        _check(map_tasks(_square_or_fail, range(6), client=client, progress=False,
                         on_result=lambda r: seen.append(r.index)), seen)
        assert client.status == "running"  # a client given by the caller is not closed


def test_progress_bar_reports_each_task(capsys):
    map_tasks(_square_or_fail, [4, 5], progress=True, desc="demo", unit="subject")
    err = capsys.readouterr().err
    assert "demo" in err and "2/2" in err and "subject" in err


def test_choose_backend_and_unreachable_scheduler():
    assert choose_backend() == Backend()
    assert choose_backend(jobs=3) == Backend(kind="processes", n_workers=3)
    with pytest.raises(InvalidParameterError, match="--jobs"):
        choose_backend(jobs=0)
    with pytest.raises(InvalidParameterError, match="not both"):
        choose_backend(jobs=2, dask_scheduler="tcp://127.0.0.1:8786")
    backend = choose_backend(dask_scheduler="tcp://127.0.0.1:1")
    with pytest.raises(SchedulerConnectionError, match="Cannot connect to the Dask scheduler"):
        map_tasks(_square_or_fail, [1], backend=backend, progress=False, connect_timeout_s=1)


def test_dask_jobqueue_slurm_cluster_is_built_without_submitting():
    jobqueue = pytest.importorskip("dask_jobqueue")
    # The snippet of docs/cluster.md, minus cluster.scale() (which would call sbatch).
    cluster = jobqueue.SLURMCluster(
        queue="normal", account="mylab", cores=4, processes=1, memory="16GB",
        walltime="02:00:00", job_extra_directives=["--cpus-per-task=4"],
        worker_extra_args=["--nthreads", "1"], scheduler_options={"dashboard_address": None},
    )
    try:
        script = cluster.job_script()
        assert "#SBATCH -p normal" in script and "#SBATCH -A mylab" in script
        assert "#SBATCH -t 02:00:00" in script and "#SBATCH --cpus-per-task=4" in script
        assert "distributed.cli.dask_worker" in script or "dask-worker" in script
        assert cluster.scheduler_address.startswith("tcp://")
        assert len(cluster.workers) == 0  # nothing submitted
    finally:
        cluster.close()


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _worker_state(dask_worker):
    """What the settings change, as a worker sees it (run on the worker)."""
    callbacks = dask_worker.periodic_callbacks
    return {"malloc": os.environ.get("MALLOC_TRIM_THRESHOLD_"), "profile": "profile" in callbacks,
            "tick_ms": callbacks["tick"].callback_time,
            "memory_ms": callbacks["memory_monitor"].callback_time,
            "monitor_ms": callbacks["monitor"].callback_time}


def test_the_documented_worker_config_is_the_packages_and_reaches_a_real_worker(monkeypatch):
    """docs/cluster.md's YAML == DASK_WORKER_SETTINGS, and a LocalCluster worker runs with it."""
    import copy
    from pathlib import Path

    import dask
    import yaml
    from distributed import Client, LocalCluster

    from tmsnet.parallel import DASK_WORKER_SETTINGS

    text = (Path(__file__).parents[1] / "docs" / "cluster.md").read_text()
    block = text.split("<!-- worker-config -->", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    config = yaml.safe_load(block)
    assert _flat(config) == DASK_WORKER_SETTINGS
    # a nanny writes the variable into its own process's environment: start clean
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    defaults = {"malloc": "65536", "profile": True, "tick_ms": 20, "memory_ms": 100, "monitor_ms": 500}
    tuned = {"malloc": None, "profile": False, "tick_ms": 1000, "memory_ms": 1000, "monitor_ms": 5000}
    # a YAML file in ~/.config/dask is deep-merged into the defaults (dask.config.update)
    merged = dask.config.update(copy.deepcopy(dask.config.config), config)
    for settings, expected in (({}, defaults), (merged, tuned), (DASK_WORKER_SETTINGS, tuned)):
        with dask.config.set(settings), LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                                     dashboard_address=None) as cluster, \
                Client(cluster) as client:
            states = list(client.run(_worker_state).values())
        assert len(states) == 1
        assert {k: (float(v) if k.endswith("_ms") else v) for k, v in states[0].items()} == expected
        monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
