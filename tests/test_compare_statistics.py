"""compare-losses statistics: the same numbers as scipy and statsmodels called directly."""

import itertools

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from pipeline.evaluation.statistics import (
    compare_pair,
    holm_adjust,
    pairwise_tests,
    signed_rank_sums,
    significance_stars,
    t_confidence_interval,
)


@pytest.mark.parametrize(
    "values",
    [
        [0.91, 0.88, 0.95, 0.79, 0.85],
        [0.2, 0.9],
        list(np.random.default_rng(3).uniform(0.5, 1.0, 41)),
    ],
)
def test_confidence_interval_is_scipys_t_interval(values):
    interval = t_confidence_interval(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert interval.mean == pytest.approx(np.mean(values))
    assert (interval.low, interval.high) == pytest.approx((low, high), rel=1e-12)
    assert interval.half_width == pytest.approx((high - low) / 2, rel=1e-12)
    assert interval.n == len(values)


def test_confidence_interval_other_level_and_degenerate_samples():
    values = [0.5, 0.6, 0.8]
    low, high = stats.t.interval(0.99, 2, loc=np.mean(values), scale=stats.sem(values))
    assert t_confidence_interval(values, confidence=0.99).low == pytest.approx(low)
    assert t_confidence_interval(values, confidence=0.99).high == pytest.approx(high)
    assert t_confidence_interval([0.7, 0.7, 0.7]).half_width == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(t_confidence_interval([0.7]).half_width)
    with pytest.raises(ValueError):
        t_confidence_interval([])


def test_signed_rank_with_ties_and_zero_differences_is_scipys_default():
    # Two zero differences (cases 0 and 3) and tied absolute differences (0.05 twice, 0.1 twice).
    row = np.array([0.80, 0.90, 0.70, 0.60, 0.85, 0.75, 0.95, 0.65])
    column = np.array([0.80, 0.85, 0.60, 0.60, 0.80, 0.85, 0.70, 0.55])
    expected = stats.wilcoxon(row, column)
    statistic, p_value, sign = compare_pair(row, column, "signedrank")
    w_plus, w_minus = signed_rank_sums(row, column)
    # Six non-zero differences: the ranks sum to 6 * 7 / 2; scipy's two-sided statistic is min(W+, W-).
    assert w_plus + w_minus == 21 and min(w_plus, w_minus) == expected.statistic == 4
    assert statistic == w_plus - w_minus == 13
    assert p_value == expected.pvalue
    assert sign == 1


def test_all_zero_differences_report_p_one():
    scores = np.linspace(0.5, 0.9, 30)
    # scipy's default (normal approximation for n = 30 with zeros) has nothing to rank: NaN.
    with pytest.warns(RuntimeWarning):
        assert np.isnan(stats.wilcoxon(scores, scores).pvalue)
    statistic, p_value, sign = compare_pair(scores, scores.copy(), "signedrank")
    assert (p_value, sign) == (1.0, 0)
    # Few cases: scipy's exact distribution already gives 1; passed through unchanged.
    with pytest.warns(RuntimeWarning):
        expected = stats.wilcoxon(scores[:4], scores[:4]).pvalue
    assert compare_pair(scores[:4], scores[:4], "signedrank")[1] == expected == 1.0


def test_rank_sum_is_scipys_ranksums_and_sign_follows_the_statistic():
    better = np.array([0.9, 0.85, 0.95, 0.88, 0.91, 0.9])
    worse = np.array([0.7, 0.85, 0.6, 0.75, 0.8, 0.72])
    expected = stats.ranksums(better, worse)
    assert compare_pair(better, worse, "ranksum") == (expected.statistic, expected.pvalue, 1)
    assert compare_pair(worse, better, "ranksum")[2] == -1
    with pytest.raises(ValueError, match="unknown test"):
        compare_pair(better, worse, "ttest")


def test_holm_adjustment_hand_checked():
    # m = 4. Sorted raw p: 0.005, 0.01, 0.03, 0.04, multiplied by 4, 3, 2, 1:
    #   0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06 (a later p may not
    #   fall below an earlier one: running maximum). Back in the given order:
    #   0.01 -> 0.03, 0.04 -> 0.06, 0.03 -> 0.06, 0.005 -> 0.02.
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Capped at 1: 0.6*2 = 1.2 -> 1, then max(1, 0.7) = 1.
    assert holm_adjust([0.7, 0.6]) == pytest.approx([1.0, 1.0])


def test_pairwise_tests_match_scipy_and_statsmodels_on_the_same_data():
    rng = np.random.default_rng(7)
    base = rng.uniform(0.6, 0.9, 15)
    scores = {"A": base, "B": base + rng.normal(0.03, 0.02, 15), "C": base - 0.05, "D": base + rng.normal(0, 0.05, 15)}
    for test, scipy_test in (("signedrank", stats.wilcoxon), ("ranksum", stats.ranksums)):
        results = pairwise_tests(scores, test)
        # Lower triangle, row after column in the given order.
        pairs = [(row, column) for column, row in itertools.combinations("ABCD", 2)]
        assert [(r.row, r.column) for r in results] == pairs
        raw = [scipy_test(scores[row], scores[column]).pvalue for row, column in pairs]
        adjusted = multipletests(raw, method="holm")[1]
        assert [r.p_value for r in results] == pytest.approx(raw, rel=1e-12)
        assert [r.p_adjusted for r in results] == pytest.approx(adjusted, rel=1e-12)
    signs = {(r.row, r.column): r.sign for r in pairwise_tests(scores)}
    assert signs["B", "A"] == 1 and signs["C", "A"] == -1 and signs["C", "B"] == -1


def test_pairwise_tests_need_two_losses():
    with pytest.raises(ValueError, match="two losses"):
        pairwise_tests({"A": [0.1, 0.2]})


@pytest.mark.parametrize(
    "p_value, stars",
    [
        (0.0009, "***"),
        (0.001, "**"),
        (0.0099, "**"),
        (0.01, "*"),
        (0.0499, "*"),
        (0.05, ""),
        (1.0, ""),
    ],
)
def test_significance_stars(p_value, stars):
    assert significance_stars(p_value) == stars
