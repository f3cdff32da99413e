"""Lovász-softmax loss: a convex surrogate of the Jaccard loss, per class and image.

Berman, Rannen Triki & Blaschko, "The Lovász-softmax loss: a tractable
surrogate for the optimization of the intersection-over-union measure in
neural networks", CVPR 2018 (``per_image=True``, ``classes="present"`` of the
authors' code).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss
from losses.registry import register


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
    exact up to 2^24 voxels per patch.
    """

    def __init__(self, name: str = "lovasz_softmax", reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)

    def compute(self, y_true, y_pred):
        num_classes = y_true.shape[-1]
        batch = tf.shape(y_true)[0]
        truth = tf.transpose(tf.reshape(y_true, [batch, -1, num_classes]), [0, 2, 1])
        prediction = tf.transpose(tf.reshape(y_pred, [batch, -1, num_classes]), [0, 2, 1])
        errors = tf.abs(truth - prediction)
        errors_sorted, order = tf.math.top_k(errors, k=tf.shape(errors)[-1], sorted=True)
        truth_sorted = tf.gather(truth, order, batch_dims=2)
        per_class = tf.reduce_sum(errors_sorted * tf.stop_gradient(lovasz_gradient(truth_sorted)), axis=-1)
        present = tf.cast(tf.reduce_sum(truth, axis=-1) > 0.0, tf.float32)
        return tf.reduce_sum(per_class * present, axis=-1) / tf.maximum(tf.reduce_sum(present, axis=-1), 1.0)
