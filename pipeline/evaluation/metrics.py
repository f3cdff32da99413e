"""Per-case segmentation scores from label maps: voxel counts, DSC, precision and recall per class and region.

For a class (or a composite region, a set of labels scored as one, e.g. the
KiTS19 challenge's "kidney" = label > 0), with ``TP``, ``FP`` and ``FN`` the
voxel counts of the prediction against the ground truth:

* ``DSC = 2 TP / (2 TP + FP + FN)`` (Dice 1945, Sorensen 1948)
* ``precision = TP / (TP + FP)``
* ``recall = TP / (TP + FN)``

Empty masks (docs/architecture.md, "Metric conventions"):

* ground truth and prediction both empty: the case scores 1 on all three (the
  model correctly found nothing);
* only one of them empty: the undefined ratio is 0 (a missed structure has
  recall 0 and, by convention, precision 0; a hallucinated one has precision 0
  and recall 0); DSC is 0 in both situations, which its formula already gives.

All classes and regions are counted from one confusion matrix, built in one
pass over the voxels. ``metrics.csv`` keeps the counts beside the ratios
(:data:`CSV_COLUMNS`), and the surface metrics of ``pipeline.evaluation.surface``
(HD95, NSD); ``pipeline.evaluation.evaluate`` fills them from label-map files.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pipeline.atomic_files import write_atomically
from pipeline.run_layout import SEED_COLUMN

METRICS = ("dsc", "precision", "recall")
"""The ratios, each in [0, 1], higher is better."""
SURFACE_METRICS = ("hd95", "nsd")
"""HD95 in mm (lower is better) and NSD in [0, 1] (higher is better)."""
COUNTS = ("tp", "fp", "fn", "reference_voxels", "prediction_voxels")
"""Voxel counts: any other overlap metric can be computed from them without predicting again."""
COLUMNS = ("case", "fold", "class", *METRICS)
"""The columns every ``metrics.csv`` has (runs scored before counts and surface metrics were kept have only these)."""
CHUNK_VOXELS = 1 << 24
"""Voxels counted per pass of :func:`confusion_matrix` (its temporary array: 128 MiB)."""
CSV_COLUMNS = ("case", "fold", "class", *COUNTS, *METRICS, *SURFACE_METRICS, "nsd_tolerance_mm")
"""The columns :func:`write_metrics_csv` writes (and ``seed`` after ``fold`` for a run of several seeds)."""
CALIBRATION_METRICS = ("ece", "brier", "nll")
"""Per-case calibration of the probabilities (``pipeline.evaluation.calibration``, ``calibration.csv``): lower is
better."""
LOWER_IS_BETTER = ("hd95", *CALIBRATION_METRICS)
"""Metrics for which a lower value is better (distances, calibration errors); every other metric: higher is better."""


def higher_is_better(metric: str) -> bool:
    """Whether a higher value of ``metric`` is better (the direction tables and rankings use)."""
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Counts:
    """Voxel counts of one structure in one case: true positives, false positives, false negatives."""

    tp: int
    fp: int
    fn: int

    @property
    def reference_voxels(self) -> int:
        return self.tp + self.fn

    @property
    def prediction_voxels(self) -> int:
        return self.tp + self.fp


@dataclass(frozen=True)
class Scores:
    """DSC, precision and recall of one structure in one case."""

    dsc: float
    precision: float
    recall: float


def confusion_matrix(truth: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """``(C, C)`` voxel counts, ``[t, p]`` = voxels of true label ``t`` predicted as ``p``.

    Raises ``ValueError`` if the shapes differ or a label is outside ``[0, C)``.
    """
    if truth.shape != prediction.shape:
        raise ValueError(f"label maps differ in shape: truth {truth.shape}, prediction {prediction.shape}")
    truth = np.asarray(truth).ravel()
    prediction = np.asarray(prediction).ravel()
    for name, labels in (("truth", truth), ("prediction", prediction)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes - 1}]")
    counts = np.zeros(num_classes * num_classes, np.int64)
    for start in range(0, truth.size, CHUNK_VOXELS):  # bounded memory for 512 x 512 x 1000 volumes
        pairs = truth[start : start + CHUNK_VOXELS].astype(np.intp) * num_classes
        pairs += prediction[start : start + CHUNK_VOXELS]
        counts += np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def region_counts(confusion: np.ndarray, labels: Iterable[int]) -> Counts:
    """TP, FP and FN of the union of ``labels`` from a confusion matrix."""
    inside = np.zeros(len(confusion), bool)
    inside[list(labels)] = True
    return Counts(
        tp=int(confusion[np.ix_(inside, inside)].sum()),
        fp=int(confusion[np.ix_(~inside, inside)].sum()),
        fn=int(confusion[np.ix_(inside, ~inside)].sum()),
    )


def ratios(counts: Counts) -> Scores:
    """DSC, precision and recall from voxel counts, with the empty-mask conventions."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    if tp + fn == 0 and tp + fp == 0:
        return Scores(1.0, 1.0, 1.0)
    return Scores(
        dsc=2 * tp / (2 * tp + fp + fn),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
    )


def region_scores(confusion: np.ndarray, labels: Iterable[int]) -> Scores:
    """Scores of the union of ``labels`` from a confusion matrix, with the empty-mask conventions."""
    return ratios(region_counts(confusion, labels))


def structures(class_names: Sequence[str], regions: Mapping[str, Sequence[int]] | None = None) -> dict[str, list[int]]:
    """Every scored structure, name -> labels: each foreground class, then each composite region.

    Raises ``ValueError`` for a region named like a class or listing a label that is not a foreground class.
    """
    regions = dict(regions or {})
    clashes = sorted(set(regions) & set(class_names))
    if clashes:
        raise ValueError(f"region name {clashes[0]!r} is also a class name")
    for name, labels in regions.items():
        bad = [label for label in labels if not 0 < label < len(class_names)]
        if bad:
            raise ValueError(f"region {name!r}: labels {bad} are not foreground classes (1..{len(class_names) - 1})")
    return {
        **{name: [label] for label, name in enumerate(class_names) if label},
        **{name: list(labels) for name, labels in regions.items()},
    }


def score_case(
    truth: np.ndarray,
    prediction: np.ndarray,
    class_names: Sequence[str],
    regions: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Scores]:
    """Scores of every foreground class, then of every composite region, by name.

    Args:
        truth: ground-truth label map, values in ``[0, len(class_names))``.
        prediction: predicted label map of the same shape.
        class_names: one name per label, background (label 0) first; it is not scored.
        regions: composite regions, name -> labels scored as one structure
            (e.g. ``{"kidney_and_tumour": [1, 2]}``).
    """
    scored = structures(class_names, regions)
    confusion = confusion_matrix(truth, prediction, len(class_names))
    return {name: region_scores(confusion, labels) for name, labels in scored.items()}


def write_metrics_csv(path, rows: Sequence[Mapping]) -> None:
    """Write ``metrics.csv`` atomically, rows in the given order.

    Columns: :data:`CSV_COLUMNS` when the rows have them all, else :data:`COLUMNS`; ``seed`` after ``fold``
    when every row has one (a run of several seeds, ``pipeline.run_layout``).
    """
    text = io.StringIO()
    columns = CSV_COLUMNS if rows and all(column in row for row in rows for column in CSV_COLUMNS) else COLUMNS
    if rows and all(SEED_COLUMN in row for row in rows):
        columns = (*columns[:2], SEED_COLUMN, *columns[2:])
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())


def read_metrics_csv(path) -> list[dict]:
    """The rows written by :func:`write_metrics_csv`, with numbers parsed (counts as int)."""
    with open(path, newline="") as handle:
        return [
            {
                name: (
                    value
                    if name in ("case", "class")
                    else int(value)
                    if name in ("fold", SEED_COLUMN, *COUNTS)
                    else float(value)
                )
                for name, value in row.items()
                if name in CSV_COLUMNS or name == SEED_COLUMN
            }
            for row in csv.DictReader(handle)
        ]


def summarize(rows: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """Mean of each metric per class (and region), over cases: ``{class: {metric: mean, "cases": n}}``.

    HD95 and NSD are included when every row has them.
    """
    metrics = [*METRICS, *(metric for metric in SURFACE_METRICS if rows and all(metric in row for row in rows))]
    summary: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(row["class"] for row in rows):
        selected = [row for row in rows if row["class"] == name]
        summary[name] = {metric: float(np.mean([row[metric] for row in selected])) for metric in metrics}
        summary[name]["cases"] = len(selected)
    return summary


def summarize_seeds(rows: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """:func:`summarize` of rows of several seeds: each mean with its seed-to-seed SD.

    ``{class: {metric: mean, metric_seed_sd: SD, "cases": n, "seeds": S}}``: ``mean`` over every
    (case, seed) row (each case is scored once per seed, so it is also the mean of the per-seed means),
    ``metric_seed_sd`` the SD (``ddof=1``) over seeds of the per-seed means, ``cases`` the cases per seed.
    """
    seeds = list(dict.fromkeys(row[SEED_COLUMN] for row in rows))
    per_seed = [summarize([row for row in rows if row[SEED_COLUMN] == seed]) for seed in seeds]
    summary = {}
    for name, means in summarize(rows).items():
        summary[name] = {}
        for metric, mean in means.items():
            if metric == "cases":
                continue
            summary[name][metric] = mean
            summary[name][f"{metric}_seed_sd"] = float(np.std([part[name][metric] for part in per_seed], ddof=1))
        summary[name]["cases"] = per_seed[0][name]["cases"]
        summary[name]["seeds"] = len(seeds)
    return summary


def write_summary_json(path, rows: Sequence[Mapping]) -> dict:
    """Write ``summary.json`` atomically and return it: :func:`summarize`, or with several seeds
    :func:`summarize_seeds`."""
    several = len({row.get(SEED_COLUMN) for row in rows}) > 1
    summary = summarize_seeds(rows) if several else summarize(rows)
    write_atomically(path, json.dumps(summary, indent=2) + "\n")
    return summary
