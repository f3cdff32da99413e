"""Resampling volumes to a voxel spacing: separable linear interpolation, label-safe.

Linear interpolation is separable, so it is computed as one 1-D pass per axis
(``np.take`` of the two neighbours and a weighted sum), the most shrinking
axis first so later passes touch fewer voxels. That is the same result as
``scipy.ndimage.zoom(order=1, grid_mode=True, mode="nearest")`` at ~1/3 of
its cost, and ~1/80 of MIScnn's cubic ``Resampling`` (batchgenerators/skimage).

Grid convention: the field of view is kept (``grid_mode``): voxel ``j`` of an
axis resampled from ``n`` to ``m`` voxels samples input coordinate
``(j + 0.5) n / m - 0.5``, clamped to the edge. Mapping back uses the same
function from ``m`` to ``n``.

Label maps are never interpolated as numbers (that would invent a class 1
between 0 and 2): each class's indicator is interpolated linearly and every
voxel takes the class with the largest value (as nnU-Net's
``resize_segmentation``). Probabilities are interpolated per class and
arg-maxed the same way, which is smoother than nearest-neighbour on labels.
"""

from __future__ import annotations

import numpy as np

from pipeline.miscnn_compat import miscnn

Abstract_Subfunction = miscnn.processing.subfunctions.abstract_subfunction.Abstract_Subfunction


def resampled_shape(shape, spacing, target_spacing) -> tuple[int, ...]:
    """``round(shape * spacing / target_spacing)`` per axis, at least 1."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target_spacing))


def _sample_positions(length: int, size: int) -> np.ndarray:
    """Input coordinate of each of ``size`` output voxel centres along an axis of ``length`` voxels."""
    return np.clip((np.arange(size) + 0.5) * (length / size) - 0.5, 0, length - 1)


def _interpolate_along(array: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """1-D linear interpolation of ``array`` along ``axis`` at ``positions`` (float32)."""
    lower = np.floor(positions).astype(np.intp)
    upper = np.minimum(lower + 1, array.shape[axis] - 1)
    weight_shape = [1] * array.ndim
    weight_shape[axis] = len(positions)
    weight = (positions - lower).astype(np.float32).reshape(weight_shape)
    result = np.take(array, lower, axis=axis).astype(np.float32, copy=False)
    difference = np.take(array, upper, axis=axis).astype(np.float32, copy=False)
    difference -= result
    difference *= weight
    result += difference
    return result


def _shrinking_first(shape, new_shape) -> list[int]:
    return sorted(range(len(new_shape)), key=lambda axis: new_shape[axis] / shape[axis])


def resample_linear(array: np.ndarray, new_shape) -> np.ndarray:
    """Linear resampling of the first ``len(new_shape)`` axes (2 or 3) to ``new_shape``; trailing axes
    (channels) are kept.

    Returns float32; an axis already of the right size is not touched.
    """
    result = array
    for axis in _shrinking_first(array.shape, new_shape):
        if result.shape[axis] != new_shape[axis]:
            result = _interpolate_along(result, axis, _sample_positions(result.shape[axis], new_shape[axis]))
    return np.asarray(result, dtype=np.float32)


def _resample_indicator(indicator: np.ndarray, new_shape):
    """Linear resampling of a boolean mask, computed only in the box of output voxels it reaches.

    Returns (output region, values there), or ``None`` if the mask is empty.
    A class usually fills a small box (a kidney: a few % of a CT), so this
    saves most of the work; outside the box the result is exactly 0.
    """
    output_region, input_region, local_positions = [], [], []
    for axis, (length, size) in enumerate(zip(indicator.shape, new_shape)):
        present = np.flatnonzero(indicator.any(axis=tuple(other for other in range(indicator.ndim) if other != axis)))
        if present.size == 0:
            return None
        positions = _sample_positions(length, size)
        first = int(np.searchsorted(positions, present[0] - 1, side="right"))
        last = int(np.searchsorted(positions, present[-1] + 1, side="left"))
        if first >= last:
            return None
        positions = positions[first:last]
        low = int(np.floor(positions[0]))
        high = min(int(np.floor(positions[-1])) + 2, length)
        output_region.append(slice(first, last))
        input_region.append(slice(low, high))
        local_positions.append(positions - low)
    values = indicator[tuple(input_region)].view(np.uint8)
    for axis in _shrinking_first(indicator.shape, new_shape):
        values = _interpolate_along(values, axis, local_positions[axis])
    return tuple(output_region), values.astype(np.float32, copy=False)


def resample_labels(labels: np.ndarray, new_shape, num_classes: int | None = None) -> np.ndarray:
    """Resample a label map ((D,) H, W) label-safely: per-class linear interpolation, then arg-max.

    Only foreground classes present are interpolated, each within its own
    box; background scores ``1 - sum(foreground)`` (the indicators sum to 1).
    Ties go to the lower class.
    """
    if tuple(labels.shape) == tuple(new_shape):
        return labels.astype(np.uint8)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    best_label = np.zeros(new_shape, dtype=np.uint8)
    best_score = np.zeros(new_shape, dtype=np.float32)
    foreground = np.zeros(new_shape, dtype=np.float32)
    for label in range(1, num_classes):
        resampled = _resample_indicator(labels == label, new_shape)
        if resampled is None:
            continue
        region, score = resampled
        foreground[region] += score
        best_label[region][score > best_score[region]] = label
        np.maximum(best_score[region], score, out=best_score[region])
    best_label[1.0 - foreground >= best_score] = 0
    return best_label


def probabilities_to_labels(probabilities: np.ndarray, new_shape, each_class=None) -> np.ndarray:
    """Resample class probabilities ((D,) H, W, C) linearly, one class at a time, and arg-max (uint8).

    ``each_class(label, resampled)``, if given, receives every class's resampled
    probabilities in turn (e.g. to stream them to a file without holding all classes).
    """
    best_label = np.zeros(new_shape, dtype=np.uint8)
    best_score = np.full(new_shape, -np.inf, dtype=np.float32)
    for label in range(probabilities.shape[-1]):
        score = resample_linear(probabilities[..., label], new_shape)
        if each_class is not None:
            each_class(label, score)
        best_label[score > best_score] = label
        np.maximum(best_score, score, out=best_score)
    return best_label


class LinearResampling(Abstract_Subfunction):
    """MIScnn subfunction: resample a sample to ``new_spacing`` (image linear, labels label-safe).

    A drop-in for ``miscnn.Resampling`` (which interpolates cubically through
    skimage: ~9 s instead of ~0.3 s for a KiTS19 case). It reads the sample's
    ``extended["spacing"]``, records ``extended["original_shape"]`` and
    ``extended["original_spacing"]``, and sets ``extended["spacing"]`` to the new spacing.
    ``postprocessing`` maps a prediction back: probabilities (``activation_output``)
    linearly, label maps label-safely.
    """

    def __init__(self, new_spacing=(1.0, 1.0, 1.0)):
        self.new_spacing = tuple(float(size) for size in new_spacing)

    def preprocessing(self, sample, training=True):
        shape = sample.img_data.shape[:-1]
        spacing = tuple(float(size) for size in sample.extended["spacing"])
        new_shape = self.new_shape(shape, spacing)
        sample.extended["original_shape"] = shape
        sample.extended["original_spacing"] = spacing
        sample.extended["spacing"] = tuple(n * s / m for n, s, m in zip(shape, spacing, new_shape))
        sample.img_data = resample_linear(sample.img_data, new_shape)
        if training and sample.seg_data is not None:
            labels = resample_labels(sample.seg_data[..., 0], new_shape, sample.classes)
            sample.seg_data = labels[..., None]

    def postprocessing(self, sample, prediction, activation_output=False):
        original_shape = sample.extended["original_shape"]
        if activation_output:
            return resample_linear(prediction, original_shape)
        return resample_labels(np.asarray(prediction), original_shape, sample.classes)

    def new_shape(self, shape, spacing) -> tuple[int, ...]:
        return resampled_shape(shape, spacing, self.new_spacing)


class LinearResize(LinearResampling):
    """MIScnn subfunction: resize a sample to a fixed grid ``new_shape`` (2D (H, W) or 3D), as ``LinearResampling``.

    For data without a meaningful spacing (photographs, ultrasound frames of
    varying size) a fixed grid plays the role of the target spacing; the
    spacing recorded afterwards is ``shape * spacing / new_shape``, and
    ``postprocessing`` (or ``restore_to_original``) maps predictions back to
    each case's own size.
    """

    def __init__(self, new_shape):
        self.fixed_shape = tuple(int(size) for size in new_shape)

    def new_shape(self, shape, spacing) -> tuple[int, ...]:
        if len(shape) != len(self.fixed_shape):
            raise ValueError(
                f"cannot resize a {len(shape)}-D image to the {len(self.fixed_shape)}-D grid {list(self.fixed_shape)}"
            )
        return self.fixed_shape
