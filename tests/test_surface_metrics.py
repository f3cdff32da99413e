"""HD95 and NSD against hand-computed shapes (shifted cubes and squares, anisotropic spacing) and brute force."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from pipeline.evaluation.surface import border, directed_distances, image_diagonal_mm, surface_scores

N = 10  # side of the cube / square in voxels


def shifted_boxes(ndim: int, k: int, margin: int = 4):
    """A box of side N and the same box shifted by k voxels along axis 0, well inside the image."""
    shape = (N + k + 2 * margin,) + (N + 2 * margin,) * (ndim - 1)
    reference = np.zeros(shape, bool)
    prediction = np.zeros(shape, bool)
    inner = (slice(margin, margin + N),) * (ndim - 1)
    reference[(slice(margin, margin + N), *inner)] = True
    prediction[(slice(margin + k, margin + k + N), *inner)] = True
    return reference, prediction


def hand_distances(ndim: int, k: int, s0: float) -> np.ndarray:
    """Distances from the shifted box's border voxels to the box's border, counted by hand.

    With spacing (s0, 3, 3) and k * s0 < 3 (the shift is the shortest way out):
    * the side walls (ring of a slice: 4(N-1) voxels in 3D, 2 in 2D) of the N - k
      slices inside the reference's extent lie on its border: distance 0;
    * the side walls of the slices j = 1 .. k-1 beyond it: j * s0 (to its end face);
    * the moved end face (N^(ndim-1) voxels): k * s0; the end face inside the
      reference, without its walls ((N-2)^(ndim-1) voxels): k * s0 (to its near face).
    """
    ring = 4 * (N - 1) if ndim == 3 else 2
    distances = [0.0] * (ring * (N - k))
    for j in range(1, k):
        distances += [j * s0] * ring
    distances += [k * s0] * (N ** (ndim - 1) + (N - 2) ** (ndim - 1))
    assert len(distances) == N**ndim - (N - 2) ** ndim  # every border voxel counted once
    return np.array(distances)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("k, s0", [(1, 1.0), (2, 0.5), (2, 1.4), (3, 0.8)])
def test_shifted_box_matches_hand_count(ndim, k, s0):
    reference, prediction = shifted_boxes(ndim, k)
    spacing = (s0,) + (3.0,) * (ndim - 1)
    expected = np.sort(hand_distances(ndim, k, s0))
    from_prediction, from_reference = directed_distances(reference, prediction, spacing)
    np.testing.assert_allclose(np.sort(from_prediction), expected)
    np.testing.assert_allclose(np.sort(from_reference), expected)  # the mirror image of the same configuration

    scores = surface_scores(reference, prediction, spacing, tolerance_mm=s0 * 0.99)
    assert scores.hd95 == pytest.approx(np.percentile(expected, 95))
    assert scores.hd95 == pytest.approx(k * s0)  # most border voxels sit on the moved faces
    ring = 4 * (N - 1) if ndim == 3 else 2
    total = N**ndim - (N - 2) ** ndim
    assert scores.nsd == pytest.approx(ring * (N - k) / total)  # only the shared walls are within tolerance
    assert surface_scores(reference, prediction, spacing, tolerance_mm=s0).nsd == pytest.approx(
        np.mean(expected <= s0)
    )  # the shared walls and the first slice beyond
    assert surface_scores(reference, prediction, spacing, tolerance_mm=k * s0).nsd == 1.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_an_outlier_voxel_moves_the_maximum_not_hd95(ndim):
    shape = (40,) * ndim
    reference = np.zeros(shape, bool)
    reference[(slice(5, 15),) * ndim] = True
    prediction = reference.copy()
    outlier = (10,) * (ndim - 1) + (34,)  # 20 voxels beyond the box's last voxel along the last axis
    prediction[outlier] = True
    spacing = (1.0,) * (ndim - 1) + (2.0,)
    from_prediction, _ = directed_distances(reference, prediction, spacing)
    assert from_prediction.max() == pytest.approx(20 * 2.0)  # the plain Hausdorff distance
    scores = surface_scores(reference, prediction, spacing, tolerance_mm=1.0)
    assert scores.hd95 == 0.0
    borders = 10**ndim - 8**ndim
    assert scores.nsd == pytest.approx(2 * borders / (2 * borders + 1))
    assert surface_scores(reference, prediction, spacing, tolerance_mm=40.0).nsd == 1.0


@pytest.mark.parametrize("ndim, spacing", [(2, (0.7, 1.9)), (3, (3.0, 0.8, 1.1))])
def test_distances_equal_brute_force_on_random_blobs(ndim, spacing):
    rng = np.random.default_rng(ndim)
    shape = (12,) * ndim
    reference = rng.random(shape) < 0.3
    prediction = rng.random(shape) < 0.3
    from_prediction, from_reference = directed_distances(reference, prediction, spacing)
    scale = np.asarray(spacing)
    border_reference = np.argwhere(border(reference)) * scale
    border_prediction = np.argwhere(border(prediction)) * scale
    pairwise = cdist(border_prediction, border_reference)
    np.testing.assert_allclose(from_prediction, pairwise.min(axis=1))  # np.argwhere and masking share C order
    np.testing.assert_allclose(from_reference, pairwise.min(axis=0))
    expected = max(np.percentile(pairwise.min(axis=1), 95), np.percentile(pairwise.min(axis=0), 95))
    assert surface_scores(reference, prediction, spacing, 1.0).hd95 == pytest.approx(expected)


def test_border_counts_the_image_edge_as_outside():
    mask = np.ones((4, 5, 6), bool)
    assert border(mask).sum() == 4 * 5 * 6 - 2 * 3 * 4
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True
    assert border(square).sum() == 8


def test_empty_mask_conventions():
    empty = np.zeros((10, 20, 30), bool)
    filled = empty.copy()
    filled[2:4, 2:4, 2:4] = True
    spacing = (2.0, 1.0, 0.5)
    assert surface_scores(empty, empty, spacing, 1.0) == surface_scores(empty, empty, spacing, 1.0)
    both = surface_scores(empty, empty, spacing, 1.0)
    assert (both.hd95, both.nsd) == (0.0, 1.0)
    diagonal = np.sqrt(20.0**2 + 20.0**2 + 15.0**2)
    assert image_diagonal_mm(empty.shape, spacing) == pytest.approx(diagonal)
    for reference, prediction in ((empty, filled), (filled, empty)):
        one = surface_scores(reference, prediction, spacing, 1.0)
        assert (one.hd95, one.nsd) == (pytest.approx(diagonal), 0.0)
    # BraTS's value for its 240 x 240 x 155 volumes of 1 mm voxels
    assert image_diagonal_mm((240, 240, 155), (1, 1, 1)) == pytest.approx(373.13, abs=0.01)


def test_identical_masks_score_perfectly():
    mask = np.zeros((8, 9, 10), bool)
    mask[2:6, 1:7, 3:9] = True
    scores = surface_scores(mask, mask, (1.0, 2.0, 3.0), 0.1)
    assert (scores.hd95, scores.nsd) == (0.0, 1.0)


def test_mismatched_grids_are_refused():
    with pytest.raises(ValueError, match="one grid"):
        surface_scores(np.zeros((3, 3), bool), np.zeros((3, 4), bool), (1, 1), 1.0)
    with pytest.raises(ValueError, match="one grid"):
        surface_scores(np.zeros((3, 3), bool), np.zeros((3, 3), bool), (1, 1, 1), 1.0)
