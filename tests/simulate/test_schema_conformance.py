"""The simulator's files must import: checked here against dataimport.schemas with plain pandas."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from marketpilot.dataimport.schemas import SCHEMAS, ColumnType
from marketpilot.domain.entities import CURRENCY_EXPONENT, ID_PATTERN
from marketpilot.simulate import SimulationSummary

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
INTEGER = re.compile(r"^-?\d+$")
ID_COLUMNS = {"seller_id", "listing_id", "user_id", "order_id", "transaction_id", "shipment_id"}


def read_raw(path: Path) -> pd.DataFrame:
    """Every cell as the text in the file; empty cells as ''."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])


def schema_violations(kind: str, frame: pd.DataFrame) -> list[str]:
    schema = SCHEMAS[kind]
    problems: list[str] = []
    if list(frame.columns) != schema.names:
        return [f"{kind}: columns {list(frame.columns)} != {schema.names}"]
    for col in schema.columns:
        values = frame[col.name]
        present = values[values != ""]
        if col.required and len(present) != len(values):
            problems.append(f"{kind}.{col.name}: {len(values) - len(present)} empty required cells")
        if col.choices is not None and not set(present) <= set(col.choices):
            problems.append(f"{kind}.{col.name}: values outside {col.choices}: {set(present) - set(col.choices)}")
        if col.type is ColumnType.INT:
            if not present.str.match(INTEGER).all():
                problems.append(f"{kind}.{col.name}: non-integer values")
            elif (present.astype("int64") < 0).any():
                problems.append(f"{kind}.{col.name}: negative integers")
            elif col.min_value is not None and (present.astype("int64") < col.min_value).any():
                problems.append(f"{kind}.{col.name}: below {col.min_value}")
        elif col.type is ColumnType.FLOAT:
            numbers = pd.to_numeric(present, errors="coerce")
            if numbers.isna().any():
                problems.append(f"{kind}.{col.name}: non-numeric values")
            elif col.min_value is not None and (numbers < col.min_value).any():
                problems.append(f"{kind}.{col.name}: below {col.min_value}")
        elif col.type is ColumnType.TIMESTAMP:
            if not present.str.match(ISO_UTC).all():
                problems.append(f"{kind}.{col.name}: not ISO 8601 UTC")
            elif pd.to_datetime(present, utc=True, errors="coerce").isna().any():
                problems.append(f"{kind}.{col.name}: unparseable timestamps")
        elif col.type is ColumnType.CURRENCY:
            if not set(present) <= set(CURRENCY_EXPONENT):
                problems.append(f"{kind}.{col.name}: unknown currencies {set(present) - set(CURRENCY_EXPONENT)}")
        elif col.type is ColumnType.JSON:
            if not all(isinstance(json.loads(v), dict) for v in present):
                problems.append(f"{kind}.{col.name}: not JSON objects")
        is_id = col.name in ID_COLUMNS or getattr(col, "identifier", False)
        if is_id and not present.map(lambda v: bool(ID_PATTERN.match(v))).all():
            problems.append(f"{kind}.{col.name}: ids not matching the domain id pattern")
        max_length = getattr(col, "max_length", None)
        if max_length is not None and (present.str.len() > max_length).any():
            problems.append(f"{kind}.{col.name}: longer than {max_length}")
        max_value = getattr(col, "max_value", None)
        if max_value is not None and (pd.to_numeric(present) > max_value).any():
            problems.append(f"{kind}.{col.name}: above {max_value}")
        pattern = getattr(col, "pattern", None)
        if pattern is not None and not present.str.fullmatch(pattern).all():
            problems.append(f"{kind}.{col.name}: not matching {pattern}")
    if frame.duplicated(list(schema.key)).any():
        problems.append(f"{kind}: duplicate keys {schema.key}")
    return problems


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_import_file_matches_its_schema(out: Path, kind: str) -> None:
    frame = read_raw(out / f"{kind}.csv")
    assert len(frame) > 0
    assert schema_violations(kind, frame) == []


def test_the_schema_check_catches_a_broken_file(out: Path) -> None:
    frame = read_raw(out / "orders.csv")
    broken = frame.copy()
    broken.loc[0, "status"] = "teleported"
    broken.loc[1, "created_at"] = "yesterday"
    broken.loc[2, "quantity"] = "-3"
    broken.loc[3, "order_id"] = "no spaces allowed"
    problems = schema_violations("orders", broken)
    assert len(problems) == 4
    assert schema_violations("orders", frame[list(reversed(frame.columns))]) != []


def test_references_between_files_resolve(out: Path) -> None:
    sellers = set(read_raw(out / "sellers.csv").seller_id)
    listings = read_raw(out / "listings.csv")
    users = set(read_raw(out / "users.csv").user_id)
    orders = read_raw(out / "orders.csv")
    assert set(listings.seller_id) <= sellers
    for kind in ("interactions", "sales"):
        assert set(read_raw(out / f"{kind}.csv").listing_id) <= set(listings.listing_id)
    assert set(read_raw(out / "interactions.csv").user_id) <= users
    assert set(orders.user_id) <= users and set(orders.listing_id) <= set(listings.listing_id)
    assert set(orders.seller_id) <= sellers
    transactions = read_raw(out / "transactions.csv")
    assert set(transactions.user_id) <= users
    assert set(transactions.order_id[transactions.order_id != ""]) <= set(orders.order_id)
    assert set(read_raw(out / "shipments.csv").order_id) <= set(orders.order_id)


def test_order_lines_share_their_header_and_seller(out: Path) -> None:
    orders = read_raw(out / "orders.csv")
    header = ["user_id", "seller_id", "currency", "shipping_region", "status", "created_at"]
    assert (orders.groupby("order_id")[header].nunique() == 1).all().all()
    assert orders.groupby("order_id").size().max() > 1  # some orders do have several lines


def test_event_files_are_sorted_by_time(out: Path) -> None:
    for kind, column in (("interactions", "timestamp"), ("orders", "created_at"), ("transactions", "timestamp")):
        times = read_raw(out / f"{kind}.csv")[column]
        assert times.is_monotonic_increasing, kind


def test_summary_counts_match_the_files(small_world: SimulationSummary) -> None:
    manifest = json.loads(small_world.manifest.read_text())
    for kind, path in small_world.files.items():
        rows = len(read_raw(path))
        assert small_world.counts[kind] == rows
        assert manifest["files"][f"{kind}.csv"]["rows"] == rows
    assert manifest["seed"] == 11
    assert manifest["config"]["listings"] == 4_000
    assert manifest["schema_version"] == 1
    assert set(manifest["ground_truth"]) == {p.name for p in small_world.ground_truth.iterdir()}
