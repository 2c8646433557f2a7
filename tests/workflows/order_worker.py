"""A worker process for `test_crash_recovery.py`: it is started, SIGKILLed and restarted.

    order_worker.py EXECUTOR_ID [--kill-at STEP:PHASE --marker FILE]

Settings come from ``MARKETPILOT_HOME`` / ``MARKETPILOT_DATABASE_URL`` and the provider URLs
from ``MARKETPILOT_WORKFLOWS_*``. It runs what ``marketpilot worker`` runs for orders: the
event dispatcher (``OrderPlaced`` -> enqueue the order's run) and DBOS with a fixed executor
id, so a restarted process resumes the runs a killed one left behind.

With ``--kill-at`` the process SIGKILLs itself the first time any run reaches that step
boundary (``start``: before the step's effect; ``done``: after the effect and its record,
before DBOS checkpoints the step), writing MARKER first so the test knows it happened.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
from pathlib import Path

from wf_support import Shop

from marketpilot.platform import durable
from marketpilot.platform.config import load_settings
from marketpilot.platform.events import EventBus
from marketpilot.platform.events.worker import run_worker
from marketpilot.workflows import engine, history


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("executor_id")
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--marker", type=Path, default=None)
    args = parser.parse_args()

    if args.kill_at:
        step, phase = args.kill_at.split(":")
        marker: Path = args.marker

        def kill(workflow_id: str, at_step: str, at_phase: str) -> None:
            if (at_step, at_phase) == (step, phase) and not marker.exists():
                marker.write_text(workflow_id)
                os.kill(os.getpid(), signal.SIGKILL)

        history.add_listener(kill)

    # A worker that takes a minute to get ready prints where each thread is, every minute,
    # into its log (which the test shows when it gives up on it).
    faulthandler.dump_traceback_later(60, repeat=True)
    shop = Shop(load_settings())
    bus = EventBus()
    installation = engine.install(shop, bus=bus)
    durable.launch(shop.settings, executor_id=args.executor_id, polling_interval=0.05)
    faulthandler.cancel_dump_traceback_later()
    print("ready", flush=True)
    try:
        run_worker(shop, bus=bus, poll_interval=0.02)
    finally:
        durable.shutdown()
        installation.close()
        shop.close()


if __name__ == "__main__":
    sys.exit(main())
