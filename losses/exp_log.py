"""Exponential logarithmic loss: Dice and cross entropy, each raised to a power below 1.

Wong, Moradi, Tang & Syeda-Mahmood, "3D segmentation with exponential
logarithmic loss for highly unbalanced object sizes", MICCAI 2018
(defaults: ``w_Dice = 0.8``, ``w_CE = 0.2``, ``gamma = 0.3``, ``epsilon = 1``).
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from losses.base import (
    class_counts,
    SegmentationLoss,
    checked_flag,
    checked_range,
    safe_power,
    spatial_mean,
    true_class_value,
    tversky_index,
)
from losses.cross_entropy import voxel_cross_entropy
from losses.registry import register
from losses.weighted_cross_entropy import checked_class_weights, class_weight_vector


def log_power(values: tf.Tensor, gamma: float) -> tf.Tensor:
    """``(-ln x)^gamma`` for ``x`` in (0, 1], with a finite gradient at ``x = 1`` (:func:`safe_power`)."""
    return safe_power(tf.maximum(-tf.math.log(values), 0.0), gamma)


def frequency_weights(counts: tf.Tensor) -> tf.Tensor:
    """Wong's label weights ``w_c = (sum_k f_k / f_c)^0.5`` from each sample's class counts ``(B, C)``."""
    return tf.sqrt(tf.math.divide_no_nan(tf.reduce_sum(counts, axis=-1, keepdims=True), counts))


@register("exp_log")
class ExponentialLogarithmicLoss(SegmentationLoss):
    """``L = w E_c[(-ln Dice_c)^gamma] + (1 - w) E_i[w_c(i) (-ln p_i,c(i))^gamma]``.

    ``Dice_c = (2 TP_c + s) / (2 TP_c + FN_c + FP_c + s)`` is the soft Dice of
    class c (the library's Tversky index with ``delta = 0.5``, smoothing s/2), ``c(i)`` the
    true class of voxel i. ``gamma < 1`` raises the loss of well-segmented
    classes and voxels relative to the poorly segmented ones, so both keep
    contributing; Wong et al. use the same gamma for both terms.

    Args:
        weight: w, the weight of the Dice term (``w_Dice``), in [0, 1]; default 0.8.
        gamma: the exponent of both terms, >= 0; default 0.3.
        smooth: s, Wong's pseudocount epsilon; default 1.
        class_weights: one weight per class for the cross-entropy term.
            Default None: Wong's ``w_c = (N / N_c)^0.5`` from each sample's
            class frequencies (the paper counts them over the training set;
            pass those here to follow it exactly).
        batch: form the Dice term from TP, FN, FP summed over the batch
            (nnU-Net's batch Dice); default False. The cross-entropy term and
            its frequency weights stay per sample.
    """

    def __init__(
        self,
        weight: float = 0.8,
        gamma: float = 0.3,
        smooth: float = 1.0,
        class_weights: Sequence[float] | None = None,
        batch: bool = False,
        name: str = "exp_log",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.weight = checked_range("exp_log", "weight", weight, 0.0, 1.0)
        self.gamma = checked_range("exp_log", "gamma", gamma, 0.0)
        self.smooth = checked_range("exp_log", "smooth", smooth, 0.0)
        self.class_weights = checked_class_weights("exp_log", class_weights)
        self.batch = checked_flag("exp_log", "batch", batch)

    def compute_from(self, statistics):
        # mTI(delta = 0.5) with s/2 is exactly (2 TP + s) / (2 TP + FN + FP + s).
        def dice_term(sums):
            return tf.reduce_mean(log_power(tversky_index(sums, 0.5, self.smooth / 2.0), self.gamma), axis=-1)

        weights = class_weight_vector("exp_log", self.class_weights, statistics.y_true.shape[-1])
        if weights is None:
            weights = frequency_weights(class_counts(statistics))
        # -ln p_t >= -ln(1 - EPSILON) > 0 after clipping: a plain power is safe (and cheaper).
        per_voxel = true_class_value(statistics, weights) * tf.pow(voxel_cross_entropy(statistics), self.gamma)
        return self.weight * self.pooled(dice_term, statistics) + (1.0 - self.weight) * spatial_mean(per_voxel)

    def _hyperparameters(self):
        return {
            "weight": self.weight,
            "gamma": self.gamma,
            "smooth": self.smooth,
            "class_weights": self.class_weights,
            "batch": self.batch,
        }
