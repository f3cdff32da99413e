"""Confidence intervals and pairwise tests for comparing losses (SPEC.md section 3).

* Confidence interval of a mean over cases: the Student t interval
  ``mean ± t_{0.975, n-1} · s / sqrt(n)`` with ``s`` the sample standard
  deviation (``ddof=1``); the same numbers as ``scipy.stats.t.interval``.
* Pairwise tests on per-case DSC, two-sided, every pair of losses:
  ``"signedrank"`` (default) is the paired Wilcoxon signed-rank test
  ``scipy.stats.wilcoxon(row, column)``, sound because every loss is scored on
  the same cases; ``"ranksum"`` is the unpaired Wilcoxon rank-sum test
  ``scipy.stats.ranksums(row, column)`` that the Mixed Focal paper names.
  Both are called with scipy's defaults, so zero differences and ties are
  handled exactly as scipy handles them.
* The p-values of all pairs of one class are adjusted together with
  Holm–Bonferroni (Holm 1979) via ``statsmodels``' ``multipletests``.

References: Wilcoxon, F. (1945) Individual comparisons by ranking methods;
Holm, S. (1979) A simple sequentially rejective multiple test procedure.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

TESTS = ("signedrank", "ranksum")
"""Names of the pairwise tests ``pairwise_tests`` offers."""

TEST_DESCRIPTIONS = {
    "signedrank": "two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon)",
    "ranksum": "two-sided Wilcoxon rank-sum test (scipy.stats.ranksums)",
}

SIGN_DESCRIPTIONS = {
    "signedrank": "sign of the median per-case DSC difference row − column",
    "ranksum": "sign of the rank-sum statistic of row against column",
}

STAR_THRESHOLDS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
"""Significance stars for a p-value below each threshold, most significant first."""


@dataclass(frozen=True)
class ConfidenceInterval:
    """Mean of ``n`` values with the bounds of its confidence interval."""

    mean: float
    half_width: float
    low: float
    high: float
    n: int


def t_confidence_interval(values: Sequence[float], confidence: float = 0.95) -> ConfidenceInterval:
    """Student t interval of the mean: ``mean ± t_{(1+confidence)/2, n-1} · s / sqrt(n)``.

    Args:
        values: one value per case.
        confidence: coverage of the interval; default 0.95, the papers' 95 % CI.

    With a single value the width is undefined and returned as NaN; identical
    values give a zero-width interval.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n == 0:
        raise ValueError("a confidence interval needs at least one value")
    mean = float(values.mean())
    if n == 1:
        half_width = float("nan")
    else:
        standard_error = values.std(ddof=1) / np.sqrt(n)
        half_width = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * standard_error)
    return ConfidenceInterval(mean, half_width, mean - half_width, mean + half_width, n)


@dataclass(frozen=True)
class PairTest:
    """One test of ``row`` against ``column`` on per-case scores.

    ``sign`` is +1 when ``row`` scores higher, -1 when lower, 0 when the
    direction is undecided (see ``SIGN_DESCRIPTIONS``). ``p_value`` is
    unadjusted; ``p_adjusted`` the Holm-adjusted value within its family.
    """

    row: str
    column: str
    statistic: float
    p_value: float
    p_adjusted: float
    sign: int


def compare_pair(row: Sequence[float], column: Sequence[float], test: str = "signedrank") -> tuple[float, float, int]:
    """Two-sided test of ``row`` against ``column``: ``(statistic, p_value, sign)``.

    Args:
        row, column: per-case scores; for ``"signedrank"`` the same cases in
            the same order.
        test: ``"signedrank"`` (default) or ``"ranksum"``.

    When every paired difference is zero, ``scipy.stats.wilcoxon`` returns a
    NaN p-value (normal approximation) or 1 (exact distribution); NaN is
    reported as p = 1, i.e. no evidence of a difference, so that the pair still
    counts in the Holm family.
    """
    row = np.asarray(row, dtype=np.float64)
    column = np.asarray(column, dtype=np.float64)
    if test == "signedrank":
        with warnings.catch_warnings():
            # scipy warns about dividing by a zero variance when all differences are zero.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.wilcoxon(row, column)
        sign = int(np.sign(np.median(row - column)))
    elif test == "ranksum":
        result = stats.ranksums(row, column)
        sign = int(np.sign(result.statistic))
    else:
        raise ValueError(f"unknown test {test!r}; choose one of: {', '.join(TESTS)}")
    p_value = float(result.pvalue)
    if np.isnan(p_value):
        p_value = 1.0
    return float(result.statistic), p_value, sign


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the order given.

    The i-th smallest of m p-values becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``.
    """
    return multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1]


def pairwise_tests(scores: Mapping[str, Sequence[float]], test: str = "signedrank") -> list[PairTest]:
    """Every pair of losses tested once, p-values Holm-adjusted over all pairs.

    Args:
        scores: loss label -> per-case scores, all in the same case order.
        test: ``"signedrank"`` (default) or ``"ranksum"``.

    Returns one ``PairTest`` per pair ``(row, column)`` with ``row`` after
    ``column`` in the order of ``scores`` (the lower triangle of the matrix,
    as in the papers' Tables 2 and 4).
    """
    labels = list(scores)
    if len(labels) < 2:
        raise ValueError("pairwise tests need at least two losses")
    pairs = [(row, column) for column, row in itertools.combinations(labels, 2)]
    results = [compare_pair(scores[row], scores[column], test) for row, column in pairs]
    adjusted = holm_adjust([p for _, p, _ in results])
    return [
        PairTest(row, column, statistic, p_value, float(p_adjusted), sign)
        for (row, column), (statistic, p_value, sign), p_adjusted in zip(pairs, results, adjusted)
    ]


def significance_stars(p_value: float) -> str:
    """``"***"``, ``"**"``, ``"*"`` for p below 0.001, 0.01, 0.05; else ``""``."""
    for threshold, stars in STAR_THRESHOLDS:
        if p_value < threshold:
            return stars
    return ""
