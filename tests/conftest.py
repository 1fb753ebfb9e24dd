"""Fixtures shared across test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.registry import REPORT_STUDIES, STUDIES
from studies.run.study import run_studies
from tests.quick import OPTIONS


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """Every study, once per pytest run, quick and small: the study and report tests read it."""
    out = tmp_path_factory.mktemp("quick_run")
    run_studies([STUDIES[n] for n in REPORT_STUDIES], OPTIONS, out)
    return out
