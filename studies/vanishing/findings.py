"""The vanishing study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studies.run.study import read_table


@dataclass(frozen=True)
class Ratio:
    """Median over seeds of a first/last gradient ratio, with its quartiles."""

    median: float
    q25: float
    q75: float
    n_defined: int  # seeds where both norms were non-zero


@dataclass(frozen=True)
class VanishingFindings:
    """Gradient ratios against depth at initialisation, and in the question's own network."""

    width: int  # units per hidden layer of the deep networks
    depths: tuple[int, ...]  # hidden layers measured
    seeds: int
    # (activation, init, depth) -> ||dL/dz_1|| / ||dL/dz_H|| (``z``) and ||dL/dW_1|| / ||dL/dW_out||
    ratio_z: dict[tuple[str, str, int], Ratio]
    ratio_w: dict[tuple[str, str, int], Ratio]
    question_layers: tuple[int, ...]  # the question's network as run here
    question_z: dict[str, Ratio]  # activation -> hidden-1 / hidden-last error ratio, at init
    question_w: dict[str, Ratio]  # activation -> first / last weight-gradient ratio, at init
    sigmoid_bound_holds: bool | None  # the (1/4)^L chain bound held on every seed (None: no run)


def _ratio(r: dict) -> Ratio:
    return Ratio(float(r["median"]), float(r["q25"]), float(r["q75"]), int(r["n_defined"]))


def findings(tables_dir: Path) -> VanishingFindings:
    ratio = read_table(tables_dir, "ratio_vs_depth")
    at_init = read_table(tables_dir, "at_init")
    chain = read_table(tables_dir, "chain_bound")
    question = read_table(tables_dir, "question_network")
    cells = read_table(tables_dir, "cells")
    q_cells = cells[cells.run == "question"] if "run" in cells else cells.iloc[:0]
    by = {"z": {}, "W": {}}
    for r in ratio.to_dict("records"):
        by[r["quantity"]][(r["activation"], r["init"], int(r["depth"]))] = _ratio(r)
    own = question[question.preset == "question"]
    sig = chain[chain.activation == "sigmoid"]
    return VanishingFindings(
        width=int(at_init.width.iloc[0]),
        depths=tuple(sorted(int(d) for d in ratio.depth.unique())),
        seeds=int(ratio.n.max()), ratio_z=by["z"], ratio_w=by["W"],
        question_layers=(tuple(int(n) for n in str(q_cells.layers.iloc[0]).split("-"))
                         if len(q_cells) else ()),
        question_z={r["activation"]: _ratio(r) for r in own.to_dict("records")
                    if r["quantity"] == "z"},
        question_w={r["activation"]: _ratio(r) for r in own.to_dict("records")
                    if r["quantity"] == "W"},
        sigmoid_bound_holds=(None if not len(sig) or int(sig.checks.sum()) == 0
                             else bool((sig.checks == sig.holds).all())),
    )
