"""Distance maps of binary masks, for the boundary-based losses.

The maps are computed on the CPU with ``scipy.ndimage.distance_transform_edt``
(distances in voxels, so on the resampled grid of the pipeline) and enter the
graph through ``tf.numpy_function``: no gradient flows through them, and a
model compiled with such a loss cannot be XLA-compiled. They depend on the
ground truth only (and, for the Hausdorff loss, on the thresholded
prediction); the pipeline may later pass precomputed ground-truth maps as an
optimisation, with the same definitions.

Every map function takes a float array ``(B, *spatial, C)`` of masks
(a voxel is inside where the value is > 0.5) and returns float32 maps of the
same shape, computed per sample and channel. A mask that is empty or fills
the whole patch has no boundary: its map is 0.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf
from scipy.ndimage import distance_transform_edt


def _map_each_channel(masks: np.ndarray, map_one: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``map_one`` to every (sample, channel) mask that has a boundary."""
    inside = np.asarray(masks) > 0.5
    maps = np.zeros(inside.shape, np.float32)
    for sample in range(inside.shape[0]):
        for channel in range(inside.shape[-1]):
            mask = inside[sample, ..., channel]
            if mask.any() and not mask.all():
                maps[sample, ..., channel] = map_one(mask)
    return maps


def inner_distance(mask: np.ndarray) -> np.ndarray:
    """Distance from each voxel of ``mask`` to the nearest voxel outside it (0 outside).

    Equal to ``distance_transform_edt(mask)``, but computed on the mask's
    bounding box grown by one voxel: for any voxel inside, the grown box's
    border holds an outside voxel at least as close as any voxel beyond it.
    A small structure in a large patch (a tumour) then costs little.
    """
    box = []
    for axis in range(mask.ndim):
        occupied = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(occupied[0] - 1, 0), occupied[-1] + 2))
    distance = np.zeros(mask.shape)
    distance[tuple(box)] = distance_transform_edt(mask[tuple(box)])
    return distance


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    return inner_distance(~mask) - (inner_distance(mask) - 1.0) * mask


def signed_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Signed distance to the boundary, negative inside (Kervadec et al. 2019).

    ``phi = d_out`` outside the mask (distance to the nearest inside voxel)
    and ``phi = -(d_in - 1)`` inside (``d_in``: distance to the nearest outside
    voxel), so the inner boundary layer is 0, as in the authors' code.
    """
    return _map_each_channel(masks, _signed_distance)


def _unsigned_distance(mask: np.ndarray) -> np.ndarray:
    return inner_distance(mask) + inner_distance(~mask)


def unsigned_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Unsigned distance to the boundary, ``d = d_in + d_out`` (Karimi & Salcudean 2019).

    One of the two terms is 0 at every voxel; both boundary layers get 1.
    """
    return _map_each_channel(masks, _unsigned_distance)


def _inverted_inner_distance(mask: np.ndarray) -> np.ndarray:
    inner = inner_distance(mask)
    deepest = inner.max()
    return (deepest - inner) * mask / deepest


def inverted_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Inverted, normalised distance inside each mask, 0 outside (Caliva et al. 2019).

    ``D = (max d_in - d_in) / max d_in`` on the mask: 0 at its deepest voxel,
    largest next to its boundary, as in Ma's SegLoss reference code.
    """
    return _map_each_channel(masks, _inverted_inner_distance)


def distance_maps(map_function: Callable[[np.ndarray], np.ndarray], masks: tf.Tensor) -> tf.Tensor:
    """Run a map function above inside the graph, without gradient, keeping static shapes.

    Works eagerly, under ``tf.function`` and in a compiled Keras model (not
    under XLA ``jit_compile``).
    """
    maps = tf.numpy_function(map_function, [masks], tf.float32, stateful=False)
    maps.set_shape(masks.shape)
    return tf.stop_gradient(maps)
