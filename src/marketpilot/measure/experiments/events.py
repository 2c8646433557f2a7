"""Events of guarded experiments, written through the outbox with the state change."""

from __future__ import annotations

from marketpilot.domain.events import EventData, register_event_type

__all__ = ["ArmHalted", "ExperimentRamped", "ExperimentSessionFinished"]


@register_event_type
class ArmHalted(EventData, kw_only=True):
    """A treatment arm stopped receiving traffic (its units fall back to control)."""

    TYPE = "marketpilot.experiment.arm_halted"
    AGGREGATE = "experiment_id"
    experiment_id: str
    arm: str
    cause: str  # "guardrail" (automatic) or "kill" (manual)
    reason: str
    total_sessions: int


@register_event_type
class ExperimentRamped(EventData, kw_only=True):
    TYPE = "marketpilot.experiment.ramped"
    AGGREGATE = "experiment_id"
    experiment_id: str
    stage: int
    share: float
    automatic: bool


@register_event_type
class ExperimentSessionFinished(EventData, kw_only=True):
    """One finished session of an experiment arm, emitted by the serving side.

    The guardrails are computed from these (``OutcomeFolder``), so the serving path only
    appends an event to its outbox and never waits for the experiment tables.
    """

    TYPE = "marketpilot.experiment.session_finished"
    AGGREGATE = "experiment_id"
    experiment_id: str
    arm: str
    session_id: str
    gmv: float
    clicked: bool = False
    request_latency_ms: list[float] = []
    request_error: list[bool] = []
