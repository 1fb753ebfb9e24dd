"""The relu_failure study's grid: which configurations it trains, on which seeds, for how long."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from diagnostics.config import Config
from diagnostics.initializers import get_initializer
from diagnostics.presets import PRESETS
from diagnostics.schedules import Schedule
from studies.run.budget import HEADLINE_EPOCHS
from studies.run.cells import Cell
from studies.run.study import StudyOptions

NAME = "relu_failure"
TITLE = "When and why ReLU networks fail: one factor at a time around the question's program"
SEEDS = 500  # seeds per trained cell
QUICK_SEEDS = 30
EPOCHS = HEADLINE_EPOCHS  # one budget for headline numbers
QUICK_EPOCHS = 60
ENSEMBLE_PER_SEED = 40  # the init-only ensemble has this many seeds per trained-cell seed
SECOND_LAYER_PER_SEED = 10  # seeds of each init-only second-layer cell, per trained-cell seed
ENSEMBLE_WIDTH = 32  # first-layer width of the init-only ensemble (all-dead for n <= this)


def _hidden(c: Config) -> tuple[int, ...]:
    return c.layers[1:-1]


def _with_hidden(c: Config, hidden: tuple[int, ...]) -> Config:
    return c.replace(layers=(c.layers[0], *hidden, c.layers[-1]))


def _uniform_width(c: Config) -> int | None:
    h = _hidden(c)
    return h[0] if h and len(set(h)) == 1 else None


BIAS_INITS: dict[str, tuple[str, float]] = {  # value -> (bias_init, bias_scale)
    "normal": ("normal", 1.0),
    "zero": ("zero", 1.0),
    "constant_0.1": ("constant", 0.1),
}


def _bias_value(c: Config) -> str | None:
    for value, (kind, scale) in BIAS_INITS.items():
        if c.bias_init == kind and (kind == "zero" or c.bias_scale == scale):
            return value
    return None


def _leaky_value(c: Config) -> float | None:
    if c.activation == "relu":
        return 0.0
    return c.leaky_slope if c.activation == "leaky_relu" else None


def _with_leaky(c: Config, slope: float) -> Config:
    if slope == 0:
        return c.replace(activation="relu")
    return c.replace(activation="leaky_relu", leaky_slope=slope)


@dataclass(frozen=True)
class Factor:
    """One axis of the grid: its values, the baseline's value, and how a value changes a config."""

    title: str  # panel title
    values: tuple  # default values (the baseline's is added when missing)
    value_of: Callable[[Config], object]  # the value a config has (None: not on this axis)
    apply: Callable[[Config, object], Config]  # the config with this value
    numeric: bool = False  # values sorted as numbers (else the baseline's first, then as listed)
    axis: str = ""  # x-axis label of its panel
    label: Callable[[object], str] = lambda v: f"{v:g}" if isinstance(v, float) else str(v)


FACTORS: dict[str, Factor] = {
    "width": Factor(
        "width (units in every hidden layer)", (1, 2, 4, 8, 16, 32), _uniform_width,
        lambda c, w: _with_hidden(c, (w,) * len(_hidden(c))), numeric=True,
        axis="units per hidden layer",
    ),
    "depth": Factor(
        "depth (hidden layers)", (1, 2, 4, 6, 8, 10),
        lambda c: len(_hidden(c)) if _uniform_width(c) else None,
        lambda c, d: _with_hidden(c, (_hidden(c)[0],) * d), numeric=True,
        axis="hidden layers (baseline width)",
    ),
    "init": Factor(
        "weight initialisation", ("standard_normal", "xavier_normal", "he_normal", "rai"),
        lambda c: c.init, lambda c, v: c.replace(init=v), axis="weights (biases N(0,1))",
    ),
    "bias_init": Factor(
        "bias initialisation", tuple(BIAS_INITS), _bias_value,
        lambda c, v: c.replace(bias_init=BIAS_INITS[v][0], bias_scale=BIAS_INITS[v][1]),
        axis="biases (weights N(0,1))",
    ),
    "lr": Factor(
        "learning rate", (0.001, 0.003, 0.01, 0.03, 0.1), lambda c: c.lr,
        lambda c, v: c.replace(lr=float(v)), numeric=True, axis="learning rate (per update)",
    ),
    "optimizer": Factor(
        "optimizer", ("sgd", "momentum", "adam"), lambda c: c.optimizer,
        lambda c, v: c.replace(optimizer=v), axis="update rule (momentum 0.9; Adam 0.9, 0.999)",
    ),
    "output": Factor(
        "output activation", ("relu", "identity"),
        lambda c: c.output_activation or c.activation, lambda c, v: c.replace(output_activation=v),
        axis="output unit (hidden layers ReLU)",
    ),
    "leaky_slope": Factor(
        "leaky slope", (0.0, 0.01, 0.1, 0.3), _leaky_value, _with_leaky,
        numeric=True, axis="activation everywhere (negative slope)",
        label=lambda v: "relu" if v == 0 else f"leaky {v:g}",
    ),
}
ACTIVATION_FACTOR = Factor(  # added only when the user names activations (--activations)
    "activation (hidden and output)", (), lambda c: c.activation,
    lambda c, v: c.replace(activation=v), axis="activation",
)


@dataclass(frozen=True)
class Row:
    """One (factor, value) of the grid and the configuration that trains it."""

    factor: str
    value: str  # the value's label, e.g. "0.01", "xavier_normal", "leaky 0.1"
    order: int  # position on the factor's axis
    is_baseline: bool
    config: Config
    rank: int = 0  # position in the whole grid

    @property
    def cell_labels(self) -> tuple[tuple[str, object], ...]:
        key = ("baseline", "question") if self.is_baseline else (self.factor, self.value)
        return (("part", "trained"), ("factor", key[0]), ("level", key[1]))


def baseline(opts: StudyOptions, epochs: int) -> Config:
    """The question's program (on the user's layers, if given) with the study's epoch budget."""
    base = PRESETS["question"].replace(epochs=epochs)
    n_in, n_out = opts.io_shape()
    layers = opts.layers or (n_in, *PRESETS["question"].layers[1:-1], n_out)
    return base.replace(layers=tuple(layers))


def factors(opts: StudyOptions) -> dict[str, Factor]:
    """The factors this run varies: the default table, the user's lrs, and activations if named."""
    out = dict(FACTORS)
    if opts.lrs:
        out["lr"] = dataclasses.replace(FACTORS["lr"], values=tuple(opts.lrs))
    if opts.activations:
        out["activation"] = dataclasses.replace(ACTIVATION_FACTOR, values=tuple(opts.activations))
    return out


def grid(opts: StudyOptions, base: Config) -> list[Row]:
    """Every (factor, value) row, in plotting order; the baseline's rows share its config."""
    rows = []
    for name, f in factors(opts).items():
        if name in ("width", "depth") and not _hidden(base):
            continue  # no hidden layer to vary
        here = f.value_of(base)
        values = list(f.values)
        if here is not None and here not in values:
            values = [here, *values]
        if f.numeric:
            values = sorted(values)
        elif here in values:
            values = [here, *(v for v in values if v != here)]
        for k, v in enumerate(values):
            is_base = v == here
            config = base if is_base else f.apply(base, v)
            rows.append(Row(name, f.label(v), k, is_base, config, rank=len(rows)))
    return rows


def _theory_config(layers: tuple[int, ...], **changes) -> Config:
    """The question's ReLU network at initialisation only (one epoch; nothing read after it)."""
    return PRESETS["question"].replace(layers=layers, epochs=1, **changes)


def theory_cells(opts: StudyOptions, seeds: int) -> list[Cell]:
    """Init-only cells: the large first-layer ensemble, scale checks and second-layer units."""
    n_in, n_out = opts.io_shape()
    common = {"loss_every": Schedule.never(), "record": "dead", "record_every": Schedule.at(0),
              **opts.data_kwargs()}
    n_ens = seeds * ENSEMBLE_PER_SEED
    out = [Cell(NAME, (("part", "ensemble"), ("factor", "width"), ("level", ENSEMBLE_WIDTH)),
                _theory_config((n_in, ENSEMBLE_WIDTH, n_out)), (0, n_ens), **common)]
    width = 4
    xavier_std = weight_std("xavier_normal", n_in, width)
    out.append(Cell(
        NAME, (("part", "scale"), ("factor", "xavier_normal"), ("level", "matched")),
        _theory_config((n_in, width, n_out), init="xavier_normal", bias_scale=xavier_std),
        (0, n_ens // 4), **common,
    ))
    for n1 in second_layer_widths(n_in):
        out.append(Cell(
            NAME, (("part", "second_layer"), ("factor", "n1"), ("level", n1)),
            _theory_config((n_in, n1, n_out)), (0, seeds * SECOND_LAYER_PER_SEED), **common,
        ))
    return out


def second_layer_widths(n0: int) -> list[int]:
    """First-layer widths n1 = 1 .. min(n0 + 1, 4): where the second-layer closed form is known."""
    return list(range(1, min(n0 + 1, 4) + 1))


def cells(opts: StudyOptions) -> list[Cell]:
    """One trained cell per (factor, value), the baseline once, then the init-only cells."""
    seeds = opts.pick("seeds", SEEDS, QUICK_SEEDS)
    epochs = opts.pick("epochs", EPOCHS, QUICK_EPOCHS)
    base = baseline(opts, epochs)
    rows_of: dict[tuple, list[Row]] = {}  # the baseline cell serves every factor's baseline row
    for row in grid(opts, base):
        rows_of.setdefault(row.cell_labels, []).append(row)
    out = [Cell(NAME, labels, rows[0].config, (0, seeds), loss_every=Schedule.never(),
                record="dead", record_every=Schedule.at(0, epochs), roles=tuple(rows),
                **opts.data_kwargs())
           for labels, rows in rows_of.items()]
    return out + theory_cells(opts, seeds)


def weight_std(init: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of a Gaussian initializer's weights, from its table entry (nan for
    the others: the dead-unit closed form needs Gaussian weights)."""
    entry = get_initializer(init)
    return entry.std(fan_in, fan_out) if entry.gaussian else math.nan
