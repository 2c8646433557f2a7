"""The training-time reference: bins, samples, serialisation, and the report computed from it."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from marketpilot.platform.monitoring.drift import ClosedWindow, DriftThresholds, Reference, evaluate

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tiny_reference(**kw: object) -> Reference:
    values = np.arange(1.0, 11.0)  # 1..10: with 2 bins the only inner edge is the median, 6 (the "higher" one)
    return Reference.fit(values[:, None], values / 10, names=["x"], bins=2, **kw)  # type: ignore[arg-type]


def window(reference: Reference, rows: np.ndarray) -> ClosedWindow:
    return ClosedWindow("m", None, reference, T0, T0, rows, observed=rows.shape[0], late=0)


def test_numeric_bins_are_training_quantiles_with_open_ends_and_a_missing_bin() -> None:
    x = tiny_reference().features[0]
    np.testing.assert_array_equal(x.edges, [6.0])
    np.testing.assert_array_equal(x.counts, [5, 5, 0])  # (-inf, 6), [6, inf), missing
    np.testing.assert_array_equal(x.bin_counts(np.array([-1e9, 5.9, 6.0, 1e9, np.nan])), [2, 2, 1])


def test_ten_quantile_bins_hold_a_tenth_of_the_training_data_each() -> None:
    rng = np.random.default_rng(1)
    ref = Reference.fit(rng.normal(size=(10_000, 1)), rng.random(10_000), names=["x"])
    np.testing.assert_allclose(ref.features[0].proportions[:10], 0.1, atol=1e-3)
    assert ref.features[0].proportions[10] == 0.0


def test_tied_quantiles_merge_bins_instead_of_leaving_empty_ones() -> None:
    zeros_then_ones = np.r_[np.zeros(700), np.ones(300)][:, None]
    ref = Reference.fit(zeros_then_ones, np.zeros(1000), names=["x"])
    np.testing.assert_array_equal(ref.features[0].edges, [0.0, 1.0])
    np.testing.assert_array_equal(ref.features[0].counts, [0, 700, 300, 0])


def test_categorical_levels_get_a_bin_each_then_other_then_missing() -> None:
    codes = np.array([0, 0, 1, 2, 2, 2], dtype=float)[:, None]
    c = Reference.fit(codes, np.zeros(6), names=["c"], categorical=["c"]).features[0]
    np.testing.assert_array_equal(c.levels, [0, 1, 2])
    np.testing.assert_array_equal(c.counts, [2, 1, 3, 0, 0])
    np.testing.assert_array_equal(c.bin_counts(np.array([2.0, 7.0, 1.5, np.nan, 0.0])), [1, 0, 1, 2, 1])


def test_rare_categories_beyond_max_levels_count_as_other() -> None:
    codes = np.array([0] * 5 + [1] * 4 + [2] * 3 + [3], dtype=float)[:, None]
    c = Reference.fit(codes, np.zeros(13), names=["c"], categorical=["c"], max_levels=2).features[0]
    np.testing.assert_array_equal(c.levels, [0, 1])
    np.testing.assert_array_equal(c.counts, [5, 4, 4, 0])


def test_the_ks_sample_is_seeded_and_capped_at_sample_size() -> None:
    x = np.random.default_rng(2).normal(size=(5_000, 1))
    a = Reference.fit(x, x[:, 0], names=["x"], sample_size=2_000, seed=9)
    b = Reference.fit(x, x[:, 0], names=["x"], sample_size=2_000, seed=9)
    c = Reference.fit(x, x[:, 0], names=["x"], sample_size=2_000, seed=10)
    assert a.features[0].sample.size == 2_000
    np.testing.assert_array_equal(a.features[0].sample, b.features[0].sample)
    assert not np.array_equal(a.features[0].sample, c.features[0].sample)


def test_bytes_round_trip_keeps_every_array_and_the_layout() -> None:
    rng = np.random.default_rng(4)
    x = np.c_[rng.normal(size=3_000), rng.integers(0, 4, 3_000)]
    ref = Reference.fit(x, rng.random(3_000), names=["amount", "region"], categorical=["region"], seed=5)
    raw = ref.to_bytes()
    back = Reference.from_bytes(raw)
    assert back.feature_names == ("amount", "region") and back.n_training == 3_000 and back.seed == 5
    for a, b in zip(ref.columns, back.columns, strict=True):
        assert (a.name, a.kind) == (b.name, b.kind)
        for field in ("counts", "edges", "levels", "sample"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert len(raw) < 60_000  # two 2,000-value samples dominate; small enough for a model artifact


def test_save_and_load_go_through_a_file(tmp_path: Path) -> None:
    ref = tiny_reference()
    back = Reference.load(ref.save(tmp_path / "drift-reference.npz"))
    np.testing.assert_array_equal(back.features[0].counts, ref.features[0].counts)


def test_from_bytes_refuses_what_is_not_a_reference() -> None:
    with pytest.raises(ValueError, match="not a drift reference"):
        Reference.from_bytes(b"definitely not an npz")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"names": ["a"]}, "names: 1 names for 2 feature columns"),
        ({"names": ["a", "prediction"]}, "names: must be unique and differ from the prediction name 'prediction'"),
        ({"names": ["a", "b"], "categorical": ["z"]}, r"categorical: not feature names: \['z'\]"),
        ({"names": ["a", "b"], "bins": 1}, "bins: must be at least 2, got 1"),
        ({"names": ["a", "b"], "sample_size": 0}, "sample_size: must be at least 1, got 0"),
    ],
)
def test_fit_names_the_bad_argument(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reference.fit(np.zeros((3, 2)), np.zeros(3), **kwargs)  # type: ignore[arg-type]


def test_fit_refuses_predictions_of_another_length() -> None:
    with pytest.raises(ValueError, match=r"predictions: expected shape \(3,\) to match features, got \(2,\)"):
        Reference.fit(np.zeros((3, 1)), np.zeros(2), names=["a"])


def test_window_psi_and_ks_match_the_hand_and_scipy_values() -> None:
    ref = tiny_reference(sample_size=10)
    rows = np.array([[1.0, 0.1], [2.0, 0.2], [3.0, 0.3], [9.0, 0.9]])  # x bins: 3 low, 1 high
    report = evaluate(window(ref, rows), DriftThresholds(min_count=1))
    x = report.features[0]
    # expected (0.5, 0.5, 0), actual (0.75, 0.25, 0): 0.25 ln 1.5 + 0.25 ln 2; the empty missing bin adds 0
    assert x.psi == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    ks = stats.ks_2samp(np.arange(1.0, 11.0), rows[:, 0], method="asymp")
    assert (x.test, x.statistic, x.p_value) == ("ks", pytest.approx(ks.statistic), pytest.approx(ks.pvalue))
    # Holm over two columns: the smaller p is doubled
    p = sorted(f.p_value for f in report.features)
    assert min(f.p_adjusted for f in report.features) == pytest.approx(min(1.0, 2 * p[0]))


def test_a_window_below_min_count_gets_no_verdict() -> None:
    ref = tiny_reference()
    rows = np.array([[100.0, 9.0]] * 5)  # wildly off, but only 5 events
    report = evaluate(window(ref, rows), DriftThresholds(min_count=6))
    assert report.verdict == "insufficient" and report.drifted_features == ()
    assert evaluate(window(ref, rows), DriftThresholds(min_count=5)).verdict == "drift"


def test_a_jump_in_missing_values_is_drift_through_psi() -> None:
    rng = np.random.default_rng(6)
    ref = Reference.fit(rng.normal(size=(5_000, 1)), rng.random(5_000), names=["x"])
    rows = np.c_[rng.normal(size=1_000), rng.random(1_000)]
    rows[:300, 0] = np.nan
    x = evaluate(window(ref, rows), DriftThresholds()).features[0]
    assert x.missing_rate == pytest.approx(0.3)
    assert x.psi > 0.2 and x.drifted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"psi": 0.0}, "psi threshold: must be positive, got 0.0"),
        ({"alpha": 1.0}, r"alpha: must be in \(0, 1\), got 1.0"),
        ({"min_count": 0}, "min_count: must be at least 1, got 0"),
        ({"correction": "bh"}, "correction: must be 'holm' or 'bonferroni', got 'bh'"),
    ],
)
def test_thresholds_name_the_bad_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftThresholds(**kwargs)  # type: ignore[arg-type]
