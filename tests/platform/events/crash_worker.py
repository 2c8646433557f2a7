"""A worker process for the crash tests, killed with SIGKILL at chosen points.

    python crash_worker.py --db URL --mode dispatch|consume|worker [--block-after N]
                           [--bootstrap HOST:PORT --prefix P --home DIR]

Every mode subscribes the consumer "crash" to ListingUpdated with a handler that records each
event in the effects table. `--block-after N` makes the process hang forever at a point the
test wants to kill it at, after printing BLOCKED:

* dispatch: inside the N-th handler call, after its write, before its commit;
* consume: the same, and the relay beside it after Kafka acknowledged its second batch,
  before the batch is marked published (so BLOCKED is printed twice).

`worker` runs the real :func:`run_worker` for the profile (stopped by SIGTERM).
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from events_harness import UPDATED, recorder
from sqlalchemy.orm import Session

from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.events import (
    CloudEvent,
    Dispatcher,
    EventBus,
    Handler,
    KafkaConsumerRunner,
    KafkaOptions,
    Relay,
    RetryPolicy,
    run_worker,
)
from marketpilot.platform.events.relay import OutboxRow

CONSUMER = "crash"
RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.1)


def hang() -> None:
    print("BLOCKED", flush=True)
    time.sleep(3600)


def blocking(handler: Handler, after: int) -> Handler:
    calls = 0

    def handle(event: CloudEvent, session: Session) -> None:
        nonlocal calls
        handler(event, session)
        calls += 1
        if calls == after:
            hang()

    return handle


class BlockingRelay(Relay):
    """Hangs between Kafka's acknowledgement of its `after`-th batch and marking it."""

    def __init__(self, db: Database, options: KafkaOptions, *, batch_size: int, after: int) -> None:
        super().__init__(db, options, batch_size=batch_size)
        self.after = after
        self.marks = 0

    def mark(self, session: Session, rows: list[OutboxRow]) -> None:
        self.marks += 1
        if self.marks == self.after:
            hang()
        super().mark(session, rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--mode", choices=["dispatch", "consume", "worker"], required=True)
    parser.add_argument("--block-after", type=int, default=0)
    parser.add_argument("--bootstrap")
    parser.add_argument("--prefix", default="crash.")
    parser.add_argument("--home", default=".marketpilot")
    args = parser.parse_args()

    db = Database(args.db)
    bus = EventBus()
    bus.subscribe(CONSUMER, [UPDATED], blocking(recorder(CONSUMER), args.block_after))
    kafka = (
        KafkaOptions(bootstrap=args.bootstrap, topic_prefix=args.prefix, partitions=3, session_timeout_ms=6000)
        if args.bootstrap
        else None
    )
    stop = threading.Event()
    print("READY", flush=True)
    if args.mode == "dispatch":
        Dispatcher(db, bus, batch_size=10, retry=RETRY).run_forever(stop, poll_interval=0.02)
    elif args.mode == "consume":
        assert kafka is not None, "--bootstrap is required"
        relay = BlockingRelay(db, kafka, batch_size=25, after=2)
        threading.Thread(target=relay.run_forever, args=(stop, 0.02), daemon=True).start()
        KafkaConsumerRunner(db, bus[CONSUMER], kafka, batch_size=20, retry=RETRY).run_forever(stop, 0.1)
    else:
        profile = "distributed" if kafka is not None else "embedded"
        settings = load_settings(
            profile=profile,
            home=Path(args.home),
            database_url=args.db,
            redis_url="redis://127.0.0.1:6379/0",
            kafka_bootstrap=args.bootstrap,
            kafka_topic_prefix=args.prefix,
        )
        run_worker(settings, bus=bus, kafka=kafka, retry=RETRY, poll_interval=0.02)
    print("STOPPED", flush=True)


if __name__ == "__main__":
    main()
