"""Multi-replica training and mixed precision (pipeline/training/distribute.py).

MirroredStrategy is checked on the CPU split into two logical devices. That
split must happen before TensorFlow initialises its devices, which other tests
in the same pytest process may already have done, so those checks run in a
fresh Python process (this file run as a script) that prints its measurements
as JSON; the tests below assert on them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

# Losses that average differently (per class, per voxel, a mix of both); all
# must reduce across replicas exactly as on one device.
LOSS_NAMES = ("dice", "focal", "asymmetric_unified_focal", "symmetric_unified_focal")
# One model.fit step per loss on one device and on two replicas: a voxel-averaged
# loss and the compound Unified Focal loss (which averages over classes too).
FIT_LOSS_NAMES = ("focal", "asymmetric_unified_focal")
GLOBAL_BATCH = 4
NUM_CLASSES = 3
PATCH = (8, 8, 8)


def _segmentation_batch(seed: int):
    """Inputs, one-hot labels and softmax predictions that differ per sample."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(GLOBAL_BATCH, *PATCH, 1)).astype("float32")
    labels = rng.integers(0, NUM_CLASSES, size=(GLOBAL_BATCH, *PATCH))
    y_true = np.eye(NUM_CLASSES, dtype="float32")[labels]
    logits = rng.normal(scale=2.0, size=(GLOBAL_BATCH, *PATCH, NUM_CLASSES))
    y_pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
    return x, y_true, y_pred


def _tiny_unet_head(tf):
    """Two 3D convolutions and a float32 softmax: the runner's output convention."""
    inputs = tf.keras.Input((*PATCH, 1))
    hidden = tf.keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inputs)
    logits = tf.keras.layers.Conv3D(NUM_CLASSES, 1)(hidden)
    outputs = tf.keras.layers.Softmax(dtype="float32")(logits)
    return tf.keras.Model(inputs, outputs)


def _loss_summed_over_replicas(tf, strategy, loss, y_true, y_pred) -> float:
    """The custom-training-loop recipe: each replica averages its per-sample
    losses over the *global* batch, and the replicas' results are summed."""
    batches = tf.data.Dataset.from_tensor_slices((y_true, y_pred)).batch(GLOBAL_BATCH)
    replica_batch = next(iter(strategy.experimental_distribute_dataset(batches)))

    def replica_loss(labels, probabilities):
        return tf.nn.compute_average_loss(loss.call(labels, probabilities), global_batch_size=GLOBAL_BATCH)

    per_replica = strategy.run(replica_loss, args=replica_batch)
    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None))


def _weights_after_one_fit_step(tf, strategy, initial_weights, loss, x, y_true):
    """One SGD step of ``model.fit`` on the global batch, from the given weights."""
    with strategy.scope():
        model = _tiny_unet_head(tf)
        model.set_weights(initial_weights)
        model.compile(optimizer=tf.keras.optimizers.SGD(learning_rate=1.0), loss=loss)
    model.fit(x, y_true, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    return model.get_weights()


def _largest_difference(weights, other_weights) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(weights, other_weights))


def _measure_on_two_cpu_replicas() -> dict:
    """Run in a fresh process: loss values and one fit step, one device vs two replicas."""
    import pipeline  # noqa: F401  (TF_USE_LEGACY_KERAS)
    import tensorflow as tf

    import losses
    from pipeline.training.distribute import strategy_for

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    one_device, mirrored = strategy_for("default"), strategy_for("mirrored")
    x, y_true, y_pred = _segmentation_batch(seed=0)
    tf.keras.utils.set_random_seed(0)
    initial = _tiny_unet_head(tf).get_weights()

    results = {"replicas": mirrored.num_replicas_in_sync, "losses": {}}
    for name in LOSS_NAMES:
        loss = losses.get(name)
        measured = results["losses"][name] = {
            "one_device": float(loss(y_true, y_pred)),
            "mirrored": _loss_summed_over_replicas(tf, mirrored, loss, y_true, y_pred),
        }
        if name in FIT_LOSS_NAMES:
            trained = _weights_after_one_fit_step(tf, one_device, initial, losses.get(name), x, y_true)
            trained_mirrored = _weights_after_one_fit_step(tf, mirrored, initial, losses.get(name), x, y_true)
            measured["weight_change"] = _largest_difference(trained, initial)
            measured["weight_difference"] = _largest_difference(trained, trained_mirrored)
    # A distance-map loss fed its maps with the target (one-hot ‖ maps), as the pipeline does.
    boundary = losses.get("boundary")
    y_fed = np.concatenate([y_true, np.stack([boundary.target_maps(patch) for patch in y_true])], axis=-1)
    trained = _weights_after_one_fit_step(tf, one_device, initial, losses.get("boundary"), x, y_fed)
    trained_mirrored = _weights_after_one_fit_step(tf, mirrored, initial, losses.get("boundary"), x, y_fed)
    results["fed_maps"] = {
        "one_device": float(boundary(y_fed, y_pred)),
        "mirrored": _loss_summed_over_replicas(tf, mirrored, boundary, y_fed, y_pred),
        "weight_change": _largest_difference(trained, initial),
        "weight_difference": _largest_difference(trained, trained_mirrored),
    }
    return results


@pytest.fixture(scope="module")
def two_replica_measurements():
    from losses import names

    missing = sorted(set(LOSS_NAMES) - set(names()))
    assert not missing, f"losses not registered: {missing}"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")  # the CPU split, also on GPU nodes
    completed = subprocess.run(
        [sys.executable, __file__],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_uses_both_logical_cpus(two_replica_measurements):
    assert two_replica_measurements["replicas"] == 2


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_reduced_across_replicas_equals_one_device(two_replica_measurements, name):
    measured = two_replica_measurements["losses"][name]
    assert measured["one_device"] > 0
    assert measured["mirrored"] == pytest.approx(measured["one_device"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", FIT_LOSS_NAMES)
def test_fit_step_on_two_replicas_equals_one_device(two_replica_measurements, name):
    measured = two_replica_measurements["losses"][name]
    # The step moved the weights far more than the tolerance: a gradient
    # scaled by the replica count (a wrong reduction) would be detected.
    assert measured["weight_change"] > 1e-3
    assert measured["weight_difference"] < 1e-5


def test_fed_distance_maps_reduce_and_train_across_replicas_as_on_one_device(two_replica_measurements):
    measured = two_replica_measurements["fed_maps"]
    assert measured["one_device"] != 0.0
    assert measured["mirrored"] == pytest.approx(measured["one_device"], rel=1e-5)
    assert measured["weight_change"] > 1e-4
    assert measured["weight_difference"] < 1e-5


@pytest.fixture
def restore_float32_policy():
    import pipeline  # noqa: F401
    import tensorflow as tf

    yield
    tf.keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_short_run_under_precision_policy_stays_finite(restore_float32_policy, policy):
    import tensorflow as tf

    import losses
    from pipeline.training.distribute import apply_precision_policy

    assert apply_precision_policy(policy).name == policy
    tf.keras.utils.set_random_seed(0)
    model = _tiny_unet_head(tf)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=losses.get("asymmetric_unified_focal"))
    x, y_true, _ = _segmentation_batch(seed=1)
    history = model.fit(x, y_true, batch_size=2, epochs=3, verbose=0)

    compute_dtype = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}
    assert model.layers[1].compute_dtype == compute_dtype[policy]
    assert model.output.dtype == tf.float32
    is_loss_scaled = isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    assert is_loss_scaled == (policy == "mixed_float16")
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_unknown_names_are_refused():
    from pipeline.training.distribute import apply_precision_policy, strategy_for

    with pytest.raises(ValueError, match="mirrored"):
        strategy_for("horovod")
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        apply_precision_policy("float8")


if __name__ == "__main__":
    print(json.dumps(_measure_on_two_cpu_replicas()))
