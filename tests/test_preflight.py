"""Preflight: every case verified before the first write, verified files remembered, folds against cases."""

import os

import numpy as np
import pytest

from pipeline import experiment
from pipeline.config import load_config
from pipeline.data import open_dataset
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine
from pipeline.data.phantoms import write_kits19
from pipeline.data.verify import record_path, verify_dataset
from pipeline.errors import ConfigError, DataError


@pytest.fixture
def phantoms(tmp_path):
    root = tmp_path / "kits19"
    write_kits19(root, 3, seed=2, size="demo")
    return root


def test_verified_cases_are_remembered_and_changed_ones_read_again(tmp_path, phantoms, monkeypatch):
    dataset = open_dataset("kits19", phantoms, exclude=())
    reads = []
    load = dataset.load
    monkeypatch.setattr(dataset, "load", lambda case_id: reads.append(case_id) or load(case_id))

    assert verify_dataset(dataset, tmp_path / "cache", progress=False) == 3
    assert sorted(reads) == ["case_00000", "case_00001", "case_00002"]
    assert verify_dataset(dataset, tmp_path / "cache", progress=False) == 0  # nothing read again
    assert len(reads) == 3

    mask = phantoms / "case_00001" / "segmentation.nii.gz"
    os.utime(mask, ns=(mask.stat().st_atime_ns, mask.stat().st_mtime_ns + 10**9))
    assert verify_dataset(dataset, tmp_path / "cache", progress=False) == 1
    assert reads[3:] == ["case_00001"]


def test_a_bad_case_is_named_and_nothing_is_remembered(tmp_path, phantoms):
    label = np.zeros((24, 96, 96), np.uint8)
    label[3, 3, 3] = 7
    write_nifti(phantoms / "case_00002" / "segmentation.nii.gz", label, kits19_affine((4.0, 3.0, 3.0)))
    dataset = open_dataset("kits19", phantoms, exclude=())
    with pytest.raises(DataError) as error:
        verify_dataset(dataset, tmp_path / "cache", progress=False)
    assert "case_00002" in error.value.path
    assert not record_path(dataset, tmp_path / "cache").exists()
    assert not (tmp_path / "cache").exists()


def test_the_first_bad_case_in_order_is_reported(tmp_path, phantoms):
    for case in ("case_00001", "case_00002"):
        (phantoms / case / "imaging.nii.gz").write_text("not a NIfTI file")
    dataset = open_dataset("kits19", phantoms, exclude=())
    with pytest.raises(DataError) as error:
        verify_dataset(dataset, None, workers=2, progress=False)
    assert "case_00001" in error.value.path


def test_more_folds_than_cases_is_a_config_error_before_any_write(tmp_path, phantoms):
    config = load_config(
        "configs/demo_dice.yaml",
        [
            f"experiment.output_root={tmp_path / 'runs'}",
            f"data.root={phantoms}",
            f"preprocessing.cache_dir={tmp_path / 'cache'}",
            f"cross_validation.splits_file={tmp_path / 'splits.json'}",
            "cross_validation.folds=4",
        ],
    )
    with pytest.raises(ConfigError, match="cross_validation.folds: 4 folds need at least 4 cases") as error:
        experiment.run_experiment(config)
    assert str(phantoms) in str(error.value)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["kits19"]
