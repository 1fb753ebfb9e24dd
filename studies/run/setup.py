"""A study's setup as a table: one row per cell with the facts the report may state."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from studies.run.cells import CellResult


def setup_table(results: Sequence[CellResult]) -> pd.DataFrame:
    """One row per cell: its labels, its configuration and its data, as trained."""
    rows = []
    for r in results:
        c, cell = r.cell.config, r.cell
        data = cell.dataset()
        rows.append(dict(cell.labels) | {
            "layers": "-".join(map(str, c.layers)),
            "hidden_activation": c.activation,
            "output_activation": c.output_activation or c.activation,
            "init": c.init, "bias_init": c.bias_init, "bias_scale": c.bias_scale,
            "optimizer": c.optimizer, "lr": c.lr, "momentum": c.momentum,
            "batch": str(c.batch), "bias_update": c.bias_update,
            "backprop_weights": c.backprop_weights, "epochs": c.epochs,
            "threshold": c.threshold, "seeds": cell.seeds[1] - cell.seeds[0],
            "data": data.name, "n_samples": data.n_samples,
        } | ({"model": cell.model} if cell.model is not None else {}))
    return pd.DataFrame(rows)
