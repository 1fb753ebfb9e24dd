"""The convergence study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studies.run.study import read_table
from studies.stats.values import Epochs, Rate

from .figures import fastest_order


@dataclass(frozen=True)
class Speed:
    """One activation on the fixed network at one learning rate."""

    epochs: Epochs  # to the threshold, censored at the budget
    converged: Rate
    diverged: Rate
    final_loss_median: float


@dataclass(frozen=True)
class ConvergenceFindings:
    """Every activation on the corrected (``fixed``) network."""

    layers: tuple[int, ...]
    lr: float  # the main comparison's learning rate
    budget: int
    seeds: int
    threshold: float
    speeds: dict[str, Speed]  # activation -> at ``lr``
    fastest: tuple[str, ...]  # activations, fastest median first
    grid_budget: int  # epochs of the learning-rate grid (0: no grid)
    grid: dict[tuple[str, float], Speed]  # (activation, lr)
    best_lr: dict[str, float]  # activation -> fastest lr of the grid


def _speed(r: dict, budget: int, final_loss: float) -> Speed:
    return Speed(Epochs.from_row(r, budget), Rate.from_row(r, "converged", r["n"]),
                 Rate.from_row(r, "diverged", r["n"]), final_loss)


def findings(tables_dir: Path) -> ConvergenceFindings:
    med = read_table(tables_dir, "medians")
    grid = read_table(tables_dir, "lr_grid")
    cells = read_table(tables_dir, "cells")
    per_seed = read_table(tables_dir, "per_seed")
    budget = int(med.epochs.iloc[0])
    final = per_seed.groupby("activation").final_loss.median()
    speeds = {r["activation"]: _speed(r, budget, float(final.get(r["activation"], np.nan)))
              for r in med.to_dict("records")}
    grid_budget = int(grid.epochs.iloc[0]) if len(grid) else 0
    grid_speeds = {(r["activation"], float(r["lr"])): _speed(r, grid_budget, np.nan)
                   for r in grid.to_dict("records")}
    best_lr = {}
    for act, part in grid.groupby("activation", sort=False):
        best = part.assign(_m=part["median"].fillna(np.inf)).sort_values(
            ["_m", "converged_share"], ascending=[True, False]).iloc[0]
        best_lr[act] = float(best.lr)
    return ConvergenceFindings(
        layers=tuple(int(n) for n in str(cells.layers.iloc[0]).split("-")),
        lr=float(med.lr.iloc[0]), budget=budget, seeds=int(med.n.min()),
        threshold=float(med.threshold.iloc[0]), speeds=speeds,
        fastest=tuple(fastest_order(med)), grid_budget=grid_budget, grid=grid_speeds,
        best_lr=best_lr,
    )
