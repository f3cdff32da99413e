"""Each MIScnn fix in pipeline.miscnn_compat, tested where MIScnn would fail without it."""

import nibabel as nib
import numpy as np
import pytest

from pipeline.miscnn_compat import miscnn


def _sample(shape=(6, 10, 10), spacing=(3.0, 1.0, 1.0)):
    rng = np.random.default_rng(0)
    sample = miscnn.data_loading.sample.Sample("case", rng.normal(size=shape + (1,)).astype(np.float32), 1, 3,
                                               {"spacing": np.array(spacing)})
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


def test_resize_runs_on_current_batchgenerators():
    sample = _sample()
    miscnn.processing.subfunctions.Resize((4, 4, 4)).preprocessing(sample, training=True)
    assert sample.img_data.shape == (4, 4, 4, 1)


@pytest.mark.slow
def test_neural_network_uses_the_learning_rate_it_is_given():
    """MIScnn compiles Adam(lr=...), which Keras >= 2.11 ignores (leaving 1e-3)."""
    from miscnn.neural_network.architecture.unet.standard import Architecture

    interface = miscnn.data_loading.interfaces.nifti_io.NIFTI_interface(channels=1, classes=2)
    data_io = miscnn.Data_IO.__new__(miscnn.Data_IO)
    data_io.interface = interface
    preprocessor = miscnn.Preprocessor(data_io, batch_size=1, data_aug=None, analysis="patchwise-crop",
                                       patch_shape=(8, 8, 8))
    network = miscnn.Neural_Network(preprocessor, architecture=Architecture(n_filters=2, depth=2),
                                    learning_rate=2.5e-4)
    assert float(network.model.optimizer.learning_rate.numpy()) == pytest.approx(2.5e-4)


def test_preprocessors_do_not_share_state():
    """Class-attribute queue/cache and a default Data_Augmentation object were shared by all instances."""
    first = miscnn.Preprocessor(None, batch_size=1, analysis="fullimage")
    second = miscnn.Preprocessor(None, batch_size=1, analysis="fullimage")
    first.img_queue.append("patch of the first")
    first.cache["case"] = "sample of the first"
    first.data_augmentation.cropping = True          # what patch-wise cropping does to it
    assert second.img_queue == [] and second.cache == {}
    assert second.data_augmentation.cropping is False
    assert first.thread_lock is not second.thread_lock


def test_data_ios_do_not_share_their_batch_seed(tmp_path):
    """A class-level seed made two Data_IO objects write the same batch files."""
    interface = miscnn.data_loading.interfaces.nifti_io.NIFTI_interface()
    tmp_path.joinpath("data").mkdir()
    seeds = {miscnn.Data_IO(interface, str(tmp_path / "data")).seed for _ in range(5)}
    assert len(seeds) == 5


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
