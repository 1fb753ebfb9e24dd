"""Typed statistics that findings carry: a rate with its interval, a median number of epochs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studies.stats.intervals import median_ci, wilson_interval


@dataclass(frozen=True)
class Rate:
    """count of n seeds, the share and its 95% Wilson interval."""

    count: int
    n: int
    share: float
    lo: float
    hi: float

    @classmethod
    def of(cls, count: int, n: int) -> Rate:
        """count / n with its interval (nan when n is 0)."""
        lo, hi = wilson_interval(count, n)
        return cls(int(count), int(n), count / n if n else math.nan, float(lo), float(hi))

    @classmethod
    def from_row(cls, row, prefix: str, n: int) -> Rate:
        """From a table row's ``<prefix>_count/_share/_ci_low/_ci_high`` columns."""
        return cls(int(row[f"{prefix}_count"]), int(n), float(row[f"{prefix}_share"]),
                   float(row[f"{prefix}_ci_low"]), float(row[f"{prefix}_ci_high"]))

    def above(self, other: Rate) -> bool:
        """This rate's interval lies wholly above the other's."""
        return self.lo > other.hi

    def below(self, other: Rate) -> bool:
        """This rate's interval lies wholly below the other's."""
        return self.hi < other.lo


@dataclass(frozen=True)
class Epochs:
    """Median epochs to a loss threshold over n seeds, censored at the budget (inf: not reached).

    ``lo`` and ``hi`` bound the median with 95% confidence (order statistics); ``reached`` seeds
    got to the threshold within ``budget`` epochs.
    """

    median: float
    lo: float
    hi: float
    reached: int
    n: int
    budget: int

    @classmethod
    def of(cls, epochs_to_threshold, budget: int) -> Epochs:
        """From per-seed first epochs at the threshold, -1 (or inf) where never reached."""
        e = np.asarray(epochs_to_threshold, dtype=float)
        e = np.where(e >= 0, e, np.inf)
        med, lo, hi = median_ci(e)
        return cls(med, lo, hi, int(np.isfinite(e).sum()), int(e.size), int(budget))

    @classmethod
    def from_row(cls, row, budget: int) -> Epochs:
        """From a table row's ``median, median_ci_low, median_ci_high, reached, n`` columns."""
        return cls(float(row["median"]), float(row["median_ci_low"]),
                   float(row["median_ci_high"]), int(row["reached"]), int(row["n"]), int(budget))

    @property
    def measured(self) -> bool:
        """The median itself lies within the budget (not only a lower bound)."""
        return math.isfinite(self.median)


@dataclass(frozen=True)
class Effect:
    """A change and its 95% interval; ``bound`` says when only a bound is known."""

    value: float
    lo: float
    hi: float
    bound: str = "exact"  # exact | at_least | at_most

    def sign(self, neutral: float) -> int:
        """+1 if the interval lies above ``neutral``, -1 if below, 0 if it contains it."""
        if self.lo > neutral:
            return 1
        if self.hi < neutral:
            return -1
        return 0
