"""``compare-losses``: the papers' tables, statistics and figures from finished runs.

    compare-losses RUN_DIR [RUN_DIR ...] --out DIR [--paper] [--test signedrank|ranksum]
                   [--interval cases|folds] [--published TABLE] [--cases ID ...]
                   [--metric dsc|precision|recall|hd95|nsd|ece|brier|nll] [--bootstrap N]

Each RUN_DIR is a finished ``run-experiment`` folder; the loss name comes from
its config.yaml, and the tables list the runs in the order given. Runs must
score the same cases and classes (the tests are paired by case). The
statistics are the project's default or, with ``--paper``, the papers'
(``pipeline.evaluation.methods``); every caption names them. ``--published
TABLE`` puts a paper table's surviving numbers beside ours
(``pipeline.evaluation.published``). Everything is
read and checked, and every output built, before the first file is written;
each file is written atomically.

Outputs in DIR:

* ``performance.md``, ``performance.tex``, ``performance.csv``: mean ± 95 %
  Student t confidence interval (over cases, or over fold means) of DSC,
  precision and recall per loss and class.
* ``pvalues_<class>.md``, ``.tex``, ``.csv``: one file set per class, the
  Holm-adjusted pairwise tests on per-case DSC (the Holm family: that class's
  pairs). Needs at least two runs and two cases; otherwise skipped with a notice.
  ``--metric hd95`` (or nsd, precision, recall) tests that metric instead, in
  ``pvalues_<metric>_<class>.*``, and adds its column to the performance table;
  for HD95 lower is better, so the bold marks the lowest mean and (+) a lower row.
  ``--metric ece|brier|nll`` compares the calibration of each class and region
  (``calibration.csv``, lower is better) and draws ``reliability.png``.
* Runs of several training seeds (``run-experiment --seeds``): every table
  above is over each case's mean over its seeds, and each mean shows its
  seed SD (``performance.csv``: columns ``seeds``, ``seed_sd``). Also
  ``differences_<class>.md``, ``.csv`` (``differences_<metric>_<class>.*``
  for another ``--metric``): every pair's difference of means with the 95 %
  intervals of the two-level bootstrap (cases, then seeds; ``--bootstrap``
  replicates) and of the cases alone, and ``seed_noise.png`` (the same beside
  every loss's per-seed means; ``pipeline.evaluation.figures``). With one seed
  per run none of this appears and every output is as before seeds existed.
* ``runs.csv``: which run folder, loss, hyperparameters and experiment each
  table row comes from.
* ``per_case.csv``: every run's per-case scores with its table label in a
  ``loss`` column (what ``rank-losses`` ranks across data sets).
* ``dsc_distribution.png``, ``training_curves.png`` and ``case_<case_id>.png``
  (see ``pipeline.evaluation.figures``). Case figures need the data set
  (``data.root``) and the predictions; without them they are skipped with a
  notice.

The Markdown tables are also printed to stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import re
from typing import Sequence

from pipeline import console
from pipeline.evaluation.outputs import check_out_dir, write_outputs
from pipeline.errors import DataError, UnifocalError, exits_cleanly
from pipeline.evaluation.methods import INTERVALS, PROJECT, StatisticsMethod, choose_method
from pipeline.evaluation.metrics import CALIBRATION_METRICS, METRICS, SURFACE_METRICS
from pipeline.evaluation.published import PUBLISHED, PublishedTable, RowKey
from pipeline.evaluation.runs import Run, check_metric, load_runs, name_list
from pipeline.evaluation.statistics import BOOTSTRAP_SAMPLES, TESTS, pairwise_tests, two_level_bootstrap

# Loaded when the comparison runs: `compare-losses --help` answers without pandas and matplotlib.
pd = console.lazy_module("pandas")
figures = console.lazy_module("pipeline.evaluation.figures")
tables = console.lazy_module("pipeline.evaluation.tables")

logger = logging.getLogger(__name__)


def _notice(message: str) -> None:
    logger.warning("notice: %s", message)


def file_stem(name: str) -> str:
    """A class or case name made safe for a file name (``"kidney tumour"`` -> ``"kidney_tumour"``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def case_figure_name(case_id: str) -> str:
    """``case_<id>.png``, without doubling a prefix the id has (``case_00018`` -> ``case_00018.png``)."""
    stem = file_stem(case_id)
    return f"{stem}.png" if stem.startswith("case_") else f"case_{stem}.png"


def _runs_csv(runs: Sequence[Run]) -> str:
    frame = pd.DataFrame(
        [
            {
                "label": run.label,
                "loss": run.loss_name,
                "loss_params": json.dumps(run.loss_params, sort_keys=True),
                "experiment": run.experiment,
                "dataset": run.dataset,
                "run_dir": str(run.path),
                "cases": len(run.case_ids()),
            }
            for run in runs
        ]
    )
    return frame.to_csv(index=False, lineterminator="\n")


def _per_case_csv(runs: Sequence[Run]) -> str:
    frame = pd.concat([run.scores.assign(loss=run.label) for run in runs], ignore_index=True)
    if "seed" in frame.columns:  # whole numbers, empty for a run of one seed beside runs of several
        frame["seed"] = frame["seed"].astype("Int64")
    return frame[["loss", *(column for column in frame.columns if column != "loss")]].to_csv(
        index=False, lineterminator="\n"
    )


def _row_key(run: Run) -> RowKey:
    return RowKey(run.loss_name, run.deep_supervision)


def _published_rows(runs: Sequence[Run], published: PublishedTable | None) -> dict:
    """Run label -> its published performance values, for the runs the table has values for."""
    if published is None:
        return {}
    return {run.label: published.performance[_row_key(run)] for run in runs if _row_key(run) in published.performance}


def _published_pvalues(runs: Sequence[Run], published: PublishedTable | None, class_name: str) -> dict:
    """(row label, column label) -> published adjusted p-value of that class, where one survived."""
    if published is None:
        return {}
    by_key = {_row_key(run): run.label for run in runs}
    return {
        (by_key[row], by_key[column]): p
        for (row, column), p in published.p_values.get(class_name, {}).items()
        if row in by_key and column in by_key
    }


def seed_differences(runs: Sequence[Run], class_name: str, metric: str, samples: int = BOOTSTRAP_SAMPLES):
    """Every pair's ``(row, column, BootstrapDifference)`` of ``metric``, pairs in the p-value tables' order."""
    scores = {run.label: run.per_seed(class_name, metric).to_numpy() for run in runs}
    return [
        (row.label, column.label, two_level_bootstrap(scores[row.label], scores[column.label], samples))
        for column, row in itertools.combinations(runs, 2)
    ]


def difference_outputs(runs: Sequence[Run], summary, metric: str, samples: int) -> dict[str, str]:
    """``differences_<class>.md`` and ``.csv`` per class (see the module doc); needs two runs."""
    outputs = {}
    seeds = {run.label: max(1, len(run.seeds())) for run in runs}
    for class_name in runs[0].class_names():
        rows = summary[(summary["class"] == class_name) & (summary["metric"] == metric)]
        sds = dict(zip(rows["loss"], rows["seed_sd"]))
        differences = seed_differences(runs, class_name, metric, samples)
        stem = (
            f"differences_{file_stem(class_name)}"
            if metric == "dsc"
            else f"differences_{metric}_{file_stem(class_name)}"
        )
        outputs[f"{stem}.md"] = tables.difference_markdown(
            differences, sds, class_name, metric, len(runs[0].case_ids())
        )
        outputs[f"{stem}.csv"] = tables.difference_csv(differences, sds, class_name, metric, seeds)
    return outputs


def table_outputs(
    runs: Sequence[Run],
    method: StatisticsMethod,
    published: PublishedTable | None = None,
    metric: str = "dsc",
    samples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, str]:
    """The tables' file names and contents: performance, runs and per-class p-values of ``metric``
    (and with several seeds the differences' bootstrap intervals, ``samples`` replicates)."""
    summary = tables.performance_summary(runs, method, metrics=list(dict.fromkeys([*METRICS, metric])))
    source = published.source if published else None
    rows = _published_rows(runs, published)
    outputs = {
        "performance.md": tables.performance_markdown(summary, method, published=rows, published_source=source),
        "performance.tex": tables.performance_latex(summary, method, published=rows, published_source=source),
        "performance.csv": tables.performance_csv(summary),
        "runs.csv": _runs_csv(runs),
        "per_case.csv": _per_case_csv(runs),
    }
    n_cases = len(runs[0].case_ids())
    if len(runs) < 2 or n_cases < 2:
        _notice(
            f"p-value tables need at least two runs and two cases (got {len(runs)} run(s), {n_cases} case(s)); skipped"
        )
        return outputs
    labels = [run.label for run in runs]
    pvalue_source = source if metric == "dsc" else None  # the papers published p-values of DSC only
    for class_name in runs[0].class_names():
        scores = {run.label: run.per_case(class_name, metric).to_numpy() for run in runs}
        pairs = pairwise_tests(scores, method.test)
        theirs = _published_pvalues(runs, published, class_name) if metric == "dsc" else {}
        stem = f"pvalues_{file_stem(class_name)}" if metric == "dsc" else f"pvalues_{metric}_{file_stem(class_name)}"
        outputs[f"{stem}.md"] = tables.pvalue_markdown(
            pairs, labels, class_name, method, n_cases, metric, theirs, pvalue_source
        )
        outputs[f"{stem}.tex"] = tables.pvalue_latex(
            pairs, labels, class_name, method, n_cases, metric, theirs, pvalue_source
        )
        outputs[f"{stem}.csv"] = tables.pvalue_csv(pairs, class_name, method, metric, theirs)
    if any(run.seeds() for run in runs):
        outputs.update(difference_outputs(runs, summary, metric, samples))
    return outputs


def _case_figures(runs: Sequence[Run], case_ids: Sequence[str]) -> dict[str, bytes]:
    """``case_<id>.png`` per case; a missing data set or prediction skips them with a notice."""
    try:
        dataset = figures.open_run_dataset(runs[0])
    except DataError as error:
        _notice(f"case figures skipped: {error}")
        return {}
    outputs = {}
    available = set(dataset.case_ids())
    for case_id in case_ids:
        if case_id not in available:
            _notice(f"case figure of {case_id} skipped: not a case of the data set in {runs[0].data['root']}")
            continue
        try:
            outputs[case_figure_name(case_id)] = figures.case_slices_png(runs, case_id, dataset)
        except DataError as error:
            _notice(f"case figure of {case_id} skipped: {error}")
    return outputs


def comparison_outputs(
    runs: Sequence[Run],
    method: StatisticsMethod = PROJECT,
    case_ids: Sequence[str] | None = None,
    published: PublishedTable | None = None,
    metric: str = "dsc",
    samples: int = BOOTSTRAP_SAMPLES,
) -> dict[str, str | bytes]:
    """Every output file's name and content, built in memory.

    Args:
        runs: loaded and pair-checked runs (``runs.load_runs``).
        method: test and interval (``methods.PROJECT`` by default, ``methods.PAPER``).
        case_ids: cases to draw; default ``figures.default_cases``.
        published: a paper table's numbers to show beside ours.
        metric: what the pairwise tests compare (a column of every run's ``metrics.csv``).
        samples: replicates of the two-level bootstrap (runs of several seeds only).
    """
    outputs: dict[str, str | bytes] = dict(table_outputs(runs, method, published, metric, samples))
    outputs["dsc_distribution.png"] = figures.dsc_distribution_png(runs)
    if metric in CALIBRATION_METRICS:
        outputs["reliability.png"] = figures.reliability_png(runs)
    if any(run.seeds() for run in runs) and len(runs) >= 2:
        outputs["seed_noise.png"] = figures.seed_noise_png(
            runs,
            metric,
            {class_name: seed_differences(runs, class_name, metric, samples) for class_name in runs[0].class_names()},
        )
    curves = figures.training_curves_png(runs)
    if curves is None:
        _notice("training curves skipped: no run has a fold_K/log.csv")
    else:
        outputs["training_curves.png"] = curves
    outputs.update(_case_figures(runs, case_ids or figures.default_cases(runs)))
    return outputs


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compare-losses",
        description="Tables (mean ± 95% CI, Holm-adjusted pairwise Wilcoxon p-values) and figures "
        "comparing finished run-experiment runs of different losses.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished run folders, in table order")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the tables and figures")
    parser.add_argument(
        "--paper",
        action="store_true",
        help="the papers' statistics: Wilcoxon rank-sum (scipy.stats.ranksums), Holm over the "
        "pairs of one table, mean ± 95%% t interval over the fold means",
    )
    parser.add_argument(
        "--test",
        choices=TESTS,
        help="pairwise test on per-case DSC: paired Wilcoxon signed-rank (default) "
        "or the papers' Wilcoxon rank-sum (default with --paper)",
    )
    parser.add_argument(
        "--interval", choices=INTERVALS, help="what the ± is over: cases (default) or fold means (default with --paper)"
    )
    parser.add_argument(
        "--published",
        choices=sorted(PUBLISHED),
        metavar="TABLE",
        help="put this paper table's published numbers beside ours: " + ", ".join(sorted(PUBLISHED)),
    )
    parser.add_argument(
        "--metric",
        choices=(*METRICS, *SURFACE_METRICS, *CALIBRATION_METRICS),
        default="dsc",
        help="per-case metric of the pairwise tests, added to the performance table "
        "(default dsc; hd95, and the calibration errors ece, brier, nll of calibration.csv: "
        "lower is better; these also draw reliability.png)",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP_SAMPLES,
        metavar="N",
        help="replicates of the two-level bootstrap (cases, then seeds) of every difference, for "
        f"runs of several seeds (default {BOOTSTRAP_SAMPLES}, seeded: deterministic)",
    )
    parser.add_argument(
        "--cases", nargs="+", metavar="ID", help="cases to draw under every loss (default: lowest, median, highest DSC)"
    )
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args)
    if args.bootstrap < 1:
        raise UnifocalError(f"--bootstrap {args.bootstrap}: expected a whole number of replicates >= 1")
    out_dir = check_out_dir(args.out)
    runs = load_runs(args.run_dirs)
    check_metric(runs, args.metric)
    if args.cases:
        unknown = [case_id for case_id in args.cases if case_id not in set(runs[0].case_ids())]
        if unknown:
            raise UnifocalError(f"--cases: not scored in the runs: {name_list(unknown)}")
    method = choose_method(args.paper, args.test, args.interval)
    if method.interval == "folds" and runs[0].scores["fold"].nunique() < 2:
        raise UnifocalError("--interval folds: the runs scored their cases in fewer than two folds")
    published = PUBLISHED[args.published] if args.published else None
    outputs = comparison_outputs(runs, method, args.cases, published, args.metric, args.bootstrap)
    write_outputs(out_dir, outputs)
    return 0


if __name__ == "__main__":
    main()
