"""The papers' tables from finished runs, as Markdown, LaTeX (booktabs) and CSV.

* Performance (Tables 1 and 3 of the Mixed Focal paper): one row per loss,
  one column per class and metric, ``mean ± half-width`` of the 95 % Student t
  interval over cases or over fold means (``pipeline.evaluation.methods``);
  the best mean of each column, compared exactly as printed, in bold.
* p-values (Tables 2 and 4): one matrix per class, row loss against column
  loss in the lower triangle, Holm-adjusted p-values with the direction of the
  effect and stars (``statistics.pairwise_tests``).
* Where a paper table's numbers survived (``pipeline.evaluation.published``),
  a "published" row and an "ours − published" row follow our row, and the
  p-value file lists the published p-values beside ours.

The metric is a parameter everywhere: ``METRIC_TITLES`` names it and
``metrics.LOWER_IS_BETTER`` says which direction is better (a lower-is-better
metric such as HD95 bolds the lowest mean and turns (+) into "row lower").
"""

from __future__ import annotations

import io
import math
from typing import Mapping, Sequence

import pandas as pd

from pipeline.evaluation.methods import PROJECT, StatisticsMethod
from pipeline.evaluation.metrics import METRICS, higher_is_better
from pipeline.evaluation.published import PublishedValue
from pipeline.evaluation.runs import Run
from pipeline.evaluation.statistics import (
    SIGN_DESCRIPTIONS,
    STATISTIC_DESCRIPTIONS,
    TEST_DESCRIPTIONS,
    BootstrapDifference,
    PairTest,
    fold_means,
    seed_sd,
    significance_stars,
    t_confidence_interval,
)

METRIC_TITLES = {
    "dsc": "DSC",
    "precision": "Precision",
    "recall": "Recall",
    "hd95": "HD95 (mm)",
    "nsd": "NSD",
    "ece": "ECE",
    "brier": "Brier",
    "nll": "NLL",
}
"""Column titles per metric; a metric not listed is shown upper-cased."""

SIGN_TEXT = {1: "+", -1: "−", 0: "="}
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": "$<$",
    ">": "$>$",
    "±": r"$\pm$",
    "−": "$-$",
    "–": "--",
}
LATEX_PREAMBLE_NOTE = r"% needs \usepackage{booktabs} (\toprule, \midrule, \bottomrule)"

PublishedRows = Mapping[str, Mapping[tuple[str, str], PublishedValue]]
"""Run label -> {(class, metric): published value}, for the rows that have one."""


def metric_title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric.upper())


def latex_escape(text: str) -> str:
    """Plain text for pdflatex: special characters escaped, the few non-ASCII signs used here as math."""
    return "".join(LATEX_SPECIALS.get(character, character) for character in text)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _latex_table(caption: str, label: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
        LATEX_PREAMBLE_NOTE,
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{l" + "c" * (len(headers) - 1) + "}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
        *(" & ".join(row) + r" \\" for row in rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines)


def _csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


def format_number(value: float, decimals: int) -> str:
    """The one rounding every table uses, for printing and for choosing the bold cell."""
    return f"{value:.{decimals}f}"


def format_difference(value: float, decimals: int) -> str:
    text = format_number(value, decimals)
    return text if text.startswith("-") else f"+{text}"


# --- performance -----------------------------------------------------------------------------


def performance_summary(
    runs: Sequence[Run], method: StatisticsMethod = PROJECT, metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Mean and confidence interval per loss, class and metric.

    Over cases (``method.interval == "cases"``) or over the fold means
    (``"folds"``; the mean is then the mean of the fold means). Returns one row
    per ``(loss, class, metric)`` in table order with columns ``loss, class,
    metric, interval, n, mean, ci_low, ci_high, ci_half_width``; ``n`` counts
    the values the interval is over (cases or folds).

    When a run has several seeds, every value is a case's mean over its seeds
    and two columns follow: ``seeds`` (how many) and ``seed_sd``, the SD over
    seeds of the same mean computed from each seed alone (NaN for one seed).
    Without seeds the frame is exactly as before seeds existed.
    """
    seeded = any(run.seeds() for run in runs)
    rows = []
    for run in runs:
        for class_name in run.class_names():
            folds = run.per_case(class_name, "fold").to_numpy()
            for metric in metrics:
                values = run.per_case(class_name, metric).to_numpy()
                if method.interval == "folds":
                    values = fold_means(values, folds)
                interval = t_confidence_interval(values, method.confidence)
                rows.append(
                    {
                        "loss": run.label,
                        "class": class_name,
                        "metric": metric,
                        "interval": method.interval,
                        "n": interval.n,
                        "mean": interval.mean,
                        "ci_low": interval.low,
                        "ci_high": interval.high,
                        "ci_half_width": interval.half_width,
                    }
                )
                if seeded:
                    per_seed = run.per_seed(class_name, metric)
                    means = [
                        fold_means(per_seed[seed].to_numpy(), folds).mean()
                        if method.interval == "folds"
                        else per_seed[seed].mean()
                        for seed in per_seed.columns
                    ]
                    rows[-1].update({"seeds": len(means), "seed_sd": seed_sd(means)})
    return pd.DataFrame(rows)


def _interval_text(mean: float, half_width: float | None, decimals: int, plus_minus: str) -> str:
    """``mean ± half-width``; ``n/a`` for an undefined width, the mean alone when no width was published."""
    text = format_number(mean, decimals)
    if half_width is None:
        return text
    width = "n/a" if math.isnan(half_width) else format_number(half_width, decimals)
    return f"{text}{plus_minus}{width}"


def _performance_rows(
    summary: pd.DataFrame, decimals: int, plus_minus: str, bold: str, published: PublishedRows
) -> tuple[list[tuple[str, str]], list[tuple[str, list[str]]]]:
    """Columns ``(class, metric)`` and rows of formatted cells; the best printed mean of each column bold.

    Published values add a ``"<loss>, published"`` row and a ``"<loss>, ours − published"`` row
    (difference of the means, '–' where nothing was published).
    """
    columns = list(dict.fromkeys(zip(summary["class"], summary["metric"])))
    losses = list(dict.fromkeys(summary["loss"]))
    table = summary.set_index(["loss", "class", "metric"])
    best = {}
    for column in columns:
        printed = [float(format_number(mean, decimals)) for mean in table.xs(column, level=("class", "metric"))["mean"]]
        best[column] = max(printed) if higher_is_better(column[1]) else min(printed)
    rows = []
    for loss in losses:
        cells = []
        for column in columns:
            mean, half_width = table.loc[(loss, *column), ["mean", "ci_half_width"]]
            text = _interval_text(mean, half_width, decimals, plus_minus)
            if "seed_sd" in table.columns:
                sd = table.loc[(loss, *column), "seed_sd"]
                text += f" (seed SD {'n/a' if math.isnan(sd) else format_number(sd, decimals)})"
            cells.append(bold.format(text) if float(format_number(mean, decimals)) == best[column] else text)
        rows.append((loss, cells))
        if loss in published:
            values = published[loss]
            rows.append(
                (
                    f"{loss}, published",
                    [
                        _interval_text(values[column].mean, values[column].half_width, decimals, plus_minus)
                        if column in values
                        else "–"
                        for column in columns
                    ],
                )
            )
            rows.append(
                (
                    f"{loss}, ours − published",
                    [
                        format_difference(table.loc[(loss, *column), "mean"] - values[column].mean, decimals)
                        if column in values
                        else "–"
                        for column in columns
                    ],
                )
            )
    return columns, rows


def _performance_caption(
    summary: pd.DataFrame, method: StatisticsMethod, published_source: str | None, latex: bool
) -> str:
    n = int(summary["n"].max())
    quantile = (1 + method.confidence) / 2
    formula = (
        rf"$\bar{{x}} \pm t_{{{quantile:g},\,n-1}}\,s/\sqrt{{n}}$" if latex else f"mean ± t_{quantile:g},n−1 · s/√n"
    )
    metrics = list(dict.fromkeys(summary["metric"]))
    lower = [metric_title(metric) for metric in metrics if not higher_is_better(metric)]
    text = latex_escape if latex else str
    caption = (
        text(f"Performance per loss: mean ± half-width of the {method.interval_text(n)} (")
        + formula
        + text(
            ("; the mean is the mean of the fold means" if method.interval == "folds" else "")
            + "). Bold: best mean of each column as printed (highest"
            + (f"; lowest for {', '.join(lower)}). " if lower else "). ")
            + method.sentence()
        )
    )
    if "seeds" in summary.columns:
        caption += text(
            f" Several training seeds (up to {int(summary['seeds'].max())}): every value is a case's "
            "mean over its seeds; (seed SD) is the SD over seeds of the mean computed from each seed "
            "alone, n/a for a run of one seed."
        )
    if published_source:
        caption += text(f" Published: {published_source}; '–' where no value survived.")
    return caption


def performance_markdown(
    summary: pd.DataFrame,
    method: StatisticsMethod = PROJECT,
    decimals: int = 3,
    published: PublishedRows | None = None,
    published_source: str | None = None,
) -> str:
    """The performance table in Markdown, caption first."""
    columns, rows = _performance_rows(summary, decimals, " ± ", "**{}**", published or {})
    headers = ["Loss", *(f"{metric_title(metric)} {class_name}" for class_name, metric in columns)]
    table = _markdown_table(headers, [[loss, *cells] for loss, cells in rows])
    return f"Table: {_performance_caption(summary, method, published_source, latex=False)}\n\n{table}\n"


def performance_latex(
    summary: pd.DataFrame,
    method: StatisticsMethod = PROJECT,
    decimals: int = 3,
    published: PublishedRows | None = None,
    published_source: str | None = None,
) -> str:
    """The performance table as a LaTeX booktabs ``table`` environment."""
    columns, rows = _performance_rows(summary, decimals, r" $\pm$ ", r"\textbf{{{}}}", published or {})
    headers = ["Loss", *(f"{metric_title(metric)} {latex_escape(class_name)}" for class_name, metric in columns)]
    body = [
        [latex_escape(loss), *(cell if "$" in cell or "textbf" in cell else latex_escape(cell) for cell in cells)]
        for loss, cells in rows
    ]
    caption = _performance_caption(summary, method, published_source, latex=True)
    return _latex_table(caption, "tab:performance", headers, body) + "\n"


def performance_csv(summary: pd.DataFrame) -> str:
    """The performance numbers unrounded, one row per loss, class and metric."""
    return _csv(summary)


# --- p-values --------------------------------------------------------------------------------


def format_p_value(p_value: float, latex: bool = False) -> str:
    """Three significant digits; below 0.001 in scientific notation (``2.52e-05``)."""
    if p_value >= 0.001:
        return f"{p_value:#.3g}"
    mantissa, exponent = f"{p_value:.2e}".split("e")
    return rf"${mantissa} \times 10^{{{int(exponent)}}}$" if latex else f"{mantissa}e{exponent}"


def better_sign(pair: PairTest, metric: str) -> int:
    """+1 when the row loss is better on ``metric``, -1 when worse, 0 when neither."""
    return pair.sign if higher_is_better(metric) else -pair.sign


def _pvalue_rows(tests: Sequence[PairTest], labels: Sequence[str], cell, diagonal: str) -> list[list[str]]:
    """Square matrix over ``labels``: tests in the lower triangle, ``diagonal`` on the diagonal."""
    by_pair = {(test.row, test.column): test for test in tests}
    return [
        [
            row_label,
            *(
                cell(by_pair[row_label, column_label])
                if (row_label, column_label) in by_pair
                else (diagonal if row_label == column_label else "")
                for column_label in labels
            ),
        ]
        for row_label in labels
    ]


def _pvalue_caption(class_name: str, method: StatisticsMethod, n_cases: int, n_pairs: int, metric: str) -> str:
    direction = "higher" if higher_is_better(metric) else "lower"
    return (
        f"Holm–Bonferroni adjusted p-values over the {n_pairs} pair{'' if n_pairs == 1 else 's'} of this table, "
        f"{class_name} "
        f"{metric_title(metric)}, n = {n_cases} cases: {TEST_DESCRIPTIONS[method.test]}. Row loss compared with "
        f"column loss: (+) row better ({direction} {metric_title(metric)}), (−) row worse, (=) neither; "
        f"{SIGN_DESCRIPTIONS[method.test]}. * p < 0.05, ** p < 0.01, *** p < 0.001. {method.sentence()}"
    )


def _published_pvalue_rows(tests: Sequence[PairTest], published: Mapping[tuple[str, str], float]) -> list[list[str]]:
    """Row, column, ours, published and ours − published for every published pair we computed."""
    rows = []
    for pair in tests:
        if (pair.row, pair.column) in published:
            theirs = published[pair.row, pair.column]
            rows.append(
                [
                    pair.row,
                    pair.column,
                    format_p_value(pair.p_adjusted),
                    format_p_value(theirs),
                    format_difference(pair.p_adjusted - theirs, 3),
                ]
            )
    return rows


PUBLISHED_PVALUE_HEADERS = ["Row", "Column", "Ours", "Published", "Ours − published"]


def pvalue_markdown(
    tests: Sequence[PairTest],
    labels: Sequence[str],
    class_name: str,
    method: StatisticsMethod,
    n_cases: int,
    metric: str = "dsc",
    published: Mapping[tuple[str, str], float] | None = None,
    published_source: str | None = None,
) -> str:
    """One class's p-value matrix in Markdown, caption first; the published p-values after it."""
    rows = _pvalue_rows(
        tests,
        labels,
        lambda pair: (
            f"{format_p_value(pair.p_adjusted)}{significance_stars(pair.p_adjusted)} "
            f"({SIGN_TEXT[better_sign(pair, metric)]})"
        ),
        diagonal="–",
    )
    table = _markdown_table(["", *labels], rows)
    text = f"Table: {_pvalue_caption(class_name, method, n_cases, len(tests), metric)}\n\n{table}\n"
    published_rows = _published_pvalue_rows(tests, published or {})
    if published_rows:
        text += (
            f"\nTable: Published adjusted p-values beside ours ({published_source}).\n\n"
            f"{_markdown_table(PUBLISHED_PVALUE_HEADERS, published_rows)}\n"
        )
    return text


def pvalue_latex(
    tests: Sequence[PairTest],
    labels: Sequence[str],
    class_name: str,
    method: StatisticsMethod,
    n_cases: int,
    metric: str = "dsc",
    published: Mapping[tuple[str, str], float] | None = None,
    published_source: str | None = None,
) -> str:
    """One class's p-value matrix as a LaTeX booktabs ``table``; the published p-values as a second one."""
    rows = _pvalue_rows(
        tests,
        labels,
        lambda pair: (
            f"{format_p_value(pair.p_adjusted, latex=True)}{significance_stars(pair.p_adjusted)} "
            f"({latex_escape(SIGN_TEXT[better_sign(pair, metric)])})"
        ),
        diagonal="--",
    )
    rows = [[latex_escape(label), *cells] for label, *cells in rows]
    caption = latex_escape(_pvalue_caption(class_name, method, n_cases, len(tests), metric))
    headers = ["", *(latex_escape(label) for label in labels)]
    text = _latex_table(caption, f"tab:pvalues-{class_name}", headers, rows) + "\n"
    published_rows = _published_pvalue_rows(tests, published or {})
    if published_rows:
        text += (
            _latex_table(
                latex_escape(f"Published adjusted p-values beside ours ({published_source})."),
                f"tab:pvalues-{class_name}-published",
                [latex_escape(h) for h in PUBLISHED_PVALUE_HEADERS],
                [[latex_escape(cell) for cell in row] for row in published_rows],
            )
            + "\n"
        )
    return text


def pvalue_csv(
    tests: Sequence[PairTest],
    class_name: str,
    method: StatisticsMethod,
    metric: str = "dsc",
    published: Mapping[tuple[str, str], float] | None = None,
) -> str:
    """One class's tests unrounded: statistic (defined in its own column), raw and adjusted p-value, sign."""
    published = published or {}
    return _csv(
        pd.DataFrame(
            [
                {
                    "class": class_name,
                    "metric": metric,
                    "row": pair.row,
                    "column": pair.column,
                    "test": method.test,
                    "statistic": pair.statistic,
                    "statistic_definition": STATISTIC_DESCRIPTIONS[method.test],
                    "p_value": pair.p_value,
                    "p_holm": pair.p_adjusted,
                    "family_size": len(tests),
                    "sign": pair.sign,
                    "row_better": better_sign(pair, metric),
                    "p_holm_published": published.get((pair.row, pair.column), float("nan")),
                }
                for pair in tests
            ]
        )
    )


# --- differences across seeds ----------------------------------------------------------------

DIFFERENCE_HEADERS = [
    "Row",
    "Column",
    "Difference",
    "95 % interval, cases and seeds",
    "95 % interval, cases only",
    "Seed SD row",
    "Seed SD column",
]


def _difference_caption(class_name: str, metric: str, n_cases: int, samples: int) -> str:
    return (
        f"Difference of mean {class_name} {metric_title(metric)} (row − column; each case averaged over its "
        f"seeds), n = {n_cases} cases, with 95 % percentile intervals of a two-level bootstrap ({samples} "
        "replicates: cases resampled, then each loss's seeds) and of the cases alone (seeds held fixed). "
        "Seed SD: SD over seeds of each loss's mean. Where the two-level interval is much wider than the "
        "cases-only one, seed noise decides the comparison."
    )


def _difference_number(value: float, decimals: int) -> str:
    return "n/a" if math.isnan(value) else format_number(value, decimals)


def difference_rows(
    differences: Sequence[tuple[str, str, BootstrapDifference]], seed_sds: Mapping[str, float], decimals: int = 3
) -> list[list[str]]:
    """Formatted table rows: the pair, the difference, both intervals and each loss's seed SD."""
    return [
        [
            row,
            column,
            format_difference(result.difference, decimals),
            f"[{format_number(result.low, decimals)}, {format_number(result.high, decimals)}]",
            f"[{format_number(result.case_low, decimals)}, {format_number(result.case_high, decimals)}]",
            _difference_number(seed_sds[row], decimals),
            _difference_number(seed_sds[column], decimals),
        ]
        for row, column, result in differences
    ]


def difference_markdown(
    differences: Sequence[tuple[str, str, BootstrapDifference]],
    seed_sds: Mapping[str, float],
    class_name: str,
    metric: str,
    n_cases: int,
    decimals: int = 3,
) -> str:
    """One class's pairwise differences with their bootstrap intervals in Markdown, caption first."""
    samples = differences[0][2].samples
    table = _markdown_table(DIFFERENCE_HEADERS, difference_rows(differences, seed_sds, decimals))
    return f"Table: {_difference_caption(class_name, metric, n_cases, samples)}\n\n{table}\n"


def difference_csv(
    differences: Sequence[tuple[str, str, BootstrapDifference]],
    seed_sds: Mapping[str, float],
    class_name: str,
    metric: str,
    seeds: Mapping[str, int],
) -> str:
    """One class's differences unrounded: both intervals, each loss's seeds and seed SD."""
    return _csv(
        pd.DataFrame(
            [
                {
                    "class": class_name,
                    "metric": metric,
                    "row": row,
                    "column": column,
                    "difference": result.difference,
                    "ci_low": result.low,
                    "ci_high": result.high,
                    "case_ci_low": result.case_low,
                    "case_ci_high": result.case_high,
                    "bootstrap_samples": result.samples,
                    "row_seeds": seeds[row],
                    "column_seeds": seeds[column],
                    "row_seed_sd": seed_sds[row],
                    "column_seed_sd": seed_sds[column],
                }
                for row, column, result in differences
            ]
        )
    )
