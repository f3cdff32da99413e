"""One experiment, end to end: preprocess -> split -> per fold train, predict, score -> collect.

Writes the run directory of docs/architecture.md under
``<experiment.output_root>/<experiment.name>/``:

* ``config.yaml``: the resolved config. A later run into the same folder must
  resolve to the same config (else ``ConfigError`` names the keys that
  differ), so folds of one run never mix settings.
* ``splits.json``: the folds' case ids; copied from
  ``cross_validation.splits_file`` when that is set (created there first if
  it does not exist yet, so every loss of an experiment group pairs by case).
* ``fold_K/`` (K from 0): training files (``pipeline.training.train``), then
  ``predictions/<case_id>.nii.gz`` (uint8 label map on the published image's
  grid, with its affine; 2D images: ``<case_id>.png`` at the image's size,
  0/255), ``metrics.csv`` (this fold's rows) and last
  ``done.json``. A rerun skips folds with ``done.json``, resumes training
  from the last epoch checkpoint, and keeps predictions already written.
* ``fold_K/calibration/<case_id>.json`` (written before the case's label map),
  then ``fold_K/calibration.csv`` and ``calibration_bins.csv``: ECE, Brier and
  NLL of the probabilities on the published grid (``pipeline.evaluation.calibration``).
* ``metrics.csv`` and ``summary.json`` (``pipeline.evaluation.metrics``),
  once every fold is done (and ``calibration.csv``, ``calibration_bins.csv``
  when every fold has them); until then the missing folds are logged.
* With several training seeds (``experiment.seeds``) every fold folder is
  ``seed_S/fold_K/``, trained once per seed on the same split, and the
  collected ``metrics.csv`` has a ``seed`` column (``pipeline.run_layout``).

On the console (``pipeline.console``): a header per fold with its cases, a
progress bar while the cache fills and while the validation cases are
predicted (per case and per window batch) and scored, an estimate of the
training time left after every epoch (``pipeline.training.progress``), and
the summary table on stdout.

Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import losses
from pipeline import console
from pipeline.atomic_files import remove_stale_temporaries, write_atomically
from pipeline.config import ExperimentConfig
from pipeline.data import open_dataset
from pipeline.errors import ConfigError
from pipeline.evaluation.evaluate import check_evaluation, evaluate_cases, read_label_map, summary_lines
from pipeline.evaluation.calibration import CaseCalibration, case_rows, write_calibration
from pipeline.evaluation.references import reference_label_map, scoring_region
from pipeline.evaluation.metrics import read_metrics_csv, write_metrics_csv, write_summary_json
from pipeline.faults import reported_faults
from pipeline.inference.predict import network_calls, predict_probabilities
from pipeline.inference.prediction_files import prediction_path, write_prediction
from pipeline.inference.sliding_window import keras_predictor, resolve_batch_size
from pipeline.preflight import check_experiment, check_run_dir, existing_splits
from pipeline.preprocessing import PreprocessedCache
from pipeline.preprocessing.resampling import probabilities_to_labels
from pipeline.run_layout import collect_fold_rows, fold_seed, read_csv_rows
from pipeline.training.cross_validation import make_splits
from pipeline.training.progress import EpochClock, EpochProgress
from pipeline.training.sampling import PatchBatches
from pipeline.training.train import read_retries, train_fold

logger = logging.getLogger(__name__)

#: Validation case ids a fold header lists before "... (N more)".
HEADER_CASES = 8


def run_experiment(
    config: ExperimentConfig, folds: Iterable[int] | None = None, seeds: Iterable[int] | None = None
) -> dict | None:
    """Run the given folds (default: all) of the given seeds (default: ``experiment.seeds``, or the one seed).

    Returns ``summary.json``'s content once every fold of every seed is done.

    Raises:
        ConfigError: a fold number or seed out of range, or a run folder made with another config.
        DataError: bad data, or a splits file that does not fit the data set.
        TrainingDiverged: a fold's loss or weights became NaN or infinite (exit 65).
        OutOfMemory, DiskFull, DataVanished: see ``pipeline.faults`` (exit 71, 73, 74).
    """
    all_folds = list(range(config.cross_validation.folds))
    folds = all_folds if folds is None else sorted(set(folds))
    bad = [fold for fold in folds if fold not in all_folds]
    if bad:
        raise ConfigError(
            f"--fold {bad[0]}: out of range; cross_validation.folds={len(all_folds)} "
            f"gives folds 0..{len(all_folds) - 1}"
        )
    tasks = config.run_folds(config.chosen_seeds(seeds), folds)
    dataset = open_dataset(config.data.dataset, config.data.root, **config.data.dataset_options())
    check_evaluation(dataset.class_names, config.evaluation.regions, config.evaluation.nsd_tolerance_mm)
    _check_dimensions(config, dataset)
    existing = check_experiment(config, dataset)  # bad input stops here, before the first write
    with reported_faults(config, dataset):  # memory, disk and vanished data from here on: one line, own exit code
        _claim_run_dir(config.run_dir, config)
        cache = PreprocessedCache(config.preprocessing.cache_dir, dataset, config.preprocessing.settings())
        splits = _splits(config, dataset.case_ids(), existing)
        pending = [task for task in tasks if not (task.path / "done.json").exists()]
        cache.prepare(
            sorted({case_id for task in pending for part in ("train", "val") for case_id in splits[task.fold][part]})
        )
        clock = EpochClock(config.training.epochs * len(pending))
        for task in tasks:
            run_fold(config, task.fold, splits[task.fold], dataset, cache, clock, seed=task.seed)
        return collect_metrics(config)


def run_fold(
    config: ExperimentConfig,
    fold: int,
    split: dict,
    dataset,
    cache: PreprocessedCache,
    clock: EpochClock | None = None,
    seed: int | None = None,
) -> None:
    """Train fold ``fold`` with training seed ``seed`` on ``split["train"]``, predict and score ``split["val"]``.

    ``seed`` (default: the run's first seed) is one of ``experiment.training_seeds``; the fold's folder and
    the seed of its weights, patches and augmentation follow ``pipeline.run_layout``. Skipped if done.
    ``clock`` times the epochs across folds for the estimate of the time left.
    """
    seeds = config.experiment.training_seeds
    seed = seeds[0] if seed is None else seed
    fold_dir = config.run_folds([seed], [fold])[0].path
    task_seed = fold_seed(seed, fold, seeds, config.cross_validation.folds)
    label = f"fold {fold + 1}/{config.cross_validation.folds}"
    if config.seeded_layout:
        label = f"seed {seed} {label}"
    if (fold_dir / "done.json").exists():
        logger.info("%s (%s): done, skipped", label, fold_dir)
        return
    remove_stale_temporaries(fold_dir, exclusive=True)  # left by a killed attempt: one process per fold
    logger.info(
        "%s (%s): training on %d cases, validating on %d: %s",
        label,
        fold_dir,
        len(split["train"]),
        len(split["val"]),
        _some(split["val"]),
    )
    started = time.perf_counter()
    train_cases = [cache.load(case_id) for case_id in split["train"]]
    val_cases = [cache.load(case_id) for case_id in split["val"]]
    num_channels, num_classes = train_cases[0].image.shape[-1], dataset.num_classes
    sampling = config.sampling
    common = dict(
        patch_shape=sampling.patch_shape,
        batch_size=sampling.batch_size,
        num_classes=num_classes,
        foreground_fraction=sampling.foreground_fraction,
        seed=task_seed,
        pad_value=_pad_value(config),
        workers=sampling.workers,
        **_distance_map_targets(config),
    )
    train_batches = PatchBatches(
        train_cases, batches_per_epoch=sampling.batches_per_epoch, augmentation=config.augmentation, **common
    )
    val_batches = PatchBatches(val_cases, batches_per_epoch=sampling.val_batches, fixed_patches=True, **common)
    try:
        progress = EpochProgress(clock or EpochClock(config.training.epochs), label, config.training.epochs)
        training = train_fold(
            config.training,
            config.model,
            config.loss,
            task_seed,
            fold_dir,
            train_batches,
            val_batches,
            num_channels,
            num_classes,
            callbacks=[progress],
        )
    finally:
        train_batches.close()
        val_batches.close()

    windows = resolve_batch_size(config.inference.batch_size, training.model, config.sampling.patch_shape, num_channels)
    config = config.model_copy(update={"inference": config.inference.model_copy(update={"batch_size": windows})})
    predict = keras_predictor(training.model, config.sampling.patch_shape, num_channels, windows)
    predictions = fold_dir / "predictions"
    for pre in console.progress(val_cases, len(val_cases), f"{label} predict", unit="case"):
        predict_case(
            config,
            predict,
            pre,
            num_classes,
            predictions,
            scoring_region(dataset, pre.case_id),
            CalibrationTarget(fold_dir / "calibration", fold, dataset, config.evaluation.regions),
        )
        if not console.progress_bars_enabled():
            logger.info("%s: predicted %s", label, pre.case_id)
    write_fold_calibration(fold_dir, split["val"])
    spatial_dims = len(val_cases[0].geometry.shape)
    rows = evaluate_cases(
        split["val"],
        lambda case_id: read_label_map(prediction_path(predictions, case_id, spatial_dims)),
        lambda case_id: reference_label_map(dataset, case_id),
        dataset.class_names,
        config.evaluation.regions,
        config.evaluation.nsd_tolerance_mm,
        fold,
    )
    write_metrics_csv(fold_dir / "metrics.csv", rows)
    seed_entry = {"seed": seed} if config.seeded_layout else {}
    write_atomically(
        fold_dir / "done.json",
        json.dumps(
            {
                "fold": fold,
                **seed_entry,
                "epochs": training.epochs,
                "best_val_loss": training.best_val_loss,
                "val_cases": len(val_cases),
                "seconds": round(time.perf_counter() - started, 1),
                **({"nonfinite_retries": len(training.retries)} if training.retries else {}),
            },
            indent=1,
        )
        + "\n",
    )
    logger.info("%s: done in %s", label, console.duration(time.perf_counter() - started))


@dataclass(frozen=True)
class CalibrationTarget:
    """Where a fold keeps its cases' calibration (``<folder>/<case_id>.json``), and what it is scored against."""

    folder: Path
    fold: int
    dataset: object
    regions: dict

    def record(self, case_id: str) -> Path:
        return self.folder / f"{case_id}.json"


def predict_case(
    config: ExperimentConfig,
    predict,
    pre,
    num_classes: int,
    out_dir: Path,
    region: np.ndarray | None = None,
    calibration: CalibrationTarget | None = None,
) -> Path:
    """Write the case's label map on its published grid to ``out_dir/<case_id>.nii.gz`` (2D: ``.png``); return
    the path.

    ``region``: if given, the prediction is cleared (background) outside it
    (DRIVE's field of view). ``calibration``: also write the case's calibration
    (``pipeline.evaluation.calibration``, from the same probabilities on the
    published grid as ``predict --save-probabilities`` writes) before the
    label map. A prediction already written (by an interrupted run) is kept,
    unless its calibration is missing (a run started before calibration was kept).
    """
    path = prediction_path(out_dir, pre.case_id, len(pre.geometry.shape))
    if path.exists() and (calibration is None or calibration.record(pre.case_id).exists()):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with console.bar(
        network_calls(
            pre.image.shape[:-1], config.sampling.patch_shape, config.inference_overlap, config.inference.batch_size
        ),
        pre.case_id,
        unit="batch",
    ) as windows:
        probabilities = predict_probabilities(
            predict,
            pre.image,
            num_classes,
            config.sampling.patch_shape,
            config.inference_overlap,
            config.inference,
            config.preprocessing.normalization,
            windows.update,
        )
    scores = None
    if calibration is not None:
        reference = reference_label_map(calibration.dataset, pre.case_id)
        scores = CaseCalibration(reference.labels, calibration.dataset.class_names, calibration.regions, region)
    labels = probabilities_to_labels(
        probabilities, pre.geometry.original_shape, each_class=None if scores is None else scores.add_class
    )
    if scores is not None:
        rows, bins = case_rows(pre.case_id, calibration.fold, scores)
        write_atomically(calibration.record(pre.case_id), json.dumps({"rows": rows, "bins": bins}) + "\n")
    if region is not None:
        labels[~region] = 0
    copy = Path(out_dir).parent / "predictions_nifti" / f"{pre.case_id}.nii.gz"
    write_prediction(path, labels, pre.affine, num_classes, copy if config.inference.write_nifti else None)
    return path


def write_fold_calibration(fold_dir: Path, case_ids: list[str]) -> None:
    """The fold's ``calibration.csv`` and ``calibration_bins.csv`` from its cases' records, in case order."""
    records = [json.loads((fold_dir / "calibration" / f"{case_id}.json").read_text()) for case_id in case_ids]
    write_calibration(
        fold_dir,
        [row for record in records for row in record["rows"]],
        [row for record in records for row in record["bins"]],
    )


def collect_metrics(config: ExperimentConfig) -> dict | None:
    """Join the folds' scores into ``metrics.csv`` and ``summary.json`` if every fold of every seed is done.

    With several seeds every row gets its ``seed`` (``pipeline.run_layout.collect_fold_rows``).
    """
    run_dir = config.run_dir
    tasks = config.run_folds()
    missing = [task for task in tasks if not (task.path / "done.json").exists()]
    if missing:
        logger.info(
            "%s: metrics not collected yet, folds %s not done",
            run_dir,
            ", ".join(
                str(task.path.relative_to(run_dir)) if config.seeded_layout else str(task.fold) for task in missing
            ),
        )
        return None
    rows = collect_fold_rows(tasks, "metrics.csv", read_metrics_csv, config.seeded_layout)
    write_metrics_csv(run_dir / "metrics.csv", rows)
    if all((task.path / "calibration.csv").is_file() for task in tasks):  # folds scored before calibration: none
        write_calibration(
            run_dir,
            *(
                collect_fold_rows(tasks, name, read_csv_rows, config.seeded_layout)
                for name in ("calibration.csv", "calibration_bins.csv")
            ),
        )
    summary = write_summary_json(run_dir / "summary.json", rows)
    _record_retries(run_dir, [task.path for task in tasks], summary)
    seeds = f" and {len(config.experiment.training_seeds)} seeds" if config.seeded_layout else ""
    print(f"{run_dir}: mean over {len({row['case'] for row in rows})} cases{seeds}", flush=True)
    print("\n".join(summary_lines(summary)), flush=True)
    return summary


def _record_retries(run_dir: Path, fold_dirs: list[Path], summary: dict) -> None:
    """Add the folds' non-finite retries to ``summary.json`` (``nonfinite_retries``, keyed by fold folder), if any.

    Only then: a fault-free run's summary holds the classes alone.
    """
    retries = {str(fold_dir.relative_to(run_dir)): read_retries(fold_dir) for fold_dir in fold_dirs}
    retries = {fold: records for fold, records in retries.items() if records}
    if retries:
        write_atomically(
            run_dir / "summary.json", json.dumps({**summary, "nonfinite_retries": retries}, indent=2) + "\n"
        )
        logger.warning(
            "%s: training retried after non-finite values in %s (summary.json: nonfinite_retries)",
            run_dir,
            ", ".join(retries),
        )


def _some(case_ids: list[str]) -> str:
    """The first few case ids, and how many more there are."""
    shown = ", ".join(case_ids[:HEADER_CASES])
    return shown if len(case_ids) <= HEADER_CASES else f"{shown}, ... ({len(case_ids) - HEADER_CASES} more)"


def _check_dimensions(config: ExperimentConfig, dataset) -> None:
    """The patch (and so the U-Net, augmentation and sliding window) has the data's spatial dimensions."""
    dims = 3 if getattr(dataset, "three_dim", True) else 2
    patch = list(config.sampling.patch_shape)
    if len(patch) != dims:
        raise ConfigError(
            f"sampling.patch_shape: {patch} has {len(patch)} axes, but {config.data.dataset} "
            f"images are {dims}-D: give {'(D, H, W)' if dims == 3 else '(H, W)'}"
        )


def _claim_run_dir(run_dir: Path, config: ExperimentConfig) -> None:
    """Write ``config.yaml``, or check that the run folder was made with this same config."""
    check_run_dir(config)
    if not (run_dir / "config.yaml").exists():
        write_atomically(run_dir / "config.yaml", config.to_yaml())


def _splits(config: ExperimentConfig, case_ids: list[str], existing: list[dict] | None = None) -> list[dict]:
    """The run's ``splits.json`` (and the shared splits file if configured): ``existing`` or new ones."""
    splits = existing if existing is not None else existing_splits(config, case_ids)
    if splits is None:
        splits = make_splits(case_ids, config.cross_validation.folds, config.experiment.seed)
    for path in (config.cross_validation.splits_file, config.run_dir / "splits.json"):
        if path is not None and not path.exists():
            write_atomically(path, json.dumps(splits, indent=1) + "\n")
    return splits


def _distance_map_targets(config: ExperimentConfig) -> dict:
    """``PatchBatches`` options for a loss that reads ground-truth distance maps from its target."""
    target_maps = getattr(losses.get(config.loss.name, **config.loss.params), "target_maps", None)
    if target_maps is None:
        return {}
    model = config.model
    return {"target_maps": target_maps, "target_heads": model.deep_supervision_heads if model.deep_supervision else 0}


def _pad_value(config: ExperimentConfig):
    """Image value beyond a volume's edge: 0 (background) for brain-masked MRI, else each case's minimum (air)."""
    return 0.0 if config.preprocessing.normalization == "zscore_nonzero" else "minimum"
