from __future__ import annotations

import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from wf_support import Runtime, Sandboxes, settings_for, stock_marketplace, workflow_settings  # noqa: E402

from marketpilot.platform import durable  # noqa: E402
from marketpilot.workflows import engine as workflows_engine  # noqa: E402


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    boxes = Sandboxes()
    yield boxes
    boxes.stop()


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(settings_for(tmp_path / "home", database_url))
    stock_marketplace(rt)
    yield rt
    rt.close()


@pytest.fixture
def installed(runtime: Runtime, sandboxes: Sandboxes) -> Iterator[workflows_engine.Installation]:
    """The workflows installed and DBOS launched for one test, with its own executor id."""
    installation = workflows_engine.install(
        runtime, workflow_settings(sandboxes.payment_server, sandboxes.carrier_server), subscribe=False
    )
    durable.launch(runtime.settings, executor_id=f"test-{uuid.uuid4().hex[:8]}", polling_interval=0.05)
    yield installation
    _cancel_unfinished()
    durable.shutdown()
    installation.close()
    _warn_about_busy_executor_threads()


def _cancel_unfinished() -> None:
    """Cancel runs a test left unfinished, so no DBOS thread outlives the test's database
    (a thread polling a dropped PostgreSQL database keeps the pytest process alive)."""
    from dbos import DBOS

    for status in DBOS.list_workflows(status=["PENDING", "ENQUEUED"], load_input=False, load_output=False):
        DBOS.cancel_workflow(status.workflow_id)


def _warn_about_busy_executor_threads(grace_seconds: float = 10.0) -> None:
    """After shutdown only busy DBOS executor threads remain; give them `grace_seconds` to
    finish, then say which test left one behind (tests/conftest.py makes sure the run still
    exits)."""
    deadline = time.monotonic() + grace_seconds
    while True:
        busy = [t.name for t in threading.enumerate() if t.name.startswith("dbos-executor-") and t.is_alive()]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if busy:
        warnings.warn(f"DBOS executor thread(s) still busy after shutdown: {busy}", stacklevel=1)
