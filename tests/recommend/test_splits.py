from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketpilot.recommend.evaluation.splits import leave_last_out, random_split, split
from marketpilot.recommend.interactions import Interactions


def _data() -> Interactions:
    rows = [(f"u{u}", f"i{i}", "view", u * 100 + i) for u in range(5) for i in range(u + 1) for _ in range(2)]
    return Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "timestamp"]))


def _pairs(data: Interactions, mask: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(data.users[mask].tolist(), data.items[mask].tolist(), strict=True))


def test_the_random_split_is_per_user_by_pair_and_repeatable() -> None:
    data = _data()
    train, test = random_split(data, 0.75, 42)
    assert not _pairs(data, train) & _pairs(data, test)
    for u in range(5):
        n = u + 1
        assert len({i for uu, i in _pairs(data, train) if uu == u}) == round(0.75 * n)
    again, _ = random_split(data, 0.75, 42)
    assert np.array_equal(train, again)
    other, _ = random_split(data, 0.75, 7)
    assert not np.array_equal(train, other) or data.catalog.n_items < 3


def test_leave_last_out_holds_out_each_users_latest_pair_and_keeps_single_pair_users() -> None:
    data = _data()
    train, test = leave_last_out(data)
    test_pairs = _pairs(data, test)
    assert test_pairs == {(u, data.catalog.item_index[f"i{u}"]) for u in range(1, 5)}
    assert (0, data.catalog.item_index["i0"]) in _pairs(data, train)


def test_an_unknown_protocol_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown protocol 'kfold'; known: ms-recommenders, leave-last-out"):
        split(_data(), "kfold")


def test_folds_put_every_pair_in_one_fold_and_spread_each_user_evenly() -> None:
    from marketpilot.recommend.evaluation.splits import fold_split

    rows = [(f"u{u}", f"i{i}", "view", u * 100 + i + t) for u in range(6) for i in range(2 * u + 3) for t in range(2)]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user_id", "listing_id", "event", "timestamp"]))
    fold = fold_split(data, 4, seed=1)
    assert set(np.unique(fold)) <= set(range(4))
    key = data.users * data.catalog.n_items + data.items
    for k in np.unique(key):  # both events of a pair in the same fold
        assert len(np.unique(fold[key == k])) == 1
    for u in range(6):
        pairs = np.unique(key[data.users == u], return_index=True)[1]
        sizes = np.bincount(fold[data.users == u][pairs], minlength=4)
        assert sizes.max() - sizes.min() <= 1
    assert np.array_equal(fold, fold_split(data, 4, seed=1))
    with pytest.raises(ValueError, match="at least 2 folds"):
        fold_split(data, 1, seed=1)
