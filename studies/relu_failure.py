"""Study ``relu_failure``: how often ReLU networks fail to train, and why, one factor at a time.

The baseline is the question's program, faithfully (``PRESETS["question"]``: ReLU everywhere
including the output, N(0, 1) weights and biases, online SGD at lr 0.01, the bias-decay and
updated-weights quirks, layers 2-4-4-1). Around it one factor changes at a time: width (every
hidden layer), depth (hidden layers of the baseline's width), weight initialisation (including the
randomized asymmetric initialisation of Lu et al. 2019), learning rate, bias initialisation,
output activation, optimizer and leaky slope. A seed *fails* when its epoch loss never reaches the
threshold within the budget. Failures are split by whether the network's output is constant on the
dataset (``network_dead``): *born dead* (already at initialisation), *died* (at the end but not at
initialisation) and *other* (the output still varies at the end, or the seed diverged; this
includes slow seeds that would converge after the budget).

Defaults: 500 seeds and 1500 epochs per cell (the question's program converges 55% of its seeds
by epoch 1500, 56% by 2000, 58% by 5000), chosen so the whole study costs about 100 CPU-seconds.

Theory: a first-layer unit with (w, b) i.i.d. Gaussian is dead on the data with the solid-angle
probability ``theory.dead_probability(X)``; a layer of width n is entirely dead with pⁿ. Both are
measured on a large ensemble at initialisation (the first n units of a 32-unit first layer, for
every n) and on the trained cells; a change of variable extends the closed form to weights and
biases of different scales. The second-layer formula of Brownlowe et al. (inactive on all of
R^n0) is set beside the measured share of second-layer units dead on the data.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics import theory
from diagnostics.config import Config
from diagnostics.data import load_data
from diagnostics.presets import PRESETS

from . import plots
from .base import StudyOptions, read_table
from .runner import Cell, CellResult
from .summaries import prefixed_proportion, proportion, read_proportion

NAME = "relu_failure"
TITLE = "When and why ReLU networks fail: one factor at a time around the question's program"

SEEDS, QUICK_SEEDS = 500, 30  # seeds per trained cell
EPOCHS, QUICK_EPOCHS = 1500, 60  # epoch budget per trained cell
ENSEMBLE_PER_SEED = 40  # the init-only ensemble has this many seeds per trained-cell seed
SECOND_LAYER_PER_SEED = 10  # seeds of each init-only second-layer cell, per trained-cell seed
ENSEMBLE_WIDTH = 32  # first-layer width of the init-only ensemble (all-dead for n <= this)
CATEGORIES = ("born_dead", "died", "other")  # the failure split; with "converged" a partition
ZERO_BIAS_RATIO = 1e9  # weight/bias scale ratio standing in for a zero bias (the limit)


# ---- the grid, written as data ---------------------------------------------------------------


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
            rows.append(Row(name, f.label(v), k, is_base, base if is_base else f.apply(base, v)))
    return rows


def _theory_config(layers: tuple[int, ...], **changes) -> Config:
    """The question's ReLU network at initialisation only (one epoch; nothing read after it)."""
    return PRESETS["question"].replace(layers=layers, epochs=1, **changes)


def theory_cells(opts: StudyOptions, seeds: int) -> list[Cell]:
    """Init-only cells: the large first-layer ensemble, scale checks and second-layer units."""
    n_in, n_out = opts.io_shape()
    common = {"loss_every": "none", "record": "dead", "record_every": "list:0",
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
    out, seen = [], set()
    for row in grid(opts, base):
        if row.cell_labels in seen:
            continue
        seen.add(row.cell_labels)
        out.append(Cell(NAME, row.cell_labels, row.config, (0, seeds), loss_every="none",
                        record="dead", record_every=f"list:0,{epochs}", **opts.data_kwargs()))
    return out + theory_cells(opts, seeds)


# ---- helpers with closed forms ---------------------------------------------------------------


WEIGHT_STDS: dict[str, Callable[[int, int], float]] = {  # Gaussian initializers: std(fan_in, out)
    "standard_normal": lambda i, o: 1.0,
    "xavier_normal": lambda i, o: math.sqrt(2.0 / (i + o)),
    "he_normal": lambda i, o: math.sqrt(2.0 / i),
    "lecun_normal": lambda i, o: math.sqrt(1.0 / i),
}


def weight_std(init: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of a Gaussian initializer's weights (nan for the others)."""
    f = WEIGHT_STDS.get(init)
    return f(fan_in, fan_out) if f else math.nan


def unit_dead_probability(X: np.ndarray, w_std: float, b_std: float) -> float:
    """P(w·x_i + b <= 0 for all i) for w ~ N(0, w_std² I), b ~ N(0, b_std²); b_std = 0: b = 0.

    With v = w / w_std the condition is v·(w_std/b_std · x_i) + b/b_std <= 0, i.e. the i.i.d.
    closed form on rescaled data: dead_probability((w_std / b_std) X); equal scales leave it
    unchanged. A zero bias is the limit w_std/b_std -> inf (rows at the origin impose nothing);
    for 2-D data it is (π − θ)/(2π), θ the angle the data directions span.
    """
    X = np.asarray(X, dtype=np.float64)
    if not (w_std > 0 and b_std >= 0):
        return math.nan
    if b_std == 0:
        X = X[np.any(X != 0, axis=1)]
        if X.shape[0] == 0:
            return 1.0
        return theory.dead_probability(X * ZERO_BIAS_RATIO)
    return theory.dead_probability(X * (w_std / b_std))


def classify(converged: np.ndarray, dead_initial: np.ndarray, dead_final: np.ndarray) -> np.ndarray:
    """Per seed: converged, or a failure that was born_dead, died, or other (a partition)."""
    converged = np.asarray(converged, bool)
    dead_initial = np.asarray(dead_initial, bool)
    dead_final = np.asarray(dead_final, bool)
    return np.where(converged, "converged", np.where(
        dead_initial, "born_dead", np.where(dead_final, "died", "other"))).astype(str)


def first_units_all_dead(dead_units: pd.DataFrame, widths) -> dict[int, int]:
    """For each w, the number of seeds whose units 0..w-1 are all dead.

    ``dead_units`` has one row per dead unit: columns seed and unit (0-based).
    """
    out = {}
    for w in widths:
        counts = dead_units[dead_units.unit < w].groupby("seed").unit.nunique()
        out[int(w)] = int((counts == w).sum())
    return out


# ---- tables ----------------------------------------------------------------------------------


_prop = prefixed_proportion  # <prefix>_count/_share/_ci_low/_ci_high columns


def _dead_at(metrics: pd.DataFrame, epoch: int, layer: int, metric: str) -> pd.Series:
    m = metrics[(metrics.epoch == epoch) & (metrics.layer == layer) & (metrics.metric == metric)]
    return m.set_index("seed").value


def _per_seed(result: CellResult, epochs: int) -> pd.DataFrame:
    o = result.outcomes
    m = result.metrics
    seeds = o.seed.to_numpy()
    dead0 = _dead_at(m, 0, 0, "network_dead").reindex(seeds).fillna(0).to_numpy() == 1
    deadE = _dead_at(m, epochs, 0, "network_dead").reindex(seeds).fillna(0).to_numpy() == 1
    return pd.DataFrame({
        "seed": seeds, "outcome": o.outcome.to_numpy(),
        "epochs_to_threshold": o.epochs_to_threshold.to_numpy(),
        "final_loss": o.final_loss.to_numpy(), "dead_initial": dead0, "dead_final": deadE,
        "category": classify(o.outcome.to_numpy() == "converged", dead0, deadE),
    })


def _failure_row(row: Row, seeds: pd.DataFrame, epochs: int) -> dict:
    n = len(seeds)
    cat = seeds.category
    out = {"factor": row.factor, "value": row.value, "order": row.order,
           "is_baseline": row.is_baseline, "layers": "-".join(map(str, row.config.layers)),
           "n": n, "epochs": epochs}
    out |= _prop("failure", int((cat != "converged").sum()), n)
    for c in CATEGORIES:
        out |= _prop(c, int((cat == c).sum()), n)
    out |= _prop("converged", int((cat == "converged").sum()), n)
    out |= _prop("dead_initial", int(seeds.dead_initial.sum()), n)  # failed or not
    out |= {"stuck_count": int((seeds.outcome == "stuck").sum()),
            "diverged_count": int((seeds.outcome == "diverged").sum()),
            "dead_initial_converged_count": int((seeds.dead_initial
                                                 & (cat == "converged")).sum())}
    return out


def _dead_layers(row: Row, result: CellResult, epochs: int) -> list[dict]:
    m = result.metrics
    m = m[m.metric == "dead_fraction"]
    n = len(result.outcomes)
    rows = []
    for when, epoch in (("initial", 0), ("final", epochs)):
        for layer, part in m[m.epoch == epoch].groupby("layer"):
            rows.append({"factor": row.factor, "value": row.value, "order": row.order,
                         "is_baseline": row.is_baseline, "when": when, "layer": int(layer),
                         "n_layers": len(row.config.layers) - 1, "n": n,
                         "mean_dead_fraction": float(part.value.mean())}
                        | _prop("all_dead", int((part.value == 1).sum()), n))
    return rows


def _units_dead(result: CellResult, layer: int, width: int) -> tuple[int, int, pd.Series]:
    """(dead units, units, per-seed dead fraction) of ``layer`` (``width`` units) at epoch 0."""
    frac = _dead_at(result.metrics, 0, layer, "dead_fraction")
    return int(round(float(frac.sum()) * width)), len(frac) * width, frac


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    """failure, per_seed, dead_layers, born_dead_theory, born_dead_conditions, second_layer."""
    epochs = opts.pick("epochs", EPOCHS, QUICK_EPOCHS)
    base = baseline(opts, epochs)
    X = load_data(opts.data, inputs=opts.inputs, targets=opts.targets).X
    n_in = X.shape[1]
    by_key = {(r.labels["part"], r.labels["factor"], r.labels["level"]): r for r in results}
    rows = grid(opts, base)
    base_row = Row("baseline", "question", 0, True, base)
    trained = {r.cell_labels: by_key[tuple(v for _, v in r.cell_labels)] for r in rows}
    base_result = by_key[("trained", "baseline", "question")]

    per_seed, failure, dead_layers = [], [], []
    for row in [base_row, *rows]:
        result = base_result if row.is_baseline else trained[row.cell_labels]
        s = _per_seed(result, epochs)
        if not row.is_baseline or row is base_row:
            per_seed.append(s.assign(factor=row.factor, value=row.value))
        failure.append(_failure_row(row, s, epochs))
        dead_layers.extend(_dead_layers(row, result, epochs))
    per_seed_frame = pd.concat(per_seed, ignore_index=True)
    per_seed_frame = per_seed_frame[["factor", "value", *per_seed_frame.columns[:-2]]]

    p_iid = theory.dead_probability(X)
    ens = by_key[("ensemble", "width", ENSEMBLE_WIDTH)]
    by_width = _ensemble_by_width(ens, p_iid)
    by_width += _trained_by_width(rows, trained, p_iid, base)
    return {
        "failure": pd.DataFrame(failure),
        "per_seed": per_seed_frame,
        "dead_layers": pd.DataFrame(dead_layers),
        "born_dead_theory": pd.DataFrame(by_width),
        "born_dead_conditions": _conditions(rows, trained, base, base_result, by_key, X, ens),
        "second_layer": _second_layer(by_key, n_in, base.layers[-1]),
    }


def _ensemble_by_width(ens: CellResult, p: float) -> list[dict]:
    ev = ens.events
    dead = ev[(ev.layer == 1) & (ev.event == "born_dead") & (ev.epoch == 0)]
    n = len(ens.outcomes)
    widths = range(1, ENSEMBLE_WIDTH + 1)
    all_dead = first_units_all_dead(dead, widths)
    rows = []
    for w in widths:
        k_units = int((dead.unit < w).sum())
        rows.append({"source": "ensemble", "width": w, "n_seeds": n, "unit_n": n * w}
                    | _prop("unit", k_units, n * w) | {"theory_p": p}
                    | _prop("all_dead", all_dead[w], n)
                    | {"theory_all_dead": theory.all_dead_probability(p, w)})
    return rows


def _trained_by_width(rows: list[Row], trained: dict, p: float, base: Config) -> list[dict]:
    """Layer 1 at epoch 0 of the trained width cells (only when their init is the i.i.d. one)."""
    if not (base.init == "standard_normal" and base.bias_init == "normal"
            and base.bias_scale == 1.0):
        return []
    out = []
    for row in (r for r in rows if r.factor == "width"):
        w = row.config.layers[1]
        k, n_units, frac = _units_dead(trained[row.cell_labels], 1, w)
        out.append({"source": "trained", "width": w, "n_seeds": len(frac), "unit_n": n_units}
                   | _prop("unit", k, n_units) | {"theory_p": p}
                   | _prop("all_dead", int((frac == 1).sum()), len(frac))
                   | {"theory_all_dead": theory.all_dead_probability(p, w)})
    return out


def condition_name(c: Config) -> str:
    """A short name of a config's first-layer distribution, e.g. ``he_normal w, N(0,1²) b``."""
    if c.init == "rai":
        return "rai: w and b drawn together"
    bias = {"normal": f"N(0,{c.bias_scale:.3g}²) b", "zero": "zero b",
            "constant": f"b = {c.bias_scale:g}"}[c.bias_init]
    return f"{c.init} w, {bias}"


def _condition(source: str, config: Config, result: CellResult, X: np.ndarray) -> dict:
    n_in, width = X.shape[1], config.layers[1]
    k, n_units, _ = _units_dead(result, 1, width)
    w_std = weight_std(config.init, n_in, width)
    b_std = {"normal": config.bias_scale, "zero": 0.0}.get(config.bias_init, math.nan)
    if config.init == "rai":
        b_std = math.nan  # rai draws (w, b) itself, with one Beta(2, 1) entry: not Gaussian
    p = unit_dead_probability(X, w_std, b_std) if np.isfinite(w_std * b_std) else math.nan
    prop = proportion(k, n_units)
    return {"condition": condition_name(config), "source": source, "init": config.init,
            "bias_init": "rai" if config.init == "rai" else config.bias_init,
            "weight_std": w_std, "bias_std": b_std, "same_scale": bool(w_std == b_std),
            "unit_n": n_units} | _prop("unit", k, n_units) | {
            "theory_p": p,
            "theory_in_ci": bool(prop["ci_low"] <= p <= prop["ci_high"]) if p == p else False}


def _conditions(rows: list[Row], trained: dict, base: Config, base_result: CellResult,
                by_key: dict, X: np.ndarray, ens: CellResult) -> pd.DataFrame:
    """Layer-1 dead share at init per initialisation, against the (rescaled) closed form."""
    n_in, n_out = X.shape[1], base.layers[-1]
    out = [_condition("trained (baseline)", base, base_result, X),
           _condition("init-only ensemble", _theory_config((n_in, ENSEMBLE_WIDTH, n_out)), ens,
                      X)]
    for row in rows:
        if not row.is_baseline and row.factor in ("init", "bias_init"):
            out.append(_condition(f"trained ({row.factor} {row.value})", row.config,
                                  trained[row.cell_labels], X))
    xs = weight_std("xavier_normal", n_in, 4)
    out.append(_condition("init-only ensemble", _theory_config(
        (n_in, 4, n_out), init="xavier_normal", bias_scale=xs),
        by_key[("scale", "xavier_normal", "matched")], X))
    return pd.DataFrame(out)


def _second_layer(by_key: dict, n0: int, n_out: int) -> pd.DataFrame:
    out = []
    for n1 in second_layer_widths(n0):
        result = by_key[("second_layer", "n1", n1)]
        k, n_units, frac = _units_dead(result, 2, n_out)
        out.append({"n0": n0, "n1": n1, "n_seeds": len(frac), "unit_n": n_units}
                   | _prop("unit", k, n_units)
                   | {"theory_whole_space": theory.second_layer_dead_probability(n0, n1)})
    return pd.DataFrame(out)


# ---- figures (from the CSV files only) -------------------------------------------------------


CATEGORY_STYLE = {  # failure category -> (colour, legend label); stuck-like is vermillion
    "born_dead": ("#D55E00", "born dead (output constant at init)"),
    "died": ("#CC79A7", "died (output constant at the end only)"),
    "other": ("#E69F00", "other (output still varies, or diverged)"),
}


def figures(tables_dir: Path, out_dir: Path) -> list[Path]:
    """failure_by_factor.png and born_dead_theory.png, from the CSV tables."""
    return [_failure_figure(tables_dir, out_dir), _theory_figure(tables_dir, out_dir)]


def _tick(value: str) -> str:
    return str(value).replace("_", "\n", 1) if len(str(value)) > 8 else str(value)


def _failure_figure(tables_dir: Path, out_dir: Path) -> Path:
    t = read_table(tables_dir, "failure")
    t = t[t.factor != "baseline"]
    names = list(dict.fromkeys(t.factor))
    ncols = min(4, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plots.figure(nrows, ncols, width=3.6, height=3.3, sharey=True, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        part = t[t.factor == name].sort_values("order")
        x = np.arange(len(part))
        bottom = np.zeros(len(part))
        for c, (col, label) in CATEGORY_STYLE.items():
            share = part[f"{c}_share"].to_numpy() * 100
            ax.bar(x, share, 0.7, bottom=bottom, color=col, label=label, edgecolor="white",
                   linewidth=0.5)
            bottom += share
        f = part.failure_share.to_numpy() * 100
        base = part.is_baseline.to_numpy(dtype=bool)
        if base.any():
            ax.bar(x[base], f[base], 0.7, fill=False, edgecolor="black", linewidth=1.6,
                   label="baseline: the question's program")
        err = np.array([f - part.failure_ci_low * 100, part.failure_ci_high * 100 - f])
        ax.errorbar(x, f, yerr=err, fmt="none", ecolor="black", elinewidth=1.0, capsize=3,
                    label="all failures, 95% Wilson CI")
        ax.set_xticks(x, [_tick(v) for v in part.value])
        factor = FACTORS.get(name, ACTIVATION_FACTOR)
        ax.set_title(factor.title)
        ax.set_xlabel(factor.axis)
        ax.set_ylim(0, 100)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("seeds that failed (%)")
    n, epochs = int(t.n.iloc[0]), int(t.epochs.iloc[0])
    layers = read_table(tables_dir, "failure").query("factor == 'baseline'").layers.iloc[0]
    fig.suptitle("ReLU failures, one factor at a time around the question's program "
                 f"({layers}, N(0,1) init, SGD lr 0.01; {n} seeds, {epochs} epochs per bar)")
    legend: dict = {}
    for ax in axes.flat[:len(names)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=3,
               frameon=False)
    return plots.save(fig, out_dir / "failure_by_factor.png")


def _errorbar(ax, x, share, lo, hi, **kw) -> None:
    ax.errorbar(x, share, yerr=[np.asarray(share) - lo, np.asarray(hi) - share], capsize=2,
                ms=4, **kw)


def _theory_figure(tables_dir: Path, out_dir: Path) -> Path:
    bw = read_table(tables_dir, "born_dead_theory")
    cond = read_table(tables_dir, "born_dead_conditions")
    second = read_table(tables_dir, "second_layer")
    relu = plots.color("relu")
    ens = bw[bw.source == "ensemble"].sort_values("width")
    trained = bw[bw.source == "trained"].sort_values("width")
    n_ens = int(ens.n_seeds.iloc[0])
    p = float(ens.theory_p.iloc[0])
    fig, axes = plots.figure(2, 2, width=6.0, height=4.4, squeeze=False)

    ax = axes[0, 0]
    widest = ens.iloc[-1]
    ax.axhspan(widest.unit_ci_low, widest.unit_ci_high, color=relu, alpha=0.2, linewidth=0,
               label=f"init-only ensemble ({int(widest.unit_n):,} units), 95% CI")
    ax.axhline(p, color="black", linestyle="--", linewidth=1, label=f"closed form p = {p:.4f}")
    if len(trained):
        _errorbar(ax, trained.width, trained.unit_share, trained.unit_ci_low,
                  trained.unit_ci_high, fmt="s", color=relu,
                  label="trained width cells at epoch 0, 95% CI")
    lo = min(float(widest.unit_ci_low), p, *trained.unit_ci_low)
    hi = max(float(widest.unit_ci_high), p, *trained.unit_ci_high)
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.7 * (hi - lo))  # headroom for the legend
    ax.set_xscale("log", base=2)
    ax.set_xlabel("first-layer width n (units)")
    ax.set_ylabel("share of first-layer units dead at init")
    ax.set_title("(a) one first-layer unit is dead on the data")
    ax.legend(loc="upper center", fontsize=8)

    ax = axes[0, 1]
    ax.plot(ens.width, ens.theory_all_dead, color="black", linestyle="--", linewidth=1,
            label="closed form pⁿ")
    seen = ens[ens.all_dead_count > 0]
    _errorbar(ax, seen.width, seen.all_dead_share, seen.all_dead_ci_low, seen.all_dead_ci_high,
              fmt="o", color=relu, label=f"init-only ensemble: first n of {int(ens.width.max())}"
              f" units,\n{n_ens:,} seeds, 95% CI")
    none = ens[ens.all_dead_count == 0]
    if len(none):
        ax.plot(none.width, none.all_dead_ci_high, ":", color=relu,
                label="ensemble: none seen, 95% upper bound")
    if len(trained):
        ts = trained[trained.all_dead_count > 0]
        _errorbar(ax, ts.width, ts.all_dead_share, ts.all_dead_ci_low, ts.all_dead_ci_high,
                  fmt="s", color=relu, mfc="white",
                  label=f"trained cells ({int(trained.n_seeds.iloc[0])} seeds), 95% CI")
        tn = trained[trained.all_dead_count == 0]
        ax.scatter(tn.width, tn.all_dead_ci_high, marker="v", s=22, color="0.45",
                   label="trained cells: none seen, 95% upper bound")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(1e-7, 1.5)
    ax.set_xlabel("first-layer width n (units)")
    ax.set_ylabel("share of seeds with the whole first layer dead")
    ax.set_title("(b) the whole first layer is dead at init")
    ax.legend(loc="lower left", fontsize=8)  # p^n falls from the upper left: that corner is free

    ax = axes[1, 0]
    y = np.arange(len(cond))[::-1]
    ax.errorbar(cond.unit_share, y, xerr=[cond.unit_share - cond.unit_ci_low,
                cond.unit_ci_high - cond.unit_share], fmt="o", ms=4, color=relu, capsize=2,
                zorder=3, label="measured, 95% Wilson CI")
    ok = cond.theory_p.notna().to_numpy()
    ax.scatter(cond.theory_p[ok], y[ok], marker="x", s=45, color="black", zorder=2,
               label="closed form on rescaled data\n(Gaussian w and b only)")
    ax.set_yticks(y, [f"{c}\n{s}" for c, s in zip(cond.condition, cond.source, strict=True)],
                  fontsize=7.5)
    right = max(0.85, float(cond.unit_ci_high.max()) + 0.4)
    ax.set_xlim(0, right)  # Gaussian p <= 1/2: the legend sits to the right of every point
    ax.set_xlabel("share of first-layer units dead at init")
    ax.set_title("(c) by initialisation: measured vs closed form")
    ax.legend(loc="lower right", fontsize=8)

    ax = axes[1, 1]
    x = second.n1.to_numpy()
    _errorbar(ax, x, second.unit_share, second.unit_ci_low, second.unit_ci_high, fmt="o-",
              color=relu, label=f"measured: dead on the data\n({int(second.n_seeds.iloc[0]):,}"
              " seeds), 95% CI")
    ax.plot(x, second.theory_whole_space, "x--", color="black",
            label="Brownlowe et al. 2024:\ndead on all of Rⁿ⁰")
    ax.set_xticks(x)
    top = max(float(second.unit_ci_high.max()), float(second.theory_whole_space.max()))
    ax.set_ylim(0, min(1.0, top * 1.6))  # headroom for the legend
    ax.set_xlabel(f"first-layer width n1 (units; n0 = {int(second.n0.iloc[0])} inputs)")
    ax.set_ylabel("share of second-layer units dead at init")
    ax.set_title("(d) second layer: the data patch vs all of the input space")
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    fig.suptitle("Dead ReLU units at initialisation, measured vs closed form "
                 "(the question's data; N(0,1) weights and biases unless stated)")
    return plots.save(fig, out_dir / "born_dead_theory.png")


# ---- findings (from the CSV files only) ------------------------------------------------------


_share = read_proportion  # {share, lo, hi, count, n} from a row's <prefix>_* columns


def _split(row) -> dict:
    return {k: _share(row, k, row["n"]) for k in ("failure", *CATEGORIES)}


def findings(tables_dir: Path) -> dict:
    """The numbers the report quotes (JSON-ready, no NaN), from the CSV tables."""
    t = read_table(tables_dir, "failure")
    bw = read_table(tables_dir, "born_dead_theory")
    cond = read_table(tables_dir, "born_dead_conditions")
    second = read_table(tables_dir, "second_layer")
    layers = read_table(tables_dir, "dead_layers")
    base = t[t.factor == "baseline"].iloc[0]
    f: dict = {"baseline": _split(base), "factors": {}}
    f["baseline"]["dead_initial"] = _share(base, "dead_initial", base.n)  # failed or not
    f["baseline"]["dead_initial_converged"] = int(base.dead_initial_converged_count)
    for _, row in t[t.factor != "baseline"].iterrows():
        f["factors"].setdefault(row.factor, {})[str(row.value)] = _split(row) | {
            "is_baseline": bool(row.is_baseline)}
    ens = bw[bw.source == "ensemble"].sort_values("width")
    widest = ens.iloc[-1]
    f["theory"] = {
        "p_unit": float(widest.theory_p),
        "measured_unit": _share(widest, "unit", widest.unit_n),
        "by_width": {},
        "conditions": [
            {"condition": r.condition, "source": r.source,
             "theory_p": float(r.theory_p) if pd.notna(r.theory_p) else None,
             "measured": {"share": float(r.unit_share), "lo": float(r.unit_ci_low),
                          "hi": float(r.unit_ci_high)}, "theory_in_ci": bool(r.theory_in_ci)}
            for r in cond.itertuples()],
        "second_layer": {
            str(int(r.n1)): {"theory_whole_space": float(r.theory_whole_space),
                             "measured": {"share": float(r.unit_share), "lo": float(r.unit_ci_low),
                                          "hi": float(r.unit_ci_high)}}
            for r in second.itertuples()},
    }
    for r in ens.itertuples():
        f["theory"]["by_width"][str(int(r.width))] = {
            "theory_all_dead": float(r.theory_all_dead),
            "measured_all_dead": _share(r._asdict(), "all_dead", r.n_seeds)}
    for r in bw[bw.source == "trained"].itertuples():
        f["theory"]["by_width"].setdefault(str(int(r.width)), {})["trained_all_dead"] = _share(
            r._asdict(), "all_dead", r.n_seeds)
    best = [{"factor": "baseline", "value": "question", "failure_share": float(base.failure_share)}]
    best += [{"factor": r.factor, "value": str(r.value), "failure_share": float(r.failure_share)}
             for r in t[(t.factor != "baseline") & ~t.is_baseline].itertuples()]
    f["best"] = sorted(best, key=lambda d: d["failure_share"])
    bl = layers[(layers.factor == "baseline")]
    f["baseline_dead_layers"] = {
        when: {str(int(r.layer)): {"all_dead_share": float(r.all_dead_share),
                                   "mean_dead_fraction": float(r.mean_dead_fraction)}
               for r in part.itertuples()}
        for when, part in bl.groupby("when")}
    f["epochs"] = int(base.epochs)
    f["seeds"] = int(base.n)
    return f
