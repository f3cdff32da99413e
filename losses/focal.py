"""Focal-modulated cross entropy: the categorical focal loss and the helper its variants share.

Lin, Goyal, Girshick, He & Dollar, "Focal loss for dense object detection",
ICCV 2017; in its categorical form as in Yeung et al., "A mixed focal loss
function for handling class imbalanced medical image segmentation",
arXiv:2102.04525 (2021), eq. 7.

Reduction: a voxel-mean of the *sum* over classes, per sample (shape ``(B,)``).
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import Overlap, SegmentationLoss, checked_range, spatial_mean, true_class_probability, true_class_value
from losses.registry import register


def focal_cross_entropy(statistics: Overlap, gamma: float, class_weights=1.0, modulated_classes=None) -> tf.Tensor:
    """Voxel mean of ``sum_c w_c m_c (-y_c log p_c)``, shape ``(B,)``.

    ``m_c = (1 - p_c)^gamma`` for the modulated classes and 1 for the others.
    With one-hot ``y_true`` (SPEC.md section 1) only the true class ``t`` of a
    voxel contributes, so the sum is ``w_t m_t (-log p_t)`` with
    ``p_t = sum_c y_c p_c`` (Lin et al.'s notation): the logarithm and power
    then run on one value per voxel instead of C, which makes the loss
    several times cheaper on large 3D patches. ``p_t`` is clipped to
    ``[EPSILON, 1 - EPSILON]`` first, so the log and powers below 1 stay
    finite for perfect and all-wrong predictions.

    Args:
        statistics: the sums of one-hot ``y_true`` and ``y_pred`` (:func:`losses.base.overlap`).
        gamma: the focusing exponent; 0: no modulation (weighted cross entropy).
        class_weights: ``w``, a number or a ``(C,)`` tensor; default 1.
        modulated_classes: a ``(C,)`` 0/1 tensor marking the classes whose
            term is modulated; default None: all.
    """
    true_probability = true_class_probability(statistics)
    per_voxel = -tf.math.log(true_probability)
    weight, modulated = _true_class_weight_and_modulation(statistics, class_weights, modulated_classes)
    if gamma != 0.0:
        # gamma = 2 (the default of every focal loss): a square, not exp(2 log x), and the same gradient.
        modulator = tf.square(1.0 - true_probability) if gamma == 2.0 else tf.pow(1.0 - true_probability, gamma)
        if modulated is not None:
            modulator = 1.0 + modulated * (modulator - 1.0)
        per_voxel *= modulator
    return spatial_mean(weight * per_voxel)


def _true_class_weight_and_modulation(statistics: Overlap, class_weights, modulated_classes):
    """``w_t`` and ``m_t`` (None without ``modulated_classes``) of each voxel's true class.

    Two ``(C,)`` vectors are looked up together, as one ``(C, 2)`` matrix product that reads
    ``y_true`` once instead of twice (the symmetric and asymmetric focal losses), unless
    ``statistics`` holds the split channels, on which each lookup is cheaper.
    """
    if (
        modulated_classes is None
        or not isinstance(class_weights, tf.Tensor)
        or class_weights.shape.rank != 1
        or statistics.labels is not None
    ):
        modulated = None if modulated_classes is None else true_class_value(statistics, modulated_classes)
        return true_class_value(statistics, class_weights), modulated
    table = tf.stack([class_weights, tf.cast(modulated_classes, tf.float32)], axis=-1)
    y_true = statistics.y_true
    looked_up = tf.tensordot(y_true, table, axes=[[y_true.shape.rank - 1], [0]])
    return looked_up[..., 0], looked_up[..., 1]


@register("focal")
class FocalLoss(SegmentationLoss):
    """Categorical focal loss.

    ``L = 1/N sum_i sum_c alpha (1 - p_ic)^gamma (-y_ic log p_ic)``

    The modulating factor ``(1 - p)^gamma`` shrinks the loss of voxels that
    are already classified confidently (the many easy background voxels), so
    the hard ones dominate; ``gamma = 0`` gives ``alpha`` times the cross
    entropy. The defaults are Lin et al.'s, which the Unified Focal paper
    cites (its own values were lost in extraction).

    Args:
        alpha: weight of every class's term, >= 0; default 0.25.
        gamma: focusing exponent, >= 0; default 2.
    """

    reads_classes = False  # a distribution-based loss: p_t only

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        name: str = "focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.alpha = checked_range(name, "alpha", alpha, 0.0)
        self.gamma = checked_range(name, "gamma", gamma, 0.0)

    def compute_from(self, statistics):
        return focal_cross_entropy(statistics, self.gamma, self.alpha)

    def _hyperparameters(self):
        return {"alpha": self.alpha, "gamma": self.gamma}
