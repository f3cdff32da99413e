"""run-experiment --plan: the resolved data set, preprocessing, model and folds, from headers alone, writing nothing."""

import os

import nibabel as nib
import numpy as np
import pytest

import pipeline.data.nifti
from pipeline.config import load_config
from pipeline.data.phantoms import write_nnunet
from pipeline.plan import experiment_plan
from pipeline.runner_cli import main

CASES = 5
TARGET = (6.0, 5.0, 5.0)


@pytest.fixture(scope="module")
def nnunet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "Dataset900_Kidney"
    write_nnunet(root, CASES, seed=7, kind="ct")
    return root


def overrides(tmp_path, root):
    return [
        "data.dataset=nnunet",
        f"data.root={root}",
        "data.exclude=[kidney_004]",
        f"experiment.output_root={tmp_path / 'runs'}",
        f"preprocessing.cache_dir={tmp_path / 'cache'}",
        f"cross_validation.splits_file={tmp_path / 'shared' / 'splits.json'}",
        "cross_validation.folds=2",
        f"preprocessing.target_spacing={list(TARGET)}",
        "sampling.patch_shape=[8, 32, 32]",
        "inference.overlap=[4, 16, 16]",
        "model.n_filters=4",
        "model.depth=2",
    ]


def listing(*folders):
    return sorted((str(path), path.stat().st_mtime_ns) for folder in folders for path in folder.rglob("*"))


def test_plan_reports_the_resolved_experiment_and_writes_nothing(tmp_path, nnunet_root, capsys):
    arguments = ["configs/demo_dice.yaml", "--plan"]
    for override in overrides(tmp_path, nnunet_root):
        arguments += ["--set", override]
    before = listing(tmp_path, nnunet_root)
    assert main(arguments) == 0
    assert listing(tmp_path, nnunet_root) == before  # no run folder, cache, splits file
    assert not any(os.scandir(tmp_path))
    printed = capsys.readouterr().out
    assert "data set     nnunet at" in printed and "4 used; 1 excluded (kidney_004)" in printed
    assert "classes    background, kidney, tumour (3)" in printed and "channels   CT (1)" in printed
    assert "2, validation cases per fold [2, 2]" in printed and "(to be written, seed 0)" in printed
    assert f"resampled to {' x '.join(map(str, TARGET))} mm" in printed
    assert "1 unlabelled test case(s)" in printed and "cases are padded" not in printed


def test_plan_says_when_the_patch_exceeds_the_median_size(tmp_path, nnunet_root, capsys):
    arguments = ["configs/demo_dice.yaml", "--plan", "--set", "sampling.patch_shape=[32, 32, 32]"]
    for override in overrides(tmp_path, nnunet_root):
        if not override.startswith(("sampling.", "inference.", "model.")):
            arguments += ["--set", override]
    assert main(arguments + ["--set", "model.depth=2", "--set", "inference.overlap=[16, 16, 16]"]) == 0
    assert "larger than the median size along axis 0: cases are padded" in capsys.readouterr().out


def test_plan_figures_match_the_headers(tmp_path, nnunet_root, monkeypatch):
    def no_voxels(*_):
        raise AssertionError("the plan read voxel data")

    monkeypatch.setattr(pipeline.data.nifti, "_voxels", no_voxels)
    config = load_config("configs/demo_dice.yaml", overrides(tmp_path, nnunet_root))
    plan = experiment_plan(config)
    headers = [nib.load(nnunet_root / "imagesTr" / f"kidney_{number:03d}_0000.nii.gz") for number in range(4)]
    shapes = np.array([header.shape for header in headers])
    spacings = np.array([header.header.get_zooms() for header in headers], dtype=float)
    resampled = np.array(
        [[round(n * s / t) for n, s, t in zip(shape, spacing, TARGET)] for shape, spacing in zip(shapes, spacings)]
    )
    assert plan["data"]["cases"] == 4 and plan["data"]["excluded"] == ["kidney_004"] and plan["data"]["test_cases"] == 1
    np.testing.assert_allclose(plan["data"]["median_spacing"], np.median(spacings, axis=0), atol=1e-3)
    np.testing.assert_allclose(plan["data"]["median_shape"], np.median(shapes, axis=0))
    np.testing.assert_allclose(plan["preprocessing"]["median_shape"], np.median(resampled, axis=0))
    np.testing.assert_allclose(
        plan["preprocessing"]["patch_fraction"], np.array([8, 32, 32]) / np.median(resampled, axis=0), atol=0.01
    )
    assert plan["preprocessing"]["cached_cases"] == 0
    # MIScnn's standard U-Net, depth 2, 4/8/16 filters, counted by hand: 3x3x3 convolutions (in, out) each
    # with batch norm (4 numbers per channel), 2x2x2 up-convolutions 16->8 and 8->4, the 1x1x1 softmax head.
    convolutions = [(1, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16), (8 + 8, 8), (8, 8), (4 + 4, 4), (4, 4)]
    parameters = sum(27 * cin * cout + cout + 4 * cout for cin, cout in convolutions)
    parameters += (8 * 16 * 8 + 8) + (8 * 8 * 4 + 4) + (4 * 3 + 3)
    assert plan["model"]["parameters"] == parameters
    assert 0 < plan["model"]["memory_gib"] < 1


def test_plan_of_a_sweep_shows_every_member_and_writes_nothing(tmp_path, nnunet_root, capsys):
    arguments = ["configs/demo_dice.yaml", "--plan", "--sweep", "model.n_filters=4,8"]
    for override in overrides(tmp_path, nnunet_root):
        arguments += ["--set", override]
    before = listing(tmp_path, nnunet_root)
    assert main(arguments) == 0
    assert listing(tmp_path, nnunet_root) == before
    assert not any(os.scandir(tmp_path))
    printed = capsys.readouterr().out
    assert "sweep 1/2: demo_dice_n_filters-4\n" in printed and "sweep 2/2: demo_dice_n_filters-8\n" in printed
    assert printed.count("data set     nnunet at") == 2


def test_plan_says_what_it_counts_when_empty_masks_are_kept_or_excluded(tmp_path, nnunet_root, capsys):
    """Kept empty masks are not reported as '0 without a foreground voxel'; excluded ones are counted as such."""
    arguments = ["configs/demo_dice.yaml", "--plan"]
    for override in overrides(tmp_path, nnunet_root):
        arguments += ["--set", override]
    assert main(arguments) == 0
    kept = capsys.readouterr().out
    assert "cases with an empty mask kept (data.exclude_without_label: false)" in kept
    assert "foreground voxel" not in kept and "0 skipped for want of a mask" in kept
    assert main(arguments + ["--set", "data.exclude_without_label=true"]) == 0
    excluded = capsys.readouterr().out
    assert "0 excluded for an empty mask (no foreground voxel)" in excluded and "kept" not in excluded
