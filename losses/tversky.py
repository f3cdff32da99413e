"""Region-based losses built on the modified Tversky index: Dice, Tversky, focal and cosine Tversky.

Every loss here is a function of the per-class index (``losses/base.py``)::

    mTI_c = (TP_c + s) / (TP_c + delta FN_c + (1 - delta) FP_c + s)

with ``TP, FN, FP`` summed over the spatial axes of each sample, so the
result is one value per sample ``(B,)``. With ``batch=True`` they are summed
over the batch too (nnU-Net's ``batch_dice``): one index per class for the
whole batch, then the same formula (for the focal variants, the power of the
pooled index), the value repeated per sample.

Reduction: the papers write a *sum* over the C classes; like the reference
code we take the *mean* over classes (background included). The two differ by
the constant factor C, which rescales the loss and its gradient but not its
minimiser.

References: Milletari, Navab & Ahmadi, "V-Net", 3DV 2016 (soft Dice); Salehi,
Erdogmus & Gholipour, "Tversky loss function for image segmentation using 3D
fully convolutional deep networks", MLMI 2017; Abraham & Khan, "A novel focal
Tversky loss function with improved attention U-Net for lesion
segmentation", ISBI 2019; Yeung et al., "A mixed focal loss function for
handling class imbalanced medical image segmentation", arXiv:2102.04525
(2021) (cosine Tversky).
"""

from __future__ import annotations

import math

import tensorflow as tf

from losses.base import (
    Overlap,
    SegmentationLoss,
    checked_flag,
    checked_range,
    checked_smooth,
    safe_power,
    tversky_distance,
)
from losses.registry import register


def mean_tversky_power(statistics: Overlap, delta: float, smooth: float, exponents=1.0) -> tf.Tensor:
    """``mean_c (1 - mTI_c) ** e_c`` per sample, shape ``(B,)``.

    ``exponents`` is one number for every class or a ``(C,)`` tensor (the
    asymmetric focal Tversky loss raises rare classes only). The power is
    taken with :func:`losses.base.safe_power`, so exponents below 1 keep a
    finite gradient for perfectly segmented classes.
    """
    distance = tversky_distance(statistics, delta, smooth)
    if not isinstance(exponents, tf.Tensor) and exponents == 1.0:
        return tf.reduce_mean(distance, axis=-1)
    return tf.reduce_mean(safe_power(distance, exponents), axis=-1)


@register("tversky")
class TverskyLoss(SegmentationLoss):
    """Tversky loss: one minus the modified Tversky index, averaged over classes.

    ``L = mean_c (1 - mTI_c)``

    ``delta > 0.5`` penalises false negatives more than false positives,
    trading precision for the recall that small structures lack under the
    Dice loss (Salehi et al. 2017).

    Args:
        delta: weight of false negatives (false positives get ``1 - delta``),
            in [0, 1]; default 0.7.
        smooth: s, added to numerator and denominator so that a class absent
            from both truth and prediction scores a perfect index; > 0,
            default 1e-6.
        batch: sum TP, FN, FP over the batch before forming the index
            (nnU-Net's batch Dice); default False: per sample, as the papers.
    """

    reads_voxels = False  # a region-based loss: per-class sums only

    def __init__(
        self,
        delta: float = 0.7,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "tversky",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.delta = checked_range(name, "delta", delta, 0.0, 1.0)
        self.smooth = checked_smooth(name, smooth)
        self.batch = checked_flag(name, "batch", batch)

    def compute_from(self, statistics):
        return self.pooled(lambda sums: mean_tversky_power(sums, self.delta, self.smooth), statistics)

    def _hyperparameters(self):
        return {"delta": self.delta, "smooth": self.smooth, "batch": self.batch}


@register("dice")
class DiceLoss(TverskyLoss):
    """Soft Dice loss: the Tversky loss with ``delta = 0.5``.

    ``DSC_c = (2 TP_c + 2s) / (2 TP_c + FN_c + FP_c + 2s) = mTI_c(delta = 0.5)``,
    ``L = mean_c (1 - DSC_c)`` (Milletari et al. 2016, with the linear
    denominator of the Unified Focal papers).

    Args:
        smooth: s, see :class:`TverskyLoss`; default 1e-6.
        batch: pool over the batch, see :class:`TverskyLoss`; default False.
    """

    def __init__(
        self,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "dice",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(delta=0.5, smooth=smooth, batch=batch, name=name, reduction=reduction)

    def _hyperparameters(self):
        return {"smooth": self.smooth, "batch": self.batch}


@register("focal_tversky")
class FocalTverskyLoss(TverskyLoss):
    """Focal Tversky loss (Abraham & Khan 2019), as in the Mixed Focal paper.

    ``L = mean_c (1 - mTI_c) ** gamma``

    With ``gamma < 1`` the gradient ``gamma (1 - mTI)^(gamma - 1)`` grows as a
    class nears a perfect index, so nearly-right classes (typically small
    lesions late in training) keep being refined. Abraham & Khan write the
    exponent as ``1 / gamma'`` with ``gamma' = 4/3``; hence 0.75. (The Unified
    Focal family uses ``1 - gamma`` instead: see ``losses/unified_focal.py``.)

    Args:
        delta: weight of false negatives, in [0, 1]; default 0.7.
        gamma: the exponent, >= 0 (1 gives the Tversky loss); default 0.75.
        smooth: s, see :class:`TverskyLoss`; default 1e-6.
        batch: pool over the batch, see :class:`TverskyLoss`; default False.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "focal_tversky",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(delta=delta, smooth=smooth, batch=batch, name=name, reduction=reduction)
        self.gamma = checked_range(name, "gamma", gamma, 0.0)

    def compute_from(self, statistics):
        return self.pooled(lambda sums: mean_tversky_power(sums, self.delta, self.smooth, self.gamma), statistics)

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "gamma": self.gamma}


@register("cosine_tversky")
class CosineTverskyLoss(FocalTverskyLoss):
    """Cosine Tversky loss (Yeung et al. 2021, after the cosine Dice of Chen et al. 2019).

    ``L = mean_c cos(pi/2 * mTI_c) ** gamma``

    computed as ``sin(pi/2 * (1 - mTI_c)) ** gamma``, which is the same value
    but exactly 0, never a rounding-negative, for a perfect prediction.

    Args:
        delta: weight of false negatives, in [0, 1]; default 0.7.
        gamma: the exponent, >= 0; default 1.
        smooth: s, see :class:`TverskyLoss`; default 1e-6.
        batch: pool over the batch, see :class:`TverskyLoss`; default False.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 1.0,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "cosine_tversky",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(delta=delta, gamma=gamma, smooth=smooth, batch=batch, name=name, reduction=reduction)

    def compute_from(self, statistics):
        def cosine_power(sums):
            cosine = tf.sin(0.5 * math.pi * tversky_distance(sums, self.delta, self.smooth))
            return tf.reduce_mean(safe_power(cosine, self.gamma), axis=-1)

        return self.pooled(cosine_power, statistics)
