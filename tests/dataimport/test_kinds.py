"""Every kind imports from CSV and from Parquet into its tables, with the same result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from import_support import (
    Files,
    load_catalogue,
    outbox_types,
    rows,
    run_import,
    table_rows,
    write_table,
)

from marketpilot.marketplace.interactions import interaction_id
from marketpilot.platform.db import Database

FORMATS = ["csv", "parquet"]
T0 = datetime(2024, 1, 5, 10, 0, tzinfo=UTC)
TS = pa.timestamp("us", tz="UTC")
INT = pa.int64()


def recent(value: datetime) -> bool:
    return abs(datetime.now(UTC) - value) < timedelta(minutes=5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sellers_import(db: Database, files: Files, fmt: str) -> None:
    path = write_table(files, fmt, "sellers", {
        "seller_id": ["s1", "s2"], "name": ["Shop one", "Shop two"], "country": ["DE", None],
        "created_at": [T0, None], "external_history_ref": [None, "ebay:42"],
    }, {"created_at": TS})
    report = run_import(db, "sellers", path)
    assert (report.rows, report.already_imported) == (2, False)
    got = table_rows(db, "sellers", "id, name, country, external_history_ref, created_at")
    assert got[0] == ("s1", "Shop one", "DE", None, T0)
    assert got[1][:4] == ("s2", "Shop two", None, "ebay:42") and recent(got[1][4])
    assert outbox_types(db) == ["marketpilot.data.imported"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_listings_import_with_stock_and_events(db: Database, files: Files, fmt: str) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", "seller_id,name\ns1,Shop one\n"))
    path = write_table(files, fmt, "listings", {
        "listing_id": ["l1", "l2"], "seller_id": ["s1", "s1"], "title": ["Red shoe", "Blue hat"],
        "description": ["Leather,\nhand-made", None], "category_path": ["fashion/shoes", "fashion/hats"],
        "attributes": ['{"brand": "acme"}', None], "price_minor": [2599, 1000], "currency": ["EUR", "JPY"],
        "status": [None, "draft"], "quantity": [5, None], "created_at": [T0, None],
    }, {"price_minor": INT, "quantity": INT, "created_at": TS})
    report = run_import(db, "listings", path)
    assert report.rows == 2
    got = table_rows(db, "listings", "id, seller_id, title, description, category_path, attributes, price_minor, "
                                     "currency, status, created_at")
    assert got[0] == ("l1", "s1", "Red shoe", "Leather,\nhand-made", "fashion/shoes", {"brand": "acme"}, 2599,
                      "EUR", "active", T0)
    assert got[1][:9] == ("l2", "s1", "Blue hat", "", "fashion/hats", {}, 1000, "JPY", "draft")
    assert table_rows(db, "inventory", "listing_id, quantity, reserved") == [("l1", 5, 0), ("l2", 1, 0)]
    assert outbox_types(db) == [
        "marketpilot.data.imported",  # the sellers file
        "marketpilot.listing.created", "marketpilot.inventory.changed",
        "marketpilot.listing.created", "marketpilot.inventory.changed",
        "marketpilot.data.imported",
    ]
    assert report.events == 5


@pytest.mark.parametrize("fmt", FORMATS)
def test_users_import(db: Database, files: Files, fmt: str) -> None:
    path = write_table(files, fmt, "users", {
        "user_id": ["u1", "u2"], "region": ["EU", "US"], "segment": ["new", None],
        "email": ["ana@example.com", None], "created_at": [T0, T0],
    }, {"created_at": TS})
    report = run_import(db, "users", path)
    assert table_rows(db, "users", "id, region, segment, email, created_at") == [
        ("u1", "EU", "new", "ana@example.com", T0), ("u2", "US", None, None, T0)]
    assert str(report).startswith(f"imported 2 users rows from users.{fmt} as batch {report.batch_id} in ")


@pytest.mark.parametrize("fmt", FORMATS)
def test_interactions_import_with_the_api_ids(db: Database, files: Files, fmt: str) -> None:
    path = write_table(files, fmt, "interactions", {
        "user_id": ["u1", "u1", "u2"], "listing_id": ["l1", "l1", "l2"], "event": ["view", "rating", "click"],
        "value": [None, 4.5, None], "timestamp": [T0, T0 + timedelta(microseconds=250), T0],
        "session_id": [None, "sess-1", "sess-2"], "position": [3, None, 0], "request_id": [None, None, "req-9"],
    }, {"value": pa.float64(), "timestamp": TS, "position": INT})
    report = run_import(db, "interactions", path)
    assert (report.rows, report.duplicates) == (3, 0)
    assert table_rows(db, "interactions", "id, user_id, listing_id, event, value, session_id, position, "
                                          "request_id, timestamp", order="user_id, event") == sorted([
        (interaction_id("u1", "l1", "view", T0, None), "u1", "l1", "view", None, None, 3, None, T0),
        (interaction_id("u1", "l1", "rating", T0 + timedelta(microseconds=250), "sess-1"), "u1", "l1", "rating",
         4.5, "sess-1", None, None, T0 + timedelta(microseconds=250)),
        (interaction_id("u2", "l2", "click", T0, "sess-2"), "u2", "l2", "click", None, "sess-2", 0, "req-9", T0),
    ], key=lambda r: (r[1], r[3]))
    assert outbox_types(db) == ["marketpilot.data.imported"]  # no InteractionLogged for history


@pytest.mark.parametrize("fmt", FORMATS)
def test_orders_import_lines_and_totals(db: Database, files: Files, fmt: str) -> None:
    load_catalogue(db, files)
    events_before = len(outbox_types(db))
    path = write_table(files, fmt, "orders", {
        "order_id": ["o1", "o2", "o1"], "user_id": ["u1", "u2", "u1"], "seller_id": ["s1", "s2", "s1"],
        "listing_id": ["l1", "l2", "l3"], "quantity": [2, 1, 3], "unit_price_minor": [2599, 1000, 500],
        "currency": ["EUR"] * 3, "shipping_region": ["EU", None, "EU"], "status": ["delivered", None, "delivered"],
        "created_at": [T0, T0, T0],
    }, {"quantity": INT, "unit_price_minor": INT, "created_at": TS})
    run_import(db, "orders", path)
    assert table_rows(db, "orders", "id, user_id, seller_id, status, total_minor, currency, shipping_region, "
                                    "created_at") == [
        ("o1", "u1", "s1", "delivered", 2 * 2599 + 3 * 500, "EUR", "EU", T0),
        ("o2", "u2", "s2", "placed", 1000, "EUR", None, T0),
    ]
    assert table_rows(db, "order_lines", "order_id, listing_id, quantity, unit_price_minor",
                      order="order_id, listing_id") == [
        ("o1", "l1", 2, 2599), ("o1", "l3", 3, 500), ("o2", "l2", 1, 1000)]
    # History does not start order workflows: only the file's DataImported is new.
    assert outbox_types(db)[events_before:] == ["marketpilot.data.imported"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_transactions_import(db: Database, files: Files, fmt: str) -> None:
    path = write_table(files, fmt, "transactions", {
        "transaction_id": ["t1", "t2"], "user_id": ["u1", "u2"], "order_id": ["o1", None],
        "amount_minor": [5198, 1000], "currency": ["EUR", "USD"], "instrument_fingerprint": ["fp1", "fp2"],
        "device_id": ["d1", None], "ip": ["192.0.2.1", None], "email_domain": ["example.org", None],
        "ip_region": ["EU", None], "shipping_region": ["EU", None], "timestamp": [T0, T0], "label": [0, 1],
    }, {"amount_minor": INT, "timestamp": TS, "label": INT})
    run_import(db, "transactions", path)
    assert table_rows(db, "transactions", "id, user_id, order_id, amount_minor, currency, instrument_fingerprint, "
                                          "device_id, ip, email_domain, ip_region, shipping_region, timestamp, label") == [
        ("t1", "u1", "o1", 5198, "EUR", "fp1", "d1", "192.0.2.1", "example.org", "EU", "EU", T0, 0),
        ("t2", "u2", None, 1000, "USD", "fp2", None, None, None, None, None, T0, 1),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_sales_import_with_ids_from_the_key(db: Database, files: Files, fmt: str) -> None:
    day = datetime(2024, 2, 1, tzinfo=UTC)
    path = write_table(files, fmt, "sales", {
        "listing_id": ["sku-1", "sku-1"], "region": ["EU", "EU"], "date": [day, day + timedelta(days=1)],
        "quantity": [3.0, 1.5], "price_minor": [2599, None], "currency": ["EUR", None], "promo": [1, None],
    }, {"date": TS, "quantity": pa.float64(), "price_minor": INT, "promo": INT})
    run_import(db, "sales", path)
    got = table_rows(db, "sales", "listing_id, region, date, quantity, price_minor, currency, promo, id",
                     order="date")
    assert [r[:7] for r in got] == [
        ("sku-1", "EU", day, 3.0, 2599, "EUR", 1), ("sku-1", "EU", day + timedelta(days=1), 1.5, None, None, 0)]
    assert all(len(r[7]) == 32 for r in got) and got[0][7] != got[1][7]


@pytest.mark.parametrize("fmt", FORMATS)
def test_shipments_import(db: Database, files: Files, fmt: str) -> None:
    path = write_table(files, fmt, "shipments", {
        "shipment_id": ["sh1"], "order_id": ["o1"], "carrier": ["dhl"], "origin_region": ["DE"],
        "destination_region": ["FR"], "status": ["delivered"], "shipped_at": [T0],
        "promised_at": [T0 + timedelta(days=2)], "delivered_at": [T0 + timedelta(days=1)],
    }, {"shipped_at": TS, "promised_at": TS, "delivered_at": TS})
    run_import(db, "shipments", path)
    assert table_rows(db, "shipments", "id, order_id, carrier, origin_region, destination_region, status, "
                                       "shipped_at, promised_at, delivered_at") == [
        ("sh1", "o1", "dhl", "DE", "FR", "delivered", T0, T0 + timedelta(days=2), T0 + timedelta(days=1))]


def test_parquet_integer_ids_and_naive_timestamps_are_accepted(db: Database, files: Files) -> None:
    """MovieLens-style Parquet: integer ids, float ratings, zone-less timestamps (read as UTC)."""
    path = files.parquet("ratings.parquet", {
        "user_id": pa.array([1, 2], pa.int64()), "listing_id": pa.array([10, 20], pa.int32()),
        "event": ["rating", "rating"], "value": pa.array([4.0, float("nan")]),
        "timestamp": pa.array([datetime(2024, 1, 5, 10, 0), datetime(2024, 1, 5, 11, 0)], pa.timestamp("ms")),
    })
    run_import(db, "interactions", path)
    assert table_rows(db, "interactions", "user_id, listing_id, value, timestamp", order="user_id") == [
        ("1", "10", 4.0, T0), ("2", "20", None, T0 + timedelta(hours=1))]


def test_csv_gz_is_read(db: Database, files: Files) -> None:
    import gzip

    path = files.root / "users.csv.gz"
    path.write_bytes(gzip.compress(b"user_id,region\nu1,EU\nu2,US\n"))
    assert run_import(db, "users", path).rows == 2
    assert rows(db, "SELECT id FROM users ORDER BY id") == [("u1",), ("u2",)]


def test_parquet_dictionary_encoded_and_large_string_columns_are_read(db: Database, files: Files) -> None:
    """pandas writes categoricals as dictionary columns and may write large strings."""
    path = files.parquet("users.parquet", {
        "user_id": pa.array(["u1", "u2"], pa.large_string()),
        "region": pa.array(["EU", "EU"]).dictionary_encode(),
        "segment": pa.array([None, None], pa.null()),
    })
    run_import(db, "users", path)
    assert table_rows(db, "users", "id, region, segment") == [("u1", "EU", None), ("u2", "EU", None)]
