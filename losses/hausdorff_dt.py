"""Hausdorff distance loss, distance-transform variant.

Karimi & Salcudean, "Reducing the Hausdorff distance in medical image
segmentation with convolutional neural networks", IEEE TMI 2019 (HD-DT loss,
their Eq. 8, ``alpha = 2``).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from losses.base import checked_range, checked_rare_classes, resolve_rare_classes
from losses.distance_maps import DistanceMapLoss, graph_maps
from losses.registry import register


@register("hausdorff_dt")
class HausdorffDTLoss(DistanceMapLoss):
    """Squared errors weighted by the distances to the true and predicted boundaries.

    ``L = mean_{c in rare} 1/N sum_i (p_ic - g_ic)^2 (d_G,c(i)^alpha + d_S,c(i)^alpha)``

    ``d_G,c`` is the unsigned distance to the boundary of class c in ``y_true``
    and ``d_S,c`` that of the predicted mask ``p_c > 0.5``
    (:func:`losses.distance_maps.unsigned_distance_maps`, without gradient);
    errors far from either boundary, which drive the Hausdorff distance, weigh
    most. An empty or a full mask has distance 0. ``d_G`` comes with the
    target from the pipeline (or is computed here, see
    :class:`losses.distance_maps.DistanceMapLoss`); ``d_S`` changes with every
    prediction and is computed at every step (:func:`losses.distance_maps.graph_maps`:
    on a CPU by the host, on a GPU and under XLA in TensorFlow ops).

    Args:
        alpha: exponent of the distances, >= 0; default 2.
        rare_classes: classes that enter the loss; default None: every class
            but the background (class 0).
    """

    def __init__(
        self,
        alpha: float = 2.0,
        rare_classes: Sequence[int] | None = None,
        name: str = "hausdorff_dt",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.alpha = checked_range("hausdorff_dt", "alpha", alpha, 0.0)
        self.rare_classes = checked_rare_classes("hausdorff_dt", rare_classes)

    distance_map = "unsigned"

    def map_classes(self, num_classes):
        return resolve_rare_classes(self.rare_classes, num_classes)

    def compute(self, y_true, y_pred, maps):
        rare = self.map_classes(y_true.shape[-1])
        truth = tf.gather(y_true, rare, axis=-1)
        prediction = tf.gather(y_pred, rare, axis=-1)
        truth_distance = tf.gather(maps, rare, axis=-1)
        predicted_distance = graph_maps("unsigned", prediction)
        weights = tf.pow(truth_distance, self.alpha) + tf.pow(predicted_distance, self.alpha)
        weighted = tf.square(prediction - truth) * weights
        return tf.reduce_mean(weighted, axis=list(range(1, weighted.shape.rank)))

    def _hyperparameters(self):
        return {"alpha": self.alpha, "rare_classes": self.rare_classes}
