"""Timestamps: ISO 8601 with or without zone, or Unix seconds, all stored as the same UTC instant."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from import_support import Files, run_import, table_rows

from marketpilot.platform.db import Database

T0 = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)


def stored(db: Database) -> list[datetime]:
    return [r[1] for r in table_rows(db, "transactions", "id, timestamp")]


def transactions_csv(files: Files, *stamps: str) -> object:
    body = "transaction_id,user_id,amount_minor,currency,instrument_fingerprint,timestamp\n" + "".join(
        f"t{i},u1,100,EUR,fp,{stamp}\n" for i, stamp in enumerate(stamps))
    return files.csv("transactions.csv", body)


def test_iso_and_unix_seconds_mean_the_same_instant(db: Database, files: Files) -> None:
    path = transactions_csv(
        files,
        "1704448800",                   # Unix seconds
        "2024-01-05T10:00:00Z",         # ISO with Z
        "2024-01-05T11:00:00+01:00",    # ISO with an offset
        "2024-01-05 10:00:00",          # no zone: UTC
        "2024-01-05T05:00:00-0500",     # basic offset
        " 1704448800 ",                 # surrounding spaces
    )
    run_import(db, "transactions", path)
    assert stored(db) == [T0] * 6


def test_fractions_of_a_second_are_kept_to_the_microsecond(db: Database, files: Files) -> None:
    run_import(db, "transactions", transactions_csv(files, "1704448800.25", "2024-01-05T10:00:00.000123Z"))
    assert stored(db) == [T0 + timedelta(milliseconds=250), T0 + timedelta(microseconds=123)]


def test_a_date_alone_is_midnight_utc(db: Database, files: Files) -> None:
    run_import(db, "transactions", transactions_csv(files, "2024-01-05"))
    assert stored(db) == [datetime(2024, 1, 5, tzinfo=UTC)]


def test_a_file_mixing_zoned_and_zone_less_cells_is_parsed_cell_by_cell(db: Database, files: Files) -> None:
    run_import(db, "transactions", transactions_csv(files, "2024-01-05T10:00:00", "2024-01-05T12:00:00+02:00"))
    assert stored(db) == [T0, T0]


def test_parquet_timestamps_dates_and_unix_numbers(db: Database, files: Files) -> None:
    common = {"user_id": ["u1"], "amount_minor": [1], "currency": ["EUR"], "instrument_fingerprint": ["fp"]}
    variants = {
        "aware": pa.array([T0.astimezone(UTC)], pa.timestamp("ns", tz="Europe/Paris")),
        "naive": pa.array([datetime(2024, 1, 5, 10)], pa.timestamp("s")),
        "date": pa.array([date(2024, 1, 5)], pa.date32()),
        "unix_int": pa.array([1704448800], pa.int64()),
        "unix_float": pa.array([1704448800.5], pa.float64()),
    }
    for name, column in variants.items():
        path = files.parquet(f"{name}.parquet", {"transaction_id": [name], **common, "timestamp": column})
        run_import(db, "transactions", path)
    got = dict(table_rows(db, "transactions", "id, timestamp"))
    assert got == {
        "aware": T0, "naive": T0, "date": datetime(2024, 1, 5, tzinfo=UTC), "unix_int": T0,
        "unix_float": T0 + timedelta(milliseconds=500),
    }
