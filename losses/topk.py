"""TopK loss: cross entropy over the hardest voxels only.

Wu, Shen & van den Hengel, "Bridging category-level and instance-level
semantic image segmentation", arXiv:1605.06885 (2016) ("bootstrapped" cross
entropy); used as ``TopK10`` in nnU-Net (Isensee et al. 2018), hence the
default ``k = 10``.
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_range
from losses.cross_entropy import voxel_cross_entropy
from losses.registry import register
from losses.placement import on_host
from losses.sorting import kth_largest


@register("topk")
class TopKLoss(SegmentationLoss):
    """Mean cross entropy of the ``k`` percent voxels with the highest cross entropy.

    ``L = 1/K sum_{i in top K} (-sum_c g_ic log p_ic)`` with
    ``K = max(1, floor(N * k / 100))`` per sample. Easy voxels (most of the
    background) then stop contributing, which counters class imbalance.
    On a CPU the threshold (the K-th largest value) comes from NumPy's
    linear-time selection (:mod:`losses.sorting`), on a GPU or under XLA
    from ``tf.math.top_k``.

    Args:
        k: percentage of the voxels of each sample that are kept, in (0, 100];
            default 10. ``k = 100`` is the plain cross entropy.
    """

    reads_classes = False  # a distribution-based loss: p_t only

    def __init__(self, k: float = 10.0, name: str = "topk", reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)
        self.k = checked_range("topk", "k", k, 0.0, 100.0)
        if self.k == 0.0:
            raise ValueError("topk: k must be a positive percentage, got 0")

    def compute_from(self, statistics):
        per_voxel = voxel_cross_entropy(statistics)
        flat = tf.reshape(per_voxel, [tf.shape(per_voxel)[0], -1])
        voxels = tf.cast(tf.shape(flat)[1], tf.float64)
        kept = tf.maximum(1, tf.cast(tf.floor(voxels * self.k / 100.0), tf.int32))
        if not on_host():
            hardest, _ = tf.math.top_k(flat, k=kept, sorted=False)
            return tf.reduce_mean(hardest, axis=-1)
        threshold = tf.numpy_function(kth_largest, [flat, kept], tf.float32, stateful=False)
        threshold = tf.stop_gradient(tf.reshape(threshold, [-1, 1]))
        above = tf.cast(flat > threshold, tf.float32)
        tied = tf.cast(flat == threshold, tf.float32)
        # Voxels equal to the threshold share the places left after those above it.
        share = (tf.cast(kept, tf.float32) - tf.reduce_sum(above, -1, keepdims=True)) / tf.reduce_sum(
            tied, -1, keepdims=True
        )
        return tf.reduce_sum(flat * (above + share * tied), axis=-1) / tf.cast(kept, tf.float32)

    def _hyperparameters(self):
        return {"k": self.k}
