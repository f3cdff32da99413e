"""Weighted cross entropy: class weights against class imbalance.

Ronneberger, Fischer & Brox, "U-Net: convolutional networks for biomedical
image segmentation", MICCAI 2015 (the class-frequency part of their weight
map; its border term ``w0 exp(-(d1 + d2)^2 / 2 sigma^2)`` separates touching
cell instances and has no counterpart in organ or tumour segmentation).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import tensorflow as tf

from losses.base import SegmentationLoss, checked_range, class_counts, spatial_mean, true_class_value
from losses.cross_entropy import voxel_cross_entropy
from losses.registry import register


def checked_class_weights(loss: str, class_weights: Sequence[float] | None) -> list[float] | None:
    """``class_weights`` as a list of non-negative floats (or None), or a ``ValueError``."""
    if class_weights is None:
        return None
    if isinstance(class_weights, (str, bytes)) or not isinstance(class_weights, Iterable):
        raise ValueError(f"{loss}: class_weights must be a list of numbers, got {class_weights!r}")
    return [checked_range(loss, "class_weights", weight, 0.0) for weight in class_weights]


def class_weight_vector(loss: str, class_weights: list[float] | None, num_classes: int):
    """``class_weights`` as a float32 ``(C,)`` tensor, or None; raises on a wrong length.

    The number of classes is only known at the first call.
    """
    if class_weights is None:
        return None
    if len(class_weights) != num_classes:
        raise ValueError(
            f"{loss}: class_weights has {len(class_weights)} entries, the prediction has {num_classes} classes"
        )
    return tf.constant(class_weights, tf.float32)


def balanced_class_weights(counts: tf.Tensor) -> tf.Tensor:
    """Per-sample weights ``w_c = N / (C * N_c)`` from the class counts ``N_c`` ``(B, C)``, shape ``(B, C)``.

    Every class present in a sample then carries the same total weight
    ``N / C``; absent classes get 0 (they have no voxel to weigh anyway).
    """
    voxels = tf.reduce_sum(counts, axis=-1, keepdims=True)
    num_classes = tf.cast(tf.shape(counts)[-1], tf.float32)
    return tf.math.divide_no_nan(voxels, num_classes * counts)


@register("weighted_cross_entropy")
class WeightedCrossEntropyLoss(SegmentationLoss):
    """Cross entropy with one weight per class.

    ``L = -1/N sum_i sum_c w_c g_ic log p_ic``

    Args:
        class_weights: one weight per class (length C). Default None: the
            "balanced" weights ``w_c = N / (C * N_c)`` of each sample, so that
            every class present contributes equally, whatever its volume.
            All weights 1 gives the plain cross entropy.
    """

    reads_classes = False  # a distribution-based loss: p_t only

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        name: str = "weighted_cross_entropy",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.class_weights = checked_class_weights("weighted_cross_entropy", class_weights)

    def compute_from(self, statistics):
        weights = class_weight_vector("weighted_cross_entropy", self.class_weights, statistics.y_true.shape[-1])
        if weights is None:
            weights = balanced_class_weights(class_counts(statistics))
        return spatial_mean(true_class_value(statistics, weights) * voxel_cross_entropy(statistics))

    def _hyperparameters(self):
        return {"class_weights": self.class_weights}
