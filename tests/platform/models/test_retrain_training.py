"""The trainer contract, the time-ordered holdout, `run_training` and the built-in click
trainer (on the simulated marketplace, SQLite and PostgreSQL), and retraining settings."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from retrain_support import BACKENDS, marketplace, unique_model  # noqa: E402

from marketpilot.platform.config import ConfigError, Settings  # noqa: E402
from marketpilot.platform.db import Database  # noqa: E402
from marketpilot.platform.models.registry import ModelRegistry  # noqa: E402
from marketpilot.platform.models.retraining_click import FEATURES, ClickTrainer  # noqa: E402
from marketpilot.platform.models.retraining_triggers import RetrainSettings  # noqa: E402
from marketpilot.platform.models.training import (  # noqa: E402
    REFERENCE_FILE,
    Examples,
    InsufficientData,
    TrainingData,
    UnknownTrainer,
    get_trainer,
    register_trainer,
    run_training,
)
from marketpilot.platform.monitoring.drift_reference import Reference  # noqa: E402


def _examples(times: list[str], labels: list[int] | None = None) -> Examples:
    n = len(times)
    return Examples(
        features=np.arange(n, dtype=np.float64).reshape(n, 1),
        labels=np.array(labels if labels is not None else [i % 2 for i in range(n)]),
        times=np.array(times, dtype="datetime64[us]"),
        feature_names=("x",),
    )


def test_the_holdout_is_the_latest_rows_and_a_shared_timestamp_is_never_split() -> None:
    times = ["2026-01-01T00", "2026-01-02T00", "2026-01-03T00", "2026-01-04T00", "2026-01-04T00"]
    train, holdout = _examples(times).split_by_time(0.2)  # 1 row asked, 2 rows share its time
    assert (len(train), len(holdout)) == (3, 2)
    assert train.times.max() < holdout.times.min()
    assert holdout.features[:, 0].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("times", "fraction", "error", "message"),
    [
        (["2026-01-01T00"] * 3, 0.5, InsufficientData, "all 3 rows are at or after 2026-01-01T00:00:00+00:00: "
                                                        "no earlier rows to train on"),
        (["2026-01-01T00"], 0.5, InsufficientData, "need at least 2 rows to hold some out, got 1"),
        (["2026-01-01T00", "2026-01-02T00"], 1.0, ValueError,
         "holdout_fraction must be between 0 and 1 (exclusive), got 1.0"),
    ],
)
def test_an_impossible_split_says_why(times: list[str], fraction: float, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as raised:
        _examples(times).split_by_time(fraction)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _examples(["2026-01-02T00", "2026-01-01T00"]),
         "examples: times must be non-decreasing (sort rows by event time)"),
        (lambda: Examples(np.zeros((2, 1)), np.zeros(3), np.zeros(2, dtype="datetime64[us]"), ("x",)),
         "examples: features (2, 1), labels (3,) and times (2,) must be (n, d), (n,) and (n,)"),
        (lambda: Examples(np.zeros((2, 1)), np.zeros(2), np.zeros(2, dtype="datetime64[us]"), ("x", "y")),
         "examples: 2 names for 1 columns"),
        (lambda: Examples(np.zeros((2, 1)), np.zeros(2), np.zeros(2, dtype="datetime64[us]"), ("x",), ("z",)),
         "examples: categorical columns ['z'] are not feature names"),
    ],
)
def test_malformed_examples_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        build()  # type: ignore[operator]
    assert str(raised.value) == message


def test_training_data_refuses_rows_from_after_its_cut_off() -> None:
    examples = _examples(["2026-01-01T00", "2026-01-02T00", "2026-01-03T00"])
    with pytest.raises(ValueError, match=r"^examples: rows at or after as_of 2026-01-03T00:00:00\+00:00 were loaded$"):
        TrainingData.from_examples(examples, as_of=datetime(2026, 1, 3, tzinfo=UTC), holdout_fraction=0.3)
    data = TrainingData.from_examples(examples, as_of=datetime(2026, 1, 4, tzinfo=UTC), holdout_fraction=0.3)
    assert (data.summary.train_rows, data.summary.holdout_rows) == (2, 1)
    assert data.summary.holdout_start == datetime(2026, 1, 3, tzinfo=UTC)
    assert data.summary.fingerprint == examples.fingerprint()


def test_trainers_are_registered_once_per_model_and_built_ins_on_first_use() -> None:
    name = unique_model("registry")
    first = register_trainer(ClickTrainer(name=name))
    assert get_trainer(name) is first
    with pytest.raises(ValueError, match=rf"^a trainer for model '{name}' is already registered$"):
        register_trainer(ClickTrainer(name=name))
    second = register_trainer(ClickTrainer(name=name), replace=True)
    assert get_trainer(name) is second
    assert isinstance(get_trainer("click"), ClickTrainer)
    with pytest.raises(UnknownTrainer, match=r"^no trainer for model 'nope' \(known: .*\bclick\b"):
        get_trainer("nope")


class _Source:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_url)


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest) -> Iterator[_Source]:
    opened = _Source(marketplace(str(request.param)))
    yield opened
    opened.db.dispose()


def test_run_training_registers_the_version_with_its_lineage_and_drift_reference(source: _Source) -> None:
    name = unique_model("run-training")
    trainer = register_trainer(ClickTrainer(name=name))
    as_of = datetime(2026, 1, 13, tzinfo=UTC)  # a day before the simulation ends
    with ModelRegistry.from_settings(source.settings) as registry:
        result = run_training(name, source, registry=registry, as_of=as_of, holdout_fraction=0.25)
        version = registry.get(name, result.version.version)
        model_dir = registry.model_dir(version)

    data = trainer.load_data(source, as_of, 0.25)
    assert data.train.times.max() < data.holdout.times.min()
    assert data.holdout.times.max() < np.datetime64("2026-01-13T00:00:00", "us")
    assert data.summary.holdout_rows == pytest.approx(0.25 * (data.summary.train_rows + data.summary.holdout_rows), abs=5)
    assert result.data == data.summary
    assert version.data_fingerprint == data.summary.fingerprint
    assert version.aliases == ()  # registering is not promoting
    assert version.tags["training.as_of"] == "2026-01-13T00:00:00+00:00"
    assert version.tags["training.holdout_start"] == data.summary.holdout_start.isoformat()
    assert version.tags["training.train_rows"] == str(data.summary.train_rows)
    assert version.params["num_leaves"] == "15" and version.params["rounds"] == "150"
    assert set(version.metrics) == {"auc", "log_loss", "brier", "click_rate", "rows"}
    assert 0.55 < version.metrics["auc"] < 0.8  # position alone carries signal; the simulator is noisy
    reference = Reference.load(model_dir.parent / "extra" / REFERENCE_FILE)
    assert reference.feature_names == FEATURES
    assert reference.n_training == data.summary.train_rows


def test_the_click_trainer_is_deterministic(source: _Source) -> None:
    trainer = ClickTrainer(name=unique_model("deterministic"))
    data = trainer.load_data(source, datetime(2026, 2, 1, tzinfo=UTC), 0.2)
    first, second = trainer.train(data.train), trainer.train(data.train)
    assert first.model.model_to_string() == second.model.model_to_string()  # type: ignore[attr-defined]
    metrics = trainer.evaluate(first.model, data.holdout)
    assert metrics["rows"] == data.summary.holdout_rows
    assert not math.isnan(metrics["auc"])


def test_retrain_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETPILOT_RETRAIN_MODELS", "click, click,")
    monkeypatch.setenv("MARKETPILOT_RETRAIN_MARGIN", "0.01")
    settings = RetrainSettings.load()
    assert settings.model_names == ("click",)
    assert settings.policy.margin == 0.01 and settings.policy.promote
    assert settings.schedule == "0 0 3 * * *"

    monkeypatch.setenv("MARKETPILOT_RETRAIN_MODELS", "click,nope")
    with pytest.raises(ConfigError, match=r"^MARKETPILOT_RETRAIN_MODELS: no trainer for model 'nope'"):
        RetrainSettings.load()
    monkeypatch.setenv("MARKETPILOT_RETRAIN_MODELS", "click")
    monkeypatch.setenv("MARKETPILOT_RETRAIN_HOLDOUT_FRACTION", "1.5")
    with pytest.raises(ConfigError, match=r"^invalid retraining configuration: MARKETPILOT_RETRAIN_HOLDOUT_FRACTION: "):
        RetrainSettings.load()
