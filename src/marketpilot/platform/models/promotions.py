"""The promotion history of a model and what `rollback` restores.

The history is a list of :class:`PromotionEvent` kept as JSON in one tag of the registered
model (MLflow allows 100,000 characters there; we keep the latest `HISTORY_LIMIT` events,
about 15 KB). One tag, written by one call, rather than one tag per version, so the
history reads in a single query and cannot be half-written.

Rollback is a stack: promote 1, 2, 3 then rollback gives 2, rollback again gives 1, and a
third rollback fails with :class:`NoPreviousChampion`. The stack is replayed from the
events, so the history is the only state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from marketpilot.platform.models.records import PromotionEvent

HISTORY_LIMIT = 200


def decode_history(raw: str | None) -> list[PromotionEvent]:
    if not raw:
        return []
    return [
        PromotionEvent(
            action=item["action"],
            version=int(item["version"]),
            previous=None if item.get("previous") is None else int(item["previous"]),
            at=datetime.fromisoformat(item["at"]),
        )
        for item in json.loads(raw)
    ]


def encode_history(events: Sequence[PromotionEvent]) -> str:
    kept = list(events)[-HISTORY_LIMIT:]
    return json.dumps(
        [{"action": e.action, "version": e.version, "previous": e.previous, "at": e.at.isoformat()} for e in kept],
        separators=(",", ":"),
    )


def new_event(action: str, version: int, previous: int | None) -> PromotionEvent:
    if action not in ("promote", "rollback"):
        raise ValueError(f"unknown promotion action {action!r}")
    return PromotionEvent(action=action, version=version, previous=previous, at=datetime.now(UTC))  # type: ignore[arg-type]


def champion_stack(events: Sequence[PromotionEvent]) -> list[int]:
    """The champions in the order they were installed, rolled-back ones removed."""
    stack: list[int] = []
    for event in events:
        if event.action == "rollback" and stack:
            stack.pop()
        # A rollback re-installs event.version; it is already on top unless the history
        # was truncated, in which case this puts it back.
        if not stack or stack[-1] != event.version:
            stack.append(event.version)
    return stack


def rollback_target(events: Sequence[PromotionEvent], current: int, exists: Callable[[int], bool]) -> int | None:
    """The version `rollback` restores when `current` is champion, or None if there is none.

    Versions that no longer exist are skipped. A champion installed behind the registry's
    back (say in MLflow's UI) is not in the history; rollback then restores the last
    champion the registry installed.
    """
    stack = champion_stack(events)
    while stack and (stack[-1] == current or not exists(stack[-1])):
        stack.pop()
    return stack[-1] if stack else None
