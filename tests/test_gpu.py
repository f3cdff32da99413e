"""The GPU step: mixed precision, XLA, all GPUs mirrored, inference batches, sorts and distance maps on the device.

Marked ``gpu``: skipped (with the reason) where TensorFlow sees no GPU;
``scripts/gpu_check.sh`` runs them on a GPU node. The last tests check the
CPU side of the same switches and always run.
"""

import numpy as np
import pytest
import tensorflow as tf

import losses
import losses.distance_maps
import losses.lovasz_softmax
from pipeline.inference.sliding_window import resolve_batch_size
from pipeline.training import distribute
from pipeline.training.model import build_unet, deep_supervision_weights

PATCH = (16, 32, 32)


def fed_batch(loss, batch=2, classes=3, seed=0):
    """Inputs and the pipeline's targets (one-hot ‖ maps) with a box of each foreground class."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, *PATCH), int)
    labels[:, 4:10, 8:20, 8:20] = 1
    labels[:, 6:8, 12:16, 12:16] = 2
    one_hot = np.eye(classes, dtype=np.float32)[labels]
    targets = np.concatenate([one_hot, np.stack([loss.target_maps(patch) for patch in one_hot])], -1)
    x = (rng.normal(size=(batch, *PATCH, 1)) + labels[..., None]).astype(np.float32)
    return x, targets


def train_steps(precision: str, jit_compile: bool, strategy: str = "default", steps: int = 3):
    loss = losses.get("boundary")
    x, y = fed_batch(loss, batch=2 * max(1, len(tf.config.list_logical_devices("GPU"))))
    distribute.apply_precision_policy(precision)
    try:
        with distribute.strategy_for(strategy).scope():
            tf.keras.utils.set_random_seed(0)
            model = build_unet(1, 3, n_filters=4, depth=2, deep_supervision=True, deep_supervision_heads=1)
            model.compile(
                optimizer=tf.keras.optimizers.Adam(1e-3),
                loss=loss,
                loss_weights=deep_supervision_weights(1),
                jit_compile=jit_compile,
            )
        targets = (
            y,
            np.concatenate(
                [y[:, ::2, ::2, ::2, :3], np.stack([loss.target_maps(p) for p in y[:, ::2, ::2, ::2, :3]])], -1
            ),
        )
        history = model.fit(x, targets, batch_size=len(x), epochs=steps, verbose=0)
    finally:
        distribute.apply_precision_policy("float32")
    return model, history.history["loss"]


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_xla_training_with_fed_distance_maps_runs_on_the_gpu(precision):
    model, history = train_steps(precision, jit_compile=True)
    assert np.all(np.isfinite(history))
    assert model.layers[1].compute_dtype == ("float16" if precision == "mixed_float16" else "float32")
    assert model.outputs[0].dtype == tf.float32


@pytest.mark.gpu
def test_mirrored_strategy_spans_every_visible_gpu():
    strategy = distribute.strategy_for("mirrored")
    assert strategy.num_replicas_in_sync == len(tf.config.list_logical_devices("GPU"))
    _, history = train_steps("float32", jit_compile=False, strategy="mirrored")
    assert np.all(np.isfinite(history))


@pytest.mark.gpu
def test_auto_inference_batch_fills_the_gpu_and_predicts():
    model = build_unet(1, 3, n_filters=4, depth=2)
    windows = resolve_batch_size("auto", model, PATCH, 1)
    assert windows >= 2
    assert model(tf.zeros((windows, *PATCH, 1)), training=False).shape == (windows, *PATCH, 3)


@pytest.mark.gpu
def test_lovasz_sorts_on_the_gpu_with_the_host_sorts_values(monkeypatch):
    rng = np.random.default_rng(1)
    y_true = tf.one_hot(rng.integers(0, 3, (2, *PATCH)), 3)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=(2, *PATCH, 3)), tf.float32))
    loss = losses.get("lovasz_softmax")
    on_gpu = loss(y_true, y_pred).numpy()
    monkeypatch.setattr(losses.lovasz_softmax, "on_host", lambda: True)
    np.testing.assert_allclose(on_gpu, loss(y_true, y_pred).numpy(), rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["hausdorff_dt", "boundary", "distance_penalized_ce"])
def test_distance_maps_computed_on_the_gpu_equal_the_hosts(name, monkeypatch):
    loss = losses.get(name)
    _, targets = fed_batch(loss)
    one_hot = tf.constant(targets[..., :3])
    y_pred = tf.nn.softmax(3.0 * one_hot + tf.random.stateless_normal(one_hot.shape, seed=(1, 2)))
    on_gpu = loss(one_hot, y_pred).numpy()
    monkeypatch.setattr(losses.distance_maps, "on_host", lambda: True)
    np.testing.assert_allclose(on_gpu, loss(one_hot, y_pred).numpy(), rtol=1e-5)


@pytest.mark.slow
def test_xla_training_with_fed_distance_maps_runs_on_the_cpu():
    _, history = train_steps("float32", jit_compile=True, steps=2)
    assert np.all(np.isfinite(history))


def test_auto_inference_batch_is_two_without_a_gpu_and_numbers_pass_through():
    assert resolve_batch_size(5, None, PATCH, 1) == 5
    if not tf.config.list_logical_devices("GPU"):
        assert resolve_batch_size("auto", None, PATCH, 1) == 2
