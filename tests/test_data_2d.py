"""2D readers (CVC-ClinicDB, DRIVE, BUS2017): layouts, encodings, colour, field of view, bad input."""

import numpy as np
import pytest
from PIL import Image

from pipeline.data import open_dataset
from pipeline.data.image_files import read_binary_mask, read_image
from pipeline.data.phantoms import main as make_phantoms
from pipeline.data.phantoms import write_bus2017, write_cvc, write_drive
from pipeline.errors import ConfigError, DataError


def save(path, array, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path, **options)


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms2d")
    write_cvc(root / "cvc", 3, seed=2)
    write_drive(root / "drive", 4, seed=2)
    write_bus2017(root / "bus2017", 3, seed=2)
    return root


@pytest.mark.parametrize("encoding, suffix", [(1, ".png"), (255, ".png"), (255, ".tif"), (255, ".gif"), (1, ".tif")])
def test_binary_masks_from_every_encoding(tmp_path, encoding, suffix):
    truth = np.zeros((7, 9), np.uint8)
    truth[2:5, 3:8] = 1
    path = tmp_path / f"mask{suffix}"
    save(path, truth * encoding)
    np.testing.assert_array_equal(read_binary_mask(path), truth)


def test_rgb_masks_with_equal_channels_and_palette_gifs(tmp_path):
    truth = np.zeros((6, 5), np.uint8)
    truth[1:4, 2:4] = 1
    save(tmp_path / "rgb.tif", np.repeat(truth[..., None] * 255, 3, axis=-1))
    np.testing.assert_array_equal(read_binary_mask(tmp_path / "rgb.tif"), truth)
    palette = Image.fromarray(truth, mode="P")
    palette.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    palette.save(tmp_path / "palette.gif")
    np.testing.assert_array_equal(read_binary_mask(tmp_path / "palette.gif"), truth)


@pytest.mark.parametrize(
    "values, message",
    [
        ((0, 128, 255), "not a binary encoding"),
        ((0, 1, 255), "not a binary encoding"),
        ((0, 2), "not a binary encoding"),
    ],
)
def test_masks_outside_the_binary_encodings_name_the_file(tmp_path, values, message):
    mask = np.zeros((4, 4), np.uint8)
    mask.flat[: len(values)] = values
    save(tmp_path / "mask.png", mask)
    with pytest.raises(DataError, match=message) as error:
        read_binary_mask(tmp_path / "mask.png")
    assert str(tmp_path / "mask.png") in str(error.value) and "\n" not in str(error.value)


def test_images_rgb_and_grey(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    save(tmp_path / "rgb.tif", rgb)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.tif", "rgb"), rgb.astype(np.float32))
    grey = read_image(tmp_path / "rgb.tif", "grey")
    luma = rgb @ np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as Pillow's "L"
    assert grey.shape == (5, 6, 1) and np.abs(grey[..., 0] - luma).max() <= 1.0
    save(tmp_path / "grey.png", rgb[..., 0])
    as_rgb = read_image(tmp_path / "grey.png", "rgb")
    assert as_rgb.shape == (5, 6, 3) and (as_rgb == rgb[..., :1].astype(np.float32)).all()


def test_layouts_as_published(phantoms):
    cvc = open_dataset("cvc", phantoms / "cvc")
    assert cvc.case_ids() == ["1", "2", "3"] and cvc.class_names == ("background", "polyp")
    case = cvc.load("2")
    assert case.image.shape == (72, 96, 3) and case.label.shape == (72, 96) and set(np.unique(case.label)) == {0, 1}
    assert cvc.source_files("2")[1] == phantoms / "cvc" / "Ground Truth" / "2.tif"

    drive = open_dataset("drive", phantoms / "drive")
    assert drive.case_ids() == ["01_test", "02_test", "21_training", "22_training"]
    assert drive.load("21_training").image.shape == (146, 141, 3)
    fov = drive.scoring_mask("01_test")
    assert fov.dtype == bool and 0.3 < fov.mean() < 0.9
    assert drive.load("01_test").label[~fov].sum() == 0
    assert open_dataset("drive", phantoms / "drive", restrict_to_fov=False).scoring_mask("01_test") is None

    bus = open_dataset("bus2017", phantoms / "bus2017")
    assert bus.case_ids() == ["000001", "000002", "000003"]
    shapes = {bus.load(case_id).image.shape for case_id in bus.case_ids()}
    assert len(shapes) > 1 and all(shape[-1] == 1 for shape in shapes)  # sizes vary, grey
    assert open_dataset("bus2017", phantoms / "bus2017", color="rgb").load("000001").image.shape[-1] == 3


def test_copies_with_tif_and_png_folders_and_drive_without_test_manuals(phantoms, tmp_path):
    copy = tmp_path / "CVC-ClinicDB"
    for folder in ("Original", "Ground Truth"):
        for path in (phantoms / "cvc" / folder).iterdir():
            save(copy / "PNG" / folder / f"{path.stem}.png", np.asarray(Image.open(path)))
    dataset = open_dataset("cvc", copy)
    np.testing.assert_array_equal(dataset.load("3").image, open_dataset("cvc", phantoms / "cvc").load("3").image)

    challenge = tmp_path / "DRIVE"
    write_drive(challenge, 4, seed=2)
    for path in (challenge / "test" / "1st_manual").iterdir():
        path.unlink()
    (challenge / "test" / "1st_manual").rmdir()
    dataset = open_dataset("drive", challenge)
    assert dataset.case_ids() == ["21_training", "22_training"]
    assert dataset.skipped_without_mask == ["01_test", "02_test"]


def test_exclusions_and_options(phantoms):
    assert open_dataset("cvc", phantoms / "cvc", exclude=[2]).case_ids() == ["1", "3"]
    assert open_dataset("drive", phantoms / "drive", exclude=[1, "22_training"]).case_ids() == [
        "02_test",
        "21_training",
    ]
    with pytest.raises(ConfigError, match="color"):
        open_dataset("bus2017", phantoms / "bus2017", color="cmyk")
    with pytest.raises(ConfigError, match="restrict_to_fov"):
        open_dataset("cvc", phantoms / "cvc", restrict_to_fov=True)


def corrupt(dataset_root, name):
    """Break one file of a copied data set; return the path that the error must name."""
    if name == "unreadable image":
        path = dataset_root / "original" / "000002.png"
        path.write_bytes(path.read_bytes()[:60])
    elif name == "mask size":
        path = dataset_root / "GT" / "000002.png"
        save(path, np.zeros((10, 12), np.uint8))
    elif name == "mask values":
        path = dataset_root / "GT" / "000003.png"
        mask = np.asarray(Image.open(path)).copy()
        mask[0, 0] = 7
        save(path, mask)
    else:  # image without a mask
        (dataset_root / "GT" / "000001.png").unlink()
        path = dataset_root / "original" / "000001.png"
    return path


@pytest.mark.parametrize("problem", ["unreadable image", "mask size", "mask values", "image without a mask"])
def test_bad_input_names_the_file(phantoms, tmp_path, problem):
    import shutil

    root = tmp_path / "BUS"
    shutil.copytree(phantoms / "bus2017", root)
    bad = corrupt(root, problem)
    with pytest.raises(DataError) as error:
        open_dataset("bus2017", root)
    assert str(error.value).startswith(f"{bad}: ") and "\n" not in str(error.value)


def test_make_phantoms_writes_the_three_layouts(tmp_path, capsys):
    for name in ("cvc", "drive", "bus2017"):
        assert make_phantoms([name, str(tmp_path / name), "--cases", "2", "--seed", "3"]) == 0
    assert (tmp_path / "cvc" / "Ground Truth" / "2.tif").is_file()
    assert (tmp_path / "drive" / "test" / "mask" / "01_test_mask.gif").is_file()
    assert (tmp_path / "drive" / "test" / "2nd_manual" / "01_manual2.gif").is_file()
    assert (tmp_path / "bus2017" / "GT" / "000002.png").is_file()
    assert Image.open(tmp_path / "cvc" / "Original" / "1.tif").mode == "RGB"
    assert Image.open(tmp_path / "bus2017" / "original" / "000001.png").mode == "L"
    with pytest.raises(SystemExit) as exit_info:
        make_phantoms(["drive", str(tmp_path / "more"), "--cases", "41"])
    assert exit_info.value.code == 2 and "40 images" in capsys.readouterr().err
