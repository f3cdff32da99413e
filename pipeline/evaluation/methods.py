"""How ``compare-losses`` computes its statistics, chosen in one place and named in every caption.

Two presets (SPEC.md section 3):

* ``PROJECT`` (the default): paired Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``), mean ± 95 % Student t interval over cases.
  Every loss is scored on the same cases, so pairing by case is the sounder
  test, and the interval over cases describes the spread the tests work on.
* ``PAPER`` (``--paper``): the Yeung et al. papers' computation, to put our
  numbers beside theirs: unpaired Wilcoxon rank-sum test
  (``scipy.stats.ranksums``: SciPy's function of the name the paper gives, a
  normal approximation without tie or continuity correction), mean ± 95 %
  Student t interval over the 5 fold means. The papers do not say what their
  ± is over; over cases it cannot be (KiTS19 tumour 0.758 ± 0.066 over 204
  cases would need a per-case SD of 0.478, above the 0.429 any values in
  [0, 1] with that mean can have), over fold means it fits.

Both adjust with Holm–Bonferroni over the pairs of one table: one class of
one ``compare-losses`` call, so a paper table's family is exactly its losses.
``--test`` and ``--interval`` change either preset; the caption then says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.evaluation.statistics import TEST_DESCRIPTIONS, TESTS

INTERVALS = ("cases", "folds")
"""What a confidence interval is computed over: per-case values or per-fold means."""


@dataclass(frozen=True)
class StatisticsMethod:
    """A pairwise test, what its interval is over, and the interval's coverage."""

    name: str
    test: str
    interval: str
    confidence: float = 0.95

    def __post_init__(self):
        if self.test not in TESTS:
            raise ValueError(f"unknown test {self.test!r}; choose one of: {', '.join(TESTS)}")
        if self.interval not in INTERVALS:
            raise ValueError(f"unknown interval {self.interval!r}; choose one of: {', '.join(INTERVALS)}")

    def interval_text(self, n: int) -> str:
        """What the ± is, e.g. ``"95% Student t interval over the 5 fold means"``."""
        over = f"the {n} fold means" if self.interval == "folds" else f"n = {n} cases"
        return f"{self.confidence * 100:g}% Student t interval over {over}"

    def sentence(self) -> str:
        """The method named in one sentence, for every caption."""
        return (
            f"Statistics: {self.name}: {TEST_DESCRIPTIONS[self.test]}; Holm–Bonferroni over the pairs of "
            f"one table; ± over {'fold means' if self.interval == 'folds' else 'cases'}."
        )


PROJECT = StatisticsMethod("project default", "signedrank", "cases")
PAPER = StatisticsMethod("paper mode", "ranksum", "folds")


def choose_method(paper: bool = False, test: str | None = None, interval: str | None = None) -> StatisticsMethod:
    """The preset (``PAPER`` or ``PROJECT``), with ``test``/``interval`` replaced where given.

    A changed preset is named as such (``"paper mode, interval over cases"``),
    so a caption never claims the paper's computation when it is not.
    """
    preset = PAPER if paper else PROJECT
    chosen = replace(preset, test=test or preset.test, interval=interval or preset.interval)
    changes = [f"test {chosen.test}"] if chosen.test != preset.test else []
    changes += [f"interval over {chosen.interval}"] if chosen.interval != preset.interval else []
    return replace(chosen, name=", ".join([preset.name, *changes]))
