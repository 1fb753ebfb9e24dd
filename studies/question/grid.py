"""The question study's grid: which configurations it trains, on which seeds, for how long."""

from __future__ import annotations

from diagnostics.presets import PRESETS
from diagnostics.schedules import Schedule
from studies.run.budget import HEADLINE_EPOCHS, LONG_EPOCHS
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "question"
TITLE = "The user's program, faithfully, over many seeds"
ACTIVATIONS = ("relu", "tanh", "sigmoid")
LRS = (0.01, 0.1)
LONG_ACTIVATIONS = ("tanh", "sigmoid")
LONG_LR = 0.1
LONG_THRESHOLDS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-8)


def budgets(opts: StudyOptions) -> tuple[int, int]:
    """(main epochs, long-run epochs): the headline budget and the long run by default; quick
    1000 and 3000; a budget the user chose (``--epochs``) gives a long run of 20 budgets."""
    epochs = opts.pick("epochs", HEADLINE_EPOCHS, 1000)
    if opts.epochs is None:
        return epochs, (LONG_EPOCHS if not opts.quick else 3 * epochs)
    return epochs, 20 * epochs


def cells(opts: StudyOptions) -> list[Cell]:
    seeds = opts.pick("seeds", 1000, 100)
    epochs, long_epochs = budgets(opts)
    long_seeds = opts.pick("seeds", 200, 30)
    base = PRESETS["question"]
    if opts.layers:
        base = base.replace(layers=opts.layers)
    out = []
    for act in opts.pick("activations", ACTIVATIONS):
        for lr in opts.pick("lrs", LRS):
            out.append(Cell(
                NAME, (("run", "main"), ("activation", act), ("lr", lr)),
                base.replace(activation=act, lr=lr, epochs=epochs), (0, seeds),
                loss_every=Schedule.log(200), record="dead", record_every=Schedule.log(40),
                thresholds=LONG_THRESHOLDS[1:], **opts.data_kwargs(),
            ))
    for act in [a for a in opts.pick("activations", ACTIVATIONS) if a in LONG_ACTIVATIONS]:
        out.append(Cell(
            NAME, (("run", "long"), ("activation", act), ("lr", LONG_LR)),
            base.replace(activation=act, lr=LONG_LR, epochs=long_epochs), (0, long_seeds),
            loss_every=Schedule.log(300), thresholds=LONG_THRESHOLDS[1:], **opts.data_kwargs(),
        ))
    return out
