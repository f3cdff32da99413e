"""Every kind of bad input is a DataError naming the offending file."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from pipeline.data import open_dataset
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine
from pipeline.errors import DataError

SPACING = (4.0, 3.0, 3.0)


def _case(root, number=0, image=None, label=None, label_affine=None):
    """A tiny KiTS19 case folder; ``image``/``label`` override the good defaults."""
    folder = root / f"case_{number:05d}"
    folder.mkdir(parents=True, exist_ok=True)
    good_label = np.zeros((6, 8, 8), np.uint8)
    good_label[2:4, 2:5, 2:5] = 1
    good_label[3, 3, 3] = 2
    write_nifti(
        folder / "imaging.nii.gz", np.full((6, 8, 8), 40, np.int16) if image is None else image, kits19_affine(SPACING)
    )
    write_nifti(
        folder / "segmentation.nii.gz",
        good_label if label is None else label,
        kits19_affine(SPACING) if label_affine is None else label_affine,
    )
    return folder


def _load_error(root) -> DataError:
    with pytest.raises(DataError) as error:
        dataset = open_dataset("kits19", root, exclude=())
        dataset.load(dataset.case_ids()[0])
    assert len(str(error.value).splitlines()) == 1
    return error.value


def test_good_case_loads(tmp_path):
    _case(tmp_path)
    dataset = open_dataset("kits19", tmp_path, exclude=())
    assert dataset.load("case_00000").label.max() == 2


def test_missing_image_file(tmp_path):
    (_case(tmp_path) / "imaging.nii.gz").unlink()
    error = _load_error(tmp_path)
    assert error.path.endswith("case_00000/imaging.nii.gz") and "not found" in error.problem


def test_mask_shape_mismatch(tmp_path):
    _case(tmp_path, label=np.zeros((6, 8, 9), np.uint8))
    error = _load_error(tmp_path)
    assert error.path.endswith("segmentation.nii.gz") and "shape (6, 8, 9) differs" in error.problem


def test_mask_affine_mismatch(tmp_path):
    shifted = kits19_affine(SPACING)
    shifted[0, 3] = 10.0
    _case(tmp_path, label_affine=shifted)
    error = _load_error(tmp_path)
    assert error.path.endswith("segmentation.nii.gz") and "affine differs" in error.problem


def test_unexpected_label_values(tmp_path):
    label = np.zeros((6, 8, 8), np.uint8)
    label[1, 1, 1] = 3
    _case(tmp_path, label=label)
    error = _load_error(tmp_path)
    assert error.path.endswith("segmentation.nii.gz") and "unexpected label values [3]" in error.problem


def test_non_integer_label_values(tmp_path):
    label = np.zeros((6, 8, 8), np.float32)
    label[1, 1, 1] = 0.5
    _case(tmp_path, label=label)
    assert "non-integer" in _load_error(tmp_path).problem


def test_nan_and_inf_voxels(tmp_path):
    image = np.zeros((6, 8, 8), np.float32)
    image[0, 0, 0], image[1, 1, 1] = np.nan, np.inf
    _case(tmp_path, image=image)
    error = _load_error(tmp_path)
    assert error.path.endswith("imaging.nii.gz") and "2 voxels are NaN or Inf" in error.problem


def test_truncated_file(tmp_path):
    folder = _case(tmp_path, image=np.arange(6 * 8 * 8, dtype=np.int16).reshape(6, 8, 8))
    data = (folder / "imaging.nii.gz").read_bytes()
    (folder / "imaging.nii.gz").write_bytes(data[: len(data) // 2])
    error = _load_error(tmp_path)
    assert error.path.endswith("imaging.nii.gz")
    assert "truncated or corrupt" in error.problem or "not a readable NIfTI" in error.problem


def test_truncated_uncompressed_file(tmp_path):
    folder = _case(tmp_path)
    raw = gzip.decompress((folder / "imaging.nii.gz").read_bytes())
    (folder / "imaging.nii.gz").unlink()
    (folder / "imaging.nii").write_bytes(raw[: len(raw) - 100])
    error = _load_error(tmp_path)
    assert error.path.endswith("imaging.nii") and "truncated or corrupt" in error.problem


def test_not_a_nifti_file(tmp_path):
    folder = _case(tmp_path)
    (folder / "segmentation.nii.gz").write_text("<html>404 Not Found</html>")
    error = _load_error(tmp_path)
    assert error.path.endswith("segmentation.nii.gz") and "not a readable NIfTI" in error.problem


def test_wrong_dimensionality(tmp_path):
    folder = _case(tmp_path)
    nib.save(nib.Nifti1Image(np.zeros((6, 8, 8, 2), np.int16), kits19_affine(SPACING)), folder / "imaging.nii.gz")
    error = _load_error(tmp_path)
    assert error.path.endswith("imaging.nii.gz") and "expected a 3-D volume" in error.problem


def test_missing_root(tmp_path):
    error = _load_error(tmp_path / "nowhere")
    assert error.path.endswith("nowhere") and "not found" in error.problem


def test_folder_without_cases(tmp_path):
    (tmp_path / "imaging.nii.gz").write_text("")
    assert "no case folders" in _load_error(tmp_path).problem


def test_every_case_excluded_is_an_empty_data_set(tmp_path):
    _case(tmp_path, number=15)
    with pytest.raises(DataError, match="no kits19 case left to use .* 1 excluded"):
        open_dataset("kits19", tmp_path)
