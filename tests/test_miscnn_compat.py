"""Each MIScnn fix in pipeline.miscnn_compat, tested where MIScnn would fail without it."""

import nibabel as nib
import numpy as np
import pytest

from pipeline.miscnn_compat import miscnn


def _sample(shape=(6, 10, 10), spacing=(3.0, 1.0, 1.0)):
    rng = np.random.default_rng(0)
    sample = miscnn.data_loading.sample.Sample(
        "case", rng.normal(size=shape + (1,)).astype(np.float32), 1, 3, {"spacing": np.array(spacing)}
    )
    sample.add_segmentation(rng.integers(0, 3, size=shape).astype(np.uint8))
    return sample


def test_resampling_runs_on_current_batchgenerators():
    """MIScnn passes cval_seg= / cval=, which batchgenerators >= 0.23 rejects with TypeError."""
    resampling = miscnn.processing.subfunctions.Resampling((6.0, 2.0, 2.0))
    sample = _sample()
    resampling.preprocessing(sample, training=True)
    assert sample.img_data.shape == (3, 5, 5, 1) and sample.seg_data.shape == (3, 5, 5, 1)
    assert set(np.unique(sample.seg_data)) <= {0, 1, 2}
    prediction_sample = _sample()
    resampling.preprocessing(prediction_sample, training=False)
    restored = resampling.postprocessing(prediction_sample, np.zeros((3, 5, 5), np.uint8))
    assert restored.shape == (6, 10, 10)


def test_instance_normalization_is_per_sample_and_channel():
    """tensorflow-addons has no TF 2.21 wheels; MIScnn's plain U-Net needs its InstanceNormalization."""
    import tensorflow_addons as tfa

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 4, 5, 6, 3)).astype(np.float32)
    layer = tfa.layers.InstanceNormalization(epsilon=1e-5)
    mean, var = x.mean(axis=(1, 2, 3), keepdims=True), x.var(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(layer(x).numpy(), (x - mean) / np.sqrt(var + 1e-5), atol=1e-4)
    assert [w.shape for w in layer.weights] == [(3,), (3,)]  # per-channel scale and offset, as in tfa


def _round_trip(model, tmp_path, x):
    import tensorflow as tf

    model.save(tmp_path / "model.keras")
    loaded = tf.keras.models.load_model(tmp_path / "model.keras", compile=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_plain_unet_builds_and_saves(tmp_path):
    from miscnn.neural_network.architecture.unet.plain import Architecture

    architecture = Architecture(pooling=(2, 2, 2))
    architecture.feature_map = [2, 4]
    model = architecture.create_model_3D((None, None, None, 1), n_labels=2)
    assert "GroupNormalization" in {type(layer).__name__ for layer in model.layers}
    _round_trip(model, tmp_path, np.random.default_rng(0).normal(size=(1, 8, 8, 8, 1)).astype(np.float32))


def test_nifti_interface_spacing_is_the_header_zooms(tmp_path):
    """MIScnn read the spacing off the affine's (anti-)diagonal: wrong for oblique and permuted affines."""
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    permutation = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]])
    interface = miscnn.data_loading.interfaces.NIFTI_interface(channels=1, classes=2)
    interface.initialize(str(tmp_path))
    for name, axes in (("oblique", rotation), ("permuted", permutation)):
        affine = np.eye(4)
        affine[:3, :3] = axes @ np.diag([2.0, 1.0, 3.0])
        (tmp_path / name).mkdir()
        nib.save(nib.Nifti1Image(np.zeros((3, 4, 5), np.int16), affine), tmp_path / name / "imaging.nii.gz")
        volume, extended = interface.load_image(name)
        np.testing.assert_allclose(extended["spacing"], [2.0, 1.0, 3.0], rtol=1e-6)
        np.testing.assert_allclose(extended["affine"], affine, atol=1e-6)
        assert volume.shape == (3, 4, 5)


@pytest.mark.parametrize("variant", ["attention", "attention_residual"])
def test_attention_unets_load_without_running_arbitrary_code(tmp_path, variant):
    """A Lambda around a Python lambda does not load in Keras' safe mode (the default)."""
    import importlib

    architecture = importlib.import_module(f"miscnn.neural_network.architecture.unet.{variant}").Architecture(
        n_filters=2, depth=1
    )
    model = architecture.create_model_2D((None, None, 1), n_labels=2)
    assert "Lambda" not in {type(layer).__name__ for layer in model.layers}
    _round_trip(model, tmp_path, np.random.default_rng(0).normal(size=(1, 8, 8, 1)).astype(np.float32))


def test_attention_residual_shortcut_skips_the_3d_block():
    """MIScnn's 3D block took the shortcut from its own last convolution (in: 4 channels, not the image's 1)."""
    from miscnn.neural_network.architecture.unet.attention_residual import Architecture

    model = Architecture(n_filters=4, depth=1).create_model_3D((None, None, None, 1), n_labels=2)
    first_shortcut = next(
        layer for layer in model.layers if type(layer).__name__ == "Conv3D" and layer.kernel_size == (1, 1, 1)
    )
    assert first_shortcut.kernel.shape == (1, 1, 1, 1, 4)
    assert first_shortcut.input is model.input
