"""Where cells run: in this process, in local worker processes, or on a Dask cluster.

Every back-end has the same interface, ``submit_all(fn, items) -> iterator of (index, result)``
in completion order; the caller (``runner.run_cells``) caches each result as it arrives, so an
interrupted or failed run resumes without recomputing what finished. Results do not depend on
the back-end: a chunk of seeds is computed by the same code wherever it runs, and seeds are
independent of each other.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
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

    def submit_all(self, fn: Callable, items: Sequence,
                   costs: Sequence[float] | None = None) -> Iterator[tuple[int, object]]:
        for i, item in enumerate(items):
            yield i, fn(item)

    def close(self) -> None:
        pass


class Processes:
    """A pool of local worker processes (one per core by default).

    If a worker dies (killed, out of memory) or an item runs far longer than its expected time
    (``costs``: seconds on a fast machine; the timeout is ``min_timeout`` plus 100 times that, and
    plus the largest of them, since an item may queue behind another), the pool is rebuilt and the
    items that had not finished are submitted again, up to ``retries`` times. Workers ignore
    SIGINT (the main process decides), and die with the main process; when the caller stops
    (an exception, an interrupt, or closing the iterator) every worker is terminated at once and
    queued items are cancelled.
    """

    name = "processes"

    def __init__(self, workers: int | None = None, retries: int = 2, min_timeout: float = 120.0):
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise ValueError(f"--workers {workers} is invalid: use a positive integer")
        self.workers = workers or os.cpu_count() or 1
        self.retries = retries
        self.min_timeout = min_timeout

    def submit_all(self, fn: Callable, items: Sequence,
                   costs: Sequence[float] | None = None) -> Iterator[tuple[int, object]]:
        costs = list(costs) if costs is not None else [0.0] * len(items)
        worst = max(costs, default=0.0)
        pending = list(range(len(items)))
        attempt = 0
        while pending:
            done_here: set[int] = set()
            pool = ProcessPoolExecutor(
                max_workers=min(self.workers, len(pending)), mp_context=_context(),
                initializer=_worker_init, initargs=(os.getpid(),),
            )
            try:
                futures = {pool.submit(fn, items[i]): i for i in pending}
                started: dict = {}
                while futures:
                    finished, _ = wait(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                    now = time.monotonic()
                    for fut in finished:
                        i = futures.pop(fut)
                        result = fut.result()
                        done_here.add(i)
                        yield i, result
                    for fut, i in futures.items():
                        if fut.running():
                            since = started.setdefault(fut, now)
                            if now - since > self.min_timeout + 100 * (costs[i] + worst):
                                raise _Hung(i)
            except (BrokenProcessPool, _Hung) as exc:
                attempt += 1
                if attempt > self.retries:
                    what = ("a chunk ran far beyond its expected time" if isinstance(exc, _Hung)
                            else "worker processes died")
                    raise RuntimeError(
                        f"{what} {attempt} times; rerun to resume from the cache"
                    ) from None
            finally:
                _stop(pool)
            pending = [i for i in pending if i not in done_here]

    def close(self) -> None:
        pass


POLL_SECONDS = 0.5  # how often the pool is checked for hung items


class _Hung(Exception):
    """An item ran far beyond its expected time: its worker is presumed hung."""


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end every worker now (no waiting for running items)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:  # first: nothing the pool does next can wait on a running item
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 5
    for p in processes:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(timeout=1)


def _context():
    """None (the default start method), or spawn once torch is loaded here: a child forked from
    a process whose torch thread pools have run can hang in its first parallel torch call."""
    if "torch" in sys.modules:
        import multiprocessing

        return multiprocessing.get_context("spawn")
    return None


def _worker_init(parent: int) -> None:
    """In each worker: leave SIGINT to the main process, die on SIGTERM, die with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:  # Linux: the kernel kills us when the parent dies
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)

    def watch() -> None:  # elsewhere: notice that we were orphaned
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="actdiag-parent-watch").start()


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

    def submit_all(self, fn: Callable, items: Sequence,
                   costs: Sequence[float] | None = None) -> Iterator[tuple[int, object]]:
        from distributed import as_completed

        futures = [self.client.submit(fn, item, pure=False) for item in items]
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                yield index[fut.key], fut.result()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

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
