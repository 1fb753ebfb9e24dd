"""Progress bars (tqdm) for long work; silent when disabled or when stderr is not a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm


@contextmanager
def epoch_bar(total: int, *, enabled: bool = True, desc: str = "") -> Iterator[Callable | None]:
    """Yield a callback ``done(epochs_completed)`` that moves a bar, or None when disabled."""
    if not enabled:
        yield None
        return
    bar = tqdm(total=total, desc=desc, unit="epoch", leave=False, dynamic_ncols=True, disable=None)
    try:
        yield lambda done: bar.update(done - bar.n)
    finally:
        bar.close()


def bar(iterable, *, total: int | None = None, desc: str = "", enabled: bool = True):
    """tqdm over an iterable (disabled off-terminal)."""
    return tqdm(
        iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
        disable=None if enabled else True,
    )
