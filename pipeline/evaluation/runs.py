"""Finished runs as ``compare-losses`` reads them: loaded, validated, paired by case.

Reads only the run-directory files of docs/architecture.md ("Run directory"):
``config.yaml`` (``experiment.name``, ``loss.name``, ``loss.params``,
``data.dataset``, ``data.root``), ``metrics.csv`` (``case, fold, class, dsc,
precision, recall``; ``case, fold, seed, class, ...`` for a run of several
seeds), ``fold_K/log.csv`` (``epoch, loss, val_loss, lr``) and
``fold_K/predictions/<case_id>.nii.gz`` (``seed_S/fold_K/...`` with several
seeds, ``pipeline.run_layout``). A run of several seeds is compared by the
mean of each case over its seeds (``Run.per_case``); ``Run.per_seed`` keeps
the seeds apart for the seed SD and the two-level bootstrap. Every problem is reported as a
one-line ``DataError``/``ConfigError`` naming the file, before anything is
written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import yaml

from pipeline.console import lazy_module
from pipeline.errors import ConfigError, DataError, UnifocalError
from pipeline.evaluation.metrics import CALIBRATION_METRICS, COLUMNS as METRICS_COLUMNS, METRICS
from pipeline.run_layout import RESCORE_RECORD, SEED_COLUMN, fold_dir, found_fold_dirs, rescoring_of

# Loaded on first use: compare-losses --help need not load pandas or nibabel.
pd = lazy_module("pandas")
prediction_files = lazy_module("pipeline.inference.prediction_files")

LOG_COLUMNS = ("epoch", "loss", "val_loss")
NAMES_SHOWN = 10
"""How many case or class names an error message lists before ``and N more``."""


@dataclass(frozen=True)
class Run:
    """One finished ``run-experiment`` output folder.

    ``data`` is the config's data section, ``regions`` its
    ``evaluation.regions`` (composite regions scored beside the classes),
    ``deep_supervision`` its ``model.deep_supervision``.
    ``label`` names the run in tables and figures: the loss name made readable
    (``focal_tversky`` -> ``Focal Tversky``), followed by the experiment name
    in parentheses when two runs share a loss.
    """

    path: Path
    label: str
    experiment: str
    loss_name: str
    loss_params: dict
    data: dict
    regions: dict
    scores: pd.DataFrame
    logs: dict[int | tuple[int, int], pd.DataFrame] = field(default_factory=dict)
    deep_supervision: bool = False
    scores_dir: Path | None = None

    @property
    def dataset(self) -> str:
        return self.data["dataset"]

    @property
    def metrics_path(self) -> Path:
        """The run's ``metrics.csv``, or that of the rescoring it was read from (``RUN_DIR/rescored/<name>``)."""
        return (self.scores_dir or self.path) / "metrics.csv"

    def case_ids(self) -> list[str]:
        """Scored cases, sorted."""
        return sorted(self.scores["case"].unique())

    def class_names(self) -> list[str]:
        """Scored classes in the order of ``metrics.csv``."""
        return list(dict.fromkeys(self.scores["class"]))

    def seeds(self) -> list[int]:
        """The training seeds scored, sorted; ``[]`` for a run of one seed (no ``seed`` column)."""
        return sorted(self.scores[SEED_COLUMN].unique().tolist()) if SEED_COLUMN in self.scores else []

    def per_case(self, class_name: str, metric: str = "dsc") -> pd.Series:
        """One class's metric (or ``"fold"``) per case, indexed by case id in sorted order.

        A run of several seeds gives each case's mean over the seeds (the unit of every test stays the case).
        """
        rows = self.scores[self.scores["class"] == class_name]
        if SEED_COLUMN in rows:
            return rows.groupby("case")[metric].mean().sort_index()
        return rows.set_index("case")[metric].sort_index()

    def per_seed(self, class_name: str, metric: str = "dsc") -> pd.DataFrame:
        """One class's metric per case (rows, sorted) and seed (columns, sorted); one column for one seed."""
        rows = self.scores[self.scores["class"] == class_name]
        if SEED_COLUMN not in rows:
            return rows.set_index("case")[[metric]].sort_index()
        return rows.pivot(index="case", columns=SEED_COLUMN, values=metric).sort_index().sort_index(axis=1)

    def prediction_path(self, case_id: str) -> Path:
        """Where ``run-experiment`` wrote the case's label map (its validation fold; the first seed's)."""
        fold = int(self.scores.loc[self.scores["case"] == case_id, "fold"].iloc[0])
        seeds = self.seeds()
        return prediction_files.find_prediction(
            fold_dir(self.path, fold, seeds[0] if seeds else None) / "predictions", case_id
        )


#: Table names that capitalising the registry name's words would get wrong.
TABLE_NAMES = {
    "dice_ce": "Dice + CE",
    "dice_topk": "Dice + TopK",
    "dice_focal": "Dice + Focal",
    "iou": "IoU",
    "topk": "TopK",
}


def display_name(loss_name: str) -> str:
    """Registry name to table name: ``"asymmetric_unified_focal"`` -> ``"Asymmetric Unified Focal"``,
    ``"dice_ce"`` -> ``"Dice + CE"``."""
    return TABLE_NAMES.get(loss_name, " ".join(word.capitalize() for word in loss_name.split("_")))


def name_list(names: Sequence[str], limit: int = NAMES_SHOWN) -> str:
    """``"a, b, c"``, or the first ``limit`` names and ``"and N more"``."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "missing: not a run-experiment output folder")
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        problem = str(error).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML ({problem})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections")
    return config


def _config_value(config: dict, key: str, path: Path, default=None, required: bool = True):
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            if required:
                raise ConfigError(f"{path}: missing key {key}")
            return default
        value = value[part]
    return value


def read_metrics(path: Path) -> pd.DataFrame:
    """``metrics.csv`` checked: columns present, metrics in [0, 1], one row per case and class."""
    if not path.is_file():
        raise DataError(path, "missing: the run has no per-case metrics (has every fold finished?)")
    try:
        scores = pd.read_csv(path, dtype={"case": str, "class": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(path, f"not a readable CSV file ({problem})") from None
    missing = [column for column in METRICS_COLUMNS if column not in scores.columns]
    if missing:
        raise DataError(path, f"missing columns: {', '.join(missing)}")
    if scores.empty:
        raise DataError(path, "no rows")
    for column in ("case", "class"):
        if scores[column].isna().any():
            raise DataError(path, f"line {scores[column].isna().idxmax() + 2}: empty {column}")
    folds = pd.to_numeric(scores["fold"], errors="coerce")
    bad_fold = ~((folds >= 0) & (folds % 1 == 0))
    if bad_fold.any():
        line = bad_fold.idxmax()
        raise DataError(path, f"line {line + 2}: fold '{scores['fold'][line]}' is not a fold number")
    scores["fold"] = folds.astype(int)
    keys = ["case", "class"]
    if SEED_COLUMN in scores.columns:
        seeds = pd.to_numeric(scores[SEED_COLUMN], errors="coerce")
        bad_seed = ~((seeds >= 0) & (seeds % 1 == 0))
        if bad_seed.any():
            line = bad_seed.idxmax()
            raise DataError(
                path, f"line {line + 2}: seed '{scores[SEED_COLUMN][line]}' is not a seed (a whole number >= 0)"
            )
        scores[SEED_COLUMN] = seeds.astype(int)
        keys = ["case", SEED_COLUMN, "class"]
    for column in METRICS:
        values = pd.to_numeric(scores[column], errors="coerce")
        bad = ~values.between(0.0, 1.0)
        if bad.any():
            line = bad.idxmax()
            raise DataError(path, f"line {line + 2}: {column} '{scores[column][line]}' is not a number in [0, 1]")
        scores[column] = values.astype(float)
    duplicated = scores.duplicated(keys)
    if duplicated.any():
        line = duplicated.idxmax()
        seed = f" seed {scores[SEED_COLUMN][line]}" if SEED_COLUMN in scores.columns else ""
        raise DataError(
            path, f"line {line + 2}: case {scores['case'][line]}{seed} class {scores['class'][line]} scored twice"
        )
    if SEED_COLUMN in scores.columns:
        _check_every_seed(path, scores)
    classes = list(dict.fromkeys(scores["class"]))
    counts = scores.groupby("case")["class"].nunique()
    incomplete = counts[counts < len(classes)]
    if not incomplete.empty:
        case_id = incomplete.index[0]
        lacking = [name for name in classes if name not in set(scores.loc[scores["case"] == case_id, "class"])]
        raise DataError(path, f"case {case_id} has no row for class {', '.join(lacking)}")
    if scores.groupby("case")["fold"].nunique().max() > 1:
        raise DataError(path, "a case is scored in more than one fold")
    return scores


def _check_every_seed(path: Path, scores: pd.DataFrame) -> None:
    """Every seed scores every case and class (a case's mean over seeds is then over all of them)."""
    pairs = scores.groupby(["case", "class"])[SEED_COLUMN].nunique()
    seeds = scores[SEED_COLUMN].nunique()
    lacking = pairs[pairs < seeds]
    if not lacking.empty:
        case_id, class_name = lacking.index[0]
        have = set(scores.loc[(scores["case"] == case_id) & (scores["class"] == class_name), SEED_COLUMN])
        missing = sorted(set(scores[SEED_COLUMN]) - have)
        raise DataError(path, f"case {case_id} class {class_name} has no row for seed {missing[0]}")


def check_metric(runs: Sequence[Run], metric: str) -> None:
    """Refuse a metric some run's ``metrics.csv`` lacks or holds impossible values of (naming the file and line).

    HD95 must be a finite number of mm >= 0, every other metric a number in [0, 1].
    """
    unbounded = metric in ("hd95", "nll")
    for run in runs:
        if metric in CALIBRATION_METRICS and metric not in run.scores.columns:
            _attach_calibration(run, metric)
        if metric not in run.scores.columns:
            raise DataError(
                run.metrics_path,
                f"no {metric} column: scored before {metric} was kept; "
                "score the run's predictions again with `evaluate RUN_DIR`",
            )
        values = pd.to_numeric(run.scores[metric], errors="coerce")
        bad = ~(values.between(0.0, float("inf"), inclusive="left") if unbounded else values.between(0.0, 1.0))
        if bad.any():
            line = bad.idxmax()
            raise DataError(
                run.metrics_path,
                f"line {line + 2}: {metric} '{run.scores[metric][line]}' is not "
                + ("a number >= 0" if unbounded else "a number in [0, 1]"),
            )
        run.scores[metric] = values.astype(float)


def _attach_calibration(run: Run, metric: str) -> None:
    """Add ``metric`` from the run's ``calibration.csv`` to its scores, row by row (case, seed, class).

    Its ``all`` rows (top-label ECE, multiclass Brier and NLL) have no row in ``metrics.csv`` and stay there.
    """
    path = run.path / "calibration.csv"
    if not path.is_file():
        raise DataError(
            path,
            "missing: the run was scored before calibration was kept; evaluate --probabilities "
            "scores predict --save-probabilities files",
        )
    try:
        calibration = pd.read_csv(path, dtype={"case": str, "class": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"not a readable CSV file ({str(error).splitlines()[0]})") from None
    keys = ["case", *([SEED_COLUMN] if SEED_COLUMN in run.scores.columns else []), "class"]
    missing = [column for column in (*keys, metric) if column not in calibration.columns]
    if missing:
        raise DataError(path, f"missing columns: {', '.join(missing)}")
    merged = run.scores[keys].merge(calibration[[*keys, metric]], on=keys, how="left")
    lacking = merged[metric].isna()
    if lacking.any():
        row = merged[lacking].iloc[0]
        raise DataError(path, f"no {metric} of case {row['case']} class {row['class']}")
    run.scores[metric] = merged[metric].to_numpy()


def read_training_logs(run_dir: Path) -> dict[int | tuple[int, int], pd.DataFrame]:
    """``fold_K/log.csv`` of every fold that has one, keyed by ``K``; ``seed_S/fold_K/log.csv`` keyed by ``(S, K)``."""
    logs = {}
    for seed, fold, folder in found_fold_dirs(run_dir):
        log_path = folder / "log.csv"
        if not log_path.is_file():
            continue
        try:
            log = pd.read_csv(log_path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            raise DataError(log_path, f"not a readable CSV file ({type(error).__name__})") from None
        missing = [column for column in LOG_COLUMNS if column not in log.columns]
        if missing:
            raise DataError(log_path, f"missing columns: {', '.join(missing)}")
        numbers = log[list(LOG_COLUMNS)].apply(pd.to_numeric, errors="coerce")
        if numbers.isna().any().any():
            raise DataError(log_path, f"non-numeric values in {', '.join(LOG_COLUMNS)}")
        logs[fold if seed is None else (seed, fold)] = numbers
    return dict(sorted(logs.items(), key=lambda item: item[0] if isinstance(item[0], tuple) else (-1, item[0])))


def read_run(run_dir: Path | str) -> Run:
    """Load one run folder; its ``label`` is the readable loss name, "(batch)" added for a batch-pooled loss.

    ``RUN_DIR/rescored/<name>`` (``evaluate RUN_DIR``) reads that rescoring's ``metrics.csv`` and regions, and
    the rest from ``RUN_DIR``.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise DataError(path, "not a folder")
    scores_dir, path = (path, rescoring_of(path)) if rescoring_of(path) is not None else (None, path)
    config_path = path / "config.yaml"
    config = _read_config(config_path)
    experiment = str(_config_value(config, "experiment.name", config_path))
    loss_name = str(_config_value(config, "loss.name", config_path))
    loss_params = _config_value(config, "loss.params", config_path, default={}, required=False) or {}
    if not isinstance(loss_params, dict):
        raise ConfigError(f"{config_path}: loss.params must be a mapping")
    data = _config_value(config, "data", config_path)
    _config_value(config, "data.dataset", config_path)
    regions = _config_value(config, "evaluation.regions", config_path, default={}, required=False) or {}
    if scores_dir is not None:
        regions = _read_config(scores_dir / RESCORE_RECORD).get("regions") or {}
    if not isinstance(regions, dict):
        raise ConfigError(f"{config_path}: evaluation.regions must be a mapping")
    return Run(
        path=path,
        label=display_name(loss_name) + (" (batch)" if loss_params.get("batch") is True else ""),
        experiment=experiment,
        loss_name=loss_name,
        loss_params=loss_params,
        data=data,
        regions=regions,
        scores=read_metrics((scores_dir or path) / "metrics.csv"),
        logs=read_training_logs(path),
        deep_supervision=_config_value(config, "model.deep_supervision", config_path, default=False, required=False)
        is True,
        scores_dir=scores_dir,
    )


def _labelled(runs: list[Run]) -> list[Run]:
    """Disambiguate runs of the same loss with their experiment names."""
    names = [run.label for run in runs]
    labelled = [
        run if names.count(run.label) == 1 else replace(run, label=f"{run.label} ({run.experiment})") for run in runs
    ]
    seen: dict[str, Run] = {}
    for run in labelled:
        if run.label in seen:
            raise UnifocalError(
                f"{seen[run.label].path} and {run.path}: same loss and experiment name "
                f"({run.label}); give the runs distinct experiment names"
            )
        seen[run.label] = run
    return labelled


def check_paired(runs: Sequence[Run]) -> None:
    """Refuse runs that do not score the same data set, cases and classes."""
    reference = runs[0]
    for run in runs[1:]:
        if run.dataset != reference.dataset:
            raise ConfigError(
                f"{run.path / 'config.yaml'}: data.dataset is {run.dataset!r}, "
                f"but {reference.dataset!r} in {reference.path / 'config.yaml'}"
            )
        for kind, here, there in (
            ("cases", run.case_ids(), reference.case_ids()),
            ("classes", run.class_names(), reference.class_names()),
        ):
            only_here = sorted(set(here) - set(there))
            only_there = sorted(set(there) - set(here))
            if only_here or only_there:
                parts = [f"{kind} only here: {name_list(only_here)}"] if only_here else []
                parts += [f"{kind} only in {reference.metrics_path}: {name_list(only_there)}"] if only_there else []
                raise DataError(run.metrics_path, f"not paired with {reference.metrics_path}; " + "; ".join(parts))


def load_runs(run_dirs: Iterable[Path | str]) -> list[Run]:
    """Load, label and pair-check runs, in the order given (the tables' row order)."""
    runs = [read_run(run_dir) for run_dir in run_dirs]
    if not runs:
        raise UnifocalError("no run folders given")
    resolved = [run.path.resolve() for run in runs]
    for index, path in enumerate(resolved):
        if path in resolved[:index]:
            raise UnifocalError(f"{runs[index].path}: run folder given twice")
    runs = _labelled(runs)
    check_paired(runs)
    return runs
