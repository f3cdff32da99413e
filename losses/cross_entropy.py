"""Categorical cross entropy, the distribution-based reference loss.

``CE = -1/N sum_i sum_c g_ic log p_ic`` (mean over the N voxels of a sample),
Ma's taxonomy, "Loss functions for medical image segmentation" (2020).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import Overlap, SegmentationLoss, spatial_mean, true_class_probability
from losses.registry import register


def voxel_cross_entropy(statistics: Overlap) -> tf.Tensor:
    """Cross entropy of every voxel, ``-sum_c g_c log p_c``, shape ``(B, *spatial)``.

    With one-hot ``g`` this is ``-log p_t``, ``p_t = sum_c g_c p_c`` the
    probability of the true class: one logarithm per voxel instead of C.
    ``p_t`` is clipped to ``[EPSILON, 1 - EPSILON]`` first, so the result is
    finite for perfect and for all-wrong predictions.
    """
    return -tf.math.log(true_class_probability(statistics))


@register("cross_entropy")
class CrossEntropyLoss(SegmentationLoss):
    """Categorical cross entropy, averaged over the voxels of each sample.

    ``L = -1/N sum_i sum_c g_ic log p_ic``; it has no hyperparameters.
    """

    reads_classes = False  # a distribution-based loss: p_t only

    def __init__(self, name: str = "cross_entropy", reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)

    def compute_from(self, statistics):
        return spatial_mean(voxel_cross_entropy(statistics))
