"""The process's DBOS set-up on the embedded profile."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from marketpilot.platform import durable
from marketpilot.platform.config import Settings


def test_a_client_creates_the_system_database_in_wal_mode(tmp_path: Path) -> None:
    """The file must be in WAL mode before any worker opens it: workers that switch it
    themselves while another process migrates it can deadlock until the busy timeout."""
    settings = Settings(home=tmp_path / "home", auth_required=False)
    client = durable.client(settings)
    try:
        with sqlite3.connect(tmp_path / "home" / "dbos.sqlite") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        client.destroy()
