"""The mechanisms study's grid: which configurations it trains, on which seeds, for how long.

Every cell is labelled ``(part, variant, activation, lr)``; ``lr`` is the arm's learning rate (the
program's), so a variant trained at another step (momentum at lr·(1 − β)) stays paired with its
arm. Cells that serve several experiments are trained once:

- ``asymptote`` / ``as_written`` (tanh, sigmoid at lr 0.1, as many seeds as the ReLU program):
  the as-written arm of the asymptote experiment, of "reaches zero" and of the corrected table.
- ``tail`` / ``as_written`` (the same programs, fewer seeds, the long run): the tail law, the
  plateau count and the observed pass of the output slope.
- ``relu`` / ``sgd`` (the program as written): the plain-SGD arm of the momentum experiment, the
  trained program of the dead-output split, the revival count and "reaches zero".
- ``corrected`` / ``corrected`` (the corrected program): the corrected table, and the reference of
  the ``alternative`` cells, which train it with one change each on its first seeds.
"""

from __future__ import annotations

from dataclasses import fields

from diagnostics.activations import get_activation
from diagnostics.config import Config
from diagnostics.presets import PRESETS
from diagnostics.schedules import Schedule
from studies.run.budget import HEADLINE_EPOCHS, LONG_EPOCHS
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "mechanisms"
TITLE = ("Mechanisms: the output's asymptote and slope, the tail's law, a linear baseline, "
         "momentum at a matched step, dead outputs, the bias decay and the revivals it causes, "
         "what the program prints, and the corrected program's alternatives")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
RELU_LR = 0.01  # the question's learning rate (rectifier arms)
SMOOTH_LR = 0.1  # what the user ran tanh and sigmoid with
SEEDS = {"rectifier": (1000, 50), "smooth": (100, 8),  # (default, quick) seeds per cell
         "alternative": (200, 8)}  # the corrected program's first seeds, changed one at a time
BUDGET = (HEADLINE_EPOCHS, 300)  # (default, quick): the one budget of the headlines
TAIL_FACTOR = 20  # a budget the user chose gives a tail run of this many budgets
QUICK_TAIL = 3000  # quick mode's tail run (when the budget is the default)
TAIL_POINTS = 300  # log-spaced loss recordings of the tail run
TARGET_SCALE = 0.5  # the asymptote experiment's targets: y * TARGET_SCALE, inside (0, 1)
MOMENTUM = 0.9  # heavy-ball beta
INIT_PER_SEED = 10  # init-only seeds per rectifier seed (10,000 by default)
RECORD_POINTS = 30  # log-spaced instrument recordings of the trained ReLU program
RECORD = "grad_norm_W,grad_norm_b,dead"
FINE = 1e-6  # a second loss level: how far below the threshold the seeds get within the budget
CORRECTED = PRESETS["corrected"]  # the corrected program (studies/report/corrected_program.py)
INITS: dict[str, dict] = {  # dead output at init: the question's draw and two scaled ones
    "normal": {},
    "xavier_normal": {"init": "xavier_normal", "bias_init": "zero"},
    "he_normal": {"init": "he_normal", "bias_init": "zero"},
}
ALTERNATIVES: dict[str, dict] = {  # the corrected program with one change (``alternative``)
    "width_4": {"hidden_width": 4},  # every hidden layer this wide
    "width_16": {"hidden_width": 16},
    "updated_weights": {"backprop_weights": "updated"},  # the program's back-propagation
    "he_normal": INITS["he_normal"],
    "xavier_normal": INITS["xavier_normal"],
    "hidden_output": {"output_activation": None},  # the hidden activation on the output too
}
ASYMPTOTE_VARIANTS = ("as_written", "halved_targets", "linear_output")
MOMENTUM_VARIANTS = ("sgd", "momentum", "momentum_matched")
LINEAR_VARIANTS = ("as_written", "fixed")

VARIANT_LABELS = {
    "as_written": "as written",
    "halved_targets": f"targets x {TARGET_SCALE:g}",
    "linear_output": "linear output unit",
    "sgd": "plain SGD (as written)",
    "momentum": f"momentum {MOMENTUM:g}, same lr",
    "momentum_matched": f"momentum {MOMENTUM:g}, lr x {1 - MOMENTUM:g}",
    "fixed": "true bias gradient",
    "normal": "N(0,1) weights and biases (the question)",
    "xavier_normal": "Xavier normal, zero bias",
    "he_normal": "He normal, zero bias",
    "corrected": "none (the corrected program)",
    "width_4": "hidden width 4",
    "width_16": "hidden width 16",
    "updated_weights": "back-propagation through the updated weights",
    "hidden_output": "the hidden activation on the output",
}


def is_rectifier(activation: str) -> bool:
    return get_activation(activation).rectifier


def budgets(opts: StudyOptions) -> tuple[int, int]:
    """(budget, tail epochs): the headline budget and the long run by default, quick 300 and
    3000; a budget the user chose (``--epochs``) gives a tail of ``TAIL_FACTOR`` budgets."""
    budget = opts.pick("epochs", *BUDGET)
    if opts.epochs is not None:
        return budget, TAIL_FACTOR * budget
    return budget, QUICK_TAIL if opts.quick else LONG_EPOCHS


def seeds_of(opts: StudyOptions, kind: str) -> int:
    return opts.pick("seeds", *SEEDS[kind])


def record_schedule(budget: int) -> Schedule:
    """Epoch 0, log-spaced epochs and the budget: where instruments read the ReLU program."""
    return Schedule.at(*Schedule.log(RECORD_POINTS).epochs(budget, first=0))


def tail_schedule(tail: int, budget: int) -> Schedule:
    """The tail run's loss recordings: log-spaced, plus the budget's epoch."""
    epochs = {*map(int, Schedule.log(TAIL_POINTS).epochs(tail, first=1)), budget}
    return Schedule.at(*sorted(epochs))


def alternative(config: Config, changes: dict) -> Config:
    """``config`` with ``changes``; ``hidden_width`` sets the width of every hidden layer."""
    changes = dict(changes)
    width = changes.pop("hidden_width", None)
    if width is not None:
        n_hidden = len(config.layers) - 2
        changes["layers"] = (config.layers[0], *[width] * n_hidden, config.layers[-1])
    return config.replace(**changes)


def is_users(variant: str) -> bool:
    """The alternative puts back the question program's own setting: every field it changes on
    the corrected preset then equals the question preset's."""
    changed = alternative(CORRECTED, ALTERNATIVES[variant])
    question = PRESETS["question"]
    names = [f.name for f in fields(Config) if getattr(changed, f.name) != getattr(CORRECTED,
                                                                                    f.name)]
    return all(getattr(changed, k) == getattr(question, k) for k in names)


def linear_layers(layers: tuple[int, ...]) -> tuple[int, int]:
    """The single linear neuron: the network's inputs straight to its outputs."""
    return layers[0], layers[-1]


def scaled_spec(data: str) -> str:
    return f"scaled:{TARGET_SCALE:g}:{data}"


def _base(opts: StudyOptions) -> Config:
    base = PRESETS["question"]
    return base.replace(layers=opts.layers) if opts.layers else base


def _arms(opts: StudyOptions) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(rectifier arms, smooth arms) as (activation, lr)."""
    acts = opts.pick("activations", ACTIVATIONS)
    rect = [(a, float(lr)) for a in acts if is_rectifier(a) for lr in (opts.lrs or (RELU_LR,))]
    smooth = [(a, float(lr)) for a in acts if not is_rectifier(a)
              for lr in (opts.lrs or (SMOOTH_LR,))]
    return rect, smooth


def cells(opts: StudyOptions) -> list[Cell]:
    budget, tail = budgets(opts)
    base = _base(opts).replace(epochs=budget)
    data = opts.data_kwargs()
    n_rect, n_smooth = seeds_of(opts, "rectifier"), seeds_of(opts, "smooth")
    n_alt = min(seeds_of(opts, "alternative"), n_rect)  # the corrected cells' first seeds
    rect, smooth = _arms(opts)

    def cell(part, variant, act, lr, config, n, **kw) -> Cell:
        kw = {**data, **kw}
        return Cell(NAME, (("part", part), ("variant", variant), ("activation", act),
                           ("lr", lr)), config, (0, n), **kw)

    out = []
    for act, lr in smooth:
        cfg = base.replace(activation=act, lr=lr)
        out.append(cell("tail", "as_written", act, lr, cfg.replace(epochs=tail), n_smooth,
                        loss_every=tail_schedule(tail, budget), thresholds=(FINE,)))
        out.append(cell("asymptote", "as_written", act, lr, cfg, n_rect,
                        loss_every=Schedule.log(20), thresholds=(FINE,)))
        out.append(cell("asymptote", "halved_targets", act, lr,
                        cfg.replace(threshold=cfg.threshold * TARGET_SCALE**2), n_rect,
                        loss_every=Schedule.log(20), data=scaled_spec(opts.data)))
        out.append(cell("asymptote", "linear_output", act, lr,
                        cfg.replace(output_activation="identity"), n_rect,
                        loss_every=Schedule.log(20)))
    for act, lr in rect:
        cfg = base.replace(activation=act, lr=lr)
        out.append(cell("relu", "sgd", act, lr, cfg, n_rect, loss_every=Schedule.at(budget),
                        record=RECORD, record_every=record_schedule(budget), thresholds=(FINE,)))
        mom = cfg.replace(optimizer="momentum", momentum=MOMENTUM)
        out.append(cell("relu", "momentum", act, lr, mom, n_rect, loss_every=Schedule.at(budget)))
        out.append(cell("relu", "momentum_matched", act, lr, mom.replace(lr=lr * (1 - MOMENTUM)),
                        n_rect, loss_every=Schedule.at(budget)))
        for init, changes in INITS.items():
            out.append(cell("init", init, act, lr, cfg.replace(epochs=1, **changes),
                            n_rect * INIT_PER_SEED, loss_every=Schedule.never(), record="dead",
                            record_every=Schedule.at(0)))
    for act in dict.fromkeys(a for a, _ in [*rect, *smooth]):
        fixed = CORRECTED.replace(activation=act, epochs=budget)
        if opts.layers:  # the user's network, corrected the same way
            fixed = fixed.replace(layers=opts.layers)
        out.append(cell("corrected", "corrected", act, fixed.lr, fixed, n_rect,
                        loss_every=Schedule.at(budget), thresholds=(FINE,)))
        for variant, changes in ALTERNATIVES.items():
            changed = alternative(fixed, changes)
            if changed != fixed:  # e.g. width 4 when the user's layers are 4 wide already
                out.append(cell("alternative", variant, act, fixed.lr, changed, n_alt,
                                loss_every=Schedule.at(budget)))
    lin = base.replace(layers=linear_layers(base.layers), output_activation="identity")
    for lr in dict.fromkeys(lr for _, lr in [*rect, *smooth]):
        for variant in LINEAR_VARIANTS:
            fix = {"bias_update": "gradient", "backprop_weights": "current"}
            cfg = lin.replace(lr=lr, **(fix if variant == "fixed" else {}))
            out.append(cell("linear", variant, "identity", lr, cfg, max(n_rect, n_smooth),
                            loss_every=Schedule.at(budget), thresholds=(FINE,)))
    return out
