"""Run independent work items in parallel with Dask, results in input order.

>>> results = map_ordered(fn, items)                       # local cluster (processes)
>>> results = map_ordered(fn, items, scheduler="sync")     # in this process, no Dask
>>> results = map_ordered(fn, items, scheduler="tcp://host:8786")  # an existing scheduler
>>> results = map_ordered(fn, items, scheduler="host:8786")        # same (tcp:// added)

``"local"`` (the default) connects to ``$DASK_SCHEDULER_ADDRESS`` when that variable is set
(Dask's own convention for "the scheduler to use"), else starts a local cluster. A
scheduler that has no worker is an error after ``worker_timeout_s`` (default
:data:`DEFAULT_WORKER_TIMEOUT_S`), never a silent hang.

``fn`` must be a module-level function (it is pickled to the workers) and deterministic in
its item: give each item its own seed with :func:`spawn_seeds` (derived from one base seed
by ``numpy.random.SeedSequence``), never from worker-local state, so the results are
identical whatever the scheduler and the number of workers.

The local cluster uses processes with one thread each (xtrack kernels are serial and not
re-entrant across threads), no dashboard, and is closed afterwards. Starting it costs a few
seconds: with one worker or one item the work runs in this process instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from .errors import BeamlineInputError

T = TypeVar("T")
R = TypeVar("R")

SCHEDULERS = ("local", "sync")
#: environment variable naming the Dask scheduler to use (Dask's own name for it)
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: how long a remote scheduler may have no worker before the map fails [s]
DEFAULT_WORKER_TIMEOUT_S = 30.0
#: how long connecting to a remote scheduler may take [s]
CONNECT_TIMEOUT_S = 10.0
_HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")


def resolve_scheduler(scheduler: str | None) -> str:
    """``"sync"``, ``"local"`` or a scheduler URL (``tcp://host:port``) for ``scheduler``.

    ``None`` is ``"sync"``; ``"local"`` becomes ``$DASK_SCHEDULER_ADDRESS`` if set; a bare
    ``host:port`` gets ``tcp://``. Anything else is a :class:`BeamlineInputError`.
    """
    mode = "sync" if scheduler is None else str(scheduler).strip()
    if mode == "local":
        env = os.environ.get(SCHEDULER_ENV, "").strip()
        if env:
            mode = env
    if mode in SCHEDULERS:
        return mode
    if "://" in mode:
        return mode
    if _HOST_PORT.match(mode):
        return "tcp://" + mode
    raise BeamlineInputError(
        f"scheduler '{scheduler}' not understood: use 'local', 'sync' or a scheduler "
        "address such as tcp://host:8786 or host:8786"
    )


def default_workers() -> int:
    """Number of local worker processes by default: the CPU cores of this machine."""
    return max(1, os.cpu_count() or 1)


def spawn_seeds(base_seed: int, n: int) -> list[int]:
    """``n`` independent 63-bit seeds derived from ``base_seed`` (same inputs, same seeds)."""
    if base_seed < 0 or n < 0:
        raise BeamlineInputError("base seed and count must be >= 0")
    children = np.random.SeedSequence(int(base_seed)).spawn(n)
    return [int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children]


def map_ordered(
    fn: Callable[[T], R],
    items: Sequence[T],
    *,
    scheduler: str | None = "local",
    n_workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
    worker_timeout_s: float = DEFAULT_WORKER_TIMEOUT_S,
) -> list[R]:
    """``[fn(item) for item in items]``, computed in parallel, in input order.

    ``scheduler``: ``"local"`` (default; ``$DASK_SCHEDULER_ADDRESS`` if set, else a
    ``distributed.LocalCluster`` of ``n_workers`` processes, default
    :func:`default_workers`), ``"sync"`` or ``None`` (in this process), or the address of a
    running Dask scheduler (``tcp://host:port`` or ``host:port``), which must get a worker
    within ``worker_timeout_s`` [s]. ``on_done(i)`` is called in this process when item
    ``i`` has finished (in completion order), e.g. to advance a progress bar. An exception
    in ``fn`` is re-raised here.
    """
    items = list(items)
    if n_workers is not None and n_workers < 1:
        raise BeamlineInputError(f"n_workers must be >= 1, got {n_workers}")
    if not worker_timeout_s > 0:
        raise BeamlineInputError(f"worker_timeout_s must be > 0, got {worker_timeout_s}")
    mode = resolve_scheduler(scheduler)
    workers = n_workers or default_workers()
    if mode == "local" and (workers == 1 or len(items) <= 1):
        mode = "sync"
    if mode == "sync":
        out = []
        for i, item in enumerate(items):
            out.append(fn(item))
            if on_done is not None:
                on_done(i)
        return out
    if not items:
        return []
    return _map_distributed(fn, items, mode, min(workers, len(items)), on_done, worker_timeout_s)


def _map_distributed(
    fn: Callable[[T], R],
    items: list[T],
    mode: str,
    workers: int,
    on_done: Callable[[int], None] | None,
    worker_timeout_s: float,
) -> list[R]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if mode == "local":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,
        )
        client = Client(cluster)
    else:
        try:
            client = Client(mode, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise BeamlineInputError(f"cannot reach Dask scheduler {mode}: {exc}") from None
        try:
            client.wait_for_workers(1, timeout=worker_timeout_s)
        except TimeoutError:
            client.close()
            raise BeamlineInputError(
                f"Dask scheduler {mode} has no worker (waited {worker_timeout_s:g} s): start "
                f"one with 'dask worker {mode}', or use the local cluster"
            ) from None
    try:
        futures = [client.submit(fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        results: dict[int, R] = {}
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            if on_done is not None:
                on_done(i)
        return [results[i] for i in range(len(items))]
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
