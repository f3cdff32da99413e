"""The contract every registered loss keeps (issue 2), checked for each name in ``losses.names()``.

Losses registered later are covered automatically: the tests are parametrized
over the registry when pytest collects them.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

import losses

NAMES = losses.names()
SHAPES = {"2d": (2, 6, 7), "3d": (2, 4, 5, 6)}


def one_hot(labels, num_classes):
    return np.eye(num_classes, dtype=np.float32)[labels]


def random_probabilities(spatial_shape, num_classes, rng):
    logits = rng.normal(scale=2.0, size=spatial_shape + (num_classes,))
    return (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)


def random_case(spatial_shape, num_classes, seed=0):
    """Imbalanced one-hot labels (every class present) and softmax probabilities."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(num_classes, size=spatial_shape, p=[0.7] + [0.3 / (num_classes - 1)] * (num_classes - 1))
    labels.reshape(-1)[:num_classes] = np.arange(num_classes)
    return one_hot(labels, num_classes), random_probabilities(spatial_shape, num_classes, rng)


def value_and_gradient(loss, y, p):
    prediction = tf.Variable(p)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(y), prediction)
    return value, tape.gradient(value, prediction)


# --------------------------------------------------------------------------- the API


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("dims", sorted(SHAPES))
@pytest.mark.parametrize("name", NAMES)
def test_defaults_work_in_2d_and_3d_for_any_class_count(name, dims, num_classes):
    y, p = random_case(SHAPES[dims], num_classes)
    loss = losses.get(name)
    assert isinstance(loss, tf.keras.losses.Loss)
    per_sample = loss.call(tf.constant(y), tf.constant(p))
    assert per_sample.shape == (y.shape[0],) and per_sample.dtype == tf.float32
    assert np.all(np.isfinite(per_sample.numpy()))
    assert float(loss(y, p)) == pytest.approx(float(tf.reduce_mean(per_sample)), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_targets_of_unknown_static_shape_take_the_prediction_shape(name):
    """Keras feeding a generator traces ``y_true`` as ``(None,)*5``; the loss must still trace."""
    y, p = random_case(SHAPES["3d"], 3)
    loss = losses.get(name)
    traced = tf.function(
        loss, input_signature=[tf.TensorSpec([None] * 5, tf.float32), tf.TensorSpec((None,) + p.shape[1:], tf.float32)]
    )
    np.testing.assert_allclose(traced(y, p).numpy(), loss(y, p).numpy(), rtol=1e-5)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="choose one of") as error:
        losses.get("no_such_loss")
    assert all(name in str(error.value) for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_parameter_lists_the_valid_ones(name):
    with pytest.raises(ValueError, match="no_such_parameter") as error:
        losses.get(name, no_such_parameter=1)
    assert all(parameter in str(error.value) for parameter in losses.parameters(name))


def test_custom_objects_name_every_loss_class_once():
    """``load_model`` finds losses by class name: two classes with one name would load the wrong loss."""
    classes = losses.custom_objects()
    assert len(classes) == len(NAMES)
    assert {type(losses.get(name)) for name in NAMES} == set(classes.values())


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_gives_the_same_loss(name):
    y, p = random_case(SHAPES["3d"], 3, seed=1)
    loss = losses.get(name)
    config = loss.get_config()
    assert json.loads(json.dumps(config)) == config  # storable in a .keras file / YAML
    assert set(losses.parameters(name)) <= set(config)
    rebuilt = type(loss).from_config(config)
    assert rebuilt.get_config() == config
    assert float(rebuilt(y, p)) == pytest.approx(float(loss(y, p)), rel=1e-6)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("suffix", [".keras", ".h5"])
@pytest.mark.parametrize("name", NAMES)
def test_compiled_model_saves_and_loads(name, suffix, tmp_path):
    y, p = random_case((2, 4, 4, 4), 3, seed=2)
    model = tf.keras.Sequential([tf.keras.Input((4, 4, 4, 1)), tf.keras.layers.Conv3D(3, 1, activation="softmax")])
    model.compile(optimizer="adam", loss=losses.get(name))
    x = p[..., :1]
    path = tmp_path / f"model{suffix}"
    model.save(path)
    loaded = tf.keras.models.load_model(path, custom_objects=losses.custom_objects())
    assert type(loaded.loss) is type(model.loss)
    assert loaded.loss.get_config() == model.loss.get_config()
    prediction = model(x)
    assert float(loaded.loss(y, prediction)) == pytest.approx(float(model.loss(y, prediction)), rel=1e-6)
    np.testing.assert_allclose(loaded(x), prediction, rtol=1e-6)


# --------------------------------------------------------------------------- numerics


def gradient_cases():
    """(id, y_true, y_pred) with exact 0/1 probabilities and an absent class, 3D, three classes."""
    rng = np.random.default_rng(4)
    labels = rng.choice(3, size=(2, 4, 5, 6), p=[0.8, 0.15, 0.05])
    labels.reshape(-1)[:3] = np.arange(3)
    y = one_hot(labels, 3)
    without_tumour = one_hot(np.minimum(labels, 1), 3)  # class 2 absent from the truth
    return [
        ("perfect", y, y.copy()),
        ("all_wrong", y, one_hot((labels + 1) % 3, 3)),
        ("absent_class", without_tumour, random_probabilities(labels.shape, 3, rng)),
        ("absent_class_perfect", without_tumour, without_tumour.copy()),
    ]


@pytest.mark.parametrize("case", gradient_cases(), ids=lambda case: case[0])
@pytest.mark.parametrize("name", NAMES)
def test_values_and_gradients_are_finite(name, case):
    _, y, p = case
    value, gradient = value_and_gradient(losses.get(name), y, p)
    assert np.isfinite(float(value))
    assert gradient is not None and np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("name", NAMES)
def test_float16_predictions_compute_in_float32_without_nan(name):
    """Under ``mixed_float16`` a head may hand the loss float16 probabilities, exact 0 and 1 included."""
    y, p = random_case(SHAPES["3d"], 3, seed=5)
    p[0] = y[0]  # one sample predicted perfectly
    half = tf.cast(p, tf.float16)
    loss = losses.get(name)
    value = loss(tf.constant(y), half)
    assert value.dtype == tf.float32 and np.isfinite(float(value))
    same_values_in_float32 = float(loss(y, tf.cast(half, tf.float32)))
    assert float(value) == pytest.approx(same_values_in_float32, rel=1e-5, abs=1e-6)
    source = tf.Variable(p)
    with tf.GradientTape() as tape:
        half_value = loss(tf.constant(y), tf.cast(source, tf.float16))
    assert np.all(np.isfinite(tape.gradient(half_value, source).numpy()))


# --------------------------------------------------------------------------- training


def toy_imbalanced_volume():
    """Two 8^3 volumes, three classes: a 4^3 'organ' with a 2^3 'tumour' inside, noisy intensities."""
    rng = np.random.default_rng(0)
    labels = np.zeros((2, 8, 8, 8), np.int64)
    labels[0, 2:6, 2:6, 2:6] = 1
    labels[0, 3:5, 3:5, 3:5] = 2
    labels[1, 1:5, 3:7, 2:6] = 1
    labels[1, 1:3, 4:6, 3:5] = 2
    intensity = np.array([0.0, 1.0, 2.0])[labels] + rng.normal(scale=0.2, size=labels.shape)
    return intensity[..., None].astype(np.float32), one_hot(labels, 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_short_training_lowers_the_loss(name):
    tf.keras.utils.set_random_seed(0)
    x, y = toy_imbalanced_volume()
    model = tf.keras.Sequential(
        [
            tf.keras.Input(x.shape[1:]),
            tf.keras.layers.Conv3D(4, 3, padding="same", activation="relu"),
            tf.keras.layers.Conv3D(3, 1, activation="softmax"),
        ]
    )
    loss = losses.get(name)
    optimizer = tf.keras.optimizers.Adam(0.02)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            value = loss(y, model(x))
        optimizer.apply_gradients(zip(tape.gradient(value, model.trainable_variables), model.trainable_variables))

    before = float(loss(y, model(x)))
    for _ in range(25):
        train_step()
    after = float(loss(y, model(x)))
    assert np.isfinite(after)
    assert after < before - 0.05 * abs(before), f"{name}: {before:.4f} -> {after:.4f}"
