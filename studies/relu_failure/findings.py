"""The relu_failure study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from studies.run.study import read_table
from studies.stats.values import Effect, Rate

from .tables import CATEGORIES


@dataclass(frozen=True)
class Split:
    """Seeds of one configuration: failed, split into born dead / died / failed while alive."""

    failed: Rate
    born_dead: Rate  # the network's output was constant before the first update, and it failed
    died: Rate  # alive at the start, constant output at the end
    other: Rate  # failed with a varying output
    dead_initial: Rate  # constant output before the first update, failed or not


@dataclass(frozen=True)
class Level:
    """One value of one factor, changed alone around the program."""

    factor: str
    value: str
    is_baseline: bool
    split: Split


@dataclass(frozen=True)
class Ranked:
    """One change (or the program itself) in the failure ranking, grouped with the changes the
    seeds cannot tell apart from its group's first (``tables.rank_groups``)."""

    factor: str
    value: str
    is_baseline: bool  # the program as written
    failed: Rate
    group: int  # 1 = the group that fails least
    leader: bool  # the group's first
    vs_leader: Effect  # failure share minus the leader's, paired 95% interval (nan for a leader)
    p_value: float  # exact McNemar against the leader (nan for a leader)


@dataclass(frozen=True)
class ReluFailureFindings:
    """When and why ReLU networks fail, one factor at a time."""

    layers: tuple[int, ...]  # the baseline network
    n_samples: int
    budget: int
    seeds: int
    baseline: Split
    levels: tuple[Level, ...]  # every (factor, value), baseline rows included
    unit_dead_theory: float  # closed-form probability that a first-layer unit is born dead
    unit_dead_measured: Rate  # over the large init-only ensemble
    ensemble_seeds: int
    ranking: tuple[Ranked, ...] = ()  # by failure share, in groups of indistinguishable changes


def _split(row: dict) -> Split:
    n = row["n"]
    return Split(*(Rate.from_row(row, k, n) for k in ("failure", *CATEGORIES)),
                 dead_initial=Rate.from_row(row, "dead_initial", n))


def findings(tables_dir: Path) -> ReluFailureFindings:
    t = read_table(tables_dir, "failure")
    bw = read_table(tables_dir, "born_dead_theory")
    cells = read_table(tables_dir, "cells")
    base = t[t.factor == "baseline"].to_dict("records")[0]
    ens = bw[bw.source == "ensemble"].sort_values("width")
    widest = ens.to_dict("records")[-1] if len(ens) else None
    base_cells = cells[cells.factor == "baseline"]
    return ReluFailureFindings(
        layers=tuple(int(n) for n in str(base["layers"]).split("-")),
        n_samples=int(base_cells.n_samples.iloc[0]),
        budget=int(base["epochs"]), seeds=int(base["n"]), baseline=_split(base),
        levels=tuple(Level(r["factor"], str(r["value"]), bool(r["is_baseline"]), _split(r))
                     for r in t[t.factor != "baseline"].to_dict("records")),
        unit_dead_theory=float(widest["theory_p"]) if widest else math.nan,
        unit_dead_measured=(Rate.from_row(widest, "unit", widest["unit_n"]) if widest
                            else Rate.of(0, 0)),
        ensemble_seeds=int(widest["n_seeds"]) if widest else 0,
        ranking=tuple(_ranked(r) for r in read_table(tables_dir, "ranking").to_dict("records")),
    )


def _ranked(r: dict) -> Ranked:
    lead = r["name"] == r["leader"]
    return Ranked(str(r["factor"]), str(r["value"]), bool(r["is_baseline"]),
                  Rate.of(int(r["count"]), int(r["n"])), int(r["group"]), lead,
                  Effect(float(r["diff"]), float(r["diff_lo"]), float(r["diff_hi"])),
                  float(r["mcnemar_p"]))
