"""Distance-map losses read the ground-truth maps from the target, as the pipeline feeds them.

The pipeline's target is one-hot ‖ maps (2C channels), made per patch by the
loss's ``target_maps``; a plain one-hot target (C channels) makes the loss
compute the maps itself. Both must give the same value and gradient, in 2D
and 3D, binary and multiclass; the values themselves are checked against
brute-force references in test_losses_taxonomy.py.
"""

import numpy as np
import pytest
import tensorflow as tf

import losses
from losses.distance_maps import signed_distance_maps

DISTANCE_LOSSES = ["boundary", "hausdorff_dt", "distance_penalized_ce"]
SHAPES = [(2, 12, 14, 2), (2, 12, 14, 3), (2, 6, 8, 10, 2), (2, 6, 8, 10, 3)]


def blobs(shape, seed):
    """One-hot labels with compact regions (boundaries, inside and outside) and a soft prediction."""
    rng = np.random.default_rng(seed)
    spatial, classes = shape[1:-1], shape[-1]
    grids = np.meshgrid(*[np.arange(size) for size in spatial], indexing="ij")
    labels = np.zeros(shape[:-1], int)
    for sample in range(shape[0]):
        for value in range(1, classes):
            centre = rng.uniform(0, spatial)
            radius = rng.uniform(2, min(spatial) / 2)
            inside = sum((grid - c) ** 2 for grid, c in zip(grids, centre)) <= radius**2
            labels[sample][inside] = value
    y_true = np.eye(classes, dtype=np.float32)[labels]
    logits = 3.0 * y_true + rng.normal(size=shape)
    y_pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    return y_true, y_pred


def pipeline_target(loss, y_true):
    """What the sampler feeds: each patch's one-hot followed by the loss's maps of that patch."""
    return np.concatenate([y_true, np.stack([loss.target_maps(patch) for patch in y_true])], axis=-1)


def value_and_gradient(loss, target, y_pred):
    y_pred = tf.constant(y_pred)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss.call(tf.constant(target), y_pred)
    return value.numpy(), tape.gradient(value, y_pred).numpy()


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s) - 2}d-c{s[-1]}")
@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_pipeline_fed_and_self_computed_maps_give_the_same_loss(name, shape):
    loss = losses.get(name)
    y_true, y_pred = blobs(shape, seed=len(shape) * 10 + shape[-1])
    fed_value, fed_gradient = value_and_gradient(loss, pipeline_target(loss, y_true), y_pred)
    own_value, own_gradient = value_and_gradient(loss, y_true, y_pred)
    assert np.all(own_value != 0.0)
    np.testing.assert_allclose(fed_value, own_value, rtol=1e-6)
    np.testing.assert_allclose(fed_gradient, own_gradient, rtol=1e-6, atol=1e-9)


def test_target_maps_hold_the_rare_classes_signed_maps_and_zero_elsewhere():
    loss = losses.get("boundary", rare_classes=[2])
    y_true, _ = blobs((1, 12, 14, 3), seed=1)
    maps = loss.target_maps(y_true[0])
    assert maps.shape == y_true.shape[1:] and maps.dtype == np.float32
    assert not maps[..., :2].any()
    np.testing.assert_array_equal(maps[..., 2], signed_distance_maps(y_true[..., 2:])[0, ..., 0])


@pytest.mark.parametrize("shape", [(2, 12, 14, 2), (2, 6, 8, 10, 3)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_every_distance_loss_compiles_with_xla_fed_or_self_computed(name, shape):
    """Under XLA the maps the loss computes itself come from TensorFlow ops: the host's values."""
    loss = losses.get(name)
    y_true, y_pred = blobs(shape, seed=2)
    on_the_host = loss.call(tf.constant(y_true), tf.constant(y_pred)).numpy()
    compiled = tf.function(lambda t, p: loss.call(t, p), jit_compile=True)
    for target in (pipeline_target(loss, y_true), y_true):
        np.testing.assert_allclose(compiled(tf.constant(target), tf.constant(y_pred)).numpy(), on_the_host, rtol=1e-5)


@pytest.mark.parametrize("fed", [True, False], ids=["fed", "self-computed"])
def test_targets_without_static_channels_are_recognised_when_they_arrive(fed):
    loss = losses.get("boundary")
    y_true, y_pred = blobs((2, 12, 14, 3), seed=4)
    target = pipeline_target(loss, y_true) if fed else y_true
    traced = tf.function(
        lambda t, p: loss.call(t, p),
        input_signature=[
            tf.TensorSpec([None, None, None, None], tf.float32),
            tf.TensorSpec([None, 12, 14, 3], tf.float32),
        ],
    )
    np.testing.assert_allclose(
        traced(tf.constant(target), tf.constant(y_pred)).numpy(),
        loss.call(tf.constant(y_true), tf.constant(y_pred)).numpy(),
        rtol=1e-6,
    )


def test_a_target_with_another_channel_count_is_refused():
    loss = losses.get("boundary")
    y_true, y_pred = blobs((2, 12, 14, 3), seed=5)
    with pytest.raises(ValueError, match="expected 3 .* or 6"):
        loss.call(tf.constant(y_true[..., :2]), tf.constant(y_pred))
