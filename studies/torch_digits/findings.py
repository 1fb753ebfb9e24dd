"""The torch_digits study's findings: the numbers it states, read from its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studies.run.study import read_table
from studies.stats.values import Epochs, Rate

Key = tuple[str, float]  # (activation, lr)


@dataclass(frozen=True)
class TorchDigitsFindings:
    """Seeded PyTorch MLPs on the 8x8 digits, with the engine's outcome definitions."""

    layers: tuple[int, ...]  # units per layer, inputs first
    data: str  # the dataset's name
    n_samples: int  # training images
    threshold: float  # converged: an epoch's loss at or below this
    budget: int  # epochs
    seeds: int  # seeds per cell
    runs: tuple[Key, ...]  # the (activation, lr) pairs that ran, in order
    failure: dict[Key, Rate]  # seeds that did not converge
    outcomes: dict[Key, dict[str, Rate]]  # outcome name -> share of seeds
    dead_initial: dict[Key, Rate]  # seeds whose network was dead at initialisation
    epochs: dict[Key, Epochs]  # to the threshold (censored at the budget)
    final_loss: dict[Key, float]  # median final epoch loss
    dead_fraction: dict[Key, dict[int, tuple[float, float]]]  # layer -> (initial, final) mean
    any_dead_final: dict[Key, dict[int, Rate]]  # layer -> seeds with a dead unit at the end
    grad_norm: dict[Key, dict[int, tuple[float, float]]]  # layer -> median (initial, final)


def findings(tables_dir: Path) -> TorchDigitsFindings:
    cells = read_table(tables_dir, "cells")
    fail = read_table(tables_dir, "failure")
    out = read_table(tables_dir, "outcomes")
    ep = read_table(tables_dir, "epochs_to_threshold")
    dead = read_table(tables_dir, "dead_fraction")
    prof = read_table(tables_dir, "gradient_profile")
    budget = int(cells.epochs.max())
    runs = tuple((str(a), float(lr)) for a, lr in zip(cells.activation, cells.lr, strict=True))
    outcomes: dict[Key, dict[str, Rate]] = {}
    for r in out.to_dict("records"):
        outcomes.setdefault((r["activation"], float(r["lr"])), {})[r["outcome"]] = Rate(
            int(r["count"]), int(r["n"]), float(r["share"]), float(r["ci_low"]),
            float(r["ci_high"]))
    rows = {(r["activation"], float(r["lr"])): r for r in fail.to_dict("records")}
    dead_fraction: dict[Key, dict[int, tuple[float, float]]] = {}
    any_dead: dict[Key, dict[int, Rate]] = {}
    for (a, lr, layer), p in (dead.groupby(["activation", "lr", "layer"], sort=False)
                              if len(dead) else []):
        first, last = p.loc[p.epoch.idxmin()], p.loc[p.epoch.idxmax()]
        dead_fraction.setdefault((a, float(lr)), {})[int(layer)] = (float(first["mean"]),
                                                                    float(last["mean"]))
        any_dead.setdefault((a, float(lr)), {})[int(layer)] = Rate.from_row(
            last, "any", int(last.n))
    grad_norm: dict[Key, dict[int, tuple[float, float]]] = {}
    g = prof[prof.metric == "grad_norm_W"] if len(prof) else prof
    for (a, lr, layer), p in (g.groupby(["activation", "lr", "layer"], sort=False)
                              if len(g) else []):
        by = dict(zip(p.when, p["median"], strict=True))
        grad_norm.setdefault((a, float(lr)), {})[int(layer)] = (
            float(by.get("initial", float("nan"))), float(by.get("final", float("nan"))))
    return TorchDigitsFindings(
        layers=tuple(int(n) for n in str(cells.layers.iloc[0]).split("-")),
        data=str(cells.data.iloc[0]), n_samples=int(cells.n_samples.iloc[0]),
        threshold=float(cells.threshold.iloc[0]), budget=budget,
        seeds=int(cells.seeds.min()), runs=runs,
        failure={k: Rate.from_row(r, "failure", int(r["n"])) for k, r in rows.items()},
        outcomes=outcomes,
        dead_initial={k: Rate.from_row(r, "dead_initial", int(r["n"])) for k, r in rows.items()},
        epochs={(r["activation"], float(r["lr"])): Epochs.from_row(r, budget)
                for r in ep.to_dict("records")},
        final_loss={k: float(r["median_final_loss"]) for k, r in rows.items()},
        dead_fraction=dead_fraction, any_dead_final=any_dead, grad_norm=grad_norm,
    )
