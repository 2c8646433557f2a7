"""Batch materialisation: the streaming features, recomputed from the database tables.

Used to fill a new store, to repair one after an outage or a crash that double-counted, and
to prime the velocity windows after a restart. Rows are exported from the database with
SQLAlchemy into Arrow tables (a chunked stream, so SQLite and PostgreSQL are read the same
way) and aggregated by DuckDB. The SQL reproduces the streaming definitions exactly, by the
same integer arithmetic on epoch milliseconds, and a test holds the two paths to agreeing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute

from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.features._time import TimeLike, from_ms, to_ms
from marketpilot.platform.features.catalog import TRANSACTION_KEYS, VelocitySpec
from marketpilot.platform.features.materialize import INTERACTION_EVENTS, CtrSmoothing, Observation
from marketpilot.platform.features.online import OnlineStore
from marketpilot.platform.features.views import FeatureView
from marketpilot.platform.features.windows import window_label

EXPORT_CHUNK = 50_000


@dataclass
class BackfillReport:
    """Rows written per view (a row not newer than the stored one counts as not written)."""

    written: dict[str, int] = field(default_factory=dict)


def _export(db: Database, stmt: Select, names: Sequence[str], time_column: str) -> pa.Table:
    """Run `stmt` and collect its rows as Arrow, the time column as int64 epoch ms."""
    columns: dict[str, list[object]] = {n: [] for n in names}
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=EXPORT_CHUNK).execute(stmt)
        for part in result.partitions():
            for row in part:
                for name, value in zip(names, row, strict=True):
                    columns[name].append(to_ms(value) if name == time_column else value)
    return pa.table(
        {n: pa.array(v, type=pa.int64()) if n == time_column else pa.array(v) for n, v in columns.items()}
    )


def _until(stmt: Select, column: InstrumentedAttribute[datetime], until: datetime | None) -> Select:
    return stmt if until is None else stmt.where(column <= until)


def export_interactions(db: Database, until: datetime | None = None) -> pa.Table:
    """``user_id, listing_id, event, ts_ms`` of every interaction up to `until` (inclusive)."""
    stmt = select(t.Interaction.user_id, t.Interaction.listing_id, t.Interaction.event, t.Interaction.timestamp)
    return _export(db, _until(stmt, t.Interaction.timestamp, until), ["user_id", "listing_id", "event", "ts_ms"], "ts_ms")


def export_transactions(db: Database, until: datetime | None = None, since: datetime | None = None) -> pa.Table:
    """``id, amount, ts_ms`` and one column per velocity key kind of the payment attempts."""
    cols = [getattr(t.Transaction, c) for c in TRANSACTION_KEYS.values()]
    stmt = select(t.Transaction.id, t.Transaction.amount_minor, t.Transaction.timestamp, *cols)
    stmt = _until(stmt, t.Transaction.timestamp, until)
    if since is not None:
        stmt = stmt.where(t.Transaction.timestamp > since)
    return _export(db, stmt, ["id", "amount", "ts_ms", *TRANSACTION_KEYS], "ts_ms")


def export_orders(db: Database, until: datetime | None = None, since: datetime | None = None) -> pa.Table:
    """``id, amount, ts_ms, user`` of orders (their creation time is ``OrderPlaced``'s time)."""
    stmt = select(t.Order.id, t.Order.total_minor, t.Order.created_at, t.Order.user_id)
    stmt = _until(stmt, t.Order.created_at, until)
    if since is not None:
        stmt = stmt.where(t.Order.created_at > since)
    return _export(db, stmt, ["id", "amount", "ts_ms", "user"], "ts_ms")


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def interaction_features(
    interactions: pa.Table,
    *,
    recent_length: int,
    smoothing: CtrSmoothing,
    recent_events: Sequence[str] = INTERACTION_EVENTS,
) -> tuple[pa.Table, pa.Table]:
    """(recent items per user, engagement per listing) from ``user_id, listing_id, event, ts_ms``.

    Same definitions as :class:`~marketpilot.platform.features.materialize.InteractionMaterializer`:
    a listing's recency is its latest interaction, ties broken by listing id descending.
    """
    con = duckdb.connect()
    con.register("interactions", interactions)
    recent = con.sql(
        f"""
        WITH f AS (SELECT user_id, listing_id, ts_ms FROM interactions WHERE event IN ({_sql_list(recent_events)})),
        d AS (SELECT user_id, listing_id, max(ts_ms) AS ts FROM f GROUP BY user_id, listing_id),
        r AS (SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY ts DESC, listing_id DESC) AS rn FROM d),
        c AS (SELECT user_id, count(*) AS n, max(ts_ms) AS event_time FROM f GROUP BY user_id)
        SELECT c.user_id, c.event_time, c.n AS interactions,
               list(r.listing_id ORDER BY r.rn) AS recent_items,
               list(r.ts ORDER BY r.rn) AS recent_times
        FROM c JOIN r USING (user_id)
        WHERE r.rn <= {int(recent_length)}
        GROUP BY c.user_id, c.event_time, c.n
        ORDER BY c.user_id
        """  # noqa: S608 - only integers and escaped event names are interpolated
    ).to_arrow_table()
    engagement = con.sql(
        """
        SELECT listing_id,
               max(ts_ms) AS event_time,
               count(*) FILTER (WHERE event = 'view') AS views,
               count(*) FILTER (WHERE event = 'click') AS clicks
        FROM interactions WHERE event IN ('view', 'click')
        GROUP BY listing_id ORDER BY listing_id
        """
    ).to_arrow_table()
    ctr = smoothing.ctr(engagement["clicks"].to_numpy(), engagement["views"].to_numpy())
    con.close()
    return recent, engagement.append_column("ctr", pa.array(ctr))


def velocity_features_table(
    source: pa.Table, key: str, windows: Sequence[timedelta], bucket: timedelta = timedelta(minutes=1)
) -> pa.Table:
    """Per value of `key`: its latest ``event_time`` and ``count_*``/``amount_*`` per window,
    the windows ending at that time, at bucket resolution (see ``windows.py``)."""
    b = bucket // timedelta(milliseconds=1)
    spans = [w // bucket for w in windows]
    labels = [window_label(w) for w in windows]
    counts = [f"count(*) FILTER (WHERE l.cur - e.bucket < {s}) AS count_{lb}" for s, lb in zip(spans, labels, strict=True)]
    sums = [
        f"coalesce(sum(e.amount) FILTER (WHERE l.cur - e.bucket < {s}), 0)::DOUBLE AS amount_{lb}"
        for s, lb in zip(spans, labels, strict=True)
    ]
    con = duckdb.connect()
    con.register("src", source)
    result = con.sql(
        f"""
        WITH e AS (SELECT "{key}" AS k, ts_ms, amount, ts_ms // {b} AS bucket FROM src
                   WHERE "{key}" IS NOT NULL AND "{key}" <> ''),
        l AS (SELECT k, max(ts_ms) AS event_time, max(ts_ms) // {b} AS cur FROM e GROUP BY k)
        SELECT l.k AS key, l.event_time, {", ".join(counts + sums)}
        FROM e JOIN l USING (k)
        WHERE l.cur - e.bucket < {max(spans)}
        GROUP BY l.k, l.event_time, l.cur
        ORDER BY l.k
        """  # noqa: S608 - key is a known column name; the rest are integers
    ).to_arrow_table()
    con.close()
    return result


def write_table(store: OnlineStore, view: FeatureView, table: pa.Table, entity_column: str) -> int:
    """Write an aggregate table (entity column, ``event_time``, one column per feature)."""
    if table.num_rows == 0:
        return 0
    values: dict[str, object] = {}
    for f in view.features:
        col = table[f.name]
        values[f.name] = col.to_pylist() if f.dtype.is_list else col.to_numpy()
    ids = [str(x) for x in table[entity_column].to_pylist()]
    return store.write(view, ids, values, table["event_time"].to_numpy().astype(np.int64))  # type: ignore[arg-type]


def backfill_interactions(
    db: Database,
    store: OnlineStore,
    *,
    recent: FeatureView,
    engagement: FeatureView,
    smoothing: CtrSmoothing | None = None,
    recent_events: Sequence[str] = INTERACTION_EVENTS,
    until: datetime | None = None,
) -> BackfillReport:
    """Recompute ``recent`` and ``engagement`` from the `interactions` table into `store`."""
    recent_rows, engagement_rows = interaction_features(
        export_interactions(db, until),
        recent_length=recent.feature("recent_items").dtype.length,
        smoothing=smoothing or CtrSmoothing(),
        recent_events=recent_events,
    )
    return BackfillReport(
        {
            recent.name: write_table(store, recent, recent_rows, "user_id"),
            engagement.name: write_table(store, engagement, engagement_rows, "listing_id"),
        }
    )


def backfill_velocity(
    source: pa.Table, store: OnlineStore, spec: VelocitySpec, *, bucket: timedelta = timedelta(minutes=1)
) -> BackfillReport:
    """Velocity rows of every key kind of `spec` from an exported table
    (:func:`export_transactions` or :func:`export_orders`), as of each key's latest event."""
    report = BackfillReport()
    for kind, view in spec.views.items():
        if kind not in source.column_names:
            raise ValueError(f"the source has no column for key kind {kind!r} (columns: {source.column_names})")
        table = velocity_features_table(source, kind, spec.windows, bucket)
        report.written[view.name] = write_table(store, view, table, "key")
    return report


def observations(source: pa.Table, kinds: Sequence[str]) -> Iterator[Observation]:
    """Rows of an exported table as velocity observations, oldest first (for ``prime``)."""
    order = np.argsort(source["ts_ms"].to_numpy(), kind="stable")
    ids = source["id"].to_pylist()
    amounts = source["amount"].to_pylist()
    times = source["ts_ms"].to_pylist()
    keys = {k: source[k].to_pylist() for k in kinds}
    for i in order.tolist():
        yield Observation(str(ids[i]), {k: keys[k][i] for k in kinds}, float(amounts[i] or 0), int(times[i]))


def since(at: TimeLike, window: timedelta) -> datetime:
    """The start of the history needed to rebuild windows of length `window` ending at `at`."""
    return from_ms(to_ms(at)) - window
