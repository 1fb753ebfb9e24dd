"""REPORT.md: generated from typed findings only; verdicts follow the numbers and the seeds."""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from studies.causes.findings import Failures, Ranked
from studies.registry import REPORT_STUDIES, STUDIES, findings_in
from studies.report import Findings, verdicts, write_report
from studies.report.facts import gather, numbers
from studies.run.study import StudyOptions, run_studies
from studies.stats.intervals import mcnemar_exact, wilson_interval
from studies.stats.values import Effect, Rate

VERDICT_WORDS = ("holds", "partly holds", "does not hold", verdicts.UNDECIDED, "not measured")


def report(out: Path) -> str:
    """REPORT.md from the studies found in ``out``; its text."""
    return write_report(out, *findings_in(out)).read_text(encoding="utf-8")


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(run_dir, target)
    return target


def verdict(text: str, claim: str) -> str:
    m = re.search(rf"\*\*{claim}: ([a-z ]+)\.\*\*", text)
    assert m, f"no verdict for {claim}"
    return m.group(1)


def edit(path: Path, where: dict, **values) -> None:
    frame = pd.read_csv(path)
    rows = pd.Series(True, index=frame.index)
    for col, val in where.items():
        rows &= frame[col] == val
    assert rows.sum() == 1, f"{where} selects {rows.sum()} rows of {path.name}"
    for col, val in values.items():
        frame.loc[rows, col] = val
    frame.to_csv(path, index=False)


# ---- the report of the shared quick run -------------------------------------------------------


def test_report_has_every_section_and_links_existing_figures(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    text = report(d)
    headings = ["## The short answer", "## 简短回答", "## Your program, line by line",
                "## The answer you were given, tested", "## The evidence, study by study",
                "## Method", "## Limitations", "## References"]
    positions = [text.index(h + "\n") for h in headings]
    assert positions == sorted(positions)  # the plain answers first, then the evidence
    for claim in ("Vanishing gradients", "Local minima", "Momentum"):
        assert verdict(text, claim) in VERDICT_WORDS
    for criterion in verdicts.CRITERIA:  # the rules are stated where the verdicts are used
        assert criterion in text
    links = re.findall(r"\]\(([\w/]+\.png)\)", text)
    assert len(links) >= 10
    for link in links:
        assert (d / link).exists(), link


def test_numbers_in_the_report_are_the_tables_numbers(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    text = report(d)
    out = pd.read_csv(d / "question" / "outcomes.csv")
    for lr in sorted(set(out.lr)):
        row = out[(out.activation == "relu") & (out.lr == lr) & (out.outcome == "stuck")].iloc[0]
        assert (f"relu at lr {lr:g}: stuck (gradient exactly zero) {100 * row.share:.1f}% "
                f"(95% CI {100 * row.ci_low:.1f}–{100 * row.ci_high:.1f}%), "
                f"{int(row['count'])} of {int(row.n)} seeds") in text
    variants = pd.read_csv(d / "causes" / "variants.csv")
    m = variants[(variants.variant == "momentum") & (variants.arm == "relu")].iloc[0]
    assert f"is {100 * m.stuck_share:.1f}%" in text
    cells = pd.read_csv(d / "question" / "cells.csv")
    assert f"({cells.layers.iloc[0]}, {cells.n_samples.iloc[0]} samples)" in text


def test_local_minimum_verdict_flips_with_the_tables(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    where = {"variant": "faithful", "arm": "relu"}
    # synthetic: 400 failed seeds, 390 of them dead networks with an exactly zero gradient
    edit(d / "causes" / "local_minimum.csv", where, n_failed=400, zero_gradient_count=390,
         dead_at_end_count=390, output_varies_count=10, constant_output_count=0)
    text = report(d)
    assert verdict(text, "Local minima") == "misdiagnosed"
    assert "Of the 400 seeds" in text
    # flipped: the failed seeds keep a varying output and a non-zero gradient
    edit(d / "causes" / "local_minimum.csv", where, zero_gradient_count=10, dead_at_end_count=10,
         output_varies_count=390)
    assert verdict(report(d), "Local minima") == "holds"


def test_vanishing_verdict_follows_the_gradient_ratio(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    path = d / "vanishing" / "question_network.csv"
    frame = pd.read_csv(path)
    z = (frame.preset == "question") & (frame.quantity == "z")
    frame.loc[z, "median"] = 1e-6  # synthetic: the error at the first layer vanishes
    frame.to_csv(path, index=False)
    assert verdict(report(d), "Vanishing gradients") in ("holds", "partly holds",
                                                         verdicts.UNDECIDED)
    frame.loc[z, "median"] = 1.0  # no vanishing at all
    frame.to_csv(path, index=False)
    assert verdict(report(d), "Vanishing gradients") in ("misattributed", "does not hold",
                                                         "partly holds", verdicts.UNDECIDED)


def isolate_the_output(d: Path) -> None:
    """Synthetic: a linear output rescues 50 tanh seeds and kills none (the asymptote test)."""
    path = d / "mechanisms" / "asymptote.csv"
    frame = pd.read_csv(path)
    rows = frame.variant == "linear_output"
    frame.loc[rows, ["rescued", "killed", "mcnemar_p"]] = [50, 0, mcnemar_exact(50, 0)]
    frame.to_csv(path, index=False)


def set_column(path: Path, column: str, value, **where) -> None:
    frame = pd.read_csv(path)
    rows = pd.Series(True, index=frame.index)
    for col, val in where.items():
        rows &= frame[col] == val
    assert rows.any(), (path.name, where)
    frame.loc[rows, column] = value
    frame.to_csv(path, index=False)


def test_vanishing_verdict_follows_the_ratios_during_training(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    isolate_the_output(d)
    ratios = d / "mechanisms" / "layer_ratios.csv"
    set_column(ratios, "median", 1.0, quantity="z")  # synthetic: no vanishing at any epoch
    set_column(d / "vanishing" / "question_network.csv", "median", 1.0, quantity="z")
    assert verdict(report(d), "Vanishing gradients") == "misattributed"
    # synthetic: at one epoch of training the sigmoid error at the first layer vanishes
    frame = pd.read_csv(ratios)
    late = frame.epoch.max()
    set_column(ratios, "median", 1e-3, quantity="z", activation="sigmoid", epoch=late)
    assert verdict(report(d), "Vanishing gradients") == "partly holds"


def test_the_output_slope_sentence_follows_its_numbers(quick_run, tmp_path):
    """Both languages quote the output's slope when it is the factor that shrinks, else not."""
    d = copy_of(quick_run, tmp_path)
    isolate_the_output(d)
    slopes = d / "mechanisms" / "output_slope.csv"
    frame = pd.read_csv(slopes)
    top, last = frame.target.max(), frame.epoch.max()
    for act in ("tanh", "sigmoid"):  # synthetic: the slope on the largest target collapses
        set_column(slopes, "median", 0.0123, activation=act, target=top, epoch=last)
    text = report(d)
    en, zh = short_answers(text)
    assert "0.012" in en and "0.012" in zh
    assert "where its slope shrinks (on the target" in en and "（在目标值" in zh
    assert "the factor that shrinks is the output unit's own slope" in text
    assert_short_answers_quote_the_facts(d, text)
    for act in ("tanh", "sigmoid"):  # synthetic: it grows instead
        set_column(slopes, "median", 0.9, activation=act, target=top, epoch=last)
    text = report(d)
    en, zh = short_answers(text)
    assert "where its slope shrinks (on the target" not in en and "（在目标值" not in zh
    assert "the factor that shrinks is the output unit's own slope" not in text


def corrected_section(text: str) -> str:
    """The corrected program's section and the alternatives' evidence (its table)."""
    front = text.split("## The corrected program\n")[1].split("\n## ")[0]
    evidence = text.split("### The corrected program's alternatives, measured\n")[1]
    return front + evidence.split("\n### ")[0]


def test_the_alternatives_sentence_follows_the_paired_tests(quick_run, tmp_path):
    """The alternatives' table and sentence change with alternatives.csv: a difference is called
    only when its paired test gives p < 0.05, in the direction of the paired counts."""
    d = copy_of(quick_run, tmp_path)
    path = d / "mechanisms" / "alternatives.csv"
    for column, value in (("rescued", 1), ("killed", 1), ("mcnemar_p", 1.0), ("faster", 2),
                          ("slower", 2), ("speed_p", 1.0)):  # synthetic: no paired difference
        set_column(path, column, value)
    text = corrected_section(report(d))
    assert "| change | relu | tanh | sigmoid |" in text
    assert ("): no measurable difference in any case (exact McNemar test); no change reaches "
            "it on more seeds. How soon: no measurable difference in any case") in text
    # synthetic: width 4 kills 30 ReLU seeds and rescues none
    for column, value in (("rescued", 0), ("killed", 30), ("mcnemar_p", mcnemar_exact(0, 30)),
                          ("reached_share", 0.123)):
        set_column(path, column, value, activation="relu", variant="width_4")
    text = corrected_section(report(d))
    assert "| hidden width 4 (_yours_) | 12.3%, " in text and "; 0 / 30\\* |" in text
    assert ("fewer seeds reach the threshold with _hidden width 4_ (relu); no measurable "
            "difference in the other cases (exact McNemar test); no change reaches it on more "
            "seeds.") in text
    # synthetic: 5 killed against none is p = 0.0625, not a call
    set_column(path, "killed", 5, activation="relu", variant="width_4")
    set_column(path, "mcnemar_p", mcnemar_exact(0, 5), activation="relu", variant="width_4")
    assert "; 0 / 5 |" in corrected_section(report(d))
    assert "fewer seeds reach" not in corrected_section(report(d))
    # synthetic: Xavier rescues 12 tanh seeds; width 16 reaches it sooner on 20 ReLU seeds of 21
    for column, value in (("rescued", 12), ("killed", 0), ("mcnemar_p", mcnemar_exact(12, 0))):
        set_column(path, column, value, activation="tanh", variant="xavier_normal")
    for column, value in (("faster", 20), ("slower", 1), ("speed_p", mcnemar_exact(20, 1)),
                          ("epochs_ratio", 0.5)):
        set_column(path, column, value, activation="relu", variant="width_16")
    text = corrected_section(report(d))
    assert ("more seeds reach it with _Xavier normal, zero bias_ (tanh); no measurable "
            "difference in the other cases (exact McNemar test). How soon: faster with _hidden "
            "width 16_ (relu ×0.50); no measurable difference in the other cases") in text
    assert "no change reaches it on more seeds" not in text
    summary = text.split("\n\n")[2]  # the corrected section's sentence, before the evidence
    assert "more reach it with _Xavier normal, zero bias_ (tanh)" in summary


def test_a_missing_study_is_reported_as_not_measured(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    shutil.rmtree(d / "causes")
    text = report(d)
    assert "| **not measured** |" in text
    assert "_Not measured: the causes study did not run._" in text  # one line says so


# ---- verdicts as pure functions ---------------------------------------------------------------


NUMBER = re.compile(r"(?<![\w.^])[>-]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?")


def short_answers(text: str, code: bool = False) -> tuple[str, str]:
    """The English and the Chinese short answers (without code spans unless ``code``)."""
    en = text.split("## The short answer\n")[1].split("## 简短回答")[0]
    zh = text.split("## 简短回答\n")[1].split("## Your program")[0]
    return (en, zh) if code else tuple(re.sub(r"`[^`]*`", "", s) for s in (en, zh))


def test_every_number_in_the_short_answers_comes_from_the_run(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    assert_short_answers_quote_the_facts(d, report(d))


def assert_short_answers_quote_the_facts(d: Path, text: str) -> None:
    facts = gather(Findings.of(findings_in(d)[0]))
    allowed = numbers(facts) | {"95%"}  # 95% names the intervals' level, not a result
    en, zh = short_answers(text)
    for lang in (en, zh):
        quoted = {n.strip(",") for n in NUMBER.findall(lang)}
        assert quoted <= allowed, quoted - allowed
    # both languages are filled from the same facts: the same numbers (word order differs)
    assert sorted(n.strip(",") for n in NUMBER.findall(en)) == sorted(
        n.strip(",") for n in NUMBER.findall(zh))


def test_the_short_answers_follow_the_findings(quick_run, tmp_path):
    """Edit a table behind the short answers: both languages change their number."""
    d = copy_of(quick_run, tmp_path)
    before = short_answers(report(d), code=True)
    path = d / "mechanisms" / "printed_error.csv"
    frame = pd.read_csv(path)
    frame["dead_output_error"] = 0.123456  # synthetic: what a dead output prints
    frame.to_csv(path, index=False)
    en, zh = short_answers(report(d), code=True)
    assert "error = 0.123456" in en and "error = 0.123456" in zh
    assert "error = 0.123456" not in before[0] + before[1]


def test_the_corrected_program_is_written_beside_the_report_and_runs(quick_run, tmp_path):
    d = copy_of(quick_run, tmp_path)
    report(d)
    program = d / "corrected_program.py"
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                          timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("Prediction = ")
    assert re.fullmatch(r"\d+/\d+, error = \d\.\d{3}e[-+]\d+", lines[-2])  # printed with %.3e


def failures(failed: int, dead: int) -> Failures:
    return Failures("faithful", "relu", 0.01, 1000, failed, dead, 0, failed - dead, 0,
                    failed - dead, 0.01, dead, dead, {})


def test_local_minima_verdict_by_hand():
    assert verdicts.local_minima(failures(400, 390)).word == "misdiagnosed"
    assert verdicts.local_minima(failures(400, 10)).word == "holds"
    assert verdicts.local_minima(failures(400, 260)).word == "partly holds"
    assert verdicts.local_minima(failures(5, 4)).word == verdicts.UNDECIDED  # too few seeds
    assert verdicts.local_minima(None).word == "not measured"


def momentum_row(rescued: int, killed: int, n: int) -> tuple[Ranked, Rate]:
    """The program stuck on ``base`` of n seeds; momentum frees ``rescued`` and adds ``killed``."""
    base = n // 2
    after = base - rescued + killed
    lo, hi = (float(x) for x in wilson_interval(after, n))
    diff = (after - base) / n
    effect = Effect(diff, diff - 2 * (hi - lo), diff + 2 * (hi - lo))  # a wide stand-in interval
    row = Ranked("momentum", "momentum", "relu", 0.01, "stuck", effect, rescued, killed,
                 mcnemar_exact(rescued, killed))
    return row, Rate.of(base, n)


def test_momentum_verdict_by_hand():
    assert verdicts.momentum(*momentum_row(400, 0, 1000)).word == "holds"
    assert verdicts.momentum(*momentum_row(60, 10, 1000)).word == "partly holds"
    assert verdicts.momentum(*momentum_row(10, 60, 1000)).word == "does not hold"
    assert verdicts.momentum(*momentum_row(2, 1, 20)).word == verdicts.UNDECIDED
    assert verdicts.momentum(None, None).word == "not measured"


@pytest.mark.parametrize("dead_share", [0.02, 0.3, 0.55, 0.7, 0.85, 0.97])
def test_a_quick_run_never_contradicts_a_full_run(dead_share):
    """Fewer seeds with the same proportions: the same verdict, or "not decided"."""
    for small, large in itertools.pairwise((10, 40, 100, 400, 4000)):
        few = verdicts.local_minima(failures(small, round(dead_share * small))).word
        many = verdicts.local_minima(failures(large, round(dead_share * large))).word
        assert few in (many, verdicts.UNDECIDED), (small, large, few, many)


# ---- the report for whatever a user passes ----------------------------------------------------

TINY = {"quick": True, "seeds": 4, "epochs": 12, "cache_dir": None, "progress": False}


@pytest.fixture(scope="module")
def user_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "mine.csv"
    rows = [(a / 10, b / 10, (a + b) / 10) for a in range(4) for b in range(3)]
    pd.DataFrame(rows, columns=["x", "y", "total"]).to_csv(path, index=False)
    return path


# option set -> (options, words the short answers must not contain: settings that did not run)
OPTION_SETS = {
    "relu-elu-lr-shape": ({"lrs": (0.05,), "activations": ("relu", "elu"), "layers": (2, 8, 1)},
                          ["lr 0.01", "lr 0.1 ", "with tanh", "with sigmoid", "2-4-4-1"]),
    "smooth-generated": ({"activations": ("tanh", "sigmoid"), "data": "add:20:0:1:7"},
                         ["with relu at", "6 samples"]),
    "csv": ({"targets": ("total",)}, ["6 samples"]),
}


@pytest.mark.parametrize("name", OPTION_SETS)
def test_report_runs_for_other_options_and_names_only_what_ran(name, user_csv, tmp_path):
    options, absent = OPTION_SETS[name]
    if name == "csv":
        options = options | {"data": str(user_csv)}
    out = tmp_path / name
    run_studies([STUDIES[n] for n in REPORT_STUDIES], StudyOptions(**(TINY | options)), out)
    text = report(out)
    short = text.split("## The evidence")[0]
    for word in absent:
        assert word not in short, f"{name}: the report names {word!r}, which did not run"
    for claim in ("Vanishing gradients", "Local minima", "Momentum"):
        found = re.search(rf"\*\*{claim}: ([a-z ]+)\.\*\*", text)
        assert found is None or found.group(1) in VERDICT_WORDS
    q = findings_in(out)[0]["question"]
    for act, lr in q.runs:  # every setting of the program that ran is reported
        assert f"with {act} at lr {lr:g}" in text


def test_power_prints_products_below_the_float_range():
    # Decimal at 60 digits evaluates the product far more exactly than the two digits printed
    from decimal import Decimal, getcontext

    from studies.report.text import power
    getcontext().prec = 60
    for base, n in [(0.99, 120_000), (0.99, 30_000), (0.9, 4_974), (0.5, 20), (0.9, 6)]:
        exact = Decimal(base) ** n  # Decimal(base) is base's float value, as the program has it
        e = exact.adjusted()
        want = f"{float(exact):.2g}" if e >= -4 else f"{float(exact.scaleb(-e)):.2g}e{e}"
        assert power(base, n) == want
    assert power(0.99, 120_000) == "1.7e-524"  # by hand: 120000 * log10(0.99) = -523.76
