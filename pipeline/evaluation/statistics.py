"""Confidence intervals and pairwise tests for comparing losses (SPEC.md section 3).

* Confidence interval of a mean: the Student t interval
  ``mean ± t_{0.975, n-1} · s / sqrt(n)`` with ``s`` the sample standard
  deviation (``ddof=1``); the same numbers as ``scipy.stats.t.interval``.
  Over cases (the project's default) or over the fold means (the papers' ±;
  ``fold_means``), as ``pipeline.evaluation.methods`` chooses.
* Pairwise tests on per-case scores, two-sided, every pair of losses:
  ``"signedrank"`` (default) is the paired Wilcoxon signed-rank test
  ``scipy.stats.wilcoxon(row, column)``, sound because every loss is scored on
  the same cases; ``"ranksum"`` is the unpaired Wilcoxon rank-sum test
  ``scipy.stats.ranksums(row, column)`` that the Mixed Focal paper names
  ("pair-wise Wilcoxon rank sum tests", computed with SciPy): SciPy's function
  of that name, a normal approximation whose variance is *not* corrected for
  ties (tied values get average ranks) and has no continuity correction.
  Both are called with scipy's defaults, so zero differences and ties are
  handled exactly as scipy handles them.
* ``statistic`` means one thing per test (``STATISTIC_DESCRIPTIONS``):
  signed-rank: ``W+ − W−``, the sum of the ranks of the positive minus that of
  the negative differences row − column (zero differences dropped, as scipy's
  default ``zero_method="wilcox"``; ties get average ranks), whose sign is the
  direction of the result; rank-sum: scipy's z statistic, positive when the
  row's values rank higher.
* The p-values of all pairs of one table (one class of one comparison) are
  adjusted together with Holm–Bonferroni (Holm 1979) via ``statsmodels``'
  ``multipletests``.

* Several training seeds (SPEC.md section 5): every test and interval above
  is over the per-case means over seeds, so the unit stays the case. Beside a
  mean, ``seed_sd`` is the SD (``ddof=1``) over seeds of the per-seed mean
  (the same statistic computed from one seed's scores alone). For a pair of
  losses, ``two_level_bootstrap`` gives the difference of the means with a
  95 % percentile interval that includes the seed noise: each of
  ``BOOTSTRAP_SAMPLES`` replicates resamples the cases (with replacement, the
  same cases for both losses: they are paired), then each loss's seeds (with
  replacement, one draw per loss and replicate: a seed is one trained network
  shared by every case), and takes the difference of the means of the
  resampled (case, seed) scores. The replicates of each pair come from a fresh
  ``numpy.random.default_rng(seed)``: cases first (``integers(0, n, (B, n))``),
  then the row loss's seeds (``integers(0, S_row, (B, S_row))``), then the
  column loss's (``integers(0, S_column, (B, S_column))``). The interval with
  the seeds held fixed (cases only) is reported beside it.

References: Wilcoxon, F. (1945) Individual comparisons by ranking methods;
Holm, S. (1979) A simple sequentially rejective multiple test procedure.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from pipeline.console import lazy_module

stats = lazy_module("scipy.stats")  # imported when a test runs, not to build a parser
multitest = lazy_module("statsmodels.stats.multitest")

TESTS = ("signedrank", "ranksum")
"""Names of the pairwise tests ``pairwise_tests`` offers."""

TEST_DESCRIPTIONS = {
    "signedrank": "two-sided Wilcoxon signed-rank test paired by case (scipy.stats.wilcoxon)",
    "ranksum": "two-sided Wilcoxon rank-sum test (scipy.stats.ranksums)",
}

STATISTIC_DESCRIPTIONS = {
    "signedrank": "W+ − W−: rank sum of the positive minus that of the negative per-case differences row − column "
    "(zero differences dropped, ties averaged)",
    "ranksum": "z of scipy.stats.ranksums(row, column): positive when the row's per-case values rank higher",
}
"""What the ``statistic`` of a ``PairTest`` is, per test; its sign is the direction of the result."""

SIGN_DESCRIPTIONS = {
    "signedrank": "sign of W+ − W− of the per-case differences row − column",
    "ranksum": "sign of the rank-sum z statistic of row against column",
}

BOOTSTRAP_SAMPLES = 10000
"""Replicates of the two-level bootstrap of a difference between losses (``compare-losses --bootstrap``)."""
BOOTSTRAP_SEED = 0
"""Seed of every pair's bootstrap generator, so that the same runs give the same intervals."""

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


def fold_means(values: Sequence[float], folds: Sequence[int]) -> np.ndarray:
    """Mean of ``values`` per fold, in ascending fold order (the papers' ± is over these)."""
    values = np.asarray(values, dtype=np.float64)
    folds = np.asarray(folds)
    if values.shape != folds.shape:
        raise ValueError(f"{values.size} values but {folds.size} fold numbers")
    return np.array([values[folds == fold].mean() for fold in np.unique(folds)])


def signed_rank_sums(row: Sequence[float], column: Sequence[float]) -> tuple[float, float]:
    """``(W+, W−)``: rank sums of the positive and of the negative differences ``row − column``.

    Zero differences are dropped and ties get average ranks, as in
    ``scipy.stats.wilcoxon``'s default; two-sided scipy reports ``min(W+, W−)``.
    """
    differences = np.asarray(row, dtype=np.float64) - np.asarray(column, dtype=np.float64)
    differences = differences[differences != 0]
    ranks = stats.rankdata(np.abs(differences))
    return float(ranks[differences > 0].sum()), float(ranks[differences < 0].sum())


@dataclass(frozen=True)
class PairTest:
    """One test of ``row`` against ``column`` on per-case scores.

    ``statistic`` is ``STATISTIC_DESCRIPTIONS[test]``. ``sign`` is its sign:
    +1 when ``row`` scores higher, -1 when lower, 0 when neither. ``p_value``
    is unadjusted; ``p_adjusted`` the Holm-adjusted value within its family.
    """

    row: str
    column: str
    statistic: float
    p_value: float
    p_adjusted: float
    sign: int


def compare_pair(row: Sequence[float], column: Sequence[float], test: str = "signedrank") -> tuple[float, float, int]:
    """Two-sided test of ``row`` against ``column``: ``(statistic, p_value, sign)``.

    ``statistic`` is ``STATISTIC_DESCRIPTIONS[test]`` and ``sign`` its sign.

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
            p_value = float(stats.wilcoxon(row, column).pvalue)
        w_plus, w_minus = signed_rank_sums(row, column)
        statistic = w_plus - w_minus
    elif test == "ranksum":
        result = stats.ranksums(row, column)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    else:
        raise ValueError(f"unknown test {test!r}; choose one of: {', '.join(TESTS)}")
    if np.isnan(p_value):
        p_value = 1.0
    return statistic, p_value, int(np.sign(statistic))


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the order given.

    The i-th smallest of m p-values becomes ``max_{j<=i} min(1, (m - j + 1) p_(j))``.
    """
    return multitest.multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1]


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


def seed_sd(per_seed_values: Sequence[float]) -> float:
    """SD (``ddof=1``) over seeds of a statistic computed per seed; NaN for a single seed."""
    values = np.asarray(per_seed_values, dtype=np.float64)
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


@dataclass(frozen=True)
class BootstrapDifference:
    """Mean of ``row`` minus mean of ``column`` (per-case means over seeds), with two 95 % bootstrap intervals.

    ``low, high``: the two-level interval (cases, then seeds within each loss); ``case_low, case_high``:
    cases only, each case's mean over seeds held fixed. ``samples`` replicates.
    """

    difference: float
    low: float
    high: float
    case_low: float
    case_high: float
    samples: int


def two_level_bootstrap(
    row: np.ndarray,
    column: np.ndarray,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = 0.95,
) -> BootstrapDifference:
    """Difference of means with the percentile intervals of the module doc's two-level bootstrap.

    Args:
        row, column: ``(cases, seeds)`` scores of two losses, the same cases in the same row order; the
            numbers of seeds may differ (a one-seed run is a single column).
        samples: bootstrap replicates.
        seed: seed of the replicates' generator.
        confidence: coverage of the percentile intervals.
    """
    row = np.asarray(row, dtype=np.float64)
    column = np.asarray(column, dtype=np.float64)
    if row.ndim != 2 or column.ndim != 2 or row.shape[0] != column.shape[0] or row.shape[0] == 0:
        raise ValueError(f"expected (cases, seeds) scores of the same cases, got {row.shape} and {column.shape}")
    rng = np.random.default_rng(seed)
    cases = rng.integers(0, row.shape[0], size=(samples, row.shape[0]))
    row_seeds = rng.integers(0, row.shape[1], size=(samples, row.shape[1]))
    column_seeds = rng.integers(0, column.shape[1], size=(samples, column.shape[1]))
    two_level = resampled_means(row, cases, row_seeds) - resampled_means(column, cases, column_seeds)
    case_only = row.mean(axis=1)[cases].mean(axis=1) - column.mean(axis=1)[cases].mean(axis=1)
    tails = [(1 - confidence) / 2, (1 + confidence) / 2]
    low, high = np.quantile(two_level, tails)
    case_low, case_high = np.quantile(case_only, tails)
    return BootstrapDifference(
        float(row.mean() - column.mean()), float(low), float(high), float(case_low), float(case_high), samples
    )


def resampled_means(scores: np.ndarray, cases: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Per replicate b: the mean of ``scores[cases[b, i], seeds[b, j]]`` over every i and j.

    The mean over the drawn seeds is taken per case first, one block of replicates at a time
    (memory: cases x block x seeds).
    """
    means = np.empty(cases.shape[0])
    block = 1000
    for start in range(0, cases.shape[0], block):
        stop = min(start + block, cases.shape[0])
        seed_means = scores[:, seeds[start:stop]].mean(axis=2)  # (cases, block): each case over the drawn seeds
        means[start:stop] = np.take_along_axis(seed_means.T, cases[start:stop], axis=1).mean(axis=1)
    return means
