"""BraTS20 as published: modalities, label map, ET-less exclusion, .nii, the stray mask name."""

import gzip
import logging
import shutil

import nibabel as nib
import numpy as np
import pytest

from pipeline.data import open_dataset
from pipeline.data.phantoms import write_brats20
from pipeline.errors import DataError

MODALITIES = ("flair", "t1", "t1ce", "t2")


@pytest.fixture(scope="module")
def brats20_root(tmp_path_factory):
    """Seven phantom cases; case 006 has no enhancing tumour."""
    root = tmp_path_factory.mktemp("brats20")
    write_brats20(root, 7, seed=0)
    return root


def _seg(root, case_id):
    return np.asanyarray(nib.load(root / case_id / f"{case_id}_seg.nii.gz").dataobj)


def test_paper_defaults_t1ce_enhancing_tumour_and_et_less_exclusion(brats20_root, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset("brats20", brats20_root)
    case_ids = [f"BraTS20_Training_{n:03d}" for n in range(1, 8)]
    without_et = [case_id for case_id in case_ids if not (_seg(brats20_root, case_id) == 4).any()]
    assert len(without_et) == 1
    assert dataset.excluded_without_label == without_et
    assert "excluded 1 of 7 case(s) without a voxel of enhancing_tumour" in caplog.text
    assert len(dataset.case_ids()) == 6 and without_et[0] not in dataset.case_ids()
    assert dataset.modalities == ("t1ce",) and dataset.class_names == ("background", "enhancing_tumour")
    case_id = dataset.case_ids()[0]
    case = dataset.load(case_id)
    t1ce = nib.load(brats20_root / case_id / f"{case_id}_t1ce.nii.gz")
    assert case.image.shape == t1ce.shape + (1,)
    assert np.array_equal(case.image[..., 0], np.asanyarray(t1ce.dataobj))
    assert np.array_equal(case.label, (_seg(brats20_root, case_id) == 4).astype(np.uint8))


def test_et_less_cases_kept_on_request(brats20_root):
    dataset = open_dataset("brats20", brats20_root, exclude_without_label=False)
    assert len(dataset.case_ids()) == 7 and dataset.excluded_without_label == []


def test_modalities_are_channels_in_the_given_order(brats20_root):
    dataset = open_dataset("brats20", brats20_root, modalities=("t2", "flair"), label_map={1: 1, 2: 2, 4: 3})
    assert dataset.class_names == ("background", "necrotic_core", "oedema", "enhancing_tumour")
    case_id = "BraTS20_Training_001"
    case = dataset.load(case_id)
    for channel, modality in enumerate(("t2", "flair")):
        expected = np.asanyarray(nib.load(brats20_root / case_id / f"{case_id}_{modality}.nii.gz").dataobj)
        assert np.array_equal(case.image[..., channel], expected)
    assert np.array_equal(case.label, np.array([0, 1, 2, 0, 3], np.uint8)[_seg(brats20_root, case_id)])


@pytest.fixture
def one_case(brats20_root, tmp_path):
    """A copy of case 001 to modify."""
    root = tmp_path / "brats20"
    shutil.copytree(brats20_root / "BraTS20_Training_001", root / "BraTS20_Training_001")
    return root, root / "BraTS20_Training_001"


def test_uncompressed_nii_files_are_read(brats20_root, one_case):
    root, folder = one_case
    for path in list(folder.iterdir()):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))  # x.nii.gz -> x.nii
        path.unlink()
    case = open_dataset("brats20", root).load("BraTS20_Training_001")
    reference = open_dataset("brats20", brats20_root).load("BraTS20_Training_001")
    assert np.array_equal(case.image, reference.image) and np.array_equal(case.label, reference.label)


def test_a_stray_mask_name_is_found_with_a_warning(brats20_root, one_case, caplog):
    root, folder = one_case
    stray = folder / "W39_1998.09.19_Segm.nii"
    stray.write_bytes(gzip.decompress((folder / "BraTS20_Training_001_seg.nii.gz").read_bytes()))
    (folder / "BraTS20_Training_001_seg.nii.gz").unlink()
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset("brats20", root)
    assert "W39_1998.09.19_Segm.nii" in caplog.text
    assert dataset.source_files("BraTS20_Training_001")[-1] == stray
    reference = open_dataset("brats20", brats20_root).load("BraTS20_Training_001")
    assert np.array_equal(dataset.load("BraTS20_Training_001").label, reference.label)


def test_two_candidate_masks_are_reported(one_case):
    root, folder = one_case
    mask = folder / "BraTS20_Training_001_seg.nii.gz"
    shutil.copy(mask, folder / "seg_rater1.nii.gz")
    mask.rename(folder / "seg_rater2.nii.gz")
    with pytest.raises(DataError, match="BraTS20_Training_001_seg.nii.gz: mask not found, and several") as error:
        open_dataset("brats20", root)
    assert "seg_rater1.nii.gz" in str(error.value) and "seg_rater2.nii.gz" in str(error.value)


def test_missing_mask_without_candidate(one_case):
    root, folder = one_case
    (folder / "BraTS20_Training_001_seg.nii.gz").unlink()
    with pytest.raises(DataError, match="BraTS20_Training_001_seg.nii.gz: mask not found"):
        open_dataset("brats20", root)
