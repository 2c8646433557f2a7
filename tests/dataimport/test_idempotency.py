"""Importing again is safe: identical content is skipped, edited rows update, nothing duplicates."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from import_support import (
    LISTINGS_CSV,
    SELLERS_CSV,
    Files,
    load_catalogue,
    outbox_types,
    rows,
    run_import,
    snapshot,
    table_rows,
)

from marketpilot.dataimport.reader import CSV_BLOCK_BYTES
from marketpilot.domain.entities import InteractionIn
from marketpilot.marketplace import InteractionService
from marketpilot.platform.db import Database


def test_the_same_file_twice_changes_nothing(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    first = run_import(db, "listings", files.csv("listings.csv", LISTINGS_CSV))
    before = snapshot(db)
    again = run_import(db, "listings", files.csv("listings.csv", LISTINGS_CSV))
    assert again.already_imported and (again.batch_id, again.rows) == (first.batch_id, 3)
    assert str(again) == f"listings.csv was already imported as listings batch {first.batch_id} (3 rows); nothing changed"
    assert snapshot(db) == before


def test_identical_content_under_another_name_is_recognised(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    before = snapshot(db)
    assert run_import(db, "sellers", files.csv("sellers-copy.csv", SELLERS_CSV)).already_imported
    assert snapshot(db) == before


def test_the_same_content_as_another_kind_is_a_separate_import(db: Database, files: Files) -> None:
    body = "user_id,region\nu1,EU\n"
    run_import(db, "users", files.csv("a.csv", body))
    assert run_import(db, "users", files.csv("b.csv", body)).already_imported
    assert rows(db, "SELECT kind, filename, rows FROM import_batches") == [("users", "a.csv", 1)]


def test_an_edited_listing_export_updates_rows_and_announces_only_changes(db: Database, files: Files) -> None:
    load_catalogue(db, files)
    created = {r[0]: r[1] for r in table_rows(db, "listings", "id, created_at")}
    events_before = len(outbox_types(db))
    edited = """\
listing_id,seller_id,title,description,category_path,attributes,price_minor,currency,status,quantity
l1,s1,Red shoe,"Leather,
hand-made",fashion/women/shoes,"{""brand"": ""acme""}",2999,EUR,active,
l2,s2,Blue hat,,fashion/hats,,1000,EUR,,7
l3,s1,Green sock,,fashion/socks,,500,EUR,draft,0
l4,s2,New scarf,,fashion/scarves,,1500,EUR,,
"""
    report = run_import(db, "listings", files.csv("listings-v2.csv", edited))
    assert not report.already_imported
    assert table_rows(db, "listings", "id, price_minor") == [("l1", 2999), ("l2", 1000), ("l3", 500), ("l4", 1500)]
    # An empty quantity keeps l1's stock; l2's stock is set; l4 is new with one unit.
    assert table_rows(db, "inventory", "listing_id, quantity") == [("l1", 5), ("l2", 7), ("l3", 0), ("l4", 1)]
    # An empty created_at keeps the stored one.
    assert {r[0]: r[1] for r in table_rows(db, "listings", "id, created_at") if r[0] != "l4"} == created
    new_events = rows(db, "SELECT type, subject, data FROM outbox ORDER BY position")[events_before:]
    assert [(e[0], e[1]) for e in new_events] == [
        ("marketpilot.listing.updated", "l1"),
        ("marketpilot.inventory.changed", "l2"),
        ("marketpilot.listing.created", "l4"),
        ("marketpilot.inventory.changed", "l4"),
        ("marketpilot.data.imported", str(report.batch_id)),
    ]
    data = [e[2] if isinstance(e[2], dict) else json.loads(e[2]) for e in new_events]
    assert data[0] == {"listing_id": "l1", "seller_id": "s1", "changes": {"price_minor": 2999}}
    assert data[1] == {"listing_id": "l2", "quantity": 7, "reserved": 0, "available": 7, "reason": "imported"}
    assert data[4] == {"batch_id": str(report.batch_id), "kind": "listings", "rows": 4, "filename": "listings-v2.csv"}


def test_a_reordered_export_rewrites_the_same_rows(db: Database, files: Files) -> None:
    body = ["u1,l1,view,,1700000000", "u2,l1,click,,1700000005", "u1,l2,rating,5,2024-01-05T10:00:00Z"]
    header = "user_id,listing_id,event,value,timestamp\n"
    run_import(db, "interactions", files.csv("a.csv", header + "\n".join(body) + "\n"))
    before = snapshot(db)["interactions"]
    report = run_import(db, "interactions", files.csv("b.csv", header + "\n".join(reversed(body)) + "\n"))
    assert not report.already_imported
    assert snapshot(db)["interactions"] == before


def test_an_edited_interaction_value_updates_the_row(db: Database, files: Files) -> None:
    header = "user_id,listing_id,event,value,timestamp\n"
    run_import(db, "interactions", files.csv("a.csv", header + "u1,l1,rating,3,1700000000\n"))
    run_import(db, "interactions", files.csv("b.csv", header + "u1,l1,rating,5,1700000000\n"))
    assert rows(db, "SELECT user_id, value FROM interactions") == [("u1", 5.0)]


def test_an_interaction_sent_live_and_imported_is_stored_once(db: Database, files: Files) -> None:
    ts = datetime(2024, 1, 5, 10, 0, 0, 250_000, tzinfo=UTC)
    InteractionService(db, "/test").ingest([
        InteractionIn(user_id="u1", listing_id="l1", event="view", timestamp=ts, session_id="s-9")])
    run_import(db, "interactions", files.csv(
        "i.csv", "user_id,listing_id,event,timestamp,session_id\nu1,l1,view,2024-01-05T11:00:00.25+01:00,s-9\n"))
    assert rows(db, "SELECT count(*) FROM interactions") == [(1,)]


def test_a_reimported_order_replaces_its_lines_and_total(db: Database, files: Files) -> None:
    load_catalogue(db, files)
    header = "order_id,user_id,seller_id,listing_id,quantity,unit_price_minor,currency,created_at\n"
    run_import(db, "orders", files.csv("o1.csv", header + (
        "o1,u1,s1,l1,2,2599,EUR,2024-02-01T10:00:00Z\n"
        "o1,u1,s1,l3,1,500,EUR,2024-02-01T10:00:00Z\n"
        "o2,u2,s2,l2,1,1000,EUR,2024-02-01T10:00:00Z\n")))
    run_import(db, "orders", files.csv("o2.csv", header + "o1,u1,s1,l1,3,2599,EUR,2024-02-01T10:00:00Z\n"))
    assert table_rows(db, "orders", "id, total_minor") == [("o1", 3 * 2599), ("o2", 1000)]
    assert table_rows(db, "order_lines", "order_id, listing_id, quantity", order="order_id, listing_id") == [
        ("o1", "l1", 3), ("o2", "l2", 1)]


def test_an_order_whose_lines_are_far_apart_gets_its_full_total(db: Database, files: Files) -> None:
    """Lines of one order in different chunks: the total is the sum over the whole file."""
    load_catalogue(db, files)
    header = "order_id,user_id,seller_id,listing_id,quantity,unit_price_minor,currency,created_at\n"
    filler = "".join(f"f{i},u{i},s1,l1,1,100,EUR,2024-02-01T10:00:00Z\n" for i in range(40_000))
    body = (header + "big,u1,s1,l1,2,2599,EUR,2024-02-01T10:00:00Z\n" + filler
            + "big,u1,s1,l3,4,500,EUR,2024-02-01T10:00:00Z\n")
    assert len(body) > CSV_BLOCK_BYTES
    run_import(db, "orders", files.csv("orders.csv", body))
    assert rows(db, "SELECT total_minor FROM orders WHERE id = 'big'") == [(2 * 2599 + 4 * 500,)]
    assert rows(db, "SELECT count(*) FROM order_lines") == [(40_002,)]
