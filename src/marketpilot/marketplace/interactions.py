"""Buyer interactions (views, clicks, carts, purchases, ratings), ingested in batches.

An interaction's id is a hash of what identifies it, so re-sending a batch (client retry,
at-least-once upstream) stores and announces each interaction once. Interactions do not
require the user or listing to exist yet: events may arrive before the catalogue sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from marketpilot.domain.entities import InteractionIn
from marketpilot.domain.events import InteractionLogged
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import outbox


def interaction_id(user_id: str, listing_id: str, event: str, timestamp: datetime, session_id: str | None) -> str:
    key = f"{user_id}\x1f{listing_id}\x1f{event}\x1f{timestamp.isoformat()}\x1f{session_id or ''}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


class InteractionService:
    def __init__(self, db: Database, source: str) -> None:
        self.db = db
        self.source = source

    def ingest(self, batch: Sequence[InteractionIn]) -> tuple[int, int]:
        """Store a batch; returns (accepted, duplicates). One transaction for the batch."""
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in batch:
            iid = interaction_id(item.user_id, item.listing_id, item.event.value, item.timestamp, item.session_id)
            if iid in seen:
                continue
            seen.add(iid)
            rows.append(
                {
                    "id": iid,
                    "user_id": item.user_id,
                    "listing_id": item.listing_id,
                    "event": item.event.value,
                    "value": item.value,
                    "session_id": item.session_id,
                    "position": item.position,
                    "request_id": item.request_id,
                    "timestamp": item.timestamp,
                }
            )
        if not rows:
            return 0, len(batch)
        dialect = sqlite if self.db.is_sqlite else postgresql
        table = cast(Table, t.Interaction.__table__)  # Core insert: no per-row ORM bookkeeping on the ingest path
        stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
        with self.db.session() as s:
            inserted = set(s.scalars(stmt, rows).all())
            outbox.append_many(
                s,
                [
                    InteractionLogged(
                        interaction_id=r["id"],
                        user_id=r["user_id"],
                        listing_id=r["listing_id"],
                        event=r["event"],
                        value=r["value"],
                        session_id=r["session_id"],
                        position=r["position"],
                        request_id=r["request_id"],
                        timestamp=r["timestamp"].isoformat(),
                    )
                    for r in rows
                    if r["id"] in inserted
                ],
                self.source,
            )
        return len(inserted), len(batch) - len(inserted)

    def count(self, user_id: str | None = None) -> int:
        from sqlalchemy import func

        q = select(func.count()).select_from(t.Interaction)
        if user_id:
            q = q.where(t.Interaction.user_id == user_id)
        with self.db.read() as s:
            return int(s.scalar(q) or 0)
