"""KiTS19 as published: layout, exclusions, cases without a mask, label maps, MIScnn I/O."""

import gzip
import logging
import shutil

import nibabel as nib
import numpy as np
import pytest

from pipeline.data import Case, open_dataset
from pipeline.data.phantoms import write_kits19
from pipeline.errors import ConfigError


@pytest.fixture(scope="module")
def kits19_root(tmp_path_factory):
    """Cases 0, 1, 15 (a paper exclusion) and 210 (a test case: no mask)."""
    root = tmp_path_factory.mktemp("kits19")
    write_kits19(root, 4, seed=3)
    (root / "case_00002").rename(root / "case_00015")
    (root / "case_00003").rename(root / "case_00210")
    (root / "case_00210" / "segmentation.nii.gz").unlink()
    return root


def test_reads_the_published_layout(kits19_root):
    dataset = open_dataset("kits19", kits19_root)
    assert dataset.name == "kits19"
    assert dataset.case_ids() == ["case_00000", "case_00001"]
    assert dataset.class_names == ("background", "kidney", "tumour") and dataset.num_classes == 3
    assert dataset.modalities == ("ct",)
    case = dataset.load("case_00000")
    assert isinstance(case, Case) and case.case_id == "case_00000"
    header = nib.load(kits19_root / "case_00000" / "imaging.nii.gz")
    assert case.image.dtype == np.float32 and case.image.shape == header.shape + (1,)
    assert np.array_equal(case.image[..., 0], np.asanyarray(header.dataobj))
    assert case.label.dtype == np.uint8 and case.label.shape == header.shape
    assert set(np.unique(case.label)) == {0, 1, 2}
    assert case.spacing == pytest.approx(header.header.get_zooms())  # slice thickness first
    assert case.spacing[0] > case.spacing[1]
    assert np.array_equal(case.affine, header.affine)


def test_paper_exclusions_and_skipped_cases_are_reported(kits19_root, caplog):
    with caplog.at_level(logging.WARNING):
        dataset = open_dataset("kits19", kits19_root)
    assert dataset.excluded == ["case_00015"]
    assert dataset.skipped_without_mask == ["case_00210"]
    assert "1 case(s) without a mask" in caplog.text and "case_00210" in caplog.text


def test_exclusions_are_configurable(kits19_root):
    dataset = open_dataset("kits19", kits19_root, exclude=["case_00001"])
    assert dataset.case_ids() == ["case_00000", "case_00015"]
    assert dataset.excluded == ["case_00001"]
    assert open_dataset("kits19", kits19_root, exclude=()).case_ids() == ["case_00000", "case_00001", "case_00015"]


def test_label_map_merges_classes_and_names_them(kits19_root):
    dataset = open_dataset("kits19", kits19_root, label_map={1: 1, 2: 1})
    assert dataset.class_names == ("background", "kidney+tumour")
    original = open_dataset("kits19", kits19_root).load("case_00000").label
    assert np.array_equal(dataset.load("case_00000").label, (original > 0).astype(np.uint8))


@pytest.mark.parametrize(
    "options, key",
    [
        ({"label_map": {3: 1}}, "label_map"),
        ({"label_map": {1: 2}}, "label_map"),
        ({"modalities": ("t1ce",)}, "modalities"),
        ({"exclude": ["fifteen"]}, "exclude"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_config_errors(kits19_root, options, key):
    with pytest.raises(ConfigError, match=key):
        open_dataset("kits19", kits19_root, **options)


def test_unknown_data_set_name():
    with pytest.raises(ConfigError, match="unknown data set 'lits'"):
        open_dataset("lits", "/nowhere")


def test_uncompressed_nifti_is_read(kits19_root, tmp_path):
    root = tmp_path / "kits19"
    shutil.copytree(kits19_root / "case_00000", root / "case_00000")
    for name in ("imaging", "segmentation"):
        gzipped = root / "case_00000" / f"{name}.nii.gz"
        (root / "case_00000" / f"{name}.nii").write_bytes(gzip.decompress(gzipped.read_bytes()))
        gzipped.unlink()
    case = open_dataset("kits19", root).load("case_00000")
    reference = open_dataset("kits19", kits19_root).load("case_00000")
    assert np.array_equal(case.image, reference.image) and np.array_equal(case.label, reference.label)


def test_fingerprint_names_what_changes_the_arrays(kits19_root):
    dataset = open_dataset("kits19", kits19_root)
    fingerprint = dataset.fingerprint()
    assert fingerprint["name"] == "kits19" and fingerprint["root"] == str(kits19_root.resolve())
    assert fingerprint != open_dataset("kits19", kits19_root, label_map={1: 1, 2: 1}).fingerprint()
    assert fingerprint == open_dataset("kits19", kits19_root, exclude=()).fingerprint()
    assert [p.name for p in dataset.source_files("case_00000")] == ["imaging.nii.gz", "segmentation.nii.gz"]


def test_is_a_miscnn_io_interface(kits19_root, tmp_path):
    from pipeline.miscnn_compat import miscnn

    dataset = open_dataset("kits19", kits19_root)
    data_io = miscnn.Data_IO(dataset, str(kits19_root), output_path=str(tmp_path / "predictions"))
    assert data_io.get_indiceslist() == dataset.case_ids()
    sample = data_io.sample_loader("case_00001", load_seg=True)
    assert sample.img_data.shape[-1] == 1 and sample.seg_data.shape[-1] == 1
    sample.add_prediction(sample.seg_data[..., 0])
    data_io.save_prediction(sample)
    written = nib.load(tmp_path / "predictions" / "case_00001.nii.gz")
    assert np.array_equal(written.affine, dataset.load("case_00001").affine)
    assert np.array_equal(dataset.load_prediction("case_00001", tmp_path / "predictions"), sample.seg_data[..., 0])
