"""Shared pieces of every loss: conventions, Tversky statistics, the base class.

Conventions (SPEC.md section 1):

* channels-last; ``y_true`` one-hot and ``y_pred`` softmax probabilities, both
  ``(B, *spatial, C)`` with 2 or 3 spatial axes and any ``C >= 2``;
* class 0 is background; per-class sums run over the spatial axes of each
  sample;
* probabilities are clipped to ``[EPSILON, 1 - EPSILON]`` before any ``log``;
* every loss is computed in float32 (also under mixed precision) and returns
  one value per sample, so Keras' ``SUM_OVER_BATCH_SIZE`` reduction yields the
  mean over the batch, also when a ``tf.distribute`` strategy splits it;
* region losses take ``batch``: false (default) forms each index per sample,
  as the papers do; true sums the per-class sums over the batch first
  (:func:`pooled_over_batch`) and repeats the one value per sample.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Iterable, NamedTuple, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

EPSILON = 1e-7


def spatial_axes(tensor: tf.Tensor) -> list[int]:
    """The spatial axes of a channels-last ``(B, *spatial, C)`` tensor."""
    rank = tensor.shape.rank
    if rank not in (4, 5):
        raise ValueError(f"expected a (B,H,W,C) or (B,D,H,W,C) tensor, got shape {tensor.shape}")
    return list(range(1, rank - 1))


def clip_probabilities(y_pred: tf.Tensor, epsilon: float = EPSILON) -> tf.Tensor:
    """Keep probabilities away from 0 and 1 so that ``log`` stays finite."""
    return tf.clip_by_value(y_pred, epsilon, 1.0 - epsilon)


class Overlap(NamedTuple):
    """What the region- and distribution-based losses read of a prediction, from one pass over it (:func:`overlap`)."""

    y_true: tf.Tensor  # the one-hot target, (B, *spatial, C)
    labels: tuple | None  # with the per-class sums: y_true's channels, C tensors (B, *spatial)
    true_probability: tf.Tensor | None  # p_t = sum_c y_c p_c per voxel, (B, *spatial), not clipped
    true_positives: tf.Tensor | None  # TP_c = sum_i y_ic p_ic, (B, C)
    predicted: tf.Tensor | None  # sum_i p_ic, (B, C)
    actual: tf.Tensor | None  # sum_i y_ic, (B, C), no gradient


def overlap(y_true: tf.Tensor, y_pred: tf.Tensor, per_voxel: bool = True, per_class: bool = True) -> Overlap:
    """The per-voxel and per-class sums the losses need, with one hand-written gradient.

    ``per_voxel``: compute ``p_t`` (the distribution-based losses);
    ``per_class``: compute ``TP``, ``sum p`` and ``sum y`` per class (the
    region-based ones); what is not asked for is None and costs nothing.

    Every quantity is linear in ``y_pred``, so the gradient of anything built
    on them is ``dL/dp_ic = y_ic (dL/dp_t(i) + dL/dTP_c) + dL/dsum_c``,
    written out here as one pass over the volume; automatic differentiation
    makes one per product and sum, and a compound loss, which computes the
    sums once for both of its parts, would make them twice. Exact for any
    ``y_true`` (one-hot or not); no gradient flows to ``y_true``.

    With the per-class sums the volume is first split into one contiguous
    ``(B, *spatial)`` tensor per class: on channels-last data with few
    classes, sums over the last axis, sums per channel and broadcasts of
    per-class values are several times slower on a CPU than the same work on
    contiguous tensors, which then more than repays the split.
    """
    axes = spatial_axes(y_true)
    if not per_class:

        @tf.custom_gradient
        def voxel_sums(prediction):
            def gradient(upstream):
                return y_true * tf.expand_dims(upstream, -1)

            return tf.reduce_sum(y_true * prediction, axis=-1), gradient

        return Overlap(y_true, None, voxel_sums(y_pred), None, None, None)

    labels = tuple(tf.unstack(y_true, axis=-1))
    per_sample = [-1] + [1] * len(axes)  # a (B,) value against a (B, *spatial) tensor

    @tf.custom_gradient
    def class_sums(prediction):
        probabilities = tf.unstack(prediction, axis=-1)
        hits = [label * probability for label, probability in zip(labels, probabilities)]
        true_positives = tf.stack([tf.reduce_sum(hit, axis=axes) for hit in hits], axis=-1)
        predicted = tf.stack([tf.reduce_sum(probability, axis=axes) for probability in probabilities], axis=-1)
        outputs = (true_positives, predicted) + ((tf.add_n(hits),) if per_voxel else ())

        def gradient(true_positive_gradient, predicted_gradient, *voxel_gradient):
            channels = []
            for c, label in enumerate(labels):
                on_label = tf.reshape(true_positive_gradient[:, c], per_sample)
                if per_voxel:
                    on_label = on_label + voxel_gradient[0]
                channels.append(label * on_label + tf.reshape(predicted_gradient[:, c], per_sample))
            return tf.stack(channels, axis=-1)

        return outputs, gradient

    true_positives, predicted, *true_probability = class_sums(y_pred)
    actual = tf.stack([tf.reduce_sum(label, axis=axes) for label in labels], axis=-1)
    return Overlap(y_true, labels, true_probability[0] if per_voxel else None, true_positives, predicted, actual)


def class_counts(statistics: Overlap) -> tf.Tensor:
    """``sum_i y_ic``, the (soft) voxel count of each class, shape ``(B, C)``."""
    if statistics.actual is not None:
        return statistics.actual
    return tf.reduce_sum(statistics.y_true, axis=spatial_axes(statistics.y_true))


def true_class_probability(statistics: Overlap) -> tf.Tensor:
    """``p_t = sum_c y_c p_c`` per voxel, clipped to ``[EPSILON, 1 - EPSILON]``.

    With one-hot ``y_true`` this is the probability of each voxel's true
    class, so a cross-entropy-type term needs one logarithm per voxel
    instead of one per class. Shape ``(B, *spatial)``.
    """
    return clip_probabilities(statistics.true_probability)


def true_class_value(statistics: Overlap, per_class):
    """``sum_c y_c v_c`` per voxel: the value ``v`` of each voxel's true class.

    ``per_class`` is a number (returned unchanged: every class has it), a
    ``(C,)`` tensor (shared by the batch) or a ``(B, C)`` tensor (one set per
    sample); a tensor gives a result of shape ``(B, *spatial)``.
    """
    if not isinstance(per_class, tf.Tensor):
        return per_class
    y_true, labels = statistics.y_true, statistics.labels
    rank = y_true.shape.rank
    if per_class.shape.rank == 2:  # one set per sample: (B, 1, ..., 1, C) against (B, *spatial, C)
        per_class = tf.reshape(per_class, [tf.shape(per_class)[0]] + [1] * (rank - 2) + [-1])
    if labels is not None:  # split channels: a weighted sum of the classes' masks, 0 weights skipped when known
        known = tf.get_static_value(per_class) if per_class.shape.rank == 1 else None
        if known is not None:
            terms = [label if value == 1.0 else float(value) * label for label, value in zip(labels, known) if value]
            return tf.add_n(terms) if terms else tf.zeros_like(labels[0])
        return tf.add_n([label * per_class[..., c] for c, label in enumerate(labels)])
    if per_class.shape.rank == 1:  # a matrix-vector product: one read of y_true, no (B, *spatial, C) temporary
        return tf.tensordot(y_true, per_class, axes=[[rank - 1], [0]])
    return tf.reduce_sum(y_true * per_class, axis=-1)


def tversky_statistics(statistics: Overlap):
    """Soft ``TP, FN, FP`` per sample and class, each of shape ``(B, C)``.

    ``TP = sum y p``, ``FN = sum y (1 - p) = sum y - TP``,
    ``FP = sum (1 - y) p = sum p - TP``: the three come from the sums of
    :func:`overlap`. Rounding can leave a difference a hair below zero; it is
    clamped at 0.
    """
    tp = statistics.true_positives
    fn = tf.maximum(class_counts(statistics) - tp, 0.0)
    fp = tf.maximum(statistics.predicted - tp, 0.0)
    return tp, fn, fp


def tversky_index(statistics: Overlap, delta: float, smooth: float) -> tf.Tensor:
    """Modified Tversky index per sample and class, shape ``(B, C)``.

    ``mTI_c = (TP_c + s) / (TP_c + delta * FN_c + (1 - delta) * FP_c + s)``;
    ``delta`` weighs false negatives, ``delta = 0.5`` gives the soft Dice.
    """
    tp, fn, fp = tversky_statistics(statistics)
    return (tp + smooth) / (tp + delta * fn + (1.0 - delta) * fp + smooth)


def tversky_distance(statistics: Overlap, delta: float, smooth: float) -> tf.Tensor:
    """``1 - mTI_c`` per sample and class, shape ``(B, C)``, without cancellation.

    ``1 - mTI_c = (delta * FN_c + (1 - delta) * FP_c) / (TP_c + delta * FN_c + (1 - delta) * FP_c + s)``

    Computed as ``1 - mTI``, values near a perfect prediction would be
    rounded to multiples of 2^-24; this form keeps them, is never negative
    and is exactly 0 for a perfect prediction, so powers of it below 1 (focal
    Tversky losses) stay well defined (see :func:`safe_power`).
    """
    tp, fn, fp = tversky_statistics(statistics)
    errors = delta * fn + (1.0 - delta) * fp
    return errors / (tp + errors + smooth)


def pooled_over_batch(statistics: Overlap) -> Overlap:
    """The per-class sums of the whole batch, shape ``(1, C)``: ``batch: true`` of the region losses.

    TP, ``sum p`` and ``sum y`` are summed over the batch as well as the
    spatial axes, so an index formed from them (Tversky, Dice, IoU, the
    generalised Dice weights) is that of the batch's voxels taken as one
    image: nnU-Net's ``batch_dice``, MONAI's ``DiceLoss(batch=True)``. A class
    absent from one patch then no longer scores ``s / s`` for that patch.
    The per-voxel fields (``y_true``, ``labels``, ``p_t``) are unchanged.
    """

    def batch_sum(tensor):
        return tf.reduce_sum(tensor, axis=0, keepdims=True)

    return statistics._replace(
        true_positives=batch_sum(statistics.true_positives),
        predicted=batch_sum(statistics.predicted),
        actual=batch_sum(class_counts(statistics)),
    )


def repeated_per_sample(value: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
    """A pooled loss of shape ``(1,)`` as one value per sample of ``reference`` ``(B, ...)``, shape ``(B,)``.

    Keras' mean over the batch then returns the pooled value itself, and its
    gradient is that of the pooled loss. Under ``tf.distribute`` each replica
    pools its own part of the batch (nnU-Net without DDP gathering does the same).
    """
    return tf.broadcast_to(value, tf.shape(reference)[:1])


def safe_power(base: tf.Tensor, exponent) -> tf.Tensor:
    """``base ** exponent`` for ``base >= 0``, with a finite gradient at ``base = 0``.

    ``d/dx x^e = e x^(e-1)`` is infinite at 0 for ``e < 1`` (the focal Tversky
    exponents 0.25 and 0.75 of the papers), and NaN once multiplied by 0.
    Where ``base`` is 0 the value is ``0 ** exponent`` and the gradient 0:
    ``base = 0`` is the loss's minimum (a perfectly segmented class).
    ``exponent`` is a number or a tensor broadcasting against ``base``.
    """
    positive = base > 0.0
    safe_base = tf.where(positive, base, tf.ones_like(base))
    value_at_zero = tf.pow(tf.zeros_like(base), exponent)
    return tf.where(positive, tf.pow(safe_base, exponent), value_at_zero)


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


def checked_range(loss: str, parameter: str, value, low: float, high: float = math.inf) -> float:
    """``value`` as a float if it is a real number in ``[low, high]``, else a ``ValueError``.

    The message names the loss and the parameter, so a bad value in a YAML
    config is found at construction, not as a NaN in training.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{loss}: {parameter} must be a number, got {value!r}")
    if not low <= value <= high:
        upper = "" if math.isinf(high) else f", {high}"
        bracket = ")" if math.isinf(high) else "]"
        raise ValueError(f"{loss}: {parameter} must be in [{low}{upper or ', inf'}{bracket}, got {value!r}")
    return float(value)


def checked_flag(loss: str, parameter: str, value) -> bool:
    """``value`` if it is ``True`` or ``False``, else a ``ValueError`` naming the loss and parameter.

    Strings such as ``"false"`` and numbers are refused: ``bool("false")`` is True.
    """
    if not isinstance(value, bool):
        raise ValueError(f"{loss}: {parameter} must be true or false, got {value!r}")
    return value


def checked_smooth(loss: str, smooth) -> float:
    """``smooth`` for a Tversky-type index: a positive number, else a ``ValueError``.

    Zero would make a class absent from both truth and prediction score 0/0.
    """
    smooth = checked_range(loss, "smooth", smooth, 0.0)
    if smooth == 0.0:
        raise ValueError(f"{loss}: smooth must be > 0 (a class absent from truth and prediction gives 0/0)")
    return smooth


def checked_rare_classes(loss: str, rare_classes: Sequence[int] | None) -> list[int] | None:
    """``rare_classes`` as a sorted list of class indices (or None), or a ``ValueError``.

    Whether the indices exist is only known once the number of classes is, at
    the first call (:func:`resolve_rare_classes`).
    """
    if rare_classes is None:
        return None
    if isinstance(rare_classes, (str, bytes)) or not isinstance(rare_classes, Iterable):
        raise ValueError(f"{loss}: rare_classes must be a list of class indices, got {rare_classes!r}")
    indices = list(rare_classes)
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0 for c in indices):
        raise ValueError(f"{loss}: rare_classes must be non-negative class indices, got {indices!r}")
    return sorted({int(c) for c in indices})


def rare_class_mask(rare_classes: Sequence[int] | None, num_classes: int) -> tf.Tensor:
    """A float32 ``(C,)`` vector: 1 for rare classes, 0 for background classes."""
    rare = set(resolve_rare_classes(rare_classes, num_classes))
    return tf.constant([1.0 if c in rare else 0.0 for c in range(num_classes)], tf.float32)


def spatial_mean(per_voxel: tf.Tensor) -> tf.Tensor:
    """Mean over the spatial axes of a ``(B, *spatial)`` tensor, shape ``(B,)``."""
    return tf.reduce_mean(per_voxel, axis=list(range(1, per_voxel.shape.rank)))


class SegmentationLoss(tf.keras.losses.Loss):
    """Base class: casts inputs to float32 and serialises constructor arguments.

    Subclasses implement :meth:`compute_from` on the sums of :func:`overlap`
    (or, if they read more of the prediction, :meth:`compute` on the float32
    tensors), returning one value per sample (shape ``(B,)``), and list their
    hyperparameters in :meth:`_hyperparameters`.
    """

    def __init__(self, name: str, reduction=tf.keras.losses.Reduction.AUTO):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        # Targets fed from a generator often have an unknown static shape; the
        # prediction's (a model output) tells the number of classes that
        # several losses need at trace time, and mismatches fail loudly.
        y_true = tf.ensure_shape(tf.cast(y_true, tf.float32), y_pred.shape)
        return self.compute(y_true, y_pred)

    reads_voxels = True  # compute_from reads p_t (Overlap.true_probability)
    reads_classes = True  # compute_from reads TP and sum p per class

    def compute(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return self.compute_from(overlap(y_true, y_pred, self.reads_voxels, self.reads_classes))

    def compute_from(self, statistics: Overlap) -> tf.Tensor:
        """The loss per sample from :func:`overlap`'s sums; a compound loss passes the same sums to its parts."""
        raise NotImplementedError

    batch = False  # region losses: pool the per-class sums over the batch (their ``batch`` argument)

    def pooled(self, region_loss, statistics: Overlap) -> tf.Tensor:
        """``region_loss(statistics)`` per sample, or with ``self.batch`` of the pooled sums, repeated per sample.

        ``region_loss`` maps sums of shape ``(B, C)`` to ``(B,)``; pooled, it
        sees ``(1, C)`` (:func:`pooled_over_batch`). With ``batch`` false the
        statistics reach it untouched: the per-sample value is the papers' own.
        """
        if not self.batch:
            return region_loss(statistics)
        return repeated_per_sample(region_loss(pooled_over_batch(statistics)), statistics.y_true)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(self._hyperparameters())
        return config

    def _hyperparameters(self) -> dict:
        """The constructor arguments that define this loss."""
        return {}
