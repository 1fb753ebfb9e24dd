"""Every study's findings, in one record the report's modules share."""

from __future__ import annotations

from dataclasses import dataclass

from studies.causes.findings import CausesFindings
from studies.convergence.findings import ConvergenceFindings
from studies.mechanisms.findings import MechanismsFindings
from studies.question.findings import QuestionFindings
from studies.relu_failure.findings import ReluFailureFindings
from studies.vanishing.findings import VanishingFindings


@dataclass(frozen=True)
class Findings:
    """Every study's findings; None where a study did not run."""

    question: QuestionFindings | None = None
    causes: CausesFindings | None = None
    convergence: ConvergenceFindings | None = None
    vanishing: VanishingFindings | None = None
    relu_failure: ReluFailureFindings | None = None
    mechanisms: MechanismsFindings | None = None

    @classmethod
    def of(cls, by_name: dict) -> Findings:
        """From ``{study name: findings}``."""
        return cls(**{k: v for k, v in by_name.items() if k in cls.__dataclass_fields__})
