"""Shared by the retraining tests and by `retrain_worker.py` (the process the tests kill).

A small simulated marketplace is generated once per test process and imported once per
backend (a SQLite file, and a PostgreSQL database dropped when the process exits); every
test trains its own model name on it, so tests share the data, the registry store and the
DBOS system database without seeing each other's models or runs.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import sys
import tempfile
import time
import uuid
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[2]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from marketpilot.platform.config import Settings, load_settings  # noqa: E402
from marketpilot.platform.models.retraining_click import ClickTrainer  # noqa: E402
from marketpilot.platform.models.training import Examples, TrainedModel  # noqa: E402

# 500 listings, 300 users, 14 days: ~7,100 views with ~6% clicks, simulated in a few seconds.
# On its latest 20% the click model scores AUC ~0.62, a label-shuffled one ~0.46.
IMPORT_KINDS = ("sellers", "listings", "users", "interactions")
BACKENDS = ("sqlite", "postgresql")

_cleanup = contextlib.ExitStack()
atexit.register(_cleanup.close)


@lru_cache(maxsize=1)
def simulation_dir() -> Path:
    from marketpilot.simulate import SimulationConfig, simulate

    out = Path(tempfile.mkdtemp(prefix="marketpilot-retrain-sim-"))
    _cleanup.callback(shutil.rmtree, out, ignore_errors=True)
    simulate(SimulationConfig(listings=500, users=300, days=14, seed=3), out=out)
    return out


@cache
def marketplace(backend: str) -> Settings:
    """Settings of a home directory and a database holding the simulated marketplace."""
    from marketpilot.dataimport.importer import import_file
    from marketpilot.platform.db import Database

    home = Path(tempfile.mkdtemp(prefix=f"marketpilot-retrain-{backend}-"))
    _cleanup.callback(shutil.rmtree, home, ignore_errors=True)
    if backend == "sqlite":
        url = f"sqlite:///{home / 'marketpilot.db'}"
    elif backend == "postgresql":
        from support.services import postgres_database

        url = _cleanup.enter_context(postgres_database())
    else:
        raise ValueError(f"unknown backend {backend!r}")
    db = Database(url)
    try:
        db.migrate()
        for kind in IMPORT_KINDS:
            import_file(db, kind, simulation_dir() / f"{kind}.csv", source="/tests/retraining")
    finally:
        db.dispose()
    return load_settings(home=home, database_url=url)


def unique_model(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class ShuffledClickTrainer(ClickTrainer):
    """The click model trained on permuted labels: a deliberately worse challenger (its
    holdout AUC is ~0.5, far below the real model's), deterministic for the same data."""

    def train(self, data: Examples) -> TrainedModel:
        labels = np.random.default_rng(11).permutation(data.labels)
        return super().train(dataclasses.replace(data, labels=labels))


class SignallingTrainer(ClickTrainer):
    """Wraps another click trainer: each `train` call drops a marker file in `markers`
    (named ``train-<pid>-<n>``), then, if `block` is set, waits forever, so a test can kill
    the process while it is inside the train step."""

    def __init__(self, inner: ClickTrainer, markers: Path, *, block: bool) -> None:
        super().__init__(name=inner.name)
        self.inner = inner
        self.markers = markers
        self.block = block

    def train(self, data: Examples) -> TrainedModel:
        mark(self.markers, "train")
        while self.block:
            time.sleep(0.05)
        return self.inner.train(data)


def mark(directory: Path, what: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{what}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.write_text(str(os.getpid()))
    return path


def markers(directory: Path, what: str) -> list[Path]:
    return sorted(directory.glob(f"{what}-*")) if directory.is_dir() else []
