"""The pipeline in 2D end to end: phantoms -> run-experiment -> compare-losses for the three 2D layouts.

Metrics are recomputed here from the written PNG predictions and the
publisher's mask files, read with Pillow directly (not through the readers).
"""

import csv

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import pipeline.experiment as experiment
from pipeline.config import load_config
from pipeline.data.phantoms import write_bus2017, write_cvc, write_drive
from pipeline.errors import ConfigError
from pipeline.evaluation.compare import main as compare_losses

#: Each layout exercises other 2D paths: sliding windows over RGB frames (CVC),
#: grey conversion, augmentation and the field of view (DRIVE), resizing to a
#: fixed grid and back, with deep supervision and a NIfTI copy of each PNG (BUS2017).
LAYOUTS = {
    "cvc": (
        write_cvc,
        ["sampling.patch_shape=[32, 32]", "inference.overlap=[16, 16]", "preprocessing.target_shape=null"],
    ),
    "drive": (
        write_drive,
        [
            "sampling.patch_shape=[64, 64]",
            "inference.overlap=[32, 32]",
            "preprocessing.target_shape=null",
            "augmentation.enabled=true",
            "data.color=grey",
        ],
    ),
    "bus2017": (
        write_bus2017,
        [
            "preprocessing.target_shape=[32, 48]",
            "sampling.patch_shape=[32, 48]",
            "model.deep_supervision=true",
            "model.deep_supervision_heads=1",
            "inference.write_nifti=true",
        ],
    ),
}
#: Losses trained per layout: one suffices for compare-losses' tables and figures; two give its paired tests.
LOSSES = {"cvc": ("dice",), "drive": ("focal",), "bus2017": ("dice", "focal")}


def tiny_config(tmp_path, dataset, root, loss, overrides):
    return load_config(
        f"configs/demo2d_{loss}.yaml",
        [
            f"experiment.name={dataset}_{loss}",
            f"experiment.output_root={tmp_path / 'runs'}",
            f"data.dataset={dataset}",
            f"data.root={root}",
            "data.color=null",
            f"preprocessing.cache_dir={tmp_path / 'cache'}",
            f"cross_validation.splits_file={tmp_path / dataset}.json",
            "cross_validation.folds=2",
            "sampling.batch_size=2",
            "sampling.batches_per_epoch=2",
            "sampling.val_batches=1",
            "model.n_filters=2",
            "model.depth=2",
            "training.epochs=1",
            *overrides,
        ],
    )


def published_files(dataset, root, case_id):
    """(image, mask, field of view or None) where the publisher puts them."""
    if dataset == "cvc":
        return root / "Original" / f"{case_id}.tif", root / "Ground Truth" / f"{case_id}.tif", None
    if dataset == "bus2017":
        return root / "original" / f"{case_id}.png", root / "GT" / f"{case_id}.png", None
    number, subset = case_id.split("_")
    folder = root / subset
    return (
        folder / "images" / f"{case_id}.tif",
        folder / "1st_manual" / f"{number}_manual1.gif",
        folder / "mask" / f"{case_id}_mask.gif",
    )


def scores(truth, prediction):
    tp, fp, fn = (int(np.sum(a & b)) for a, b in ((truth, prediction), (~truth, prediction), (truth, ~prediction)))
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    return 2 * tp / (2 * tp + fp + fn), tp / (tp + fp) if tp + fp else 0.0, tp / (tp + fn) if tp + fn else 0.0


@pytest.mark.slow
def test_three_layouts_end_to_end(tmp_path):
    for dataset, (write, overrides) in LAYOUTS.items():
        root = tmp_path / "data" / dataset
        write(root, 4, seed=5)
        run_dirs = []
        for loss in LOSSES[dataset]:
            config = tiny_config(tmp_path, dataset, root, loss, overrides)
            assert experiment.run_experiment(config) is not None
            run_dirs.append(config.run_dir)

        for run_dir in run_dirs:
            with open(run_dir / "metrics.csv", newline="") as handle:
                rows = list(csv.DictReader(handle))
            assert len(rows) == 4
            for row in rows:
                image, mask, fov = published_files(dataset, root, row["case"])
                prediction = np.asarray(
                    Image.open(run_dir / f"fold_{row['fold']}" / "predictions" / f"{row['case']}.png")
                )
                assert prediction.shape == Image.open(image).size[::-1]  # the original image's size
                assert set(np.unique(prediction)) <= {0, 255}
                if dataset == "bus2017":  # the NIfTI copy asked for holds the same labels
                    copy = nib.load(run_dir / f"fold_{row['fold']}" / "predictions_nifti" / f"{row['case']}.nii.gz")
                    np.testing.assert_array_equal(np.asarray(copy.dataobj), prediction // 255)
                truth, predicted = np.asarray(Image.open(mask).convert("L")) > 0, prediction > 0
                if fov is not None:  # DRIVE: scored inside the field of view, cleared outside
                    inside = np.asarray(Image.open(fov).convert("L")) > 0
                    assert not predicted[~inside].any()
                    truth, predicted = truth[inside], predicted[inside]
                expected = scores(truth, predicted)
                written = tuple(float(row[metric]) for metric in ("dsc", "precision", "recall"))
                np.testing.assert_allclose(written, expected, atol=1e-9)

        out = tmp_path / "results" / dataset
        assert compare_losses([*map(str, run_dirs), "--out", str(out), "--cases", rows[0]["case"]]) == 0
        assert (out / "performance.md").is_file() and (out / "dsc_distribution.png").is_file()
        assert (out / "pvalues_lesion.md").is_file() == (dataset == "bus2017")
        figure = Image.open(out / f"case_{rows[0]['case']}.png")
        assert figure.format == "PNG" and figure.size[0] > 400


def test_patch_dimensions_must_match_the_data(tmp_path):
    root = tmp_path / "bus2017"
    write_bus2017(root, 2, seed=0)
    overrides = ["sampling.patch_shape=[8, 32, 48]", "inference.overlap=null", "preprocessing.target_shape=null"]
    config = tiny_config(tmp_path, "bus2017", root, "dice", overrides)
    with pytest.raises(ConfigError, match=r"sampling.patch_shape: \[8, 32, 48\] has 3 axes, but bus2017 images"):
        experiment.run_experiment(config)
    assert not (tmp_path / "runs").exists()
