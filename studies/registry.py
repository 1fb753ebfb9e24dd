"""Every study the toolkit runs, by name: an explicit table, in the report's order.

``REPORT_STUDIES`` are the ones ``actdiag report`` runs (and the tests' shared quick run): those
the base install can run. ``torch_digits`` needs the optional torch extra and runs on its own
(``actdiag study torch_digits``).
"""

from __future__ import annotations

from pathlib import Path

from studies.causes import STUDY as CAUSES
from studies.convergence import STUDY as CONVERGENCE
from studies.mechanisms import STUDY as MECHANISMS
from studies.question import STUDY as QUESTION
from studies.relu_failure import STUDY as RELU_FAILURE
from studies.run.study import Study, read_meta
from studies.torch_digits import STUDY as TORCH_DIGITS
from studies.vanishing import STUDY as VANISHING

STUDIES: dict[str, Study] = {
    s.name: s for s in (QUESTION, CAUSES, CONVERGENCE, VANISHING, RELU_FAILURE, MECHANISMS,
                        TORCH_DIGITS)
}
REPORT_STUDIES: tuple[str, ...] = (  # what `actdiag report` runs: no optional extra needed
    QUESTION.name, CAUSES.name, CONVERGENCE.name, VANISHING.name, RELU_FAILURE.name,
    MECHANISMS.name)


def get_study(name: str) -> Study:
    """A study by name; a ValueError names the accepted ones."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}: use one of {', '.join(STUDIES)}")
    return STUDIES[name]


def findings_in(out_dir: Path) -> tuple[dict[str, object], dict[str, dict]]:
    """Findings and meta of every report study whose run is complete in ``out_dir``, by name."""
    done = [n for n in REPORT_STUDIES if (Path(out_dir) / n / "meta.json").exists()]
    findings = {n: STUDIES[n].findings(Path(out_dir) / n) for n in done}
    return findings, {n: read_meta(Path(out_dir) / n) for n in done}
