"""Sliding-window prediction: window placement, Gaussian weighting, exact reconstruction."""

import numpy as np
import pytest

from pipeline.inference.sliding_window import (
    gaussian_importance_map,
    sliding_window_predict,
    window_starts,
)


def voxelwise_softmax(batch):
    """A known per-voxel "network": softmax over (x, -x, x**2) of the single channel."""
    x = batch[..., 0]
    scores = np.stack([x, -x, x**2], axis=-1)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (scores / scores.sum(axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("size, patch, overlap", [(10, 4, 2), (11, 4, 1), (4, 4, 2), (100, 80, 40), (246, 160, 80)])
def test_windows_cover_the_axis_with_at_least_the_overlap(size, patch, overlap):
    starts = window_starts(size, patch, overlap)
    assert starts[0] == 0 and starts[-1] == size - patch
    assert all(b - a <= patch - overlap for a, b in zip(starts, starts[1:]))
    assert starts == sorted(set(starts))


def test_gaussian_map_peaks_at_the_centre_and_is_positive():
    weights = gaussian_importance_map((8, 16, 16), 0.125)
    assert weights.shape == (8, 16, 16) and weights.dtype == np.float32
    assert weights[4, 8, 8] == weights.max() == 1.0
    assert weights.min() > 0
    assert weights[0, 0, 0] < weights[2, 4, 4] < weights[4, 8, 8]


@pytest.mark.parametrize("shape", [(13, 21, 18), (5, 7, 30)])
def test_a_voxelwise_network_is_reconstructed_exactly(shape):
    """Every window predicts the same value for a voxel, so the weighted mean must return it."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(*shape, 1)).astype(np.float32)
    probabilities = sliding_window_predict(voxelwise_softmax, image, (8, 8, 8), (4, 3, 2), num_classes=3, batch_size=3)
    assert probabilities.shape == (*shape, 3)
    np.testing.assert_allclose(probabilities, voxelwise_softmax(image[None])[0], rtol=1e-5, atol=1e-6)


def test_window_predictions_are_weighted_towards_their_centres():
    """A network whose output depends on the window: the centre-weighted mean favours central windows."""
    calls = []

    def window_index(batch):
        calls.append(len(batch))
        out = np.zeros((*batch.shape[:-1], 2), np.float32)
        out[..., 0] = batch[:, :1, :1, :1, 0]  # constant per window: its first voxel's value
        out[..., 1] = 1 - out[..., 0]
        return out

    image = np.zeros((8, 4, 4, 1), np.float32)
    image[4:, ..., 0] = 1.0  # window [0, 4) sees 0, window [4, 8) sees 1, window [2, 6) sees 0
    probabilities = sliding_window_predict(window_index, image, (4, 4, 4), (2, 0, 0), num_classes=2, batch_size=2)
    assert calls == [2, 2]  # 3 windows in batches of 2, the last padded
    weights = gaussian_importance_map((4, 4, 4), 0.125)[:, 0, 0]
    # voxel 5 lies in windows [2, 6) (offset 3, value 0) and [4, 8) (offset 1, value 1)
    expected = weights[1] / (weights[1] + weights[3])
    assert probabilities[5, 0, 0, 0] == pytest.approx(expected, rel=1e-5)


def test_small_volume_is_padded_with_the_given_value_and_cropped_back():
    seen = []

    def record(batch):
        seen.append(batch.copy())
        return voxelwise_softmax(batch)

    image = np.ones((3, 5, 8, 2), np.float32)
    probabilities = sliding_window_predict(
        record, image, (4, 8, 8), (2, 4, 4), num_classes=3, batch_size=1, pad_value=np.array([-7.0, -9.0], np.float32)
    )
    assert probabilities.shape == (3, 5, 8, 3)
    window = seen[0][0]
    assert window.shape == (4, 8, 8, 2)
    assert sorted(np.unique(window[..., 0])) == [-7.0, 1.0] and sorted(np.unique(window[..., 1])) == [-9.0, 1.0]
    assert (window[..., 0] == 1.0).sum() == 3 * 5 * 8  # the image itself, whole


def test_2d_images_are_reconstructed_exactly_and_small_ones_predicted_whole():
    """(H, W, M) images with (h, w) windows: the same stitching as in 3D, no third axis anywhere."""
    rng = np.random.default_rng(2)
    image = rng.normal(size=(37, 50, 3)).astype(np.float32)
    probabilities = sliding_window_predict(voxelwise_softmax, image, (16, 24), (8, 12), num_classes=3, batch_size=2)
    assert probabilities.shape == (37, 50, 3)
    np.testing.assert_allclose(probabilities, voxelwise_softmax(image[None])[0], rtol=1e-5, atol=1e-6)
    calls = []

    def whole(batch):
        calls.append(batch.shape)
        return voxelwise_softmax(batch)

    small = image[:10, :20]
    whole_image = sliding_window_predict(whole, small, (16, 24), (0, 0), num_classes=3, batch_size=1)
    assert calls == [(1, 16, 24, 3)] and whole_image.shape == (10, 20, 3)
    np.testing.assert_allclose(whole_image, voxelwise_softmax(small[None])[0], rtol=1e-5, atol=1e-6)
