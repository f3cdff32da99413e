"""``sweep-report``: the response surface of a hyper-parameter sweep.

    sweep-report SWEEP_DIR --out DIR [--metric dsc]

SWEEP_DIR is the folder ``run-experiment CONFIG --sweep ...`` made (its
``sweep.json`` lists the members, see ``pipeline.sweep``); every member must
have finished. Writes, after everything is read and computed:

* ``sweep.md``, ``sweep.tex``, ``sweep.csv``: per setting and class the mean
  metric with the half-width of its 95 % Student t interval over cases, the
  best setting of each class in bold; below the table, per class, the best
  setting and the two-sided paired Wilcoxon signed-rank test
  (``scipy.stats.wilcoxon``) of the best setting against the default (the
  values without the sweep), unadjusted, one test per class;
* ``sweep_<class>.png``: a heatmap of the mean (two swept keys) or a line
  plot with the intervals (one swept key). With more keys the table is the
  report and no figure is drawn.
"""

from __future__ import annotations

import argparse
import logging
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline import console
from pipeline.evaluation.outputs import check_out_dir, write_outputs
from pipeline.errors import DataError, exits_cleanly
from pipeline.evaluation.compare import file_stem
from pipeline.evaluation.metrics import higher_is_better
from pipeline.evaluation.runs import Run, check_metric, check_paired, read_run
from pipeline.evaluation.statistics import compare_pair, t_confidence_interval
from pipeline.sweep import read_manifest

# Loaded on first use, so that --help answers at once.
pd = console.lazy_module("pandas")
tables = console.lazy_module("pipeline.evaluation.tables")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResults:
    """A finished sweep: its swept keys, default values, and one run per setting."""

    folder: Path
    keys: list[str]
    defaults: dict
    settings: list[dict]
    runs: list[Run]

    def default_index(self) -> int | None:
        """The member run with the default values, if the sweep has one."""
        wanted = _canonical(self.defaults)
        matches = [index for index, values in enumerate(self.settings) if _canonical(values) == wanted]
        return matches[0] if matches else None


def _canonical(values: dict) -> str:
    return json.dumps(values, sort_keys=True)


def load_sweep(folder) -> SweepResults:
    """Read ``sweep.json`` and every member run; refuse unfinished or unpaired members."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    runs, settings = [], []
    for member in manifest["members"]:
        run_dir = folder / member["name"]
        if not (run_dir / "metrics.csv").is_file():
            raise DataError(
                run_dir / "metrics.csv",
                "missing: this sweep member has not finished every fold "
                "(rerun the same run-experiment --sweep command)",
            )
        runs.append(read_run(run_dir))
        settings.append(member["values"])
    check_paired(runs)
    return SweepResults(folder, list(manifest["keys"]), manifest["defaults"], settings, runs)


def _setting_text(values: dict) -> str:
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in values.items())


def summary_frame(sweep: SweepResults, metric: str) -> pd.DataFrame:
    """One row per setting and class: the swept values, n, mean and its 95 % t interval."""
    rows = []
    for values, run in zip(sweep.settings, sweep.runs):
        for class_name in run.class_names():
            interval = t_confidence_interval(run.per_case(class_name, metric))
            rows.append(
                {
                    **values,
                    "class": class_name,
                    "metric": metric,
                    "n": interval.n,
                    "mean": interval.mean,
                    "ci_low": interval.low,
                    "ci_high": interval.high,
                    "ci_half_width": interval.half_width,
                }
            )
    return pd.DataFrame(rows)


def best_settings(summary: pd.DataFrame, sweep: SweepResults, metric: str) -> dict[str, int]:
    """Per class, the index of the setting with the best mean (the first of equals)."""
    best = {}
    for class_name, rows in summary.groupby("class", sort=False):
        means = rows["mean"].to_numpy()
        best[class_name] = int(np.argmax(means) if higher_is_better(metric) else np.argmin(means))
    return best


def _test_lines(sweep: SweepResults, summary: pd.DataFrame, metric: str) -> list[str]:
    """Per class: the best setting and its signed-rank test against the default."""
    default = sweep.default_index()
    lines = []
    for class_name, index in best_settings(summary, sweep, metric).items():
        best_text = _setting_text(sweep.settings[index])
        if default is None:
            lines.append(
                f"{class_name}: best {best_text}. The default ({_setting_text(sweep.defaults)}) is not "
                "among the swept settings; sweep its values too to test against it."
            )
        elif default == index:
            lines.append(f"{class_name}: best {best_text}, which is the default.")
        else:
            best_scores = sweep.runs[index].per_case(class_name, metric).to_numpy()
            default_scores = sweep.runs[default].per_case(class_name, metric).to_numpy()
            _, p_value, _ = compare_pair(best_scores, default_scores, "signedrank")
            difference = float(np.mean(best_scores - default_scores))
            lines.append(
                f"{class_name}: best {best_text}; against the default ({_setting_text(sweep.defaults)}): "
                f"mean difference {difference:+.3f}, two-sided paired Wilcoxon signed-rank p = "
                f"{p_value:.3g} (n = {len(best_scores)} cases, unadjusted)."
            )
    return lines


def _table_cells(sweep: SweepResults, summary: pd.DataFrame, metric: str, bold: str, plus_minus: str):
    classes = list(dict.fromkeys(summary["class"]))
    best = best_settings(summary, sweep, metric)
    rows = []
    for index, values in enumerate(sweep.settings):
        cells = [str(values[key]) for key in sweep.keys]
        for class_name in classes:
            row = summary[summary["class"] == class_name].iloc[index]
            width = "n/a" if np.isnan(row["ci_half_width"]) else f"{row['ci_half_width']:.3f}"
            text = f"{row['mean']:.3f}{plus_minus}{width}"
            cells.append(bold.format(text) if best[class_name] == index else text)
        if index == sweep.default_index():
            cells[0] += " (default)"
        rows.append(cells)
    return classes, rows


def _caption(sweep: SweepResults, metric: str, n_cases: int) -> str:
    return (
        f"Sweep of {', '.join(sweep.keys)}: mean {metric.upper()} ± half-width of the 95 % Student t interval "
        f"over n = {n_cases} cases per setting and class; bold: best setting of each class."
    )


def sweep_markdown(sweep: SweepResults, summary: pd.DataFrame, metric: str) -> str:
    classes, rows = _table_cells(sweep, summary, metric, "**{}**", " ± ")
    headers = [*sweep.keys, *(f"{metric.upper()} {name}" for name in classes)]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    tests = "\n".join(f"- {line}" for line in _test_lines(sweep, summary, metric))
    return f"Table: {_caption(sweep, metric, int(summary['n'].max()))}\n\n" + "\n".join(lines) + f"\n\n{tests}\n"


def sweep_latex(sweep: SweepResults, summary: pd.DataFrame, metric: str) -> str:
    escape = tables.latex_escape
    classes, rows = _table_cells(sweep, summary, metric, r"\textbf{{{}}}", r" $\pm$ ")
    headers = [escape(key) for key in sweep.keys] + [f"{metric.upper()} {escape(c)}" for c in classes]
    lines = [
        "% needs \\usepackage{booktabs}",
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{escape(_caption(sweep, metric, int(summary['n'].max())))}}}",
        r"\label{tab:sweep}",
        r"\begin{tabular}{" + "l" * len(sweep.keys) + "c" * len(classes) + "}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
        *(
            " & ".join(escape(cell) if k < len(sweep.keys) else cell for k, cell in enumerate(row)) + r" \\"
            for row in rows
        ),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def surface_png(sweep: SweepResults, summary: pd.DataFrame, class_name: str, metric: str) -> bytes | None:
    """Heatmap (two keys) or line plot with 95 % intervals (one key) of one class's mean; None otherwise."""
    if len(sweep.keys) > 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary[summary["class"] == class_name].reset_index(drop=True)
    best = best_settings(summary, sweep, metric)[class_name]
    default = sweep.default_index()
    label = f"mean {metric.upper()} {class_name}"
    if len(sweep.keys) == 1:
        key = sweep.keys[0]
        figure, axis = plt.subplots(figsize=(5.5, 3.8))
        positions = np.arange(len(rows))
        axis.errorbar(positions, rows["mean"], yerr=rows["ci_half_width"].fillna(0), marker="o", capsize=4)
        axis.scatter(
            [best],
            [rows["mean"][best]],
            s=160,
            facecolors="none",
            edgecolors="tab:red",
            linewidths=2,
            label="best",
            zorder=3,
        )
        if default is not None:
            axis.scatter(
                [default],
                [rows["mean"][default]],
                marker="s",
                s=90,
                facecolors="none",
                edgecolors="black",
                label="default",
                zorder=3,
            )
        axis.set_xticks(positions, [str(value) for value in rows[key]])
        axis.set_xlabel(key)
        axis.set_ylabel(label + " (95 % CI)")
        axis.legend(loc="best", fontsize=8)
        axis.grid(alpha=0.3)
    else:
        first, second = sweep.keys
        firsts = list(dict.fromkeys(json.dumps(v) for v in rows[first]))
        seconds = list(dict.fromkeys(json.dumps(v) for v in rows[second]))
        grid = np.full((len(firsts), len(seconds)), np.nan)
        widths = np.full_like(grid, np.nan)
        for _, row in rows.iterrows():
            i, j = firsts.index(json.dumps(row[first])), seconds.index(json.dumps(row[second]))
            grid[i, j], widths[i, j] = row["mean"], row["ci_half_width"]
        figure, axis = plt.subplots(figsize=(1.6 + 1.3 * len(seconds), 1.4 + 0.8 * len(firsts)))
        colour_map = "viridis" if higher_is_better(metric) else "viridis_r"
        image = axis.imshow(grid, cmap=colour_map, aspect="auto")
        for i in range(len(firsts)):
            for j in range(len(seconds)):
                width = "" if np.isnan(widths[i, j]) else f"\n± {widths[i, j]:.3f}"
                value = grid[i, j]
                shade = (value - np.nanmin(grid)) / ((np.nanmax(grid) - np.nanmin(grid)) or 1)
                if not higher_is_better(metric):
                    shade = 1 - shade
                axis.text(
                    j,
                    i,
                    f"{value:.3f}{width}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if shade > 0.5 else "white",
                )
        best_i = firsts.index(json.dumps(rows[first][best]))
        best_j = seconds.index(json.dumps(rows[second][best]))
        axis.add_patch(
            plt.Rectangle((best_j - 0.5, best_i - 0.5), 1, 1, fill=False, edgecolor="tab:red", linewidth=2.5)
        )
        if default is not None:
            default_i = firsts.index(json.dumps(rows[first][default]))
            default_j = seconds.index(json.dumps(rows[second][default]))
            axis.add_patch(
                plt.Rectangle(
                    (default_j - 0.45, default_i - 0.45),
                    0.9,
                    0.9,
                    fill=False,
                    edgecolor="white",
                    linestyle="--",
                    linewidth=1.5,
                )
            )
        axis.set_xticks(range(len(seconds)), [json.loads(v) for v in seconds])
        axis.set_yticks(range(len(firsts)), [json.loads(v) for v in firsts])
        axis.set_xlabel(second)
        axis.set_ylabel(first)
        figure.colorbar(image, ax=axis, label=label)
        label += "\nred frame: best" + (", dashed: default" if default is not None else "")
    axis.set_title(f"Sweep: {label}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def report_outputs(sweep: SweepResults, metric: str) -> dict[str, str | bytes]:
    """Every output file's name and content."""
    check_metric(sweep.runs, metric)
    summary = summary_frame(sweep, metric)
    outputs: dict[str, str | bytes] = {
        "sweep.md": sweep_markdown(sweep, summary, metric),
        "sweep.tex": sweep_latex(sweep, summary, metric),
        "sweep.csv": summary.to_csv(index=False, lineterminator="\n"),
    }
    for class_name in dict.fromkeys(summary["class"]):
        figure = surface_png(sweep, summary, class_name, metric)
        if figure is not None:
            outputs[f"sweep_{file_stem(class_name)}.png"] = figure
    return outputs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweep-report",
        description="Response surface of a run-experiment --sweep: table, heatmap or line plot per class, "
        "best setting, paired test against the default.",
    )
    parser.add_argument("sweep_dir", type=Path, metavar="SWEEP_DIR", help="the sweep folder (holds sweep.json)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the report files")
    parser.add_argument("--metric", default="dsc", help="per-case metric (default: dsc)")
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args)
    check_out_dir(args.out)
    sweep = load_sweep(args.sweep_dir)
    outputs = report_outputs(sweep, args.metric)
    if len(sweep.keys) > 2:
        logger.warning("notice: %d swept keys: no figure (one or two keys are drawn)", len(sweep.keys))
    write_outputs(args.out, outputs, printed=["sweep.md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
