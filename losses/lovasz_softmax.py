"""Lovász-softmax loss: a convex surrogate of the Jaccard loss, per class and image.

Berman, Rannen Triki & Blaschko, "The Lovász-softmax loss: a tractable
surrogate for the optimization of the intersection-over-union measure in
neural networks", CVPR 2018 (``per_image=True``, ``classes="present"`` of the
authors' code; ``batch=True`` is their ``per_image=False``).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag, repeated_per_sample, spatial_axes
from losses.registry import register
from losses.placement import on_host
from losses.sorting import lovasz_weights


def lovasz_gradient(truth_sorted: tf.Tensor) -> tf.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss, along the last axis.

    For ground truth ``g`` sorted by decreasing error, with ``G = sum g``:
    ``J_k = 1 - (G - cumsum(g)_k) / (G + cumsum(1 - g)_k)`` and the gradient is
    ``J_1, J_2 - J_1, ..., J_N - J_{N-1}`` (Berman et al., Algorithm 1). The
    union is at least 1, so no division by zero can occur.
    """
    total = tf.reduce_sum(truth_sorted, axis=-1, keepdims=True)
    intersection = total - tf.cumsum(truth_sorted, axis=-1)
    union = total + tf.cumsum(1.0 - truth_sorted, axis=-1)
    jaccard = 1.0 - intersection / union
    return tf.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)


@register("lovasz_softmax")
class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovász extension of the Jaccard loss on the errors ``|g_ic - p_ic|``.

    Per sample and class c, the errors ``m_i = |g_ic - p_ic|`` are sorted in
    decreasing order (``pi``) and ``loss_c = sum_k m_pi(k) * grad_k``, where
    ``grad`` is :func:`lovasz_gradient` of the sorted ground truth. The
    sample's loss is the mean over the classes present in its ground truth.
    The sort costs ``O(N log N)`` per class; the cumulative sums run in float32,
    exact up to 2^24 voxels per patch. On a CPU the order comes from NumPy
    (:mod:`losses.sorting`, about 20 times faster than TensorFlow's sort
    there), on a GPU or under XLA from ``tf.math.top_k``; the values are the same.

    Pooling over the batch (``batch=True``, the authors' ``per_image=False``)
    sorts the errors of all of the batch's voxels together, as one image:
    one Jaccard surrogate per class present anywhere in the batch, the mean
    over those classes repeated per sample. The float32 cumulative sums are
    then exact up to 2^24 voxels per batch.

    Args:
        batch: pool the batch's voxels into one image; default False: per
            image, the surrogate of a per-case Jaccard index.
    """

    def __init__(self, batch: bool = False, name: str = "lovasz_softmax", reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)
        self.batch = checked_flag(name, "batch", batch)

    def compute(self, y_true, y_pred):
        if not self.batch:
            return self._per_image(y_true, y_pred)
        # The samples laid end to end along the first spatial axis: one image (the sort ignores where voxels lie).
        as_one_image = tf.concat([[1, -1], tf.shape(y_true)[2:]], axis=0)
        pooled = self._per_image(tf.reshape(y_true, as_one_image), tf.reshape(y_pred, as_one_image))
        return repeated_per_sample(pooled, y_true)

    def _hyperparameters(self):
        return {"batch": self.batch}

    def _per_image(self, y_true, y_pred):
        """The loss of each image of the batch, ``(B,)``."""
        errors = tf.abs(y_true - y_pred)
        if on_host():
            per_class = tf.reduce_sum(errors * _host_lovasz_weights(y_true, errors), axis=spatial_axes(errors))
        else:
            per_class = _sorted_lovasz(y_true, errors)
        present = tf.cast(tf.reduce_sum(y_true, axis=spatial_axes(y_true)) > 0.0, tf.float32)
        return tf.reduce_sum(per_class * present, axis=-1) / tf.maximum(tf.reduce_sum(present, axis=-1), 1.0)


def _sorted_lovasz(y_true, errors):
    """Per sample and class, ``(B, C)``: the errors sorted in the graph (``top_k``, for GPUs and XLA)."""
    num_classes = y_true.shape[-1]
    batch = tf.shape(y_true)[0]
    truth = tf.transpose(tf.reshape(y_true, [batch, -1, num_classes]), [0, 2, 1])
    errors = tf.transpose(tf.reshape(errors, [batch, -1, num_classes]), [0, 2, 1])
    errors_sorted, order = tf.math.top_k(errors, k=tf.shape(errors)[-1], sorted=True)
    truth_sorted = tf.gather(truth, order, batch_dims=2)
    return tf.reduce_sum(errors_sorted * tf.stop_gradient(lovasz_gradient(truth_sorted)), axis=-1)


def _host_lovasz_weights(y_true, errors):
    """Each voxel's Lovász gradient, ``(B, *spatial, C)``, from a NumPy sort (CPUs; no gradient)."""

    def weights(truth, error):
        batch, classes = truth.shape[0], truth.shape[-1]
        return lovasz_weights(truth.reshape(batch, -1, classes), error.reshape(batch, -1, classes)).reshape(truth.shape)

    result = tf.numpy_function(weights, [y_true, errors], tf.float32, stateful=False)
    result.set_shape(errors.shape)
    return tf.stop_gradient(result)
