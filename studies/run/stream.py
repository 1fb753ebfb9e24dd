"""Instruments on a second thread: the monitor's passes and its metrics table are made and
written while training goes on.

``train`` hands a monitor fresh copies of the parameters at each recorded epoch and the compiled
engine releases the GIL while it trains, so a worker thread can run the monitor's full pass and
encode that recording's rows (``outputs.metrics_chunks``, epoch by epoch as they are made) on a
second core at the same time. The values, the events and the file are the ones observing in
line and writing afterwards gives: one worker takes the recordings in order.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import numpy as np

from diagnostics.monitor import Monitor
from studies.run.estimate import SPARE_ARRAYS, stream_depth
from studies.run.outputs import CHUNK_ROWS, metrics_chunks, recording_groups, write_metrics

Array = np.ndarray
_DONE, _ABORT = object(), object()


class _Aborted(Exception):
    """Raised inside the worker's table stream, so that the half-written file is removed."""


class StreamedMonitor:
    """A ``Monitor`` for ``train`` whose passes and metrics file happen on a worker thread.

    Use as a context manager around ``train``: on leaving it normally the worker finishes the
    queued recordings and the file is moved into place (``path``); on an exception (Ctrl-C
    included) the worker stops and nothing is left at ``path`` but what was there before.
    Read the monitor (``events``, ``metric``, ...) only after that: the worker fills it. A
    monitor made with ``keep=False`` drops each recording once its rows are written.

    Args:
        monitor: the monitor to drive (its values fill in as the worker observes).
        path: the metrics file (``metrics.parquet`` or ``metrics.csv``).
        columns: the configuration columns that lead every row (``outputs.config_columns``).
        metrics_format: ``parquet`` or ``csv``.
        chunk_rows: rows of a chunk the writer encodes at once.
    """

    def __init__(self, monitor: Monitor, path: Path, columns: dict,
                 metrics_format: str = "parquet", chunk_rows: int = CHUNK_ROWS):
        self.monitor, self.path = monitor, Path(path)
        self._columns, self._format, self._rows = columns, metrics_format, chunk_rows
        depth = stream_depth(monitor.layout.n_params, monitor.seeds.size)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._spare: list[Array] = []  # appended by the worker, popped by train (atomic)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._write, name="metrics-writer", daemon=True)
        self._worker.start()

    @property
    def epochs(self) -> Array:
        return self.monitor.epochs

    def observe(self, epoch: int, theta: Array, alive: Array, prev: Array | None) -> None:
        """Queue one observation (``train``'s arrays are not written to after the call)."""
        self._put((epoch, theta, alive, prev))

    def buffer(self, shape: tuple[int, ...], dtype) -> Array:
        """An array for ``train`` to fill and hand to ``observe``: one the worker has finished
        with when there is one of that shape and dtype, else a new one."""
        try:
            array = self._spare.pop()
        except IndexError:
            return np.empty(shape, dtype)
        return array if array.shape == tuple(shape) and array.dtype == dtype else np.empty(
            shape, dtype)

    def close(self) -> Path:
        """Wait for the queued recordings and the file; raise what the worker raised."""
        try:
            self._put(_DONE)
            self._worker.join()
        except BaseException:  # e.g. Ctrl-C while the last rows are written: no partial file
            self.abort()
            raise
        if self._error is not None:
            raise self._error
        return self.path

    def abort(self) -> None:
        """Stop the worker at its next recording; the partial file is removed."""
        self._stop.set()
        while True:  # make room so that the worker sees the stop, then wait for it
            try:
                self._queue.put_nowait(_ABORT)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass
        self._worker.join()

    def __enter__(self) -> StreamedMonitor:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def _put(self, item) -> None:
        while True:  # never block on a worker that has failed
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write(self) -> None:
        try:
            write_metrics(self.path, self.monitor, self._columns, self._format,
                          chunks=self._tables())
        except _Aborted:
            pass
        except BaseException as exc:  # handed to the training thread
            self._error = exc

    def _tables(self):
        """The table's chunks, each as soon as the recordings it holds are made."""
        m = self.monitor
        index = {int(e): r for r, e in enumerate(m.epochs)}
        groups = recording_groups(m, self._rows)  # as write_metrics afterwards: the same file
        made = 0  # recordings [0, made) are final
        while True:
            item = self._queue.get()
            if item is _ABORT or self._stop.is_set():
                raise _Aborted()
            if item is _DONE:
                made = m.epochs.size  # the rest was not observed (no seed left, or settled)
            else:
                epoch, theta, alive, prev = item
                m.observe(epoch, theta, alive, prev)
                self._done_with(theta, prev)
                made = index[int(epoch)] + 1  # an epoch skipped (every seed diverged) is empty
            ready = [g for g in groups if g[1] <= made]
            groups = groups[len(ready):]
            if ready:
                yield from self._checked(metrics_chunks(m, self._columns, self._rows, ready))
                m.release(ready[-1][1])  # written: a monitor with keep=False drops them
            if item is _DONE:
                return

    def _done_with(self, *arrays: Array | None) -> None:
        """Hand observed arrays back for ``buffer`` (the monitor keeps no reference to them)."""
        for array in arrays:
            if array is not None and len(self._spare) < SPARE_ARRAYS:
                self._spare.append(array)

    def _checked(self, tables):
        for table in tables:
            if self._stop.is_set():
                raise _Aborted()
            yield table
