"""Sensitivity-specificity loss: squared errors on positives and on negatives, weighed.

Brosch, Yoo, Tang, Li, Traboulsee & Tam, "Deep convolutional encoder networks
for multiple sclerosis lesion segmentation", MICCAI 2015. The weight default
``0.05`` is the "sensitivity ratio" of the NiftyNet implementation that Ma's
taxonomy cites (the authors report values from 0.01 to 0.1 behave alike).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag, checked_range, repeated_per_sample, spatial_axes
from losses.registry import register


@register("sensitivity_specificity")
class SensitivitySpecificityLoss(SegmentationLoss):
    """Weighted mean squared error over each class's positives and negatives.

    Per sample and class c, sums over voxels i:

    ``sens_c = sum_i (g_ic - p_ic)^2 g_ic / (sum_i g_ic + s)``
    ``spec_c = sum_i (g_ic - p_ic)^2 (1 - g_ic) / (sum_i (1 - g_ic) + s)``
    ``L = mean_c [w sens_c + (1 - w) spec_c]``

    (Brosch et al. sum over one foreground class; the mean over classes is
    the convention of this library.) With ``batch=True`` the sums run over the
    batch as well: each term is the mean squared error over all of the
    batch's positives (negatives) of a class, one value for the batch.

    Args:
        weight: w, the weight of the sensitivity term, in [0, 1]; default 0.05.
        smooth: s, keeps an absent class's terms finite; default 1e-5 (NiftyNet).
        batch: pool the sums over the batch; default False: per sample.
    """

    def __init__(
        self,
        weight: float = 0.05,
        smooth: float = 1e-5,
        batch: bool = False,
        name: str = "sensitivity_specificity",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.weight = checked_range("sensitivity_specificity", "weight", weight, 0.0, 1.0)
        self.smooth = checked_range("sensitivity_specificity", "smooth", smooth, 0.0)
        self.batch = checked_flag("sensitivity_specificity", "batch", batch)

    def compute(self, y_true, y_pred):
        axes = [0, *spatial_axes(y_true)] if self.batch else spatial_axes(y_true)
        squared_error = tf.square(y_true - y_pred)
        # Sums over the negatives as totals minus sums over the positives: fewer passes over the volume.
        positive_error = tf.reduce_sum(squared_error * y_true, axis=axes)
        positives = tf.reduce_sum(y_true, axis=axes)
        negative_error = tf.maximum(tf.reduce_sum(squared_error, axis=axes) - positive_error, 0.0)
        negatives = tf.cast(tf.reduce_prod(tf.shape(y_true)[axes[0] : -1]), tf.float32) - positives
        sensitivity_term = positive_error / (positives + self.smooth)
        specificity_term = negative_error / (negatives + self.smooth)
        per_class = self.weight * sensitivity_term + (1.0 - self.weight) * specificity_term
        loss = tf.reduce_mean(per_class, axis=-1)
        return repeated_per_sample(loss, y_true) if self.batch else loss

    def _hyperparameters(self):
        return {"weight": self.weight, "smooth": self.smooth, "batch": self.batch}
