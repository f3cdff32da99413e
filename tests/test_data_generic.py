"""nnU-Net v2 raw data sets and Decathlon tasks: names from dataset.json, channels, 4-D images, junk, refusals."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from pipeline.data import open_dataset
from pipeline.data.phantoms import main as make_phantoms
from pipeline.data.phantoms import write_msd, write_nnunet
from pipeline.errors import ConfigError, DataError

CASES = 3


@pytest.fixture(scope="module")
def nnunet_ct(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet") / "Dataset900_Kidney"
    write_nnunet(root, CASES, seed=2, kind="ct")
    return root


@pytest.fixture(scope="module")
def nnunet_mri(tmp_path_factory):
    root = tmp_path_factory.mktemp("nnunet") / "Dataset901_Brain"
    write_nnunet(root, 2, seed=2, kind="mri")
    return root


@pytest.fixture(scope="module")
def msd_mri(tmp_path_factory):
    """A four-channel Decathlon task with the macOS ._* files of the published archives."""
    root = tmp_path_factory.mktemp("msd") / "Task01_BrainTumour"
    write_msd(root, 2, seed=4, kind="mri")
    for folder in ("imagesTr", "labelsTr", "imagesTs"):
        for path in list((root / folder).iterdir()):
            (root / folder / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    return root


def copy_of(root, tmp_path):
    return shutil.copytree(root, tmp_path / root.name)


def edit_description(root, **changes):
    path = root / "dataset.json"
    description = json.loads(path.read_text())
    description.update(changes)
    path.write_text(json.dumps(description))


def test_nnunet_names_channels_and_labels_come_from_dataset_json(nnunet_ct, tmp_path):
    dataset = open_dataset("nnunet", nnunet_ct)
    assert dataset.case_ids() == ["kidney_000", "kidney_001", "kidney_002"]
    assert dataset.class_names == ("background", "kidney", "tumour") and dataset.modalities == ("CT",)
    assert list(dataset.test_images()) == ["kidney_003"]
    case = dataset.load("kidney_001")
    source = nib.load(nnunet_ct / "imagesTr" / "kidney_001_0000.nii.gz")
    assert case.image.shape == source.shape + (1,) and case.image.dtype == np.float32
    assert np.array_equal(case.image[..., 0], np.asanyarray(source.dataobj))
    assert np.array_equal(case.label, np.asanyarray(nib.load(nnunet_ct / "labelsTr" / "kidney_001.nii.gz").dataobj))
    assert case.spacing == pytest.approx(source.header.get_zooms()) and np.array_equal(case.affine, source.affine)
    assert dataset.geometry("kidney_001").shape == source.shape

    renamed = copy_of(nnunet_ct, tmp_path)  # other names, other background name: read from the file
    edit_description(renamed, channel_names={"0": "venous CT"}, labels={"bg": 0, "ren": 1, "mass": 2})
    dataset = open_dataset("nnunet", renamed, label_map={1: 1, 2: 1})
    assert dataset.class_names == ("bg", "ren+mass") and dataset.modalities == ("venous CT",)
    assert set(np.unique(dataset.load("kidney_000").label)) == {0, 1}


def test_nnunet_channels_in_dataset_json_order_and_selectable(nnunet_mri):
    dataset = open_dataset("nnunet", nnunet_mri)
    assert dataset.modalities == ("FLAIR", "T1w", "T1gd", "T2w")
    assert dataset.class_names == ("background", "edema", "non-enhancing tumour", "enhancing tumour")
    case = dataset.load("BRATS_000")
    for channel in range(4):
        source = nib.load(nnunet_mri / "imagesTr" / f"BRATS_000_{channel:04d}.nii.gz")
        assert np.array_equal(case.image[..., channel], np.asanyarray(source.dataobj))
    chosen = open_dataset("nnunet", nnunet_mri, modalities=["T2w", "FLAIR"]).load("BRATS_000")
    assert np.array_equal(chosen.image, case.image[..., [3, 0]])
    with pytest.raises(ConfigError, match="modalities"):
        open_dataset("nnunet", nnunet_mri, modalities=["t1ce"])


def test_nnunet_ignores_junk_and_honours_exclusions(nnunet_ct, tmp_path):
    root = copy_of(nnunet_ct, tmp_path)
    (root / "imagesTr" / "._kidney_000_0000.nii.gz").write_bytes(b"junk")
    (root / "labelsTr" / "._kidney_000.nii.gz").write_bytes(b"junk")
    (root / "imagesTr" / ".DS_Store").write_bytes(b"junk")
    dataset = open_dataset("nnunet", root, exclude=["kidney_002"])
    assert dataset.case_ids() == ["kidney_000", "kidney_001"] and dataset.excluded == ["kidney_002"]
    assert dataset.load("kidney_000").label.any()
    with pytest.raises(ConfigError, match="exclude: 2 is not a case id"):
        open_dataset("nnunet", root, exclude=[2])


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"labels": {"background": 0, "whole tumour": [1, 2], "core": 2}}, "'whole tumour' is a region [1, 2]"),
        ({"labels": {"background": 0, "kidney": 1, "ignore": 2}}, "'ignore' label"),
        ({"labels": {"kidney": 1}}, "no label has value 0"),
        ({"file_ending": ".nrrd"}, "file_ending '.nrrd' is not supported (supported: .nii.gz, .nii)"),
        ({"channel_names": {"1": "CT"}}, "channel indices must be 0..N-1"),
        ({"numTraining": "three"}, "numTraining: expected a JSON integer"),
    ],
)
def test_nnunet_refuses_what_it_cannot_read(nnunet_ct, tmp_path, change, problem):
    root = copy_of(nnunet_ct, tmp_path)
    edit_description(root, **change)
    with pytest.raises(DataError) as error:
        open_dataset("nnunet", root)
    assert str(error.value).startswith(str(root / "dataset.json")) and problem in str(error.value)
    assert "\n" not in str(error.value)


def test_run_experiment_refuses_region_labels_in_one_line(nnunet_ct, tmp_path, capsys):
    from pipeline.runner_cli import main

    root = copy_of(nnunet_ct, tmp_path)
    edit_description(root, labels={"background": 0, "kidney": [1, 2], "tumour": 2})
    with pytest.raises(SystemExit) as exit_code:
        main(
            [
                "configs/demo_dice.yaml",
                "--set",
                "data.dataset=nnunet",
                "--set",
                f"data.root={root}",
                "--set",
                f"experiment.output_root={tmp_path / 'runs'}",
                "--set",
                f"preprocessing.cache_dir={tmp_path}/c",
            ]
        )
    error = capsys.readouterr().err
    assert exit_code.value.code == 2 and error.count("\n") == 1
    assert error == (
        f"error: {root / 'dataset.json'}: labels: 'kidney' is a region [1, 2] (nnU-Net region-based "
        "training); unifocal supports one integer value per label only\n"
    )
    assert not (tmp_path / "runs").exists() and not (tmp_path / "c").exists()


def test_nnunet_missing_or_broken_files_are_named(nnunet_ct, nnunet_mri, tmp_path):
    root = copy_of(nnunet_ct, tmp_path)
    (root / "dataset.json").write_text('{"channel_names": {"0": "CT"},')
    with pytest.raises(DataError, match=r"dataset\.json: not valid JSON \(line 1"):
        open_dataset("nnunet", root)
    (root / "dataset.json").unlink()
    with pytest.raises(DataError, match=r"dataset\.json: file not found"):
        open_dataset("nnunet", root)

    root = copy_of(nnunet_mri, tmp_path)
    (root / "imagesTr" / "BRATS_001_0002.nii.gz").unlink()
    with pytest.raises(DataError, match=r"imagesTr/BRATS_001_0002\.nii\.gz: file not found \(channel 'T1gd'"):
        open_dataset("nnunet", root)
    (root / "labelsTr" / "BRATS_000.nii.gz").unlink()
    with pytest.raises(DataError, match=r"labelsTr/BRATS_000\.nii\.gz: file not found"):
        open_dataset("nnunet", root, exclude=["BRATS_001"])
    shutil.copy(root / "imagesTr" / "BRATS_001_0000.nii.gz", root / "imagesTr" / "BRATS_001_t2.nii.gz")
    with pytest.raises(DataError, match=r"BRATS_001_t2\.nii\.gz: not named <case>_<XXXX>\.nii\.gz"):
        open_dataset("nnunet", root)


def test_msd_reads_4d_images_with_channels_last(msd_mri):
    dataset = open_dataset("msd", msd_mri)
    assert dataset.case_ids() == ["BRATS_000", "BRATS_001"]  # the ._* files are not cases
    assert dataset.modalities == ("FLAIR", "T1w", "T1gd", "T2w")
    assert dataset.class_names == ("background", "edema", "non-enhancing tumour", "enhancing tumour")
    source = nib.load(msd_mri / "imagesTr" / "BRATS_001.nii.gz")
    assert len(source.shape) == 4 and source.shape[3] == 4
    case = dataset.load("BRATS_001")
    assert case.image.shape == source.shape and np.array_equal(case.image, np.asanyarray(source.dataobj))
    assert set(np.unique(case.label)) == {0, 1, 2, 3}
    assert case.spacing == pytest.approx(source.header.get_zooms()[:3])
    assert dataset.geometry("BRATS_001").shape == source.shape[:3]
    assert list(dataset.test_images()) == ["BRATS_002"]
    chosen = open_dataset("msd", msd_mri, modalities=["T1gd"], label_map={3: 1})
    assert chosen.class_names == ("background", "enhancing tumour")
    enhancing = chosen.load("BRATS_001")
    assert np.array_equal(enhancing.image[..., 0], case.image[..., 2])
    assert np.array_equal(enhancing.label, (case.label == 3).astype(np.uint8))


def test_msd_single_channel_task_has_3d_images(tmp_path):
    root = tmp_path / "Task90_Kidney"
    assert make_phantoms(["msd", str(root), "--cases", "2", "--kind", "ct"]) == 0
    dataset = open_dataset("msd", root)
    assert dataset.modalities == ("CT",) and dataset.class_names == ("background", "kidney", "tumour")
    source = nib.load(root / "imagesTr" / "kidney_000.nii.gz")
    assert len(source.shape) == 3
    assert dataset.load("kidney_000").image.shape == source.shape + (1,)


def test_msd_refusals_name_the_file(msd_mri, tmp_path):
    root = copy_of(msd_mri, tmp_path)
    (root / "labelsTr" / "BRATS_001.nii.gz").unlink()
    with pytest.raises(DataError, match=r"labelsTr/BRATS_001\.nii\.gz: file not found \(listed in dataset.json"):
        open_dataset("msd", root)
    edit_description(root, modality={"0": "FLAIR", "1": "T1w"})  # the files hold four channels
    with pytest.raises(DataError, match=r"BRATS_000\.nii\.gz: expected a 4-D volume of 2 channels"):
        open_dataset("msd", root, exclude=["BRATS_001"]).load("BRATS_000")
    edit_description(root, training=[{"image": "./imagesTr/BRATS_000.nrrd", "label": "./labelsTr/BRATS_000.nrrd"}])
    with pytest.raises(DataError, match=r"dataset\.json: training\[0\]\.image: '\./imagesTr/BRATS_000\.nrrd' is not"):
        open_dataset("msd", root)
    edit_description(root, training=["./imagesTr/BRATS_000.nii.gz"])
    with pytest.raises(DataError, match=r"dataset\.json: training\[0\]: expected"):
        open_dataset("msd", root)
    edit_description(root, labels={"0": "background", "1": "edema"}, training=[])
    with pytest.raises(DataError, match=r"dataset\.json: training: lists no case"):
        open_dataset("msd", root)


def test_make_phantoms_kind_only_for_generic_layouts(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_code:
        make_phantoms(["kits19", str(tmp_path / "k"), "--kind", "mri"])
    assert exit_code.value.code == 2 and "--kind: only for nnunet and msd" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
