"""make-phantoms: the publishers' layouts, realistic content, determinism, clean failures."""

import nibabel as nib
import numpy as np
import pytest

from pipeline.data.phantoms import main, write_brats20, write_kits19


def _array(path):
    return np.asanyarray(nib.load(path).dataobj)


def test_kits19_layout_dtypes_and_orientation(tmp_path):
    assert main(["kits19", str(tmp_path), "--cases", "3", "--seed", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_00000", "case_00001", "case_00002"]
    spacings = set()
    for folder in tmp_path.iterdir():
        image = nib.load(folder / "imaging.nii.gz")
        label = _array(folder / "segmentation.nii.gz")
        assert image.get_data_dtype() == np.int16 and label.dtype == np.uint8
        assert nib.aff2axcodes(image.affine) == ("I", "P", "L")  # KiTS19: (slices, H, W)
        slice_mm, row_mm, column_mm = image.header.get_zooms()
        assert 3 <= slice_mm <= 5 and 2.5 <= row_mm == column_mm <= 3.5
        assert 24 <= image.shape[0] <= 40 and image.shape[1:] == (96, 96)
        spacings.add(float(slice_mm))
        hu = np.asanyarray(image.dataobj)
        assert hu.min() < -900 and hu.max() > 600  # air and bone
        assert set(np.unique(label)) == {0, 1, 2}
        assert 0.002 < np.mean(label == 1) < 0.03 and 0 < np.mean(label == 2) < 0.01
        kidney_hu = np.median(hu[label == 1])
        tumour_hu = np.median(hu[label == 2])
        assert 110 < kidney_hu < 220 and 0 < tumour_hu < 80  # enhancing kidney, hypodense tumour
    assert len(spacings) == 3  # spacing varies between cases


def test_phantoms_are_a_pure_function_of_seed_and_case(tmp_path):
    write_kits19(tmp_path / "a", 2, seed=5)
    write_kits19(tmp_path / "b", 3, seed=5)
    write_kits19(tmp_path / "c", 1, seed=6)
    for name in ("imaging.nii.gz", "segmentation.nii.gz"):
        for case in ("case_00000", "case_00001"):
            assert np.array_equal(_array(tmp_path / "a" / case / name), _array(tmp_path / "b" / case / name))
    first = _array(tmp_path / "a/case_00000/imaging.nii.gz")
    other_seed = _array(tmp_path / "c/case_00000/imaging.nii.gz")
    assert first.shape != other_seed.shape or not np.array_equal(first, other_seed)


def test_brats20_layout_modalities_and_labels(tmp_path):
    write_brats20(tmp_path, 7, seed=0)
    folders = sorted(tmp_path.iterdir())
    assert folders[0].name == "BraTS20_Training_001" and len(folders) == 7
    without_enhancing = 0
    for folder in folders:
        seg = _array(folder / f"{folder.name}_seg.nii.gz")
        assert set(np.unique(seg)) <= {0, 1, 2, 4}
        volumes = {m: nib.load(folder / f"{folder.name}_{m}.nii.gz") for m in ("flair", "t1", "t1ce", "t2")}
        brain = np.asanyarray(volumes["t1"].dataobj) > 0
        for image in volumes.values():
            assert image.get_data_dtype() == np.int16 and image.shape == seg.shape == (96, 96, 62)
            assert np.array_equal(np.asanyarray(image.dataobj) > 0, brain)  # co-registered, skull-stripped
            assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
        assert not seg[~brain].any()
        if (seg == 4).any():
            t1ce = np.asanyarray(volumes["t1ce"].dataobj)
            assert np.median(t1ce[seg == 4]) > 1.3 * np.median(t1ce[brain & (seg == 0)])  # enhancing rim
            assert np.mean(seg == 4) < 0.01
        else:
            without_enhancing += 1
    assert without_enhancing == 1  # 15 % of 7 cases


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--cases", "0"], "--cases"),
        (["--size", "demo"], "exists and is not a folder"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, arguments, message):
    target = tmp_path / "a_file"
    target.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_info:
        main(["kits19", str(target), *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error
