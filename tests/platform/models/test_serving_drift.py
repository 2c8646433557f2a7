"""Served models are drift-monitored: a champion's live answers are compared with the reference
stored at training time, drift turns `runtime.drift.is_active` on and publishes DriftDetected,
and the app started with `served_models` wires all of it from the registry by itself."""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from marketpilot.api import create_app
from marketpilot.domain.events import DriftDetected
from marketpilot.platform.config import load_settings
from marketpilot.platform.db import Database
from marketpilot.platform.db import schema as t
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.serving import ModelServer
from marketpilot.platform.models.serving_adapters import booster_model
from marketpilot.platform.models.serving_drift import ReferenceMismatch, ServedDrift
from marketpilot.platform.models.training import REFERENCE_FILE
from marketpilot.platform.monitoring.drift import DriftMonitor, DriftService, Reference, WindowSpec
from marketpilot.runtime import Runtime

NAMES = ["f0", "f1", "f2", "f3"]
WINDOW = 400


def _data(seed: int, n: int, shift: float = 0.0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, len(NAMES))).astype(np.float32)
    x[:, 0] += shift
    return x


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    x = _data(1, 3000)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 1}
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=20)


@pytest.fixture(scope="module")
def reference(booster: lgb.Booster) -> Reference:
    x = _data(2, 5000)
    return Reference.fit(x, booster.predict(x), names=NAMES, seed=3)


def _monitored(db: Database, booster: lgb.Booster, reference: Reference) -> tuple[ModelServer, ServedDrift, DriftService]:
    server = ModelServer()
    server.add(booster_model(booster, name="m", version="1"))
    server.add(booster_model(booster, name="m", version="2"), alias="challenger")
    service = DriftService(db)
    monitor = DriftMonitor(db, source="/test", window=WindowSpec.count(WINDOW), service=service)
    drift = ServedDrift(server, monitor)
    drift.watch("m", "1", reference)
    return server, drift, service


def test_a_champion_with_shifted_inputs_is_reported_drifting_and_an_unshifted_one_is_not(
    sqlite_db: Database, booster: lgb.Booster, reference: Reference
) -> None:
    server, drift, service = _monitored(sqlite_db, booster, reference)
    server.predict("m", {"input__0": _data(5, WINDOW)})
    (calm,) = drift.monitor.drain()
    assert calm.verdict == "ok" and not service.is_active("m")

    server.predict("m", {"input__0": _data(6, WINDOW, shift=1.5)})
    (shifted,) = drift.monitor.drain()
    assert shifted.verdict == "drift" and "f0" in shifted.drifted_features
    assert service.is_active("m")
    with sqlite_db.read() as s:
        types = s.scalars(select(t.OutboxEvent.type)).all()
    assert DriftDetected.TYPE in types


def test_answers_of_other_versions_are_not_recorded_against_the_champions_reference(
    sqlite_db: Database, booster: lgb.Booster, reference: Reference
) -> None:
    server, drift, _ = _monitored(sqlite_db, booster, reference)
    server.predict("m", {"input__0": _data(7, WINDOW, shift=3.0)}, version="2")
    drift.monitor.close_windows()
    assert drift.monitor.drain() == []


def test_a_reference_of_another_width_is_refused(sqlite_db: Database, booster: lgb.Booster) -> None:
    server = ModelServer()
    server.add(booster_model(booster, name="m", version="1"))
    x = _data(8, 500)[:, :3]
    narrow = Reference.fit(x, x[:, 0], names=NAMES[:3])
    drift = ServedDrift(server, DriftMonitor(sqlite_db, source="/test", window=WindowSpec.count(WINDOW)))
    with pytest.raises(ReferenceMismatch, match="width 3"):
        drift.watch("m", "1", narrow)


def test_serve_with_served_models_loads_the_champion_and_monitors_it_with_its_stored_reference(
    tmp_path: Path, booster: lgb.Booster, reference: Reference
) -> None:
    settings = load_settings(home=tmp_path, served_models="scorer", auth_required=False)
    with ModelRegistry.from_settings(settings) as registry:
        version = registry.log_training_run(
            "scorer", model=booster, params={}, metrics={}, data_fingerprint="a" * 64,
            extra_files=[reference.save(tmp_path / REFERENCE_FILE)],
        )
        registry.promote("scorer", version.version)
    runtime = Runtime(settings)
    app = create_app(runtime)
    try:
        with TestClient(app) as client:
            deadline = time.monotonic() + 120
            while client.get("/v2/health/ready").status_code != 200:
                assert time.monotonic() < deadline, "the served model never loaded"
                time.sleep(0.05)
            # The drift watch is registered by the loader's hook just after the champion is
            # installed (and readiness turns 200): give it the same deadline.
            while not app.state.serving.drift.watched:
                assert time.monotonic() < deadline, "the served champion was never monitored"
                time.sleep(0.01)
            assert app.state.serving.drift.watched == {"scorer": "1"}
            x = _data(9, 300, shift=2.0)
            body = {"inputs": [{"name": "input__0", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}]}
            assert client.post("/v2/models/scorer/infer", json=body).status_code == 200
        # Shutdown closes the open window and judges it.
        assert runtime.drift.is_active("scorer")
    finally:
        runtime.close()
