"""Boundary loss: probabilities integrated against the signed distance to the true boundary.

Kervadec, Bouchtiba, Desrosiers, Granger, Dolz & Ben Ayed, "Boundary loss for
highly unbalanced segmentation", MIDL 2019.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from losses.base import SegmentationLoss, checked_rare_classes, resolve_rare_classes
from losses.distance_maps import distance_maps, signed_distance_maps
from losses.registry import register


@register("boundary")
class BoundaryLoss(SegmentationLoss):
    """``L = mean_{c in rare} 1/N sum_i phi_c(i) p_ic``, phi_c the signed distance map of class c.

    ``phi_c`` is negative inside the true region and positive outside
    (:func:`losses.distance_maps.signed_distance_maps`, from ``y_true``, on
    the CPU, without gradient), so the loss falls as probability moves inside
    the region and is lowest at the ground truth; it can be negative.
    Kervadec et al. apply it to the foreground classes and add a region loss
    (generalised Dice) whose weight they decrease over epochs; on its own it
    trains slowly from a random start. An empty or a full mask contributes 0.

    Args:
        rare_classes: classes whose maps enter the loss; default None: every
            class but the background (class 0).
    """

    def __init__(
        self,
        rare_classes: Sequence[int] | None = None,
        name: str = "boundary",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.rare_classes = checked_rare_classes("boundary", rare_classes)

    def compute(self, y_true, y_pred):
        rare = resolve_rare_classes(self.rare_classes, y_true.shape[-1])
        signed_distance = distance_maps(signed_distance_maps, tf.gather(y_true, rare, axis=-1))
        weighted = signed_distance * tf.gather(y_pred, rare, axis=-1)
        return tf.reduce_mean(weighted, axis=list(range(1, weighted.shape.rank)))

    def _hyperparameters(self):
        return {"rare_classes": self.rare_classes}
