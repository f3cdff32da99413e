"""Asymmetric similarity loss: one minus the F-beta score.

Hashemi, Salehi, Erdogmus, Prabhu, Warfield & Gholipour, "Asymmetric loss
functions and deep densely-connected networks for highly-imbalanced medical
image segmentation: application to multiple sclerosis lesion detection",
IEEE Access 2018 (``beta = 1.5`` worked best there).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag, checked_range, tversky_distance
from losses.registry import register


@register("asymmetric_similarity")
class AsymmetricSimilarityLoss(SegmentationLoss):
    """``L = mean_c (1 - F_beta,c)``, ``F_beta = (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``.

    Dividing by ``1 + b^2`` shows that ``F_beta`` is the modified Tversky index
    with ``delta = b^2 / (1 + b^2)``, which is how it is computed
    (``beta = 1`` is the Dice loss; ``beta > 1`` penalises false negatives
    more; ``beta = 0`` leaves one minus the precision).

    Args:
        beta: b >= 0; default 1.5.
        smooth: added to numerator and denominator of the index; default 1e-6.
        batch: sum TP, FN, FP over the batch before forming the index (one
            F-beta per class for the batch); default False: per sample.
    """

    reads_voxels = False  # a region-based loss: per-class sums only

    def __init__(
        self,
        beta: float = 1.5,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "asymmetric_similarity",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.beta = checked_range("asymmetric_similarity", "beta", beta, 0.0)
        self.smooth = checked_range("asymmetric_similarity", "smooth", smooth, 0.0)
        self.batch = checked_flag("asymmetric_similarity", "batch", batch)

    def compute_from(self, statistics):
        delta = self.beta**2 / (1.0 + self.beta**2)
        return self.pooled(lambda sums: tf.reduce_mean(tversky_distance(sums, delta, self.smooth), axis=-1), statistics)

    def _hyperparameters(self):
        return {"beta": self.beta, "smooth": self.smooth, "batch": self.batch}
