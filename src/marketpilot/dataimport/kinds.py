"""Per kind: how validated rows become table rows, which references must hold, which events.

One writer per import kind. The importer gives each writer the valid rows of every chunk
three times: `key_hashes` (duplicate detection across the file), `check` (cross-column
rules and references to rows already in the database: problems are reported like bad
cells) and, while the file is still error-free, `write`. `finish` runs once after the last
chunk, still inside the transaction.

Imports are history, so no writer emits the per-row events of the live path (OrderPlaced,
InteractionLogged would re-run workflows on old orders). Listings are the exception: the
recommendation index must learn about new and changed listings, so they announce
ListingCreated/ListingUpdated and InventoryChanged as the API would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Table, bindparam, delete, literal_column, select, update
from sqlalchemy.orm import Session

from marketpilot.dataimport.bulk import Bulk, Row, utc_text
from marketpilot.dataimport.reader import Chunk
from marketpilot.dataimport.schemas import SCHEMAS, ColumnType, Schema
from marketpilot.dataimport.validate import Issue, default_value
from marketpilot.domain.events import EventData, InventoryChanged, ListingCreated, ListingUpdated
from marketpilot.platform.db import schema as t
from marketpilot.platform.events import outbox

LOOKUP_BATCH = 1000  # ids per `IN (...)` lookup, well inside SQLite's parameter limit


def table_of(model: type[t.Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


SELLERS, LISTINGS, INVENTORY, USERS = (table_of(m) for m in (t.Seller, t.Listing, t.Inventory, t.User))
INTERACTIONS, ORDERS, ORDER_LINES = (table_of(m) for m in (t.Interaction, t.Order, t.OrderLine))
TRANSACTIONS, SALES, SHIPMENTS = (table_of(m) for m in (t.Transaction, t.Sale, t.Shipment))


@dataclass
class Context:
    """What every writer shares: the transaction, bulk statements, the event source, 'now'."""

    session: Session
    conn: Connection
    bulk: Bulk
    source: str
    now: datetime
    unit: str  # "line" or "row", for messages that point at another row
    events: int = 0

    def emit(self, payloads: Sequence[EventData]) -> None:
        if payloads:
            outbox.append_many(self.session, payloads, self.source, time=self.now)
            self.events += len(payloads)


@dataclass
class Rows:
    """The valid rows of one chunk, with values encoded for the database."""

    chunk: Chunk
    schema: Schema
    bulk: Bulk
    _cache: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.chunk)

    def has(self, name: str) -> bool:
        return name in self.chunk.columns

    def arrow(self, name: str) -> pa.Array:
        return self.chunk.columns[name]

    def values(self, name: str) -> list[Any]:
        """Python values of a column; timestamps as database text; a column not in the file
        as its default (or None)."""
        if name not in self._cache:
            col = self.schema.column(name)
            if name not in self.chunk.columns:
                fill = default_value(col).as_py() if col.default is not None else None
                self._cache[name] = [fill] * len(self)
            elif col.type is ColumnType.TIMESTAMP:
                self._cache[name] = self.bulk.timestamps(self.chunk.columns[name])
            else:
                self._cache[name] = self.chunk.columns[name].to_pylist()
        return self._cache[name]


def iso_utc(values: pa.Array) -> pa.Array:
    """`datetime.isoformat()` of UTC timestamps, vectorised ('2024-01-05T10:00:00+00:00',
    with '.ffffff' only when the microseconds are not zero, exactly as Python writes it)."""
    text = pc.utf8_replace_slice(utc_text(values), 10, 11, "T")
    text = pc.replace_substring_regex(text, r"\.0{6}$", "")
    return pc.binary_join_element_wise(text, pa.scalar("+00:00"), "")


def digest_ids(keys: pa.Array | Iterable[str]) -> list[str]:
    """The 32-hex-digit blake2b id of each key (the scheme of marketplace.interactions)."""
    blake2b = hashlib.blake2b
    if isinstance(keys, pa.Array):  # UTF-8 bytes straight from Arrow: no str.encode per row
        return [blake2b(k, digest_size=16).hexdigest() for k in pc.cast(keys, pa.binary()).to_pylist()]
    return [blake2b(k.encode(), digest_size=16).hexdigest() for k in keys]


def hash_rows(columns: Sequence[Sequence[Any]], n: int) -> np.ndarray:
    return np.fromiter((hash(k) for k in zip(*columns, strict=True)), dtype=np.int64, count=n)


def chunks_of(items: Sequence[str], size: int = LOOKUP_BATCH) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Writer:
    """Base: upserts rows keyed by `schema.key`; subclasses say how columns map to the table."""

    kind: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]  # tables written, for the documentation
    # Columns that identify a row when they differ from the schema key (documentation).
    identity: ClassVar[tuple[str, ...] | None] = None
    # "error": a key twice in one file is a mistake in the export; "collapse": it is the same
    # fact sent twice (interactions), stored once.
    duplicates: ClassVar[str] = "error"
    # Whether a large load may rebuild the tables' secondary indexes at the end instead of
    # maintaining them per row (bulk.sqlite_indexes_deferred): not when the writer itself
    # looks rows up through one of them.
    defer_indexes: ClassVar[bool] = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.schema = SCHEMAS[self.kind]

    def rows(self, chunk: Chunk) -> Rows:
        return Rows(chunk, self.schema, self.ctx.bulk)

    def key_hashes(self, rows: Rows) -> np.ndarray:
        return hash_rows([rows.values(k) for k in self.schema.key], len(rows))

    def check(self, rows: Rows) -> list[Issue]:
        return []

    def write(self, rows: Rows) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass

    def upsert(self, table: Table, data: dict[str, list[Any]], key: Sequence[str], *, keep: str | None = None) -> None:
        """Upsert columns of `data` (name → values). `keep` names a column whose empty cells
        mean 'leave the stored value alone' (new rows get the import time)."""
        stmt = self.ctx.bulk.upsert(table, list(data), key)
        if keep is None:
            stmt.run_columns(data)
            return
        rows: list[Row] = list(zip(*(data[c] for c in stmt.columns), strict=True))
        k = stmt.columns.index(keep)
        now = self.ctx.bulk.timestamp(self.ctx.now)
        stmt.run([r for r in rows if r[k] is not None])
        keeping = self.ctx.bulk.upsert(table, list(data), key, keep=[keep])
        assert keeping.columns == stmt.columns
        keeping.run([r[:k] + (now,) + r[k + 1 :] for r in rows if r[k] is None])


class SellersWriter(Writer):
    kind = "sellers"
    tables = ("sellers",)

    def write(self, rows: Rows) -> None:
        v = rows.values
        self.upsert(SELLERS, {
            "id": v("seller_id"), "name": v("name"), "country": v("country"),
            "external_history_ref": v("external_history_ref"), "created_at": v("created_at"),
        }, ["id"], keep="created_at")


class UsersWriter(Writer):
    kind = "users"
    tables = ("users",)

    def write(self, rows: Rows) -> None:
        v = rows.values
        self.upsert(USERS, {
            "id": v("user_id"), "region": v("region"), "segment": v("segment"), "email": v("email"),
            "created_at": v("created_at"),
        }, ["id"], keep="created_at")


class InteractionsWriter(Writer):
    """Interactions keep the id scheme of the API (`marketplace.interactions.interaction_id`),
    so an interaction imported and also sent live is stored once."""

    kind = "interactions"
    tables = ("interactions",)
    identity = ("user_id", "listing_id", "event", "timestamp", "session_id")
    duplicates = "collapse"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._ids: tuple[Rows, list[str]] | None = None

    def ids(self, rows: Rows) -> list[str]:
        if self._ids is None or self._ids[0] is not rows:
            session = rows.arrow("session_id") if rows.has("session_id") else pa.nulls(len(rows), pa.string())
            keys = pc.binary_join_element_wise(
                rows.arrow("user_id"), rows.arrow("listing_id"), rows.arrow("event"),
                iso_utc(rows.arrow("timestamp")), pc.fill_null(session, ""), "\x1f",
            )
            self._ids = (rows, digest_ids(keys))
        return self._ids[1]

    def key_hashes(self, rows: Rows) -> np.ndarray:
        return np.fromiter((hash(i) for i in self.ids(rows)), dtype=np.int64, count=len(rows))

    def write(self, rows: Rows) -> None:
        v = rows.values
        self.upsert(INTERACTIONS, {
            "id": self.ids(rows), "user_id": v("user_id"), "listing_id": v("listing_id"), "event": v("event"),
            "value": v("value"), "session_id": v("session_id"), "position": v("position"),
            "request_id": v("request_id"), "timestamp": v("timestamp"),
        }, ["id"])


class TransactionsWriter(Writer):
    kind = "transactions"
    tables = ("transactions",)

    def write(self, rows: Rows) -> None:
        v = rows.values
        data = {"id": v("transaction_id")}
        data.update({name: v(name) for name in self.schema.names if name != "transaction_id"})
        self.upsert(TRANSACTIONS, data, ["id"])


class ShipmentsWriter(Writer):
    kind = "shipments"
    tables = ("shipments",)

    def write(self, rows: Rows) -> None:
        v = rows.values
        data = {"id": v("shipment_id")}
        data.update({name: v(name) for name in self.schema.names if name != "shipment_id"})
        self.upsert(SHIPMENTS, data, ["id"])


class SalesWriter(Writer):
    """A sale's id is a hash of its key (listing, region, day), so re-imports update it."""

    kind = "sales"
    tables = ("sales",)

    def check(self, rows: Rows) -> list[Issue]:
        prices, currencies = rows.values("price_minor"), rows.values("currency")
        return [
            Issue(i, "currency", "is required when price_minor is given")
            for i, (p, c) in enumerate(zip(prices, currencies, strict=True))
            if p is not None and c is None
        ]

    def write(self, rows: Rows) -> None:
        v = rows.values
        keys = pc.binary_join_element_wise(
            rows.arrow("listing_id"), rows.arrow("region"), iso_utc(rows.arrow("date")), "\x1f"
        )
        data = {"id": digest_ids(keys)}
        data.update({name: v(name) for name in self.schema.names})
        self.upsert(SALES, data, ["id"])


STOCK_COLUMNS = ("listing_id", "quantity", "reserved", "version", "updated_at")  # inventory's column order
LISTING_FIELDS = ("seller_id", "title", "description", "category_path", "attributes", "price_minor", "currency", "status")


@dataclass
class _Stored:
    """A listing as the database holds it before this chunk."""

    fields: dict[str, Any]
    created_at: datetime
    quantity: int | None
    reserved: int


class ListingsWriter(Writer):
    """Listings and their stock. A listing's seller must already exist. An empty quantity
    gives a new listing one unit and leaves an existing listing's stock alone."""

    kind = "listings"
    tables = ("listings", "inventory")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.known_sellers: set[str] = set()
        self._stored: tuple[Rows, dict[str, _Stored]] | None = None

    def stored(self, rows: Rows) -> dict[str, _Stored]:
        if self._stored is None or self._stored[0] is not rows:
            ids = sorted(set(rows.values("listing_id")))
            found: dict[str, _Stored] = {}
            L, inv = LISTINGS, INVENTORY  # noqa: N806
            for part in chunks_of(ids):
                q = (select(L.c.id, *[L.c[f] for f in LISTING_FIELDS], L.c.created_at, inv.c.quantity, inv.c.reserved)
                     .select_from(L.outerjoin(inv, inv.c.listing_id == L.c.id)).where(L.c.id.in_(part)))
                for r in self.ctx.conn.execute(q):
                    m = r._mapping
                    found[m["id"]] = _Stored({f: m[f] for f in LISTING_FIELDS}, m["created_at"],
                                             m["quantity"], m["reserved"] or 0)
            self._stored = (rows, found)
        return self._stored[1]

    def check(self, rows: Rows) -> list[Issue]:
        issues: list[Issue] = []
        sellers = rows.values("seller_id")
        wanted = sorted(set(sellers) - self.known_sellers)
        for part in chunks_of(wanted):
            self.known_sellers.update(self.ctx.conn.scalars(select(t.Seller.id).where(t.Seller.id.in_(part))))
        for i, s in enumerate(sellers):
            if s not in self.known_sellers:
                issues.append(Issue(i, "seller_id", f"seller {s!r} does not exist: import sellers first"))
        stored = self.stored(rows)
        for i, (lid, q) in enumerate(zip(rows.values("listing_id"), rows.values("quantity"), strict=True)):
            old = stored.get(lid)
            if old is not None and q is not None and q < old.reserved:
                issues.append(Issue(i, "quantity", f"is {q}, below the {old.reserved} units held by checkout locks"))
        return issues

    def write(self, rows: Rows) -> None:
        v = rows.values
        stored = self.stored(rows)
        ids = v("listing_id")
        bulk = self.ctx.bulk
        now = bulk.timestamp(self.ctx.now)
        created = [
            c if c is not None else (bulk.timestamp(stored[i].created_at) if i in stored else now)
            for i, c in zip(ids, v("created_at"), strict=True)
        ]
        self.upsert(LISTINGS, {
            "id": ids, **{f: v(f) for f in LISTING_FIELDS}, "created_at": created, "updated_at": [now] * len(rows),
        }, ["id"])

        inv = INVENTORY
        stock: list[Row] = []
        events: list[EventData] = []
        for i, lid in enumerate(ids):
            new = {f: v(f)[i] for f in LISTING_FIELDS}
            new["attributes"] = json.loads(new["attributes"])
            q = v("quantity")[i]
            old = stored.get(lid)
            if old is None:
                events.append(ListingCreated(listing_id=lid, seller_id=new["seller_id"], title=new["title"],
                                             category_path=new["category_path"], price_minor=new["price_minor"],
                                             currency=new["currency"], status=new["status"]))
                quantity, reserved = (1 if q is None else q), 0
            else:
                changes = {f: new[f] for f in LISTING_FIELDS if new[f] != old.fields[f]}
                if changes:
                    events.append(ListingUpdated(listing_id=lid, seller_id=new["seller_id"], changes=changes))
                if q is None or q == old.quantity:
                    continue
                quantity, reserved = q, old.reserved
            stock.append((lid, quantity, reserved, 0, now))
            events.append(InventoryChanged(listing_id=lid, quantity=quantity, reserved=reserved,
                                           available=quantity - reserved, reason="imported"))
        # Stock changes bump the row version like InventoryService.set_quantity; `reserved` is
        # never overwritten (checkout locks own it).
        stmt = bulk.upsert(inv, STOCK_COLUMNS, ["listing_id"], set_={
            "quantity": bulk.excluded(inv, "quantity"), "version": inv.c.version + literal_column("1"),
            "updated_at": bulk.excluded(inv, "updated_at")})
        assert stmt.columns == STOCK_COLUMNS
        stmt.run(stock)
        self.ctx.emit(events)


HEADER = ("user_id", "seller_id", "currency", "shipping_region", "status", "created_at")


@dataclass
class _OrderSeen:
    header: tuple[Any, ...]
    first: int  # position of its first row
    total: int = 0
    written_total: int = 0


class OrdersWriter(Writer):
    """Orders arrive one row per line; an order's lines may be anywhere in the file. The first
    row of an order replaces its stored lines (an edited re-export is the whole order again);
    its total is the sum of quantity x unit price over its rows."""

    kind = "orders"
    tables = ("orders", "order_lines")
    defer_indexes = False  # replacing an order's lines deletes by order_id

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.listings: dict[str, str | None] = {}  # listing id → seller id (None: does not exist)
        self.orders: dict[str, _OrderSeen] = {}
        self._first_rows: tuple[Rows, set[int]] | None = None

    def check(self, rows: Rows) -> list[Issue]:
        issues: list[Issue] = []
        lids = rows.values("listing_id")
        wanted = sorted(set(lids) - self.listings.keys())
        for part in chunks_of(wanted):
            q = select(t.Listing.id, t.Listing.seller_id).where(t.Listing.id.in_(part))
            found = {lid: sid for lid, sid in self.ctx.conn.execute(q)}
            self.listings.update({lid: found.get(lid) for lid in part})
        # Compared as typed values (the timestamp as a datetime), shown the same way on every backend.
        headers = list(zip(*[rows.arrow(h).to_pylist() if h == "created_at" else rows.values(h) for h in HEADER],
                           strict=True))
        first_rows: set[int] = set()
        for i, (oid, lid, sid) in enumerate(zip(rows.values("order_id"), lids, rows.values("seller_id"), strict=True)):
            owner = self.listings[lid]
            if owner is None:
                issues.append(Issue(i, "listing_id", f"listing {lid!r} does not exist: import listings first"))
            elif owner != sid:
                issues.append(Issue(i, "seller_id", f"listing {lid!r} belongs to seller {owner!r}, not {sid!r}"))
            seen = self.orders.get(oid)
            if seen is None:
                self.orders[oid] = _OrderSeen(headers[i], int(rows.chunk.positions[i]))
                first_rows.add(i)
                continue
            for name, mine, theirs in zip(HEADER, headers[i], seen.header, strict=True):
                if mine != theirs:
                    issues.append(Issue(i, name, f"is {_shown(mine)} but {_shown(theirs)} on {self.ctx.unit} "
                                                 f"{seen.first}, the first row of order {oid!r}: the rows of an order "
                                                 "must agree on " + ", ".join(HEADER)))
                    break
        self._first_rows = (rows, first_rows)
        return issues

    def write(self, rows: Rows) -> None:
        v = rows.values
        assert self._first_rows is not None and self._first_rows[0] is rows
        first = self._first_rows[1]
        oids, qty, price = v("order_id"), v("quantity"), v("unit_price_minor")
        for oid, q, p in zip(oids, qty, price, strict=True):
            self.orders[oid].total += q * p
        new = sorted(first)
        new_ids = [oids[i] for i in new]
        lines = ORDER_LINES
        for part in chunks_of(new_ids):
            self.ctx.conn.execute(delete(lines).where(lines.c.order_id.in_(part)))
        now = self.ctx.bulk.timestamp(self.ctx.now)
        header: dict[str, list[Any]] = {"id": new_ids}
        for name in HEADER:
            header[name] = [v(name)[i] for i in new]
        header["total_minor"] = []
        for oid in new_ids:
            seen = self.orders[oid]
            seen.written_total = seen.total
            header["total_minor"].append(seen.total)
        header["updated_at"] = [now] * len(new)
        self.upsert(ORDERS, header, ["id"])
        self.ctx.bulk.insert(lines, ["order_id", "listing_id", "quantity", "unit_price_minor"]).run_columns(
            {"order_id": oids, "listing_id": v("listing_id"), "quantity": qty, "unit_price_minor": price})

    def finish(self) -> None:
        """Orders whose lines continued in later chunks get their final total."""
        stale = [{"oid": oid, "total": s.total} for oid, s in self.orders.items() if s.total != s.written_total]
        if stale:
            orders = ORDERS
            self.ctx.conn.execute(
                update(orders).where(orders.c.id == bindparam("oid")).values(total_minor=bindparam("total")), stale
            )


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return repr(value.isoformat())
    return "empty" if value is None else repr(value)


WRITERS: dict[str, type[Writer]] = {
    w.kind: w
    for w in (SellersWriter, ListingsWriter, UsersWriter, InteractionsWriter, OrdersWriter,
              TransactionsWriter, SalesWriter, ShipmentsWriter)
}
