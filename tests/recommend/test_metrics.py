from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from marketpilot.recommend.evaluation.metrics import (
    paired_lead,
    ranking_metrics,
    standard_error,
    top_k,
    user_ndcg,
)


def test_metrics_match_a_hand_computed_example() -> None:
    relevant = sp.csr_matrix(np.array([[1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]], np.float32))
    top = np.array([[2, 1, 0], [0, 1, 2], [3, 4, -1]])
    m = ranking_metrics(top, relevant, 3)
    d = [1 / math.log2(p + 2) for p in range(3)]
    assert m.users == 2  # the user without relevant items is not averaged
    assert m.ndcg == pytest.approx(((d[0] + d[2]) / (d[0] + d[1]) + 0.0) / 2)
    assert m.precision == pytest.approx((2 / 3 + 0) / 2)
    assert m.recall == pytest.approx((1.0 + 0) / 2)
    assert m.map == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert m.coverage == pytest.approx(5 / 5)
    per_user = user_ndcg(top, relevant, 3)
    assert per_user.tolist() == pytest.approx([(d[0] + d[2]) / (d[0] + d[1]), 0.0])
    assert per_user.mean() == pytest.approx(m.ndcg)


def test_top_k_never_returns_excluded_items_and_pads_short_rows() -> None:
    scores = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.1]], np.float32)
    exclude = sp.csr_matrix(np.array([[0, 1, 0], [1, 1, 1]], np.float32))
    top = top_k(scores, 3, exclude)
    assert top[0].tolist() == [2, 0, -1]
    assert top[1].tolist() == [-1, -1, -1]


def test_the_paired_lead_is_the_mean_difference_with_the_standard_error_of_the_differences() -> None:
    a = np.array([0.5, 0.7, 0.2, 0.9])
    b = np.array([0.4, 0.7, 0.1, 0.5])
    lead, se = paired_lead(a, b)
    diff = a - b  # 0.1, 0, 0.1, 0.4: mean 0.15, sample sd 0.1732
    assert lead == pytest.approx(0.15)
    assert se == pytest.approx(np.sqrt(((diff - 0.15) ** 2).sum() / 3) / 2)
    # pairing: a constant shift has no error however much the users differ from each other
    assert paired_lead(a + 0.05, a) == pytest.approx((0.05, 0.0))
    assert standard_error(a) == pytest.approx(a.std(ddof=1) / 2)
    with pytest.raises(ValueError, match="not the same users"):
        paired_lead(a, b[:3])
