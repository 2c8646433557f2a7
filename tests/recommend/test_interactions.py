from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketpilot.recommend.interactions import Interactions


def _frame(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "timestamp"])


def test_a_pair_keeps_its_strongest_event_and_repeats_do_not_pile_up() -> None:
    data = Interactions.from_frame(_frame([
        ("a", "x", "view", 1), ("a", "x", "view", 2), ("a", "x", "purchase", 3), ("b", "x", "click", 4),
    ]))
    m = data.matrix().toarray()
    assert m[data.catalog.user_index["a"], data.catalog.item_index["x"]] == 8.0
    assert m[data.catalog.user_index["b"], data.catalog.item_index["x"]] == 2.0
    assert data.matrix(binary=True).sum() == 2


def test_unknown_event_types_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown event types \['wishlist'\]"):
        Interactions.from_frame(_frame([("a", "x", "wishlist", 1)]))


def test_histories_are_distinct_items_most_recent_last() -> None:
    data = Interactions.from_frame(_frame([("a", "x", "view", 1), ("a", "y", "view", 2), ("a", "x", "click", 3)]))
    history = data.histories()[data.catalog.user_index["a"]]
    assert [data.catalog.listing_ids[i] for i in history] == ["y", "x"]


def test_timelines_are_the_histories_flattened_in_user_order() -> None:
    data = Interactions.from_frame(_frame([
        ("b", "z", "view", 5), ("a", "x", "view", 1), ("b", "x", "view", 2), ("a", "y", "view", 2),
        ("a", "x", "click", 3), ("c", "y", "view", 9), ("b", "z", "view", 1),
    ]))
    users, items = data.timelines()
    assert list(users) == sorted(users)
    for u, history in enumerate(data.histories()):
        assert list(items[users == u]) == list(history)
    ids = data.catalog.listing_ids
    assert [ids[i] for i in items[users == data.catalog.user_index["b"]]] == ["x", "z"]  # z's latest is 5


def test_timeline_pairs_stay_within_one_users_history_and_window() -> None:
    data = Interactions.from_frame(_frame([
        ("a", "x", "view", 1), ("a", "y", "view", 2), ("a", "z", "view", 3), ("b", "w", "view", 1),
    ]))
    ids = data.catalog.listing_ids
    earlier, later, steps = data.timeline_pairs(window=2)
    got = sorted((ids[i], ids[j], int(s)) for i, j, s in zip(earlier, later, steps, strict=True))
    assert got == [("x", "y", 1), ("x", "z", 2), ("y", "z", 1)]  # nothing links a's z to b's w
    assert len(data.timeline_pairs(window=0)[0]) == 0


def test_rows_for_ids_outside_a_given_catalogue_are_dropped() -> None:
    base = Interactions.from_frame(_frame([("a", "x", "view", 1)]))
    more = Interactions.from_frame(_frame([("a", "x", "view", 1), ("z", "x", "view", 2), ("a", "q", "view", 3)]),
                                   base.catalog)
    assert len(more) == 1
    assert np.array_equal(more.items, [0])
