"""What only the embedded store does: persistence to SQLite, growth, memory accounting."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from marketpilot.platform.config import load_settings
from marketpilot.platform.features import (
    EmbeddedOnlineStore,
    Feature,
    FeatureView,
    RedisOnlineStore,
    float32,
    str_list,
)
from marketpilot.platform.features.backends import FEATURES_FILE, open_online_store

T0 = 1_700_000_000_000
VIEW = FeatureView("emb", "user_id", [Feature("a", float32), Feature("b", float32)], timedelta(hours=1))
LISTS = FeatureView("emb_lists", "user_id", [Feature("items", str_list(3, 8)), Feature("n")], timedelta(hours=1))


def store(path: Path | None = None) -> EmbeddedOnlineStore:
    return EmbeddedOnlineStore(path=path, metrics=CollectorRegistry())


def test_rows_written_through_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite"
    first = store(path)
    first.write(VIEW, ["u1", "u2"], {"a": [1.0, 2.0], "b": [3.0, 4.0]}, T0)
    first.write(VIEW, ["u1"], {"a": [5.0], "b": [6.0]}, T0 + 1)
    first.write(LISTS, ["u1"], {"items": [["x", "y"]], "n": [2.0]}, T0)
    first.close()
    second = store(path)
    batch = second.read(VIEW, ["u2", "u1", "u3"], now=T0)
    np.testing.assert_array_equal(batch.values[:2], [[2.0, 4.0], [5.0, 6.0]])
    assert batch.present.tolist() == [True, True, False]
    assert batch.event_time[:2].tolist() == [T0, T0 + 1]
    assert second.read(LISTS, ["u1"], now=T0).ids("items", 0) == ["x", "y"]
    # the reloaded event times still guard against older writes
    assert second.write(VIEW, ["u1"], {"a": [0.0], "b": [0.0]}, T0) == 0
    second.close()
    third = store(path)
    assert third.read(VIEW, ["u1"], now=T0).values[0].tolist() == [5.0, 6.0]


def test_a_changed_view_layout_does_not_decode_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.sqlite"
    old = store(path)
    old.write(VIEW, ["u1"], {"a": [1.0], "b": [2.0]}, T0)
    old.close()
    changed = FeatureView("emb", "user_id", [Feature("b", float32), Feature("c", float32)], timedelta(hours=1))
    new = store(path)
    assert not new.read(changed, ["u1"], now=T0).present[0]
    new.write(changed, ["u1"], {"b": [7.0], "c": [8.0]}, T0 - 5)  # an older time is fine: other layout
    new.close()
    assert store(path).read(changed, ["u1"], now=T0).values[0].tolist() == [7.0, 8.0]


def test_arrays_grow_past_a_chunk_without_moving_rows() -> None:
    s = store()
    ids = [f"u{i}" for i in range(5000)]
    for start in range(0, 5000, 700):
        chunk = ids[start : start + 700]
        s.write(VIEW, chunk, {"a": np.arange(start, start + len(chunk)), "b": np.zeros(len(chunk))}, T0)
    assert s.entity_count(VIEW) == 5000
    batch = s.read(VIEW, ids[::-1], features=["a"], now=T0)
    np.testing.assert_array_equal(batch.values[:, 0], np.arange(4999, -1, -1, dtype=np.float32))


def test_nbytes_counts_the_arrays_of_a_view() -> None:
    s = store()
    n = 10_000
    s.write(VIEW, [f"u{i}" for i in range(n)], {"a": np.ones(n), "b": np.ones(n)}, T0)
    per_row = 2 * 4 + 8  # two float32 features and an int64 event time
    assert n * per_row <= s.nbytes(VIEW) <= 2 * n * per_row


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("MARKETPILOT_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_the_embedded_profile_persists_features_under_home(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    backend = open_online_store(settings, metrics=CollectorRegistry())
    assert isinstance(backend, EmbeddedOnlineStore)
    backend.write(VIEW, ["u1"], {"a": [1.0], "b": [1.0]}, T0)
    backend.close()
    assert (tmp_path / "home" / FEATURES_FILE).exists()


@pytest.mark.usefixtures("clean_env")
def test_the_distributed_profile_reads_redis(redis_url: str) -> None:
    settings = load_settings(
        profile="distributed",
        database_url="postgresql+psycopg://x@127.0.0.1/x",
        redis_url=redis_url.rsplit("/", 1)[0] + "/1",
        kafka_bootstrap="127.0.0.1:9092",
    )
    backend = open_online_store(settings, metrics=CollectorRegistry())
    assert isinstance(backend, RedisOnlineStore)
    backend.close()
