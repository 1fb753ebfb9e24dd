"""Numbers as words: rates, medians and setup facts, formatted the same way everywhere."""

from __future__ import annotations

import math

from studies.stats.values import Epochs, Rate


def pct(share: float) -> str:
    """``37.2%``."""
    return "n/a" if share is None or math.isnan(share) else f"{100 * share:.1f}%"


def rate(r: Rate) -> str:
    """``37.2% (95% CI 34.2–40.3%), 372 of 1000 seeds``."""
    if r.n == 0:
        return "n/a (no seeds)"
    return (f"{pct(r.share)} (95% CI {100 * max(r.lo, 0):.1f}–{100 * min(r.hi, 1):.1f}%), "
            f"{r.count} of {r.n} seeds")


def share_ci(r: Rate) -> str:
    """``37.2% (95% CI 34.2–40.3%)``."""
    return f"{pct(r.share)} (95% CI {100 * max(r.lo, 0):.1f}–{100 * min(r.hi, 1):.1f}%)"


def epochs(e: Epochs) -> str:
    """A median number of epochs with its interval; a censored median says so."""
    tail = f"{e.reached} of {e.n} seeds reached it"
    if not e.measured:
        return f"more than {e.budget:,} epochs (fewer than half the seeds got there; {tail})"
    ci = f"95% CI {_bound(e.lo, e.budget)}–{_bound(e.hi, e.budget)}"
    return f"{e.median:,.0f} epochs ({ci}; {tail})"


def _bound(x: float, budget: int) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return f">{budget:,}" if x > 0 else "0"
    return f"{x:,.0f}"


def shape(layers: tuple[int, ...]) -> str:
    """``2-4-4-1``."""
    return "-".join(map(str, layers))


def lr_text(lr: float) -> str:
    return f"{lr:g}"


def words(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def power(base: float, n: int) -> str:
    """``base**n`` to two significant digits, also where it lies below float64's range
    (``1.7e-524``), from logarithms: 0 < base."""
    log10 = n * math.log10(base)
    if log10 >= -4:
        return f"{base**n:.2g}"
    e = math.floor(log10)
    mantissa = 10 ** (log10 - e)
    if round(mantissa, 1) >= 10:  # 9.96 -> 1.0e(e+1)
        mantissa, e = mantissa / 10, e + 1
    return f"{mantissa:.2g}e{e:+d}".replace("e+0", "").replace("e+", "e")
