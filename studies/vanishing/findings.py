"""The vanishing study's findings: the numbers the report quotes, read from its tables."""

from __future__ import annotations

from pathlib import Path

from studies.run.study import read_table


def _key(activation: str, init: str) -> str:
    """The findings' key of an (activation, init) pair."""
    return f"{activation}/{init}"


def findings(tables_dir: Path) -> dict:
    """The numbers the report quotes, from the CSV tables only.

    Keys: width, depths, seeds_init, trained_depth, train_epochs, seeds_train; ratio and ratio_z
    ({"act/init": {"depth": {median, q25, q75, n_defined}}}: ‖∂L/∂W_1‖/‖∂L/∂W_out‖ and
    ‖∂L/∂z_1‖/‖∂L/∂z_H‖ at initialisation); factor ({"act/init": {measured, q25, q75, theory,
    mean, mean_ci_low, mean_ci_high, mean_field_bound, depth}} at the deepest depth);
    chain_bound ({act: {checks, violations, max_log10_chain_over_bound}}); sigmoid_bound_holds
    (True/False, None without sigmoid); saturation ({"act/init": {initial, final, depth,
    final_epoch}}, medians over seeds of the hidden layers' saturated share, trained depth);
    question_network and question_network_fixed ({act: median ‖∂L/∂W_1‖/‖∂L/∂W_out‖} of the
    question's own network, own output activation / identity output); question_network_z
    ({act: median ‖∂L/∂z_1‖/‖∂L/∂z_H‖}, own output activation); question_network_detail
    ({"preset/act/quantity": {median, q25, q75, n, n_defined, share_below_1, ci_low, ci_high}}).
    """
    ratio = read_table(tables_dir, "ratio_vs_depth")
    factor = read_table(tables_dir, "per_layer_factor")
    at_init = read_table(tables_dir, "at_init")
    chain = read_table(tables_dir, "chain_bound")
    saturation = read_table(tables_dir, "saturation")
    question = read_table(tables_dir, "question_network")
    heat = read_table(tables_dir, "heatmap")
    f: dict = {
        "width": int(at_init.width.iloc[0]),
        "depths": sorted(int(d) for d in ratio.depth.unique()),
        "seeds_init": int(ratio.n.max()),
        "trained_depth": int(heat.depth.max()) if len(heat) else None,
        "train_epochs": int(heat.epoch.max()) if len(heat) else None,
        "seeds_train": int(heat.n.max()) if len(heat) else None,
        "ratio": {}, "ratio_z": {}, "factor": {}, "saturation": {}, "chain_bound": {},
    }
    for r in ratio.itertuples():
        target = f["ratio"] if r.quantity == "W" else f["ratio_z"]
        target.setdefault(_key(r.activation, r.init), {})[str(int(r.depth))] = {
            "median": r.median, "q25": r.q25, "q75": r.q75, "n_defined": int(r.n_defined)}
    if len(factor):
        top = factor[factor.depth == factor.depth.max()]
        for r in top.itertuples():
            f["factor"][_key(r.activation, r.init)] = {
                "measured": r.measured, "q25": r.q25, "q75": r.q75, "theory": r.theory,
                "mean": r.mean, "mean_ci_low": r.mean_ci_low, "mean_ci_high": r.mean_ci_high,
                "mean_field_bound": r.mean_field_bound, "depth": int(r.depth)}
    for act, part in chain.groupby("activation"):
        f["chain_bound"][act] = {
            "checks": int(part.checks.sum()), "violations": int((part.checks - part.holds).sum()),
            "max_log10_chain_over_bound": float(part.max_log10_chain_over_bound.max())}
    sig = f["chain_bound"].get("sigmoid")
    f["sigmoid_bound_holds"] = None if sig is None or sig["checks"] == 0 else (
        sig["violations"] == 0)
    train = saturation[saturation.run == "train"]
    if len(train):
        train = train[train.depth == train.depth.max()]
        for (act, init), part in train.groupby(["activation", "init"]):
            part = part.sort_values("epoch")
            f["saturation"][_key(act, init)] = {
                "initial": float(part["median"].iloc[0]), "final": float(part["median"].iloc[-1]),
                "depth": int(part.depth.iloc[0]), "final_epoch": int(part.epoch.iloc[-1])}
    for key, preset, quantity in (("question_network", "question", "W"),
                                  ("question_network_z", "question", "z"),
                                  ("question_network_fixed", "fixed", "W")):
        f[key] = {r.activation: r.median for r in question.itertuples()
                  if r.preset == preset and r.quantity == quantity}
    f["question_network_detail"] = {
        f"{r.preset}/{r.activation}/{r.quantity}": {
            "median": r.median, "q25": r.q25, "q75": r.q75, "n": int(r.n),
            "n_defined": int(r.n_defined), "share_below_1": r.share_below_1,
            "ci_low": r.ci_low, "ci_high": r.ci_high}
        for r in question.itertuples()}
    return f
