"""Mixed Focal loss: categorical focal loss plus focal Tversky loss.

Yeung, Sala, Schonlieb & Rundo, "A mixed focal loss function for handling
class imbalanced medical image segmentation", arXiv:2102.04525 (2021),
eq. 24 (the "categorical" variant the paper evaluates).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import checked_range
from losses.focal import FocalLoss
from losses.registry import register
from losses.tversky import FocalTverskyLoss
from losses.unified_focal import UnifiedFocalLoss


@register("mixed_focal")
class MixedFocalLoss(UnifiedFocalLoss):
    """``L = weight * L_focal(alpha, focal_gamma) + (1 - weight) * L_focal_tversky(delta, gamma)``, per sample.

    ``L_focal = 1/N sum_i sum_c alpha (1 - p_ic)^focal_gamma (-y_ic log p_ic)``
    (:class:`losses.focal.FocalLoss`) handles input imbalance through its
    focusing term; ``L_focal_tversky = mean_c (1 - mTI_c)^gamma``
    (:class:`losses.tversky.FocalTverskyLoss`) handles output imbalance
    through ``delta``. The paper adds the two with equal weights
    (``L_FT + L_CF``); ``weight = 0.5`` is that sum halved. It is the Unified
    Focal loss's structure with the original, symmetric-in-classes parts.

    The two parts keep their own focusing exponents, as in the paper:
    ``focal_gamma`` (Lin et al.'s 2) for the focal part and ``gamma`` (0.75,
    Abraham & Khan's ``1 / (4/3)``) for the focal Tversky part.

    Args:
        weight: weight of the focal part (the focal Tversky part gets
            ``1 - weight``), in [0, 1]; default 0.5.
        alpha: the focal part's class weight, >= 0; default 0.25.
        focal_gamma: the focal part's focusing exponent, >= 0; default 2.
        delta: the focal Tversky part's weight of false negatives, in [0, 1];
            default 0.7.
        gamma: the focal Tversky part's exponent, >= 0; default 0.75.
        smooth: s of the Tversky index, > 0; default 1e-6.
        batch: pool the focal Tversky part over the batch (TP, FN, FP summed
            over batch and space before the index); default False.
    """

    def __init__(
        self,
        weight: float = 0.5,
        alpha: float = 0.25,
        focal_gamma: float = 2.0,
        delta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "mixed_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        checked_range(name, "focal_gamma", focal_gamma, 0.0)  # named as this loss calls it
        super().__init__(
            FocalLoss(alpha=alpha, gamma=focal_gamma, name=name),
            FocalTverskyLoss(delta=delta, gamma=gamma, smooth=smooth, batch=batch, name=name),
            weight,
            name,
            reduction,
        )

    def _hyperparameters(self):
        return {
            "weight": self.weight,
            "alpha": self.focal.alpha,
            "focal_gamma": self.focal.gamma,
            "delta": self.focal_tversky.delta,
            "gamma": self.focal_tversky.gamma,
            "smooth": self.focal_tversky.smooth,
            "batch": self.focal_tversky.batch,
        }
