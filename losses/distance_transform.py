"""Exact Euclidean distance transform in TensorFlow ops: on the device, and under XLA.

The boundary losses need distance maps of masks. On a CPU the host computes
them (:mod:`losses.distance_maps`, the ``edt`` library); on a GPU, and under
XLA, a host round trip would stall the device, so they are computed here, in
the graph. The transform is separable (Saito & Toriwaki 1994; Felzenszwalb &
Huttenlocher, "Distance transforms of sampled functions", 2012): the squared
distance to the nearest feature voxel is a minimum over one axis after the
other, ``f_a(x) = min_k f_{a-1}(x + k e_a) + k^2``. Along the first axis the
input is binary and the distance is a plain 1-D distance, found in
``log2(n)`` doubling steps; along every further axis the minimum runs over the
offsets ``k`` in a ``tf.while_loop`` of elementwise ops on the whole batch,
stopping once ``k^2`` exceeds every value found so far. Squared distances are
integers, exact in float32 up to 2^24 (any patch up to 2896 voxels across).
"""

from __future__ import annotations

import tensorflow as tf


def _shifted(values: tf.Tensor, offset, axis: int, fill) -> tf.Tensor:
    """``values[x + offset]`` along ``axis`` (offset positive or negative), ``fill`` beyond the edge."""
    length = values.shape[axis]
    position = tf.reshape(tf.range(length), [length if a == axis else 1 for a in range(values.shape.rank)])
    inside = (position + offset >= 0) & (position + offset < length)
    return tf.where(inside, tf.roll(values, shift=-offset, axis=axis), fill)


def _line_distance(features: tf.Tensor, axis: int) -> tf.Tensor:
    """Distance along ``axis`` to the nearest ``True`` of the same line, ``inf`` where the line has none."""
    infinity = tf.constant(float("inf"), tf.float32)
    distance = tf.where(features, 0.0, infinity)
    step = 1
    while step < features.shape[axis]:  # after steps 1, 2, 4, ... every offset below 2 * step is covered
        for offset in (step, -step):
            distance = tf.minimum(distance, _shifted(distance, offset, axis, infinity) + float(step))
        step *= 2
    return distance


def _parabola_minimum(squared: tf.Tensor, axis: int) -> tf.Tensor:
    """``min_k squared[x + k] + k^2`` along ``axis``, over every offset k that stays in the volume."""
    length = squared.shape[axis]
    infinity = tf.constant(float("inf"), tf.float32)

    def improvable(offset, best):  # an offset k can only lower values above k^2
        return (offset < length) & (tf.cast(offset * offset, tf.float32) < tf.reduce_max(best))

    def next_offset(offset, best):
        cost = tf.cast(offset * offset, tf.float32)
        for signed in (offset, -offset):
            best = tf.minimum(best, _shifted(squared, signed, axis, infinity) + cost)
        return offset + 1, best

    _, best = tf.while_loop(improvable, next_offset, (tf.constant(1), squared), maximum_iterations=max(length - 1, 0))
    return best


def squared_distance_to(features: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distance, in voxels, from every voxel to the nearest ``True`` of its sample.

    ``features`` is boolean ``(N, *spatial)`` with static spatial shape; each
    of the N samples is transformed on its own. A sample without any feature
    voxel gets ``inf`` everywhere. Equal to
    ``scipy.ndimage.distance_transform_edt(~features[n]) ** 2``.
    """
    axes = range(1, features.shape.rank)
    squared = tf.square(_line_distance(features, axes[0]))
    for axis in axes[1:]:
        squared = _parabola_minimum(squared, axis)
    return squared
