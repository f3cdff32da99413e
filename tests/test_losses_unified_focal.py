"""The Unified Focal family against independent NumPy references, hand-worked numbers and SPEC §1's identities.

The references below are written from SPEC.md section 1 (sums over classes,
per-class Tversky statistics, clipping before every log) in float64 NumPy,
without calling the TensorFlow code.
"""

import numpy as np
import pytest
import tensorflow as tf

import losses

EPS = 1e-7
SMOOTH = 1e-6


# --------------------------------------------------------------------------- references


def spatial(y):
    return tuple(range(1, y.ndim - 1))


def reference_tversky_index(y, p, delta, smooth=SMOOTH):
    tp = (y * p).sum(spatial(y))
    fn = (y * (1 - p)).sum(spatial(y))
    fp = ((1 - y) * p).sum(spatial(y))
    return (tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth)  # (B, C)


def reference_rare(num_classes, rare_classes):
    rare = range(1, num_classes) if rare_classes is None else rare_classes
    return np.array([c in rare for c in range(num_classes)], dtype=float)


def reference_focal_terms(y, p, weights, exponents):
    """Voxel mean of sum_c w_c (1 - p_c)^e_c (-y_c log p_c), per sample."""
    clipped = np.clip(p, EPS, 1 - EPS)
    per_class = weights * (1 - clipped) ** exponents * (-y * np.log(clipped))
    return per_class.sum(-1).mean(axis=spatial(y))


def ref_dice(y, p, smooth=SMOOTH):
    return (1 - reference_tversky_index(y, p, 0.5, smooth)).mean(-1)


def ref_tversky(y, p, delta=0.7, smooth=SMOOTH):
    return (1 - reference_tversky_index(y, p, delta, smooth)).mean(-1)


def ref_focal_tversky(y, p, delta=0.7, gamma=0.75, smooth=SMOOTH):
    return ((1 - reference_tversky_index(y, p, delta, smooth)) ** gamma).mean(-1)


def ref_cosine_tversky(y, p, delta=0.7, gamma=1.0, smooth=SMOOTH):
    return (np.cos(np.pi / 2 * reference_tversky_index(y, p, delta, smooth)) ** gamma).mean(-1)


def ref_combo(y, p, alpha=0.5, beta=0.5, smooth=SMOOTH, rare_classes=None):
    rare = reference_rare(y.shape[-1], rare_classes)
    cross_entropy = reference_focal_terms(y, p, beta * rare + (1 - beta) * (1 - rare), 0.0)
    dsc = reference_tversky_index(y, p, 0.5, smooth).mean(-1)
    return alpha * cross_entropy - (1 - alpha) * dsc


def ref_focal(y, p, alpha=0.25, gamma=2.0):
    return reference_focal_terms(y, p, alpha, gamma)


def ref_symmetric_focal(y, p, delta=0.7, gamma=2.0, rare_classes=None):
    rare = reference_rare(y.shape[-1], rare_classes)
    return reference_focal_terms(y, p, delta * rare + (1 - delta) * (1 - rare), gamma)


def ref_asymmetric_focal(y, p, delta=0.7, gamma=2.0, rare_classes=None):
    rare = reference_rare(y.shape[-1], rare_classes)
    return reference_focal_terms(y, p, delta * rare + (1 - delta) * (1 - rare), np.where(rare, 0.0, gamma))


def ref_symmetric_focal_tversky(y, p, delta=0.7, gamma=0.75, smooth=SMOOTH):
    return ((1 - reference_tversky_index(y, p, delta, smooth)) ** (1 - gamma)).mean(-1)


def ref_asymmetric_focal_tversky(y, p, delta=0.7, gamma=0.75, smooth=SMOOTH, rare_classes=None):
    rare = reference_rare(y.shape[-1], rare_classes)
    distance = 1 - reference_tversky_index(y, p, delta, smooth)
    return np.where(rare, distance ** (1 - gamma), distance).mean(-1)


def ref_symmetric_unified_focal(y, p, weight=0.5, delta=0.6, gamma=0.5, smooth=SMOOTH, rare_classes=None):
    return weight * ref_symmetric_focal(y, p, delta, gamma, rare_classes) + (1 - weight) * ref_symmetric_focal_tversky(
        y, p, delta, gamma, smooth
    )


def ref_asymmetric_unified_focal(y, p, weight=0.5, delta=0.6, gamma=0.5, smooth=SMOOTH, rare_classes=None):
    return weight * ref_asymmetric_focal(y, p, delta, gamma, rare_classes) + (
        1 - weight
    ) * ref_asymmetric_focal_tversky(y, p, delta, gamma, smooth, rare_classes)


def ref_mixed_focal(y, p, weight=0.5, alpha=0.25, focal_gamma=2.0, delta=0.7, gamma=0.75, smooth=SMOOTH):
    return weight * ref_focal(y, p, alpha, focal_gamma) + (1 - weight) * ref_focal_tversky(y, p, delta, gamma, smooth)


def ref_cross_entropy(y, p):
    return reference_focal_terms(y, p, 1.0, 0.0)


# name -> (reference, non-default parameters exercised besides the defaults)
FAMILY = {
    "dice": (ref_dice, {"smooth": 1e-3}),
    "tversky": (ref_tversky, {"delta": 0.3}),
    "focal_tversky": (ref_focal_tversky, {"delta": 0.6, "gamma": 1.5}),
    "cosine_tversky": (ref_cosine_tversky, {"delta": 0.4, "gamma": 2.0}),
    "combo": (ref_combo, {"alpha": 0.3, "beta": 0.8, "rare_classes": [1]}),
    "focal": (ref_focal, {"alpha": 0.5, "gamma": 0.5}),
    "symmetric_focal": (ref_symmetric_focal, {"delta": 0.4, "gamma": 1.0, "rare_classes": [1]}),
    "asymmetric_focal": (ref_asymmetric_focal, {"delta": 0.8, "gamma": 0.5, "rare_classes": [1]}),
    "symmetric_focal_tversky": (ref_symmetric_focal_tversky, {"delta": 0.3, "gamma": 0.2}),
    "asymmetric_focal_tversky": (ref_asymmetric_focal_tversky, {"delta": 0.6, "gamma": 0.5, "rare_classes": [1]}),
    "symmetric_unified_focal": (
        ref_symmetric_unified_focal,
        {"weight": 0.2, "delta": 0.7, "gamma": 0.8, "rare_classes": [1]},
    ),
    "asymmetric_unified_focal": (
        ref_asymmetric_unified_focal,
        {"weight": 0.7, "delta": 0.7, "gamma": 0.2, "rare_classes": [1]},
    ),
    "mixed_focal": (ref_mixed_focal, {"weight": 0.3, "alpha": 0.6, "focal_gamma": 1.0, "delta": 0.6, "gamma": 0.9}),
}

SHAPES = {"2d": (2, 6, 7), "3d": (2, 4, 5, 6)}


def random_case(spatial_shape, num_classes, seed=0):
    """One-hot imbalanced labels and softmax probabilities, float32."""
    rng = np.random.default_rng(seed)
    frequencies = np.array([0.7] + [0.3 / (num_classes - 1)] * (num_classes - 1))
    labels = rng.choice(num_classes, size=spatial_shape, p=frequencies)
    y = np.eye(num_classes, dtype=np.float32)[labels]
    logits = rng.normal(scale=2.0, size=spatial_shape + (num_classes,))
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return y, p.astype(np.float32)


def per_sample(name, y, p, **params):
    return losses.get(name, **params).call(tf.constant(y), tf.constant(p)).numpy()


# --------------------------------------------------------------------------- against the references


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("dims", sorted(SHAPES))
@pytest.mark.parametrize("with_params", [False, True], ids=["defaults", "params"])
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_matches_numpy_reference(name, with_params, dims, num_classes):
    reference, params = FAMILY[name]
    params = params if with_params else {}
    y, p = random_case(SHAPES[dims], num_classes, seed=num_classes)
    expected = reference(y.astype(np.float64), p.astype(np.float64), **params)
    actual = per_sample(name, y, p, **params)
    assert actual.shape == (y.shape[0],)
    np.testing.assert_allclose(actual, expected, rtol=2e-5, atol=1e-6)
    # Keras reduces the per-sample values by their mean over the batch.
    assert float(losses.get(name, **params)(y, p)) == pytest.approx(expected.mean(), rel=2e-5, abs=1e-6)


def test_rare_classes_change_which_classes_are_weighed():
    """KiTS19-style three classes: making only the tumour rare changes the asymmetric losses."""
    y, p = random_case((2, 4, 5, 6), 3, seed=7)
    for name, params in [
        ("asymmetric_focal", {}),
        ("asymmetric_focal_tversky", {}),
        ("asymmetric_unified_focal", {}),
        ("combo", {"beta": 0.8}),
    ]:
        both_rare = per_sample(name, y, p, **params)
        tumour_rare = per_sample(name, y, p, rare_classes=[2], **params)
        assert not np.allclose(both_rare, tumour_rare), name
        reference = FAMILY[name][0]
        np.testing.assert_allclose(
            tumour_rare, reference(y.astype(float), p.astype(float), rare_classes=[2], **params), rtol=2e-5, atol=1e-6
        )


# --------------------------------------------------------------------------- worked by hand


def test_hand_computed_binary_case():
    """Two voxels, binary (B=1, H=1, W=2, C=2).

    voxel 0: truth class 1, p = (0.2, 0.8); voxel 1: truth class 0, p = (0.6, 0.4).
    class 1: TP = 0.8, FN = 0.2, FP = 0.4;   class 0: TP = 0.6, FN = 0.4, FP = 0.2.
    Dice (delta 0.5):  DSC_1 = 0.8/1.1 = 0.727273,  DSC_0 = 0.6/0.9 = 0.666667
                       L = mean(0.272727, 0.333333) = 0.303030
    Tversky (0.7):     TI_1 = 0.8/(0.8+0.14+0.12) = 0.754717,  TI_0 = 0.6/(0.6+0.28+0.06) = 0.638298
                       L = mean(0.245283, 0.361702) = 0.303493
    -ln 0.8 = 0.223144,  -ln 0.6 = 0.510826
    focal (0.25, 2):   voxel 0: 0.25*0.2^2*0.223144 = 0.002231;  voxel 1: 0.25*0.4^2*0.510826 = 0.020433
                       L = 0.011332
    asymmetric focal (delta 0.7, gamma 2), class 1 rare:
                       voxel 0 (rare, not modulated): 0.7*0.223144 = 0.156200
                       voxel 1 (background): 0.3*0.4^2*0.510826 = 0.024520;  L = 0.090360
    asymmetric focal Tversky (0.7, 0.75): background linear 0.361702, rare 0.245283^0.25 = 0.703748
                       L = 0.532725
    combo (0.5, 0.5):  CE_beta = (0.5*0.223144 + 0.5*0.510826)/2 = 0.183492, DSC = 0.696970
                       L = 0.5*0.183492 - 0.5*0.696970 = -0.256739
    """
    y = np.array([[[[0, 1], [1, 0]]]], np.float32)
    p = np.array([[[[0.2, 0.8], [0.6, 0.4]]]], np.float32)
    expected = {
        "dice": 0.303030,
        "tversky": 0.303493,
        "focal": 0.011332,
        "asymmetric_focal": 0.090360,
        "combo": -0.256739,
    }
    for name, value in expected.items():
        assert per_sample(name, y, p)[0] == pytest.approx(value, abs=2e-6), name
    assert per_sample("asymmetric_focal_tversky", y, p, delta=0.7, gamma=0.75)[0] == pytest.approx(0.532725, abs=2e-6)


# --------------------------------------------------------------------------- SPEC §1 identities


@pytest.fixture(scope="module", params=[(SHAPES["2d"], 2), (SHAPES["3d"], 3)], ids=["2d-binary", "3d-three-classes"])
def case(request):
    return random_case(*request.param, seed=11)


def assert_same(case, first, second):
    y, p = case
    np.testing.assert_allclose(
        per_sample(*first[:1], y, p, **first[1]), per_sample(*second[:1], y, p, **second[1]), rtol=1e-5, atol=1e-7
    )


@pytest.mark.parametrize("variant", ["symmetric", "asymmetric"])
def test_unified_focal_weight_one_is_the_focal_loss(case, variant):
    assert_same(
        case,
        (f"{variant}_unified_focal", {"weight": 1.0, "delta": 0.6, "gamma": 0.5}),
        (f"{variant}_focal", {"delta": 0.6, "gamma": 0.5}),
    )


@pytest.mark.parametrize("variant", ["symmetric", "asymmetric"])
def test_unified_focal_weight_zero_is_the_focal_tversky_loss(case, variant):
    assert_same(
        case,
        (f"{variant}_unified_focal", {"weight": 0.0, "delta": 0.6, "gamma": 0.5}),
        (f"{variant}_focal_tversky", {"delta": 0.6, "gamma": 0.5}),
    )


def test_symmetric_focal_tversky_gamma_zero_is_tversky_and_then_dice(case):
    assert_same(case, ("symmetric_focal_tversky", {"gamma": 0.0, "delta": 0.7}), ("tversky", {"delta": 0.7}))
    assert_same(case, ("symmetric_focal_tversky", {"gamma": 0.0, "delta": 0.5}), ("dice", {}))


def test_tversky_delta_half_is_dice(case):
    assert_same(case, ("tversky", {"delta": 0.5}), ("dice", {}))


def test_focal_tversky_gamma_one_is_tversky(case):
    assert_same(case, ("focal_tversky", {"gamma": 1.0, "delta": 0.6}), ("tversky", {"delta": 0.6}))


def test_symmetric_focal_gamma_zero_delta_half_is_half_the_cross_entropy(case):
    y, p = case
    halved = per_sample("symmetric_focal", y, p, gamma=0.0, delta=0.5)
    np.testing.assert_allclose(halved, ref_cross_entropy(y.astype(float), p.astype(float)) / 2, rtol=1e-5)
    if "cross_entropy" in losses.names():  # the library's own cross entropy, once registered
        np.testing.assert_allclose(halved, per_sample("cross_entropy", y, p) / 2, rtol=1e-5)


def test_focal_gamma_zero_is_alpha_times_cross_entropy(case):
    y, p = case
    np.testing.assert_allclose(
        per_sample("focal", y, p, gamma=0.0, alpha=0.3),
        0.3 * ref_cross_entropy(y.astype(float), p.astype(float)),
        rtol=1e-5,
    )


def test_asymmetric_equals_symmetric_without_focusing(case):
    assert_same(case, ("asymmetric_focal", {"gamma": 0.0}), ("symmetric_focal", {"gamma": 0.0}))
    assert_same(case, ("asymmetric_focal_tversky", {"gamma": 0.0}), ("symmetric_focal_tversky", {"gamma": 0.0}))


def test_mixed_focal_weights_select_its_parts(case):
    assert_same(
        case,
        ("mixed_focal", {"weight": 1.0, "alpha": 0.4, "focal_gamma": 1.5}),
        ("focal", {"alpha": 0.4, "gamma": 1.5}),
    )
    assert_same(
        case,
        ("mixed_focal", {"weight": 0.0, "delta": 0.6, "gamma": 0.5}),
        ("focal_tversky", {"delta": 0.6, "gamma": 0.5}),
    )


def test_simplified_combo_is_three_times_combo_at_two_thirds(case):
    """The Mixed Focal paper's ``CE - DSC`` equals 3 x combo(alpha = 2/3, beta = 0.5)."""
    y, p = case
    simplified = ref_cross_entropy(y.astype(float), p.astype(float)) - reference_tversky_index(
        y.astype(float), p.astype(float), 0.5
    ).mean(-1)
    np.testing.assert_allclose(3 * per_sample("combo", y, p, alpha=2 / 3, beta=0.5), simplified, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- 3D: channels on the last axis


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_3d_losses_see_every_depth_slice(name):
    """The reference code's ``y_pred[:, :, :, 0]`` reads one slice of a 3D batch; ours must read all."""
    y, p = random_case((1, 4, 5, 6), 3, seed=3)
    changed = p.copy()
    changed[:, 2:] = np.roll(p[:, 2:], 1, axis=-1)  # other class probabilities, depth slices >= 2 only
    assert not np.isclose(per_sample(name, y, p)[0], per_sample(name, y, changed)[0], rtol=1e-4), name


def test_3d_focal_is_the_mean_of_its_depth_slices():
    """A voxel mean over a volume is the mean of the 2D losses of its depth slices."""
    y, p = random_case((1, 4, 5, 6), 3, seed=5)
    for name in ("focal", "symmetric_focal", "asymmetric_focal"):
        slices = [per_sample(name, y[:, d], p[:, d])[0] for d in range(y.shape[1])]
        assert per_sample(name, y, p)[0] == pytest.approx(np.mean(slices), rel=1e-5), name


# --------------------------------------------------------------------------- edge values and validation


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_perfect_prediction_is_the_minimum(name):
    """A perfect prediction scores the loss's lower bound (0; combo: -(1 - alpha))."""
    y, _ = random_case((2, 4, 5, 6), 3, seed=2)
    value = per_sample(name, y, y)
    floor = -0.5 if name == "combo" else 0.0
    np.testing.assert_allclose(value, floor, atol=1e-5)


@pytest.mark.parametrize(
    "name, params, mentioned",
    [
        ("tversky", {"delta": 1.5}, "delta"),
        ("dice", {"smooth": 0.0}, "smooth"),
        ("focal", {"gamma": -1.0}, "gamma"),
        ("focal", {"alpha": "a lot"}, "alpha"),
        ("symmetric_focal_tversky", {"gamma": 2.0}, "gamma"),
        ("asymmetric_unified_focal", {"weight": 1.2}, "weight"),
        ("asymmetric_unified_focal", {"gamma": 1.5}, "gamma"),
        ("mixed_focal", {"focal_gamma": -2.0}, "focal_gamma"),
        ("combo", {"beta": -0.1}, "beta"),
        ("asymmetric_focal", {"rare_classes": "1"}, "rare_classes"),
        ("asymmetric_focal", {"rare_classes": [1, -2]}, "rare_classes"),
    ],
)
def test_bad_hyperparameters_raise_value_error_naming_them(name, params, mentioned):
    with pytest.raises(ValueError, match=mentioned):
        losses.get(name, **params)


def test_rare_class_beyond_the_prediction_is_reported_at_the_call():
    y, p = random_case((1, 4, 5), 2)
    with pytest.raises(ValueError, match="rare_classes"):
        losses.get("asymmetric_focal", rare_classes=[2])(y, p)
