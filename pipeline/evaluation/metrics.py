"""Per-case segmentation scores from label maps: DSC, precision and recall per class and region.

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
pass over the voxels.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pipeline.atomic_files import write_atomically

METRICS = ("dsc", "precision", "recall")
COLUMNS = ("case", "fold", "class", *METRICS)


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
    pairs = truth.astype(np.int64) * num_classes + prediction
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def region_scores(confusion: np.ndarray, labels: Iterable[int]) -> Scores:
    """Scores of the union of ``labels`` from a confusion matrix, with the empty-mask conventions."""
    inside = np.zeros(len(confusion), bool)
    inside[list(labels)] = True
    tp = int(confusion[np.ix_(inside, inside)].sum())
    fn = int(confusion[np.ix_(inside, ~inside)].sum())
    fp = int(confusion[np.ix_(~inside, inside)].sum())
    if tp + fn == 0 and tp + fp == 0:
        return Scores(1.0, 1.0, 1.0)
    return Scores(
        dsc=2 * tp / (2 * tp + fp + fn),
        precision=tp / (tp + fp) if tp + fp else 0.0,
        recall=tp / (tp + fn) if tp + fn else 0.0,
    )


def score_case(truth: np.ndarray, prediction: np.ndarray, class_names: Sequence[str],
               regions: Mapping[str, Sequence[int]] | None = None) -> dict[str, Scores]:
    """Scores of every foreground class, then of every composite region, by name.

    Args:
        truth: ground-truth label map, values in ``[0, len(class_names))``.
        prediction: predicted label map of the same shape.
        class_names: one name per label, background (label 0) first; it is not scored.
        regions: composite regions, name -> labels scored as one structure
            (e.g. ``{"kidney_and_tumour": [1, 2]}``).
    """
    regions = dict(regions or {})
    clashes = sorted(set(regions) & set(class_names))
    if clashes:
        raise ValueError(f"region name {clashes[0]!r} is also a class name")
    for name, labels in regions.items():
        bad = [label for label in labels if not 0 < label < len(class_names)]
        if bad:
            raise ValueError(f"region {name!r}: labels {bad} are not foreground classes "
                             f"(1..{len(class_names) - 1})")
    confusion = confusion_matrix(truth, prediction, len(class_names))
    scores = {name: region_scores(confusion, [label]) for label, name in enumerate(class_names) if label}
    scores.update({name: region_scores(confusion, labels) for name, labels in regions.items()})
    return scores


def score_rows(case_id: str, fold: int, scores: Mapping[str, Scores]) -> list[dict]:
    """``metrics.csv`` rows (case, fold, class, dsc, precision, recall) of one case."""
    return [{"case": case_id, "fold": fold, "class": name,
             "dsc": s.dsc, "precision": s.precision, "recall": s.recall}
            for name, s in scores.items()]


def write_metrics_csv(path, rows: Sequence[Mapping]) -> None:
    """Write ``metrics.csv`` atomically, columns :data:`COLUMNS`, rows in the given order."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomically(path, text.getvalue())


def read_metrics_csv(path) -> list[dict]:
    """The rows written by :func:`write_metrics_csv`, with numbers parsed."""
    with open(path, newline="") as handle:
        return [{"case": row["case"], "fold": int(row["fold"]), "class": row["class"],
                 **{metric: float(row[metric]) for metric in METRICS}}
                for row in csv.DictReader(handle)]


def summarize(rows: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """Mean of each metric per class (and region), over cases: ``{class: {metric: mean, "cases": n}}``."""
    summary: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(row["class"] for row in rows):
        selected = [row for row in rows if row["class"] == name]
        summary[name] = {metric: float(np.mean([row[metric] for row in selected])) for metric in METRICS}
        summary[name]["cases"] = len(selected)
    return summary


def write_summary_json(path, rows: Sequence[Mapping]) -> dict:
    """Write ``summary.json`` (see :func:`summarize`) atomically and return it."""
    summary = summarize(rows)
    write_atomically(path, json.dumps(summary, indent=2) + "\n")
    return summary
