"""The Unified Focal loss and its components: (a)symmetric focal and focal Tversky losses.

Yeung, Sala, Schonlieb & Rundo, "Unified Focal loss: generalising Dice and
cross entropy-based losses to handle class imbalanced medical image
segmentation", Computerized Medical Imaging and Graphics 95:102026 (2022).

One parameter pair runs through the family: ``delta`` weighs the rare classes
against the background (in the focal terms) and false negatives against false
positives (in the Tversky terms); ``gamma`` sets the focal modulation. The
asymmetric variants modulate only the background, so that the rare classes'
loss is never suppressed. The hierarchy the paper proves, and the tests check:
``weight = 1`` gives the (a)symmetric focal loss, ``weight = 0`` the
(a)symmetric focal Tversky loss; the symmetric focal Tversky loss with
``gamma = 0`` is the Tversky loss, and with ``delta = 0.5`` too the Dice loss;
the symmetric focal loss with ``gamma = 0, delta = 0.5`` is half the cross
entropy.

Conventions (SPEC.md section 1):

* classes are "background" or "rare" (``rare_classes``; default every class
  but 0, i.e. class 1 for binary and kidney + tumour for KiTS19), so any
  ``C >= 2`` works; the reference code handles two classes only;
* channels are always taken on the last axis; the reference code indexes
  ``y_pred[:, :, :, 0]``, which on a 3D batch is a depth slice, not the
  background, so its focal losses are wrong in 3D;
* focal terms are a voxel-mean of the *sum* over classes; Tversky terms a
  *mean* over classes (the paper writes sums over classes: a constant factor C
  that rescales, but does not move, the minimum);
* every loss returns one value per sample, shape ``(B,)``;
* ``batch=True`` pools the focal Tversky terms over the batch (TP, FN, FP
  summed over batch and space before the index and its power, as nnU-Net's
  batch Dice); the focal terms are voxel means and stay per sample.
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
)
from losses.focal import focal_cross_entropy
from losses.registry import register
from losses.tversky import mean_tversky_power


@register("symmetric_focal")
class SymmetricFocalLoss(SegmentationLoss):
    """Symmetric focal loss: every class modulated, rare classes weighted by delta.

    ``L = 1/N sum_i [ (1 - delta) sum_{c in bg} (1 - p_ic)^gamma (-y_ic log p_ic)
                      + delta sum_{c in rare} (1 - p_ic)^gamma (-y_ic log p_ic) ]``

    Args:
        delta: weight of the rare classes (background gets ``1 - delta``), in
            [0, 1]; default 0.7.
        gamma: focusing exponent of every class, >= 0; default 2.
        rare_classes: class indices treated as rare; default None: every
            class but 0.
    """

    reads_classes = False  # a distribution-based loss: p_t only

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 2.0,
        rare_classes=None,
        name: str = "symmetric_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.delta = checked_range(name, "delta", delta, 0.0, 1.0)
        self.gamma = checked_range(name, "gamma", gamma, 0.0)
        self.rare_classes = checked_rare_classes(name, rare_classes)

    def compute_from(self, statistics):
        rare = rare_class_mask(self.rare_classes, statistics.y_true.shape[-1])
        weights = self.delta * rare + (1.0 - self.delta) * (1.0 - rare)
        return focal_cross_entropy(statistics, self.gamma, weights, self._modulated_classes(rare))

    def _modulated_classes(self, rare: tf.Tensor):
        """The classes whose term is modulated (a 0/1 ``(C,)`` mask), None for all."""
        return None

    def _hyperparameters(self):
        return {"delta": self.delta, "gamma": self.gamma, "rare_classes": self.rare_classes}


@register("asymmetric_focal")
class AsymmetricFocalLoss(SymmetricFocalLoss):
    """Asymmetric focal loss: only the background is modulated.

    ``L = 1/N sum_i [ (1 - delta) sum_{c in bg} (1 - p_ic)^gamma (-y_ic log p_ic)
                      + delta sum_{c in rare} (-y_ic log p_ic) ]``

    Args: as :class:`SymmetricFocalLoss`.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 2.0,
        rare_classes=None,
        name: str = "asymmetric_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(delta=delta, gamma=gamma, rare_classes=rare_classes, name=name, reduction=reduction)

    def _modulated_classes(self, rare):
        """The background classes only."""
        return 1.0 - rare


@register("symmetric_focal_tversky")
class SymmetricFocalTverskyLoss(SegmentationLoss):
    """Symmetric focal Tversky loss: every class raised to ``1 - gamma``.

    ``L = mean_c (1 - mTI_c)^(1 - gamma)``,
    ``mTI_c = (TP_c + s) / (TP_c + delta FN_c + (1 - delta) FP_c + s)``

    Note the exponent ``1 - gamma``, not the ``gamma`` of the stand-alone
    focal Tversky loss: both are the papers' own.

    Args:
        delta: weight of false negatives (false positives get ``1 - delta``),
            in [0, 1]; default 0.7.
        gamma: focal parameter in [0, 1] (``gamma > 1`` would make the loss
            of a perfect class infinite); default 0.75.
        smooth: s, keeps an absent class's index finite; > 0, default 1e-6.
        batch: sum TP, FN, FP over the batch before forming the index
            (nnU-Net's batch Dice); default False: per sample, as the paper.
    """

    reads_voxels = False  # a region-based loss: per-class sums only

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "symmetric_focal_tversky",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(name=name, reduction=reduction)
        self.delta = checked_range(name, "delta", delta, 0.0, 1.0)
        self.gamma = checked_range(name, "gamma", gamma, 0.0, 1.0)
        self.smooth = checked_smooth(name, smooth)
        self.batch = checked_flag(name, "batch", batch)

    def compute_from(self, statistics):
        exponents = self._exponents(statistics.y_true.shape[-1])
        return self.pooled(lambda sums: mean_tversky_power(sums, self.delta, self.smooth, exponents), statistics)

    def _exponents(self, num_classes: int):
        """The exponent of each class: ``1 - gamma`` for all."""
        return 1.0 - self.gamma

    def _hyperparameters(self):
        return {"delta": self.delta, "gamma": self.gamma, "smooth": self.smooth, "batch": self.batch}


@register("asymmetric_focal_tversky")
class AsymmetricFocalTverskyLoss(SymmetricFocalTverskyLoss):
    """Asymmetric focal Tversky loss: background linear, rare classes raised to ``1 - gamma``.

    ``L = mean_c l_c``, ``l_c = 1 - mTI_c`` for background classes and
    ``(1 - mTI_c)^(1 - gamma)`` for rare ones.

    Args: as :class:`SymmetricFocalTverskyLoss`, plus
        rare_classes: class indices treated as rare; default None: every
            class but 0.
    """

    def __init__(
        self,
        delta: float = 0.7,
        gamma: float = 0.75,
        smooth: float = 1e-6,
        rare_classes=None,
        batch: bool = False,
        name: str = "asymmetric_focal_tversky",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(delta=delta, gamma=gamma, smooth=smooth, batch=batch, name=name, reduction=reduction)
        self.rare_classes = checked_rare_classes(name, rare_classes)

    def _exponents(self, num_classes):
        """1 for background classes, ``1 - gamma`` for rare ones."""
        return 1.0 - self.gamma * rare_class_mask(self.rare_classes, num_classes)

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "rare_classes": self.rare_classes}


class UnifiedFocalLoss(SegmentationLoss):
    """``L = weight * L_focal + (1 - weight) * L_focal_tversky``, per sample.

    Args:
        focal: the distribution-based part (a :class:`SegmentationLoss`).
        focal_tversky: the region-based part.
        weight: lambda, the weight of the focal part, in [0, 1].
    """

    def __init__(self, focal: SegmentationLoss, focal_tversky: SegmentationLoss, weight: float, name, reduction):
        super().__init__(name=name, reduction=reduction)
        self.weight = checked_range(name, "weight", weight, 0.0, 1.0)
        self.focal = focal
        self.focal_tversky = focal_tversky

    def compute_from(self, statistics):
        return self.weight * self.focal.compute_from(statistics) + (
            1.0 - self.weight
        ) * self.focal_tversky.compute_from(statistics)

    def _hyperparameters(self):
        return {
            "weight": self.weight,
            "delta": self.focal.delta,
            "gamma": self.focal.gamma,
            "smooth": self.focal_tversky.smooth,
            "rare_classes": self.focal.rare_classes,
            "batch": self.focal_tversky.batch,
        }


@register("symmetric_unified_focal")
class SymmetricUnifiedFocalLoss(UnifiedFocalLoss):
    """Symmetric Unified Focal loss.

    ``L = weight * L_symmetric_focal(delta, gamma) + (1 - weight) * L_symmetric_focal_tversky(delta, gamma)``

    Args:
        weight: lambda, the weight of the focal part, in [0, 1]; default 0.5.
        delta: shared by both parts (see :class:`SymmetricFocalLoss` and
            :class:`SymmetricFocalTverskyLoss`), in [0, 1]; default 0.6.
        gamma: shared by both parts, in [0, 1]; default 0.5.
        smooth: s of the Tversky index, > 0; default 1e-6.
        rare_classes: class indices the focal part weighs by delta; default
            None: every class but 0.
        batch: pool the focal Tversky part over the batch (see
            :class:`SymmetricFocalTverskyLoss`); default False.
    """

    def __init__(
        self,
        weight: float = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        smooth: float = 1e-6,
        rare_classes=None,
        batch: bool = False,
        name: str = "symmetric_unified_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(
            SymmetricFocalLoss(delta=delta, gamma=gamma, rare_classes=rare_classes, name=name),
            SymmetricFocalTverskyLoss(delta=delta, gamma=gamma, smooth=smooth, batch=batch, name=name),
            weight,
            name,
            reduction,
        )


@register("asymmetric_unified_focal")
class AsymmetricUnifiedFocalLoss(UnifiedFocalLoss):
    """Asymmetric Unified Focal loss, the paper's recommended loss.

    ``L = weight * L_asymmetric_focal(delta, gamma) + (1 - weight) * L_asymmetric_focal_tversky(delta, gamma)``

    Args: as :class:`SymmetricUnifiedFocalLoss` (defaults ``weight = 0.5``,
    ``delta = 0.6``, ``gamma = 0.5``); ``rare_classes`` applies to both parts,
    ``batch`` to the focal Tversky part.
    """

    def __init__(
        self,
        weight: float = 0.5,
        delta: float = 0.6,
        gamma: float = 0.5,
        smooth: float = 1e-6,
        rare_classes=None,
        batch: bool = False,
        name: str = "asymmetric_unified_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(
            AsymmetricFocalLoss(delta=delta, gamma=gamma, rare_classes=rare_classes, name=name),
            AsymmetricFocalTverskyLoss(
                delta=delta, gamma=gamma, smooth=smooth, rare_classes=rare_classes, batch=batch, name=name
            ),
            weight,
            name,
            reduction,
        )
