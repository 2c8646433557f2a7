"""Our vectorised BTS action distribution equals obp's per-draw loop, draw for draw."""

from __future__ import annotations

import numpy as np
import pytest

from marketpilot.measure.ope.bernoulli_ts import bernoulli_ts_action_dist


def obp_loop(alpha: np.ndarray, beta: np.ndarray, len_list: int, n_sim: int, seed: int) -> np.ndarray:
    """obp's BernoulliTS.compute_batch_action_dist, step by step (obp itself needs torch)."""
    rng = np.random.RandomState(seed)
    counts = np.zeros((alpha.size, len_list))
    for _ in range(n_sim):
        top = rng.beta(a=alpha, b=beta).argsort()[::-1][:len_list]
        for k in range(len_list):
            counts[top[k], k] += 1
    return counts / n_sim


def test_matches_the_reference_loop_exactly() -> None:
    alpha = np.array([3.0, 1.0, 10.0, 2.0, 5.0])
    beta = np.array([50.0, 40.0, 60.0, 30.0, 80.0])
    ours = bernoulli_ts_action_dist(alpha, beta, len_list=3, n_sim=2_000, seed=12345)
    assert np.array_equal(ours, obp_loop(alpha, beta, 3, 2_000, 12345))
    assert np.allclose(ours.sum(axis=0), 1.0)


@pytest.mark.parametrize(("kw", "message"), [
    ({"alpha": np.ones(3), "beta": np.ones(2)}, "equal length"),
    ({"alpha": np.array([1.0, 0.0]), "beta": np.ones(2)}, "must be positive"),
    ({"alpha": np.ones(2), "beta": np.ones(2), "len_list": 3}, r"len_list must lie in \[1, 2\]"),
])
def test_bad_priors_are_refused(kw: dict[str, object], message: str) -> None:
    args = {"len_list": 1, **kw}
    with pytest.raises(ValueError, match=message):
        bernoulli_ts_action_dist(**args)  # type: ignore[arg-type]
