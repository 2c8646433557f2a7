"""Ranker side features: category affinity, segment popularity, interaction-time gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.model import Catalog
from marketpilot.recommend.side_features import NAMES, SideFeatures, category_codes, segment_codes


def _data() -> Interactions:
    catalog = Catalog.build([f"i{k}" for k in range(4)], ["a", "b", "c"])
    frame = pd.DataFrame({
        "user_id": ["a", "a", "b", "b", "c"],
        "listing_id": ["i0", "i1", "i0", "i2", "i2"],
        "event": "purchase",
        "timestamp": [0, 86_400, 2 * 86_400, 4 * 86_400, 10 * 86_400],
    })
    return Interactions.from_frame(frame, catalog)


def test_category_codes_share_prefixes() -> None:
    codes = category_codes(["a/b/c", "a/b/d", "a/x", None])
    assert codes is not None and codes.shape == (3, 4)
    assert codes[0, 0] == codes[0, 1] == codes[0, 2] and codes[0, 3] == -1
    assert codes[1, 0] == codes[1, 1] != codes[1, 2]
    assert codes[2, 0] != codes[2, 1]
    assert category_codes(None) is None


def test_features_from_history_and_segment() -> None:
    data = _data()
    segments, _ = segment_codes(["s1", "s1", None])
    side = SideFeatures(category_codes(["m/x", "m/x", "m/y", "m/y"]), segments).fit(data)
    history = data.matrix()[[0, 2]]
    rows, items = np.array([0, 0, 1]), np.array([2, 3, 0])
    cols, names = side.features(np.array([0, 2]), history, rows, items)
    assert tuple(names) == NAMES
    f = dict(zip(names, cols, strict=True))
    assert f["cat1_aff"][0] == 1.0 and f["cat2_aff"][0] == 0.0  # user a: both listings in m/x
    assert f["cat2_aff"][2] == 0.0 and f["cat2_aff"][1] == 0.0
    assert f["seg_share"][0] == 0.5  # one of the two s1 users has i2
    assert np.isnan(f["seg_share"][2])  # user c has no segment
    assert np.isnan(f["time_med_gap"][1])  # nobody has i3
    assert np.isfinite(f["time_med_gap"][0])


def test_unknown_listings_and_round_trip() -> None:
    data = _data()
    side = SideFeatures(category_codes(["m/x"] * 4), segment_codes(["s", "s", "s"])[0]).fit(data)
    history = sp.csr_matrix((np.ones(1), ([0], [0])), shape=(1, 6))  # catalogue grew after the fit
    cols, _ = side.features(np.array([0]), history, np.array([0, 0]), np.array([1, 5]))
    assert all(np.isnan(c[1]) for c in cols)
    again = SideFeatures.from_state(side.state())
    cols2, _ = again.features(np.array([0]), history, np.array([0, 0]), np.array([1, 5]))
    for a, b in zip(cols, cols2, strict=True):
        np.testing.assert_array_equal(a, b)
    empty, _ = SideFeatures().features(np.array([0]), history, np.array([0]), np.array([1]))
    assert all(np.isnan(c).all() for c in empty)


def test_a_listing_added_after_the_fit_gets_the_features_of_an_untouched_trained_listing() -> None:
    """Trained listing i3 (category m/y, no interactions) and a late listing in m/y look the
    same to the ranker, also after a save and load; a late listing in a category training
    never saw gets affinity 0, not a code of some other category."""
    data = _data()
    paths: list[str | None] = ["m/x", "m/x", "m/y", "m/y"]
    side = SideFeatures.for_catalogue(paths, segment_codes(["s1", "s1", None])[0]).fit(data)
    side = SideFeatures.from_state(side.state())
    side.extend(2, ["m/y", "z/q"])
    history = sp.csr_matrix((np.ones(2), ([0, 0], [2, 3])), shape=(1, 6))  # a user of m/y
    cols, names = side.features(np.array([0]), history, np.zeros(3, np.int64), np.array([3, 4, 5]))
    f = dict(zip(names, cols, strict=True))
    for name in NAMES:
        np.testing.assert_array_equal(f[name][0], f[name][1], err_msg=name)
    assert f["cat2_aff"][1] == 1.0 and f["cat1_aff"][2] == 0.0
    assert side.categories is not None and side.categories[0, 5] not in side.categories[0, :5]


def test_a_bundle_without_the_category_vocabulary_still_extends_without_category_codes() -> None:
    data = _data()
    side = SideFeatures.for_catalogue(["m/x", "m/x", "m/y", "m/y"], None).fit(data)
    state = {k: v for k, v in side.state().items() if not k.startswith("category_keys_")}
    old = SideFeatures.from_state(state)
    old.extend(1, ["m/y"])
    history = sp.csr_matrix((np.ones(1), ([0], [2])), shape=(1, 5))
    cols, names = old.features(np.array([0]), history, np.zeros(2, np.int64), np.array([3, 4]))
    f = dict(zip(names, cols, strict=True))
    assert f["cat2_aff"][0] == 1.0 and np.isnan(f["cat2_aff"][1])  # known listing keeps its features


def test_pair_counts_are_the_same_from_the_dense_table_and_the_sorted_keys() -> None:
    from marketpilot.recommend.side_features import DENSE_COUNTS, pair_counts

    rng = np.random.default_rng(0)
    have_rows, have_codes = rng.integers(0, 4, 200), rng.integers(0, 7, 200)
    want_rows, want_codes = rng.integers(0, 4, 50), rng.integers(0, 7, 50)
    expected = [int(((have_rows == r) & (have_codes == c)).sum()) for r, c in zip(want_rows, want_codes, strict=True)]
    dense = pair_counts(have_rows, have_codes, want_rows, want_codes, 4, 7)
    wide = DENSE_COUNTS  # 4 rows x this width is past the table: the sorted-key path
    keyed = pair_counts(have_rows, have_codes, want_rows, want_codes, 4, wide)
    assert dense.tolist() == keyed.tolist() == expected
    assert pair_counts(np.empty(0, np.int64), np.empty(0, np.int64), want_rows, want_codes, 4, wide).tolist() == [0] * 50


def test_seller_affinity_is_the_share_of_the_users_history_from_the_candidates_seller() -> None:
    from marketpilot.recommend.pipeline import TwoStagePipeline

    pipeline = TwoStagePipeline()
    pipeline.item_sellers = np.array([0, 0, 1, -1, 2])
    history = sp.csr_matrix(np.array([[1, 1, 1, 1, 0], [0, 0, 0, 0, 0]], np.float32))
    rows, items = np.array([0, 0, 0, 0, 1]), np.array([0, 2, 3, 4, 1])
    got = pipeline._seller_affinity(history, rows, items)
    assert got.tolist() == [0.5, 0.25, 0.0, 0.0, 0.0]  # 2 of 4 from seller 0, 1 from seller 1; unknown, none
