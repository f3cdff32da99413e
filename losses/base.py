"""Shared pieces of every loss: conventions, Tversky statistics, the base class.

Conventions (SPEC.md section 1):

* channels-last; ``y_true`` one-hot and ``y_pred`` softmax probabilities, both
  ``(B, *spatial, C)`` with 2 or 3 spatial axes and any ``C >= 2``;
* class 0 is background; per-class sums run over the spatial axes of each
  sample;
* probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before any ``log``;
* every loss is computed in float32 (also under mixed precision) and returns
  one value per sample, so Keras' ``SUM_OVER_BATCH_SIZE`` reduction yields the
  mean over the batch, also when a ``tf.distribute`` strategy splits it.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

EPSILON = 1e-7


def spatial_axes(tensor: tf.Tensor) -> list[int]:
    """The spatial axes of a channels-last ``(B, *spatial, C)`` tensor."""
    rank = tensor.shape.rank
    if rank not in (4, 5):
        raise ValueError(
            f"expected a (B,H,W,C) or (B,D,H,W,C) tensor, got shape {tensor.shape}"
        )
    return list(range(1, rank - 1))


def clip_probabilities(y_pred: tf.Tensor, epsilon: float = EPSILON) -> tf.Tensor:
    """Keep probabilities away from 0 and 1 so that ``log`` stays finite."""
    return tf.clip_by_value(y_pred, epsilon, 1.0 - epsilon)


def tversky_statistics(y_true: tf.Tensor, y_pred: tf.Tensor):
    """Soft ``TP, FN, FP`` per sample and class, each of shape ``(B, C)``."""
    axes = spatial_axes(y_true)
    tp = tf.reduce_sum(y_true * y_pred, axis=axes)
    fn = tf.reduce_sum(y_true * (1.0 - y_pred), axis=axes)
    fp = tf.reduce_sum((1.0 - y_true) * y_pred, axis=axes)
    return tp, fn, fp


def tversky_index(y_true, y_pred, delta: float, smooth: float) -> tf.Tensor:
    """Modified Tversky index per sample and class, shape ``(B, C)``.

    ``mTI_c = (TP_c + s) / (TP_c + delta * FN_c + (1 - delta) * FP_c + s)``;
    ``delta`` weighs false negatives, ``delta = 0.5`` gives the soft Dice.
    """
    tp, fn, fp = tversky_statistics(y_true, y_pred)
    return (tp + smooth) / (tp + delta * fn + (1.0 - delta) * fp + smooth)


def resolve_rare_classes(rare_classes: Sequence[int] | None, num_classes: int) -> list[int]:
    """The rare (foreground) classes: the given set, else every class but 0.

    For two classes that is class 1 (the binary default); for KiTS19 it is
    kidney and tumour, as the Unified Focal author advised.
    """
    if rare_classes is None:
        return list(range(1, num_classes))
    rare = sorted({int(c) for c in rare_classes})
    bad = [c for c in rare if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"rare_classes {bad} out of range for {num_classes} classes")
    return rare


def rare_class_mask(rare_classes: Sequence[int] | None, num_classes: int) -> tf.Tensor:
    """A float32 ``(C,)`` vector: 1 for rare classes, 0 for background classes."""
    rare = set(resolve_rare_classes(rare_classes, num_classes))
    return tf.constant([1.0 if c in rare else 0.0 for c in range(num_classes)], tf.float32)


def spatial_mean(per_voxel: tf.Tensor) -> tf.Tensor:
    """Mean over the spatial axes of a ``(B, *spatial)`` tensor, shape ``(B,)``."""
    return tf.reduce_mean(per_voxel, axis=list(range(1, per_voxel.shape.rank)))


class SegmentationLoss(tf.keras.losses.Loss):
    """Base class: casts inputs to float32 and serialises constructor arguments.

    Subclasses implement :meth:`compute` on float32 tensors, returning one
    value per sample (shape ``(B,)``), and list their hyperparameters in
    :meth:`get_config`.
    """

    def __init__(self, name: str, reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        y_true = tf.cast(y_true, tf.float32)
        return self.compute(y_true, y_pred)

    def compute(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._hyperparameters())
        return config

    def _hyperparameters(self) -> dict:
        """The constructor arguments that define this loss."""
        return {}


def as_tuple(values: Iterable[int] | None):
    """Normalise an optional sequence of ints (for ``get_config``)."""
    return None if values is None else [int(v) for v in values]
