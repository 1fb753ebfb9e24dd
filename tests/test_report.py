"""REPORT.md: generated from the studies' CSV tables; verdicts follow the numbers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from studies.registry import STUDIES, findings_in
from studies.report import write_report
from studies.run.study import StudyOptions, run_studies

TINY = StudyOptions(quick=True, seeds=16, epochs=40, cache_dir=None, progress=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """Every study, tiny, and the report: the CSVs are real, only small."""
    out = tmp_path_factory.mktemp("report")
    run_studies(list(STUDIES.values()), TINY, out)
    report(out)
    return out


def report(out: Path) -> Path:
    """REPORT.md from the studies found in ``out``."""
    return write_report(out, *findings_in(out))


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


def test_report_has_every_section_and_links_existing_figures(run_dir):
    text = (run_dir / "REPORT.md").read_text()
    for heading in ("## The short answers", "## The answer the user was given, tested",
                    "## What to do instead", "## Method"):
        assert heading in text
    for claim in ("Vanishing gradients", "Local minima", "Momentum"):
        assert verdict(text, claim) in ("holds", "partly holds", "does not hold", "not measured")
    links = re.findall(r"\]\(([\w/]+\.png)\)", text)
    assert len(links) >= 10
    for link in links:
        assert (run_dir / link).exists(), link


def test_numbers_in_the_report_are_the_csv_numbers(run_dir):
    text = (run_dir / "REPORT.md").read_text()
    out = pd.read_csv(run_dir / "question" / "outcomes.csv")
    row = out[(out.activation == "relu") & (out.lr == 0.01) & (out.outcome == "stuck")].iloc[0]
    expected = f"never learns (gradient exactly zero) {100 * row.share:.1f}%"
    assert expected in text
    assert f"{int(row['count'])} of {int(row.n)} seeds" in text
    variants = pd.read_csv(run_dir / "causes" / "variants.csv")
    m = variants[(variants.variant == "momentum") & (variants.arm == "relu")].iloc[0]
    assert f"is {100 * m.failed_share:.1f}%" in text


def test_momentum_verdict_flips_when_momentum_fixes_the_failures(run_dir, tmp_path):
    d = copy_of(run_dir, tmp_path)
    variants = pd.read_csv(d / "causes" / "variants.csv")
    faithful = variants[(variants.variant == "faithful") & (variants.arm == "relu")].iloc[0]
    n = int(faithful.n)
    # synthetic: the faithful program fails often, momentum almost never
    edit(d / "causes" / "variants.csv", {"variant": "faithful", "arm": "relu"},
         failed_count=int(0.6 * n), failed_share=0.6, failed_ci_low=0.55, failed_ci_high=0.65)
    edit(d / "causes" / "variants.csv", {"variant": "momentum", "arm": "relu"},
         failed_count=0, failed_share=0.0, failed_ci_low=0.0, failed_ci_high=0.05)
    report(d)
    assert verdict((d / "REPORT.md").read_text(), "Momentum") == "holds"
    # and the other way round: momentum fails more often than plain SGD
    edit(d / "causes" / "variants.csv", {"variant": "momentum", "arm": "relu"},
         failed_count=int(0.9 * n), failed_share=0.9, failed_ci_low=0.85, failed_ci_high=0.95)
    report(d)
    text = (d / "REPORT.md").read_text()
    assert verdict(text, "Momentum") == "does not hold"
    assert "Momentum makes it worse" in text


def test_local_minimum_verdict_flips_when_stuck_seeds_have_a_gradient(run_dir, tmp_path):
    d = copy_of(run_dir, tmp_path)
    where = {"variant": "faithful", "arm": "relu"}
    # synthetic: 100 failed seeds, 95 of them dead networks with an exactly zero gradient
    edit(d / "causes" / "local_minimum.csv", where, n_failed=100, zero_gradient_count=95,
         dead_at_end_count=95, output_varies_count=5, constant_output_count=0)
    report(d)
    assert verdict((d / "REPORT.md").read_text(), "Local minima") == "does not hold"
    # flipped: the failed seeds keep a varying output and a non-zero gradient
    edit(d / "causes" / "local_minimum.csv", where, zero_gradient_count=5, dead_at_end_count=5,
         output_varies_count=95)
    report(d)
    text = (d / "REPORT.md").read_text()
    assert verdict(text, "Local minima") == "holds"
    assert "Of the 100 seeds" in text


def test_vanishing_verdict_follows_the_gradient_ratio(run_dir, tmp_path):
    d = copy_of(run_dir, tmp_path)
    path = d / "vanishing" / "question_network.csv"
    frame = pd.read_csv(path)
    z = (frame.preset == "question") & (frame.quantity == "z")
    # synthetic: the error reaching the first layer is 1e-6 of the last layer's
    frame.loc[z, "median"] = 1e-6
    frame.to_csv(path, index=False)
    report(d)
    text = (d / "REPORT.md").read_text()
    assert verdict(text, "Vanishing gradients") in ("holds", "partly holds")
    assert "That is a vanishing gradient" in text
    frame.loc[z, "median"] = 1.0  # no vanishing at all
    frame.to_csv(path, index=False)
    report(d)
    assert "That is a vanishing gradient" not in (d / "REPORT.md").read_text()


def test_a_missing_study_is_reported_as_not_measured(run_dir, tmp_path):
    d = copy_of(run_dir, tmp_path)
    shutil.rmtree(d / "causes")
    report(d)
    text = (d / "REPORT.md").read_text()
    assert verdict(text, "Momentum") == "not measured"
    assert verdict(text, "Local minima") == "not measured"
