"""The papers' figures from finished runs, rendered to PNG bytes (matplotlib, Agg).

* ``dsc_distribution_png``: per-case DSC per loss, one panel per class (box
  plot with every case as a point).
* ``seed_noise_png`` (runs of several seeds): per class, on the left every
  loss's mean per seed (dots) with the mean over seeds ± its seed SD; on the
  right every pair's difference of means with its 95 % two-level bootstrap
  interval (cases and seeds, thick) and the cases-only interval (thin).
* ``reliability_png`` (``--metric ece|brier|nll``): a reliability diagram per
  loss from the runs' ``calibration_bins.csv``, every voxel pooled.
* ``training_curves_png``: training and validation loss per epoch, one panel
  per loss, one colour per fold, integer epoch ticks, the legend outside.
* ``case_slices_png``: one case under every loss, per class the axial slice
  with the most ground-truth voxels of that class (for a class the case does
  not have: the slice with the most false positives); false positives in
  magenta and false negatives in green over the image, as the Unified Focal
  repository shows them, the ground truth as a yellow contour. Slices are drawn
  in the radiological convention for any affine: patient's right on the
  image's left, anterior up (``radiological_axial_slices``). A 2D image is
  shown whole, over the original photograph in colour (as the repository's 2D
  comparison figure).

Figures are built on ``matplotlib.figure.Figure`` directly, so no pyplot
state or interactive backend is involved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from pipeline.errors import ConfigError, DataError
from pipeline.evaluation.evaluate import read_label_map
from pipeline.evaluation.runs import Run
from pipeline.evaluation.tables import metric_title

FALSE_POSITIVE_RGBA = (1.0, 0.0, 1.0, 0.75)  # magenta
FALSE_NEGATIVE_RGBA = (0.0, 1.0, 0.0, 0.75)  # green
GROUND_TRUTH_RGBA = (1.0, 0.85, 0.0, 0.5)  # yellow
GROUND_TRUTH_CONTOUR = (1.0, 0.85, 0.0, 1.0)  # yellow
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


def seed_noise_png(runs: Sequence[Run], metric: str, differences: dict) -> bytes:
    """Seed noise beside the loss differences (module doc); ``differences``: class -> ``seed_differences``."""
    class_names = list(differences)
    pairs = max(len(value) for value in differences.values())
    height = max(2.6, 0.45 * max(pairs, len(runs)) + 1.4)
    figure = Figure(figsize=(10.5, height * len(class_names)), layout="constrained")
    title = metric_title(metric)
    for index, class_name in enumerate(class_names):
        seeds_axes = figure.add_subplot(len(class_names), 2, 2 * index + 1)
        for position, run in enumerate(runs):
            per_seed_means = run.per_seed(class_name, metric).mean(axis=0).to_numpy()
            y = len(runs) - 1 - position
            seeds_axes.scatter(
                per_seed_means,
                np.full(per_seed_means.size, y),
                s=22,
                color="C0",
                alpha=0.7,
                label="one seed's mean" if position == 0 else None,
                zorder=3,
            )
            spread = per_seed_means.std(ddof=1) if per_seed_means.size > 1 else 0.0
            seeds_axes.errorbar(
                per_seed_means.mean(),
                y,
                xerr=spread,
                fmt="|",
                color="k",
                markersize=14,
                capsize=4,
                label="mean ± seed SD" if position == 0 else None,
                zorder=2,
            )
        seeds_axes.set_yticks(range(len(runs)), [run.label for run in reversed(runs)])
        seeds_axes.set_ylim(-0.7, len(runs) - 0.3)
        seeds_axes.set_xlabel(f"mean {title} over cases")
        seeds_axes.set_title(f"{class_name}: mean per seed")
        seeds_axes.legend(fontsize="small", loc="best")
        pair_axes = figure.add_subplot(len(class_names), 2, 2 * index + 2)
        rows = differences[class_name]
        for position, (_, _, result) in enumerate(rows):
            y = len(rows) - 1 - position
            pair_axes.plot(
                [result.case_low, result.case_high],
                [y + 0.18] * 2,
                color="C1",
                linewidth=1.5,
                label="95 % interval, cases only" if position == 0 else None,
            )
            pair_axes.plot(
                [result.low, result.high],
                [y] * 2,
                color="C3",
                linewidth=4,
                solid_capstyle="butt",
                label="95 % interval, cases and seeds" if position == 0 else None,
            )
            pair_axes.plot(
                result.difference, y, "o", color="k", markersize=5, label="difference" if position == 0 else None
            )
        pair_axes.axvline(0.0, color="0.5", linewidth=0.8, linestyle="--")
        pair_axes.set_yticks(range(len(rows)), [f"{row} − {column}" for row, column, _ in reversed(rows)])
        pair_axes.set_ylim(-0.7, len(rows) - 0.3)
        pair_axes.set_xlabel(f"difference of mean {title} (row − column)")
        pair_axes.set_title(f"{class_name}: difference, two-level bootstrap")
        pair_axes.legend(fontsize="small", loc="best")
    return _png(figure)


def pooled_reliability(run: Run) -> dict[str, np.ndarray]:
    """A run's top-label bins summed over its cases (and seeds): ``voxels``, ``confidence`` and ``correct`` sums.

    Raises ``DataError`` for a run without ``calibration_bins.csv`` (scored before calibration was kept).
    """
    import pandas as pd

    path = run.path / "calibration_bins.csv"
    if not path.is_file():
        raise DataError(path, "missing: the run was scored before calibration was kept")
    bins = pd.read_csv(path).groupby("bin")[["voxels", "confidence", "correct"]].sum()
    return {column: bins[column].to_numpy(dtype=float) for column in ("voxels", "confidence", "correct")}


def reliability_png(runs: Sequence[Run]) -> bytes:
    """Reliability diagram per loss: accuracy against confidence of the arg-max class, pooled over every voxel
    of every case, 15 equal-width bins (Guo et al. 2017), the diagonal as perfect calibration, and below each
    the share of voxels per bin (log scale: most voxels are confident background)."""
    from pipeline.evaluation.calibration import BINS

    columns = min(len(runs), 4)
    rows = math.ceil(len(runs) / columns)
    figure = Figure(figsize=(3.3 * columns, 4.6 * rows), layout="constrained")
    grid = figure.add_gridspec(2 * rows, columns, height_ratios=[3, 1] * rows)
    edges = np.linspace(0.0, 1.0, BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for index, run in enumerate(runs):
        pooled = pooled_reliability(run)
        voxels = pooled["voxels"]
        filled = voxels > 0
        accuracy = np.divide(pooled["correct"], voxels, out=np.zeros(BINS), where=filled)
        confidence = np.divide(pooled["confidence"], voxels, out=np.zeros(BINS), where=filled)
        ece = float(np.sum(np.abs(pooled["correct"] - pooled["confidence"])) / max(voxels.sum(), 1))
        top = figure.add_subplot(grid[2 * (index // columns), index % columns])
        top.bar(centres[filled], accuracy[filled], width=1 / BINS, color="C0", edgecolor="white", label="accuracy")
        top.bar(
            centres[filled],
            (confidence - accuracy)[filled],
            bottom=accuracy[filled],
            width=1 / BINS,
            color=(0.85, 0.2, 0.2, 0.35),
            edgecolor="C3",
            linewidth=0.5,
            label="gap to confidence",
        )
        top.plot([0, 1], [0, 1], "--", color="0.3", linewidth=1, label="perfect calibration")
        top.set_xlim(0, 1)
        top.set_ylim(0, 1)
        top.set_title(f"{run.label}\nECE {ece:.4f} (pooled voxels)", fontsize="medium")
        top.set_ylabel("accuracy of the arg-max class")
        if index == 0:
            top.legend(fontsize="x-small", loc="upper left")
        share = figure.add_subplot(grid[2 * (index // columns) + 1, index % columns], sharex=top)
        share.bar(centres, voxels / max(voxels.sum(), 1), width=1 / BINS, color="0.5")
        share.set_yscale("log")
        share.set_xlabel("confidence (max softmax)")
        share.set_ylabel("voxel share")
    return _png(figure)


def training_curves_png(runs: Sequence[Run]) -> bytes | None:
    """``training_curves_figure`` as PNG; ``None`` when no run has a ``fold_K/log.csv``."""
    if not any(run.logs for run in runs):
        return None
    return _png(training_curves_figure(runs))


def training_curves_figure(runs: Sequence[Run]) -> Figure:
    """Loss (solid) and validation loss (dashed) per epoch and fold, one panel per loss.

    Epoch ticks are whole numbers; one legend (folds and line styles) sits
    outside the panels, so it never hides a curve.
    """
    columns = min(3, len(runs))
    rows = math.ceil(len(runs) / columns)
    figure = Figure(figsize=(4.2 * columns + 1.4, 3.2 * rows), layout="constrained")
    folds = sorted({_fold_of(key) for run in runs for key in run.logs})
    for index, run in enumerate(runs):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.set_title(run.label)
        axes.set_xlabel("epoch")
        axes.set_ylabel("loss")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if not run.logs:
            axes.text(0.5, 0.5, "no log.csv", ha="center", va="center", transform=axes.transAxes)
            continue
        for key, log in run.logs.items():  # several seeds: every seed's curve in its fold's colour
            color = f"C{_fold_of(key) % 10}"
            axes.plot(log["epoch"], log["loss"], color=color, marker=".")
            axes.plot(log["epoch"], log["val_loss"], color=color, linestyle="--", marker=".")
        epochs = [epoch for log in run.logs.values() for epoch in log["epoch"]]
        axes.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)  # whole epochs even when there is only one
    handles = [Line2D([], [], color=f"C{fold % 10}", label=f"fold {fold}") for fold in folds]
    handles += [Line2D([], [], color="k", label="loss"), Line2D([], [], color="k", linestyle="--", label="val_loss")]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small")
    return figure


def _fold_of(log_key: int | tuple[int, int]) -> int:
    """The fold of a ``Run.logs`` key: ``K``, or ``(S, K)`` in a run of several seeds."""
    return log_key[1] if isinstance(log_key, tuple) else log_key


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
            raise DataError(
                run.metrics_path,
                f"class {name!r} is neither a class of the data set "
                f"({', '.join(class_names)}) nor an evaluation.regions entry",
            )
    return labels


def radiological_axial_slices(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Axial slices of ``volume`` as a radiologist reads them, for any affine.

    The array is reoriented to the closest canonical RAS+ axes (nibabel's
    ``io_orientation``, the reasoning of ``as_closest_canonical``), then
    ``out[k]`` is the k-th axial slice from inferior to superior with rows from
    anterior (top) to posterior and columns from the patient's right (image
    left) to the patient's left. KiTS19 stores (slices, H, W) and BraTS20
    (x, y, z); both come out the same way round. Extra trailing axes
    (channels) are kept.
    """
    ras = nib.orientations.apply_orientation(volume, nib.orientations.io_orientation(affine))
    return np.moveaxis(np.flip(ras, axis=(0, 1)), (0, 1, 2), (2, 1, 0))


def radiological_pixel_aspect(affine: np.ndarray) -> float:
    """Height / width of one pixel of ``radiological_axial_slices`` (anterior–posterior over left–right spacing)."""
    affine = np.asarray(affine, dtype=np.float64)
    orientation = nib.orientations.io_orientation(affine)
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    spacing = np.empty(3)
    spacing[orientation[:, 0].astype(int)] = zooms
    return float(spacing[1] / spacing[0])


def densest_slice(mask: np.ndarray, axis: int) -> int:
    """Index along ``axis`` of the slice with the most ``True`` voxels (the first on ties)."""
    other_axes = tuple(a for a in range(mask.ndim) if a != axis)
    return int(np.argmax(mask.sum(axis=other_axes)))


def slice_to_show(truth: np.ndarray, predictions: Sequence[np.ndarray]) -> tuple[int, str]:
    """The axial slice (axis 0 of the stacks) to draw one class on, and why.

    The slice with the most ground-truth voxels; for a class the case does not
    have, the one with the most false positives summed over the losses (every
    predicted voxel is one there); with neither, the middle slice.
    """
    if truth.any():
        return densest_slice(truth, 0), "most ground truth"
    false_positives = sum(prediction & ~truth for prediction in predictions)
    if np.any(false_positives):
        return densest_slice(false_positives, 0), "absent; most false positives"
    return truth.shape[0] // 2, "absent, not predicted; middle"


def _overlay(shape: tuple[int, int], layers: Sequence[tuple[np.ndarray, tuple]]) -> np.ndarray:
    rgba = np.zeros((*shape, 4))
    for mask, color in layers:
        rgba[mask] = color
    return rgba


def case_slices_png(runs: Sequence[Run], case_id: str, dataset) -> bytes:
    """One case under every loss: a row per scored class, columns image, ground truth, each loss.

    Each row shows the axial slice chosen by ``slice_to_show`` (so that a small
    tumour is not drawn on a slice that misses it), the same slice under every
    loss, in the radiological convention. Raises ``DataError`` naming a missing
    or mismatched prediction.
    """
    case = dataset.load(case_id)
    planar = case.label.ndim == 2  # a 2D image: one "slice", as stored, the photograph in colour

    def slices(array: np.ndarray) -> np.ndarray:
        return array[None] if planar else radiological_axial_slices(array, case.affine)

    predictions = {}
    for run in runs:
        path = run.prediction_path(case_id)
        if not path.is_file():
            raise DataError(path, "prediction missing")
        prediction = read_label_map(path).labels
        if prediction.shape != case.label.shape:
            raise DataError(path, f"shape {prediction.shape} differs from the ground truth's {case.label.shape}")
        predictions[run.label] = slices(prediction)
    image = slices(case.image[..., 0])
    colour = np.clip(case.image / 255.0, 0, 1) if planar and case.image.shape[-1] == 3 else None
    label = slices(case.label)
    aspect = 1.0 if planar else radiological_pixel_aspect(case.affine)
    low, high = np.percentile(image, [1, 99])
    labels_of = class_labels(runs[0], list(dataset.class_names))

    columns = 2 + len(runs)
    figure = Figure(figsize=(2.4 * columns, 2.6 * len(labels_of)), layout="constrained")
    for row, (class_name, labels) in enumerate(labels_of.items()):
        truth = np.isin(label, labels)
        predicted = {name: np.isin(stack, labels) for name, stack in predictions.items()}
        index, reason = slice_to_show(truth, list(predicted.values()))
        true_mask = truth[index]
        panels = [("image", []), ("ground truth", [(true_mask, GROUND_TRUTH_RGBA)])]
        for run in runs:
            predicted_mask = predicted[run.label][index]
            dsc = run.per_case(class_name, "dsc")[case_id]
            panels.append(
                (
                    f"{run.label}\nDSC {dsc:.3f}",
                    [
                        (predicted_mask & ~true_mask, FALSE_POSITIVE_RGBA),
                        (true_mask & ~predicted_mask, FALSE_NEGATIVE_RGBA),
                    ],
                )
            )
        for column, (title, layers) in enumerate(panels):
            axes = figure.add_subplot(len(labels_of), columns, row * columns + column + 1)
            if colour is not None:
                axes.imshow(colour, interpolation="nearest")
            else:
                axes.imshow(image[index], cmap="gray", vmin=low, vmax=high, interpolation="nearest", aspect=aspect)
            if layers:
                axes.imshow(_overlay(true_mask.shape, layers), interpolation="nearest", aspect=aspect)
            if column > 0 and true_mask.any() and not true_mask.all():
                axes.contour(
                    true_mask.astype(np.float32), levels=[0.5], colors=[GROUND_TRUTH_CONTOUR], linewidths=1.2, zorder=3
                )
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(title, fontsize="small")
            if column == 0 and planar:
                axes.set_ylabel(class_name, fontsize="small")
            elif column == 0:
                axes.set_ylabel(f"{class_name}\nslice {index + 1}/{len(label)} ({reason})", fontsize="small")
                axes.text(0.02, 0.5, "R", color="w", transform=axes.transAxes, va="center", fontsize="small")
                axes.text(
                    0.98, 0.5, "L", color="w", transform=axes.transAxes, va="center", ha="right", fontsize="small"
                )
                axes.text(0.5, 0.97, "A", color="w", transform=axes.transAxes, ha="center", va="top", fontsize="small")
    figure.legend(
        handles=[
            Line2D([], [], color=GROUND_TRUTH_CONTOUR, label="ground truth (contour)"),
            Patch(color=FALSE_POSITIVE_RGBA, label="false positive"),
            Patch(color=FALSE_NEGATIVE_RGBA, label="false negative"),
        ],
        loc="outside lower center",
        ncols=3,
        fontsize="small",
    )
    figure.suptitle(
        f"{case_id}: the image as stored"
        if planar
        else f"{case_id}: axial slices, radiological view (patient's right on the left, anterior up; "
        "slices counted inferior to superior)",
        fontsize="medium",
    )
    return _png(figure)
