"""A SQLite file of packed feature rows: the embedded store's write-through persistence.

One table, ``feature_rows(view, signature, entity, event_time, payload)``, payload being the
:class:`~marketpilot.platform.features._rows.RowCodec` record. Kept apart from the
marketplace database on purpose: materialisers write features continuously, and sharing the
main file would queue them behind (and in front of) order and inventory transactions on
SQLite's single writer lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_rows (
    view TEXT NOT NULL,
    signature TEXT NOT NULL,
    entity TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (view, entity)
) WITHOUT ROWID
"""

# An older event time never overwrites (the same rule as the in-memory arrays and Redis); a row
# of another layout (signature) is replaced, since it can no longer be decoded.
_UPSERT = """
INSERT INTO feature_rows (view, signature, entity, event_time, payload) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (view, entity) DO UPDATE SET
    signature = excluded.signature, event_time = excluded.event_time, payload = excluded.payload
WHERE excluded.event_time >= feature_rows.event_time OR excluded.signature <> feature_rows.signature
"""


class SqliteRowFile:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute(_SCHEMA)

    def load(self, view: str, signature: str, chunk: int = 100_000) -> Iterator[tuple[list[str], list[bytes]]]:
        """Stored rows of one view layout, in chunks of (entity ids, payloads).

        Rows of an older layout of the view are deleted first: they cannot be decoded, and the
        materialisers or a backfill write the new layout.
        """
        self._conn.execute("DELETE FROM feature_rows WHERE view = ? AND signature <> ?", (view, signature))
        cur = self._conn.execute(
            "SELECT entity, payload FROM feature_rows WHERE view = ? AND signature = ?", (view, signature)
        )
        while True:
            batch = cur.fetchmany(chunk)
            if not batch:
                return
            yield [r[0] for r in batch], [bytes(r[1]) for r in batch]

    def upsert(
        self, view: str, signature: str, entity_ids: Sequence[str], event_times: Sequence[int], payloads: Sequence[bytes]
    ) -> None:
        """One transaction for the batch, so a crash leaves all of it or none."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                _UPSERT,
                ((view, signature, e, t, p) for e, t, p in zip(entity_ids, event_times, payloads, strict=True)),
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
