"""The question study's tables: tidy frames computed from its cells' results, written as CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from diagnostics.presets import PRESETS
from studies.run.cells import CellResult, concat
from studies.run.study import StudyOptions
from studies.stats.summaries import epochs_summary, loss_bands, outcome_shares, proportion

from .grid import LONG_THRESHOLDS, budgets

SAMPLE_SEEDS = 6  # individual seeds drawn thin in the loss-curve figure


def tables(results: list[CellResult], opts: StudyOptions) -> dict[str, pd.DataFrame]:
    outcomes = concat(results, "outcomes")
    loss = concat(results, "loss")
    by = ["run", "activation", "lr"]
    main = outcomes[outcomes.run == "main"]
    long = outcomes[outcomes.run == "long"]
    samples = loss[loss.seed < SAMPLE_SEEDS]
    metrics = concat(results, "metrics")
    dead = pd.DataFrame()
    if len(metrics):
        first, last = metrics.epoch.min(), metrics.groupby(by).epoch.transform("max")
        m = metrics[(metrics.metric == "network_dead") & ((metrics.epoch == first)
                                                          | (metrics.epoch == last))]
        m = m.assign(when=np.where(m.epoch == first, "initial", "final"))
        dead = (m.groupby([*by, "when"]).value.agg(["mean", "size"])
                .rename(columns={"mean": "share_dead_network", "size": "n"}).reset_index())
    return {
        "outcomes": outcome_shares(main, by),
        "epochs_to_threshold": epochs_summary(main, by).assign(
            threshold=PRESETS["question"].threshold, budget=budgets(opts)[0]
        ),
        "per_seed": main.drop(columns=["run"]),
        "loss_bands": loss_bands(_with_outcome(loss, outcomes, by), [*by, "outcome"]),
        "loss_samples": samples,
        "long_thresholds": _long_thresholds(long).assign(budget=budgets(opts)[1]),
        "long_outcomes": long.drop(columns=["run"]),
        "dead_networks": dead,
    }


def _with_outcome(loss: pd.DataFrame, outcomes: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """The loss rows with each seed's final outcome: curves of seeds that end differently are
    summarised apart (one median across converged and stuck seeds describes neither)."""
    keys = [*by, "seed"]
    return loss.merge(outcomes[[*keys, "outcome"]], on=keys, how="left")


def _long_thresholds(long: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (act, lr), part in long.groupby(["activation", "lr"], sort=False):
        for t in LONG_THRESHOLDS:
            col = "epochs_to_threshold" if t == LONG_THRESHOLDS[0] else f"epochs_to_{t:g}"
            summary = epochs_summary(part.assign(_e=part[col]), [], "_e").iloc[0].to_dict()
            rows.append({"activation": act, "lr": lr, "threshold": t} | summary)
        rows.append({"activation": act, "lr": lr, "threshold": 0.0}
                    | {"reached": int((part.min_loss == 0).sum()), "n": len(part)}
                    | {f"reached_{k}": v for k, v in proportion(
                        int((part.min_loss == 0).sum()), len(part)).items()
                       if k in ("share", "ci_low", "ci_high")})
    return pd.DataFrame(rows)
