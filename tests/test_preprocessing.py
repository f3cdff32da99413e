"""Preprocessing: clipping, z-score, resampling, mapping back, and the on-disk cache."""

import os
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage

from pipeline.data import Case, open_dataset
from pipeline.data.phantoms import write_kits19
from pipeline.config import PreprocessingSection, load_section
from pipeline.errors import DataError
from pipeline.preprocessing import (
    PreprocessedCache,
    PreprocessingSettings,
    preprocess_case,
    restore_to_original,
)
from pipeline.preprocessing import cache as cache_module
from pipeline.preprocessing.resampling import resample_labels, resample_linear, resampled_shape

DEMO = PreprocessingSettings(clip=(-79, 304), normalization="zscore", target_spacing=(4.0, 6.0, 6.0))


@pytest.fixture(scope="module")
def kits19_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kits19")
    write_kits19(root, 3, seed=2)
    return root


@pytest.fixture(scope="module")
def dataset(kits19_root):
    return open_dataset("kits19", kits19_root)


def test_settings_are_validated():
    with pytest.raises(ValidationError, match="clip"):
        PreprocessingSettings(clip=(304, -79))
    with pytest.raises(ValidationError, match="normalization"):
        PreprocessingSettings(normalization="minmax")
    with pytest.raises(ValidationError, match="target_spacing"):
        PreprocessingSettings(target_spacing=(1.0, 0.0, 1.0))
    assert DEMO.as_dict() == {"clip": [-79.0, 304.0], "normalization": "zscore", "target_spacing": [4.0, 6.0, 6.0]}


def test_clipping_bounds(dataset):
    case = dataset.load("case_00000")
    assert case.image.min() < -79 and case.image.max() > 304
    pre = preprocess_case(case, PreprocessingSettings(clip=(-79, 304), normalization="none"), 3)
    assert pre.image.min() == -79 and pre.image.max() == 304
    assert pre.image.shape == case.image.shape and np.array_equal(pre.label, case.label)


def test_zscore_and_resampled_shape(dataset):
    case = dataset.load("case_00001")
    pre = preprocess_case(case, DEMO, 3)
    expected = tuple(round(n * s / t) for n, s, t in zip(case.label.shape, case.spacing, DEMO.target_spacing))
    assert pre.image.shape == expected + (1,) and pre.label.shape == expected
    assert pre.image.dtype == np.float32 and pre.label.dtype == np.uint8
    assert abs(float(pre.image.mean())) < 1e-4 and float(pre.image.std()) == pytest.approx(1.0, abs=1e-4)
    assert pre.spacing == pytest.approx(DEMO.target_spacing, rel=0.05)
    assert pre.original_shape == case.label.shape and pre.original_spacing == case.spacing
    assert np.array_equal(pre.affine, case.affine)
    kidney_ml = np.sum(case.label == 1) * np.prod(case.spacing)  # the kidney's volume survives
    assert np.sum(pre.label == 1) * np.prod(pre.spacing) == pytest.approx(kidney_ml, rel=0.15)
    assert (pre.label == 2).any()


def test_zscore_over_nonzero_voxels_keeps_the_background():
    rng = np.random.default_rng(0)
    image = np.zeros((10, 12, 14, 2), np.float32)
    image[2:8, 3:9, 4:10] = rng.normal(500, 80, size=(6, 6, 6, 2))
    case = Case("c", image, np.zeros((10, 12, 14), np.uint8), (1.0, 1.0, 1.0), np.eye(4))
    brats20 = load_section(
        Path(__file__).resolve().parents[1] / "configs/base/brats20.yaml", "preprocessing", PreprocessingSection
    ).settings()
    assert brats20.normalization == "zscore_nonzero" and brats20.target_spacing is None
    pre = preprocess_case(case, brats20)
    brain = image[..., 0] != 0
    assert np.all(pre.image[~brain] == 0)
    for channel in range(2):
        assert pre.image[brain, channel].mean() == pytest.approx(0, abs=1e-5)
        assert pre.image[brain, channel].std() == pytest.approx(1, abs=1e-4)
    assert np.array_equal(case.image, image)  # the case is not modified in place


def test_linear_resampling_equals_trilinear_interpolation():
    volume = np.random.default_rng(1).normal(size=(9, 14, 11)).astype(np.float32)
    for shape in [(5, 20, 11), (13, 7, 4)]:
        expected = ndimage.zoom(
            volume, [n / o for n, o in zip(shape, volume.shape)], order=1, grid_mode=True, mode="nearest"
        )
        np.testing.assert_allclose(resample_linear(volume, shape), expected, atol=1e-5)
    assert resampled_shape((100, 512, 512), (3.0, 0.78, 0.78), (3.22, 1.62, 1.62)) == (93, 247, 247)


def test_label_resampling_never_invents_a_class():
    labels = np.zeros((4, 16, 16), np.uint8)
    labels[:, :, 8:] = 2  # 0 next to 2: numeric interpolation would create 1s
    for shape in [(4, 7, 7), (4, 37, 37)]:
        resampled = resample_labels(labels, shape, 3)
        assert set(np.unique(resampled)) == {0, 2}
    cube = np.zeros((8, 8, 8), np.uint8)
    cube[2:6, 2:6, 2:6] = 1  # halved: the cube keeps its place, 2 voxels a side
    halved = resample_labels(cube, (4, 4, 4), 2)
    assert halved.sum() == 8 and halved[1:3, 1:3, 1:3].all()


def test_restore_to_original_geometry(dataset):
    case = dataset.load("case_00002")
    pre = preprocess_case(case, DEMO, 3)
    from_labels = restore_to_original(pre.label, pre)
    probabilities = np.eye(3, dtype=np.float32)[pre.label]
    from_probabilities = restore_to_original(probabilities, pre)
    for restored in (from_labels, from_probabilities):
        assert restored.shape == case.label.shape and restored.dtype == np.uint8
        for label in (1, 2):
            overlap = np.sum((restored == label) & (case.label == label))
            dice = 2 * overlap / (np.sum(restored == label) + np.sum(case.label == label))
            assert dice > 0.75
    with pytest.raises(ValueError, match="preprocessed grid"):
        restore_to_original(case.label, pre)


def test_cache_computes_once_and_is_shared(dataset, tmp_path, monkeypatch):
    calls = []
    compute = cache_module.preprocess_case
    monkeypatch.setattr(cache_module, "preprocess_case", lambda *args, **kw: calls.append(1) or compute(*args, **kw))
    first = PreprocessedCache(tmp_path, dataset, DEMO)
    first.prepare(workers=2)
    assert len(calls) == 3
    image_file = first.directory / "case_00000" / "image.npy"
    written = image_file.stat().st_mtime_ns
    second = PreprocessedCache(tmp_path, open_dataset("kits19", dataset.root), DEMO)  # e.g. another loss or fold
    assert second.directory == first.directory
    pre = second.load("case_00000")
    assert len(calls) == 3 and image_file.stat().st_mtime_ns == written
    assert isinstance(pre.image, np.memmap) and pre.image.shape[-1] == 1
    np.testing.assert_array_equal(pre.image, preprocess_case(dataset.load("case_00000"), DEMO, 3).image)
    other = PreprocessedCache(tmp_path, dataset, PreprocessingSettings(clip=(-79, 304)))
    assert other.directory != first.directory


def test_cache_recomputes_a_case_whose_files_changed(dataset, tmp_path, monkeypatch):
    cache = PreprocessedCache(tmp_path, dataset, DEMO)
    cache.load("case_00001")
    calls = []
    compute = cache_module.preprocess_case
    monkeypatch.setattr(cache_module, "preprocess_case", lambda *args, **kw: calls.append(1) or compute(*args, **kw))
    mask = dataset.root / "case_00001" / "segmentation.nii.gz"
    stat = mask.stat()
    os.utime(mask, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    cache.load("case_00001")
    assert len(calls) == 1


def test_a_failing_case_leaves_nothing_in_the_cache(kits19_root, tmp_path):
    root = tmp_path / "kits19"
    for case in ("case_00000", "case_00001"):
        (root / case).mkdir(parents=True)
        for name in ("imaging.nii.gz", "segmentation.nii.gz"):
            (root / case / name).write_bytes((kits19_root / case / name).read_bytes())
    data = (root / "case_00001" / "imaging.nii.gz").read_bytes()
    (root / "case_00001" / "imaging.nii.gz").write_bytes(data[: len(data) // 2])
    cache = PreprocessedCache(tmp_path / "cache", open_dataset("kits19", root), DEMO)
    with pytest.raises(DataError, match="case_00001/imaging.nii.gz"):
        cache.prepare()
    assert sorted(p.name for p in cache.directory.iterdir()) == ["case_00000", "key.json"]


def test_boxed_label_resampling_equals_dense_per_class_argmax():
    rng = np.random.default_rng(3)
    labels = np.zeros((12, 30, 26), np.uint8)
    labels[2:7, 5:14, 3:11] = 1
    labels[4:6, 8:12, 6:9] = 2
    labels[9:12, 20:30, 18:26] = 1  # touches the far edges
    labels[rng.random(labels.shape) < 0.01] = 2
    for shape in [(7, 13, 11), (20, 45, 40), (12, 17, 30)]:
        scores = np.stack([resample_linear((labels == c).astype(np.float32), shape) for c in range(3)], axis=-1)
        np.testing.assert_array_equal(resample_labels(labels, shape, 3), np.argmax(scores, axis=-1))


def test_2d_resize_to_a_fixed_grid_and_back():
    """A 2D image of any size goes to ``target_shape`` (linear, per channel; labels label-safe) and back."""
    label = np.zeros((45, 70), np.uint8)
    label[10:30, 20:50] = 1
    image = np.stack([label * 100.0, 50.0 + label], axis=-1).astype(np.float32)
    case = Case("frame", image, label, (1.0, 1.0), np.eye(4))
    pre = preprocess_case(case, PreprocessingSettings(normalization="none", target_shape=(32, 48)), num_classes=2)
    assert pre.image.shape == (32, 48, 2) and pre.label.shape == (32, 48)
    np.testing.assert_allclose(pre.image[..., 0], resample_linear(image[..., 0], (32, 48)), atol=1e-5)
    assert pre.geometry.original_shape == (45, 70) and pre.spacing == pytest.approx((45 / 32, 70 / 48))
    probabilities = np.stack([1.0 - pre.label, pre.label], axis=-1).astype(np.float32)
    restored = restore_to_original(probabilities, pre)
    assert restored.shape == (45, 70)
    assert (restored != label).mean() < 0.02  # only the block's edge may move by a pixel
    with pytest.raises(ValidationError, match="not both"):
        PreprocessingSettings(target_shape=(32, 48), target_spacing=(1.0, 1.0))
