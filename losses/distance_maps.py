"""Distance maps of binary masks, for the boundary-based losses, and where they come from.

The maps are computed on the CPU with ``scipy.ndimage.distance_transform_edt``
(distances in voxels, so on the resampled grid of the pipeline). The
ground-truth maps are computed once per patch by the training pipeline
(``pipeline.training.sampling``, after augmentation) and arrive with the
target: ``y_true`` then has ``2C`` channels, the one-hot labels followed by
one map per class (:class:`DistanceMapLoss`), and the loss is pure TensorFlow
(XLA-compilable, no host round trip). Called with a plain one-hot ``y_true``
(``C`` channels) the loss computes the maps itself, through
``tf.numpy_function``: the same values, slower, not under XLA. No gradient
flows through the maps either way.

Every map function takes a float array ``(B, *spatial, C)`` of masks
(a voxel is inside where the value is > 0.5) and returns float32 maps of the
same shape, computed per sample and channel. A mask that is empty or fills
the whole patch has no boundary: its map is 0.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf
from scipy.ndimage import distance_transform_edt

from losses.base import SegmentationLoss
from losses.sorting import in_xla_context


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


MAP_FUNCTIONS = {"signed": signed_distance_maps, "unsigned": unsigned_distance_maps,
                 "inverted": inverted_distance_maps}


def class_maps(kind: str, one_hot: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Maps of ``kind`` for the listed classes of a one-hot ``(B, *spatial, C)`` array, 0 for the others."""
    maps = np.zeros(one_hot.shape, np.float32)
    if len(classes):
        maps[..., list(classes)] = MAP_FUNCTIONS[kind](one_hot[..., list(classes)])
    return maps


class DistanceMapLoss(SegmentationLoss):
    """Base class of the losses that weigh voxels by ground-truth distance maps.

    ``y_true`` is either the one-hot target ``(B, *spatial, C)``, whose maps
    are then computed here (``tf.numpy_function``, not under XLA), or the
    pipeline's target ``(B, *spatial, 2C)``: one-hot, then channel ``C + c``
    holding class c's map of kind :attr:`distance_map` (0 for classes outside
    :meth:`map_classes`), as :meth:`target_maps` makes it. Subclasses
    implement ``compute(y_true, y_pred, maps)`` with one-hot ``y_true``.
    """

    distance_map: str = ""  # a key of MAP_FUNCTIONS

    def map_classes(self, num_classes: int) -> list[int]:
        """The classes whose maps the loss reads; the others stay 0."""
        return list(range(num_classes))

    def target_maps(self, one_hot: np.ndarray) -> np.ndarray:
        """The map channels of one patch's target, from its one-hot labels ``(*spatial, C)``."""
        return class_maps(self.distance_map, one_hot[None], self.map_classes(one_hot.shape[-1]))[0]

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.float32)
        num_classes = y_pred.shape[-1]
        channels = y_true.shape[-1]
        if channels == 2 * num_classes:
            one_hot, maps = y_true[..., :num_classes], y_true[..., num_classes:]
        elif channels == num_classes:
            one_hot, maps = y_true, self._computed_maps(y_true)
        elif channels is None:  # a target without static shape: decided when it arrives
            feeds_maps = tf.equal(tf.shape(y_true)[-1], 2 * num_classes)
            one_hot = tf.ensure_shape(tf.cond(feeds_maps, lambda: y_true[..., :num_classes], lambda: y_true),
                                      y_pred.shape)
            maps = tf.cond(feeds_maps, lambda: y_true[..., num_classes:],
                           lambda: self._computed_maps(one_hot))
        else:
            raise ValueError(f"{self.name}: y_true has {channels} channels; expected {num_classes} (one-hot) "
                             f"or {2 * num_classes} (one-hot and distance maps) for {num_classes} classes")
        one_hot = tf.ensure_shape(one_hot, y_pred.shape)
        maps = tf.ensure_shape(maps, y_pred.shape)
        return self.compute(one_hot, y_pred, tf.stop_gradient(maps))

    def _computed_maps(self, one_hot: tf.Tensor) -> tf.Tensor:
        if in_xla_context():
            raise ValueError(f"{self.name}: under XLA (jit_compile) the distance maps must come with the "
                             "target (one-hot and maps, 2C channels), as the training pipeline feeds them")
        classes = self.map_classes(one_hot.shape[-1])
        return distance_maps(lambda masks: class_maps(self.distance_map, masks, classes), one_hot)
