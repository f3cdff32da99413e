"""The papers' figures from finished runs, rendered to PNG bytes (matplotlib, Agg).

* ``dsc_distribution_png``: per-case DSC per loss, one panel per class (box
  plot with every case as a point).
* ``training_curves_png``: training and validation loss per epoch, one panel
  per loss, one colour per fold.
* ``case_slices_png``: one case under every loss, per class the axial slice
  with the most ground-truth voxels of that class; false positives in magenta
  and false negatives in green over the image, as the Unified Focal
  repository shows them.

Figures are built on ``matplotlib.figure.Figure`` directly, so no pyplot
state or interactive backend is involved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pipeline.errors import ConfigError, DataError
from pipeline.evaluation.runs import Run

FALSE_POSITIVE_RGBA = (1.0, 0.0, 1.0, 0.75)   # magenta
FALSE_NEGATIVE_RGBA = (0.0, 1.0, 0.0, 0.75)   # green
GROUND_TRUTH_RGBA = (1.0, 0.85, 0.0, 0.5)     # yellow
DPI = 100


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def default_cases(runs: Sequence[Run], count: int = 3) -> list[str]:
    """Cases with the lowest, median and highest DSC (mean over losses and classes).

    Deterministic: ties are broken by case id; the lower median is taken for
    an even number of cases. ``count`` (default 3) spreads the picks evenly
    from lowest to highest.
    """
    means = sum(run.scores.groupby("case")["dsc"].mean() for run in runs) / len(runs)
    ordered = sorted(means.items(), key=lambda item: (item[1], item[0]))
    if count == 1:
        positions = [(len(ordered) - 1) // 2]
    else:
        positions = [round(i * (len(ordered) - 1) / (count - 1)) for i in range(count)]
    return list(dict.fromkeys(ordered[position][0] for position in positions))


def dsc_distribution_png(runs: Sequence[Run]) -> bytes:
    """Per-case DSC of every loss, one panel per class: box plot plus jittered points."""
    class_names = runs[0].class_names()
    labels = [run.label for run in runs]
    figure = Figure(figsize=(max(4.0, 0.9 * len(runs) + 1.5), 3.8 * len(class_names)), layout="constrained")
    jitter = np.random.default_rng(0)
    for row, class_name in enumerate(class_names):
        axes = figure.add_subplot(len(class_names), 1, row + 1)
        values = [run.per_case(class_name, "dsc").to_numpy() for run in runs]
        axes.boxplot(values, tick_labels=labels, showfliers=False, widths=0.5)
        for position, dsc in enumerate(values, start=1):
            axes.scatter(position + jitter.uniform(-0.15, 0.15, dsc.size), dsc, s=10, alpha=0.6, color="C0")
        axes.set_title(f"{class_name}: per-case DSC (n = {values[0].size})")
        axes.set_ylabel("DSC")
        axes.set_ylim(-0.02, 1.02)
        axes.tick_params(axis="x", labelrotation=30)
        axes.grid(axis="y", alpha=0.3)
    return _png(figure)


def training_curves_png(runs: Sequence[Run]) -> bytes | None:
    """Loss (solid) and validation loss (dashed) per epoch and fold, one panel per loss.

    Returns ``None`` when no run has a ``fold_K/log.csv``.
    """
    if not any(run.logs for run in runs):
        return None
    columns = min(3, len(runs))
    rows = math.ceil(len(runs) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), layout="constrained")
    for index, run in enumerate(runs):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.set_title(run.label)
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        if not run.logs:
            axes.text(0.5, 0.5, "no log.csv", ha="center", va="center", transform=axes.transAxes)
            continue
        for fold, log in run.logs.items():
            color = f"C{fold % 10}"
            axes.plot(log["epoch"], log["loss"], color=color, label=f"fold {fold}")
            axes.plot(log["epoch"], log["val_loss"], color=color, linestyle="--")
        handles = [Line2D([], [], color="k", label="loss"), Line2D([], [], color="k", linestyle="--", label="val_loss")]
        axes.legend(handles=axes.get_legend_handles_labels()[0] + handles, fontsize="x-small", loc="upper right")
    return _png(figure)


def open_run_dataset(run: Run):
    """The data set named in the run's config (``data.dataset``, ``data.root`` and its options).

    Raises ``DataError`` when ``data.root`` is missing, so that callers can
    skip the case figures with that message.
    """
    config_path = run.path / "config.yaml"
    root = run.data.get("root")
    if root is None or not Path(root).is_dir():
        raise DataError(root or config_path, f"data root missing (data.root in {config_path})")
    from pipeline.config import DataSection
    from pipeline.data import open_dataset
    from pydantic import ValidationError

    try:
        data = DataSection.model_validate(run.data)
    except ValidationError as error:
        problem = error.errors()[0]
        raise ConfigError(f"{config_path}: data.{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
    return open_dataset(data.dataset, data.root, **data.dataset_options())


def class_labels(run: Run, class_names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Scored class or region name -> the labels it covers.

    Classes are the data set's ``class_names``; composite regions come from the
    run's ``evaluation.regions``.
    """
    labels = {}
    for name in run.class_names():
        if name in class_names:
            labels[name] = (class_names.index(name),)
        elif name in run.regions:
            labels[name] = tuple(int(label) for label in run.regions[name])
        else:
            raise DataError(run.metrics_path, f"class {name!r} is neither a class of the data set "
                                              f"({', '.join(class_names)}) nor an evaluation.regions entry")
    return labels


def axial_axis(affine: np.ndarray) -> int:
    """The array axis pointing most along the world's superior–inferior (z) direction.

    KiTS19 arrays are (slices, H, W) and BraTS20 arrays (x, y, z), so the
    axial slice axis comes from the affine, not from a fixed position.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    return int(np.argmax(np.abs(directions[2]) / np.linalg.norm(directions, axis=0)))


def densest_slice(mask: np.ndarray, axis: int) -> int:
    """Index along ``axis`` of the slice with the most ``True`` voxels (the first on ties)."""
    other_axes = tuple(a for a in range(mask.ndim) if a != axis)
    return int(np.argmax(mask.sum(axis=other_axes)))


def _overlay(shape: tuple[int, int], layers: Sequence[tuple[np.ndarray, tuple]]) -> np.ndarray:
    rgba = np.zeros((*shape, 4))
    for mask, color in layers:
        rgba[mask] = color
    return rgba


def case_slices_png(runs: Sequence[Run], case_id: str, dataset) -> bytes:
    """One case under every loss: a row per scored class, columns image, ground truth, each loss.

    Each row shows the axial slice with the most ground-truth voxels of its
    class (so that a small tumour is not drawn on a slice that misses it), the
    same slice under every loss. Raises ``DataError`` naming a missing or
    mismatched prediction.
    """
    from pipeline.data.nifti import read_mask

    case = dataset.load(case_id)
    predictions = {}
    for run in runs:
        path = run.prediction_path(case_id)
        if not path.is_file():
            raise DataError(path, "prediction missing")
        prediction = read_mask(path).data
        if prediction.shape != case.label.shape:
            raise DataError(path, f"shape {prediction.shape} differs from the ground truth's {case.label.shape}")
        predictions[run.label] = prediction
    axis = axial_axis(case.affine)
    low, high = np.percentile(case.image[..., 0], [1, 99])
    labels_of = class_labels(runs[0], list(dataset.class_names))

    columns = 2 + len(runs)
    figure = Figure(figsize=(2.4 * columns, 2.6 * len(labels_of)), layout="constrained")
    for row, (class_name, labels) in enumerate(labels_of.items()):
        index = densest_slice(np.isin(case.label, labels), axis)
        image = np.take(case.image[..., 0], index, axis=axis)
        true_mask = np.isin(np.take(case.label, index, axis=axis), labels)
        panels = [("image", []), ("ground truth", [(true_mask, GROUND_TRUTH_RGBA)])]
        for run in runs:
            predicted_mask = np.isin(np.take(predictions[run.label], index, axis=axis), labels)
            dsc = run.per_case(class_name, "dsc")[case_id]
            panels.append((f"{run.label}\nDSC {dsc:.3f}", [
                (predicted_mask & ~true_mask, FALSE_POSITIVE_RGBA),
                (true_mask & ~predicted_mask, FALSE_NEGATIVE_RGBA),
            ]))
        for column, (title, layers) in enumerate(panels):
            axes = figure.add_subplot(len(labels_of), columns, row * columns + column + 1)
            axes.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            if layers:
                axes.imshow(_overlay(image.shape, layers), interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(title, fontsize="small")
            if column == 0:
                axes.set_ylabel(f"{class_name}, slice {index}")
    figure.legend(
        handles=[Patch(color=FALSE_POSITIVE_RGBA, label="false positive"),
                 Patch(color=FALSE_NEGATIVE_RGBA, label="false negative")],
        loc="outside lower center", ncols=2, fontsize="small",
    )
    figure.suptitle(f"{case_id}: axial slices (array axis {axis})")
    return _png(figure)
