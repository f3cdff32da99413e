"""Augmentation: the papers' settings, each transform on and off, label integrity, geometry, seeding."""

import random
import threading

import numpy as np
import pytest
from batchgenerators.augmentations.utils import (
    create_zero_centered_coordinate_mesh,
    elastic_deform_coordinates,
    rotate_coords_2d,
    rotate_coords_3d,
    scale_coords,
)
from pydantic import ValidationError
from scipy import ndimage

from pipeline.training.augmentation import (
    AugmentationSettings,
    PatchAugmenter,
    crop_with_padding,
    elastic_displacement,
    resample,
    rotation_and_scaling,
    transformed_grid,
)

TRANSFORMS = ("rotation", "scaling", "elastic", "mirroring", "brightness", "contrast", "gamma", "noise")
PATCH = (12, 16, 16)
START = (6, 8, 8)


def only(*names, **updates) -> AugmentationSettings:
    """Settings with every transform off except ``names``, which always apply."""
    settings = AugmentationSettings(**updates)
    for name in TRANSFORMS:
        section = getattr(settings, name)
        setattr(settings, name, section.model_copy(update={"probability": 1.0 if name in names else 0.0}))
    return settings


@pytest.fixture(scope="module")
def volume():
    """A smooth two-channel image with labels 0 and 2 only (a 1 would betray interpolation)."""
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.normal(size=(24, 32, 32, 2)), sigma=(2, 2, 2, 0)).astype(np.float32)
    image[..., 1] += 5.0
    label = np.where(image[..., 0] > 0.05, 2, 0).astype(np.uint8)
    return image, label


def extract(settings, volume, seed=0, start=START):
    image, label = volume
    return PatchAugmenter(settings).extract(image, label, start, PATCH, np.float32(-3.0), np.random.default_rng(seed))


def test_defaults_are_miscnn_data_augmentation_values():
    from pipeline.miscnn_compat import miscnn

    reference = miscnn.processing.data_augmentation.Data_Augmentation
    settings = AugmentationSettings()
    for name in ("rotation", "elastic", "brightness", "contrast", "gamma", "noise"):
        assert getattr(settings, name).probability == reference.config_p_per_sample
    assert np.allclose(
        np.radians(settings.rotation.degrees),
        [reference.config_rotations_angleX, reference.config_rotations_angleY, reference.config_rotations_angleZ],
    )
    assert settings.elastic.alpha == reference.config_elastic_deform_alpha
    assert settings.elastic.sigma == reference.config_elastic_deform_sigma
    assert settings.mirroring.axes == reference.config_mirror_axes
    assert settings.brightness.range == reference.config_brightness_range
    assert settings.contrast.range == reference.config_contrast_range
    assert settings.gamma.range == reference.config_gamma_range
    assert settings.noise.variance == reference.config_gaussian_noise_range
    assert settings.scaling.range == reference.config_scaling_range
    assert settings.scaling.probability == 0.0  # not among the papers' transforms
    assert settings.interpolation_order == 3


def test_settings_round_trip_through_yaml_values_and_reject_mistakes():
    settings = AugmentationSettings(
        rotation={"probability": 0.5, "degrees": [[-5, 5], [0, 0], [0, 0]]}, noise={"probability": 0.0}
    )
    assert AugmentationSettings.model_validate(settings.model_dump(mode="json")) == settings
    with pytest.raises(ValidationError, match="lower bound above upper bound"):
        AugmentationSettings(gamma={"range": [1.5, 0.7]})
    with pytest.raises(ValidationError):
        AugmentationSettings(elastic={"probabilty": 0.2})  # typo: unknown key
    with pytest.raises(ValidationError):
        AugmentationSettings(mirroring={"axes": [3]})
    with pytest.raises(ValidationError):
        AugmentationSettings(brightness={"probability": 1.5})


def test_crop_with_padding_reads_inside_and_fills_outside():
    array = np.arange(4 * 5 * 6 * 2, dtype=np.float32).reshape(4, 5, 6, 2)
    inside = crop_with_padding(array, (1, 1, 2), (2, 3, 4), 0.0)
    assert np.array_equal(inside, array[1:3, 1:4, 2:6])
    fill = np.array([-1.0, -2.0], dtype=np.float32)
    padded = crop_with_padding(array, (-2, 3, 4), (8, 4, 4), fill)
    assert padded.shape == (8, 4, 4, 2)
    assert np.array_equal(padded[2:6, :2, :2], array[:, 3:5, 4:6])
    assert np.all(padded[:2] == fill) and np.all(padded[6:] == fill) and np.all(padded[:, 2:] == fill)
    assert np.all(crop_with_padding(array, (10, 0, 0), (2, 2, 2), fill) == fill)  # wholly outside


def test_transformed_grid_matches_batchgenerators_rotation_and_scaling():
    angles, scale, centre = (0.2, -0.1, 0.25), 1.1, np.array([5.5, 7.0, 8.5])
    expected = scale_coords(rotate_coords_3d(create_zero_centered_coordinate_mesh(PATCH), *angles), scale)
    expected += centre.reshape(3, 1, 1, 1)
    grid = transformed_grid(PATCH, rotation_and_scaling(angles, scale), centre)
    assert grid.dtype == np.float32
    np.testing.assert_allclose(grid, expected, atol=1e-4)


def test_elastic_field_has_batchgenerators_statistics():
    """Same magnitude and same smoothness (differences over a lag of sigma) as the full-resolution field."""
    shape, alpha, sigma = (56, 56, 56), 300.0, 6.0
    interior = (slice(None),) + (slice(16, -16),) * 3  # away from the zero-padded border
    rng = np.random.default_rng(0)
    np.random.seed(0)
    mesh = create_zero_centered_coordinate_mesh(shape)
    ours = [elastic_displacement(shape, alpha, sigma, rng)[interior] for _ in range(8)]
    reference = [(elastic_deform_coordinates(mesh, alpha, sigma) - mesh)[interior] for _ in range(8)]

    def lagged_difference(fields):
        return np.concatenate([(field[:, 6:] - field[:, :-6]).ravel() for field in fields])

    assert np.std(ours) == pytest.approx(np.std(reference), rel=0.2)
    assert np.std(lagged_difference(ours)) == pytest.approx(np.std(lagged_difference(reference)), rel=0.2)


def test_elastic_field_linear_map_equals_mapping_the_field_afterwards():
    matrix = rotation_and_scaling((0.3, 0.1, -0.2), 0.9)
    mapped = elastic_displacement(PATCH, 500.0, 9.0, np.random.default_rng(1), matrix)
    plain = elastic_displacement(PATCH, 500.0, 9.0, np.random.default_rng(1))
    np.testing.assert_allclose(mapped, np.tensordot(matrix, plain, axes=1), rtol=1e-4, atol=1e-4)


def test_resample_reads_only_the_region_but_equals_whole_volume_interpolation(volume):
    image, label = volume
    fill = np.array([-3.0, -4.0], dtype=np.float32)
    centre = np.array([4.0, 10.0, 25.0])  # near the border: the grid leaves the volume
    grid = transformed_grid(PATCH, rotation_and_scaling((0.4, 0.2, -0.3), 1.2), centre)
    expected = np.stack(
        [ndimage.map_coordinates(image[..., c], grid, order=1, mode="grid-constant", cval=fill[c]) for c in range(2)],
        axis=-1,
    )
    expected_label = ndimage.map_coordinates(label, grid, order=0, mode="grid-constant", cval=0)
    patch, patch_label = resample(image, label, grid.copy(), fill, order=1)
    np.testing.assert_allclose(patch, expected, atol=1e-5)
    assert np.array_equal(patch_label, expected_label)
    assert np.any(patch[..., 1] == fill[1])  # the volume's edge is inside the patch


def test_cubic_resample_of_an_interior_patch_equals_whole_volume_interpolation(volume):
    image, label = volume
    grid = transformed_grid(PATCH, rotation_and_scaling((0.2, 0.0, 0.1), 1.0), np.array([11.5, 15.5, 15.5]))
    expected = ndimage.map_coordinates(image[..., 0], grid, order=3, mode="mirror")
    patch, _ = resample(image, label, grid.copy(), 0.0, order=3)
    np.testing.assert_allclose(patch[..., 0], expected, atol=2e-3)


def test_all_probabilities_zero_gives_the_plain_crop(volume):
    image, label = volume
    patch, patch_label = extract(only(), volume)
    assert np.array_equal(patch, crop_with_padding(image, START, PATCH, 0.0))
    assert np.array_equal(patch_label, crop_with_padding(label, START, PATCH, 0))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_each_transform_changes_the_patch_when_its_probability_is_one(name, volume):
    image, label = volume
    plain = crop_with_padding(image, START, PATCH, 0.0)
    changed = [not np.array_equal(extract(only(name), volume, seed)[0], plain) for seed in range(4)]
    if name == "mirroring":  # no axis flipped has probability 1/8 per patch
        assert any(changed)
    else:
        assert all(changed)


def test_mirroring_flips_image_and_label_together(volume):
    image, label = volume
    plain, plain_label = crop_with_padding(image, START, PATCH, 0.0), crop_with_padding(label, START, PATCH, 0)
    flips = [(), (0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    seen = set()
    for seed in range(16):
        patch, patch_label = extract(only("mirroring"), volume, seed)
        matching = [axes for axes in flips if np.array_equal(patch, np.flip(plain, axes))]
        assert len(matching) == 1
        assert np.array_equal(patch_label, np.flip(plain_label, matching[0]))
        seen.add(matching[0])
    assert len(seen) > 3


def test_intensity_transforms_leave_the_label_alone(volume):
    _, label = volume
    plain_label = crop_with_padding(label, START, PATCH, 0)
    for seed in range(3):
        _, patch_label = extract(only("brightness", "contrast", "gamma", "noise"), volume, seed)
        assert np.array_equal(patch_label, plain_label)


def test_spatial_transforms_keep_labels_integer_and_aligned_with_the_image(volume):
    image, label = volume
    # The image is a copy of the label; with nearest-neighbour interpolation for
    # both, any misalignment or interpolated label shows up as a mismatch.
    twin = (label.astype(np.float32) * 10.0)[..., None]
    settings = only("rotation", "scaling", "elastic", "mirroring", interpolation_order=0)
    for seed in range(4):
        patch, patch_label = PatchAugmenter(settings).extract(
            twin, label, START, PATCH, 0.0, np.random.default_rng(seed)
        )
        assert patch_label.dtype == np.uint8
        assert set(np.unique(patch_label)) <= {0, 2}
        assert np.array_equal(patch[..., 0], patch_label * 10.0)


def test_cubic_spatial_transforms_never_invent_labels(volume):
    for seed in range(4):
        _, patch_label = extract(only("rotation", "scaling", "elastic"), volume, seed)
        assert set(np.unique(patch_label)) <= {0, 2}
        assert np.any(patch_label == 2)


def test_same_seed_same_patch_different_seed_different_patch(volume):
    settings = only(*TRANSFORMS)
    first, first_label = extract(settings, volume, seed=7)
    again, again_label = extract(settings, volume, seed=7)
    other, _ = extract(settings, volume, seed=8)
    assert np.array_equal(first, again) and np.array_equal(first_label, again_label)
    assert not np.array_equal(first, other)


def test_results_do_not_depend_on_threads_and_global_random_state_is_restored(volume):
    settings = only(*TRANSFORMS)
    serial = [extract(settings, volume, seed)[0] for seed in range(6)]
    np.random.seed(123)
    random.seed(123)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    threaded = [None] * 6

    def work(seed):
        threaded[seed] = extract(settings, volume, seed)[0]

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, got in zip(serial, threaded):
        assert np.array_equal(expected, got)
    assert random.getstate() == python_state
    after = np.random.get_state()
    assert np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]


def test_2d_transformed_grid_matches_batchgenerators_2d_rotation_and_scaling():
    angle, scale, centre = 0.3, 0.9, np.array([7.5, 9.0])
    expected = scale_coords(rotate_coords_2d(create_zero_centered_coordinate_mesh((16, 20)), angle), scale)
    expected += centre.reshape(2, 1, 1)
    grid = transformed_grid((16, 20), rotation_and_scaling((angle,), scale), centre)
    np.testing.assert_allclose(grid, expected, atol=1e-4)


def test_2d_patches_every_transform_labels_aligned_mirroring_in_plane(volume):
    """2D images (H, W, M): each transform applies; spatial ones keep labels integer and aligned."""
    image, label = volume[0][5], volume[1][5]  # one slice: (32, 32, 2) and (32, 32)
    twin = (label.astype(np.float32) * 10.0)[..., None]
    spatial = only("rotation", "scaling", "elastic", "mirroring", interpolation_order=0)
    for seed in range(4):
        patch, patch_label = PatchAugmenter(spatial, spatial_dims=2).extract(
            twin, label, (4, 4), (16, 24), 0.0, np.random.default_rng(seed)
        )
        assert patch.shape == (16, 24, 1) and patch_label.shape == (16, 24)
        assert set(np.unique(patch_label)) <= {0, 2} and np.array_equal(patch[..., 0], patch_label * 10.0)
    plain = PatchAugmenter(only(), spatial_dims=2).extract(
        image, label, (4, 4), (16, 24), 0.0, np.random.default_rng(0)
    )[0]
    for name in TRANSFORMS:  # mirroring flips no axis of a patch with probability 1/4: any of 4 seeds
        changed = [
            not np.array_equal(
                plain,
                PatchAugmenter(only(name), spatial_dims=2).extract(
                    image, label, (4, 4), (16, 24), 0.0, np.random.default_rng(seed)
                )[0],
            )
            for seed in range(4)
        ]
        assert any(changed) if name == "mirroring" else all(changed), name
    flipped, flipped_label = PatchAugmenter(only("mirroring", mirroring={"axes": (1, 2)}), spatial_dims=2).extract(
        image, label, (4, 4), (16, 24), 0.0, np.random.default_rng(3)
    )
    crop = (slice(4, 20), slice(4, 28))
    candidates = [image[crop], image[crop][:, ::-1]]  # axis 2 does not exist in 2D: at most W is flipped
    assert any(np.array_equal(flipped, candidate) for candidate in candidates)
