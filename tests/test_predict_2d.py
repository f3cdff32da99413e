"""``predict`` on 2D images: a CVC-ClinicDB model segments new PNG and TIFF frames at their own sizes."""

import json

import numpy as np
import pytest
from PIL import Image

from pipeline.config import load_config
from pipeline.data.image_files import read_label_png
from pipeline.data.phantoms import write_cvc
from pipeline.experiment import run_experiment
from pipeline.inference.predict import find_inputs, main as predict_main


@pytest.fixture(scope="module")
def cvc_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("predict2d")
    write_cvc(tmp_path / "cvc", 4, seed=2)
    config = load_config(
        "configs/demo2d_dice.yaml",
        [
            "experiment.name=cvc_dice",
            f"experiment.output_root={tmp_path / 'runs'}",
            "data.dataset=cvc",
            f"data.root={tmp_path / 'cvc'}",
            "data.color=null",
            f"preprocessing.cache_dir={tmp_path / 'cache'}",
            "cross_validation.splits_file=null",
            "cross_validation.folds=2",
            "sampling.batch_size=2",
            "sampling.batches_per_epoch=2",
            "sampling.val_batches=1",
            "model.n_filters=2",
            "model.depth=2",
            "training.epochs=1",
            "sampling.patch_shape=[32, 32]",
            "inference.overlap=[16, 16]",
            "preprocessing.target_shape=null",
        ],
    )
    run_experiment(config)
    return config.run_dir, tmp_path / "cvc"


def frame(rng, height, width):
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.slow
def test_new_png_and_tiff_frames_are_predicted_at_their_sizes(cvc_run, tmp_path):
    run_dir, _ = cvc_run
    rng = np.random.default_rng(0)
    inputs = tmp_path / "new"
    inputs.mkdir()
    Image.fromarray(frame(rng, 40, 56)).save(inputs / "a.png")
    Image.fromarray(frame(rng, 36, 50)).save(inputs / "b.tif")
    assert (
        predict_main([str(run_dir), "-i", str(inputs), "-o", str(tmp_path / "out"), "--mirror", "--save-probabilities"])
        == 0
    )
    for case_id, shape in (("a", (40, 56)), ("b", (36, 50))):
        png = np.asarray(Image.open(tmp_path / "out" / f"{case_id}.png"))
        assert png.shape == shape and set(np.unique(png).tolist()) <= {0, 255}
        probabilities = np.load(tmp_path / "out" / f"{case_id}.npz")["probabilities"]
        assert probabilities.shape == (2, *shape) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.argmax(probabilities, axis=0), png // 255)
    record = json.loads((tmp_path / "out" / "predict.json").read_text())
    assert (
        record["flips"] == 4 and record["folds"] == [0, 1] and [case["case"] for case in record["cases"]] == ["a", "b"]
    )


@pytest.mark.slow
def test_the_run_layout_as_input_reproduces_the_runs_own_predictions(cvc_run, tmp_path):
    """A fold's model on the data set root (CVC's Original/) gives the label maps run-experiment wrote."""
    run_dir, root = cvc_run
    splits = json.loads((run_dir / "splits.json").read_text())
    for fold in (0, 1):
        out = tmp_path / f"fold_{fold}"
        assert predict_main([str(run_dir), "-i", str(root), "-o", str(out), "--folds", str(fold)]) == 0
        assert sorted(path.stem for path in out.glob("*.png")) == sorted(["1", "2", "3", "4"])
        for case_id in splits[fold]["val"]:
            np.testing.assert_array_equal(
                read_label_png(out / f"{case_id}.png"),
                read_label_png(run_dir / f"fold_{fold}" / "predictions" / f"{case_id}.png"),
            )


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, expected",
    [
        ("grey", "a grey image, but the run's model was trained on colour cvc images"),
        ("pages", "holds 2 images (a multi-page file)"),
        ("nifti", "NIfTI volumes, but the run's model is 2D (cvc"),
        ("empty", "no PNG or TIFF images, and the run's model is 2D"),
    ],
)
def test_images_the_model_cannot_take_are_refused_in_one_line(cvc_run, tmp_path, capsys, kind, expected):
    run_dir, _ = cvc_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(1)
    if kind == "grey":
        Image.fromarray(frame(rng, 20, 20)[..., 0]).save(inputs / "grey.png")
    elif kind == "pages":
        Image.fromarray(frame(rng, 20, 20)).save(
            inputs / "pages.tif", save_all=True, append_images=[Image.fromarray(frame(rng, 20, 20))]
        )
    elif kind == "nifti":
        (inputs / "case.nii.gz").write_bytes(b"")
    with pytest.raises(SystemExit) as caught:
        predict_main([str(run_dir), "-i", str(inputs), "-o", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert caught.value.code == 2 and expected in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_3d_model_refuses_2d_images(tmp_path):
    config = load_config("configs/demo_dice.yaml")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "slice.png")
    from pipeline.errors import DataError

    with pytest.raises(DataError, match="2D images, but the run's model is 3D"):
        find_inputs(tmp_path, config)


def test_a_drive_root_gives_every_image_with_its_field_of_view(tmp_path):
    from pipeline.data.phantoms import write_drive

    write_drive(tmp_path / "drive", 4, seed=0)
    config = load_config("configs/drive_dice.yaml", [f"data.root={tmp_path / 'drive'}"])
    cases = find_inputs(tmp_path / "drive", config)
    assert [case.case_id for case in cases] == ["01_test", "02_test", "21_training", "22_training"]
    assert all(case.field_of_view.name == f"{case.case_id}_mask.gif" for case in cases)
    unrestricted = load_config(
        "configs/drive_dice.yaml", [f"data.root={tmp_path / 'drive'}", "data.restrict_to_fov=false"]
    )
    assert all(case.field_of_view is None for case in find_inputs(tmp_path / "drive", unrestricted))
