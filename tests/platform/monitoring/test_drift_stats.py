"""The drift statistics against hand computations and scipy, on examples small enough to check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from marketpilot.platform.monitoring.drift_stats import PSI_EPSILON, KsMethod, adjust, chi2_test, ks_test, psi

# (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5) = 0.25 ln 2 + 0.25 ln 1.5
PSI_HALF_TO_QUARTER = 0.25 * math.log(2) + 0.25 * math.log(1.5)


def test_psi_matches_the_hand_computed_value() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(PSI_HALF_TO_QUARTER, abs=1e-12)
    assert PSI_HALF_TO_QUARTER == pytest.approx(0.2746530722)


def test_psi_is_zero_for_identical_distributions_and_symmetric() -> None:
    e = np.array([0.1, 0.2, 0.3, 0.4])
    a = np.array([0.4, 0.3, 0.2, 0.1])
    assert psi(e, e) == 0.0
    assert psi(e, a) == pytest.approx(psi(a, e))


def test_psi_clips_empty_bins_instead_of_going_infinite() -> None:
    # bin 2 is empty in the window: (eps - 0.5) ln(eps / 0.5) + (1 - 0.5) ln(1 / 0.5)
    expected = (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5) + 0.5 * math.log(2)
    assert psi(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(expected)


def test_psi_refuses_mismatched_bins() -> None:
    with pytest.raises(ValueError, match=r"psi: expected and actual must be 1-D of one shape, got \(2,\) and \(3,\)"):
        psi(np.array([0.5, 0.5]), np.array([0.2, 0.3, 0.5]))


@pytest.mark.parametrize("method", ["asymp", "exact", "auto"])
def test_ks_test_is_scipys_two_sample_ks(method: KsMethod) -> None:
    rng = np.random.default_rng(3)
    reference, window = np.sort(rng.normal(size=300)), rng.normal(0.3, 1.0, size=120)
    expected = stats.ks_2samp(reference, window, method=method)
    assert ks_test(reference, window, method=method) == (
        pytest.approx(expected.statistic, abs=1e-12), pytest.approx(expected.pvalue, rel=1e-9)
    )


@pytest.mark.parametrize(("n_ref", "n", "discrete"), [(2_000, 500, False), (2_000, 37, False), (50, 900, False),
                                                   (2_000, 500, True)])
def test_the_fast_asymptotic_ks_equals_scipys_including_ties(n_ref: int, n: int, discrete: bool) -> None:
    rng = np.random.default_rng(n)

    def draw(k: int) -> np.ndarray:
        return rng.integers(0, 6, k).astype(float) if discrete else rng.standard_t(3, k)

    reference, window = np.sort(draw(n_ref)), draw(n) + 0.1
    expected = stats.ks_2samp(reference, window, method="asymp")
    statistic, p = ks_test(reference, window)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_statistic_on_a_tiny_example_is_the_largest_cdf_gap() -> None:
    # ECDFs of {1,2,3,4} and {3,4,5,6} differ most at x in [2, 3): 2/4 - 0 = 0.5
    statistic, _ = ks_test(np.array([1.0, 2.0, 3.0, 4.0]), np.array([3.0, 4.0, 5.0, 6.0]))
    assert statistic == pytest.approx(0.5)


def test_ks_test_without_values_gives_no_evidence() -> None:
    assert ks_test(np.array([1.0, 2.0]), np.array([])) == (0.0, 1.0)


def test_chi2_test_is_scipys_contingency_test() -> None:
    ref, cur = np.array([500, 300, 200, 0]), np.array([40, 35, 20, 5])
    keep = (ref + cur) > 0
    expected = stats.chi2_contingency(np.vstack([ref, cur])[:, keep], correction=False)
    assert chi2_test(ref, cur) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_chi2_test_on_a_2x2_table_matches_the_hand_formula() -> None:
    # table [[30, 10], [10, 30]]: every expected count is 20, so chi2 = 4 * 10**2 / 20 = 20, 1 dof
    statistic, p = chi2_test(np.array([30, 10]), np.array([10, 30]))
    assert statistic == pytest.approx(20.0)
    assert p == pytest.approx(stats.chi2.sf(20.0, 1))


def test_chi2_test_with_a_single_populated_bin_gives_no_evidence() -> None:
    assert chi2_test(np.array([10, 0, 0]), np.array([5, 0, 0])) == (0.0, 1.0)


def test_holm_adjustment_matches_the_hand_computation() -> None:
    # sorted p: .005 (x4 = .02), .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04 -> running max .06)
    adjusted = adjust(np.array([0.01, 0.04, 0.03, 0.005]), "holm")
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])


def test_bonferroni_adjustment_multiplies_by_the_number_of_tests_capped_at_one() -> None:
    np.testing.assert_allclose(adjust(np.array([0.01, 0.04, 0.3, 0.005]), "bonferroni"), [0.04, 0.16, 1.0, 0.02])


def test_holm_never_rejects_less_than_bonferroni() -> None:
    p = np.random.default_rng(0).random(50) ** 3
    assert np.all(adjust(p, "holm") <= adjust(p, "bonferroni") + 1e-15)


def test_unknown_correction_is_refused() -> None:
    with pytest.raises(ValueError, match="correction: must be 'holm' or 'bonferroni', got 'bh'"):
        adjust(np.array([0.1]), "bh")  # type: ignore[arg-type]
