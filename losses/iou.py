"""IoU (Jaccard) loss.

Rahman & Wang, "Optimizing intersection-over-union in deep neural networks
for image segmentation", ISVC 2016.
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag, checked_range, tversky_statistics
from losses.registry import register


@register("iou")
class IoULoss(SegmentationLoss):
    """One minus the soft intersection over union, averaged over classes.

    ``IoU_c = (sum_i g p + s) / (sum_i (g + p - g p) + s) = (TP_c + s) / (TP_c + FN_c + FP_c + s)``
    ``L = mean_c (1 - IoU_c)``

    computed as ``(FN_c + FP_c) / (TP_c + FN_c + FP_c + s)``, which is the
    same and loses no precision near a perfect prediction. On hard masks
    ``IoU = DSC / (2 - DSC)``.

    Args:
        smooth: s, keeps an absent class finite; default 1e-6 (as the Dice loss).
        batch: sum TP, FN, FP over the batch before forming the index (one
            IoU per class for the batch); default False: per sample.
    """

    reads_voxels = False  # a region-based loss: per-class sums only

    def __init__(
        self, smooth: float = 1e-6, batch: bool = False, name: str = "iou", reduction=tf.keras.losses.Reduction.AUTO
    ):
        super().__init__(name=name, reduction=reduction)
        self.smooth = checked_range("iou", "smooth", smooth, 0.0)
        self.batch = checked_flag("iou", "batch", batch)

    def compute_from(self, statistics):
        def jaccard_loss(sums):
            tp, fn, fp = tversky_statistics(sums)
            return tf.reduce_mean((fn + fp) / (tp + fn + fp + self.smooth), axis=-1)

        return self.pooled(jaccard_loss, statistics)

    def _hyperparameters(self):
        return {"smooth": self.smooth, "batch": self.batch}
