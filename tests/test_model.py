"""The U-Net and the training of one fold: learning rate, fold independence, resume, NaN stop."""

import json

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import ExperimentConfig
from pipeline.training.model import build_unet, deep_supervision_weights, downsample_targets, spatial_dims_of
from pipeline.training.train import TrainingDiverged, build_model, compile_model, train_fold

PATCH = (8, 16, 16)


def make_config(tmp_path, model=None, **training):
    return ExperimentConfig.model_validate(
        {
            "experiment": {"name": "unit", "seed": 3, "output_root": str(tmp_path)},
            "data": {"dataset": "kits19", "root": str(tmp_path)},
            "sampling": {"patch_shape": list(PATCH), "batch_size": 2},
            "model": {"n_filters": 2, "depth": 2, **(model or {})},
            "loss": {"name": "dice"},
            "training": {"epochs": 3, "learning_rate": 1e-3, **training},
        }
    )


class Blobs(tf.keras.utils.Sequence):
    """Bright cubes on noise; batch i of epoch e depends only on (seed, e, i)."""

    batch_size, patch_shape = 2, PATCH

    def __init__(self, batches, seed):
        super().__init__()
        self.batches, self.seed, self.epoch = batches, seed, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        label = np.zeros((2, *PATCH), int)
        for sample, corner in enumerate(rng.integers(0, 8, size=(2, 3))):
            label[sample, corner[0] // 2 : corner[0] // 2 + 4, corner[1] : corner[1] + 6, corner[2] : corner[2] + 6] = 1
        image = rng.normal(size=(2, *PATCH, 1)).astype(np.float32) + 2 * label[..., None]
        return image, np.eye(2, dtype=np.float32)[label]


def train(config, fold_dir, fold=0, callbacks=()):
    return train_fold(
        config.training,
        config.model,
        config.loss,
        config.experiment.seed + fold,
        fold_dir,
        Blobs(3, fold),
        Blobs(1, 100 + fold),
        1,
        2,
        callbacks=callbacks,
    )


@pytest.mark.parametrize("patch", [(8, 16, 16), (16, 24)], ids=["3d", "2d"])
def test_unet_shapes_and_float32_softmax_under_mixed_precision(patch):
    """bfloat16: TensorFlow's CPU kernels lack float16 3D pooling (mixed_float16 is for GPUs)."""
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(
            2,
            3,
            n_filters=2,
            depth=2,
            deep_supervision=True,
            deep_supervision_heads=1,
            spatial_dims=spatial_dims_of(patch),
        )
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    full, half = model(np.zeros((1, *patch, 2), np.float32))
    assert full.shape == (1, *patch, 3) and half.shape == (1, *(size // 2 for size in patch), 3)
    assert full.dtype == half.dtype == tf.float32
    np.testing.assert_allclose(full.numpy().sum(-1), 1.0, atol=1e-3)
    assert model.get_layer("probabilities_logits").compute_dtype == "bfloat16"


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_unet_is_miscnns_standard_architecture(spatial_dims):
    """Same layers and weight shapes as MIScnn's own ``create_model_2D``/``_3D`` (head included)."""
    from miscnn.neural_network.architecture.unet.standard import Architecture

    ours = build_unet(1, 3, n_filters=4, depth=3, spatial_dims=spatial_dims)
    architecture = Architecture(n_filters=4, depth=3)
    create = architecture.create_model_2D if spatial_dims == 2 else architecture.create_model_3D
    theirs = create((None,) * spatial_dims + (1,), n_labels=3)
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    kinds = [type(layer).__name__ for layer in ours.layers]
    assert kinds.count(f"Conv{spatial_dims}DTranspose") == 3 and f"MaxPooling{spatial_dims}D" in kinds


@pytest.mark.parametrize("patch", [(8, 16, 16), (16, 24)], ids=["3d", "2d"])
def test_deep_supervision_trains_a_step(patch):
    """Each head gets its downsampled target; a few steps lower the weighted loss on a fixed batch."""
    tf.keras.utils.set_random_seed(0)
    model = build_unet(
        1, 2, n_filters=4, depth=2, deep_supervision=True, deep_supervision_heads=1, spatial_dims=len(patch)
    )
    model.compile(
        tf.keras.optimizers.Adam(1e-2), loss="categorical_crossentropy", loss_weights=deep_supervision_weights(1)
    )
    labels = np.zeros((2, *patch), int)
    labels[(slice(None),) + (slice(2, 6),) * len(patch)] = 1
    x = np.random.default_rng(0).normal(size=(2, *patch, 1)).astype(np.float32) + labels[..., None]
    y = downsample_targets(np.eye(2, dtype=np.float32)[labels], 1)
    losses = [model.train_on_batch(x, y)[0] for _ in range(4)]
    assert losses[-1] < losses[0]


def test_spatial_dims_follow_the_patch_shape():
    assert spatial_dims_of((64, 64)) == 2 and spatial_dims_of((16, 64, 64)) == 3
    with pytest.raises(ValueError, match="2 or 3"):
        spatial_dims_of((64,))
    with pytest.raises(ValueError, match="2 or 3"):
        build_unet(1, 2, spatial_dims=4)


@pytest.mark.parametrize("shape", [(2, 8, 8, 8), (2, 8, 8)], ids=["3d", "2d"])
def test_deep_supervision_targets_and_weights(shape):
    assert deep_supervision_weights(2) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    labels = np.random.default_rng(0).integers(0, 3, size=shape)
    targets = downsample_targets(np.eye(3)[labels], 2)
    assert [t.shape for t in targets] == [(*shape[:1], *(s // 2**k for s in shape[1:]), 3) for k in range(3)]
    every_fourth = (slice(None),) + (slice(None, None, 4),) * (len(shape) - 1)
    np.testing.assert_array_equal(targets[2].argmax(-1), labels[every_fourth])
    assert all((t.sum(-1) == 1).all() for t in targets)
    as_tensors = downsample_targets(tf.constant(np.eye(3)[labels]), 2)
    for tensor, array in zip(as_tensors, targets):
        np.testing.assert_array_equal(tensor.numpy(), array)


@pytest.mark.parametrize("learning_rate", [1e-2, 1e-4])
def test_adam_uses_the_configured_learning_rate(tmp_path, learning_rate):
    """Adam's first step moves every weight with a non-zero gradient by ~learning_rate."""
    tf.keras.utils.set_random_seed(0)
    config = make_config(tmp_path, learning_rate=learning_rate, min_learning_rate=1e-5)
    model = compile_model(config.model, config.loss, config.training.learning_rate, 1, 2)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(learning_rate)
    before = [w.numpy() for w in model.trainable_weights]
    x, y = Blobs(1, 0)[0]
    model.train_on_batch(x, y)
    steps = np.concatenate([np.abs(w.numpy() - b).ravel() for w, b in zip(model.trainable_weights, before)])
    assert np.median(steps) == pytest.approx(learning_rate, rel=0.05)


@pytest.mark.slow
def test_fold_training_logs_checkpoints_and_keeps_the_best_model(tmp_path):
    result = train(make_config(tmp_path), tmp_path / "fold_0")
    log = (tmp_path / "fold_0" / "log.csv").read_text().splitlines()
    assert log[0] == "epoch,loss,val_loss,lr" and len(log) == 4
    rows = [dict(zip(log[0].split(","), map(float, line.split(",")))) for line in log[1:]]
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    assert rows[0]["lr"] == pytest.approx(1e-3)
    assert result.best_val_loss == pytest.approx(min(row["val_loss"] for row in rows))
    assert result.epochs == 3 and result.resumed_after_epoch == 0
    state = json.loads((tmp_path / "fold_0" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3 and state["checkpoint"] == "epoch_0003"
    assert sorted(p.name for p in (tmp_path / "fold_0" / "checkpoints").iterdir()) == [
        "best_model.h5",
        "epoch_0003",
        "state.json",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["plain", "attention_residual"])
def test_other_architectures_train_a_fold_with_deep_supervision(tmp_path, architecture):
    """Instance normalisation and the attention gates' repeat layer go through fit, checkpoints and the h5 best."""
    config = make_config(
        tmp_path, epochs=1, model={"architecture": architecture, "deep_supervision": True, "deep_supervision_heads": 1}
    )
    result = train(config, tmp_path / "fold_0")
    assert result.epochs == 1 and np.isfinite(result.best_val_loss)
    assert result.model.name == f"unet3d_{architecture}"
    rebuilt = build_model(config.model, 1, 2)
    rebuilt.load_weights(result.best_weights)
    x = Blobs(1, 0)[0][0]
    np.testing.assert_allclose(rebuilt(x)[0].numpy(), result.model(x)[0].numpy(), atol=1e-6)


class Interrupt(Exception):
    pass


class InterruptAtEpoch(tf.keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt


class RecordStart(tf.keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = [w.copy() for w in self.model.get_weights()]
        self.iterations = int(self.model.optimizer.iterations.numpy())
        self.learning_rate = float(self.model.optimizer.learning_rate.numpy())


@pytest.mark.slow
def test_resumed_training_equals_uninterrupted_training(tmp_path):
    config = make_config(tmp_path, plateau_patience=1, plateau_factor=0.5, min_learning_rate=2e-4)
    straight = train(config, tmp_path / "straight")
    with pytest.raises(Interrupt):
        train(config, tmp_path / "resumed", callbacks=[InterruptAtEpoch(2)])
    assert json.loads((tmp_path / "resumed" / "checkpoints" / "state.json").read_text())["epoch"] == 2
    resumed = train(config, tmp_path / "resumed")
    assert resumed.resumed_after_epoch == 2
    assert (tmp_path / "resumed" / "log.csv").read_text() == (tmp_path / "straight" / "log.csv").read_text()
    weights = []
    for result in (straight, resumed):
        model = build_model(config.model, 1, 2)
        model.load_weights(result.best_weights)
        weights.append(model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_every_fold_starts_from_a_fresh_seeded_model_and_optimizer(tmp_path):
    config = make_config(tmp_path, epochs=1)
    train(config, tmp_path / "fold_0", fold=0)
    start = RecordStart()
    train(config, tmp_path / "fold_1", fold=1, callbacks=[start])
    tf.keras.utils.set_random_seed(config.experiment.seed + 1)
    fresh = build_model(config.model, 1, 2).get_weights()
    for recorded, expected in zip(start.weights, fresh):
        np.testing.assert_array_equal(recorded, expected)
    assert start.iterations == 0 and start.learning_rate == pytest.approx(1e-3)


class DivergeAtEpoch(tf.keras.callbacks.Callback):
    """Simulates divergence: the output layer's bias becomes NaN."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            bias = self.model.get_layer("probabilities_logits").bias
            bias.assign(np.full(bias.shape, np.nan, np.float32))


@pytest.mark.slow
def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"fold 0: epoch 2: loss is nan; .*epoch_0001 \(epoch 1\)"):
        train(make_config(tmp_path), tmp_path / "fold_0", callbacks=[DivergeAtEpoch(1)])
    state = json.loads((tmp_path / "fold_0" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and np.isfinite(state["best_val_loss"])
    assert len((tmp_path / "fold_0" / "log.csv").read_text().splitlines()) == 2
