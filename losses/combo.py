"""Combo loss: weighted cross entropy minus the Dice coefficient.

Taghanaki, Zheng, Zhou, Georgescu, Sharma, Xu, Comaniciu & Hamarneh, "Combo
loss: handling input and output imbalance in multi-organ segmentation",
Computerized Medical Imaging and Graphics 75:24-33 (2019); used in its
multiclass form by Yeung et al. (2021, 2022).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import (
    SegmentationLoss,
    checked_flag,
    checked_range,
    checked_rare_classes,
    checked_smooth,
    rare_class_mask,
    tversky_index,
)
from losses.focal import focal_cross_entropy
from losses.registry import register


@register("combo")
class ComboLoss(SegmentationLoss):
    """``L = alpha * CE_beta - (1 - alpha) * DSC``, per sample.

    ``CE_beta = 1/N sum_i [ beta sum_{c in rare} (-y_ic log p_ic)
                            + (1 - beta) sum_{c in bg} (-y_ic log p_ic) ]``
    ``DSC = mean_c (2 TP_c + s') / (2 TP_c + FN_c + FP_c + s')``  (all classes, s' = 2s)

    ``beta`` weighs the *rare* (foreground) classes, the background gets
    ``1 - beta``: for two classes this is exactly Taghanaki et al.'s
    ``-beta t log p - (1 - beta)(1 - t) log(1 - p)``, where ``beta > 0.5``
    penalises false negatives more. (The Unified Focal reference code weighs
    class 0 by beta instead; at the default 0.5 the two agree.) The loss is
    negative: it lies in ``[-(1 - alpha), +inf)``.

    The Mixed Focal paper trains the "simplified" form ``CE - DSC`` (plain
    cross entropy, equal weights). With ``beta = 0.5``, ``CE_beta = CE / 2``,
    so that form is exactly 3 x this loss with ``alpha = 2/3``; the defaults
    ``alpha = beta = 0.5`` give ``CE / 4 - DSC / 2`` (SPEC.md section 1).

    Args:
        alpha: weight of the cross-entropy term (the Dice term gets
            ``1 - alpha``), in [0, 1]; default 0.5.
        beta: weight of the rare classes in the cross entropy (background:
            ``1 - beta``), in [0, 1]; default 0.5.
        smooth: s of the Dice coefficient, > 0; default 1e-6.
        rare_classes: the classes ``beta`` weighs; default None: every class
            but 0.
        batch: form the Dice term from TP, FN, FP summed over the batch
            (nnU-Net's batch Dice); default False. The cross entropy stays a
            per-sample voxel mean.
    """

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        smooth: float = 1e-6,
        rare_classes=None,
        batch: bool = False,
        name: str = "combo",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.alpha = checked_range(name, "alpha", alpha, 0.0, 1.0)
        self.beta = checked_range(name, "beta", beta, 0.0, 1.0)
        self.smooth = checked_smooth(name, smooth)
        self.rare_classes = checked_rare_classes(name, rare_classes)
        self.batch = checked_flag(name, "batch", batch)

    def compute_from(self, statistics):
        rare = rare_class_mask(self.rare_classes, statistics.y_true.shape[-1])
        cross_entropy = focal_cross_entropy(statistics, 0.0, self.beta * rare + (1.0 - self.beta) * (1.0 - rare))
        dice = self.pooled(lambda sums: tf.reduce_mean(tversky_index(sums, 0.5, self.smooth), axis=-1), statistics)
        return self.alpha * cross_entropy - (1.0 - self.alpha) * dice

    def _hyperparameters(self):
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "smooth": self.smooth,
            "rare_classes": self.rare_classes,
            "batch": self.batch,
        }
