"""The sampler feeds distance maps with the target, per deep-supervision head; Keras trains on them."""

from types import SimpleNamespace

import numpy as np
import pytest

import losses
from pipeline.training.sampling import PatchBatches, available_cpus
from test_sampling import PATCH, make_case


@pytest.fixture
def cases():
    return [make_case(seed=seed, case_id=f"case_{seed}") for seed in range(2)]


def sampler(cases, **options):
    settings = dict(
        patch_shape=PATCH, batch_size=2, num_classes=3, batches_per_epoch=3, seed=0, foreground_fraction=1.0
    )
    return PatchBatches(cases, **{**settings, **options})


def test_targets_carry_each_patchs_maps_after_the_one_hot(cases):
    loss = losses.get("boundary")
    plain, with_maps = sampler(cases), sampler(cases, target_maps=loss.target_maps)
    kidney_maps = []
    try:
        for index in range(3):
            x, y = with_maps[index]
            x_plain, y_plain = plain[index]
            assert y.shape == (2, *PATCH, 6)
            np.testing.assert_array_equal(x, x_plain)
            np.testing.assert_array_equal(y[..., :3], y_plain)
            for slot in range(2):
                np.testing.assert_array_equal(y[slot, ..., 3:], loss.target_maps(y_plain[slot]))
            kidney_maps.append(y[..., 4])
        assert np.any(np.stack(kidney_maps) < 0) and np.any(np.stack(kidney_maps) > 0)  # inside and outside
    finally:
        plain.close()
        with_maps.close()


def test_deep_supervision_targets_recompute_the_maps_at_each_resolution(cases):
    loss = losses.get("distance_penalized_ce")
    batches = sampler(cases, target_maps=loss.target_maps, target_heads=2)
    try:
        x, ys = batches[1]
        assert [y.shape for y in ys] == [(2, 8, 12, 12, 6), (2, 4, 6, 6, 6), (2, 2, 3, 3, 6)]
        for head, y in enumerate(ys):
            step = 2**head
            np.testing.assert_array_equal(y[..., :3], ys[0][:, ::step, ::step, ::step, :3])
            for slot in range(2):
                np.testing.assert_array_equal(y[slot, ..., 3:], loss.target_maps(y[slot, ..., :3]))
        signature = batches.output_signature()
        assert [spec.shape.as_list() for spec in signature[1]] == [list(y.shape) for y in ys]
    finally:
        batches.close()


def test_workers_default_to_the_slurm_allotment(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "7")
    assert available_cpus() == 7
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert 1 <= available_cpus()


@pytest.mark.slow
def test_a_deeply_supervised_unet_trains_on_fed_maps_and_reloads(cases, tmp_path):
    import tensorflow as tf

    from pipeline.training.model import build_unet, deep_supervision_weights

    loss = losses.get("boundary")
    fed = sampler(cases, target_maps=loss.target_maps, target_heads=1)
    own = sampler(cases, target_heads=1)
    try:
        datasets = [
            tf.data.Dataset.from_generator(
                lambda s=s: (s[i] for i in range(len(s))), output_signature=s.output_signature()
            )
            for s in (fed, own)
        ]
        tf.keras.utils.set_random_seed(0)
        model = build_unet(1, 3, n_filters=2, depth=2, deep_supervision=True, deep_supervision_heads=1)
        model.compile(optimizer="adam", loss=loss, loss_weights=deep_supervision_weights(1), jit_compile=False)
        fed_value, own_value = (model.evaluate(dataset, verbose=0)[0] for dataset in datasets)
        assert fed_value == pytest.approx(own_value, rel=1e-5)
        history = model.fit(datasets[0], epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        model.save(tmp_path / "model.h5")
        reloaded = tf.keras.models.load_model(tmp_path / "model.h5", custom_objects=losses.custom_objects())
        assert reloaded.evaluate(datasets[0], verbose=0)[0] == pytest.approx(
            model.evaluate(datasets[0], verbose=0)[0], rel=1e-5
        )
    finally:
        fed.close()
        own.close()


def test_two_dimensional_patches_get_maps_per_head_too():
    rng = np.random.default_rng(3)
    label = np.zeros((40, 48), np.uint8)
    label[10:22, 12:30] = 1
    label[14:17, 20:24] = 2
    case = SimpleNamespace(
        case_id="image_0", label=label, image=(rng.normal(size=(40, 48, 3)) + label[..., None]).astype(np.float32)
    )
    loss = losses.get("boundary")
    batches = PatchBatches(
        [case],
        (16, 24),
        batch_size=2,
        num_classes=3,
        batches_per_epoch=2,
        seed=0,
        foreground_fraction=1.0,
        target_maps=loss.target_maps,
        target_heads=1,
    )
    try:
        x, (full, half) = batches[0]
        assert x.shape == (2, 16, 24, 3) and full.shape == (2, 16, 24, 6) and half.shape == (2, 8, 12, 6)
        for slot in range(2):
            np.testing.assert_array_equal(full[slot, ..., 3:], loss.target_maps(full[slot, ..., :3]))
            np.testing.assert_array_equal(half[slot, ..., :3], full[slot, ::2, ::2, :3])
            np.testing.assert_array_equal(half[slot, ..., 3:], loss.target_maps(half[slot, ..., :3]))
    finally:
        batches.close()
