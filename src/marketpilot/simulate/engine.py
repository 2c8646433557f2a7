"""`simulate()`: runs the sections in dependency order and streams every file to disk.

Order: world (categories, regions, lanes) -> sellers -> listings -> users -> days of
browsing, orders, fraud, payments and shipments -> sales panel -> sensors -> users.csv and
the remaining ground truth -> manifest. Each section draws from its own named random stream
(`randomness.Streams`), per chunk or per day, so the output is a pure function of the config.

Memory stays bounded by the per-entity arrays (listing factors dominate: listings x K x 4
bytes) plus one chunk or one day of events; events are written as soon as they are due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import build_catalogue
from marketpilot.simulate.commerce import order_rows, orders_from_purchases, transaction_rows
from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.fraud import FraudProcess
from marketpilot.simulate.geography import Geography, build_geography
from marketpilot.simulate.groundtruth import (
    listing_truth,
    user_truth,
    utc,
    write_fraud,
    write_sellers,
    write_world,
)
from marketpilot.simulate.identifiers import Counters, entity_ids
from marketpilot.simulate.listings import generate_listings, listing_chunks
from marketpilot.simulate.manifest import MANIFEST, write_manifest
from marketpilot.simulate.ordering import TimeOrderedBuffer
from marketpilot.simulate.output import SchemaCsvWriter, TableWriter, take, write_table
from marketpilot.simulate.policy import build_policy
from marketpilot.simulate.prices import PricePath
from marketpilot.simulate.randomness import Streams
from marketpilot.simulate.sales import SALES_EXPECTED_SCHEMA, choose_panel, sales_chunks
from marketpilot.simulate.sellers import Sellers, generate_sellers, seller_rows
from marketpilot.simulate.sensors import (
    MACHINE_TYPES,
    SENSOR_SCHEMA,
    failure_rows,
    failure_schedule,
    machine_table,
    sensor_chunks,
)
from marketpilot.simulate.sessions import EVENT, World, simulate_day
from marketpilot.simulate.shipping import ship, shipment_rows
from marketpilot.simulate.users import CHUNK as USER_CHUNK
from marketpilot.simulate.users import generate_users, user_rows

Progress = Callable[[str, int, int], None]
IMPORT_FILES = ("sellers", "listings", "users", "interactions", "orders", "transactions", "sales", "shipments")
EVENTS = tuple(EVENT)


@dataclass(frozen=True)
class SimulationSummary:
    """What was written: rows per import file, and where everything is."""

    out: Path
    counts: dict[str, int]
    files: dict[str, Path]
    ground_truth: Path
    manifest: Path
    truth_counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return ", ".join(f"{n:,} {kind}" for kind, n in self.counts.items())


def _silent(stage: str, done: int, total: int) -> None:
    return None


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    parts = [p for p in parts if p]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _interaction_rows(cols: dict[str, np.ndarray]) -> dict[str, object]:
    # the import key is (user, listing, event, timestamp): drop exact repeats within a second
    key_order = np.lexsort((cols["event"], cols["listing"], cols["user"], cols["timestamp"]))
    k = {c: cols[c][key_order] for c in ("timestamp", "user", "listing", "event")}
    repeat = np.zeros(len(key_order), dtype=bool)
    repeat[1:] = np.logical_and.reduce([k[c][1:] == k[c][:-1] for c in k])
    keep = np.ones(len(key_order), dtype=bool)
    keep[key_order[repeat]] = False
    c = {name: v[keep] for name, v in cols.items()}
    value = c["value"]
    return {
        "user_id": entity_ids("user", c["user"]),
        "listing_id": entity_ids("listing", c["listing"]),
        "event": take(EVENTS, c["event"]),
        "value": pa.array(value, mask=np.isnan(value)),
        "timestamp": c["timestamp"],
        "session_id": entity_ids("session", c["session"]),
        "position": pa.array(c["position"], mask=c["position"] < 0),
        "request_id": entity_ids("request", c["request"]),
    }


def simulate(config: SimulationConfig, out: Path, progress: Progress | None = None) -> SimulationSummary:
    """Write a simulated marketplace to `out` (import CSVs + ground_truth/ + manifest.json)."""
    report = progress or _silent
    out = Path(out)
    truth_dir = out / "ground_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # an incomplete directory must not look complete
    streams = Streams(config.seed)
    counters = Counters()
    truth_rows: dict[str, int] = {}

    report("world", 0, 1)
    catalogue = build_catalogue(streams.rng("catalogue"), config.latent_dim)
    geo = build_geography(streams.rng("geography"))
    write_world(truth_dir, config, catalogue, geo)
    sellers = generate_sellers(streams.rng("sellers"), config.n_sellers, geo, config.start_epoch,
                               config.external_history_share)
    report("world", 1, 1)

    writers = {kind: SchemaCsvWriter(out / f"{kind}.csv", kind) for kind in IMPORT_FILES}
    try:
        for lo in range(0, len(sellers), USER_CHUNK):
            writers["sellers"].write(seller_rows(sellers, geo, lo, min(len(sellers), lo + USER_CHUNK)))

        report("listings", 0, config.listings)
        listings = generate_listings(streams, config, catalogue, sellers)
        prices = PricePath.create(streams, listings.base_price_minor, config.minor_per_major, config.days)
        with TableWriter(truth_dir / "listings.parquet") as truth:
            for lo, hi, rows, words in listing_chunks(streams, config, catalogue, listings, prices):
                writers["listings"].write(rows)
                truth.write(listing_truth(listings, words, lo, hi, catalogue, prices, config.minor_per_major))
                report("listings", hi, config.listings)
        truth_rows["listings.parquet"] = truth.rows
        np.save(truth_dir / "item_factors.npy", listings.factors)
        write_sellers(truth_dir, sellers, listings, geo)

        report("users", 0, config.users)
        users = generate_users(streams, config, catalogue, geo)
        np.save(truth_dir / "user_taste.npy", users.taste)
        report("users", config.users, config.users)

        world = World(config, catalogue, users, listings, build_policy(catalogue, listings), prices)
        fraud = FraudProcess.create(streams.rng("fraud_setup"), config, users, listings, prices, geo)
        _run_days(streams, world, fraud, geo, sellers, counters, writers, truth_dir, truth_rows, report)

        panel = choose_panel(streams.rng("sales_panel"), config, listings)
        write_table(truth_dir / "sales_panel.parquet", {
            "listing_id": entity_ids("listing", panel.listing), "leaf_id": listings.leaf[panel.listing].astype(np.int64),
            "base_demand": panel.base_demand, "elasticity": catalogue.elasticity[listings.leaf[panel.listing]],
            "base_price_minor": listings.base_price_minor[panel.listing],
        })
        report("sales", 0, len(panel.listing))
        with TableWriter(truth_dir / "sales_expected.parquet", SALES_EXPECTED_SCHEMA) as expected:
            done = 0
            for rows, truth_part in sales_chunks(streams.rng("sales"), config, panel, listings, catalogue, geo, prices):
                done += writers["sales"].write(rows)
                expected.write(truth_part)
                report("sales", done // (geo.n_regions * config.days), len(panel.listing))
        truth_rows["sales_expected.parquet"] = expected.rows

        for lo in range(0, len(users), USER_CHUNK):
            hi = min(len(users), lo + USER_CHUNK)
            writers["users"].write(user_rows(config, users, geo, lo, hi))
        with TableWriter(truth_dir / "users.parquet") as truth:
            for lo in range(0, len(users), USER_CHUNK):
                truth.write(user_truth(users, geo, lo, min(len(users), lo + USER_CHUNK)))
        truth_rows["fraud_transactions.csv"] = write_fraud(truth_dir, fraud)
    finally:
        for writer in writers.values():
            writer.close()

    _write_sensors(streams, config, geo, truth_dir, truth_rows, report)
    counts = {kind: writers[kind].rows for kind in IMPORT_FILES}
    report("manifest", 0, 1)
    manifest = write_manifest(out, config, {f"{k}.csv": n for k, n in counts.items()}, truth_rows)
    report("manifest", 1, 1)
    return SimulationSummary(out=out, counts=counts, files={k: out / f"{k}.csv" for k in IMPORT_FILES},
                             ground_truth=truth_dir, manifest=manifest, truth_counts=truth_rows)


def _run_days(streams: Streams, world: World, fraud: FraudProcess, geo: Geography, sellers: Sellers,
              counters: Counters,
              writers: dict[str, SchemaCsvWriter], truth_dir: Path, truth_rows: dict[str, int],
              report: Progress) -> None:
    config, users, listings = world.config, world.users, world.listings
    interactions = TimeOrderedBuffer("timestamp")
    orders = TimeOrderedBuffer("created_at")
    payments = TimeOrderedBuffer("timestamp")
    end = config.end_epoch
    with TableWriter(truth_dir / "sessions.parquet") as sessions_out, \
            TableWriter(truth_dir / "impressions.parquet") as impressions_out:
        for day in range(config.days):
            report("days", day, config.days)
            activity = simulate_day(streams.rng("sessions", day), world, day, counters)
            s = activity.sessions
            live = s["started_at"] < end
            sessions_out.write({
                "session_id": entity_ids("session", s["session"][live]),
                "user_id": entity_ids("user", s["user"][live]),
                "device_type": take(vocab.DEVICE_TYPES, s["device_type"][live]),
                "device_id": entity_ids("device", s["device"][live]),
                "started_at": utc(s["started_at"][live]), "requests": s["n_requests"][live],
            })
            imp = activity.impressions
            live = imp["at"] < end
            impressions_out.write({
                "request_id": entity_ids("request", imp["request"][live]),
                "session_id": entity_ids("session", imp["session"][live]),
                "user_id": entity_ids("user", imp["user"][live]),
                "listing_id": entity_ids("listing", imp["listing"][live]),
                "position": imp["position"][live], "group": take(world.catalogue.mids, imp["group"][live]),
                "propensity": imp["propensity"][live], "utility": imp["utility"][live],
                "price_minor": imp["price"][live], "click_probability": imp["click_probability"][live],
                "clicked": imp["clicked"][live],
                "shown_at": utc(imp["at"][live]),
            })
            interactions.push(activity.interactions)
            lines, txns = orders_from_purchases(streams.rng("orders", day), activity.purchases, users, listings,
                                                geo, counters)
            fraud_lines, fraud_txns = fraud.day(streams.rng("fraud", day), day, len(txns["transaction"]), counters)
            orders.push(_concat([lines, *fraud_lines]))
            payments.push(_concat([txns, *fraud_txns]))

            cutoff = min(end, config.start_epoch + (day + 1) * 86_400)
            due = interactions.pop_before(cutoff)
            if due is not None:
                writers["interactions"].write(_interaction_rows(due))
            due = orders.pop_before(cutoff)
            if due is not None:
                status, shipments = ship(streams.rng("shipping", day), due, sellers, geo, end, counters)
                writers["orders"].write(order_rows(config, due, status, geo))
                writers["shipments"].write(shipment_rows(shipments, geo))
            due = payments.pop_before(cutoff)
            if due is not None:
                writers["transactions"].write(transaction_rows(config, due, geo))
        report("days", config.days, config.days)
    truth_rows["sessions.parquet"] = sessions_out.rows
    truth_rows["impressions.parquet"] = impressions_out.rows


def _write_sensors(streams: Streams, config: SimulationConfig, geo: Geography, truth_dir: Path,
                   truth_rows: dict[str, int], report: Progress) -> None:
    rng = streams.rng("sensors")
    types, regions = machine_table(rng, config, geo)
    failures = failure_schedule(rng, config, types)
    write_table(truth_dir / "machines.csv", {
        "machine_id": entity_ids("machine", np.arange(config.machines)),
        "machine_type": take(tuple(MACHINE_TYPES), types), "region": take(geo.codes, regions),
    })
    truth_rows["failures.csv"] = write_table(truth_dir / "failures.csv", failure_rows(failures))
    report("sensors", 0, config.machines)
    with TableWriter(truth_dir / "sensors.csv", SENSOR_SCHEMA) as sensors_out:
        for m, rows in enumerate(sensor_chunks(rng, config, geo, types, regions, failures)):
            sensors_out.write(rows)
            report("sensors", m + 1, config.machines)
    truth_rows["sensors.csv"] = sensors_out.rows
