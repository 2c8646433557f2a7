"""The online store contract, run against every backend (embedded, embedded + SQLite, Redis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from marketpilot.platform.features import EmbeddedOnlineStore, Feature, FeatureView, OnlineStore

T0 = 1_700_000_000_000  # epoch ms
MINUTE = 60_000


def stale_count(metrics: CollectorRegistry, view: str) -> float:
    return metrics.get_sample_value("marketpilot_feature_stale_reads_total", {"view": view}) or 0.0


def write_stats(store: OnlineStore, ids: list[str], spend: list[float], at: int | list[int]) -> int:
    n = len(ids)
    return store.write(
        "user_stats",
        ids,
        {"spend": spend, "orders": list(range(1, n + 1)), "score": [0.5] * n},
        np.asarray(at, dtype=np.int64) if isinstance(at, list) else at,
    )


def test_round_trip_returns_written_values(store: OnlineStore) -> None:
    assert write_stats(store, ["u1", "u2"], [10.5, 20.25], T0) == 2
    batch = store.read("user_stats", ["u1", "u2"], now=T0)
    assert batch.features == ("spend", "orders", "score")
    np.testing.assert_array_equal(batch.values, [[10.5, 1, 0.5], [20.25, 2, 0.5]])
    np.testing.assert_array_equal(batch.event_time, [T0, T0])
    assert batch.present.tolist() == [True, True]
    assert batch.stale.tolist() == [False, False]


def test_int64_features_are_served_exactly_in_a_float64_matrix(store: OnlineStore) -> None:
    # user_stats has an int64 feature, so its matrix is float64: int64 stays exact up to 2**53
    store.write("user_stats", ["big"], {"spend": [0.0], "orders": [2**53], "score": [0.0]}, T0)
    batch = store.read("user_stats", ["big"], features=["orders"], now=T0)
    assert batch.values.dtype == np.float64
    assert batch.values[0, 0] == 2**53


def test_missing_entities_are_absent_nan_and_never_stale(store: OnlineStore, metrics: CollectorRegistry) -> None:
    write_stats(store, ["u1"], [1.0], T0)
    batch = store.read("user_stats", ["ghost", "u1", "other"], now=T0 + 10**9)
    assert batch.present.tolist() == [False, True, False]
    assert np.isnan(batch.values[[0, 2]]).all()
    assert batch.event_time[[0, 2]].tolist() == [0, 0]
    assert batch.stale.tolist() == [False, True, False]
    assert stale_count(metrics, "user_stats") == 1


def test_reading_a_view_nobody_wrote_returns_all_absent(store: OnlineStore) -> None:
    batch = store.read("user_stats", ["a", "b"], now=T0)
    assert batch.values.shape == (2, 3)
    assert not batch.present.any()


def test_partial_feature_subset_comes_back_in_the_order_asked(store: OnlineStore) -> None:
    store.write("user_stats", ["u1"], {"spend": [7.0], "orders": [4], "score": [0.25]}, T0)
    batch = store.read("user_stats", ["u1"], features=["score", "spend"], now=T0)
    assert batch.features == ("score", "spend")
    np.testing.assert_array_equal(batch.values, [[0.25, 7.0]])
    np.testing.assert_array_equal(batch.column("spend"), [7.0])


def test_unknown_feature_in_a_read_names_the_view(store: OnlineStore) -> None:
    with pytest.raises(KeyError, match="view 'user_stats' has no feature 'nope'"):
        store.read("user_stats", ["u1"], features=["spend", "nope"])


def test_unknown_view_name_lists_the_registered_ones(store: OnlineStore) -> None:
    with pytest.raises(KeyError, match=r"unknown feature view 'nope' \(registered: user_history, user_stats\)"):
        store.read("nope", ["u1"])


def test_newer_event_time_overwrites(store: OnlineStore) -> None:
    write_stats(store, ["u1"], [1.0], T0)
    assert write_stats(store, ["u1"], [2.0], T0 + MINUTE) == 1
    batch = store.read("user_stats", ["u1"], features=["spend"], now=T0 + MINUTE)
    assert batch.values[0, 0] == 2.0
    assert batch.event_time[0] == T0 + MINUTE


def test_older_event_time_does_not_overwrite(store: OnlineStore) -> None:
    write_stats(store, ["u1"], [2.0], T0 + MINUTE)
    assert write_stats(store, ["u1"], [1.0], T0) == 0
    batch = store.read("user_stats", ["u1"], features=["spend"], now=T0 + MINUTE)
    assert batch.values[0, 0] == 2.0
    assert batch.event_time[0] == T0 + MINUTE


def test_a_batch_applies_only_its_rows_that_are_not_older(store: OnlineStore) -> None:
    write_stats(store, ["u1", "u2"], [1.0, 1.0], T0)
    applied = write_stats(store, ["u1", "u2", "u3"], [9.0, 9.0, 9.0], [T0 - 1, T0 + 1, T0 - 5])
    assert applied == 2
    batch = store.read("user_stats", ["u1", "u2", "u3"], features=["spend"], now=T0)
    assert batch.values[:, 0].tolist() == [1.0, 9.0, 9.0]


def test_equal_event_time_overwrites_so_replays_converge(store: OnlineStore) -> None:
    write_stats(store, ["u1"], [1.0], T0)
    assert write_stats(store, ["u1"], [3.0], T0) == 1
    assert store.read("user_stats", ["u1"], features=["spend"], now=T0).values[0, 0] == 3.0


def test_the_same_entity_twice_in_one_write_keeps_the_later_row(store: OnlineStore) -> None:
    write_stats(store, ["u1", "u1", "u1"], [5.0, 6.0, 4.0], [T0 + 2, T0 + 3, T0 + 1])
    batch = store.read("user_stats", ["u1"], features=["spend"], now=T0)
    assert batch.values[0, 0] == 6.0
    assert batch.event_time[0] == T0 + 3


def test_event_time_accepts_datetimes(store: OnlineStore) -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    write_stats(store, ["u1"], [1.0], at)  # type: ignore[arg-type]
    batch = store.read("user_stats", ["u1"], now=at + timedelta(minutes=5))
    assert batch.event_time[0] == int(at.timestamp() * 1000)
    assert not batch.stale[0]


def test_rows_older_than_the_sla_are_flagged_stale_and_counted(
    store: OnlineStore, metrics: CollectorRegistry
) -> None:
    write_stats(store, ["old", "fresh", "edge"], [1.0, 2.0, 3.0], [T0 - 11 * MINUTE, T0 - MINUTE, T0 - 10 * MINUTE])
    batch = store.read("user_stats", ["old", "fresh", "edge", "ghost"], now=T0)
    # exactly at the SLA is still fresh; older than it is stale
    assert batch.stale.tolist() == [True, False, False, False]
    assert batch.values[0, 0] == 1.0  # a stale row is still served; the caller decides
    assert stale_count(metrics, "user_stats") == 1
    store.read("user_stats", ["old", "old"], now=T0)
    assert stale_count(metrics, "user_stats") == 3
    assert stale_count(metrics, "user_history") == 0


def test_many_entity_read_keeps_the_request_order(store: OnlineStore) -> None:
    ids = [f"u{i}" for i in range(300)]
    write_stats(store, ids, [float(i) for i in range(300)], T0)
    ask = [f"u{i}" for i in (299, 3, 150, 3, 0)] + ["ghost"] + [f"u{i}" for i in range(200, 100, -1)]
    batch = store.read("user_stats", ask, features=["spend"], now=T0)
    expected = [299.0, 3.0, 150.0, 3.0, 0.0, np.nan] + [float(i) for i in range(200, 100, -1)]
    np.testing.assert_array_equal(batch.values[:, 0], expected)
    assert list(batch.entity_ids) == ask
    assert batch.present.sum() == len(ask) - 1


def test_list_features_round_trip_newest_first_with_padding(store: OnlineStore) -> None:
    store.write(
        "user_history",
        ["u1", "u2"],
        {
            "recent_items": [["L9", "L7", "Lé"], []],
            "recent_categories": np.array([[5, 4, 3], [8, -1, -1]]),
            "sessions": [3, 1],
        },
        T0,
    )
    batch = store.read("user_history", ["u2", "u1", "ghost"], now=T0)
    assert batch.features == ("sessions",)
    assert batch.lists["recent_items"].tolist() == [["", "", "", ""], ["L9", "L7", "Lé", ""], ["", "", "", ""]]
    assert batch.lists["recent_categories"].tolist() == [[8, -1, -1], [5, 4, 3], [-1, -1, -1]]
    assert batch.ids("recent_items", 1) == ["L9", "L7", "Lé"]
    assert batch.ids("recent_categories", 0) == [8]


def test_a_list_feature_alone_can_be_read(store: OnlineStore) -> None:
    store.write("user_history", ["u1"], {"recent_items": [["a"]], "recent_categories": [[1]], "sessions": [1]}, T0)
    batch = store.read("user_history", ["u1"], features=["recent_items"], now=T0)
    assert batch.values.shape == (1, 0)
    assert list(batch.lists) == ["recent_items"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"spend": [1.0], "orders": [1]}, "write to view 'user_stats' is missing feature(s): score"),
        ({"spend": [1.0], "orders": [1], "score": [1.0], "zz": [1]}, "view 'user_stats' has no feature(s): zz"),
        ({"spend": [1.0, 2.0], "orders": [1], "score": [1.0]}, "feature 'spend' has 2 values for 1 entities"),
    ],
)
def test_a_malformed_write_is_rejected_with_its_reason(
    store: OnlineStore, values: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(ValueError) as err:
        store.write("user_stats", ["u1"], values, T0)
    assert str(err.value) == message
    assert not store.read("user_stats", ["u1"], now=T0).present[0]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([["a", "b", "c", "d", "e"]], "feature 'recent_items' of view 'user_history' holds at most 4 ids, got 5"),
        ([["x" * 13]], "id 'xxxxxxxxxxxxx' of feature 'recent_items' is 13 bytes; the view allows 12"),
        ([[""]], "feature 'recent_items': an empty id cannot be stored (it is the padding)"),
    ],
)
def test_a_list_that_does_not_fit_is_rejected(store: OnlineStore, items: list[list[str]], message: str) -> None:
    with pytest.raises(ValueError) as err:
        store.write("user_history", ["u1"], {"recent_items": items, "recent_categories": [[]], "sessions": [1]}, T0)
    assert str(err.value) == message


def test_event_time_count_must_match_entities(store: OnlineStore) -> None:
    with pytest.raises(ValueError, match="got 3 event times for 2 entities"):
        write_stats(store, ["a", "b"], [1.0, 2.0], [T0, T0, T0])


def test_stores_on_the_default_registry_share_one_counter() -> None:
    view = FeatureView("default_registry_view", "user_id", [Feature("a")], timedelta(seconds=1))
    first, second = EmbeddedOnlineStore(), EmbeddedOnlineStore()
    for s in (first, second):
        s.write(view, ["u1"], {"a": [1.0]}, T0)
        s.read(view, ["u1"], now=T0 + 5000)
    assert REGISTRY.get_sample_value("marketpilot_feature_stale_reads_total", {"view": view.name}) == 2
