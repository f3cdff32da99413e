"""Batch pooling (``batch: true``) of the region and compound losses against independent NumPy references.

The references are written from SPEC.md sections 1 and 5 in float64 NumPy: the
per-class sums TP, FN, FP (and the volumes) run over the spatial axes of each
sample, or with pooling over the batch axis as well, before any index is
formed; distribution-based terms stay per-sample voxel means. In every batch
sample 0 has no foreground at all (a patch without tumour), so pooling and
per-sample pooling differ.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

import losses
from losses import catalog
from pipeline import list_losses

EPS = 1e-7
S = 1e-6
SHAPES = [(3, 5, 6, 2), (3, 5, 6, 3), (3, 3, 4, 5, 2), (3, 3, 4, 5, 3)]
SHAPE_IDS = ["2d-binary", "2d-c3", "3d-binary", "3d-c3"]

POOLED_NAMES = sorted(
    [
        "dice",
        "tversky",
        "focal_tversky",
        "cosine_tversky",
        "symmetric_focal_tversky",
        "asymmetric_focal_tversky",
        "iou",
        "asymmetric_similarity",
        "generalized_dice",
        "sensitivity_specificity",
        "lovasz_softmax",
        "dice_ce",
        "dice_topk",
        "dice_focal",
        "combo",
        "exp_log",
        "mixed_focal",
        "symmetric_unified_focal",
        "asymmetric_unified_focal",
    ]
)


def random_batch(shape, seed=0):
    """One-hot truth and softmax prediction; sample 0 is all background."""
    rng = np.random.default_rng(seed)
    classes = shape[-1]
    labels = rng.choice(classes, size=shape[:-1], p=[0.6] + [0.4 / (classes - 1)] * (classes - 1))
    labels[0] = 0
    logits = rng.normal(size=shape) * 2.0
    return np.eye(classes)[labels], np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


# ---------------------------------------------------------------- references


def summed(array, pool):
    """Sum over the spatial axes, and the batch axis too (kept, as 1) when pooling: ``(B or 1, C)``."""
    spatial = tuple(range(1, array.ndim - 1))
    if not pool:
        return array.sum(axis=spatial)
    return array.sum(axis=(0,) + spatial)[None]


def counts(yt, yp, pool):
    return summed(yt * yp, pool), summed(yt * (1 - yp), pool), summed((1 - yt) * yp, pool)


def per_sample(values, yt):
    """A pooled ``(1,)`` value repeated for each sample; a per-sample ``(B,)`` value unchanged."""
    return np.broadcast_to(values, (yt.shape[0],))


def tversky(yt, yp, delta, pool):
    tp, fn, fp = counts(yt, yp, pool)
    return (tp + S) / (tp + delta * fn + (1 - delta) * fp + S)


def rare_mask(classes):
    return np.array([0.0] + [1.0] * (classes - 1))


def voxel_mean(array):
    return array.reshape(array.shape[0], -1).mean(-1)


def focal_terms(yt, yp, weights, exponents):
    p = np.clip(yp, EPS, 1 - EPS)
    return voxel_mean((weights * (1 - p) ** exponents * -yt * np.log(p)).sum(-1))


def cross_entropy(yt, yp):
    return focal_terms(yt, yp, 1.0, 0.0)


def topk(yt, yp, k=10.0):
    voxels = -(yt * np.log(np.clip(yp, EPS, 1 - EPS))).sum(-1).reshape(yt.shape[0], -1)
    kept = max(1, int(voxels.shape[1] * k / 100))
    return np.sort(voxels, axis=1)[:, ::-1][:, :kept].mean(1)


def ref_dice(yt, yp, pool):
    return per_sample((1 - tversky(yt, yp, 0.5, pool)).mean(-1), yt)


def ref_focal_tversky_power(yt, yp, pool, delta, exponents):
    return per_sample(((1 - tversky(yt, yp, delta, pool)) ** exponents).mean(-1), yt)


def ref_iou(yt, yp, pool):
    tp, fn, fp = counts(yt, yp, pool)
    return per_sample((1 - (tp + S) / (tp + fn + fp + S)).mean(-1), yt)


def ref_asymmetric_similarity(yt, yp, pool, beta=1.5):
    tp, fn, fp = counts(yt, yp, pool)
    b2 = beta**2
    return per_sample((1 - ((1 + b2) * tp + S) / ((1 + b2) * tp + b2 * fn + fp + S)).mean(-1), yt)


def ref_generalized_dice(yt, yp, pool):
    """Sudre's formula with raw ``1/V^2`` weights (loss built with smooth 0); absent classes take the largest."""
    volumes = summed(yt, pool)
    weights = np.where(volumes > 0, 1.0 / np.maximum(volumes, 1e-12) ** 2, 0.0)
    weights = np.where(volumes > 0, weights, weights.max(-1, keepdims=True))
    numerator = 2 * (weights * summed(yt * yp, pool)).sum(-1)
    return per_sample(1 - numerator / (weights * summed(yt + yp, pool)).sum(-1), yt)


def ref_sensitivity_specificity(yt, yp, pool, weight=0.05, smooth=1e-5):
    error = (yt - yp) ** 2
    sensitivity = summed(error * yt, pool) / (summed(yt, pool) + smooth)
    specificity = summed(error * (1 - yt), pool) / (summed(1 - yt, pool) + smooth)
    return per_sample((weight * sensitivity + (1 - weight) * specificity).mean(-1), yt)


def lovasz_of_voxels(truth, probabilities):
    """Berman's ``lovasz_softmax_flat`` with ``classes='present'``: voxels ``(N, C)``."""
    losses_of_classes = []
    for c in range(truth.shape[-1]):
        fg = truth[:, c]
        if fg.sum() == 0:
            continue
        errors = np.abs(fg - probabilities[:, c])
        order = np.argsort(-errors, kind="stable")
        fg_sorted = fg[order]
        intersection = fg_sorted.sum() - np.cumsum(fg_sorted)
        union = fg_sorted.sum() + np.cumsum(1 - fg_sorted)
        jaccard = 1 - intersection / union
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
        losses_of_classes.append(errors[order] @ jaccard)
    return np.mean(losses_of_classes)


def ref_lovasz(yt, yp, pool):
    """Berman's ``per_image=True`` (per sample) or ``per_image=False`` (the batch as one set of voxels)."""
    classes = yt.shape[-1]
    if pool:
        return per_sample(lovasz_of_voxels(yt.reshape(-1, classes), yp.reshape(-1, classes)), yt)
    return np.array(
        [lovasz_of_voxels(yt[b].reshape(-1, classes), yp[b].reshape(-1, classes)) for b in range(yt.shape[0])]
    )


def ref_combo(yt, yp, pool, alpha=0.5, beta=0.5):
    rare = rare_mask(yt.shape[-1])
    weighted_ce = focal_terms(yt, yp, beta * rare + (1 - beta) * (1 - rare), 0.0)
    dsc = per_sample(tversky(yt, yp, 0.5, pool).mean(-1), yt)
    return alpha * weighted_ce - (1 - alpha) * dsc


def ref_exp_log(yt, yp, pool, weight=0.8, gamma=0.3, smooth=1.0):
    tp, fn, fp = counts(yt, yp, pool)
    dice = (2 * tp + smooth) / (2 * tp + fn + fp + smooth)
    dice_term = per_sample(((-np.log(dice)) ** gamma).mean(-1), yt)
    class_counts = summed(yt, False)  # the cross-entropy term's frequency weights stay per sample
    label_weights = np.sqrt(class_counts.sum(-1, keepdims=True) / np.maximum(class_counts, 1))
    p = np.clip(yp, EPS, 1 - EPS)
    weights = label_weights.reshape((yt.shape[0],) + (1,) * (yt.ndim - 2) + (yt.shape[-1],))
    ce_term = voxel_mean((weights * yt * (-np.log(p)) ** gamma).sum(-1))
    return weight * dice_term + (1 - weight) * ce_term


def ref_unified(yt, yp, pool, asymmetric, weight=0.5, delta=0.6, gamma=0.5):
    rare = rare_mask(yt.shape[-1])
    focal_exponents = (1 - rare) * gamma if asymmetric else gamma
    focal = focal_terms(yt, yp, delta * rare + (1 - delta) * (1 - rare), focal_exponents)
    tversky_exponents = 1 - gamma * rare if asymmetric else 1 - gamma
    return weight * focal + (1 - weight) * ref_focal_tversky_power(yt, yp, pool, delta, tversky_exponents)


REFERENCES = {
    "dice": ref_dice,
    "tversky": lambda yt, yp, pool: ref_focal_tversky_power(yt, yp, pool, 0.7, 1.0),
    "focal_tversky": lambda yt, yp, pool: ref_focal_tversky_power(yt, yp, pool, 0.7, 0.75),
    "cosine_tversky": lambda yt, yp, pool: per_sample(np.cos(np.pi / 2 * tversky(yt, yp, 0.7, pool)).mean(-1), yt),
    "symmetric_focal_tversky": lambda yt, yp, pool: ref_focal_tversky_power(yt, yp, pool, 0.7, 0.25),
    "asymmetric_focal_tversky": lambda yt, yp, pool: ref_focal_tversky_power(
        yt, yp, pool, 0.7, 1 - 0.75 * rare_mask(yt.shape[-1])
    ),
    "iou": ref_iou,
    "asymmetric_similarity": ref_asymmetric_similarity,
    "generalized_dice": ref_generalized_dice,
    "sensitivity_specificity": ref_sensitivity_specificity,
    "lovasz_softmax": ref_lovasz,
    "dice_ce": lambda yt, yp, pool: ref_dice(yt, yp, pool) + cross_entropy(yt, yp),
    "dice_topk": lambda yt, yp, pool: ref_dice(yt, yp, pool) + topk(yt, yp),
    "dice_focal": lambda yt, yp, pool: ref_dice(yt, yp, pool) + focal_terms(yt, yp, 0.25, 2.0),
    "combo": ref_combo,
    "exp_log": ref_exp_log,
    "mixed_focal": lambda yt, yp, pool: (
        0.5 * focal_terms(yt, yp, 0.25, 2.0) + 0.5 * ref_focal_tversky_power(yt, yp, pool, 0.7, 0.75)
    ),
    "symmetric_unified_focal": lambda yt, yp, pool: ref_unified(yt, yp, pool, asymmetric=False),
    "asymmetric_unified_focal": lambda yt, yp, pool: ref_unified(yt, yp, pool, asymmetric=True),
}
BUILD_PARAMS = {"generalized_dice": {"smooth": 0.0}}  # the reference uses Sudre's raw weights


def build(name, batch):
    return losses.get(name, batch=batch, **BUILD_PARAMS.get(name, {}))


def values(loss, yt, yp):
    return loss.call(tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)).numpy()


# ---------------------------------------------------------------- which losses pool


def test_every_region_and_compound_loss_takes_batch_and_no_other():
    takes_batch = [name for name in catalog.names() if "batch" in catalog.entry(name).parameter_names()]
    assert takes_batch == POOLED_NAMES == sorted(REFERENCES)
    for name in POOLED_NAMES:
        assert catalog.entry(name).defaults()["batch"] is False
        assert losses.get(name).get_config()["batch"] is False
    with pytest.raises(ValueError, match="loss 'focal' has no parameter 'batch'"):
        losses.get("focal", batch=True)


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("batch", [False, True], ids=["per_sample", "pooled"])
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("name", POOLED_NAMES)
def test_matches_numpy_reference(name, shape, batch):
    yt, yp = random_batch(shape, seed=len(shape) * 10 + shape[-1])
    got = values(build(name, batch), yt, yp)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, REFERENCES[name](yt, yp, batch), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["dice", "generalized_dice", "lovasz_softmax", "sensitivity_specificity"])
def test_pooling_differs_from_the_mean_of_the_samples(name):
    """Sample 0 lacks the foreground: per sample its foreground index is s/(s + FP), pooled it is not."""
    yt, yp = random_batch(SHAPES[3], seed=1)
    pooled, separate = values(build(name, True), yt, yp), values(build(name, False), yt, yp)
    assert np.ptp(pooled) == 0.0
    assert abs(pooled[0] - separate.mean()) > 1e-3


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("name", POOLED_NAMES)
def test_a_batch_of_one_pools_as_per_sample(name, dims, num_classes):
    shape = (1,) + (4, 5, 6)[3 - dims :] + (num_classes,)
    rng = np.random.default_rng(dims * 10 + num_classes)
    labels = rng.integers(0, num_classes, shape[:-1])
    logits = rng.normal(size=shape)
    yt, yp = np.eye(num_classes)[labels], np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        values(build(name, True), yt, yp), values(build(name, False), yt, yp), rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize("name", ["dice", "dice_ce", "lovasz_softmax", "sensitivity_specificity"])
def test_keras_mean_over_the_batch_is_the_pooled_loss(name):
    yt, yp = random_batch(SHAPES[2], seed=3)
    reduced = float(build(name, True)(tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)))
    assert reduced == pytest.approx(float(REFERENCES[name](yt, yp, True).mean()), rel=2e-5, abs=2e-6)


@pytest.mark.parametrize(
    "name",
    ["dice", "dice_ce", "asymmetric_unified_focal", "lovasz_softmax", "sensitivity_specificity", "generalized_dice"],
)
def test_xla_and_float16_give_the_same_pooled_loss(name):
    yt, yp = random_batch(SHAPES[3], seed=4)
    loss = build(name, True)
    y_true, y_pred = tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)
    eager = loss(y_true, y_pred).numpy()
    compiled = tf.function(loss, jit_compile=True)(y_true, y_pred).numpy()
    assert compiled == pytest.approx(eager, rel=1e-5)
    half = loss(y_true, tf.cast(y_pred, tf.float16))
    assert half.dtype == tf.float32
    assert float(half) == pytest.approx(float(loss(y_true, tf.cast(tf.cast(y_pred, tf.float16), tf.float32))), rel=1e-5)


# ---------------------------------------------------------------- gradients


def numerical_gradient(function, y_pred, step=1e-6):
    gradient = np.zeros_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up).sum() - function(down).sum()) / (2 * step)
    return gradient


@pytest.mark.parametrize("shape", [(2, 2, 3, 4, 3), (3, 3, 4, 2)], ids=["3d-c3", "2d-binary"])
@pytest.mark.parametrize("name", POOLED_NAMES)
def test_pooled_gradient_matches_finite_differences(name, shape):
    yt, yp = random_batch(shape, seed=12)
    yp = yp.astype(np.float32).astype(np.float64)
    y_pred = tf.constant(yp, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        total = tf.reduce_sum(build(name, True).call(tf.constant(yt, tf.float32), y_pred))
    analytic = tape.gradient(total, y_pred).numpy()
    numeric = numerical_gradient(lambda p: REFERENCES[name](yt, p, True), yp)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=2e-4 * np.abs(numeric).max())


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("value", ["true", "yes", 1, 0, None, 1.0])
def test_a_batch_that_is_not_true_or_false_is_refused(value):
    with pytest.raises(ValueError, match=rf"^dice_ce: batch must be true or false, got {value!r}$"):
        losses.get("dice_ce", batch=value)
    with pytest.raises(ValueError, match=rf"^dice_ce: batch must be true or false, got {value!r}$"):
        catalog.check("dice_ce", {"batch": value})


@pytest.mark.parametrize("name", ["dice", "asymmetric_unified_focal", "lovasz_softmax", "exp_log"])
def test_config_round_trip_keeps_batch(name):
    loss = losses.get(name, batch=True)
    config = loss.get_config()
    assert config["batch"] is True and json.loads(json.dumps(config)) == config
    rebuilt = type(loss).from_config(config)
    yt, yp = random_batch(SHAPES[1], seed=13)
    np.testing.assert_allclose(values(rebuilt, yt, yp), values(loss, yt, yp))


def test_list_losses_shows_batch(capsys):
    assert list_losses.main(["dice", "dice_ce"]) == 0
    text = capsys.readouterr().out
    assert text.count("    batch: false") == 2 and "true or false" in text and "nnU-Net" in text
    assert list_losses.main(["dice", "--json"]) == 0
    (dice,) = json.loads(capsys.readouterr().out)
    assert dice["parameters"][-1]["name"] == "batch"
    assert dice["parameters"][-1]["default"] is False and dice["parameters"][-1]["kind"] == "flag"
