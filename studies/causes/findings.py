"""The causes study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from studies.run.study import read_table
from studies.stats.values import Effect, Epochs, Rate

from .figures import _label
from .grid import VARIANTS
from .tables import VARIANT_NOTES


@dataclass(frozen=True)
class Arm:
    """One variant on one activation arm at one learning rate."""

    activation: str
    lr: float
    budget: int  # epochs
    n: int  # seeds
    converged: Rate
    stuck: Rate  # exactly zero full-data gradient at the end
    failed: Rate  # never reached the threshold (stuck, not converged or diverged)
    epochs: Epochs  # to the threshold


@dataclass(frozen=True)
class Variant:
    """A change to the program (a quirk switched off, the advice, a remedy) and its arms."""

    name: str
    label: str  # for people, e.g. "fix: bias follows its gradient"
    changes: dict  # the configuration fields it sets on top of the program
    note: str
    arms: dict[tuple[str, float], Arm]  # (arm, lr) -> its numbers


@dataclass(frozen=True)
class Failures:
    """The seeds of one variant's rectifier arm that never reached the threshold (not diverged)."""

    variant: str
    arm: str
    lr: float
    n_seeds: int
    failed: int
    zero_gradient: int  # every component of the full-data gradient exactly 0
    bias_only_gradient: int  # non-zero gradient on biases only
    weights_gradient: int  # some weight still has a gradient
    constant_output: int  # same output for every input (a dead network), gradient not all 0
    output_varies: int  # a live network that had not reached the threshold
    output_varies_loss_median: float  # their final loss
    dead_at_init: int  # failed seeds whose output was already constant before training
    dead_at_end: int  # failed seeds whose output is constant at the end
    patterns: dict[str, int]  # which layers are wholly dead at the end -> seeds

    @property
    def dead_share(self) -> Rate:
        """Failed seeds that are dead networks at the end."""
        return Rate.of(self.dead_at_end, self.failed)


@dataclass(frozen=True)
class Ranked:
    """The effect of one variant against the program, on the same seeds."""

    variant: str
    label: str
    arm: str
    lr: float
    metric: str  # failed | stuck (share difference) | median (fold change of median epochs)
    effect: Effect
    rescued: int  # paired seeds: failed in the program, converged with the variant (rates only)
    killed: int  # converged in the program, failed with the variant (rates only)
    p_value: float  # exact McNemar test on rescued vs killed (rates only; nan otherwise)


@dataclass(frozen=True)
class CausesFindings:
    """What the causes study measured."""

    threshold: float
    layers: tuple[int, ...]
    variants: dict[str, Variant]
    failures: dict[tuple[str, str, float], Failures]  # (variant, arm, lr)
    ranking: list[Ranked]
    revived: dict[str, int]  # variant -> rectifier seeds whose zero gradient came back
    quirk_variants: tuple[str, ...]  # the fix_* variants, one per quirk of the program
    arms: tuple[tuple[str, float], ...] = field(default=())  # (arm, lr) in run order

    def arm(self, variant: str, activation: str) -> Arm | None:
        """The variant's arm for ``activation`` at its first learning rate, if it ran."""
        v = self.variants.get(variant)
        if v is None:
            return None
        found = [a for (act, _), a in v.arms.items() if act == activation]
        return found[0] if found else None

    def failures_of(self, variant: str, activation: str) -> Failures | None:
        found = [f for (v, a, _), f in self.failures.items() if v == variant and a == activation]
        return found[0] if found else None


def findings(tables_dir: Path) -> CausesFindings:
    v = read_table(tables_dir, "variants")
    lm = read_table(tables_dir, "local_minimum")
    pat = read_table(tables_dir, "dead_patterns")
    rank = read_table(tables_dir, "ranking")
    sve = read_table(tables_dir, "stuck_vs_epoch")
    variants: dict[str, Variant] = {}
    for name, part in v.groupby("variant", sort=False):
        arms = {}
        for r in part.to_dict("records"):
            arms[(r["arm"], float(r["lr"]))] = Arm(
                activation=r["activation"], lr=float(r["lr"]), budget=int(r["epochs"]),
                n=int(r["n"]), converged=Rate.from_row(r, "converged", r["n"]),
                stuck=Rate.from_row(r, "stuck", r["n"]), failed=Rate.from_row(r, "failed", r["n"]),
                epochs=Epochs.from_row(r, int(r["epochs"])))
        variants[name] = Variant(name, _label(name), dict(VARIANTS[name][0]),
                                 VARIANT_NOTES.get(name, ""), arms)
    failures = {}
    for r in lm.to_dict("records"):
        p = pat[(pat.variant == r["variant"]) & (pat.arm == r["arm"]) & (pat.lr == r["lr"])]
        patterns = {str(k): int(c) for k, c in p.groupby("pattern")["count"].sum()
                    .sort_values(ascending=False).items()}
        failures[(r["variant"], r["arm"], float(r["lr"]))] = Failures(
            variant=r["variant"], arm=r["arm"], lr=float(r["lr"]), n_seeds=int(r["n_seeds"]),
            failed=int(r["n_failed"]), zero_gradient=int(r["zero_gradient_count"]),
            bias_only_gradient=int(r["bias_only_count"]), weights_gradient=int(r["weights_count"]),
            constant_output=int(r["constant_output_count"]),
            output_varies=int(r["output_varies_count"]),
            output_varies_loss_median=float(r["output_varies_final_loss_median"]),
            dead_at_init=int(r["dead_at_init_count"]), dead_at_end=int(r["dead_at_end_count"]),
            patterns=patterns)
    ranking = [
        Ranked(variant=r["variant"], label=_label(r["variant"]), arm=r["arm"], lr=float(r["lr"]),
               metric=r["metric"].rpartition("_")[2],
               effect=Effect(float(r["effect"]), float(r["ci_low"]), float(r["ci_high"]),
                             str(r["bound"])),
               rescued=_int(r.get("rescued")), killed=_int(r.get("killed")),
               p_value=float(r.get("mcnemar_p", math.nan)))
        for r in rank.to_dict("records")
    ]
    revived = {}
    for name, part in sve.groupby("variant", sort=False):
        last = part[part.epoch == part.epoch.max()]
        revived[name] = int(last.revived_count.sum())
    first = next(iter(v.itertuples()), None)
    return CausesFindings(
        threshold=float(v.threshold.iloc[0]) if len(v) else math.nan,
        layers=tuple(int(n) for n in str(first.layers).split("-")) if first is not None else (),
        variants=variants, failures=failures, ranking=ranking, revived=revived,
        quirk_variants=tuple(n for n in variants if n.startswith("fix_")),
        arms=tuple(dict.fromkeys(zip(v.arm, v.lr.astype(float), strict=True))),
    )


def _int(x) -> int:
    return 0 if x is None or (isinstance(x, float) and np.isnan(x)) else int(x)

