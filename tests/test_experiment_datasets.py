"""The whole pipeline on an nnU-Net v2 data set, a four-channel Decathlon task and MIScnn's own NIFTI_interface."""

import nibabel as nib
import numpy as np
import pytest
from test_experiment import tiny_config

from pipeline.data.phantoms import write_kits19, write_msd, write_nnunet
from pipeline.evaluation.metrics import read_metrics_csv
from pipeline.experiment import run_experiment

LAYOUTS = {
    # layout: (writer, config overrides, classes scored, image file of a case)
    "nnunet": (
        lambda root: write_nnunet(root, 4, seed=1, kind="ct"),
        ["data.dataset=nnunet"],
        {"kidney", "tumour", "kidney_and_tumour"},
        "imagesTr/{}_0000.nii.gz",
    ),
    "msd": (
        lambda root: write_msd(root, 4, seed=1, kind="mri"),
        [
            "data.dataset=msd",
            "data.modalities=[T1gd, FLAIR]",
            "data.label_map={3: 1}",
            "preprocessing.clip=null",
            "preprocessing.normalization=zscore_nonzero",
            "evaluation.regions={}",
        ],
        {"enhancing tumour"},
        "imagesTr/{}.nii.gz",
    ),
    "miscnn": (
        lambda root: write_kits19(root, 4, seed=1),
        [
            "data.dataset=miscnn",
            "data.exclude=null",
            "data.interface={class: miscnn.data_loading.interfaces.NIFTI_interface, args: {classes: 3}}",
        ],
        {"class_1", "class_2", "kidney_and_tumour"},
        "{}/imaging.nii.gz",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_a_fold_trains_predicts_and_scores_in_the_original_geometry(tmp_path, layout):
    write, overrides, classes, image_file = LAYOUTS[layout]
    root = tmp_path / "data"
    write(root)
    config = tiny_config(tmp_path, root, layout, *overrides)
    run_experiment(config, folds=[0])
    fold_dir = config.run_dir / "fold_0"
    rows = read_metrics_csv(fold_dir / "metrics.csv")
    val_cases = sorted({row["case"] for row in rows})
    assert len(val_cases) == 2 and {row["class"] for row in rows} == classes
    assert all(0.0 <= row["dsc"] <= 1.0 for row in rows)
    for case_id in val_cases:
        prediction = nib.load(fold_dir / "predictions" / f"{case_id}.nii.gz")
        source = nib.load(root / image_file.format(case_id))
        assert prediction.shape == source.shape[:3]
        np.testing.assert_allclose(prediction.affine, source.affine)
        assert prediction.header.get_zooms() == pytest.approx(source.header.get_zooms()[:3])
        assert prediction.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(prediction.dataobj))) <= set(range(len(classes) + 1))
