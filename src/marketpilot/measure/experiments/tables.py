"""ORM tables of guarded experiments (migration ``0006_experiments``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketpilot.platform.db.schema import Base, UTCDateTime, utcnow

__all__ = ["ExperimentArmRow", "ExperimentRow"]

STATUSES = ("running", "halted", "killed", "completed")


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("status IN ('running','halted','killed','completed')", name="status_known"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="running")
    control: Mapped[str] = mapped_column(String(64))
    treatments: Mapped[list[str]] = mapped_column(JSON)
    halted_arms: Mapped[list[str]] = mapped_column(JSON, default=list)
    stages: Mapped[list[float]] = mapped_column(JSON)
    stage: Mapped[int] = mapped_column(Integer, default=0)
    stage_start_sessions: Mapped[int] = mapped_column(Integer, default=0)  # total sessions when the stage began
    min_stage_sessions: Mapped[int] = mapped_column(Integer)
    horizon_sessions: Mapped[int] = mapped_column(Integer)
    auto_ramp: Mapped[bool] = mapped_column(Boolean, default=True)
    guardrails: Mapped[dict[str, Any]] = mapped_column(JSON)
    halt_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ExperimentArmRow(Base):
    """One arm's sufficient statistics (:class:`~.arm_stats.ArmStats` as JSON)."""

    __tablename__ = "experiment_arms"
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64), primary_key=True)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
