"""The papers' tables from finished runs, as Markdown, LaTeX (booktabs) and CSV.

* Performance (Tables 1 and 3 of the Mixed Focal paper): one row per loss,
  one column per class and metric, ``mean ± half-width`` of the 95 % Student t
  interval over cases (``statistics.t_confidence_interval``); the best mean of
  each column, compared as displayed, in bold.
* p-values (Tables 2 and 4): one matrix per class, row loss against column
  loss in the lower triangle, Holm-adjusted p-values with the sign of the
  effect and stars (``statistics.pairwise_tests``).
"""

from __future__ import annotations

import io
import math
from typing import Sequence

import pandas as pd

from pipeline.evaluation.metrics import METRICS
from pipeline.evaluation.runs import Run
from pipeline.evaluation.statistics import (
    SIGN_DESCRIPTIONS,
    TEST_DESCRIPTIONS,
    PairTest,
    significance_stars,
    t_confidence_interval,
)

METRIC_TITLES = {"dsc": "DSC", "precision": "Precision", "recall": "Recall"}
SIGN_TEXT = {1: "+", -1: "−", 0: "="}
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": "$<$", ">": "$>$", "±": r"$\pm$", "−": "$-$", "–": "--",
}


def latex_escape(text: str) -> str:
    """Plain text for pdflatex: special characters escaped, the few non-ASCII signs used here as math."""
    return "".join(LATEX_SPECIALS.get(character, character) for character in text)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _latex_table(caption: str, label: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [
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


# --- performance -----------------------------------------------------------------------------

def performance_summary(runs: Sequence[Run], confidence: float = 0.95) -> pd.DataFrame:
    """Mean and confidence interval per loss, class and metric, over cases.

    Returns one row per ``(loss, class, metric)`` in table order with columns
    ``loss, class, metric, n, mean, ci_low, ci_high, ci_half_width``.
    """
    rows = []
    for run in runs:
        for class_name in run.class_names():
            for metric in METRICS:
                interval = t_confidence_interval(run.per_case(class_name, metric), confidence)
                rows.append({
                    "loss": run.label, "class": class_name, "metric": metric, "n": interval.n,
                    "mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high,
                    "ci_half_width": interval.half_width,
                })
    return pd.DataFrame(rows)


def _performance_cells(summary: pd.DataFrame, decimals: int, plus_minus: str, bold: str):
    """Headers ``(class, metric)`` and rows of formatted cells, best of each column bold."""
    columns = list(dict.fromkeys(zip(summary["class"], summary["metric"])))
    losses = list(dict.fromkeys(summary["loss"]))
    table = summary.set_index(["loss", "class", "metric"])
    best = {column: table.xs(column, level=("class", "metric"))["mean"].round(decimals).max() for column in columns}
    rows = []
    for loss in losses:
        cells = []
        for column in columns:
            mean, half_width = table.loc[(loss, *column), ["mean", "ci_half_width"]]
            width = "n/a" if math.isnan(half_width) else f"{half_width:.{decimals}f}"
            text = f"{mean:.{decimals}f}{plus_minus}{width}"
            cells.append(bold.format(text) if round(mean, decimals) == best[column] else text)
        rows.append((loss, cells))
    return columns, rows


def _performance_caption(summary: pd.DataFrame, confidence: float, latex: bool) -> str:
    n = int(summary["n"].max())
    percent = f"{confidence * 100:g}"
    if latex:
        return (
            rf"Performance per loss: mean $\pm$ half-width of the {percent}\% confidence interval over "
            rf"$n = {n}$ cases (Student $t$ interval, $\bar{{x}} \pm t_{{{(1 + confidence) / 2:g},\,n-1}}\,s/\sqrt{{n}}$). "
            r"Bold: highest mean of each column."
        )
    return (
        f"Performance per loss: mean ± half-width of the {percent}% confidence interval over "
        f"n = {n} cases (Student t interval, mean ± t_{(1 + confidence) / 2:g},n−1 · s/√n). "
        "Bold: highest mean of each column."
    )


def performance_markdown(summary: pd.DataFrame, confidence: float = 0.95, decimals: int = 3) -> str:
    """The performance table in Markdown, caption first."""
    columns, rows = _performance_cells(summary, decimals, " ± ", "**{}**")
    headers = ["Loss", *(f"{METRIC_TITLES[metric]} {class_name}" for class_name, metric in columns)]
    table = _markdown_table(headers, [[loss, *cells] for loss, cells in rows])
    return f"Table: {_performance_caption(summary, confidence, latex=False)}\n\n{table}\n"


def performance_latex(summary: pd.DataFrame, confidence: float = 0.95, decimals: int = 3) -> str:
    """The performance table as a LaTeX booktabs ``table`` environment."""
    columns, rows = _performance_cells(summary, decimals, r" $\pm$ ", r"\textbf{{{}}}")
    headers = ["Loss", *(f"{METRIC_TITLES[metric]} {latex_escape(class_name)}" for class_name, metric in columns)]
    body = [[latex_escape(loss), *cells] for loss, cells in rows]
    return _latex_table(_performance_caption(summary, confidence, latex=True), "tab:performance", headers, body) + "\n"


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


def _pvalue_rows(tests: Sequence[PairTest], labels: Sequence[str], cell, diagonal: str) -> list[list[str]]:
    """Square matrix over ``labels``: tests in the lower triangle, ``diagonal`` on the diagonal."""
    by_pair = {(test.row, test.column): test for test in tests}
    return [
        [row_label, *(
            cell(by_pair[row_label, column_label]) if (row_label, column_label) in by_pair
            else (diagonal if row_label == column_label else "")
            for column_label in labels
        )]
        for row_label in labels
    ]


def _pvalue_caption(class_name: str, test: str, n_cases: int, n_pairs: int) -> str:
    return (
        f"Holm–Bonferroni adjusted p-values over {n_pairs} pairs, {class_name} DSC, n = {n_cases} cases: "
        f"{TEST_DESCRIPTIONS[test]}. Row loss compared with column loss: (+) row better, (−) row worse, "
        f"(=) no direction; {SIGN_DESCRIPTIONS[test]}. * p < 0.05, ** p < 0.01, *** p < 0.001."
    )


def pvalue_markdown(tests: Sequence[PairTest], labels: Sequence[str], class_name: str, test: str, n_cases: int) -> str:
    """One class's p-value matrix in Markdown, caption first."""
    rows = _pvalue_rows(
        tests, labels,
        lambda pair: f"{format_p_value(pair.p_adjusted)}{significance_stars(pair.p_adjusted)} ({SIGN_TEXT[pair.sign]})",
        diagonal="–",
    )
    table = _markdown_table(["", *labels], rows)
    return f"Table: {_pvalue_caption(class_name, test, n_cases, len(tests))}\n\n{table}\n"


def pvalue_latex(tests: Sequence[PairTest], labels: Sequence[str], class_name: str, test: str, n_cases: int) -> str:
    """One class's p-value matrix as a LaTeX booktabs ``table`` environment."""
    rows = _pvalue_rows(
        tests, labels,
        lambda pair: (
            f"{format_p_value(pair.p_adjusted, latex=True)}{significance_stars(pair.p_adjusted)} "
            f"({latex_escape(SIGN_TEXT[pair.sign])})"
        ),
        diagonal="--",
    )
    rows = [[latex_escape(label), *cells] for label, *cells in rows]
    caption = latex_escape(_pvalue_caption(class_name, test, n_cases, len(tests)))
    headers = ["", *(latex_escape(label) for label in labels)]
    return _latex_table(caption, f"tab:pvalues-{class_name}", headers, rows) + "\n"


def pvalue_csv(tests: Sequence[PairTest], class_name: str, test: str) -> str:
    """One class's tests unrounded: statistic, raw and adjusted p-value, sign."""
    return _csv(pd.DataFrame([
        {
            "class": class_name, "row": pair.row, "column": pair.column, "test": test,
            "statistic": pair.statistic, "p_value": pair.p_value,
            "p_holm": pair.p_adjusted, "sign": pair.sign,
        }
        for pair in tests
    ]))
