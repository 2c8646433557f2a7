"""A retraining run survives its worker being killed: SIGKILL inside the train step, then
SIGKILL right after the challenger's version is created (before DBOS records the step),
then a third process finishes the run. Counted: one version, one decision, no promotion
of the worse challenger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from retrain_support import BACKENDS, markers, marketplace, unique_model  # noqa: E402

from marketpilot.platform.config import Settings  # noqa: E402
from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.platform.models.registry import ModelRegistry  # noqa: E402
from marketpilot.platform.models.retraining_click import ClickTrainer  # noqa: E402
from marketpilot.platform.models.retraining_decision import TAG_WORKFLOW  # noqa: E402
from marketpilot.platform.models.retraining_engine import SYSTEM_SCHEMA, system_database_url  # noqa: E402
from marketpilot.platform.models.training import register_trainer, run_training  # noqa: E402

WORKER = Path(__file__).with_name("retrain_worker.py")
# Generous: each process imports DBOS, LightGBM and (from the evaluate step on) MLflow on two
# busy cores. This bounds a hung test; nothing asserts on durations.
PROCESS_TIMEOUT = 240.0


class _Source:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_url)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest) -> Settings:
    return marketplace(str(request.param))


@pytest.fixture
def registry(settings: Settings) -> Iterator[ModelRegistry]:
    with ModelRegistry.from_settings(settings) as opened:
        yield opened


def _worker(settings: Settings, model: str, cause: str, marks: Path, *options: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MARKETPILOT_HOME": str(settings.home),
        "MARKETPILOT_DATABASE_URL": settings.db_url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(WORKER.parent), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, str(WORKER), model, cause, str(marks), *options],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill_when_marked(process: subprocess.Popen[str], marks: Path, what: str, seen: int) -> None:
    """SIGKILL `process` as soon as it writes its `what` marker (the (seen+1)-th overall)."""
    deadline = time.monotonic() + PROCESS_TIMEOUT
    while len(markers(marks, what)) <= seen:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"worker exited ({process.returncode}) before reaching {what}:\n{err[-4000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"worker did not reach {what} within {PROCESS_TIMEOUT}s")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    process.communicate()


def test_run_survives_two_kills_registers_once_and_keeps_the_better_champion(
    settings: Settings, registry: ModelRegistry, tmp_path: Path
) -> None:
    model = unique_model("recovery")
    register_trainer(ClickTrainer(name=model), replace=True)
    champion = run_training(model, _Source(settings), registry=registry).version.version
    registry.promote(model, champion)

    cause = "killed-twice"
    workflow_id = f"retrain:{model}:manual:{cause}"
    marks = tmp_path / "markers"

    first = _worker(settings, model, cause, marks, "--start", "--block", "train")
    _kill_when_marked(first, marks, "train", seen=0)
    assert markers(marks, "register") == []

    second = _worker(settings, model, cause, marks, "--block", "register")
    _kill_when_marked(second, marks, "register", seen=0)

    third = _worker(settings, model, cause, marks)
    out, err = third.communicate(timeout=PROCESS_TIMEOUT)
    assert third.returncode == 0, err[-4000:]
    decision = json.loads(out.strip().splitlines()[-1])

    # The killed train step ran again in the second process; the third found it recorded.
    assert len(markers(marks, "train")) == 2
    # Exactly one version: the third process's replayed register step found the second's.
    assert len(markers(marks, "register")) == 1
    of_run = [v for v in registry.versions(model) if v.tags.get(TAG_WORKFLOW) == workflow_id]
    assert len(of_run) == 1
    challenger = of_run[0]

    # The label-shuffled challenger lost, the champion stayed, and the decision says why.
    assert decision["workflow_id"] == workflow_id
    assert decision["outcome"] == "rejected"
    assert decision["challenger_version"] == challenger.version
    assert decision["champion_version"] == champion
    assert decision["champion_value"] - decision["challenger_value"] > 0.05
    assert "not better" in decision["reason"]
    assert registry.get(model, "champion").version == champion
    assert [e.version for e in registry.history(model)] == [champion]
    assert challenger.aliases == ("challenger",)
    assert challenger.tags["retrain.outcome"] == "rejected"
    assert challenger.tags["retrain.reason"] == decision["reason"]

    # One decision: each step of the run is recorded once, and the run succeeded.
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=system_database_url(settings), dbos_system_schema=SYSTEM_SCHEMA)
    try:
        assert client.retrieve_workflow(workflow_id).get_status().status == "SUCCESS"
        steps = [s["function_name"] for s in client.list_workflow_steps(workflow_id)]
    finally:
        client.destroy()
    assert steps == [
        "marketpilot.retrain.load",
        "marketpilot.retrain.train",
        "marketpilot.retrain.evaluate",
        "marketpilot.retrain.register",
        "marketpilot.retrain.decide",
        "marketpilot.retrain.promote",
    ]
    assert not any((settings.home / "retraining").iterdir())  # the staged challenger was cleaned up
