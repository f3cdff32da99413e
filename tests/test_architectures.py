"""Every MIScnn U-Net variant in 2D and 3D: MIScnn's own layers, float32 softmax, a training step, save and load."""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from pipeline.config import UNET_ARCHITECTURES, ModelSection
from pipeline.training.model import ARCHITECTURES, build_unet, deep_supervision_weights, downsample_targets

TINY = {"n_filters": 2, "depth": 2}
TINY_MULTIRES = {"n_filters": 4, "depth": 2}
MIScnn_MODULES = {"multires": "multiRes"}


def tiny(architecture):
    return TINY_MULTIRES if architecture == "multires" else TINY


def miscnn_reference(architecture, spatial_dims):
    """MIScnn's own model of the variant, and the ``build_unet`` settings that should equal it."""
    module = importlib.import_module(
        f"miscnn.neural_network.architecture.unet.{MIScnn_MODULES.get(architecture, architecture)}"
    )
    if architecture == "multires":  # MIScnn fixes 32 filters and depth 4
        reference, settings = module.Architecture(), {"n_filters": 32, "depth": 4}
    elif architecture == "plain":  # MIScnn's filters are an attribute; pooling isotropic as in build_unet
        reference, settings = module.Architecture(pooling=(2, 2, 2)), TINY
        reference.feature_map = [2, 4]
    else:
        reference, settings = module.Architecture(**TINY), TINY
    create = reference.create_model_2D if spatial_dims == 2 else reference.create_model_3D
    return create((None,) * spatial_dims + (1,), n_labels=3), settings


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize(
    "architecture",
    [
        pytest.param(name, marks=pytest.mark.slow) if name == "multires" else name  # MIScnn's is full-size
        for name in UNET_ARCHITECTURES
    ],
)
def test_layers_are_miscnns_own(architecture, spatial_dims):
    """Up to the head (ours: 1x1 convolution + float32 softmax), the weights are MIScnn's model's, in order."""
    theirs, settings = miscnn_reference(architecture, spatial_dims)
    ours = build_unet(1, 3, spatial_dims=spatial_dims, architecture=architecture, **settings)
    body = [tuple(w.shape) for w in ours.weights[:-2]]
    assert body == [tuple(w.shape) for w in theirs.weights[: len(body)]]
    convolution = f"Conv{spatial_dims}D"
    their_head = [layer for layer in theirs.layers if type(layer).__name__ == convolution][-1]
    our_head = ours.get_layer("probabilities_logits")
    assert our_head.input.shape[-1] == their_head.input.shape[-1]
    assert our_head.kernel.shape == (1,) * spatial_dims + (our_head.input.shape[-1], 3)


def training_step(model, optimizer, x, targets, weights):
    """One Adam step on the deep-supervision loss, eagerly (tracing a Keras train function costs seconds)."""
    with tf.GradientTape() as tape:
        outputs = model(x, training=True)
        loss = tf.add_n(
            [
                weight * tf.reduce_mean(tf.keras.losses.categorical_crossentropy(target, output))
                for weight, target, output in zip(weights, targets, outputs)
            ]
        )
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
    return float(loss)


@pytest.mark.slow
@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("architecture", UNET_ARCHITECTURES)
def test_trains_a_step_with_deep_supervision_and_round_trips(tmp_path, architecture, spatial_dims):
    patch = (8,) * spatial_dims
    settings = dict(
        spatial_dims=spatial_dims,
        architecture=architecture,
        deep_supervision=True,
        deep_supervision_heads=1,
        **tiny(architecture),
    )
    tf.keras.utils.set_random_seed(1)
    model = build_unet(1, 3, **settings)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=(2, *patch))
    x = rng.normal(size=(2, *patch, 1)).astype(np.float32) + labels[..., None]
    targets = downsample_targets(np.eye(3, dtype=np.float32)[labels], 1)
    before = [w.numpy().copy() for w in model.trainable_weights]
    assert np.isfinite(training_step(model, tf.keras.optimizers.Adam(1e-2), x, targets, deep_supervision_weights(1)))
    assert all(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, model.trainable_weights)
        if w.name.split("/")[-1].startswith("kernel")
    )

    full, half = (output.numpy() for output in model(x, training=False))
    assert full.shape == (2, *patch, 3) and half.shape == (2, *(s // 2 for s in patch), 3)
    assert full.dtype == np.float32
    np.testing.assert_allclose(full.sum(-1), 1.0, atol=1e-5)

    model.save_weights(tmp_path / "weights.h5", save_format="h5")
    tf.keras.utils.set_random_seed(2)
    rebuilt = build_unet(1, 3, **settings)
    rebuilt.load_weights(tmp_path / "weights.h5")
    np.testing.assert_allclose(rebuilt(x, training=False)[0].numpy(), full, atol=1e-6)

    model.save(tmp_path / "model.keras")
    loaded = tf.keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(loaded(x, training=False)[0].numpy(), full, atol=1e-6)


@pytest.mark.parametrize("architecture", UNET_ARCHITECTURES)
def test_float32_softmax_under_mixed_precision(architecture):
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet(1, 2, architecture=architecture, **tiny(architecture))
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 8, 1)).astype(np.float32)
    probabilities = model(x, training=False)
    assert probabilities.dtype == tf.float32 and np.isfinite(probabilities.numpy()).all()
    assert model.get_layer("probabilities_logits").compute_dtype == "bfloat16"


def test_config_names_the_builders_and_defaults_to_standard():
    assert tuple(ARCHITECTURES) == UNET_ARCHITECTURES
    assert ModelSection().architecture == "standard"
    assert ModelSection(architecture="attention").architecture == "attention"


def test_training_builds_the_configured_architecture():
    from pipeline.training.train import build_model

    model = build_model(ModelSection(architecture="dense", n_filters=2, depth=2), 1, 2, spatial_dims=2)
    assert model.name == "unet2d_dense" and model.output_shape == (None, None, None, 2)


def test_config_refuses_unknown_architectures_and_too_few_multires_filters():
    with pytest.raises(ValueError, match="standard.*attention_residual"):
        ModelSection(architecture="vnet")
    with pytest.raises(ValueError, match="multires architecture needs n_filters >= 4"):
        ModelSection(architecture="multires", n_filters=2)
    with pytest.raises(ValueError, match="multires"):
        build_unet(1, 2, architecture="multires", n_filters=2)
