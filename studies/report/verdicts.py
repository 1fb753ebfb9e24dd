"""Verdicts on the answer the user was given: pure functions of findings, criteria in one place.

A verdict is ``holds``, ``partly holds``, ``does not hold``, ``misattributed`` (the effect is
real, the cause named is not), ``misdiagnosed`` (the failure is real, it is not what was named),
or ``not decided by this run`` (the intervals are too wide to tell), with the reason. Intervals
and exact tests decide, not point estimates, so a quick run with few seeds says "not decided"
where a full run decides; the two never give opposite verdicts. ``CRITERIA`` states the rules;
the report prints them in Method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from studies.causes.findings import Arm, Failures, Ranked
from studies.mechanisms.findings import MechanismsFindings
from studies.stats.values import Epochs, Rate
from studies.vanishing.findings import VanishingFindings

VANISHING_RATIO = 0.1  # a first/last error ratio below this is a vanishing gradient
FIX_SPEEDUP = 3.0  # the program's quirks explain the slowness if fixing them is this much faster
DEAD_SHARE_REJECTS = 0.8  # failed seeds that are dead networks: above this, "not local minima"
DEAD_SHARE_PARTLY = 0.5  # ... above this, "partly"
MEANINGFUL_REDUCTION = 0.05  # momentum must cut the stuck share by at least this much to help
SIGNIFICANCE = 0.05  # exact McNemar tests on paired seeds
UNDECIDED = "not decided by this run"
SMOOTH = ("tanh", "sigmoid")  # the activations of the vanishing-gradient claim
WORDS = ("holds", "partly holds", "does not hold", "misattributed", "misdiagnosed", UNDECIDED,
         "not measured")

CRITERIA = (
    f"**Vanishing gradient** is *misattributed* when the back-propagated error at the first "
    f"hidden layer of the question's network is at least {VANISHING_RATIO:g} times the one at "
    f"the last hidden layer (median over seeds) for sigmoid and tanh, at initialisation and at "
    f"every recorded epoch of the program's training up to the budget, while "
    f"an experiment that changes only the output unit or its targets rescues significantly more "
    f"seeds than it loses (exact McNemar test, p < {SIGNIFICANCE:g}) or switching the program's "
    f"quirks off speeds training up at least {FIX_SPEEDUP:g}-fold (lower end of the interval): "
    f"the slowness is real, its cause is another (the reason names the output unit's own slope "
    f"when it ends below both the ratio and its value at initialisation). It holds when the "
    f"ratio is below "
    f"{VANISHING_RATIO:g} and neither experiment helps; it partly holds when the ratio is below "
    f"{VANISHING_RATIO:g} and an experiment helps; otherwise it is not decided.",
    f"**Local minima** is *misdiagnosed* when the 95% interval of the share of failed ReLU seeds "
    f"that are dead networks (constant output) lies above {DEAD_SHARE_REJECTS:.0%}: the seeds "
    f"really never learn, but on a flat plateau, not in a minimum. It partly holds when that "
    f"interval lies between {DEAD_SHARE_PARTLY:.0%} and {DEAD_SHARE_REJECTS:.0%}; it holds when "
    f"it lies below {DEAD_SHARE_PARTLY:.0%}; otherwise it is not decided.",
    f"**Momentum** holds when, on the same seeds, momentum lowers the share of ReLU seeds stuck "
    f"with an exactly zero gradient at the end (exact McNemar test on freed vs newly stuck "
    f"seeds, p < {SIGNIFICANCE:g}) by at least half; partly holds when it lowers it by less; "
    f"does not hold when it raises it (p < {SIGNIFICANCE:g}) or when the 95% interval of the "
    f"change rules out a reduction of {MEANINGFUL_REDUCTION:.0%} points; otherwise it is not "
    f"decided.",
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


def asymptote_isolated(m: MechanismsFindings | None) -> list[str]:
    """Smooth activations where changing only the output unit or its targets rescues seeds."""
    if m is None:
        return []
    out = []
    for (act, _, variant), p in m.asymptote_p.items():
        if variant == "as_written" or math.isnan(p):
            continue
        key = (act, _, variant)
        if p < SIGNIFICANCE and m.asymptote_rescued[key] > m.asymptote_killed[key]:
            out.append(act)
    return list(dict.fromkeys(out))


def smallest_ratios(v: VanishingFindings | None, m: MechanismsFindings | None) -> dict[str, float]:
    """Per smooth activation: the smallest first / last hidden error ratio (median over seeds)
    of the question's network, at initialisation and over the program's training."""
    out = {a: r.median for a, r in (v.question_z if v else {}).items() if a in SMOOTH}
    for (a, _), s in (m.output_slope if m else {}).items():
        if a in out and not math.isnan(s.ratio_z_min):
            out[a] = min(out[a], s.ratio_z_min)
    return out


def shrinking_slopes(m: MechanismsFindings | None) -> dict[str, float]:
    """Smooth activation -> its output slope on the largest target at the budget, where that
    slope is the factor that shrinks (``OutputSlope.shrinks``)."""
    return {a: s.top_end for (a, _), s in (m.output_slope if m else {}).items()
            if a in SMOOTH and s.shrinks}


def vanishing(v: VanishingFindings | None, speedups: list[Speedup],
              m: MechanismsFindings | None = None) -> Verdict:
    """Does a vanishing gradient explain the slow sigmoid/tanh training of the question's net?"""
    ratios = smallest_ratios(v, m)
    if not ratios:
        return Verdict("not measured", "the question's network was not measured for sigmoid or "
                       "tanh")
    vanishes = [a for a, r in ratios.items() if r < VANISHING_RATIO]
    output = asymptote_isolated(m)
    quirks = [s for s in speedups if s.low >= FIX_SPEEDUP]
    helped = bool(output or quirks)
    if not vanishes and helped:
        cause = ("a bounded output unit chasing targets at the edge of its range"
                 if output else "the program's quirks")
        slopes = shrinking_slopes(m)
        own = (" (its own slope on the largest target, which ratios between layers cancel, "
               "falls to " + " and ".join(f"{x:.2g} with {a}" for a, x in slopes.items()) + ")"
               if output and slopes else "")
        return Verdict("misattributed", f"the slowness is real, but the gradient does not vanish "
                       f"through the layers; {cause} explains it{own}")
    if vanishes and helped:
        return Verdict("partly holds", "the error shrinks through the layers, but changing the "
                       "output or the program's quirks explains more of the slowness")
    no_help = (m is not None and not output and any(
        variant != "as_written" for _, _, variant in m.asymptote_p)) or any(
        s.factor < FIX_SPEEDUP and not s.bound for s in speedups)
    if vanishes and no_help:
        return Verdict("holds", "the error vanishes through the layers, and changing the output "
                       "or the program does not help")
    return Verdict(UNDECIDED, "too few seeds or epochs to tell what causes the slowness")


def local_minima(f: Failures | None) -> Verdict:
    """Are the ReLU seeds that never learn in local minima?"""
    if f is None or f.failed == 0:
        return Verdict("not measured", "no ReLU seed failed in this run")
    share = f.dead_share
    if share.lo >= DEAD_SHARE_REJECTS:
        return Verdict("misdiagnosed", "the seeds really never learn, but nearly every one is a "
                       "dead network on a flat plateau, not in a minimum")
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
