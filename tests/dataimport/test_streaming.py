"""Large files stream through in chunks (smoke test, no timing assertions)."""

from __future__ import annotations

import pyarrow.csv as pcsv
from import_support import Files, rows, run_import

from marketpilot.dataimport.bench import synthetic_interactions
from marketpilot.platform.db import Database


def test_two_hundred_thousand_interactions_stream_in_chunks(db: Database, files: Files) -> None:
    table = synthetic_interactions(200_000)
    path = files.root / "interactions.csv"
    pcsv.write_csv(table, path)
    calls: list[tuple[int, int]] = []
    report = run_import(db, "interactions", path, progress=lambda done, total: calls.append((done, total)))
    assert report.rows == 200_000 and report.duplicates == 0
    assert rows(db, "SELECT count(*) FROM interactions") == [(200_000,)]
    assert len(calls) > 5  # chunked, not read at once
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (200_000, 200_000)
    assert all(total >= done for done, total in calls)


def test_parquet_streams_in_batches_with_the_exact_total(db: Database, files: Files) -> None:
    path = files.parquet("interactions.parquet", synthetic_interactions(70_000))
    calls: list[tuple[int, int]] = []
    run_import(db, "interactions", path, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) > 2 and all(total == 70_000 for _, total in calls)
