"""Guarded rollout: arms, traffic ramps, guardrails from outcome statistics, an always-valid
sequential test, automatic halt and rollback, and a manual kill switch."""

from marketpilot.measure.experiments.arm_stats import ArmStats
from marketpilot.measure.experiments.assignment import assign
from marketpilot.measure.experiments.guardrails import GuardrailConfig, GuardrailResult, evaluate_guardrails
from marketpilot.measure.experiments.ramp import DEFAULT_STAGES, RampSchedule
from marketpilot.measure.experiments.sequential import DifferenceBound, difference_confidence_sequence
from marketpilot.measure.experiments.service import (
    ArmReport,
    Experiment,
    ExperimentService,
    ExperimentSpec,
    Outcomes,
)

__all__ = [
    "DEFAULT_STAGES",
    "ArmReport",
    "ArmStats",
    "DifferenceBound",
    "Experiment",
    "ExperimentService",
    "ExperimentSpec",
    "GuardrailConfig",
    "GuardrailResult",
    "Outcomes",
    "RampSchedule",
    "assign",
    "difference_confidence_sequence",
    "evaluate_guardrails",
]
