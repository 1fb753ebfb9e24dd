"""REPORT.md: the answers to the question's two questions, computed from a run's findings.

The report reads nothing but the studies' findings (frozen dataclasses, one per study). Every
sentence is produced from them and appears only when its numbers exist; a section whose study did
not run says so in one line. Verdicts are pure functions in ``verdicts.py``, their criteria
stated there and printed in the Method section. No setup fact is typed: shapes, sample counts,
learning rates, budgets and thresholds come from the run.
"""

from __future__ import annotations

import time
from pathlib import Path

from studies.run.files import write_text

from .bundle import Findings
from .render import render

CORRECTED_PROGRAM = Path(__file__).with_name("corrected_program.py")  # shipped; copied beside

__all__ = ["Findings", "render", "write_report"]


def write_report(
    out_dir: Path, findings: dict, metas: dict, wall_seconds: float | None = None
) -> Path:
    """Write ``out_dir/REPORT.md`` from the studies' findings and metas (by study name)."""
    bundle = Findings.of(findings)
    text = render(bundle, metas, wall_seconds, date=time.strftime("%Y-%m-%d"))
    write_text(Path(out_dir) / CORRECTED_PROGRAM.name, CORRECTED_PROGRAM.read_text("utf-8"))
    return write_text(Path(out_dir) / "REPORT.md", text)
