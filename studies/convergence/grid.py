"""The convergence study's grid: which configurations it trains, on which seeds, for how long."""

from __future__ import annotations

from collections.abc import Sequence

from diagnostics.activations import ACTIVATIONS
from diagnostics.presets import PRESETS
from diagnostics.schedules import Schedule
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "convergence"
TITLE = "Convergence of every activation on the fixed network"
MAIN_LR = 0.1  # the user's learning rate; all activations are compared at it
GRID_LRS = (0.003, 0.01, 0.03, 0.1, 0.3)
GRID_ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
SEEDS = 200  # seeds per cell
QUICK_SEEDS = 30
EPOCHS = 2000  # main budget; the grid gets half of it
QUICK_EPOCHS = 150
LOSS_EVERY = Schedule.log(200)  # epochs at which the loss is kept


def main_lr(lrs: Sequence[float]) -> float:
    """The lr at which all activations are compared: 0.1 if listed, else the middle of the list."""
    values = sorted(float(v) for v in lrs)
    if not values:
        raise ValueError("lrs is empty: give at least one learning rate")
    return MAIN_LR if MAIN_LR in values else values[(len(values) - 1) // 2]


def grid_epochs(epochs: int) -> int:
    """Epoch budget of the lr grid: half the main budget (at least 1)."""
    return max(1, epochs // 2)


def cells(opts: StudyOptions) -> list[Cell]:
    """Every activation at the main lr, then the grid's activations at every grid lr."""
    seeds = opts.pick("seeds", SEEDS, QUICK_SEEDS)
    epochs = opts.pick("epochs", EPOCHS, QUICK_EPOCHS)
    lrs = tuple(opts.pick("lrs", GRID_LRS))
    activations = tuple(opts.pick("activations", tuple(ACTIVATIONS)))
    grid_acts = opts.activations or tuple(a for a in GRID_ACTIVATIONS if a in activations)
    base = PRESETS["fixed"]
    if opts.layers:
        base = base.replace(layers=opts.layers)

    def cell(part: str, act: str, lr: float, budget: int) -> Cell:
        return Cell(
            NAME, (("part", part), ("activation", act), ("lr", float(lr))),
            base.replace(activation=act, lr=float(lr), epochs=budget), (0, seeds),
            loss_every=LOSS_EVERY, **opts.data_kwargs(),
        )

    lr0 = main_lr(lrs)
    out = [cell("main", act, lr0, epochs) for act in activations]
    out += [cell("grid", act, lr, grid_epochs(epochs)) for act in grid_acts for lr in lrs]
    return out
