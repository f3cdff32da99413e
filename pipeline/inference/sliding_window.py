"""Sliding-window prediction over a whole volume, with Gaussian weighting of the window centres.

A network trained on patches sees a whole volume through overlapping windows
of the patch shape. Windows are evenly spaced so that neighbours share at
least ``overlap`` voxels and the last window ends at the volume's edge
(nnU-Net's placement). Each window's softmax output is weighted by a Gaussian
centred on the window (sigma = ``sigma_scale`` x patch size per axis,
nnU-Net's 1/8 by default), because predictions near a patch border see less
context; the weighted sum is divided by the summed weights. Volumes smaller
than the patch are padded (with ``pad_value``, as in training) and cropped
back.

Speed: the weight map is computed once per patch shape, windows are predicted
``batch_size`` at a time by one traced ``tf.function`` and added into the
output arrays in place.

References: Isensee et al., "nnU-Net", Nature Methods 2021 (sliding window
with Gaussian importance weighting).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Callable, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter

PredictBatch = Callable[[np.ndarray], np.ndarray]
"""Maps a batch ``(B, *patch_shape, M)`` float32 to probabilities ``(B, *patch_shape, C)``."""


@functools.lru_cache(maxsize=8)
def gaussian_importance_map(patch_shape: tuple[int, ...], sigma_scale: float = 0.125) -> np.ndarray:
    """Weights of a window's voxels: a Gaussian centred on the window, maximum 1, never 0.

    Args:
        patch_shape: the window shape.
        sigma_scale: standard deviation per axis as a fraction of the window size.
    """
    impulse = np.zeros(patch_shape, np.float64)
    impulse[tuple(size // 2 for size in patch_shape)] = 1.0
    weights = gaussian_filter(impulse, [size * sigma_scale for size in patch_shape], mode="constant", cval=0.0)
    weights /= weights.max()
    weights = weights.astype(np.float32)
    # Far corners underflow to 0; a voxel covered only by corners would then be 0/0.
    weights[weights == 0] = weights[weights > 0].min()
    weights.setflags(write=False)
    return weights


def window_starts(size: int, patch: int, overlap: int) -> list[int]:
    """Evenly spaced window starts along one axis; neighbours share at least ``overlap`` voxels.

    The first window starts at 0 and the last ends at ``size`` (``size >= patch``).
    """
    if size <= patch:
        return [0]
    stride = patch - overlap
    count = math.ceil((size - patch) / stride) + 1
    return [int(round(i * (size - patch) / (count - 1))) for i in range(count)]


def sliding_window_predict(
    predict_batch: PredictBatch,
    image: np.ndarray,
    patch_shape: Sequence[int],
    overlap: Sequence[int],
    num_classes: int,
    sigma_scale: float = 0.125,
    batch_size: int = 2,
    pad_value: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Class probabilities ``(*spatial, C)`` float32 for a whole ``(*spatial, M)`` image, 2D or 3D.

    The number of spatial axes is ``len(patch_shape)``: an (H, W, M) photograph
    with a (h, w) window, or a (D, H, W, M) volume with a (d, h, w) one. An
    image no larger than the window is predicted whole, in one call.

    Args:
        predict_batch: the network, e.g. :func:`keras_predictor` of a model.
        image: the preprocessed image, channels last.
        patch_shape: the window (the training patch shape).
        overlap: voxels shared by neighbouring windows per axis (< patch_shape).
        num_classes: output channels of ``predict_batch``.
        sigma_scale: Gaussian weighting, see :func:`gaussian_importance_map`.
        batch_size: windows per call of ``predict_batch``; the last batch is
            filled with repeats so that every call has the same shape.
        pad_value: image value around a volume smaller than the patch: a
            number or one per channel (use what training padded with).
    """
    patch_shape = tuple(int(p) for p in patch_shape)
    spatial = image.shape[:-1]
    if len(spatial) != len(patch_shape):
        raise ValueError(
            f"image of shape {image.shape} does not fit a {len(patch_shape)}-D window {patch_shape} "
            "(expected (*spatial, channels))"
        )
    padding = [(max(p - s, 0) // 2, max(p - s, 0) - max(p - s, 0) // 2) for s, p in zip(spatial, patch_shape)]
    crop = tuple(slice(before, before + size) for (before, _), size in zip(padding, spatial))
    if any(sum(pad) for pad in padding):
        padded_image = np.empty([s + sum(pad) for s, pad in zip(spatial, padding)] + [image.shape[-1]], np.float32)
        padded_image[...] = pad_value
        padded_image[crop] = image
        image = padded_image
    padded = image.shape[:-1]
    weights = gaussian_importance_map(patch_shape, float(sigma_scale))
    summed = np.zeros((*padded, num_classes), np.float32)
    weight_sum = np.zeros(padded, np.float32)
    corners = list(itertools.product(*(window_starts(s, p, o) for s, p, o in zip(padded, patch_shape, overlap))))
    for first in range(0, len(corners), batch_size):
        batch_corners = corners[first : first + batch_size]
        windows = [tuple(slice(c, c + p) for c, p in zip(corner, patch_shape)) for corner in batch_corners]
        batch = np.stack([image[window] for window in windows] + [image[windows[-1]]] * (batch_size - len(windows)))
        probabilities = np.asarray(predict_batch(batch.astype(np.float32, copy=False)))
        for window, patch_probabilities in zip(windows, probabilities):
            patch_probabilities *= weights[..., None]
            summed[window] += patch_probabilities
            weight_sum[window] += weights
    summed /= weight_sum[..., None]
    return summed[crop]


AUTO_MAX_WINDOWS = 32


def resolve_batch_size(batch_size, model, patch_shape: Sequence[int], num_channels: int) -> int:
    """``inference.batch_size`` as a number: itself, or for ``"auto"`` as many windows as the GPU holds.

    ``"auto"`` tries one forward pass of ``model`` on ``AUTO_MAX_WINDOWS``
    windows and halves the count until it fits in the GPU's memory; on a
    machine without a GPU it is 2 (a CPU gains nothing from larger batches).
    """
    if batch_size != "auto":
        return int(batch_size)
    import tensorflow as tf

    if not tf.config.list_logical_devices("GPU"):
        return 2
    windows = AUTO_MAX_WINDOWS
    while windows > 1:
        try:
            model(tf.zeros((windows, *patch_shape, num_channels)), training=False)
            return windows
        except tf.errors.ResourceExhaustedError:
            windows //= 2
    return 1


@functools.lru_cache(maxsize=2)
def keras_predictor(model, patch_shape: tuple[int, ...], num_channels: int, batch_size: int) -> PredictBatch:
    """A :data:`PredictBatch` running ``model(x, training=False)`` in one traced ``tf.function``.

    Only the first output is used (the full-resolution one of a deeply
    supervised model). Cached: the same model and window reuse the trace.
    """
    import tensorflow as tf

    signature = tf.TensorSpec((batch_size, *patch_shape, num_channels), tf.float32)

    @tf.function(input_signature=[signature])
    def predict(batch):
        outputs = model(batch, training=False)
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return tf.cast(outputs, tf.float32)

    return lambda batch: predict(batch).numpy()
