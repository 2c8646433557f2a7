"""Tables of the fraud capability (migration ``0003_fraud``).

* ``fraud_decisions``: every decision with what is needed to audit and re-evaluate it
  (score, thresholds, model version, strategy, top reasons, the request itself). Decisions
  with action ``review`` form the review queue; an analyst's label is stored on the row and
  written to ``transactions.label``, which is what the trainer learns from.
* ``fraud_reputation``: imported IP / device / email-domain / instrument lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketpilot.platform.db.schema import Base, SerialKey, UTCDateTime, utcnow

__all__ = ["FraudDecisionRow", "ReputationEntry"]


class FraudDecisionRow(Base):
    __tablename__ = "fraud_decisions"
    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    block_threshold: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # open (review queue) | closed
    label: Mapped[int | None] = mapped_column(Integer)  # analyst: 1 fraud, 0 legitimate
    reviewer: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    __table_args__ = (
        CheckConstraint("action IN ('approve','review','block')", name="action_known"),
        CheckConstraint("strategy IN ('model','fallback')", name="strategy_known"),
        CheckConstraint("status IN ('open','closed')", name="status_known"),
        Index("ix_fraud_decisions_queue", "status", "id"),
    )


class ReputationEntry(Base):
    __tablename__ = "fraud_reputation"
    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(128))
    source: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    __table_args__ = (
        CheckConstraint("kind IN ('ip','device','email_domain','instrument')", name="kind_known"),
        UniqueConstraint("kind", "value", name="uq_fraud_reputation_kind_value"),
    )
