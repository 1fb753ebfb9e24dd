"""Where cells run: in this process, in local worker processes, or on a Dask cluster.

Every back-end has the same interface, ``submit_all(fn, items) -> iterator of (index, result)``
in completion order; the caller (``runner.run_cells``) caches each result as it arrives, so an
interrupted or failed run resumes without recomputing what finished. Results do not depend on
the back-end: a chunk of seeds is computed by the same code wherever it runs, and seeds are
independent of each other.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

EXECUTORS = ("processes", "sequential", "dask", "dask-local")
CONNECT_SECONDS = 5  # an unreachable Dask scheduler is an error after this long
DASK_INSTALL = "pip install 'activation-diagnostics[dask]'"


class Sequential:
    """Run each item in this process, in order."""

    name = "sequential"
    workers = 1

    def submit_all(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


class Processes:
    """A pool of local worker processes (one per core by default).

    If a worker dies (killed, out of memory), the pool is rebuilt and the items that had not
    finished are submitted again, up to ``retries`` times.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, retries: int = 2):
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise ValueError(f"--workers {workers} is invalid: use a positive integer")
        self.workers = workers or os.cpu_count() or 1
        self.retries = retries

    def submit_all(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        pending = list(range(len(items)))
        attempt = 0
        while pending:
            done_here: list[int] = []
            try:
                with ProcessPoolExecutor(max_workers=min(self.workers, len(pending))) as pool:
                    futures = {pool.submit(fn, items[i]): i for i in pending}
                    while futures:
                        finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                        for fut in finished:
                            i = futures.pop(fut)
                            result = fut.result()
                            done_here.append(i)
                            yield i, result
            except BrokenProcessPool:
                attempt += 1
                if attempt > self.retries:
                    raise RuntimeError(
                        f"worker processes died {attempt} times; rerun to resume from the cache"
                    ) from None
            pending = [i for i in pending if i not in set(done_here)]

    def close(self) -> None:
        pass


class Dask:
    """A Dask cluster: an existing scheduler (``tcp://HOST:PORT``) or a new LocalCluster.

    Dask re-runs the tasks of a worker it loses, so a sweep survives a worker that dies.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError(
                f"--executor dask needs Dask's distributed scheduler: {DASK_INSTALL}"
            ) from None
        self.name = "dask" if scheduler else "dask-local"
        self._cluster = None
        if scheduler:
            try:
                self.client = Client(scheduler, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
                raise ValueError(
                    f"--scheduler {scheduler!r}: no Dask scheduler answered within "
                    f"{CONNECT_SECONDS} s ({reason}); check the address, tcp://HOST:PORT"
                ) from None
        else:
            self._cluster = LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                processes=True, dashboard_address=None,
            )
            self.client = Client(self._cluster)
        self.workers = len(self.client.scheduler_info().get("workers", {})) or 1

    def submit_all(self, fn: Callable, items: Sequence) -> Iterator[tuple[int, object]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            yield index[fut.key], fut.result()

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(kind: str = "processes", *, workers: int | None = None,
                  scheduler: str | None = None):
    """An executor by name: processes (default), sequential, dask (needs scheduler), dask-local."""
    if kind == "sequential":
        return Sequential()
    if kind == "processes":
        return Processes(workers)
    if kind == "dask":
        if not scheduler:
            raise ValueError("--executor dask needs --scheduler tcp://HOST:PORT")
        return Dask(scheduler, workers)
    if kind == "dask-local":
        return Dask(None, workers)
    raise ValueError(f"unknown executor {kind!r}: use one of {', '.join(EXECUTORS)}")
