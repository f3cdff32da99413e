"""PatchBatches: shapes, padding, foreground sampling, seeding and resuming, bad input, Keras."""

from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.errors import ConfigError, DataError
from pipeline.training.augmentation import AugmentationSettings
from pipeline.training.sampling import PatchBatches

PATCH = (8, 12, 12)


def make_case(shape=(16, 24, 24), channels=1, seed=0, case_id="case_00000"):
    """A PreprocessedCase look-alike: a small kidney (1), a tiny tumour (2)."""
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, dtype=np.uint8)
    label[tuple(slice(size // 8, size // 8 + size // 4) for size in shape)] = 1
    label[tuple(size * 3 // 4 for size in shape)] = 2
    image = rng.normal(size=shape + (channels,)).astype(np.float32) + label[..., None]
    return SimpleNamespace(case_id=case_id, image=image, label=label)


def memmapped(case, folder):
    """The case as the preprocessing cache serves it: read-only memmaps of .npy files."""
    np.save(folder / f"{case.case_id}_image.npy", case.image)
    np.save(folder / f"{case.case_id}_label.npy", case.label)
    return SimpleNamespace(
        case_id=case.case_id,
        image=np.load(folder / f"{case.case_id}_image.npy", mmap_mode="r"),
        label=np.load(folder / f"{case.case_id}_label.npy", mmap_mode="r"),
    )


@pytest.fixture
def batches_of():
    """Build PatchBatches and close them after the test."""
    built = []

    def build(cases, **options):
        settings = dict(patch_shape=PATCH, batch_size=2, num_classes=3, batches_per_epoch=4, seed=0)
        settings.update(options)
        sequence = PatchBatches(cases, **settings)
        built.append(sequence)
        return sequence

    yield build
    for sequence in built:
        sequence.close()


def all_patches(sequence):
    """Every patch of the current epoch: x (N, *patch, M), y (N, *patch, C)."""
    xs, ys = zip(*(sequence[index] for index in range(len(sequence))))
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_have_the_contract_shapes_dtypes_and_valid_one_hot(batches_of):
    sequence = batches_of(
        [make_case(channels=2), make_case(channels=2, seed=1, case_id="case_00001")],
        augmentation=AugmentationSettings(),
    )
    assert len(sequence) == 4
    x, y = sequence[0]
    assert x.shape == (2, *PATCH, 2) and x.dtype == np.float32
    assert y.shape == (2, *PATCH, 3) and y.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert np.all(y.sum(axis=-1) == 1.0)
    with pytest.raises(IndexError):
        sequence[4]


def test_patches_are_crops_of_the_volume(batches_of):
    case = make_case()
    x, y = all_patches(batches_of([case], foreground_fraction=0.5))
    windows = np.lib.stride_tricks.sliding_window_view(case.label, PATCH)
    for image_patch, one_hot in zip(x, y):
        label_patch = one_hot.argmax(axis=-1)
        matches = np.argwhere(np.all(windows == label_patch, axis=(3, 4, 5)))
        assert any(
            np.array_equal(case.image[z : z + PATCH[0], h : h + PATCH[1], w : w + PATCH[2]], image_patch)
            for z, h, w in matches
        )


def test_a_volume_smaller_than_the_patch_is_padded_with_its_minimum_and_background(batches_of):
    small = make_case(shape=(5, 6, 7), channels=2)
    small.label[:] = 0
    small.label[1:3, 1:3, 1:3] = 2
    x, y = all_patches(batches_of([small], foreground_fraction=0.5))
    minimum = small.image.min(axis=(0, 1, 2))
    for image_patch, one_hot in zip(x, y):
        assert one_hot[..., 2].sum() == 8  # the whole volume is inside every patch
        inside = np.zeros(PATCH, dtype=bool)
        inside[tuple(slice(s, s + n) for s, n in zip(np.argwhere(one_hot[..., 2])[0] - 1, small.label.shape))] = True
        assert np.all(image_patch[~inside] == minimum)
        assert np.all(one_hot[~inside][:, 0] == 1.0)
        assert np.array_equal(image_patch[inside].reshape(*small.label.shape, 2), small.image)


def test_a_numeric_pad_value_is_used_outside_the_volume(batches_of):
    thin = make_case(shape=(4, 12, 12))  # half as deep as the patch
    x, _ = batches_of([thin], pad_value=0.0)[0]
    padded_slices = np.all(x == 0.0, axis=(2, 3, 4)).sum(axis=1)
    assert np.all(padded_slices == 4)


def test_foreground_fraction_one_puts_foreground_in_every_patch(batches_of):
    cases = [make_case(shape=(24, 40, 40), seed=seed, case_id=f"case_{seed}") for seed in range(3)]
    _, y = all_patches(batches_of(cases, foreground_fraction=1.0, batches_per_epoch=30))
    assert np.all(y[..., 1:].sum(axis=(1, 2, 3, 4)) > 0)


def test_foreground_fraction_zero_samples_uniformly(batches_of):
    case = make_case(shape=(20, 30, 30))
    case.label[:] = 0
    case.label[:6, :8, :8] = 1  # a corner block: foreground-centred patches would see far more of it
    sequence = batches_of([case], num_classes=2, batch_size=4, batches_per_epoch=50, foreground_fraction=0.0)
    _, y = all_patches(sequence)
    shares = y[..., 1].mean(axis=(1, 2, 3))
    every_window = np.lib.stride_tricks.sliding_window_view(case.label, PATCH).mean(axis=(3, 4, 5))
    tolerance = 4 * every_window.std() / np.sqrt(len(shares))
    assert abs(shares.mean() - every_window.mean()) < tolerance


def test_foreground_fraction_is_honoured_statistically(batches_of):
    case = make_case(shape=(40, 48, 48))
    case.label[:] = 0
    case.label[30, 40, 40] = 1  # one voxel: a uniform patch covers it with probability < 3 %
    _, y = all_patches(batches_of([case], num_classes=2, foreground_fraction=0.5, batches_per_epoch=100))
    share = np.mean(y[..., 1].sum(axis=(1, 2, 3)) > 0)
    assert 0.4 < share < 0.62


def test_every_foreground_class_gets_its_share_however_rare(batches_of):
    case = make_case(shape=(24, 40, 40))  # kidney: 600 voxels, tumour: 1 voxel, far apart
    _, y = all_patches(batches_of([case], foreground_fraction=1.0, batches_per_epoch=60))
    with_tumour = np.mean(y[..., 2].sum(axis=(1, 2, 3)) > 0)
    with_kidney = np.mean(y[..., 1].sum(axis=(1, 2, 3)) > 0)
    assert 0.35 < with_tumour < 0.65
    assert with_kidney > 0.35


def test_same_seed_same_batches_whatever_the_threads_and_access_order(batches_of):
    cases = [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(3)]
    augmentation = AugmentationSettings(elastic={"probability": 0.5}, rotation={"probability": 0.5})
    one_thread = batches_of(cases, augmentation=augmentation, workers=1, prefetch=0)
    many_threads = batches_of(cases, augmentation=augmentation, workers=3, prefetch=3)
    reference = [one_thread[index] for index in range(4)]
    for index in (3, 0, 2, 1):  # out of order: prefetched batches must not be mixed up
        x, y = many_threads[index]
        assert np.array_equal(x, reference[index][0]) and np.array_equal(y, reference[index][1])
    other_seed = batches_of(cases, augmentation=augmentation, seed=1)
    assert not np.array_equal(other_seed[0][0], reference[0][0])


def test_epochs_differ_and_set_epoch_resumes_with_the_same_batches(batches_of):
    cases = [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(2)]
    sequence = batches_of(cases, augmentation=AugmentationSettings())
    epoch_zero = all_patches(sequence)
    sequence.on_epoch_end()
    assert sequence.epoch == 1
    epoch_one = all_patches(sequence)
    assert not np.array_equal(epoch_zero[0], epoch_one[0])
    resumed = batches_of(cases, augmentation=AugmentationSettings())
    resumed.set_epoch(1)
    assert all(np.array_equal(a, b) for a, b in zip(all_patches(resumed), epoch_one))


def test_fixed_patches_are_the_same_every_epoch_and_cover_every_case(batches_of):
    cases = [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(3)]
    for case, value in zip(cases, (10.0, 20.0, 30.0)):
        case.image += value
    sequence = batches_of(cases, fixed_patches=True, batches_per_epoch=3)
    first = all_patches(sequence)
    sequence.on_epoch_end()
    assert all(np.array_equal(a, b) for a, b in zip(first, all_patches(sequence)))
    case_of_patch = np.round(first[0].mean(axis=(1, 2, 3, 4)), -1)
    assert sorted(case_of_patch) == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]


def test_read_only_memmapped_cases_work_with_augmentation(tmp_path, batches_of):
    cases = [memmapped(make_case(seed=seed, case_id=f"case_{seed}"), tmp_path) for seed in range(2)]
    assert not cases[0].image.flags.writeable
    in_memory = [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(2)]
    settings = AugmentationSettings(elastic={"probability": 1.0}, mirroring={"probability": 1.0})
    x, y = batches_of(cases, augmentation=settings)[1]
    x_expected, y_expected = batches_of(in_memory, augmentation=settings)[1]
    assert np.array_equal(x, x_expected) and np.array_equal(y, y_expected)
    assert np.array_equal(cases[0].label, in_memory[0].label)  # inputs untouched


def test_label_values_beyond_num_classes_name_the_case():
    case = make_case(case_id="case_00042")
    with pytest.raises(DataError, match="case_00042: label value 2 outside 0..1"):
        PatchBatches([case], PATCH, batch_size=1, num_classes=2, batches_per_epoch=1)


def test_mismatched_image_and_label_name_the_case():
    case = make_case(case_id="case_00007")
    case.label = case.label[:-1]
    with pytest.raises(DataError, match="case_00007: image .* and label .* do not match"):
        PatchBatches([case], PATCH, batch_size=1, num_classes=3, batches_per_epoch=1)


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("foreground_fraction", 1.5, "foreground_fraction: must lie in"),
        ("batch_size", 0, "batch_size: must be >= 1"),
        ("patch_shape", (8, 0, 8), "patch_shape: expected positive sizes"),
        ("num_classes", 1, "num_classes: must be >= 2"),
        ("pad_value", "median", "pad_value: expected 'minimum' or a number"),
        ("seed", -1, "seed: must be >= 0"),
        ("workers", 0, "workers: must be >= 1"),
        ("augmentation", AugmentationSettings(), "augmentation: the spatial transforms need 2-D or 3-D patches"),
    ],
)
def test_impossible_settings_raise_config_errors(option, value, message):
    settings = dict(patch_shape=PATCH, batch_size=1, num_classes=3, batches_per_epoch=1)
    settings[option] = value
    case = make_case()
    if option == "augmentation":  # 1-D patches of 1-D "images"
        case.image, case.label, settings["patch_shape"] = case.image[0, 0], case.label[0, 0], PATCH[2:]
    with pytest.raises(ConfigError, match=message):
        PatchBatches([case], **settings)


@pytest.mark.slow
def test_keras_fits_on_the_batches_and_advances_the_epoch():
    import tensorflow as tf

    cases = [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(2)]
    training = PatchBatches(
        cases, PATCH, batch_size=2, num_classes=3, batches_per_epoch=3, augmentation=AugmentationSettings(), seed=0
    )
    validation = PatchBatches(
        cases, PATCH, batch_size=2, num_classes=3, batches_per_epoch=1, fixed_patches=True, seed=0
    )
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [tf.keras.Input((*PATCH, 1)), tf.keras.layers.Conv3D(3, 3, padding="same", activation="softmax")]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    history = model.fit(training, validation_data=validation, epochs=2, shuffle=False, verbose=0)
    training.close()
    validation.close()
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["val_loss"]))
    assert training.epoch == 2
