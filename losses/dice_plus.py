"""Dice plus a distribution-based loss: the compound losses of nnU-Net and AnatomyNet.

* ``dice_ce``: Dice + cross entropy, Isensee et al., "nnU-Net:
  self-adapting framework for U-Net-based medical image segmentation",
  arXiv:1809.10486 (2018).
* ``dice_topk``: Dice + TopK cross entropy (nnU-Net's ``DC_and_topk_loss``).
* ``dice_focal``: Dice + focal loss, Zhu et al., "AnatomyNet: deep learning
  for fast and fully automated whole-volume segmentation of head and neck
  anatomy", Medical Physics 2019.

The two terms are added with equal weights, as in Ma's taxonomy and nnU-Net.
The Dice and focal terms are the library's own ``dice`` and ``focal`` losses
(SPEC.md section 1: mean over all classes, background included). ``batch``
pools the Dice term over the batch (nnU-Net's ``batch_dice``; ``dice_ce``
with ``batch: true`` is the nnU-Net baseline of ``configs/*_nnunet_baseline.yaml``);
the other term is a voxel mean, per sample.
"""

from __future__ import annotations

import tensorflow as tf

from losses.base import SegmentationLoss, checked_flag
from losses.cross_entropy import CrossEntropyLoss
from losses.registry import get, register
from losses.topk import TopKLoss


class DicePlusLoss(SegmentationLoss):
    """``L = L_Dice + L_other``, per sample; subclasses pass the other term.

    Args:
        other: the second loss (a :class:`SegmentationLoss`).
        smooth: the Dice loss's smoothing term s.
        batch: pool the Dice term over the batch.
    """

    def __init__(self, other: SegmentationLoss, smooth: float, batch: bool, name: str, reduction):
        super().__init__(name=name, reduction=reduction)
        self.batch = checked_flag(name, "batch", batch)
        self.dice = get("dice", smooth=smooth, batch=self.batch)
        self.smooth = float(smooth)
        self.other = other

    def compute_from(self, statistics):
        return self.dice.compute_from(statistics) + self.other.compute_from(statistics)

    def _hyperparameters(self):
        return {"smooth": self.smooth, "batch": self.batch}


@register("dice_ce")
class DiceCrossEntropyLoss(DicePlusLoss):
    """``L = L_Dice + CE``.

    Args:
        smooth: the Dice loss's s; default 1e-6.
        batch: pool the Dice term over the batch (nnU-Net's batch Dice); default False.
    """

    def __init__(
        self,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "dice_ce",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(CrossEntropyLoss(), smooth, batch, name, reduction)


@register("dice_topk")
class DiceTopKLoss(DicePlusLoss):
    """``L = L_Dice + L_TopK``.

    Args:
        k: percentage of the hardest voxels the TopK term keeps; default 10.
        smooth: the Dice loss's s; default 1e-6.
        batch: pool the Dice term over the batch; default False (the TopK
            term keeps each sample's hardest voxels).
    """

    def __init__(
        self,
        k: float = 10.0,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "dice_topk",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(TopKLoss(k=k), smooth, batch, name, reduction)
        self.k = self.other.k

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "k": self.k}


@register("dice_focal")
class DiceFocalLoss(DicePlusLoss):
    """``L = L_Dice + L_Focal`` (categorical focal loss, Lin et al. 2017).

    Args:
        alpha: the focal term's class weight; default 0.25.
        gamma: the focal term's focusing exponent; default 2.
        smooth: the Dice loss's s; default 1e-6.
        batch: pool the Dice term over the batch; default False.
    """

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        smooth: float = 1e-6,
        batch: bool = False,
        name: str = "dice_focal",
        reduction=tf.keras.losses.Reduction.AUTO,
    ):
        super().__init__(get("focal", alpha=alpha, gamma=gamma), smooth, batch, name, reduction)
        self.alpha = float(alpha)
        self.gamma = float(gamma)

    def _hyperparameters(self):
        return {**super()._hyperparameters(), "alpha": self.alpha, "gamma": self.gamma}
