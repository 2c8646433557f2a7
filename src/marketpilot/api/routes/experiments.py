"""Guarded experiments: operators create, ramp and kill them; services fetch assignments and
report outcomes, from which the guardrails are computed (a breach halts the arm at once)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from marketpilot.api.deps import RuntimeDep, blocking, id_path, id_query
from marketpilot.api.security import Machine, Operator
from marketpilot.measure.experiments.guardrails import GuardrailConfig
from marketpilot.measure.experiments.ramp import DEFAULT_STAGES
from marketpilot.measure.experiments.service import Experiment, ExperimentSpec, Outcomes

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])
ExperimentId = Annotated[str, id_path("Experiment id.")]
MAX_BATCH = 10_000


class GuardrailsIn(BaseModel):
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="False-halt budget of one arm, however often it is checked."
    )
    min_sessions: int = Field(
        default=1_000, ge=2, description="Sessions per arm before a statistical verdict."
    )
    min_requests: int = Field(default=1_000, ge=2, description="Requests per arm before a latency verdict.")
    gmv_tolerance: float = Field(
        default=0.0, ge=0, description="Relative GMV/session drop tolerated before a halt."
    )
    gmv_tau: float = Field(
        default=0.05, gt=0, description="Relative effect size the sequential test is tuned for."
    )
    ctr_tolerance: float = Field(default=0.0, ge=0)
    ctr_tau: float = Field(default=0.05, gt=0)
    error_rate_tolerance: float = Field(
        default=0.001, ge=0, description="Absolute error-rate increase tolerated."
    )
    error_rate_tau: float = Field(default=0.005, gt=0)
    latency_p95_ratio: float = Field(
        default=1.25, ge=1, description="Arm p95 may exceed control's by this factor."
    )
    latency_p95_max_ms: float | None = Field(default=None, gt=0)


class ExperimentIn(BaseModel):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    control: str = "control"
    treatments: list[str] = Field(default_factory=lambda: ["treatment"], min_length=1, max_length=10)
    stages: list[float] = Field(
        default_factory=lambda: list(DEFAULT_STAGES),
        min_length=1,
        max_length=20,
        description="Traffic share of each treatment arm per ramp stage.",
    )
    min_stage_sessions: int = Field(default=10_000, ge=1)
    horizon_sessions: int = Field(default=1_000_000, ge=1)
    auto_ramp: bool = True
    guardrails: GuardrailsIn = Field(default_factory=lambda: GuardrailsIn())


class RampIn(BaseModel):
    stage: int | None = Field(default=None, ge=0, description="Target stage; omitted = the next one.")


class KillIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class SessionOutcome(BaseModel):
    gmv: float = Field(ge=0, description="GMV of the finished session, major currency units.")
    clicked: bool = False


class RequestOutcome(BaseModel):
    latency_ms: float = Field(ge=0)
    error: bool = False


class OutcomesIn(BaseModel):
    arm: str
    sessions: list[SessionOutcome] = Field(default_factory=list, max_length=MAX_BATCH)
    requests: list[RequestOutcome] = Field(default_factory=list, max_length=MAX_BATCH)


class GuardrailOut(BaseModel):
    name: str
    status: Literal["ok", "breach", "insufficient"]
    arm_value: float | None
    control_value: float | None
    low: float | None = Field(description="Always-valid lower bound of arm - control.")
    high: float | None


class ArmOut(BaseModel):
    arm: str
    sessions: int
    requests: int
    gmv_per_session: float
    halted: bool
    guardrails: list[GuardrailOut]


class ExperimentOut(BaseModel):
    id: str
    name: str
    status: Literal["running", "halted", "killed", "completed"]
    control: str
    treatments: list[str]
    halted_arms: list[str]
    stages: list[float]
    stage: int
    share: float = Field(description="Current traffic share of each live treatment arm.")
    total_sessions: int
    auto_ramp: bool
    halt_reason: str | None
    created_at: datetime
    updated_at: datetime
    arms: list[ArmOut]


class ExperimentList(BaseModel):
    items: list[ExperimentOut]


class AssignmentOut(BaseModel):
    experiment_id: str
    unit_id: str
    arm: str


def _out(e: Experiment) -> ExperimentOut:
    return ExperimentOut(
        id=e.id,
        name=e.name,
        status=e.status,  # type: ignore[arg-type]  # the table constrains it
        control=e.control,
        treatments=list(e.treatments),
        halted_arms=list(e.halted_arms),
        stages=list(e.stages),
        stage=e.stage,
        share=e.share,
        total_sessions=e.total_sessions,
        auto_ramp=e.auto_ramp,
        halt_reason=e.halt_reason,
        created_at=e.created_at,
        updated_at=e.updated_at,
        arms=[
            ArmOut(
                arm=a.arm,
                sessions=a.sessions,
                requests=a.requests,
                gmv_per_session=a.gmv_per_session,
                halted=a.halted,
                guardrails=[
                    GuardrailOut(
                        name=g.name,
                        status=g.status,
                        arm_value=g.arm_value,
                        control_value=g.control_value,
                        low=g.low,
                        high=g.high,
                    )
                    for g in a.guardrails
                ],
            )
            for a in e.arms
        ],
    )


@router.post("", status_code=201)
async def create_experiment(body: ExperimentIn, rt: RuntimeDep, _who: Operator) -> ExperimentOut:
    spec = ExperimentSpec(
        id=body.id,
        name=body.name,
        control=body.control,
        treatments=tuple(body.treatments),
        stages=tuple(body.stages),
        min_stage_sessions=body.min_stage_sessions,
        horizon_sessions=body.horizon_sessions,
        auto_ramp=body.auto_ramp,
        guardrails=GuardrailConfig(**body.guardrails.model_dump()),
    )
    return _out(await blocking(rt.experiments.create, spec))


@router.get("")
async def list_experiments(
    rt: RuntimeDep,
    _who: Operator,
    status: Literal["running", "halted", "killed", "completed"] | None = None,
) -> ExperimentList:
    return ExperimentList(items=[_out(e) for e in await blocking(rt.experiments.list, status)])


@router.get("/{experiment_id}")
async def get_experiment(experiment_id: ExperimentId, rt: RuntimeDep, _who: Operator) -> ExperimentOut:
    return _out(await blocking(rt.experiments.get, experiment_id))


@router.post("/{experiment_id}/ramp")
async def ramp_experiment(
    experiment_id: ExperimentId, rt: RuntimeDep, _who: Operator, body: RampIn | None = None
) -> ExperimentOut:
    """Move every live treatment arm to the next (or the given, higher) traffic stage."""
    return _out(await blocking(rt.experiments.ramp, experiment_id, body.stage if body else None))


@router.post("/{experiment_id}/kill")
async def kill_experiment(
    experiment_id: ExperimentId, body: KillIn, rt: RuntimeDep, _who: Operator
) -> ExperimentOut:
    """The kill switch: halt every treatment arm now; all traffic goes back to control."""
    return _out(await blocking(rt.experiments.kill, experiment_id, body.reason))


@router.post("/{experiment_id}/outcomes")
async def record_outcomes(
    experiment_id: ExperimentId, body: OutcomesIn, rt: RuntimeDep, _who: Machine
) -> ExperimentOut:
    """Fold one arm's finished sessions and served requests in; guardrails are re-evaluated."""
    outcomes = Outcomes(
        gmv=np.array([s.gmv for s in body.sessions], dtype=np.float64),
        clicked=np.array([s.clicked for s in body.sessions], dtype=bool),
        latency_ms=np.array([r.latency_ms for r in body.requests], dtype=np.float64),
        error=np.array([r.error for r in body.requests], dtype=bool),
    )
    return _out(await blocking(rt.experiments.record, experiment_id, body.arm, outcomes))


@router.get("/{experiment_id}/assignment")
async def get_assignment(
    experiment_id: ExperimentId,
    rt: RuntimeDep,
    _who: Machine,
    unit_id: Annotated[str, id_query("The unit (session or buyer) to assign.")],
) -> AssignmentOut:
    arm = await blocking(rt.experiments.assign, experiment_id, unit_id)
    return AssignmentOut(experiment_id=experiment_id, unit_id=unit_id, arm=arm)
