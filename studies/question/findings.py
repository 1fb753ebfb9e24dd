"""The question study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from studies.run.study import read_table
from studies.stats.values import Epochs, Rate

Key = tuple[str, float]  # (activation, lr)


@dataclass(frozen=True)
class QuestionFindings:
    """The user's program as written, over many seeds."""

    layers: tuple[int, ...]  # units per layer, inputs first
    n_samples: int  # training pairs
    data: str  # the dataset's name
    threshold: float  # converged: an epoch's loss at or below this
    budget: int  # epochs of the main runs
    seeds: int  # seeds per main run
    runs: tuple[Key, ...]  # the (activation, lr) pairs that ran, in order
    outcomes: dict[Key, dict[str, Rate]]  # outcome name -> share of seeds
    epochs: dict[Key, Epochs]  # to the threshold, over all seeds (censored at the budget)
    converged_epochs: dict[Key, Epochs]  # to the threshold, among the seeds that converged
    long_lr: float | None  # the long runs' learning rate (None: no long run)
    long_budget: int
    long_seeds: int
    long_reached: dict[str, dict[float, Rate]]  # activation -> loss level -> seeds below it
    long_zero: dict[str, Rate]  # activation -> seeds whose epoch loss was ever exactly 0
    long_final_loss: dict[str, float]  # activation -> median final loss of the long run

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(dict.fromkeys(lr for _, lr in self.runs))

    @property
    def activations(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for a, _ in self.runs))


def findings(tables_dir: Path) -> QuestionFindings:
    cells = read_table(tables_dir, "cells")
    main_cells = cells[cells.run == "main"]
    out = read_table(tables_dir, "outcomes")
    ep = read_table(tables_dir, "epochs_to_threshold")
    long = read_table(tables_dir, "long_thresholds")
    per_seed = read_table(tables_dir, "per_seed")
    long_out = read_table(tables_dir, "long_outcomes")
    budget = int(main_cells.epochs.max())
    runs = tuple((str(a), float(lr)) for a, lr in zip(main_cells.activation, main_cells.lr,
                                                      strict=True))
    outcomes: dict[Key, dict[str, Rate]] = {}
    for r in out.to_dict("records"):
        outcomes.setdefault((r["activation"], float(r["lr"])), {})[r["outcome"]] = Rate(
            int(r["count"]), int(r["n"]), float(r["share"]), float(r["ci_low"]),
            float(r["ci_high"]))
    epochs = {(r["activation"], float(r["lr"])): Epochs.from_row(r, budget)
              for r in ep.to_dict("records")}
    converged = {
        (a, float(lr)): Epochs.of(part.epochs_to_threshold[part.outcome == "converged"], budget)
        for (a, lr), part in per_seed.groupby(["activation", "lr"], sort=False)
    }
    long_reached: dict[str, dict[float, Rate]] = {}
    long_zero: dict[str, Rate] = {}
    for r in long.to_dict("records"):
        rate = Rate(int(r["reached"]), int(r["n"]), float(r["reached_share"]),
                    float(r["reached_ci_low"]), float(r["reached_ci_high"]))
        if r["threshold"] == 0:
            long_zero[r["activation"]] = rate
        else:
            long_reached.setdefault(r["activation"], {})[float(r["threshold"])] = rate
    long_cells = cells[cells.run == "long"]
    return QuestionFindings(
        layers=tuple(int(n) for n in str(main_cells.layers.iloc[0]).split("-")),
        n_samples=int(main_cells.n_samples.iloc[0]),
        data=str(main_cells.data.iloc[0]),
        threshold=float(main_cells.threshold.iloc[0]),
        budget=budget, seeds=int(main_cells.seeds.min()), runs=runs,
        outcomes=outcomes, epochs=epochs, converged_epochs=converged,
        long_lr=float(long_cells.lr.iloc[0]) if len(long_cells) else None,
        long_budget=int(long_cells.epochs.max()) if len(long_cells) else 0,
        long_seeds=int(long_cells.seeds.min()) if len(long_cells) else 0,
        long_reached=long_reached, long_zero=long_zero,
        long_final_loss={a: float(part.final_loss.median()) if len(part) else math.nan
                         for a, part in long_out.groupby("activation", sort=False)},
    )
