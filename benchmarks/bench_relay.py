"""Outbox -> Kafka relay throughput, with raw producer throughput as the anchor.

    .venv/bin/python -m benchmarks.bench_relay --events 100000 [--runs 3] [--db postgresql sqlite]

For each database and run the outbox is emptied and filled with N fresh ListingCreated events
(10,000 listings), as a relay meets them in production (freshly written, never vacuumed), then
the relay publishes them to a Tansu broker started for the benchmark; a run ends when every
row is acknowledged by Kafka *and* marked published. Filling is not timed. The anchor produces the same keys, values and CloudEvents
headers straight from memory with the same producer configuration: the gap between the two
is what the outbox costs (reading rows, building headers, marking them published).

Prints one JSON object; figures are medians over the runs. Budget: >= 10,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from sqlalchemy import delete

from marketpilot.domain.events import ListingCreated
from marketpilot.platform.db import Database
from marketpilot.platform.db.schema import Base, OutboxEvent
from marketpilot.platform.events import KafkaOptions, Relay, outbox
from marketpilot.platform.events.cloudevent import CloudEvent
from marketpilot.platform.events.topics import Topics

# The test fixtures own the broker launcher: production brings its own Kafka.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.services import postgres_database, tansu_broker  # noqa: E402

BUDGET = 10_000
SOURCE = "/bench"


def payloads(n: int) -> list[ListingCreated]:
    return [
        ListingCreated(
            listing_id=f"listing-{i % 10_000:05d}",
            seller_id=f"seller-{i % 500:03d}",
            title=f"Hand-made leather shoe, size {36 + i % 12}, colour {('red', 'black', 'tan')[i % 3]}",
            category_path="fashion/shoes/leather",
            price_minor=2_599 + i % 5_000,
            currency="EUR",
            status="active",
        )
        for i in range(n)
    ]


def fill(db: Database, items: list[ListingCreated], chunk: int = 5_000) -> list[CloudEvent]:
    events: list[CloudEvent] = []
    for start in range(0, len(items), chunk):
        with db.session() as s:
            events += outbox.append_many(s, items[start : start + chunk], SOURCE)
    return events


def refill(db: Database, items: list[ListingCreated]) -> list[CloudEvent]:
    with db.session() as s:
        s.execute(delete(OutboxEvent))
    return fill(db, items)


def time_relay(db: Database, options: KafkaOptions, n: int, batch_size: int) -> float:
    relay = Relay(db, options, batch_size=batch_size)
    relay.topics.ensure({relay.topics.for_type(ListingCreated.TYPE)})
    try:
        started = time.perf_counter()
        published = relay.drain()
        elapsed = time.perf_counter() - started
    finally:
        relay.close()
    if published != n:
        raise RuntimeError(f"relay published {published} events, expected {n}")
    return n / elapsed


def time_raw_producer(options: KafkaOptions, events: list[CloudEvent]) -> float:
    topic = Topics(options).for_type(ListingCreated.TYPE)
    Topics(options).ensure({topic})
    messages = [e.to_kafka() for e in events]
    errors: list[Any] = []
    config = options.producer_config()
    config["delivery.report.only.error"] = True
    config["on_delivery"] = lambda err, _msg: errors.append(err) if err else None
    producer = Producer(config)
    started = time.perf_counter()
    for key, value, headers in messages:
        try:
            producer.produce(topic, value, key, headers=headers)
        except BufferError:
            producer.poll(1.0)
            producer.produce(topic, value, key, headers=headers)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - started
    producer.close()
    if remaining or errors:
        raise RuntimeError(f"raw producer: {remaining} unsent, {len(errors)} errors ({errors[:1]})")
    return len(messages) / elapsed


@contextmanager
def database(kind: str) -> Iterator[Database]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{tmp}/bench.db")
            Base.metadata.create_all(db.engine)
            yield db
            db.dispose()
        return
    with postgres_database() as url:
        db = Database(url)
        db.migrate()
        yield db
        db.dispose()


def median_of(runs: int, measure: Callable[[], float]) -> dict[str, Any]:
    values = [measure() for _ in range(runs)]
    return {"events_per_s": round(statistics.median(values)), "runs": [round(v) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=5_000, help="outbox rows per relay round")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--db", nargs="+", choices=["postgresql", "sqlite"], default=["postgresql", "sqlite"])
    parser.add_argument("--producer", action="append", default=[], metavar="KEY=VALUE",
                        help="librdkafka producer setting to try, e.g. compression.type=zstd")
    args = parser.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.producer)

    items = payloads(args.events)
    results: dict[str, Any] = {}
    with tansu_broker() as bootstrap:
        def options() -> KafkaOptions:  # a fresh topic per run keeps runs independent
            prefix = f"bench{uuid.uuid4().hex[:8]}."
            return KafkaOptions(bootstrap=bootstrap, topic_prefix=prefix, partitions=args.partitions,
                                producer=overrides)

        anchor_events: list[CloudEvent] = []
        for kind in args.db:
            with database(kind) as db:

                def run(db: Database = db) -> float:
                    nonlocal anchor_events
                    events = refill(db, items)
                    anchor_events = anchor_events or events
                    return time_relay(db, options(), args.events, args.batch_size)

                results[kind] = median_of(args.runs, run)
        results["raw_producer_anchor"] = median_of(args.runs, lambda: time_raw_producer(options(), anchor_events))

    anchor = results["raw_producer_anchor"]["events_per_s"]
    for kind in args.db:
        results[kind]["ratio_to_anchor"] = round(results[kind]["events_per_s"] / anchor, 3)
        results[kind]["meets_budget"] = results[kind]["events_per_s"] >= BUDGET
    print(json.dumps({
        "benchmark": "relay",
        "events": args.events,
        "runs": args.runs,
        "batch_size": args.batch_size,
        "partitions": args.partitions,
        "producer": {
            k: v for k, v in KafkaOptions(bootstrap="-", producer=overrides).producer_config().items()
            if k != "bootstrap.servers"
        },
        "budget_events_per_s": BUDGET,
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
