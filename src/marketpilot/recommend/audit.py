"""Exposure audit: how much position-weighted exposure each group of listings received in a
window of served slates, against its target.

It is computed from the logged `RecommendationServed` events (the outbox), not from a
replica's in-memory ledger, so it covers every replica and every strategy, fallbacks
included, and anyone can recompute it from the log. Group membership is judged at each
slate's own time (a listing is cold-start in the slates served during its first
`cold_start_days`). At most `max_slates` of the newest slates in the window are read; the
report says how many were.

The same slates give the exploration check: per session class and UTC day, the share of
served slots that were explored, against the class's budget cap, so that "the budget was never
exceeded" is read off the log of every day rather than trusted to the in-process accounts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
from sqlalchemy import select

from marketpilot.domain.errors import InvalidInput
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.recommend.availability import ListingUniverse
from marketpilot.recommend.events import RecommendationServed
from marketpilot.recommend.slate_policy import ExposureGroups

MAX_SLATES = 200_000
MAX_WINDOW = timedelta(days=90)
_WINDOW = re.compile(r"^(\d{1,5})([mhd])$")
_UNIT = {"m": "minutes", "h": "hours", "d": "days"}


def parse_window(text: str) -> timedelta:
    """`30m`, `24h`, `7d` (at most 90 days)."""
    match = _WINDOW.match(text)
    if match is None:
        raise InvalidInput(f"window: expected a number and a unit m, h or d (e.g. 24h), got {text!r}")
    window = timedelta(**{_UNIT[match.group(2)]: int(match.group(1))})
    if not timedelta(0) < window <= MAX_WINDOW:
        raise InvalidInput(f"window: must be more than 0 and at most 90d, got {text!r}")
    return window


@dataclass(frozen=True, slots=True)
class GroupExposure:
    group: str
    target: float | None
    exposure_share: float
    met: bool | None
    listings: int  # distinct listings of the group that were shown


@dataclass(frozen=True, slots=True)
class ExplorationDay:
    session_class: str
    day: date  # UTC
    slots: int  # served slots of the class that day
    explored: int  # of which explored
    share: float
    cap: float | None  # the class's max_explored_share (None: no exploration configured)
    within: bool | None  # share <= cap


@dataclass(frozen=True, slots=True)
class ExposureAudit:
    since: datetime
    until: datetime
    slates: int
    truncated: bool
    groups: list[GroupExposure]
    exploration: list[ExplorationDay] = field(default_factory=list)


def exposure_audit(
    db: Database,
    universe: ListingUniverse,
    groups: ExposureGroups,
    targets: dict[str, float],
    *,
    until: datetime,
    window: timedelta,
    max_slates: int = MAX_SLATES,
    explore_cap: Callable[[str], float] | None = None,
) -> ExposureAudit:
    """`explore_cap(session_class)` is the class's cap on the explored share of slots."""
    since = until - window
    with db.read() as s:
        rows = s.execute(
            select(t.OutboxEvent.time, t.OutboxEvent.data)
            .where(t.OutboxEvent.type == RecommendationServed.TYPE, t.OutboxEvent.time >= since, t.OutboxEvent.time <= until)
            .order_by(t.OutboxEvent.position.desc())
            .limit(max_slates + 1)
        ).all()
    truncated = len(rows) > max_slates
    rows = rows[:max_slates]
    names = groups.names
    exposure = np.zeros(len(names))
    total = 0.0
    shown: list[set[int]] = [set() for _ in names]
    days: dict[tuple[str, date], list[int]] = {}  # (class, day) -> [slots, explored]
    for served_at, data in rows:
        aware = served_at if served_at.tzinfo else served_at.replace(tzinfo=UTC)
        account = days.setdefault((str(data.get("session_class") or "unknown"), aware.astimezone(UTC).date()), [0, 0])
        account[0] += len(data.get("items", []))
        account[1] += sum(1 for flag in data.get("explored") or () if flag)
        index = [universe.index.get(lid, -1) for lid in data.get("items", [])]
        positions = np.asarray(data.get("positions", range(len(index))), dtype=np.int64)
        items = np.asarray(index, dtype=np.int64)
        known = items >= 0
        weights = 1.0 / np.log2(positions + 2.0)  # the position weights of fairness.position_weights
        total += float(weights.sum())
        if not known.any():
            continue
        when = served_at.timestamp() if served_at.tzinfo else served_at.replace(tzinfo=until.tzinfo).timestamp()
        membership = groups.membership(universe, items[known], when)
        exposure += weights[known] @ membership
        for g in range(len(names)):
            shown[g].update(items[known][membership[:, g]].tolist())
    shares = exposure / total if total > 0 else np.zeros(len(names))
    report = []
    for g, name in enumerate(names):
        target = targets.get(name)
        share = float(shares[g])
        report.append(GroupExposure(name, target, share, None if target is None else share >= target, len(shown[g])))
    exploration = []
    for (session_class, day), (slots, explored) in sorted(days.items()):
        cap = explore_cap(session_class) if explore_cap is not None else None
        share = explored / slots if slots else 0.0
        exploration.append(ExplorationDay(session_class, day, slots, explored, share, cap,
                                          None if cap is None else share <= cap + 1e-12))
    return ExposureAudit(since, until, len(rows), truncated, report, exploration)
