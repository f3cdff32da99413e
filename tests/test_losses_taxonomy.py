"""The taxonomy losses outside the Unified Focal family, against independent NumPy references.

Every reference below is written from the papers' formulas in float64, with
its own distance maps (brute force over all voxel pairs, no scipy) and its
own port of Berman's Lovász-softmax; inputs are small random 2D and 3D
batches with two and three classes.
"""

import numpy as np
import pytest
import tensorflow as tf

import losses
from losses.base import overlap, tversky_index
from losses.distance_maps import (
    device_maps,
    graph_maps,
    host_maps,
    inverted_distance_maps,
    signed_distance_maps,
    unsigned_distance_maps,
)

EPS = 1e-7
SHAPES = [(2, 5, 6, 2), (2, 5, 6, 3), (2, 3, 4, 5, 2), (2, 3, 4, 5, 3)]


def random_batch(shape, seed=0, hard=False):
    """One-hot truth and softmax prediction; with three classes, sample 0 lacks class 2."""
    rng = np.random.default_rng(seed)
    classes = shape[-1]
    labels = rng.integers(0, classes, shape[:-1])
    if classes == 3:
        labels[0] = rng.integers(0, 2, shape[1:-1])
    y_true = np.eye(classes)[labels]
    if hard:
        y_pred = np.eye(classes)[rng.integers(0, classes, shape[:-1])]
    else:
        logits = rng.normal(size=shape) * 2.0
        y_pred = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y_true, y_pred


# ---------------------------------------------------------------- references


def sums(array):
    return array.sum(axis=tuple(range(1, array.ndim - 1)))


def per_voxel_mean(array):
    return array.reshape(array.shape[0], -1).mean(-1)


def ref_ce_voxels(yt, yp):
    return -(yt * np.log(np.clip(yp, EPS, 1 - EPS))).sum(-1)


def ref_cross_entropy(yt, yp):
    return per_voxel_mean(ref_ce_voxels(yt, yp))


def ref_weighted_cross_entropy(yt, yp, class_weights=None):
    if class_weights is None:
        counts = sums(yt)
        balanced = counts.sum(-1, keepdims=True) / (yt.shape[-1] * np.maximum(counts, 1))
        weights = np.where(counts > 0, balanced, 0)
    else:
        weights = np.broadcast_to(np.asarray(class_weights, float), (yt.shape[0], yt.shape[-1]))
    out = []
    for b in range(yt.shape[0]):
        out.append(np.mean(-(weights[b] * yt[b] * np.log(np.clip(yp[b], EPS, 1 - EPS))).sum(-1)))
    return np.array(out)


def ref_topk(yt, yp, k=10.0):
    out = []
    for b in range(yt.shape[0]):
        ce = np.sort(ref_ce_voxels(yt[b : b + 1], yp[b : b + 1]).ravel())[::-1]
        out.append(ce[: max(1, int(ce.size * k / 100))].mean())
    return np.array(out)


def distance_to(targets):
    """Brute-force Euclidean distance from every voxel to the nearest voxel of ``targets``."""
    coords = np.indices(targets.shape).reshape(targets.ndim, -1).T
    chosen = coords[targets.ravel()]
    distances = np.sqrt(((coords[:, None, :] - chosen[None, :, :]) ** 2).sum(-1)).min(1)
    return distances.reshape(targets.shape)


def has_boundary(mask):
    return mask.any() and not mask.all()


def ref_signed(mask):
    if not has_boundary(mask):
        return np.zeros(mask.shape)
    return np.where(mask, -(distance_to(~mask) - 1), distance_to(mask))


def ref_unsigned(mask):
    if not has_boundary(mask):
        return np.zeros(mask.shape)
    return np.where(mask, distance_to(~mask), distance_to(mask))


def ref_inverted(mask):
    if not has_boundary(mask):
        return np.zeros(mask.shape)
    inner = np.where(mask, distance_to(~mask), 0.0)
    return np.where(mask, (inner.max() - inner) / inner.max(), 0.0)


def ref_distance_penalized_ce(yt, yp):
    out = []
    for b in range(yt.shape[0]):
        penalty = sum(ref_inverted(yt[b, ..., c] > 0.5) for c in range(yt.shape[-1]))
        out.append(np.mean((1 + penalty) * ref_ce_voxels(yt[b : b + 1], yp[b : b + 1])[0]))
    return np.array(out)


def ref_sensitivity_specificity(yt, yp, weight=0.05, smooth=1e-5):
    error = (yt - yp) ** 2
    sensitivity = sums(error * yt) / (sums(yt) + smooth)
    specificity = sums(error * (1 - yt)) / (sums(1 - yt) + smooth)
    return (weight * sensitivity + (1 - weight) * specificity).mean(-1)


def ref_iou(yt, yp, smooth=1e-6):
    return (1 - (sums(yt * yp) + smooth) / (sums(yt + yp - yt * yp) + smooth)).mean(-1)


def ref_generalized_dice(yt, yp, smooth=0.0):
    """Sudre's formula with raw ``1/V^2`` weights; absent classes take the largest weight."""
    volumes = sums(yt)
    weights = np.where(volumes > 0, 1.0 / np.maximum(volumes, 1) ** 2, 0.0)
    weights = np.where(volumes > 0, weights, weights.max(-1, keepdims=True))
    numerator = 2 * (weights * sums(yt * yp)).sum(-1)
    denominator = (weights * sums(yt + yp)).sum(-1)
    return 1 - (numerator + smooth) / (denominator + smooth)


def berman_lovasz_grad(gt_sorted):
    """Port of ``lovasz_grad`` from Berman's reference code (lovasz_losses.py)."""
    p = len(gt_sorted)
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    if p > 1:
        jaccard[1:p] = jaccard[1:p] - jaccard[0:-1]
    return jaccard


def berman_lovasz_softmax(yt, yp):
    """Port of ``lovasz_softmax(per_image=True, classes='present')``, per image."""
    out = []
    for b in range(yt.shape[0]):
        labels = yt[b].reshape(-1, yt.shape[-1]).argmax(-1)
        probas = yp[b].reshape(-1, yp.shape[-1])
        class_losses = []
        for c in range(yp.shape[-1]):
            fg = (labels == c).astype(float)
            if fg.sum() == 0:
                continue
            errors = np.abs(fg - probas[:, c])
            perm = np.argsort(-errors, kind="stable")
            class_losses.append(np.dot(errors[perm], berman_lovasz_grad(fg[perm])))
        out.append(np.mean(class_losses))
    return np.array(out)


def ref_asymmetric_similarity(yt, yp, beta=1.5):
    tp, fn, fp = sums(yt * yp), sums(yt * (1 - yp)), sums((1 - yt) * yp)
    b2 = beta**2
    return (1 - (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp)).mean(-1)


def rare_maps(yt, map_one, classes):
    return np.stack([np.stack([map_one(yt[b, ..., c] > 0.5) for c in classes], -1) for b in range(yt.shape[0])])


def ref_boundary(yt, yp, rare_classes=None):
    classes = rare_classes or list(range(1, yt.shape[-1]))
    phi = rare_maps(yt, ref_signed, classes)
    return per_voxel_mean(phi * yp[..., classes])


def ref_hausdorff_dt(yt, yp, alpha=2.0):
    classes = list(range(1, yt.shape[-1]))
    truth_distance = rare_maps(yt, ref_unsigned, classes)
    predicted_distance = rare_maps(yp, ref_unsigned, classes)
    error = (yp[..., classes] - yt[..., classes]) ** 2
    return per_voxel_mean(error * (truth_distance**alpha + predicted_distance**alpha))


def ref_dice(yt, yp, smooth=1e-6):
    """SPEC's Dice loss: mean_c (1 - mTI_c(delta = 0.5))."""
    tp, fn, fp = sums(yt * yp), sums(yt * (1 - yp)), sums((1 - yt) * yp)
    return (1 - (tp + smooth) / (tp + 0.5 * fn + 0.5 * fp + smooth)).mean(-1)


def ref_focal(yt, yp, alpha=0.25, gamma=2.0):
    """SPEC's categorical focal loss: voxel-mean of sum_c alpha (1 - p_c)^gamma (-y_c log p_c)."""
    p = np.clip(yp, EPS, 1 - EPS)
    return per_voxel_mean((alpha * (1 - p) ** gamma * -yt * np.log(p)).sum(-1))


def ref_exp_log(yt, yp, weight=0.8, gamma=0.3, smooth=1.0):
    tp, total = sums(yt * yp), sums(yt + yp)
    dice = (2 * tp + smooth) / (total + smooth)
    dice_term = ((-np.log(dice)) ** gamma).mean(-1)
    counts = sums(yt)
    label_weights = np.sqrt(counts.sum(-1, keepdims=True) / np.maximum(counts, 1))
    p = np.clip(yp, EPS, 1 - EPS)
    ce_term = np.array(
        [np.mean((label_weights[b] * yt[b] * (-np.log(p[b])) ** gamma).sum(-1)) for b in range(yt.shape[0])]
    )
    return weight * dice_term + (1 - weight) * ce_term


REFERENCES = {
    "cross_entropy": ref_cross_entropy,
    "weighted_cross_entropy": ref_weighted_cross_entropy,
    "topk": ref_topk,
    "distance_penalized_ce": ref_distance_penalized_ce,
    "sensitivity_specificity": ref_sensitivity_specificity,
    "iou": ref_iou,
    "generalized_dice": ref_generalized_dice,
    "lovasz_softmax": berman_lovasz_softmax,
    "asymmetric_similarity": ref_asymmetric_similarity,
    "boundary": ref_boundary,
    "hausdorff_dt": ref_hausdorff_dt,
    "dice_ce": lambda yt, yp: ref_dice(yt, yp) + ref_cross_entropy(yt, yp),
    "dice_topk": lambda yt, yp: ref_dice(yt, yp) + ref_topk(yt, yp),
    "dice_focal": lambda yt, yp: ref_dice(yt, yp) + ref_focal(yt, yp),
    "exp_log": ref_exp_log,
}
# Compared with smooth = 0: the reference uses Sudre's raw weights, the loss rescaled ones.
BUILD_PARAMS = {"generalized_dice": {"smooth": 0.0}}


def per_sample(name, yt, yp, **params):
    loss = losses.get(name, **{**BUILD_PARAMS.get(name, {}), **params})
    return loss.call(tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)).numpy()


# ---------------------------------------------------------------- values


def test_every_taxonomy_name_is_registered():
    assert set(REFERENCES) <= set(losses.names())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s) - 2}d-c{s[-1]}")
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_numpy_reference(name, shape):
    yt, yp = random_batch(shape, seed=len(shape) * 10 + shape[-1])
    got = per_sample(name, yt, yp)
    assert got.shape == (shape[0],)
    np.testing.assert_allclose(got, REFERENCES[name](yt, yp), rtol=2e-5, atol=2e-6)


def test_batch_reduction_is_the_mean_of_the_samples():
    yt, yp = random_batch(SHAPES[1])
    for name in ("lovasz_softmax", "hausdorff_dt", "generalized_dice"):
        loss = losses.get(name, **BUILD_PARAMS.get(name, {}))
        reduced = float(loss(tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)))
        assert reduced == pytest.approx(per_sample(name, yt, yp).mean(), rel=1e-6)


@pytest.mark.parametrize("name", ["topk", "dice_topk", "weighted_cross_entropy", "exp_log", "hausdorff_dt"])
def test_non_default_parameters_reach_the_formula(name):
    yt, yp = random_batch(SHAPES[3], seed=3)
    params = {
        "topk": {"k": 37.5},
        "dice_topk": {"k": 50.0},
        "weighted_cross_entropy": {"class_weights": [0.2, 1.0, 3.0]},
        "exp_log": {"weight": 0.3, "gamma": 0.7, "smooth": 0.5},
        "hausdorff_dt": {"alpha": 1.0},
    }[name]
    reference = {
        "topk": lambda: ref_topk(yt, yp, k=37.5),
        "dice_topk": lambda: ref_dice(yt, yp) + ref_topk(yt, yp, k=50.0),
        "weighted_cross_entropy": lambda: ref_weighted_cross_entropy(yt, yp, [0.2, 1.0, 3.0]),
        "exp_log": lambda: ref_exp_log(yt, yp, weight=0.3, gamma=0.7, smooth=0.5),
        "hausdorff_dt": lambda: ref_hausdorff_dt(yt, yp, alpha=1.0),
    }[name]()
    np.testing.assert_allclose(per_sample(name, yt, yp, **params), reference, rtol=2e-5, atol=2e-6)


# ---------------------------------------------------------------- identities


@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[3]])
def test_cross_entropy_reductions(shape):
    yt, yp = random_batch(shape, seed=5)
    ce = per_sample("cross_entropy", yt, yp)
    ones = [1.0] * shape[-1]
    weighted = per_sample("weighted_cross_entropy", yt, yp, class_weights=ones)
    np.testing.assert_allclose(weighted, ce, rtol=1e-6)
    np.testing.assert_allclose(per_sample("topk", yt, yp, k=100), ce, rtol=1e-5)
    ce_part = per_sample("exp_log", yt, yp, weight=0.0, gamma=1.0, class_weights=ones)
    np.testing.assert_allclose(ce_part, ce, rtol=1e-5)
    assert np.all(per_sample("topk", yt, yp, k=10) > ce)


def test_iou_and_dice_on_hard_masks():
    """IoU = DSC / (2 - DSC) per class when prediction and truth are binary."""
    yt, yp = random_batch(SHAPES[3], seed=6, hard=True)
    dice = tversky_index(overlap(tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)), 0.5, 0.0).numpy()
    expected = (1 - dice / (2 - dice)).mean(-1)
    np.testing.assert_allclose(per_sample("iou", yt, yp, smooth=0.0), expected, rtol=1e-6)


def test_lovasz_equals_jaccard_loss_on_hard_masks():
    """On binary errors the Lovász extension equals the set function: 1 - IoU of each present class."""
    yt, yp = random_batch(SHAPES[3], seed=7, hard=True)
    intersection, union = sums(yt * yp), sums(np.maximum(yt, yp))
    present = sums(yt) > 0
    expected = ((1 - intersection / union) * present).sum(-1) / present.sum(-1)
    np.testing.assert_allclose(per_sample("lovasz_softmax", yt, yp), expected, rtol=1e-6)
    assert np.allclose(per_sample("lovasz_softmax", yt, yt), 0.0)


def test_generalized_dice_hand_example():
    """Truth [1,1,1,0] and prediction [1,1,0,0] for class 1 of a 1x4 image.

    Volumes 1 (class 0) and 3 (class 1): w = (1, 1/9); TP = (1, 2);
    sums of g + p = (3, 5); GD = 2 (1 + 2/9) / (3 + 5/9) = 22/32.
    """
    foreground_truth = np.array([1, 1, 1, 0.0])
    foreground_pred = np.array([1, 1, 0, 0.0])
    yt = np.stack([1 - foreground_truth, foreground_truth], -1).reshape(1, 1, 4, 2)
    yp = np.stack([1 - foreground_pred, foreground_pred], -1).reshape(1, 1, 4, 2)
    assert per_sample("generalized_dice", yt, yp, smooth=0.0)[0] == pytest.approx(1 - 22 / 32, rel=1e-6)


def test_generalized_dice_default_smoothing_is_negligible():
    yt, yp = random_batch(SHAPES[2], seed=8)
    smoothed = per_sample("generalized_dice", yt, yp, smooth=1e-6)
    np.testing.assert_allclose(smoothed, ref_generalized_dice(yt, yp), atol=1e-5)


def test_asymmetric_similarity_with_beta_one_is_dice():
    yt, yp = random_batch(SHAPES[1], seed=9)
    f1 = per_sample("asymmetric_similarity", yt, yp, beta=1.0)
    np.testing.assert_allclose(f1, per_sample("dice", yt, yp), rtol=1e-6)


@pytest.mark.parametrize("name, second", [("dice_ce", "cross_entropy"), ("dice_topk", "topk"), ("dice_focal", "focal")])
def test_dice_compounds_are_sums_of_library_losses(name, second):
    yt, yp = random_batch(SHAPES[3], seed=10)
    expected = per_sample("dice", yt, yp) + per_sample(second, yt, yp)
    np.testing.assert_allclose(per_sample(name, yt, yp), expected, rtol=1e-6)


def test_boundary_loss_is_lowest_at_the_ground_truth():
    yt, yp = random_batch(SHAPES[2], seed=11)
    assert np.all(per_sample("boundary", yt, yt) < per_sample("boundary", yt, yp))
    assert np.all(per_sample("hausdorff_dt", yt, yt) == 0.0)


# ---------------------------------------------------------------- distance maps


def square_in_5x5():
    mask = np.zeros((5, 5), bool)
    mask[1:4, 1:4] = True
    return mask


def as_batch(*masks):
    """Stack 2D/3D masks as the channels of a one-sample batch."""
    return np.stack(masks, -1)[None].astype(np.float32)


R2 = np.sqrt(2.0)


def test_signed_distance_map_by_hand():
    expected = np.array(
        [
            [R2, 1, 1, 1, R2],
            [1, 0, 0, 0, 1],
            [1, 0, -1, 0, 1],
            [1, 0, 0, 0, 1],
            [R2, 1, 1, 1, R2],
        ]
    )
    signed = signed_distance_maps(as_batch(square_in_5x5()))[0, ..., 0]
    np.testing.assert_allclose(signed, expected, rtol=1e-6)


def test_unsigned_distance_map_by_hand():
    expected = np.array(
        [
            [R2, 1, 1, 1, R2],
            [1, 1, 1, 1, 1],
            [1, 1, 2, 1, 1],
            [1, 1, 1, 1, 1],
            [R2, 1, 1, 1, R2],
        ]
    )
    unsigned = unsigned_distance_maps(as_batch(square_in_5x5()))[0, ..., 0]
    np.testing.assert_allclose(unsigned, expected, rtol=1e-6)


def test_inverted_distance_maps_by_hand():
    """Square: ring (2-1)/2, centre 0. Its complement: edges (sqrt2-1)/sqrt2, corners 0."""
    square = square_in_5x5()
    maps = inverted_distance_maps(as_batch(square, ~square))[0]
    inside = np.array([[0.5, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(maps[1:4, 1:4, 0], inside, atol=1e-7)
    assert np.all(maps[~square, 0] == 0)
    edge = (R2 - 1) / R2
    np.testing.assert_allclose(maps[0, :, 1], [0, edge, edge, edge, 0], atol=1e-6)
    assert np.all(maps[square, 1] == 0)


def test_single_voxel_in_3d_by_hand():
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    signed = signed_distance_maps(as_batch(mask))[0, ..., 0]
    assert signed[1, 1, 1] == 0
    assert signed[0, 1, 1] == 1
    assert signed[0, 0, 1] == pytest.approx(R2)
    assert signed[0, 0, 0] == pytest.approx(np.sqrt(3))


REFERENCE_MAPS = {"signed": ref_signed, "unsigned": ref_unsigned, "inverted": ref_inverted}


@pytest.mark.parametrize("shape", [(2, 9, 12, 3), (2, 5, 9, 8, 3), (1, 7, 1, 2)], ids=["2d", "3d", "flat"])
@pytest.mark.parametrize("kind", sorted(REFERENCE_MAPS))
def test_host_and_device_maps_equal_the_brute_force_maps(kind, shape):
    """Random masks (channel 0), blobs touching the border (1) and one empty mask (2), host and in-graph."""
    rng = np.random.default_rng(len(shape))
    masks = np.zeros(shape, bool)
    masks[..., 0] = rng.random(shape[:-1]) < 0.3
    if shape[-1] > 2:
        masks[:, 2:, 3:, ..., 1] = True
    expected = np.zeros(shape)
    for sample in range(shape[0]):
        for channel in range(shape[-1]):
            expected[sample, ..., channel] = REFERENCE_MAPS[kind](masks[sample, ..., channel])
    np.testing.assert_allclose(host_maps(kind, masks.astype(np.float32)), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        device_maps(kind, tf.constant(masks, tf.float32)).numpy(), expected, rtol=1e-6, atol=1e-6
    )
    compiled = tf.function(lambda values: device_maps(kind, values), jit_compile=True)
    np.testing.assert_allclose(compiled(tf.constant(masks, tf.float32)).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_empty_and_full_masks_have_zero_maps():
    empty, full = np.zeros((4, 5), bool), np.ones((4, 5), bool)
    for map_function in (signed_distance_maps, unsigned_distance_maps, inverted_distance_maps):
        assert not map_function(as_batch(empty, full)).any()


@pytest.mark.parametrize("host", [True, False], ids=["host", "graph"])
def test_graph_maps_keep_static_shape_under_tf_function(host, monkeypatch):
    monkeypatch.setattr(losses.distance_maps, "on_host", lambda: host)
    masks = as_batch(square_in_5x5(), ~square_in_5x5())

    @tf.function(input_signature=[tf.TensorSpec([None, 5, 5, 2], tf.float32)])
    def traced(tensor):
        maps = graph_maps("signed", tensor)
        assert maps.shape.as_list() == [None, 5, 5, 2]
        return maps

    np.testing.assert_allclose(traced(tf.constant(masks)).numpy(), signed_distance_maps(masks))


def test_no_gradient_flows_through_the_maps():
    masks = tf.constant(as_batch(square_in_5x5()))
    with tf.GradientTape() as tape:
        tape.watch(masks)
        maps = graph_maps("unsigned", masks)
    assert tape.gradient(tf.reduce_sum(maps), masks) is None


# ---------------------------------------------------------------- gradients


def numerical_gradient(function, y_pred, step=1e-6):
    gradient = np.zeros_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (function(up).sum() - function(down).sum()) / (2 * step)
    return gradient


GRADIENT_CHECKED = [
    "cross_entropy",
    "weighted_cross_entropy",
    "topk",
    "distance_penalized_ce",
    "sensitivity_specificity",
    "iou",
    "generalized_dice",
    "lovasz_softmax",
    "asymmetric_similarity",
    "boundary",
    "hausdorff_dt",
    "exp_log",
]


@pytest.mark.parametrize("name", GRADIENT_CHECKED)
def test_gradient_matches_finite_differences(name):
    yt, yp = random_batch((2, 2, 3, 4, 3), seed=12)
    y_pred = tf.constant(yp, tf.float32)
    loss = losses.get(name, **BUILD_PARAMS.get(name, {}))
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        total = tf.reduce_sum(loss.call(tf.constant(yt, tf.float32), y_pred))
    analytic = tape.gradient(total, y_pred).numpy()
    numeric = numerical_gradient(lambda p: REFERENCES[name](yt, p), yp.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=2e-4 * np.abs(numeric).max())


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradients_finite_for_perfect_and_all_wrong_predictions(name):
    yt, _ = random_batch(SHAPES[3], seed=15)
    loss = losses.get(name)
    for y_pred in (yt, np.roll(yt, 1, axis=-1)):
        y_pred = tf.constant(y_pred, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss(tf.constant(yt, tf.float32), y_pred)
        assert np.isfinite(value.numpy())
        assert np.all(np.isfinite(tape.gradient(value, y_pred).numpy()))


# ---------------------------------------------------------------- configuration


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="k"):
        losses.get("topk", k=0)
    with pytest.raises(ValueError, match="weight"):
        losses.get("sensitivity_specificity", weight=1.5)
    with pytest.raises(ValueError, match="beta"):
        losses.get("asymmetric_similarity", beta=-1.0)
    with pytest.raises(ValueError, match="class_weights"):
        losses.get("exp_log", class_weights="1,2")
    with pytest.raises(ValueError, match="rare_classes"):
        losses.get("hausdorff_dt", rare_classes=[-1])
    yt, yp = random_batch(SHAPES[1])
    with pytest.raises(ValueError, match="class_weights"):
        per_sample("weighted_cross_entropy", yt, yp, class_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="rare_classes"):
        per_sample("boundary", yt, yp, rare_classes=[3])


@pytest.mark.parametrize("name", ["dice_topk", "exp_log", "boundary"])
def test_config_round_trip(name):
    params = {
        "dice_topk": {"k": 20.0},
        "exp_log": {"class_weights": [1.0, 2.0, 3.0]},
        "boundary": {"rare_classes": [2]},
    }[name]
    loss = losses.get(name, **params)
    rebuilt = type(loss).from_config(loss.get_config())
    yt, yp = random_batch(SHAPES[1], seed=13)
    yt, yp = tf.constant(yt, tf.float32), tf.constant(yp, tf.float32)
    assert rebuilt.get_config() == loss.get_config()
    np.testing.assert_allclose(rebuilt.call(yt, yp).numpy(), loss.call(yt, yp).numpy())


@pytest.mark.slow
def test_boundary_losses_train_inside_a_compiled_keras_model():
    """The numpy_function maps must work in ``model.fit`` (graph mode, unknown batch size)."""
    yt, _ = random_batch((4, 8, 8, 2), seed=14)
    x = np.random.default_rng(14).normal(size=(4, 8, 8, 1)).astype(np.float32) + yt[..., 1:]
    for name in ("boundary", "hausdorff_dt", "distance_penalized_ce"):
        tf.keras.utils.set_random_seed(0)
        model = tf.keras.Sequential(
            [tf.keras.Input((8, 8, 1)), tf.keras.layers.Conv2D(2, 3, padding="same", activation="softmax")]
        )
        model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss=losses.get(name))
        history = model.fit(x, yt.astype(np.float32), batch_size=2, epochs=8, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        assert history.history["loss"][-1] < history.history["loss"][0]
