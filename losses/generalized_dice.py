"""Generalised Dice loss: classes weighted by their inverse squared volume.

Sudre, Li, Vercauteren, Ourselin & Cardoso, "Generalised Dice overlap as a
deep learning loss function for highly unbalanced segmentations", DLMIA 2017
(after Crum, Camara & Hill, IEEE TMI 2006).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag, checked_range, class_counts, tversky_statistics
from losses.registry import register


def inverse_square_volume_weights(volumes: tf.Tensor) -> tf.Tensor:
    """Sudre's ``w_c = 1 / V_c^2`` for ``(B, C)`` volumes, rescaled so the largest weight is 1.

    The rescaling (by the smallest present volume squared) leaves the loss
    unchanged but keeps the weights far from float32 underflow; it also makes
    ``smooth`` comparable to the Dice loss's. A class absent from a sample gets
    the largest weight, 1, as in NiftyNet and MONAI (it then penalises false
    positives of that class).
    """
    present = volumes > 0.0
    smallest = tf.reduce_min(tf.where(present, volumes, tf.float32.max), axis=-1, keepdims=True)
    return tf.where(present, tf.square(tf.math.divide_no_nan(smallest, volumes)), 1.0)


@register("generalized_dice")
class GeneralizedDiceLoss(SegmentationLoss):
    """One minus the generalised Dice coefficient of each sample.

    ``L = 1 - (2 sum_c w_c sum_i g_ic p_ic + s) / (sum_c w_c sum_i (g_ic + p_ic) + s)``
    with ``w_c = 1 / (sum_i g_ic)^2`` (see :func:`inverse_square_volume_weights`).

    With ``batch=True`` the sums and the volumes ``V_c`` behind the weights
    are those of the whole batch (MONAI's ``GeneralizedDiceLoss(batch=True)``):
    one coefficient for the batch, and a class absent from one sample but
    present in another keeps its batch weight instead of the largest.

    Args:
        smooth: s; default 1e-6 (as the Dice loss; weights are scaled to max 1).
        batch: pool over the batch before the weights and the coefficient;
            default False: per sample, as Sudre et al.
    """

    reads_voxels = False  # a region-based loss: per-class sums only

    def __init__(
        self,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "generalized_dice",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.smooth = checked_range("generalized_dice", "smooth", smooth, 0.0)
        self.batch = checked_flag("generalized_dice", "batch", batch)

    def compute_from(self, statistics):
        return self.pooled(self._generalized_dice_loss, statistics)

    def _generalized_dice_loss(self, statistics):
        tp, fn, fp = tversky_statistics(statistics)
        weights = inverse_square_volume_weights(class_counts(statistics))
        overlap = tf.reduce_sum(weights * tp, axis=-1)
        total = tf.reduce_sum(weights * (2.0 * tp + fn + fp), axis=-1)
        return 1.0 - (2.0 * overlap + self.smooth) / (total + self.smooth)

    def _hyperparameters(self):
        return {"smooth": self.smooth, "batch": self.batch}
