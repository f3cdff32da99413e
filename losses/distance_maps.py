"""Distance maps of binary masks, for the boundary-based losses, and where they come from.

Distances are in voxels, so on the resampled grid of the pipeline. The
ground-truth maps are computed once per patch by the training pipeline
(``pipeline.training.sampling``, after augmentation) and arrive with the
target: ``y_true`` then has ``2C`` channels, the one-hot labels followed by
one map per class (:class:`DistanceMapLoss`). Called with a plain one-hot
``y_true`` (``C`` channels) the loss computes the maps itself
(:func:`graph_maps`), as it must for the prediction's maps (Hausdorff-DT
loss): on a CPU on the host, with the ``edt`` library (exact, about ten
times faster than ``scipy.ndimage.distance_transform_edt``) through
``tf.numpy_function``; on a GPU and under XLA in TensorFlow ops
(:mod:`losses.distance_transform`), so that the step never leaves the
device. The values are the same. No gradient flows through the maps.

Every map function takes a float array ``(B, *spatial, C)`` of masks
(a voxel is inside where the value is > 0.5) and returns float32 maps of the
same shape, computed per sample and channel. A mask that is empty or fills
the whole patch has no boundary: its map is 0. Each map is a function of the
mask and of ``d``, the distance from each voxel to the nearest voxel on the
other side of the boundary (``d_in`` inside, ``d_out`` outside; both
boundary layers have ``d = 1``).
"""

from __future__ import annotations

from typing import Sequence

import edt
import numpy as np
import tensorflow as tf
import tensorflow.experimental.numpy as tnp

from losses.base import SegmentationLoss
from losses.distance_transform import squared_distance_to
from losses.placement import host_cpus, on_host


def _map_from_distance(kind: str, inside, distance, xp, axes):
    """The map of ``kind`` from the masks and their boundary distance ``d``, in NumPy or TensorFlow (``xp``)."""
    if kind == "unsigned":
        return distance
    if kind == "signed":
        return xp.where(inside, 1.0 - distance, distance)
    deepest = xp.max(xp.where(inside, distance, 0.0), axis=axes, keepdims=True)
    return xp.where(inside, (deepest - distance) / xp.maximum(deepest, 1.0), 0.0)


def boundary_distance(inside: np.ndarray) -> np.ndarray:
    """``d`` of one boolean mask: each voxel's distance to the nearest voxel on the other side.

    One pass of ``edt`` over the mask as two labels (the distance of a voxel
    to the nearest voxel of another label), ``d_in + d_out`` without
    computing two transforms, on every CPU (``edt``'s own threads, which
    scale where threads over masks would not: it holds the GIL in parts).
    The mask must have a boundary.
    """
    labels = np.where(inside, np.uint8(1), np.uint8(2))
    return edt.edt(labels, black_border=False, parallel=host_cpus())


def host_maps(kind: str, masks: np.ndarray) -> np.ndarray:
    """Maps of ``kind`` for every (sample, channel) mask of ``(B, *spatial, C)``."""
    inside = np.asarray(masks) > 0.5
    maps = np.zeros(inside.shape, np.float32)
    spatial = tuple(range(inside.ndim - 2))

    for sample in range(inside.shape[0]):
        for channel in range(inside.shape[-1]):
            mask = inside[sample, ..., channel]
            if mask.any() and not mask.all():
                maps[sample, ..., channel] = _map_from_distance(kind, mask, boundary_distance(mask), np, spatial)
    return maps


def signed_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Signed distance to the boundary, negative inside (Kervadec et al. 2019).

    ``phi = d_out`` outside the mask (distance to the nearest inside voxel)
    and ``phi = -(d_in - 1)`` inside (``d_in``: distance to the nearest outside
    voxel), so the inner boundary layer is 0, as in the authors' code.
    """
    return host_maps("signed", masks)


def unsigned_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Unsigned distance to the boundary, ``d = d_in + d_out`` (Karimi & Salcudean 2019).

    One of the two terms is 0 at every voxel; both boundary layers get 1.
    """
    return host_maps("unsigned", masks)


def inverted_distance_maps(masks: np.ndarray) -> np.ndarray:
    """Inverted, normalised distance inside each mask, 0 outside (Caliva et al. 2019).

    ``D = (max d_in - d_in) / max d_in`` on the mask: 0 at its deepest voxel,
    largest next to its boundary, as in Ma's SegLoss reference code.
    """
    return host_maps("inverted", masks)


def device_maps(kind: str, masks: tf.Tensor) -> tf.Tensor:
    """:func:`host_maps` in TensorFlow ops (:func:`losses.distance_transform.squared_distance_to`).

    ``masks`` is ``(B, *spatial, C)`` with static spatial shape and channel count.
    """
    rank = masks.shape.rank
    spatial = masks.shape[1:-1]
    if None in spatial or masks.shape[-1] is None:
        raise ValueError(f"distance maps in the graph need a static patch shape and class count, got {masks.shape}")
    channels_first = tf.transpose(masks > 0.5, [0, rank - 1] + list(range(1, rank - 1)))
    inside = tf.reshape(channels_first, [-1, *spatial])
    count = tf.shape(inside)[0]
    squared = squared_distance_to(tf.concat([~inside, inside], axis=0))  # to the outside, to the inside
    distance = tf.sqrt(tf.where(inside, squared[:count], squared[count:]))
    axes = tuple(range(1, rank - 1))
    has_boundary = tf.reduce_any(inside, axis=axes, keepdims=True) & ~tf.reduce_all(inside, axis=axes, keepdims=True)
    maps = tf.where(has_boundary, _map_from_distance(kind, inside, distance, tnp, axes), 0.0)
    maps = tf.reshape(maps, tf.shape(channels_first))
    return tf.transpose(maps, [0] + list(range(2, rank)) + [1])


def graph_maps(kind: str, masks: tf.Tensor) -> tf.Tensor:
    """Maps of ``kind`` for every channel of ``masks`` inside the graph, without gradient, static shapes kept.

    On the host (``edt``, through ``tf.numpy_function``) where
    :func:`losses.placement.on_host` says so, in TensorFlow ops otherwise
    (a GPU, or XLA ``jit_compile``).
    """
    masks = tf.cast(masks, tf.float32)
    if on_host():
        maps = tf.numpy_function(lambda values: host_maps(kind, values), [masks], tf.float32, stateful=False)
        maps.set_shape(masks.shape)
    else:
        maps = device_maps(kind, masks)
    return tf.stop_gradient(maps)


def class_maps(kind: str, one_hot: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Maps of ``kind`` for the listed classes of a one-hot ``(B, *spatial, C)`` array, 0 for the others."""
    maps = np.zeros(one_hot.shape, np.float32)
    if len(classes):
        maps[..., list(classes)] = host_maps(kind, one_hot[..., list(classes)])
    return maps


class DistanceMapLoss(SegmentationLoss):
    """Base class of the losses that weigh voxels by ground-truth distance maps.

    ``y_true`` is either the one-hot target ``(B, *spatial, C)``, whose maps
    are then computed here (:func:`graph_maps`), or the
    pipeline's target ``(B, *spatial, 2C)``: one-hot, then channel ``C + c``
    holding class c's map of kind :attr:`distance_map` (0 for classes outside
    :meth:`map_classes`), as :meth:`target_maps` makes it. Subclasses
    implement ``compute(y_true, y_pred, maps)`` with one-hot ``y_true``.
    """

    distance_map: str = ""  # "signed", "unsigned" or "inverted"

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
            one_hot = tf.ensure_shape(
                tf.cond(feeds_maps, lambda: y_true[..., :num_classes], lambda: y_true), y_pred.shape
            )
            maps = tf.cond(feeds_maps, lambda: y_true[..., num_classes:], lambda: self._computed_maps(one_hot))
        else:
            raise ValueError(
                f"{self.name}: y_true has {channels} channels; expected {num_classes} (one-hot) "
                f"or {2 * num_classes} (one-hot and distance maps) for {num_classes} classes"
            )
        one_hot = tf.ensure_shape(one_hot, y_pred.shape)
        maps = tf.ensure_shape(maps, y_pred.shape)
        return self.compute(one_hot, y_pred, tf.stop_gradient(maps))

    def _computed_maps(self, one_hot: tf.Tensor) -> tf.Tensor:
        classes = self.map_classes(one_hot.shape[-1])
        if not classes:
            return tf.zeros_like(one_hot)
        maps = graph_maps(self.distance_map, tf.gather(one_hot, classes, axis=-1))
        by_class = {c: maps[..., i] for i, c in enumerate(classes)}
        zeros = tf.zeros_like(one_hot[..., 0])
        return tf.stack([by_class.get(c, zeros) for c in range(one_hot.shape[-1])], axis=-1)
