"""Bad files are rejected with one exact message per problem, naming file, line and column."""

from __future__ import annotations

import pyarrow as pa
import pytest
from import_support import SELLERS_CSV, Files, load_catalogue, run_import

from marketpilot.dataimport import ImportFailed, ImportProblem
from marketpilot.dataimport.schemas import SCHEMAS
from marketpilot.platform.db import Database

ID_RULE = "use 1-64 letters, digits, '_', '-', '.' or ':', starting with a letter or digit"


def problems(db: Database, kind: str, path: object, **kwargs: object) -> list[str]:
    with pytest.raises(ImportFailed) as info:
        run_import(db, kind, path, **kwargs)  # type: ignore[arg-type]
    return [str(e) for e in info.value.errors]


def test_every_kind_of_bad_cell_is_named_with_its_line(db: Database, files: Files) -> None:
    path = files.csv("interactions.csv", """\
user_id,listing_id,event,value,timestamp,position
u1,l1,view,,1700000000,0
u 2,l1,view,,1700000000,
u3,l1,clik,,1700000000,
u4,l1,view,abc,1700000000,
u5,l1,view,,yesterday,
u6,l1,view,,1700000000000,
u7,l1,view,,1700000000,-1
u8,l1,view,,1700000000,2.5
,l1,view,,1700000000,
u10,l1,view,inf,2024-13-01,
""")
    assert problems(db, "interactions", path) == [
        f"interactions.csv, line 3: user_id: 'u 2' is not a valid id: {ID_RULE}",
        "interactions.csv, line 4: event: 'clik' is not one of: view, click, add_to_cart, purchase, rating",
        "interactions.csv, line 5: value: 'abc' is not a number",
        "interactions.csv, line 6: timestamp: 'yesterday' is not an ISO 8601 timestamp or Unix seconds",
        "interactions.csv, line 7: timestamp: '1700000000000' is outside the years 1900-2099 "
        "(Unix timestamps are in seconds, not milliseconds)",
        "interactions.csv, line 8: position: must be at least 0, got -1",
        "interactions.csv, line 9: position: '2.5' is not an integer",
        "interactions.csv, line 10: user_id: is required but empty",
        "interactions.csv, line 11: value: 'inf' is not a number",
        "interactions.csv, line 11: timestamp: '2024-13-01' is not an ISO 8601 timestamp or Unix seconds",
    ]


def test_listing_problems_money_currency_json_length_and_choices(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    long_title = "x" * 301
    path = files.csv("listings.csv", f"""\
listing_id,seller_id,title,category_path,attributes,price_minor,currency,status,quantity
l1,s1,Shoe,a/b,,25.99,EUR,active,1
l2,s1,Shoe,a/b,,-5,EUR,active,1
l3,s1,Shoe,a/b,,100,eur,active,1
l4,s1,Shoe,a/b,"[1, 2]",100,EUR,active,1
l5,s1,Shoe,a/b,{{oops,100,EUR,active,1
l6,s1,{long_title},a/b,,100,EUR,active,1
l7,s1,Shoe,a/b,,100,EUR,sold,1
l8,s9,Shoe,a/b,,100,EUR,active,1
l9,s1,Shoe,a/b,,100,EUR,active,2000000000
""")
    assert problems(db, "listings", path) == [
        "listings.csv, line 2: price_minor: '25.99' is not an integer",
        "listings.csv, line 3: price_minor: must be at least 0, got -5",
        "listings.csv, line 4: currency: unknown currency 'eur'; expected one of AUD, BRL, CAD, CHF, CNY, CZK, "
        "DKK, EUR, GBP, HUF, INR, JPY, MXN, NOK, PLN, RON, SEK, USD",
        "listings.csv, line 5: attributes: must be a JSON object ({...}), got list",
        "listings.csv, line 6: attributes: is not valid JSON (Expecting property name enclosed in double quotes)",
        "listings.csv, line 7: title: is 301 characters long; at most 300 are allowed",
        "listings.csv, line 8: status: 'sold' is not one of: active, draft, sold_out, delisted",
        "listings.csv, line 9: seller_id: seller 's9' does not exist: import sellers first",
        "listings.csv, line 10: quantity: must be at most 1000000000, got 2000000000",
    ]


def test_seller_country_must_be_two_capital_letters(db: Database, files: Files) -> None:
    path = files.csv("sellers.csv", "seller_id,name,country\ns1,Shop,Germany\n")
    assert problems(db, "sellers", path) == [
        "sellers.csv, line 2: country: 'Germany' does not match ^[A-Z]{2}$ (ISO 3166 alpha-2)"]


def test_a_buyer_email_must_be_one_address(db: Database, files: Files) -> None:
    path = files.csv("users.csv", """\
user_id,region,email
u1,EU,ana@example.com
u2,EU,ana
u3,EU,"Ana <ana@example.com>"
u4,EU,ana@example.com; bo@example.com
u5,EU,
""")
    pattern = SCHEMAS["users"].column("email").pattern
    hint = "(one e-mail address, where the buyer's order e-mails go; empty: none)"
    assert problems(db, "users", path) == [
        f"users.csv, line 3: email: 'ana' does not match {pattern} {hint}",
        f"users.csv, line 4: email: 'Ana <ana@example.com>' does not match {pattern} {hint}",
        f"users.csv, line 5: email: 'ana@example.com; bo@example.com' does not match {pattern} {hint}",
    ]


def test_order_rows_must_agree_and_refer_to_the_sellers_listings(db: Database, files: Files) -> None:
    load_catalogue(db, files)
    path = files.csv("orders.csv", """\
order_id,user_id,seller_id,listing_id,quantity,unit_price_minor,currency,created_at
o1,u1,s1,l1,1,2599,EUR,2024-02-01T10:00:00Z
o1,u2,s1,l3,1,500,EUR,2024-02-01T10:00:00Z
o2,u1,s1,l2,1,1000,EUR,2024-02-01T10:00:00Z
o3,u1,s1,nope,1,1000,EUR,2024-02-01T10:00:00Z
o4,u1,s1,l1,0,1000,EUR,2024-02-01T10:00:00Z
""")
    assert problems(db, "orders", path) == [
        "orders.csv, line 3: user_id: is 'u2' but 'u1' on line 2, the first row of order 'o1': the rows of an "
        "order must agree on user_id, seller_id, currency, shipping_region, status, created_at",
        "orders.csv, line 4: seller_id: listing 'l2' belongs to seller 's2', not 's1'",
        "orders.csv, line 5: listing_id: listing 'nope' does not exist: import listings first",
        "orders.csv, line 6: quantity: must be at least 1, got 0",
    ]


def test_sales_price_needs_a_currency(db: Database, files: Files) -> None:
    path = files.csv("sales.csv", "listing_id,region,date,quantity,price_minor\nsku1,EU,2024-01-01,3,100\n")
    assert problems(db, "sales", path) == ["sales.csv, line 2: currency: is required when price_minor is given"]


def test_a_key_twice_in_one_file_names_both_lines(db: Database, files: Files) -> None:
    path = files.csv("users.csv", "user_id,region\nu1,EU\nu2,EU\nu1,US\n")
    assert problems(db, "users", path) == [
        "users.csv, line 4: repeats the key (user_id) of line 2: each key may appear once per file"]


def test_repeated_interactions_are_stored_once(db: Database, files: Files) -> None:
    path = files.csv("interactions.csv", """\
user_id,listing_id,event,value,timestamp
u1,l1,view,,1700000000
u1,l1,view,,2023-11-14T22:13:20Z
""")
    report = run_import(db, "interactions", path)
    assert (report.rows, report.duplicates) == (2, 1)


def test_line_numbers_count_line_breaks_inside_quoted_cells(db: Database, files: Files) -> None:
    run_import(db, "sellers", files.csv("sellers.csv", SELLERS_CSV))
    path = files.csv("listings.csv", """\
listing_id,seller_id,title,description,category_path,price_minor,currency

l1,s1,Shoe,"three
line
description",a/b,100,EUR
l2,s1,Hat,,a/b,-1,EUR
""")
    assert problems(db, "listings", path) == ["listings.csv, line 6: price_minor: must be at least 0, got -1"]


def test_missing_required_columns_are_reported_before_any_row(db: Database, files: Files) -> None:
    path = files.csv("interactions.csv", "user_id,event,value\nu1,view,\n")
    assert problems(db, "interactions", path) == [
        "interactions.csv, line 1: required column 'listing_id' is missing (the file has: user_id, event, value)",
        "interactions.csv, line 1: required column 'timestamp' is missing (the file has: user_id, event, value)",
    ]


def test_unknown_columns_are_rejected_unless_ignored(db: Database, files: Files) -> None:
    path = files.csv("users.csv", "user_id,region,segmnt\nu1,EU,vip\n")
    assert problems(db, "users", path) == [
        "users.csv, line 1: unknown column 'segmnt': users files may have user_id, region, segment, email, created_at"]
    assert run_import(db, "users", path, ignore_extra_columns=True).rows == 1


def test_a_row_with_the_wrong_number_of_cells_is_located(db: Database, files: Files) -> None:
    path = files.csv("users.csv", 'user_id,region\nu1,EU\n"u2",EU,extra\nu3\n')
    assert problems(db, "users", path) == [
        "users.csv, line 3: has 3 cells but the header has 2 columns",
        "users.csv, line 4: has 1 cells but the header has 2 columns",
    ]


def test_bytes_that_are_not_utf8_are_located(db: Database, files: Files) -> None:
    path = files.root / "users.csv"
    path.write_bytes(b"user_id,region\nu1,EU\nu2,Z\xfcrich\n")
    assert problems(db, "users", path) == ["users.csv, line 3: is not UTF-8 text (byte 0xfc at column 5)"]


def test_file_level_problems(db: Database, files: Files) -> None:
    assert problems(db, "users", files.csv("empty.csv", "")) == [
        "empty.csv: is empty: expected a header line naming the columns"]
    assert problems(db, "users", files.csv("users.txt", "user_id,region\n")) == [
        "users.txt: unsupported file type: expected a name ending in .csv, .csv.gz or .parquet"]
    assert problems(db, "customers", files.csv("users.csv", "user_id,region\n")) == [
        "users.csv: unknown kind 'customers'; expected one of sellers, listings, users, interactions, orders, "
        "transactions, sales, shipments"]
    assert problems(db, "users", files.csv("dupes.csv", "user_id,region,region\n")) == [
        "dupes.csv, line 1: header names 'region' more than once"]


def test_parquet_problems_name_the_row_index(db: Database, files: Files) -> None:
    path = files.parquet("users.parquet", {"user_id": ["u1", "u2", None], "region": ["EU", "x" * 40, "US"]})
    assert problems(db, "users", path) == [
        "users.parquet, row 1: region: is 40 characters long; at most 32 are allowed",
        "users.parquet, row 2: user_id: is required but empty",
    ]


def test_parquet_column_of_an_unusable_type_is_rejected_before_reading(db: Database, files: Files) -> None:
    path = files.parquet("listings.parquet", {
        "listing_id": ["l1"], "seller_id": ["s1"], "title": ["t"], "category_path": ["a"],
        "price_minor": pa.array([[1]]), "currency": ["EUR"]})
    assert problems(db, "listings", path) == [
        "listings.parquet: price_minor: is stored as Parquet type list<element: int64>; "
        "int columns take integers (or text)"]


def test_collecting_stops_after_a_hundred_problems(db: Database, files: Files) -> None:
    body = "user_id,region\n" + "".join(f"bad id {i},EU\n" for i in range(150))
    with pytest.raises(ImportFailed) as info:
        run_import(db, "users", files.csv("users.csv", body))
    assert len(info.value.errors) == 100 and info.value.truncated
    message = str(info.value)
    assert message.startswith("100 problems in users.csv:\n  users.csv, line 2: user_id: 'bad id 0' is not")
    assert message.endswith("(stopped after 100 problems; fix these and run the import again)")


def test_problems_are_records_with_file_position_and_column(db: Database, files: Files) -> None:
    with pytest.raises(ImportFailed) as info:
        run_import(db, "users", files.csv("users.csv", "user_id,region\nu1,\n"))
    assert info.value.errors == [ImportProblem("users.csv", 2, "region", "is required but empty")]
    assert info.value.status == 422
