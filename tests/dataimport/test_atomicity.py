"""A file imports whole or not at all: one bad row leaves every table and the outbox as they were."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from import_support import LISTINGS_CSV, SELLERS_CSV, Files, rows, run_import, snapshot
from sqlalchemy import Connection, inspect

from marketpilot.dataimport import ImportFailed, importer
from marketpilot.dataimport.reader import CSV_BLOCK_BYTES
from marketpilot.platform.db import Database


def test_one_bad_listing_leaves_the_database_unchanged(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    before = snapshot(db)
    bad = LISTINGS_CSV + "l4,s1,Broken,,a/b,,-1,EUR,,\n"
    with pytest.raises(ImportFailed, match=r"listings.csv, line 6: price_minor: must be at least 0, got -1"):
        run_import(db, "listings", files.csv("listings.csv", bad))
    assert snapshot(db) == before


def test_a_bad_row_after_chunks_were_written_rolls_them_back(db: Database, files: Files) -> None:
    """The bad row sits beyond the first chunks, which were already written in the transaction."""
    good = [f"u{i},l{i % 97},view,,{1_700_000_000 + i}\n" for i in range(100_000)]
    body = "user_id,listing_id,event,value,timestamp\n" + "".join(good) + "u-last,l1,view,,not-a-time\n"
    assert len(body) > 2 * CSV_BLOCK_BYTES
    before = snapshot(db)
    chunks: list[int] = []
    with pytest.raises(ImportFailed) as info:
        run_import(db, "interactions", files.csv("interactions.csv", body),
                   progress=lambda done, total: chunks.append(done))
    assert [str(e) for e in info.value.errors] == [
        "interactions.csv, line 100002: timestamp: 'not-a-time' is not an ISO 8601 timestamp or Unix seconds"]
    assert len(chunks) >= 3  # several chunks went through the writer before the bad one
    assert snapshot(db) == before


def test_a_failed_listing_import_emits_no_events(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    before = snapshot(db)["outbox"]
    with pytest.raises(ImportFailed):
        run_import(db, "listings", files.csv("listings.csv", LISTINGS_CSV + "l9,nobody,X,,a,,1,EUR,,\n"))
    assert snapshot(db)["outbox"] == before


def indexes(db: Database) -> list[tuple[str, tuple[str, ...]]]:
    insp = inspect(db.engine)
    return sorted((ix["name"] or "", tuple(c or "" for c in ix["column_names"])) for ix in insp.get_indexes("interactions"))


def test_indexes_rebuilt_after_a_large_load_are_all_back(
    db: Database, files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large SQLite loads drop secondary indexes and rebuild them; success or failure, they return."""
    monkeypatch.setattr(importer, "DEFER_INDEXES_MIN_ROWS", 2)
    deferred: list[list[str]] = []
    real = importer.sqlite_indexes_deferred

    @contextmanager
    def spy(conn: Connection, tables: list[str]) -> Iterator[list[str]]:
        with real(conn, tables) as dropped:
            deferred.append(dropped)
            yield dropped

    monkeypatch.setattr(importer, "sqlite_indexes_deferred", spy)
    before = indexes(db)
    assert len(before) == 3
    body = "user_id,listing_id,event,value,timestamp\nu1,l1,view,,1700000000\nu2,l1,view,,1700000001\n"
    with pytest.raises(ImportFailed):
        run_import(db, "interactions", files.csv("bad.csv", body + "u3,l1,view,,never\n"))
    assert indexes(db) == before
    run_import(db, "interactions", files.csv("good.csv", body))
    assert indexes(db) == before
    assert rows(db, "SELECT count(*) FROM interactions WHERE user_id = 'u2'") == [(1,)]
    expected = sorted(name for name, _ in before) if db.is_sqlite else []  # never on PostgreSQL
    assert [sorted(d) for d in deferred] == ([expected, expected] if db.is_sqlite else [])
