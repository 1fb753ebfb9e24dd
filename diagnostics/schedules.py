"""When to record: schedules of epochs, as ``Schedule`` objects or short strings.

``every:K`` (or just ``K``) every K epochs; ``log:N`` at most N log-spaced epochs;
``list:E1,E2,...`` (or ``E1,E2,...``) exactly those; ``all`` every epoch; ``none`` never.
Epoch 0 means "at initialisation, before any update"; epoch e >= 1 means "after e epochs".
``every:``, ``log:`` and ``all`` always include the last epoch; ``list:`` gives exactly its epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCHEDULE_FORMS = "all, none, every:K (or K), log:N, list:E1,E2,... (or E1,E2,...)"


@dataclass(frozen=True)
class Schedule:
    """A schedule as data: ``Schedule.at(0, 100)``, ``Schedule.log(200)``, ``Schedule.every(5)``."""

    kind: str  # every | log | list | none
    arg: int | tuple[int, ...] = ()  # K, N, or the epochs of a list

    @classmethod
    def every(cls, k: int) -> Schedule:
        """Every k epochs, and the last."""
        return cls("every", int(k))

    @classmethod
    def log(cls, n: int) -> Schedule:
        """At most n log-spaced epochs, the last always."""
        return cls("log", int(n))

    @classmethod
    def at(cls, *epochs: int) -> Schedule:
        """Exactly these epochs."""
        return cls("list", tuple(int(e) for e in epochs))

    @classmethod
    def never(cls) -> Schedule:
        """No epoch."""
        return cls("none")

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        if self.kind == "list":
            return "list:" + ",".join(map(str, self.arg))
        return f"{self.kind}:{self.arg}"

    def epochs(self, budget: int, *, first: int = 0) -> np.ndarray:
        """The epochs in ``[first, budget]`` this schedule selects (see ``schedule``)."""
        return schedule(str(self), budget, first=first)


def schedule(spec: str | int | Schedule | None, epochs: int, *, first: int = 0) -> np.ndarray:
    """Sorted unique epochs in ``[first, epochs]`` that ``spec`` selects.

    Args:
        spec: a ``Schedule``, a schedule string (see module docstring) or an int K (every K).
        epochs: the run's epoch budget.
        first: the earliest epoch the caller can record (0 for instruments, 1 for the loss).

    Returns:
        int64 array of epochs.
    """
    if isinstance(spec, Schedule):
        spec = str(spec)
    if spec is None or spec == "none":
        return np.zeros(0, dtype=np.int64)
    text = str(spec).strip()
    kind, _, arg = text.partition(":")
    if not arg:
        kind, arg = ("list", text) if "," in text else ("every", text)
        if text == "all":
            kind, arg = "every", "1"
    try:
        if kind == "every":
            k = int(arg)
            if k < 1:
                raise ValueError
            picked = np.arange(0, epochs + 1, k)
            picked = picked[picked >= first]
        elif kind == "log":
            n = int(arg)
            if n < 1:
                raise ValueError
            picked = _log_spaced(n, epochs, first)
        elif kind == "list":
            picked = np.array([int(v) for v in arg.split(",") if v.strip()], dtype=np.int64)
            if picked.size == 0 or (picked < 0).any():
                raise ValueError
            return np.unique(picked[(picked >= first) & (picked <= epochs)])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"schedule {text!r} is invalid: use {SCHEDULE_FORMS}") from None
    return np.unique(np.append(picked, epochs)).astype(np.int64)


def _log_spaced(n: int, epochs: int, first: int) -> np.ndarray:
    """At most n epochs, the last always: 0 (when first == 0) and then log-spaced up to it."""
    lo = max(first, 1)
    if n == 1 or epochs < lo:
        return np.array([epochs], dtype=np.int64)
    if first == 0:
        return np.append(0, _log_spaced(n - 1, epochs, 1))
    return np.unique(np.round(np.geomspace(lo, epochs, n)).astype(np.int64))
