"""Ranking losses across data sets, and how stable the ranking is (challengeR's methods).

A *task* is one data set and class (e.g. KiTS19 tumour): per-case scores of
every loss on the same cases. Following challengeR (Wiesenfarth et al. 2021,
"Methods and open-source toolkit for analyzing and visualizing challenge
results", Sci Rep 11:2369):

* **aggregate-then-rank** per task: the mean score of each loss, ranked with
  ``ties.method = "min"`` (challengeR's default: tied losses share the best
  of their ranks, the next rank is skipped);
* **consensus across tasks**: the mean of a loss's ranks over the tasks,
  ranked again (min ties);
* **bootstrap stability**: cases resampled with replacement within each task
  (the same resample for every loss: the scores stay paired), ranked each
  time; per loss, how often it lands at each rank (the blob plot), its median
  rank and 2.5–97.5 % rank interval, and Kendall's tau between each
  bootstrap ranking and the full one. Consensus stability resamples every
  task independently and ranks the mean ranks;
* **Friedman test** across tasks (blocks = tasks, treatments = losses, values
  = mean scores; ``scipy.stats.friedmanchisquare``) with the Nemenyi
  critical difference of the mean Friedman ranks (Demšar 2006, "Statistical
  comparisons of classifiers over multiple data sets", JMLR 7:1–30):
  ``CD = q_α · sqrt(k (k + 1) / (6 N))`` with ``q_α`` the studentised range
  quantile for ``k`` losses and infinite degrees of freedom, divided by √2.
  Friedman ranks treat ties as the average of the tied ranks, as the test
  requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.console import lazy_module

stats = lazy_module("scipy.stats")  # loaded on first use, so that --help answers at once


@dataclass(frozen=True)
class Task:
    """Per-case scores of every loss on one data set and class.

    ``scores[i, j]`` is case ``i`` under loss ``losses[j]`` (its mean over seeds when the runs had several).
    ``seed_scores``, for runs of several seeds: per loss the ``(cases, seeds)`` scores; the bootstrap then
    resamples each loss's seeds too (``bootstrap_task``).
    """

    name: str
    losses: tuple[str, ...]
    scores: np.ndarray
    higher_is_better: bool = True
    seed_scores: tuple[np.ndarray, ...] | None = None

    def __post_init__(self):
        scores = np.asarray(self.scores, dtype=np.float64)
        if scores.ndim != 2 or scores.shape[1] != len(self.losses) or scores.shape[0] == 0:
            raise ValueError(f"{self.name}: scores must be (cases, {len(self.losses)} losses), got {scores.shape}")
        object.__setattr__(self, "scores", scores)

    def ranks(self) -> np.ndarray:
        """Rank of each loss by its mean score (1 best, min ties)."""
        return rank_means(self.scores.mean(axis=0), self.higher_is_better)


def rank_means(means: np.ndarray, higher_is_better: bool = True, method: str = "min") -> np.ndarray:
    """Ranks along the last axis, 1 for the best mean; ``method`` as ``scipy.stats.rankdata``."""
    means = np.asarray(means, dtype=np.float64)
    return stats.rankdata(-means if higher_is_better else means, method=method, axis=-1)


@dataclass(frozen=True)
class BootstrapRanks:
    """Ranks of each loss in ``samples`` bootstrap resamples: ``ranks[b, j]`` for loss ``j``."""

    losses: tuple[str, ...]
    ranks: np.ndarray

    def frequencies(self) -> np.ndarray:
        """``[j, r - 1]``: share of resamples in which loss ``j`` has rank ``r``."""
        count = len(self.losses)
        return np.stack([(self.ranks == rank).mean(axis=0) for rank in range(1, count + 1)], axis=1)

    def median(self) -> np.ndarray:
        return np.median(self.ranks, axis=0)

    def interval(self, coverage: float = 0.95) -> np.ndarray:
        """``(losses, 2)``: the rank quantiles at (1 - coverage)/2 and (1 + coverage)/2."""
        low, high = (1 - coverage) / 2, (1 + coverage) / 2
        return np.quantile(self.ranks, [low, high], axis=0).T

    def kendall_tau(self, full: np.ndarray) -> float:
        """Mean Kendall's tau between each resample's ranking and ``full`` (1: always the same order)."""
        taus = [stats.kendalltau(sample, full).statistic for sample in self.ranks]
        taus = [1.0 if np.isnan(tau) else tau for tau in taus]  # a constant ranking (all tied) agrees
        return float(np.mean(taus))


def bootstrap_task(task: Task, samples: int, rng: np.random.Generator) -> BootstrapRanks:
    """Resample the task's cases ``samples`` times (paired across losses) and rank each resample.

    With ``seed_scores`` the bootstrap has two levels: after the cases, each loss's seeds are drawn
    (``rng.integers(0, S_j, (samples, S_j))``, loss by loss), and a loss's score in a replicate is the mean
    over the drawn cases of each case's mean over the drawn seeds
    (``pipeline.evaluation.statistics`` explains why seeds are drawn once per replicate).
    """
    cases = task.scores.shape[0]
    picks = rng.integers(0, cases, size=(samples, cases))
    if task.seed_scores is None:
        means = task.scores[picks].mean(axis=1)
    else:
        from pipeline.evaluation.statistics import resampled_means

        means = np.stack(
            [
                resampled_means(scores, picks, rng.integers(0, scores.shape[1], (samples, scores.shape[1])))
                for scores in task.seed_scores
            ],
            axis=1,
        )
    return BootstrapRanks(task.losses, rank_means(means, task.higher_is_better))


def consensus(ranks_per_task: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean rank of each loss over tasks (``ranks_per_task[t, j]``), and its rank (min ties)."""
    mean_ranks = np.asarray(ranks_per_task, dtype=np.float64).mean(axis=-2)
    return mean_ranks, rank_means(mean_ranks, higher_is_better=False)


def bootstrap_consensus(tasks: Sequence[Task], samples: int, rng: np.random.Generator) -> BootstrapRanks:
    """Consensus ranks when every task is resampled independently, ``samples`` times."""
    per_task = np.stack([bootstrap_task(task, samples, rng).ranks for task in tasks], axis=1)
    return BootstrapRanks(tasks[0].losses, consensus(per_task)[1])


@dataclass(frozen=True)
class FriedmanResult:
    """Friedman test over tasks with the Nemenyi critical difference of the mean ranks."""

    statistic: float
    p_value: float
    mean_ranks: np.ndarray
    critical_difference: float
    alpha: float
    tasks: int

    def different(self, first: int, second: int) -> bool:
        """Whether losses ``first`` and ``second`` differ by more than the critical difference."""
        return bool(abs(self.mean_ranks[first] - self.mean_ranks[second]) > self.critical_difference)


def nemenyi_critical_difference(losses: int, tasks: int, alpha: float = 0.05) -> float:
    """``q_α · sqrt(k (k + 1) / (6 N))`` for ``k`` losses over ``N`` tasks (Demšar 2006, section 3.2.2)."""
    q_alpha = stats.studentized_range.ppf(1 - alpha, losses, np.inf) / np.sqrt(2)
    return float(q_alpha * np.sqrt(losses * (losses + 1) / (6.0 * tasks)))


def friedman(means: np.ndarray, higher_is_better: Sequence[bool] | bool = True, alpha: float = 0.05) -> FriedmanResult:
    """Friedman test on ``means[t, j]``, the mean score of loss ``j`` in task ``t``.

    Needs at least 3 losses and 2 tasks (``scipy.stats.friedmanchisquare``).
    Where a task's score is lower-is-better, its values are negated first.
    """
    means = np.asarray(means, dtype=np.float64)
    tasks, losses = means.shape
    if losses < 3 or tasks < 2:
        raise ValueError(f"the Friedman test needs at least 3 losses and 2 tasks, got {losses} and {tasks}")
    direction = np.broadcast_to(np.where(np.asarray(higher_is_better), 1.0, -1.0), (tasks,))
    oriented = means * direction[:, None]
    result = stats.friedmanchisquare(*oriented.T)
    mean_ranks = rank_means(oriented, higher_is_better=True, method="average").mean(axis=0)
    return FriedmanResult(
        float(result.statistic),
        float(result.pvalue),
        mean_ranks,
        nemenyi_critical_difference(losses, tasks, alpha),
        alpha,
        tasks,
    )
