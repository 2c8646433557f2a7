"""Drift reports in the database: write one (with its event), read the latest ones.

:func:`save_report` works on the caller's session, so the report row and its
``DriftDetected`` outbox event commit together or not at all: a consumer never hears of a
report that does not exist, and a stored drift report always has its event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from marketpilot.domain.events import DriftDetected
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import outbox
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.monitoring.drift_report import DriftReport, DriftThresholds, FeatureDrift, Verdict

Row = t.DriftReportRow


def detected_event(report: DriftReport) -> DriftDetected:
    if report.id is None:
        raise ValueError("a DriftDetected event needs a stored report (report.id is None)")
    drifted = [f for f in report.features if f.drifted]
    return DriftDetected(
        report_id=report.id,
        model=report.model,
        model_version=report.model_version,
        window_start=report.window_start.isoformat(),
        window_end=report.window_end.isoformat(),
        observations=report.observations,
        features=[f.name for f in drifted],
        psi={f.name: f.psi for f in drifted},
        p_adjusted={f.name: f.p_adjusted for f in drifted},
    )


def save_report(session: Session, report: DriftReport, source: str) -> tuple[DriftReport, CloudEvent | None]:
    """Insert the report and, if it found drift, its ``DriftDetected`` event, in `session`'s
    transaction. Returns the report with its id, and the event (None for no drift). The
    event's time is the window's end: when the drift was observable, not when we got to it."""
    values = {
        "model": report.model,
        "model_version": report.model_version,
        "instance": report.instance,
        "window_start": report.window_start,
        "window_end": report.window_end,
        "observations": report.observations,
        "sampled": report.sampled,
        "late": report.late,
        "verdict": report.verdict,
        "features": msgspec.to_builtins(report.features),
        "thresholds": msgspec.to_builtins(report.thresholds),
    }
    report_id = session.execute(insert(Row).values(**values).returning(Row.id)).scalar_one()
    stored = msgspec.structs.replace(report, id=int(report_id))
    event = None
    if stored.drifted:
        event = outbox.append(session, detected_event(stored), source, time=stored.window_end)
    return stored, event


def _utc(value: datetime) -> datetime:
    # `UTCDateTime` is meant to return aware values, but on SQLite the dialect's own DATETIME
    # result processor replaces its hook and values come back naive (UTC by construction).
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def to_report(row: Row) -> DriftReport:
    return DriftReport(
        id=row.id,
        model=row.model,
        model_version=row.model_version,
        instance=row.instance,
        window_start=_utc(row.window_start),
        window_end=_utc(row.window_end),
        observations=row.observations,
        sampled=row.sampled,
        late=row.late,
        verdict=msgspec.convert(row.verdict, Verdict),
        features=msgspec.convert(row.features, tuple[FeatureDrift, ...]),
        thresholds=msgspec.convert(row.thresholds, DriftThresholds),
    )


def latest_evaluated(session: Session, model: str) -> DriftReport | None:
    """The newest report of `model` that reached a verdict (``insufficient`` windows skipped)."""
    row = session.scalars(
        select(Row)
        .where(Row.model == model, Row.verdict != "insufficient")
        .order_by(Row.window_end.desc(), Row.id.desc())
        .limit(1)
    ).first()
    return to_report(row) if row is not None else None


def latest_reports(session: Session, *, model: str | None = None, per_model: int = 1) -> list[DriftReport]:
    """The `per_model` newest reports of each model (or of `model`), newest first per model."""
    rank = (
        func.row_number()
        .over(partition_by=Row.model, order_by=(Row.window_end.desc(), Row.id.desc()))
        .label("rank")
    )
    ranked = select(Row.id, rank)
    if model is not None:
        ranked = ranked.where(Row.model == model)
    sub = ranked.subquery()
    rows: Sequence[Row] = session.scalars(
        select(Row)
        .join(sub, sub.c.id == Row.id)
        .where(sub.c.rank <= per_model)
        .order_by(Row.model, Row.window_end.desc(), Row.id.desc())
    ).all()
    return [to_report(r) for r in rows]
