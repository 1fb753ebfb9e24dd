"""Verdicts on the answer the user was given: pure functions of findings, criteria in one place.

Each verdict is one of ``holds``, ``partly holds``, ``does not hold`` or ``not decided by this
run`` (the run's intervals are too wide to tell), with the numbers behind it. Intervals decide, not
point estimates, so a quick run with few seeds says "not decided" where a full run decides; the
two never give opposite verdicts. ``CRITERIA`` states the rules; the report prints them in Method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from studies.causes.findings import Arm, Failures, Ranked
from studies.stats.values import Epochs, Rate
from studies.vanishing.findings import VanishingFindings

VANISHING_RATIO = 0.1  # a first/last error ratio below this is a vanishing gradient
FIX_SPEEDUP = 3.0  # the program's quirks explain the slowness if fixing them is this much faster
DEAD_SHARE_REJECTS = 0.8  # failed seeds that are dead networks: above this, "not local minima"
DEAD_SHARE_PARTLY = 0.5  # ... above this, "partly"
MEANINGFUL_REDUCTION = 0.05  # momentum must cut the failure share by at least this much to help
UNDECIDED = "not decided by this run"

CRITERIA = (
    f"**Vanishing gradient** holds when, in the question's network at initialisation, the "
    f"back-propagated error at the first hidden layer is below {VANISHING_RATIO:g} times the one "
    f"at the last hidden layer (median over seeds) for sigmoid or tanh and switching the "
    f"program's quirks off does not speed training up {FIX_SPEEDUP:g}-fold; it does not hold "
    f"when the ratio is above {VANISHING_RATIO:g} and the speed-up's 95% interval lies above "
    f"{FIX_SPEEDUP:g}; otherwise it partly holds, or is not decided when the speed-up's interval "
    f"straddles {FIX_SPEEDUP:g}.",
    f"**Local minima** does not hold when the 95% interval of the share of failed ReLU seeds "
    f"that are dead networks (constant output) lies above {DEAD_SHARE_REJECTS:.0%}; it partly "
    f"holds when that interval lies between {DEAD_SHARE_PARTLY:.0%} and {DEAD_SHARE_REJECTS:.0%}; "
    f"it holds when it lies below {DEAD_SHARE_PARTLY:.0%}; otherwise it is not decided.",
    f"**Momentum** holds when, on the same seeds, momentum lowers the share of ReLU seeds stuck "
    f"with an exactly zero gradient at the end (exact McNemar test on freed vs newly stuck seeds, "
    f"p < 0.05) by at least half; partly holds when it "
    f"lowers it by less; does not hold when it raises it (p < 0.05) or when the 95% interval of "
    f"the change rules out a reduction of {MEANINGFUL_REDUCTION:.0%} points; otherwise it is "
    f"not decided.",
)


@dataclass(frozen=True)
class Verdict:
    """A verdict and the facts it rests on (for the report's sentences)."""

    word: str  # holds | partly holds | does not hold | not decided by this run | not measured
    reason: str  # one sentence, why this word


@dataclass(frozen=True)
class Speedup:
    """How many times fewer epochs the program needs with every quirk switched off."""

    activation: str
    faithful: Epochs
    fixed: Epochs
    factor: float  # faithful median / fixed median (faithful censored: budget / fixed, a bound)
    low: float  # a 95%-level lower bound of the factor (faithful lo / fixed hi)
    bound: bool  # the faithful median was beyond its budget: factor is a lower bound


def speedup(faithful: Arm | None, fixed: Arm | None) -> Speedup | None:
    """The speed-up of switching the quirks off, when both medians are known well enough."""
    if faithful is None or fixed is None or not fixed.epochs.measured:
        return None
    a, b = faithful.epochs, fixed.epochs
    top = a.median if a.measured else float(a.budget)
    low_top = a.lo if math.isfinite(a.lo) else float(a.budget)
    return Speedup(faithful.activation, a, b, top / b.median, low_top / b.hi, not a.measured)


def vanishing(v: VanishingFindings | None, speedups: list[Speedup]) -> Verdict:
    """Does a vanishing gradient explain the slow sigmoid/tanh training of the question's net?"""
    ratios = {a: r for a, r in (v.question_z if v else {}).items() if a in ("tanh", "sigmoid")}
    if not ratios:
        return Verdict("not measured", "the question's network was not measured for sigmoid or "
                       "tanh")
    vanishes = [a for a, r in ratios.items() if r.median < VANISHING_RATIO]
    if not speedups:
        return Verdict(UNDECIDED, "the speed-up from switching the quirks off was not measured")
    explained = [s for s in speedups if s.low >= FIX_SPEEDUP]
    unexplained = [s for s in speedups if s.factor < FIX_SPEEDUP and not s.bound]
    if vanishes and unexplained and not explained:
        return Verdict("holds", "the error vanishes and fixing the program does not help")
    if vanishes:
        return Verdict("partly holds", "the error shrinks through the layers, but the program's "
                       "quirks explain more of the slowness")
    if explained:
        return Verdict("does not hold", "the error does not vanish, and switching the program's "
                       "quirks off makes training many times faster")
    if unexplained:
        return Verdict("partly holds", "the error does not vanish, but fixing the program's "
                       "quirks does not speed training up much either")
    return Verdict(UNDECIDED, "the error does not vanish, but the speed-up's interval is too wide "
                   f"to say whether it reaches {FIX_SPEEDUP:g}x")


def local_minima(f: Failures | None) -> Verdict:
    """Are the ReLU seeds that never learn in local minima?"""
    if f is None or f.failed == 0:
        return Verdict("not measured", "no ReLU seed failed in this run")
    share = f.dead_share
    if share.lo >= DEAD_SHARE_REJECTS:
        return Verdict("does not hold", "nearly every failed seed is a dead network on a flat "
                       "plateau, not in a minimum")
    if share.hi < DEAD_SHARE_PARTLY:
        return Verdict("holds", "most failed seeds keep a varying output and a gradient")
    if share.lo >= DEAD_SHARE_PARTLY and share.hi < DEAD_SHARE_REJECTS:
        return Verdict("partly holds", "most failed seeds are dead networks, but not nearly all")
    return Verdict(UNDECIDED, "the share of dead networks among the failures is not known "
                   "precisely enough")


def momentum(r: Ranked | None, faithful: Rate | None) -> Verdict:
    """Does SGD with momentum reduce the share of ReLU seeds stuck with a zero gradient?"""
    if r is None or faithful is None:
        return Verdict("not measured", "the momentum variant did not run on a ReLU arm")
    significant = r.p_value < 0.05
    if significant and r.rescued > r.killed:
        if -r.effect.value >= 0.5 * faithful.share:
            return Verdict("holds", "momentum rescues far more seeds than it kills")
        return Verdict("partly holds", "momentum rescues more seeds than it kills, but most "
                       "failures remain")
    if significant and r.killed > r.rescued:
        return Verdict("does not hold", "momentum kills more seeds than it rescues")
    if r.effect.lo > -MEANINGFUL_REDUCTION:
        return Verdict("does not hold", "momentum makes no meaningful difference")
    return Verdict(UNDECIDED, "too few seeds to tell whether momentum helps")
