"""REPORT.md: the answers to the question's two questions, computed from a run's CSV tables.

Every number and every verdict comes from the studies' ``findings()``, which read only the CSV
files of the run. The three verdict functions are small and explicit, with their thresholds
named below: if the data said otherwise, the text would say otherwise.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from studies.run.files import write_text
from studies.run.study import read_table
from studies.stats.intervals import median_ci
from studies.stats.summaries import prefixed_proportion, read_proportion

VANISHING_RATIO = 0.1  # a first/last gradient ratio below this is a vanishing gradient
FIX_SPEEDUP = 3.0  # fixing the quirks "explains" the slowness if it speeds training up this much
DEAD_SHARE_REJECTS = 0.8  # failed seeds that are dead networks: above this, "not local minima"
DEAD_SHARE_PARTLY = 0.5
NAN = float("nan")


# ---- formatting -------------------------------------------------------------------------------


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def pct(share, lo=None, hi=None) -> str:
    """``37.2% (95% CI 34.2–40.3%)``."""
    if _nan(share):
        return "n/a"
    text = f"{100 * share:.1f}%"
    if not _nan(lo) and not _nan(hi):
        text += f" (95% CI {100 * max(lo, 0):.1f}–{100 * min(hi, 1):.1f}%)"
    return text


def rate(d: dict | None) -> str:
    """A proportion dict (share, lo, hi, count, n) as text."""
    if not d:
        return "n/a"
    text = pct(d.get("share"), d.get("lo"), d.get("hi"))
    if "count" in d and "n" in d:
        text += f", {int(d['count'])} of {int(d['n'])} seeds"
    return text


def epochs(d: dict | None, budget: int | None = None) -> str:
    """A median-epochs dict (median, lo, hi, reached, n) as text; inf = beyond the budget."""
    if not d:
        return "n/a"
    budget = budget or d.get("budget")
    beyond = f"more than {int(budget):,}" if budget else "beyond the budget"
    med = d.get("median", NAN)
    if _nan(med) or math.isinf(med):
        text = f"{beyond} epochs (fewer than half the seeds got there"
    else:
        text = (f"{med:,.0f} epochs (95% CI {_bound(d.get('lo'), budget)}–"
                f"{_bound(d.get('hi'), budget)}")
    if "reached" in d and "n" in d:
        text += f"; {int(d['reached'])} of {int(d['n'])} seeds reached it"
    return text + ")"


def _bound(x, budget) -> str:
    if _nan(x):
        return "n/a"
    if math.isinf(x):
        return f">{int(budget):,}" if budget else "∞"
    return f"{x:,.0f}"


def _separated(a: dict, b: dict) -> int:
    """+1 if a's 95% interval lies above b's, -1 if below, 0 if they overlap."""
    if not a or not b:
        return 0
    if a["lo"] > b["hi"]:
        return 1
    if a["hi"] < b["lo"]:
        return -1
    return 0


def _proportion(k: int, n: int) -> dict:
    return read_proportion(prefixed_proportion("p", k, n), "p", n)


# ---- verdicts ---------------------------------------------------------------------------------


def fix_speedups(causes: dict) -> dict[str, dict]:
    """activation -> faithful / all-fixed median epochs (a lower bound if faithful > budget)."""
    out = {}
    variants = (causes or {}).get("variants", {})
    for act in ("tanh", "sigmoid"):
        a = variants.get("faithful", {}).get(f"{act}_median")
        b = variants.get("all_fixed", {}).get(f"{act}_median")
        if not a or not b or _nan(b.get("median")) or math.isinf(b["median"]):
            continue
        if math.isinf(a["median"]):
            budget = a.get("budget") or (causes.get("epochs_budget") or {}).get(act)
            if not budget:
                continue
            out[act] = {"factor": budget / b["median"], "bound": True,
                        "faithful": a, "fixed": b}
        else:
            out[act] = {"factor": a["median"] / b["median"], "bound": False,
                        "faithful": a, "fixed": b}
    return out


def verdict_vanishing(vanishing: dict, causes: dict) -> tuple[str, str]:
    """Does a vanishing gradient explain the slow sigmoid/tanh training of the question's net?"""
    ratios = {k: v for k, v in (vanishing or {}).get("question_network_z", {}).items()
              if k in ("tanh", "sigmoid")}
    if not ratios:
        return "not measured", "The vanishing study did not run."
    ratio_text = ", ".join(f"{a} {r:.2g}" for a, r in ratios.items())
    speed = fix_speedups(causes)
    speed_text = " ".join(
        f"Fixing the program's quirks without changing the activation makes {act} reach the "
        f"threshold {'at least ' if s['bound'] else ''}{s['factor']:.0f}x sooner "
        f"({epochs(s['faithful'])} → {epochs(s['fixed'])})."
        for act, s in speed.items())
    vanishes = [a for a, r in ratios.items() if r < VANISHING_RATIO]
    explained = any(s["factor"] >= FIX_SPEEDUP for s in speed.values())
    head = (f"In the user's 2-4-4-1 network at initialisation, the back-propagated error reaching "
            f"the first hidden layer is, relative to the last hidden layer (median over seeds): "
            f"{ratio_text}. ")
    if vanishes and not explained:
        return "holds", head + f"That is a vanishing gradient for {', '.join(vanishes)}. " \
            + speed_text
    if vanishes:
        return "partly holds", head + (
            f"That is a vanishing gradient for {', '.join(vanishes)}, but it is not what makes "
            f"training slow: " + speed_text)
    if explained:
        return "does not hold", head + (
            "A vanishing gradient would put these orders of magnitude below 1; with two hidden "
            "layers there is little depth for it to vanish in (it does in deep networks: see "
            "the vanishing study). The slowness comes from the program instead. " + speed_text)
    return "partly holds", head + "The gradient does not vanish, but fixing the program's " \
        "quirks does not speed training up much either. " + speed_text


def dead_split(causes: dict) -> dict:
    """Failed seeds of the faithful ReLU program split by what their gradient and output do."""
    lm = (causes or {}).get("local_minimum", {})
    failed = int(lm.get("stuck", 0))
    dead = int(lm.get("dead_at_end", lm.get("zero_gradient", 0)))
    return {"failed": failed, "zero": int(lm.get("zero_gradient", 0)), "dead": dead,
            "varies": int(lm.get("output_varies", failed - dead)),
            "dead_share": _proportion(dead, failed) if failed else {},
            "dead_at_init": lm.get("dead_at_init"), "patterns": lm.get("patterns", {}),
            "varies_loss": lm.get("output_varies_final_loss_median")}


def verdict_local_minima(causes: dict) -> tuple[str, str]:
    """Are the ReLU seeds that never learn in local minima?"""
    s = dead_split(causes)
    if not s["failed"]:
        return "not measured", "No ReLU seed failed in this run, so the claim was not tested."
    text = (
        f"Of the {s['failed']} seeds of the user's ReLU program that never reached the "
        f"threshold, {s['zero']} have a gradient that is exactly zero over the whole dataset and "
        f"{s['dead'] - s['zero']} more have a constant output (a dead network whose only "
        f"non-zero gradient is on a bias): {pct(**_ci(s['dead_share']))} of the failures are dead "
        f"networks. ReLU units that are off on every sample pass no gradient at all, so there is "
        f"no slope to descend. "
    )
    if s["dead_at_init"] is not None:
        text += f"{int(s['dead_at_init'])} of the failed seeds were already dead before the " \
            "first update. "
    share = s["dead_share"]["share"]
    if share >= DEAD_SHARE_REJECTS:
        return "does not hold", text + (
            f"A local minimum is a point where the loss curves up in every direction; these "
            f"seeds sit on a perfectly flat plateau created by dead units, a different failure "
            f"with a different cure. The other {s['varies']} seeds still have a varying output "
            f"and a small loss (median {s['varies_loss']:.2g}): they were still improving when "
            f"the budget ended.")
    if share >= DEAD_SHARE_PARTLY:
        return "partly holds", text + (
            f"The other {s['varies']} have a varying output and a non-zero gradient, which is "
            f"consistent with a poor local minimum or slow progress.")
    return "holds", text + (
        f"Most ({s['varies']}) keep a varying output with a small non-zero gradient, as seeds in "
        f"local minima would.")


def _ci(d: dict) -> dict:
    return {"share": d.get("share"), "lo": d.get("lo"), "hi": d.get("hi")}


def verdict_momentum(causes: dict) -> tuple[str, str]:
    """Does SGD with momentum 0.9 reduce the share of ReLU seeds that never learn?"""
    v = (causes or {}).get("variants", {})
    with_m = v.get("momentum", {}).get("relu_failed")
    without = v.get("faithful", {}).get("relu_failed")
    if not with_m or not without:
        return "not measured", "The causes study did not run the momentum variant."
    text = (f"With momentum 0.9 the share of ReLU seeds that never reach the threshold is "
            f"{rate(with_m)}, against {rate(without)} with plain SGD. ")
    side = _separated(with_m, without)
    if side < 0 and with_m["share"] <= 0.5 * without["share"]:
        return "holds", text + "Momentum clearly reduces the failures."
    if side < 0:
        return "partly holds", text + "Momentum reduces the failures, but far from removing them."
    tail = ("Momentum makes it worse. " if side > 0 else "The difference is within the noise. ")
    return "does not hold", text + tail + (
        "Momentum only accumulates past gradients, and a dead network's gradient is exactly "
        "zero: there is nothing to accumulate, and the larger effective step kills more units.")


# ---- the report -------------------------------------------------------------------------------


def write_report(
    out_dir: Path, findings: dict, metas: dict, wall_seconds: float | None = None
) -> Path:
    """Write ``out_dir/REPORT.md`` from the studies' findings and metas (by study name)."""
    converged = converged_speed(Path(out_dir) / "question")
    text = render(findings, metas, wall_seconds, converged, loss_floor(Path(out_dir)))
    return write_text(Path(out_dir) / "REPORT.md", text)


def converged_speed(question_dir: Path) -> dict:
    """Median epochs among the seeds that converged, per activation and lr (question study)."""
    if not (question_dir / "per_seed.csv").exists():
        return {}
    per_seed = read_table(question_dir, "per_seed")
    out = {}
    for (act, lr), part in per_seed.groupby(["activation", "lr"]):
        e = part.epochs_to_threshold[part.epochs_to_threshold >= 0].to_numpy(dtype=float)
        med, lo, hi = median_ci(e) if e.size else (NAN, NAN, NAN)
        out[f"{act}@{lr:g}"] = {"median": med, "lo": lo, "hi": hi, "reached": int(e.size),
                                "n": len(part)}
    return out


def render(f: dict, metas: dict, wall_seconds: float | None = None,
           converged: dict | None = None, floor: dict | None = None) -> str:
    """The report's Markdown."""
    q, c = f.get("question", {}), f.get("causes", {})
    conv, van, rf = f.get("convergence", {}), f.get("vanishing", {}), f.get("relu_failure", {})
    v_van, v_lm, v_mom = verdict_vanishing(van, c), verdict_local_minima(c), verdict_momentum(c)
    parts = [
        "# Why sigmoid and tanh train slowly, and why ReLU sometimes never learns",
        "",
        "_Generated by `actdiag report` from the CSV tables beside this file. Every number and "
        "every verdict below is computed from this run; rerun the command to regenerate it._",
        "",
        "## The short answers",
        "",
        answer_one(q, c, conv, van, floor),
        "",
        answer_two(q, c, rf, converged or {}),
        "",
        "## The answer the user was given, tested",
        "",
        "| claim | verdict | evidence |",
        "| --- | --- | --- |",
        f"| \"The loss does not reach zero because of the vanishing gradient problem\" | "
        f"**{v_van[0]}** | [vanishing/ratio_vs_depth.png](vanishing/ratio_vs_depth.png), "
        f"`vanishing/question_network.csv`, [causes/ranking.png](causes/ranking.png) |",
        f"| \"Sometimes the error never goes down because the weights have reached a local "
        f"minimum\" | **{v_lm[0]}** | [causes/local_minimum.png](causes/local_minimum.png), "
        f"`causes/local_minimum.csv` |",
        f"| \"Try SGD with momentum to avoid getting stuck in local minima\" | **{v_mom[0]}** | "
        f"[causes/relu_outcomes.png](causes/relu_outcomes.png), `causes/variants.csv` |",
        "",
        f"**Vanishing gradients: {v_van[0]}.** {v_van[1]}",
        "",
        f"**Local minima: {v_lm[0]}.** {v_lm[1]}",
        "",
        f"**Momentum: {v_mom[0]}.** {v_mom[1]}",
        "",
        "## What to do instead, ranked by measured effect",
        "",
        advice(c, rf),
        "",
        "## The evidence, study by study",
        "",
        figures_section(metas),
        "## Method",
        "",
        method(f, metas, wall_seconds),
    ]
    return "\n".join(parts).rstrip() + "\n"


def loss_floor(out_dir: Path) -> dict:
    """Median final loss: the faithful long run vs the corrected network (convergence study)."""
    question, conv = out_dir / "question", out_dir / "convergence"
    if not (question / "long_outcomes.csv").exists() or not (conv / "per_seed.csv").exists():
        return {}
    long = read_table(question, "long_outcomes")
    fixed = read_table(conv, "per_seed")
    budget = int(read_table(question, "long_thresholds").budget.max())
    fixed_epochs = int(read_table(conv, "medians").epochs.max())
    out = {}
    for (act, lr), part in long.groupby(["activation", "lr"]):
        same = fixed[(fixed.activation == act) & (fixed.lr == lr)]
        if len(same):
            out[act] = {"faithful": float(part.final_loss.median()), "long_epochs": budget,
                        "fixed": float(same.final_loss.median()), "fixed_epochs": fixed_epochs}
    return out


def answer_one(q: dict, c: dict, conv: dict, van: dict, floor: dict | None = None) -> str:
    lines = ["**1. Why do sigmoid and tanh need so many epochs, and never reach zero?**", ""]
    thr = q.get("threshold", NAN)
    for act in ("tanh", "sigmoid"):
        d = q.get("epochs", {}).get(f"{act}@0.1")
        if d:
            lines.append(f"- The user's program with {act} at lr 0.1 reaches an epoch loss of "
                         f"{thr:g} after {epochs(d)}.")
    for act, s in fix_speedups(c).items():
        lines.append(
            f"- The same program with its four quirks switched off ({_fixes_text()}) needs "
            f"{epochs(s['fixed'])} with {act}: {'at least ' if s['bound'] else ''}"
            f"{s['factor']:.0f}x fewer.")
    single = [r for r in c.get("ranking", []) if r.get("metric") in ("tanh_median",
              "sigmoid_median") and r["variant"] != "all_fixed" and r["effect"] < 1]
    for metric in ("tanh_median", "sigmoid_median"):
        best = sorted((r for r in single if r["metric"] == metric), key=lambda r: r["effect"])
        if best:
            r, label = best[0], c["variants"][best[0]["variant"]].get("label", best[0]["variant"])
            lines.append(f"- The single change that helps {metric.split('_')[0]} most is "
                         f"*{label}*: median epochs × {r['effect']:.2g}"
                         f"{' (a bound)' if r.get('bound') not in (None, 'exact') else ''}.")
    for act, by_t in q.get("long", {}).items():
        levels = [(t, d) for t, d in by_t.items() if t != "0"]
        if levels:
            n = int(levels[0][1].get("n", 0))
            lines.append(f"- Long run of the user's program, {act} at lr 0.1, {n} seeds, "
                         f"{_long_budget(q):,} epochs — share of seeds that got below each loss "
                         f"level: " + "; ".join(f"{t}: {pct(d['share'], d['lo'], d['hi'])}"
                                                 for t, d in levels) + ".")
        zero = by_t.get("0")
        if zero:
            lines.append(f"- Seeds whose loss was ever exactly 0 ({act}): "
                         f"{pct(zero['share'], zero['lo'], zero['hi'])}.")
    for act, d in (floor or {}).items():
        lines.append(
            f"- After {d['long_epochs']:,} epochs the user's {act} program's median loss is "
            f"{d['faithful']:.2g}; the corrected program (same initial draws, the `fixed` "
            f"preset) is at {d['fixed']:.2g} after {d['fixed_epochs']:,} epochs"
            + (", consistent with the bias shrinking `b -= lr*b`, which keeps pulling the "
               "biases to 0 where the network cannot fit the data: a floor under the loss."
               if d["fixed"] < d["faithful"] else "."))
    ratios = (van or {}).get("question_network_z", {})
    if ratios:
        lines.append("- Back-propagated error at the first hidden layer relative to the last, "
                     "at initialisation, in the user's network (median): "
                     + ", ".join(f"{a} {r:.2g}" for a, r in ratios.items())
                     + " — a vanishing gradient would be orders of magnitude below 1.")
    meds = (conv or {}).get("medians", {})
    if meds:
        fast = [a for a in conv.get("fastest", []) if a in meds][:3]
        sig = meds.get("sigmoid")
        lines.append(f"- On the corrected network (lr {conv.get('lr', NAN):g}, "
                     f"{conv.get('epochs', 0):,}-epoch budget) the fastest activations are "
                     + ", ".join(f"{a} ({epochs(meds[a])})" for a in fast)
                     + (f"; sigmoid needs {epochs(sig)}." if sig else "."))
    lines += ["", "So: sigmoid and tanh are slow here mostly because of the program, not because "
              "of the activation. A sigmoid or tanh *output* unit must reach targets of 1.0 that "
              "it can only approach asymptotically (sigmoid(z) = 1 needs z = ∞), the biases are "
              "shrunk towards 0 every step instead of learning, and a smooth loss approached by "
              "gradient descent shrinks geometrically without ever becoming exactly 0 (the "
              "numbers above say how far it gets)."]
    return "\n".join(lines)


def _fixes_text() -> str:
    from diagnostics.presets import QUIRK_FIXES

    return ", ".join(f"{k}={v}" for fix in QUIRK_FIXES.values() for k, v in fix.items())


def _long_budget(q: dict) -> int:
    return int(q.get("long_epochs", 0) or 0)


def answer_two(q: dict, c: dict, rf: dict, converged: dict) -> str:
    lines = ["**2. Why does ReLU sometimes never learn, and why is it fast when it works?**", ""]
    for lr in ("0.01", "0.1"):
        d = q.get("outcomes", {}).get(f"relu@{lr}", {})
        if d:
            lines.append(f"- The user's ReLU program at lr {lr}: never learns (gradient exactly "
                         f"zero) {rate(d.get('stuck'))}; converged {rate(d.get('converged'))}.")
    s = dead_split(c)
    if s["failed"]:
        top = sorted(s["patterns"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"- Failed seeds that are dead networks (constant output): "
                     f"{pct(**_ci(s['dead_share']))}; where the units were dead at the end: "
                     + ", ".join(f"{p} ({n})" for p, n in top) + ".")
    base = rf.get("baseline", {})
    if base:
        lines.append(
            f"- relu_failure study ({rf.get('epochs', 0):,} epochs): the network's output is "
            f"already the same for every input before the first update in "
            f"{pct(**_ci(base.get('dead_initial', {})))} of the program's seeds. Failures: "
            f"{pct(**_ci(base.get('born_dead', {})))} of seeds dead from the start, "
            f"{pct(**_ci(base.get('died', {})))} died during training, "
            f"{pct(**_ci(base.get('other', {})))} failed while alive.")
    th = rf.get("theory", {})
    if th.get("measured_unit"):
        mu = th["measured_unit"]
        lines.append(f"- A first-layer unit with N(0, 1) weight and bias is dead on the six inputs "
                     f"with probability {th.get('p_unit', NAN):.3f} by the closed form (the "
                     f"solid angle of the cone of (w, b) that is negative on every input); "
                     f"measured over the seeds: {pct(mu['share'], mu.get('lo'), mu.get('hi'))}.")
    faster = []
    for lr in ("0.01", "0.1"):
        got = {a: converged.get(f"{a}@{lr}") for a in ("relu", "tanh", "sigmoid")}
        if not got["relu"] or not got["relu"]["reached"]:
            continue
        parts = [f"{a} {d['median']:,.0f} ({d['reached']} seeds)" if d["reached"]
                 else f"{a}: none in the budget" for a, d in got.items() if d]
        lines.append(f"- Median epochs to the threshold among the seeds that converged, lr {lr}: "
                     + "; ".join(parts) + ".")
        others = [d["median"] for a, d in got.items() if a != "relu" and d and d["reached"]]
        faster.append(all(got["relu"]["median"] < m for m in others))
    if faster and all(faster):
        lines.append("- So when it works ReLU is faster: an active ReLU passes the gradient with "
                     "slope exactly 1 and its output is not bounded, so the output unit can reach "
                     "the targets; tanh and sigmoid slopes are below 1 everywhere (sigmoid's at "
                     "most 1/4) and their outputs are bounded.")
    lines += ["", "So: ReLU fails when units are *dead* (off on every sample) — mostly the "
              "single output ReLU, often already at initialisation with N(0, 1) weights and "
              "biases. A dead unit has an exactly zero gradient, which no optimizer can follow, "
              "momentum included."]
    return "\n".join(lines)


def advice(c: dict, rf: dict) -> str:
    variants = c.get("variants", {})
    lines = []
    by_metric: dict[str, list] = {}
    for r in c.get("ranking", []):
        by_metric.setdefault(r["metric"], []).append(r)
    names = {"relu_failed": "ReLU: change in the share of seeds that never converge",
             "tanh_median": "tanh: median epochs, changed / faithful",
             "sigmoid_median": "sigmoid: median epochs, changed / faithful"}
    for metric, title in names.items():
        rows = sorted(by_metric.get(metric, []), key=lambda r: r["effect"])
        if not rows:
            continue
        lines += [f"**{title}** (causes study; 95% CI):", "", "| change | effect | 95% CI |",
                  "| --- | ---: | --- |"]
        for r in rows:
            label = variants.get(r["variant"], {}).get("label", r["variant"])
            if metric == "relu_failed":
                eff = f"{100 * r['effect']:+.1f} points"
                ci = f"{100 * r['lo']:+.1f} to {100 * r['hi']:+.1f}"
            else:
                bound = {"at_most": "≤ ", "at_least": "≥ "}.get(r.get("bound"), "")
                eff = f"× {bound}{r['effect']:.2g}" if not _nan(r["effect"]) else "n/a"
                ci = f"{r['lo']:.2g} to {r['hi']:.2g}" if not _nan(r.get("lo")) else "n/a"
            lines.append(f"| {label} | {eff} | {ci} |")
        lines.append("")
    best = rf.get("best", [])
    if best:
        lines += ["**ReLU failure rate by single change around the user's program** "
                  "(relu_failure study), lowest first:", ""]
        lines += [f"{i}. `{b['factor']} = {b['value']}`: {pct(b['failure_share'])} of seeds fail"
                  for i, b in enumerate(best[:8], 1)]
    return "\n".join(lines) if lines else "_The causes and relu_failure studies did not run._"


def figures_section(metas: dict) -> str:
    lines = []
    for name, meta in metas.items():
        lines += [f"### {meta.get('title', name)} (`{name}`)", ""]
        lines += [f"![{name}: {fig}]({name}/{fig})\n" for fig in meta.get("figures", [])]
    return "\n".join(lines)


def method(f: dict, metas: dict, wall_seconds: float | None) -> str:
    q = f.get("question", {})
    lines = [
        "- **Seeds**: seed k draws its initial weights exactly as the user's program does after "
        "`np.random.seed(k)`; an ensemble of seeds is trained in one vectorized numpy "
        "computation, bit-identical to training each seed alone. The faithful preset matches the "
        "user's program's printed error to round-off.",
        f"- **Converged**: an epoch's loss (the error the program prints) ≤ "
        f"{q.get('threshold', NAN):g}. **Stuck**: never converged and every component of the "
        "full-dataset gradient exactly 0 at the end. **Diverged**: non-finite loss or parameters "
        "(frozen, excluded). **Dead unit**: pre-activation ≤ 0 on every sample. **Dead network**: "
        "the same output for every input. **Saturated pair**: derivative < 1% of the "
        "activation's maximum.",
        "- **Intervals**: 95% Wilson intervals for shares; distribution-free order-statistic "
        "intervals for medians, counting seeds that never reached the threshold as beyond the "
        "budget; Kaplan–Meier curves censored at the budget.",
        "",
        "| study | cells | seeds | seed-epochs | training time (s, summed over cells) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, m in metas.items():
        lines.append(f"| {name} | {m['cells']} | {m['seeds_total']:,} | {m['seed_epochs']:,} | "
                     f"{m['train_seconds']:.1f} |")
    if metas:
        m = next(iter(metas.values()))
        lines += ["", f"Cells ran on the `{m.get('executor', 'sequential')}` executor with "
                      f"{m.get('workers', 1)} worker(s); running them took "
                      f"{m.get('run_wall_seconds', NAN):.0f} s of wall time (cells found in the "
                      f"cache are not rerun)."]
        if wall_seconds is not None:
            lines[-1] += (f" The whole report, with tables and figures, took {wall_seconds:.0f} s "
                          f"on {time.strftime('%Y-%m-%d')}.")
        v, opts = m.get("versions", {}), m.get("options", {})
        lines += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
                  "", "Options: " + ", ".join(f"{k}={val}" for k, val in opts.items()
                                               if k != "cache_dir") + "."]
    return "\n".join(lines)

