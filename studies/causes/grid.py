"""The causes study's grid: which configurations it trains, on which seeds, for how long."""

from __future__ import annotations

import numpy as np

from diagnostics.activations import get_activation
from diagnostics.presets import PRESETS, QUIRK_FIXES
from diagnostics.schedules import Schedule
from studies.run.budget import HEADLINE_EPOCHS
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "causes"
TITLE = "Causes: each quirk of the program switched off alone, the advice, and common remedies"
ARMS = ("relu", "tanh", "sigmoid")
LR = {"relu": 0.01, "tanh": 0.1, "sigmoid": 0.1}  # the question's relu lr; tanh/sigmoid as run
RECTIFIER_LR = 0.01  # for other activations chosen with --activations
SMOOTH_LR = 0.1
SEEDS = {"rectifier": (1000, 100), "smooth": (200, 20)}  # (default, quick) seeds per cell
# one budget for every arm: the program's own (headline numbers share it); quick: a smoke test
EPOCHS = {kind: (HEADLINE_EPOCHS, 120) for kind in ("rectifier", "smooth")}
_ALL_FIXED: dict = {k: v for fix in QUIRK_FIXES.values() for k, v in fix.items()}
# variant -> (config changes on top of the faithful program, which arms it applies to)
VARIANTS: dict[str, tuple[dict, str]] = {
    "faithful": ({}, "all"),
    **{f"fix_{name}": (changes, "all") for name, changes in QUIRK_FIXES.items()},
    "all_fixed": (_ALL_FIXED, "all"),
    "momentum": ({"optimizer": "momentum", "momentum": 0.9}, "all"),
    "momentum_true_bias": (
        {"optimizer": "momentum", "momentum": 0.9, **QUIRK_FIXES["bias_update"]}, "rectifier"),
    "he_init": ({"init": "he_normal", "bias_init": "zero"}, "all"),
    "leaky_relu": ({"activation": "leaky_relu", "leaky_slope": 0.01}, "relu"),
}

VARIANT_LABELS = {
    "faithful": "faithful program",
    "fix_bias_update": "fix: bias follows its gradient",
    "fix_backprop_weights": "fix: backprop through current W",
    "fix_output_activation": "fix / remedy: identity output",
    "fix_init": "change: Xavier init, zero bias",
    "all_fixed": f"all {len(QUIRK_FIXES)} changes together",
    "momentum": f"advice: momentum {VARIANTS['momentum'][0]['momentum']:g}",
    "momentum_true_bias": f"momentum {VARIANTS['momentum'][0]['momentum']:g} + true bias gradient",
    "he_init": "remedy: He init, zero bias",
    "leaky_relu": f"remedy: leaky ReLU ({VARIANTS['leaky_relu'][0]['leaky_slope']:g})",
}


def arm_kind(activation: str) -> str:
    """``rectifier`` (can die: stuck-rate arm) or ``smooth`` (speed arm)."""
    return "rectifier" if get_activation(activation).rectifier else "smooth"


def record_epochs(epochs: int) -> list[int]:
    """Epochs the instruments record: 0, about ten log-spaced ones, the middle and the last."""
    logs = np.round(np.geomspace(1, max(epochs, 1), 10)).astype(int)
    return sorted({0, *map(int, logs), epochs // 2, epochs} - {-1})


def _arm_plan(act: str, opts: StudyOptions) -> tuple[int, int]:
    kind = arm_kind(act)
    default = EPOCHS[kind]
    seeds = opts.pick("seeds", *SEEDS[kind])
    epochs = opts.pick("epochs", *default)
    return seeds, epochs


def cells(opts: StudyOptions) -> list[Cell]:
    base = PRESETS["question"]
    if opts.layers:
        base = base.replace(layers=opts.layers)
    out = []
    for act in opts.pick("activations", ARMS):
        kind = arm_kind(act)
        seeds, epochs = _arm_plan(act, opts)
        lrs = opts.lrs or (LR.get(act, RECTIFIER_LR if kind == "rectifier" else SMOOTH_LR),)
        for variant, (changes, applies) in VARIANTS.items():
            if applies not in ("all", kind, act):
                continue
            cfg = base.replace(**({"activation": act} | changes))
            for lr in lrs:
                extra = {}
                if kind == "rectifier":
                    extra = {
                        "record": "grad_norm_W,grad_norm_b,dead",
                        "record_every": Schedule.at(*record_epochs(epochs)),
                    }
                out.append(Cell(
                    NAME,
                    (("variant", variant), ("arm", act), ("activation", cfg.activation),
                     ("lr", float(lr))),
                    cfg.replace(lr=float(lr), epochs=epochs), (0, seeds),
                    loss_every=Schedule.log(20), **extra, **opts.data_kwargs(),
                ))
    return out
