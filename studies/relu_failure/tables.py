"""The relu_failure study's tables: tidy frames computed from its cells' results, written as CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from diagnostics import theory
from diagnostics.config import Config
from studies.run.cells import CellResult
from studies.run.study import StudyOptions
from studies.stats.intervals import mcnemar_exact, paired_difference
from studies.stats.summaries import prefixed_proportion, proportion

from .grid import (
    ENSEMBLE_WIDTH,
    Row,
    _theory_config,
    second_layer_widths,
    weight_std,
)

CATEGORIES = ("born_dead", "died", "other")  # the failure split; with "converged" a partition
ZERO_BIAS_RATIO = 1e9  # weight/bias scale ratio standing in for a zero bias (the limit)


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


RANK_COLS = ["name", "count", "n", "share", "group", "leader", "leader_only", "variant_only",
             "diff", "diff_lo", "diff_hi", "mcnemar_p"]


def rank_groups(names: Sequence[str], failed: np.ndarray) -> pd.DataFrame:
    """Variants ranked by failure share, in groups that the seeds cannot tell apart.

    ``failed`` is ``(V, S)``: per variant, which of the same S seeds failed, so every comparison
    is paired. Going up the shares, the variant failing least leads the first group; each next
    variant joins the current group when its paired difference from the group's leader
    (Newcombe's 95% interval) includes 0, and otherwise leads a new group. So no variant is
    distinguishable from its group's leader (no order is claimed inside a group), and each
    leader fails significantly more often than the leader of the group before.

    Returns:
        One row per variant, by share: name, count, n, share, group (1, 2, ...), leader (its
        group's first), leader_only / variant_only (seeds that failed with one of the two only),
        diff = share - the leader's share with its interval diff_lo .. diff_hi, and mcnemar_p
        (the exact test on leader_only against variant_only); a leader has diff 0 and nan for
        the rest.
    """
    failed = np.asarray(failed, dtype=bool)  # (V, S)
    if failed.ndim != 2 or failed.shape[0] != len(names):
        raise ValueError(f"failed has shape {failed.shape}; expected ({len(names)}, seeds)")
    n = failed.shape[1]
    counts = failed.sum(axis=1)  # (V,)
    rows, group, lead = [], 0, -1
    for v in np.argsort(counts, kind="stable"):
        a, b = failed[lead], failed[v]
        lead_only, v_only = int((a & ~b).sum()), int((~a & b).sum())
        d, lo, hi = paired_difference(int((a & b).sum()), lead_only, v_only,
                                      int((~a & ~b).sum()))
        if lead < 0 or not lo <= 0.0 <= hi:  # the first, or told apart from the leader
            group, lead = group + 1, v
            lead_only = v_only = 0
            d, lo, hi = 0.0, math.nan, math.nan
        rows.append({"name": names[v], "count": int(counts[v]), "n": n,
                     "share": counts[v] / n if n else math.nan, "group": group,
                     "leader": names[lead], "leader_only": lead_only, "variant_only": v_only,
                     "diff": d, "diff_lo": lo, "diff_hi": hi,
                     "mcnemar_p": math.nan if v == lead else mcnemar_exact(lead_only, v_only)})
    return pd.DataFrame(rows, columns=RANK_COLS)


def first_units_all_dead(dead_units: pd.DataFrame, widths) -> dict[int, int]:
    """For each w, the number of seeds whose units 0..w-1 are all dead.

    ``dead_units`` has one row per dead unit: columns seed and unit (0-based).
    """
    out = {}
    for w in widths:
        counts = dead_units[dead_units.unit < w].groupby("seed").unit.nunique()
        out[int(w)] = int((counts == w).sum())
    return out


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
    by_key = {(r.labels["part"], r.labels["factor"], r.labels["level"]): r for r in results}
    base_result = by_key[("trained", "baseline", "question")]
    base = base_result.cell.config
    epochs = base.epochs
    X = base_result.cell.dataset().X
    n_in = X.shape[1]
    trained_results = [r for r in results if r.labels["part"] == "trained"]
    rows = sorted((row for r in trained_results for row in r.cell.roles), key=lambda w: w.rank)
    trained = {row.cell_labels: r for r in trained_results for row in r.cell.roles}
    base_row = Row("baseline", "question", 0, True, base)

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
        "ranking": _ranking(per_seed_frame),
        "per_seed": per_seed_frame,
        "dead_layers": pd.DataFrame(dead_layers),
        "born_dead_theory": pd.DataFrame(by_width),
        "born_dead_conditions": _conditions(rows, trained, base, base_result, by_key, X, ens),
        "second_layer": _second_layer(by_key, n_in, base.layers[-1]),
    }


PROGRAM = "the program as written"  # the baseline's name in the ranking


def _ranking(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Every single change and the program itself, ranked by failure share in groups of paired
    indistinguishable ones (``rank_groups``), with the factor and value of each."""
    names, keys, failed, seeds = [], [], [], None
    for (factor, value), part in per_seed.groupby(["factor", "value"], sort=False):
        part = part.sort_values("seed")
        if seeds is None:
            seeds = part.seed.to_numpy()
        elif not np.array_equal(part.seed.to_numpy(), seeds):
            raise ValueError(f"{factor} = {value} ran on other seeds: its failures are not "
                             "paired with the program's")
        names.append(PROGRAM if factor == "baseline" else f"{factor} = {value}")
        keys.append((factor, str(value)))
        failed.append(part.category.to_numpy() != "converged")
    if not names:
        return pd.DataFrame(columns=["factor", "value", "is_baseline", *RANK_COLS])
    ranked = rank_groups(names, np.array(failed))
    key = dict(zip(names, keys, strict=True))
    ranked.insert(0, "factor", [key[n][0] for n in ranked.name])
    ranked.insert(1, "value", [key[n][1] for n in ranked.name])
    ranked.insert(2, "is_baseline", ranked.name == PROGRAM)
    return ranked


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
