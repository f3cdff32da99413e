"""Boundary loss: probabilities integrated against the signed distance to the true boundary.

Kervadec, Bouchtiba, Desrosiers, Granger, Dolz & Ben Ayed, "Boundary loss for
highly unbalanced segmentation", MIDL 2019.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from losses.base import checked_rare_classes, resolve_rare_classes
from losses.distance_maps import DistanceMapLoss
from losses.registry import register


@register("boundary")
class BoundaryLoss(DistanceMapLoss):
    """``L = mean_{c in rare} 1/N sum_i phi_c(i) p_ic``, phi_c the signed distance map of class c.

    ``phi_c`` is negative inside the true region and positive outside
    (:func:`losses.distance_maps.signed_distance_maps` of the ground truth,
    fed with the target by the pipeline or computed here, see
    :class:`losses.distance_maps.DistanceMapLoss`), so the loss falls as probability moves inside
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

    distance_map = "signed"

    def map_classes(self, num_classes):
        return resolve_rare_classes(self.rare_classes, num_classes)

    def compute(self, y_true, y_pred, maps):
        # The maps of the other classes are 0: summing over every channel needs no gather.
        rare = self.map_classes(y_true.shape[-1])
        voxels = tf.cast(tf.reduce_prod(tf.shape(y_pred)[1:-1]), tf.float32)
        return tf.reduce_sum(maps * y_pred, axis=list(range(1, maps.shape.rank))) / (voxels * len(rare))

    def _hyperparameters(self):
        return {"rare_classes": self.rare_classes}
