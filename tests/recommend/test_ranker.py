"""The stage-2 ranker: bagged boosters, deterministic, persisted as model texts."""

from __future__ import annotations

import numpy as np
import pytest

from marketpilot.recommend.ranker import Ranker, RankerConfig


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2000, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=2000) > 1.0).astype(np.float32)
    return x, y, np.full(100, 20)


def test_a_bagged_ranker_learns_averages_its_boosters_and_round_trips() -> None:
    x, y, groups = _data()
    config = RankerConfig(objective="binary", trees=30, min_child_samples=20, bag=3)
    ranker = Ranker(("a", "b", "c"), config, tie_feature=2).fit(x, y, groups)
    assert len(ranker.boosters) == 3
    scores = ranker.score(x)
    assert np.corrcoef(scores, x[:, 0])[0, 1] > 0.5  # the planted signal
    single = [b.predict(x, raw_score=True) for b in ranker.boosters]
    assert not np.allclose(single[0], single[1])  # seeds differ
    assert np.allclose(scores, np.mean(single, axis=0) - 1e-7 * x[:, 2])
    loaded = Ranker.from_texts(ranker.to_texts(), ranker.feature_names, config, 2)
    assert np.allclose(loaded.score(x), scores)
    again = Ranker(("a", "b", "c"), config, tie_feature=2).fit(x, y, groups)
    assert np.array_equal(again.score(x), scores)


def test_a_ranker_refuses_an_empty_bag_and_scoring_before_fit() -> None:
    with pytest.raises(ValueError, match="bag"):
        RankerConfig(bag=0)
    with pytest.raises(RuntimeError, match="fit"):
        Ranker(("a",)).score(np.zeros((1, 1)))


@pytest.mark.parametrize("objective", ["binary", "lambdarank"])
def test_the_compiled_ranker_scores_as_lightgbm_does_missing_values_included(objective: str) -> None:
    x, y, groups = _data(1)
    x[::7, 1] = np.nan  # side features are NaN for listings without interactions
    config = RankerConfig(objective=objective, trees=40, min_child_samples=20, bag=2)
    ranker = Ranker(("a", "b", "c"), config, tie_feature=2).fit(x, y, groups)
    expected = ranker.score(x)
    assert ranker.compile() > 0
    assert len(ranker.compiled) == 2
    assert np.allclose(ranker.score(x), expected, rtol=0, atol=1e-9)
    assert np.array_equal(np.argsort(-ranker.score(x[:50]), kind="stable"), np.argsort(-expected[:50], kind="stable"))
    assert ranker.compile() == 0.0  # once
    ranker.fit(x, y, groups)  # a refit drops the compiled trees of the old boosters
    assert ranker.compiled == []
