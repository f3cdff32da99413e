"""``evaluate RUN_DIR``: score a finished run's saved predictions again, beside its own scores.

A new NSD tolerance, a new composite region or a metric added since the run
was scored needs no new prediction. The run's ``config.yaml`` names the data
set (its references are read as ``run-experiment`` read them: after
``data.label_map``, in DRIVE's field of view; ``pipeline.evaluation.references``),
``splits.json`` the validation cases of each fold, in the order of the run's
``metrics.csv``; every fold (of every seed) must be done.

Writes ``RUN_DIR/rescored/<name>/``: ``metrics.csv`` and ``summary.json`` as
the run's own (a ``seed`` column for a run of several seeds), and
``rescore.json`` (the regions and tolerances used). The run's ``metrics.csv``
and ``summary.json`` are never written. With the run's own regions and
tolerances the rescored ``metrics.csv`` equals the run's byte for byte.
``compare-losses`` and ``rank-losses`` take a ``rescored/<name>`` folder
wherever they take a run folder.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Mapping, Sequence

from pipeline.atomic_files import write_atomically
from pipeline.data import open_dataset
from pipeline.errors import ConfigError, DataError
from pipeline.evaluation.evaluate import Tolerance, check_evaluation, evaluate_cases, read_label_map
from pipeline.evaluation.metrics import write_metrics_csv, write_summary_json
from pipeline.evaluation.references import reference_label_map
from pipeline.inference.prediction_files import find_prediction
from pipeline.run_layout import RESCORE_RECORD, rescored_dir, with_seed_column
from pipeline.training.cross_validation import read_splits

logger = logging.getLogger(__name__)


def rescore_run(
    run_dir, name: str, regions: Mapping[str, Sequence[int]] | None = None, nsd_tolerance: Tolerance | None = None
) -> tuple[Path, list[dict], dict]:
    """Score every fold's predictions of a finished run again; write ``RUN_DIR/rescored/<name>/``.

    Args:
        run_dir: a finished ``run-experiment`` folder.
        name: the rescoring's folder name (letters, digits, ``.``, ``_``, ``-``).
        regions, nsd_tolerance: replace the run's ``evaluation.regions`` / ``nsd_tolerance_mm``; ``None``
            keeps the run's.

    Returns:
        The folder written, the rows of its ``metrics.csv`` and its ``summary.json`` content.

    Raises:
        ConfigError, DataError: one line naming the key or file, before anything is written.
    """
    from pipeline.inference.predict import load_run_config

    run_dir = Path(run_dir)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(f"--name {name!r}: letters, digits, '.', '_' and '-' only (it names a folder)")
    config = load_run_config(run_dir)
    regions = config.evaluation.regions if regions is None else dict(regions)
    nsd_tolerance = config.evaluation.nsd_tolerance_mm if nsd_tolerance is None else nsd_tolerance
    tasks = config.run_folds()
    unfinished = [task.path for task in tasks if not (task.path / "done.json").is_file()]
    if unfinished:
        raise DataError(
            unfinished[0] / "done.json",
            "missing: the fold is not finished (run-experiment first); a rescoring needs every fold's predictions",
        )
    dataset = open_dataset(config.data.dataset, config.data.root, **config.data.dataset_options())
    check_evaluation(dataset.class_names, regions, nsd_tolerance)
    splits = read_splits(run_dir / "splits.json", dataset.case_ids(), config.cross_validation.folds)
    if splits is None:
        raise DataError(run_dir / "splits.json", "missing: not a run-experiment output folder")
    rows = []
    for task in tasks:
        scored = evaluate_cases(
            splits[task.fold]["val"],
            lambda case_id, folder=task.path / "predictions": read_label_map(find_prediction(folder, case_id)),
            lambda case_id: reference_label_map(dataset, case_id),
            dataset.class_names,
            regions,
            nsd_tolerance,
            task.fold,
        )
        rows += with_seed_column(scored, task.seed) if config.seeded_layout else scored
    out_dir = rescored_dir(run_dir, name)
    write_metrics_csv(out_dir / "metrics.csv", rows)
    summary = write_summary_json(out_dir / "summary.json", rows)
    write_atomically(
        out_dir / RESCORE_RECORD,
        json.dumps(
            {
                "run_dir": str(run_dir.resolve()),
                "regions": regions,
                "nsd_tolerance_mm": nsd_tolerance,
                "cases": len({row["case"] for row in rows}),
            },
            indent=1,
        )
        + "\n",
    )
    logger.info("%s: rescored %d case(s) into %s", run_dir, len({row["case"] for row in rows}), out_dir)
    return out_dir, rows, summary
