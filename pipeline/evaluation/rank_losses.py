"""``rank-losses``: which loss is best across data sets, and how sure we are.

    rank-losses RESULTS_DIR [RESULTS_DIR ...] --out DIR [--metric dsc] [--classes C ...]
                [--bootstrap 1000] [--seed 0]

Each RESULTS_DIR is a ``compare-losses`` output folder of one data set (its
``per_case.csv``); every folder must compare the same losses. A ``per_case.csv``
with a ``seed`` column (runs of several seeds) ranks each case's mean over its
seeds, and the bootstrap resamples each loss's seeds after the cases
(``ranking.bootstrap_task``). Each data set
and class is a task (``pipeline.evaluation.ranking`` has the methods). Writes,
after everything is read and computed:

* ``ranking.md``, ``ranking.tex``, ``ranking.csv``: per task the rank of each
  loss by mean score with the share of bootstrap resamples giving that rank,
  the mean rank across tasks and the consensus rank; below the table the
  Friedman test and the Nemenyi critical difference;
* ``rank_stability.csv``: per task (and the consensus) and loss, the
  frequency of every rank in the bootstrap, the median rank and its 95 %
  interval, and Kendall's tau of the task's bootstrap rankings;
* ``blob_plot.png``: challengeR's blob plot, one panel per task and one for
  the consensus.
"""

from __future__ import annotations

import argparse
import logging
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline import console
from pipeline.evaluation.outputs import check_out_dir, write_outputs
from pipeline.errors import DataError, UnifocalError, exits_cleanly
from pipeline.evaluation.ranking import (
    BootstrapRanks,
    Task,
    bootstrap_consensus,
    bootstrap_task,
    consensus,
    friedman,
)
from pipeline.evaluation.metrics import higher_is_better
from pipeline.evaluation.runs import name_list

pd = console.lazy_module("pandas")  # loaded on first use, so that --help answers at once

PER_CASE = "per_case.csv"
CONSENSUS = "consensus"

logger = logging.getLogger(__name__)


def read_comparison(folder: Path) -> pd.DataFrame:
    """``<folder>/per_case.csv`` of a compare-losses output folder, checked."""
    path = Path(folder) / PER_CASE
    if not path.is_file():
        raise DataError(path, "missing: not a compare-losses output folder (rerun compare-losses to write it)")
    try:
        frame = pd.read_csv(path, dtype={"loss": str, "case": str, "class": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"not a readable CSV file ({type(error).__name__})") from None
    missing = [column for column in ("loss", "case", "class") if column not in frame.columns]
    if missing or frame.empty:
        raise DataError(path, f"missing columns: {', '.join(missing)}" if missing else "no rows")
    return frame


def build_tasks(
    comparisons: dict[str, pd.DataFrame], metric: str, classes: Sequence[str] | None, sources: dict[str, Path]
) -> list[Task]:
    """One task per data set and class, the losses in the first comparison's order."""
    first_name = next(iter(comparisons))
    losses = tuple(dict.fromkeys(comparisons[first_name]["loss"]))
    tasks = []
    for name, frame in comparisons.items():
        path = sources[name] / PER_CASE
        here = tuple(dict.fromkeys(frame["loss"]))
        if set(here) != set(losses):
            only_here, only_there = sorted(set(here) - set(losses)), sorted(set(losses) - set(here))
            detail = "; ".join(
                part
                for part in (
                    f"only here: {name_list(only_here)}" if only_here else "",
                    f"only in {sources[first_name] / PER_CASE}: {name_list(only_there)}" if only_there else "",
                )
                if part
            )
            raise DataError(path, f"compares other losses ({detail}); every data set must compare the same losses")
        if metric not in frame.columns:
            raise DataError(
                path,
                f"no column {metric!r} (metrics here: "
                f"{', '.join(c for c in frame.columns if c not in ('loss', 'case', 'fold', 'class'))}"
                ")",
            )
        available = list(dict.fromkeys(frame["class"]))
        chosen = available if classes is None else [c for c in classes if c in available]
        if classes is not None and not chosen:
            raise DataError(
                path, f"none of --classes {', '.join(classes)} is scored here (classes: {', '.join(available)})"
            )
        for class_name in chosen:
            rows = frame[frame["class"] == class_name]
            seed_scores = None
            if "seed" in rows.columns and rows["seed"].notna().any():
                rows = rows.assign(seed=rows["seed"].fillna(-1))  # a run of one seed beside runs of several
                seeded = rows.pivot_table(index="case", columns=["loss", "seed"], values=metric, aggfunc="first")
                if rows.duplicated(["loss", "case", "seed"]).any():
                    raise DataError(path, f"class {class_name}: a case is scored twice for one loss and seed")
                seed_scores = tuple(seeded[loss].dropna(axis=1, how="all").to_numpy() for loss in losses)
                if any(np.isnan(scores).any() for scores in seed_scores):
                    raise DataError(path, f"class {class_name}: not every seed of a loss scored every case")
                table = rows.groupby(["case", "loss"])[metric].mean().unstack("loss")
            else:
                table = rows.pivot(index="case", columns="loss", values=metric)
            table = table[list(losses)]
            if table.isna().any().any():
                raise DataError(path, f"class {class_name}: not every loss scored every case")
            tasks.append(
                Task(
                    f"{name}: {class_name}",
                    losses,
                    table.to_numpy(),
                    higher_is_better=higher_is_better(metric),
                    seed_scores=seed_scores,
                )
            )
    if classes is not None:
        unused = [c for c in classes if not any(task.name.endswith(f": {c}") for task in tasks)]
        if unused:
            raise UnifocalError(f"--classes: {', '.join(unused)} scored in none of the folders")
    return tasks


def ranking_outputs(tasks: Sequence[Task], metric: str, samples: int, seed: int) -> dict[str, str | bytes]:
    """Every output file's name and content."""
    rng = np.random.default_rng(seed)
    losses = tasks[0].losses
    full = np.stack([task.ranks() for task in tasks])
    mean_ranks, consensus_ranks = consensus(full)
    boots = {task.name: bootstrap_task(task, samples, rng) for task in tasks}
    boots[CONSENSUS] = bootstrap_consensus(tasks, samples, rng)
    full_by_name = {task.name: rank for task, rank in zip(tasks, full)} | {CONSENSUS: consensus_ranks}

    rows = []
    for j, loss in enumerate(losses):
        row = {"loss": loss}
        for task, ranks in zip(tasks, full):
            row[f"{task.name} rank"] = int(ranks[j])
            row[f"{task.name} frequency"] = float(boots[task.name].frequencies()[j, int(ranks[j]) - 1])
        row["mean rank"] = float(mean_ranks[j])
        row["consensus rank"] = int(consensus_ranks[j])
        row["consensus frequency"] = float(boots[CONSENSUS].frequencies()[j, int(consensus_ranks[j]) - 1])
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["consensus rank", "mean rank"], kind="stable")

    test = None
    if len(losses) >= 3 and len(tasks) >= 2:
        means = np.stack([task.scores.mean(axis=0) for task in tasks])
        test = friedman(means, [task.higher_is_better for task in tasks])
    outputs: dict[str, str | bytes] = {
        "ranking.md": _ranking_markdown(table, tasks, metric, samples, test),
        "ranking.tex": _ranking_latex(table, tasks, metric, samples),
        "ranking.csv": _csv(table),
        "rank_stability.csv": _csv(_stability_frame(boots, full_by_name)),
        "blob_plot.png": blob_plot_png(
            boots, full_by_name, [losses[j] for j in np.argsort(mean_ranks, kind="stable")], metric
        ),
    }
    return outputs


def _stability_frame(boots: dict[str, BootstrapRanks], full: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for name, boot in boots.items():
        frequencies, median, interval = boot.frequencies(), boot.median(), boot.interval()
        tau = boot.kendall_tau(full[name])
        for j, loss in enumerate(boot.losses):
            rows.append(
                {
                    "task": name,
                    "loss": loss,
                    "rank": int(full[name][j]),
                    "median_rank": float(median[j]),
                    "rank_low": float(interval[j, 0]),
                    "rank_high": float(interval[j, 1]),
                    "kendall_tau": tau,
                    **{f"p_rank_{r + 1}": float(frequencies[j, r]) for r in range(len(boot.losses))},
                }
            )
    return pd.DataFrame(rows)


def _caption(tasks: Sequence[Task], metric: str, samples: int) -> str:
    direction = "highest" if higher_is_better(metric) else "lowest"
    resampled = (
        "the cases and then each loss's training seeds (each case's score: its mean over seeds)"
        if any(task.seed_scores is not None for task in tasks)
        else "the cases"
    )
    return (
        f"Loss ranking over {len(tasks)} tasks (data set: class), aggregate-then-rank: rank 1 = {direction} "
        f"mean {metric.upper()} over cases, tied means share the best rank (challengeR's ties.method = min). "
        f"In brackets: share of {samples} bootstrap resamples of {resampled} giving that rank. Consensus: the "
        "mean rank over tasks, ranked."
    )


def _ranking_markdown(table: pd.DataFrame, tasks: Sequence[Task], metric: str, samples: int, test) -> str:
    headers = ["Loss", *(task.name for task in tasks), "Mean rank", "Consensus"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, row in table.iterrows():
        cells = [f"{row[f'{task.name} rank']} ({row[f'{task.name} frequency']:.2f})" for task in tasks]
        lines.append(
            "| "
            + " | ".join(
                [
                    row["loss"],
                    *cells,
                    f"{row['mean rank']:.2f}",
                    f"{row['consensus rank']} ({row['consensus frequency']:.2f})",
                ]
            )
            + " |"
        )
    text = f"Table: {_caption(tasks, metric, samples)}\n\n" + "\n".join(lines) + "\n"
    return text + "\n" + _friedman_text(test, list(table["loss"]), tasks[0].losses) + "\n"


def _friedman_text(test, order: list[str], losses: Sequence[str]) -> str:
    if test is None:
        return "Friedman test: not computed (it needs at least 3 losses and 2 tasks)."
    index = {loss: j for j, loss in enumerate(losses)}
    differing = [
        f"{a} vs {b}" for k, a in enumerate(order) for b in order[k + 1 :] if test.different(index[a], index[b])
    ]
    ranks = ", ".join(f"{loss} {test.mean_ranks[index[loss]]:.2f}" for loss in order)
    return (
        f"Friedman test over {test.tasks} tasks (scipy.stats.friedmanchisquare on the mean scores, tasks as "
        f"blocks): χ² = {test.statistic:.3f}, p = {test.p_value:.3g}. Mean Friedman ranks (ties averaged): "
        f"{ranks}. Nemenyi critical difference at α = {test.alpha:g}: {test.critical_difference:.3f}; pairs "
        f"differing by more: {', '.join(differing) if differing else 'none'}."
    )


def _ranking_latex(table: pd.DataFrame, tasks: Sequence[Task], metric: str, samples: int) -> str:
    from pipeline.evaluation.tables import latex_escape

    headers = ["Loss", *(latex_escape(task.name) for task in tasks), "Mean rank", "Consensus"]
    body = []
    for _, row in table.iterrows():
        cells = [f"{row[f'{task.name} rank']} ({row[f'{task.name} frequency']:.2f})" for task in tasks]
        body.append(
            " & ".join(
                [
                    latex_escape(row["loss"]),
                    *cells,
                    f"{row['mean rank']:.2f}",
                    f"{row['consensus rank']} ({row['consensus frequency']:.2f})",
                ]
            )
            + r" \\"
        )
    lines = [
        "% needs \\usepackage{booktabs}",
        r"\begin{table}[ht]",
        r"\centering",
        rf"\caption{{{latex_escape(_caption(tasks, metric, samples))}}}",
        r"\label{tab:ranking}",
        r"\begin{tabular}{l" + "c" * (len(headers) - 1) + "}",
        r"\toprule",
        " & ".join(headers) + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def blob_plot_png(
    boots: dict[str, BootstrapRanks], full: dict[str, np.ndarray], order: Sequence[str], metric: str
) -> bytes:
    """challengeR's blob plot: per panel, each loss's bootstrap rank frequencies as blob areas.

    Losses on the x axis in consensus order; rank 1 at the top; a black cross
    marks the rank on the full data and a line the 95 % bootstrap interval.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(boots)
    count = len(order)
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    label_space = 0.09 * max(len(loss) for loss in order)
    panel_width, panel_height = max(2.4, 0.55 * count), max(2.0, 0.45 * count)
    figure, axes = plt.subplots(
        rows,
        columns,
        squeeze=False,
        sharey=True,
        layout="constrained",
        figsize=(0.8 + panel_width * columns, 1.0 + (panel_height + label_space) * rows),
    )
    colours = plt.get_cmap("tab10" if count <= 10 else "tab20")
    ranks = np.arange(1, count + 1)
    for panel, name in zip(axes.flat, names):
        boot = boots[name]
        index = {loss: j for j, loss in enumerate(boot.losses)}
        frequencies, interval = boot.frequencies(), boot.interval()
        for x, loss in enumerate(order):
            j = index[loss]
            shown = frequencies[j] > 0
            panel.scatter(
                np.full(shown.sum(), x),
                ranks[shown],
                s=frequencies[j][shown] * 500,
                color=colours(x % colours.N),
                alpha=0.75,
                linewidths=0,
            )
            panel.plot([x, x], interval[j], color="black", linewidth=1)
            panel.scatter([x], [full[name][j]], marker="x", color="black", s=30, zorder=3)
        panel.set_title(name, fontsize=9, fontweight="bold" if name == CONSENSUS else "normal")
        panel.set_xticks(range(count), order, rotation=50, ha="right", rotation_mode="anchor", fontsize=8)
        panel.set_xlim(-0.7, count - 0.3)
        panel.set_yticks(ranks)
        panel.set_ylim(count + 0.7, 0.3)
        panel.grid(axis="y", alpha=0.3)
    for panel in axes.flat[len(names) :]:
        panel.set_visible(False)
    for panel in axes[:, 0]:
        panel.set_ylabel("rank")
    figure.suptitle(f"Ranking stability, {metric.upper()}", fontsize=10)
    figure.get_layout_engine().set(h_pad=0.1)
    figure.supxlabel(
        "blob area: share of bootstrap resamples at a rank; ×: rank on all cases; line: 95 % bootstrap interval",
        fontsize=8,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _dataset_names(folders: Sequence[Path]) -> list[str]:
    """Each folder's name, or its path where two folders share a name."""
    names = [folder.name or str(folder) for folder in folders]
    return [name if names.count(name) == 1 else str(folder) for name, folder in zip(names, folders)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rank-losses",
        description="Rank losses across data sets (compare-losses output folders): ranks per data set and "
        "class, consensus, bootstrap stability (blob plot), Friedman/Nemenyi test.",
    )
    parser.add_argument(
        "results",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="compare-losses --out folders, one per data set, comparing the same losses",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the ranking files")
    parser.add_argument("--metric", default="dsc", help="per-case metric to rank by (default: dsc)")
    parser.add_argument(
        "--classes", nargs="+", metavar="CLASS", help="classes (and regions) to rank on (default: every one scored)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples of the cases (default: 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default: 0)")
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args)
    if args.bootstrap < 1:
        raise UnifocalError(f"--bootstrap: expected a positive number of resamples, got {args.bootstrap}")
    check_out_dir(args.out)
    resolved = [folder.resolve() for folder in args.results]
    for index, folder in enumerate(resolved):
        if folder in resolved[:index]:
            raise UnifocalError(f"{args.results[index]}: results folder given twice")
    names = _dataset_names(args.results)
    comparisons = {name: read_comparison(folder) for name, folder in zip(names, args.results)}
    tasks = build_tasks(comparisons, args.metric, args.classes, dict(zip(names, args.results)))
    if len(tasks[0].losses) < 2:
        raise UnifocalError(f"{args.results[0] / PER_CASE}: a ranking needs at least two losses")
    outputs = ranking_outputs(tasks, args.metric, args.bootstrap, args.seed)
    write_outputs(args.out, outputs, printed=["ranking.md"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
