"""Order workflow end to end on the embedded profile, against an empty-steps DBOS anchor.

    .venv/bin/python -m benchmarks.bench_workflows [--orders 300] [--burst 500] [--runs 3] [--concurrency 8]
        [--workers 2]

One process, a temporary home (SQLite app database + SQLite DBOS system database), the
sandbox payment provider and carrier on loopback answering at once (real HTTP, keep-alive).
Measured, each the median over `runs` runs:

  (a) anchor: a DBOS workflow of 9 empty steps, started and awaited one at a time: the
      floor DBOS durability costs on this machine;
  (b) latency: placement -> label -> notification, one order at a time: `OrderService.place`
      then the order run started directly and awaited (the run writes every step record,
      outbox events, stock lock/commit and calls the providers: authorise, capture, label, and
      rates for the first order of the lane, whose quote is then reused for the settings'
      `carrier_rates_ttl`, 300 s); p50 / p99;
  (c) latency through the orders queue (what the worker does on OrderPlaced): the same, but
      the run is enqueued and picked up by the queue poller;
  (d) throughput: `burst` orders placed, then all enqueued at once; orders/s = burst / time
      until the last finished, with `concurrency` runs at once per worker; and the same burst
      of anchor runs on the same queue (the ceiling DBOS itself sets in this process).

  (e) with `--workers N` (N > 0): the same burst executed by N worker processes (each what
      `marketpilot worker` runs for orders: DBOS with its own executor id, dequeuing the
      orders queue), enqueued from this process through a DBOS client, sandboxes in this
      process; orders/s as in (d). This is how the order stream scales out on one machine.
      Then the same burst of anchor runs on the same workers: the like-for-like anchor.
      `--workers-only` runs only this series.

Latency through the queue ends when DBOS has the run's result; the waiting thread polls for
it only after the run's last step has finished (a step-boundary listener), so the poll does
not slow the run it measures. A burst's end is found the same way, by counting its ended runs
in the app database (orders) or in DBOS's system database (anchor runs) every 50 ms; only then
are the handles' results read.

CPU per run/order for (a) and (b) is this process's `time.process_time()` over the series
divided by its length: every thread of the process (DBOS's pollers, the sandboxes' server
threads) counts, as it would on a worker.

Prints one JSON object; the figure of merit is p50(b) / p50(a).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from dbos import DBOS, SetWorkflowID

ANCHOR_STEPS = 9


@DBOS.step(name="bench.empty_step")
def _empty_step(i: int) -> int:
    return i


@DBOS.workflow(name="bench.anchor")
def _anchor_workflow() -> int:
    total = 0
    for i in range(ANCHOR_STEPS):
        total += _empty_step(i)
    return total


def _percentiles(samples: list[float]) -> dict[str, float]:
    p50, p99 = np.percentile(np.asarray(samples) * 1000, [50, 99])
    return {"p50_ms": round(float(p50), 2), "p99_ms": round(float(p99), 2)}


class _Shop:
    """What `engine.install` needs of a runtime: settings, the app database, the event source."""

    def __init__(self, home: Path, *, migrate: bool) -> None:
        from marketpilot.platform.config import Settings
        from marketpilot.platform.db import Database

        self.settings = Settings(home=home, auth_required=False)
        home.mkdir(parents=True, exist_ok=True)
        self.db = Database.from_settings(self.settings)
        if migrate:
            self.db.migrate()
        self.source = self.settings.event_source


def _wait_for_runs(shop: _Shop, prefix: str, n: int) -> None:
    """Wait until `n` order runs whose ids start with `prefix` have ended, by one count of the
    app database every 50 ms. Polling each run's DBOS handle instead (every 10 ms, one after
    the other) took 15% of a core from the 2-core machine the runs were measured on; the
    handles' results are read once this returns, and then answer at once."""
    from sqlalchemy import func, select

    from marketpilot.workflows.tables import WorkflowRun

    ended = select(func.count()).select_from(WorkflowRun).where(
        WorkflowRun.kind == "order", WorkflowRun.id.startswith(prefix),
        WorkflowRun.state.in_(("completed", "failed", "rejected", "cancelled")))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with shop.db.read() as s:
            if (s.scalar(ended) or 0) >= n:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{prefix}*: not all {n} runs ended within 600 s")


_ENDED_SQL = "SELECT count(*) FROM workflow_status WHERE name = :name AND status IN ('SUCCESS', 'ERROR')"


def _dbos_runs_ended(settings: Any, workflow_name: str) -> int:
    """How many runs of `workflow_name` DBOS's system database holds as ended."""
    import sqlalchemy as sa

    from marketpilot.platform import durable

    engine = sa.create_engine(durable.system_database_url(settings))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(_ENDED_SQL), {"name": workflow_name}).scalar_one())
    finally:
        engine.dispose()


def _wait_for_dbos_runs(settings: Any, workflow_name: str, n: int, *, before: int) -> None:
    """Wait until `n` more runs of `workflow_name` than `before` (the count taken before the
    burst was enqueued) have ended, by one count of DBOS's system database every 50 ms: the
    anchor bursts are waited for as the order bursts are (the anchor writes nothing to the app
    database), so neither pays for polling each handle."""
    import sqlalchemy as sa

    from marketpilot.platform import durable

    engine = sa.create_engine(durable.system_database_url(settings))
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(sa.text(_ENDED_SQL), {"name": workflow_name}).scalar_one() >= before + n:
                    return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise TimeoutError(f"{workflow_name}: not all {n} runs ended within 600 s")


def _marketplace(home: Path, units: int) -> tuple[_Shop, Any, Any, Any]:
    """A new home with one seller and one listing of `units` units; the order service and the
    two sandboxes (started) on loopback."""
    from marketpilot.domain.entities import ListingIn, SellerIn
    from marketpilot.marketplace import ListingService, OrderService, SellerService
    from marketpilot.workflows.sandbox.carrier import CarrierSandbox
    from marketpilot.workflows.sandbox.payment import PaymentSandbox
    from marketpilot.workflows.sandbox.server import SandboxServer

    shop = _Shop(home, migrate=True)
    SellerService(shop.db).create(SellerIn(id="s1", name="Bench", country="DE"))
    ListingService(shop.db, shop.source).create(
        ListingIn(id="l1", seller_id="s1", title="Bench item", category_path="bench", price_minor=1000,
                  currency="EUR", quantity=units)
    )
    orders = OrderService(shop.db, shop.source)
    return shop, orders, SandboxServer(PaymentSandbox()).start(), SandboxServer(CarrierSandbox()).start()


def _run_once(home: Path, args: argparse.Namespace) -> dict[str, Any]:
    from marketpilot.domain.entities import OrderIn, OrderLineIn
    from marketpilot.platform import durable
    from marketpilot.workflows import engine, history
    from marketpilot.workflows.order import STEPS as ORDER_STEPS
    from marketpilot.workflows.order import order_workflow, order_workflow_id
    from marketpilot.workflows.settings import WorkflowSettings

    shop, orders, payments, carrier = _marketplace(home, args.orders * 2 + args.burst + 100)
    config = WorkflowSettings(payment_url=payments.url, carrier_url=carrier.url, order_concurrency=args.concurrency,
                              queue_polling_interval=args.queue_polling)
    installation = engine.install(shop, config, subscribe=False)
    durable.launch(shop.settings, executor_id=f"bench-{uuid.uuid4().hex[:6]}")
    out: dict[str, Any] = {}
    try:
        def place(order_id: str) -> None:
            orders.place(OrderIn(id=order_id, user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=1)],
                                 shipping_region="FR"))

        for i in range(20):  # warm-up: connections, caches, SQLite pages
            place(f"w{i}")
            with SetWorkflowID(order_workflow_id(f"w{i}")):
                DBOS.start_workflow(order_workflow, f"w{i}").get_result(polling_interval_sec=0.001)
            _anchor_workflow()

        anchor = []
        cpu0 = time.process_time()
        for _ in range(args.orders):
            t0 = time.perf_counter()
            with SetWorkflowID(uuid.uuid4().hex):
                DBOS.start_workflow(_anchor_workflow).get_result(polling_interval_sec=0.001)
            anchor.append(time.perf_counter() - t0)
        out["anchor_empty_steps"] = {**_percentiles(anchor),
                                     "cpu_ms": round(1000 * (time.process_time() - cpu0) / args.orders, 2)}

        direct = []
        cpu0 = time.process_time()
        for i in range(args.orders):
            order_id = f"d{i}"
            t0 = time.perf_counter()
            place(order_id)
            with SetWorkflowID(order_workflow_id(order_id)):
                result = DBOS.start_workflow(order_workflow, order_id).get_result(polling_interval_sec=0.001)
            direct.append(time.perf_counter() - t0)
            assert result["state"] == "completed", result
        out["order_direct"] = {**_percentiles(direct),
                               "cpu_ms": round(1000 * (time.process_time() - cpu0) / args.orders, 2)}

        # Waiting on a queued run means polling DBOS's status row; a 1 ms poll all along would
        # take CPU from the run it waits for. So wait for the run's last step to finish (a
        # listener on its boundary), then poll each millisecond for the final checkpoint.
        last_step: dict[str, threading.Event] = {}

        def on_boundary(workflow_id: str, step: str, phase: str) -> None:
            if (step, phase) == (ORDER_STEPS[-1], "done") and workflow_id in last_step:
                last_step[workflow_id].set()

        history.add_listener(on_boundary)
        queued = []
        for i in range(args.orders):
            order_id = f"q{i}"
            finished = last_step[order_workflow_id(order_id)] = threading.Event()
            t0 = time.perf_counter()
            place(order_id)
            handle = engine.start_order(order_id)
            finished.wait(timeout=60)
            result = handle.get_result(polling_interval_sec=0.001)
            queued.append(time.perf_counter() - t0)
            assert result["state"] == "completed", result
        history.remove_listener(on_boundary)
        out["order_queued"] = _percentiles(queued)

        for i in range(args.burst):
            place(f"b{i}")
        t0 = time.perf_counter()
        handles = [engine.start_order(f"b{i}") for i in range(args.burst)]
        _wait_for_runs(shop, "order:b", args.burst)
        results = [h.get_result(polling_interval_sec=0.01) for h in handles]
        elapsed = time.perf_counter() - t0
        assert all(r["state"] == "completed" for r in results), [r for r in results if r["state"] != "completed"][:3]
        out["burst_orders_per_s"] = round(args.burst / elapsed, 1)

        # The same burst of anchor runs on the same queue: what DBOS alone allows here.
        queue = DBOS.retrieve_queue(engine.ORDER_QUEUE)
        assert queue is not None
        before = _dbos_runs_ended(shop.settings, "bench.anchor")
        t0 = time.perf_counter()
        anchors = []
        for _ in range(args.burst):
            with SetWorkflowID(uuid.uuid4().hex):
                anchors.append(queue.enqueue(_anchor_workflow))
        _wait_for_dbos_runs(shop.settings, "bench.anchor", args.burst, before=before)
        for h in anchors:
            h.get_result(polling_interval_sec=0.01)
        out["anchor_burst_per_s"] = round(args.burst / (time.perf_counter() - t0), 1)
        captures = len(payments.sandbox.records()["captures"])
        out["captures"] = captures
    finally:
        durable.shutdown()
        installation.close()
        payments.stop()
        carrier.stop()
        shop.db.dispose()
    return out


def _worker_main(home: Path, executor_id: str, payment_url: str, carrier_url: str, concurrency: int,
                 queue_polling: float) -> None:
    """A worker process of series (e): run queued orders until stdin closes."""
    from marketpilot.platform import durable
    from marketpilot.workflows import engine
    from marketpilot.workflows.settings import WorkflowSettings

    shop = _Shop(home, migrate=False)
    config = WorkflowSettings(payment_url=payment_url, carrier_url=carrier_url, order_concurrency=concurrency,
                              queue_polling_interval=queue_polling)
    installation = engine.install(shop, config, subscribe=False)
    durable.launch(shop.settings, executor_id=executor_id)
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        durable.shutdown()
        installation.close()


def _run_workers(home: Path, args: argparse.Namespace) -> dict[str, float]:
    """Series (e): orders/s of a burst run by `args.workers` worker processes, and runs/s of
    the same burst of anchor runs on the same workers (what DBOS alone allows them here)."""
    from marketpilot.domain.entities import OrderIn, OrderLineIn
    from marketpilot.platform import durable
    from marketpilot.workflows import engine
    from marketpilot.workflows.order import ORDER_WORKFLOW, order_workflow_id

    shop, orders, payments, carrier = _marketplace(home, args.burst + 100)
    client = durable.client(shop.settings)
    workers: list[subprocess.Popen[str]] = []
    try:
        for w in range(args.workers):
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "benchmarks.bench_workflows", "--as-worker", str(home), f"bench-w{w}",
                 payments.url, carrier.url, str(args.concurrency), str(args.queue_polling)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            ))
        for proc in workers:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "a worker did not start"
        for i in range(args.burst):
            orders.place(OrderIn(id=f"m{i}", user_id="u1", lines=[OrderLineIn(listing_id="l1", quantity=1)],
                                 shipping_region="FR"))
        t0 = time.perf_counter()
        for i in range(args.burst):
            client.enqueue({"queue_name": engine.ORDER_QUEUE, "workflow_name": ORDER_WORKFLOW,
                            "workflow_id": order_workflow_id(f"m{i}")}, f"m{i}")
        _wait_for_runs(shop, "order:m", args.burst)
        results: list[dict[str, Any]] = [client.retrieve_workflow(order_workflow_id(f"m{i}")).get_result(polling_interval_sec=0.01)
                   for i in range(args.burst)]
        elapsed = time.perf_counter() - t0
        assert all(r["state"] == "completed" for r in results), [r for r in results if r["state"] != "completed"][:3]
        assert len(payments.sandbox.records()["captures"]) == args.burst
        orders_per_s = round(args.burst / elapsed, 1)

        before = _dbos_runs_ended(shop.settings, "bench.anchor")
        t0 = time.perf_counter()
        for _ in range(args.burst):
            client.enqueue({"queue_name": engine.ORDER_QUEUE, "workflow_name": "bench.anchor",
                            "workflow_id": uuid.uuid4().hex})
        _wait_for_dbos_runs(shop.settings, "bench.anchor", args.burst, before=before)
        return {"workers_burst_per_s": orders_per_s,
                "workers_anchor_burst_per_s": round(args.burst / (time.perf_counter() - t0), 1)}
    finally:
        for proc in workers:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        client.destroy()
        payments.stop()
        carrier.stop()
        shop.db.dispose()


def _machine_speed() -> float:
    """Seconds one core takes for 10 million iterations of a plain Python loop, the best of
    three: how fast this machine is right now. The virtual machine of 2026-11-24 slowed by
    about 60% within an hour (the same loop at module level: 0.66 s, then 1.17 s), so a run's
    figures are read against it (and against the anchor), not against another day's."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--queue-polling", type=float, default=0.01)
    parser.add_argument("--workers", type=int, default=0, help="also run the burst on this many worker processes")
    parser.add_argument("--workers-only", action="store_true",
                        help="only series (e) and its anchor burst (needs --workers)")
    parser.add_argument("--as-worker", nargs=6, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers_only and not args.workers:
        parser.error("--workers-only needs --workers N")
    if args.as_worker:
        home, executor_id, payment_url, carrier_url, concurrency, polling = args.as_worker
        _worker_main(Path(home), executor_id, payment_url, carrier_url, int(concurrency), float(polling))
        return
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="mp-bench-wf-") as tmp:
            speed = _machine_speed()
            runs.append({} if args.workers_only else _run_once(Path(tmp) / "home", args))
            if args.workers:
                runs[-1].update(_run_workers(Path(tmp) / "home-workers", args))
            runs[-1]["machine_loop_s"] = round(statistics.mean([speed, _machine_speed()]), 3)
    if args.workers_only:
        print(json.dumps({
            "benchmark": "workflows", "series": "worker processes only", "runs": args.runs, "burst": args.burst,
            "concurrency": args.concurrency, "worker_processes": args.workers, "queue_polling_s": args.queue_polling,
            "orders_per_s_worker_processes": statistics.median(r["workers_burst_per_s"] for r in runs),
            "anchor_runs_per_s_worker_processes": statistics.median(r["workers_anchor_burst_per_s"] for r in runs),
            "machine_loop_s": statistics.median(r["machine_loop_s"] for r in runs), "per_run": runs}, indent=2))
        return

    def median(key: str, field: str) -> float:
        return round(statistics.median(r[key][field] for r in runs), 2)

    anchor_p50 = median("anchor_empty_steps", "p50_ms")
    report = {
        "benchmark": "workflows",
        "profile": "embedded (SQLite app DB + SQLite DBOS system DB), sandboxes on loopback",
        "orders_per_latency_series": args.orders,
        "runs": args.runs,
        "anchor_empty_9_steps": {"p50_ms": anchor_p50, "p99_ms": median("anchor_empty_steps", "p99_ms"),
                                 "cpu_ms_per_run": median("anchor_empty_steps", "cpu_ms")},
        "order_direct": {"p50_ms": median("order_direct", "p50_ms"), "p99_ms": median("order_direct", "p99_ms"),
                         "cpu_ms_per_order": median("order_direct", "cpu_ms")},
        "order_via_queue": {"p50_ms": median("order_queued", "p50_ms"), "p99_ms": median("order_queued", "p99_ms"),
                            "queue_polling_s": args.queue_polling},
        "throughput": {"orders_per_s": round(statistics.median(r["burst_orders_per_s"] for r in runs), 1),
                       "anchor_runs_per_s": round(statistics.median(r["anchor_burst_per_s"] for r in runs), 1),
                       "burst": args.burst, "concurrency": args.concurrency,
                       **({"worker_processes": args.workers,
                           "orders_per_s_worker_processes": round(statistics.median(
                               r["workers_burst_per_s"] for r in runs), 1),
                           "anchor_runs_per_s_worker_processes": round(statistics.median(
                               r["workers_anchor_burst_per_s"] for r in runs), 1)} if args.workers else {})},
        "ratio_p50_order_vs_anchor": round(median("order_direct", "p50_ms") / anchor_p50, 2),
        "machine_loop_s": statistics.median(r["machine_loop_s"] for r in runs),
        "per_run": runs,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
