"""``predict``: geometry and header of the outputs, the fold ensemble, mirroring, bad inputs; and the runner agrees.

Most tests use a run folder made without training (config.yaml and a
randomly initialised best_model.h5 per fold: all ``predict`` reads); one slow
test trains a fold and checks that ``predict`` and ``evaluate`` reproduce what
``run-experiment`` wrote.
"""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from test_experiment import tiny_config

from pipeline.config import load_config
from pipeline.data.phantoms import write_kits19
from pipeline.inference import predict as predict_module
from pipeline.inference.predict import ensemble_predictor, flips, main

CASES = 2


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "kits19"
    write_kits19(root, CASES, seed=3, size="demo")
    for path in root.glob("*/imaging.nii.gz"):  # headers a viewer cares about, unlike nibabel's defaults
        image = nib.load(path)
        header = image.header.copy()
        header.set_qform(image.affine, code=1)
        header.set_sform(image.affine, code=4)
        header["descrip"] = b"phantom scanner"
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj), image.affine, header), path)
    return root


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory, phantoms):
    """A run folder with config.yaml and two folds of differently initialised weights."""
    import tensorflow as tf

    from pipeline.atomic_files import write_atomically
    from pipeline.training.train import build_model

    tmp_path = tmp_path_factory.mktemp("run")
    config = tiny_config(tmp_path, phantoms)
    write_atomically(config.run_dir / "config.yaml", config.to_yaml())
    for fold in range(2):
        tf.keras.utils.set_random_seed(fold)
        path = config.run_dir / f"fold_{fold}" / "checkpoints" / "best_model.h5"
        path.parent.mkdir(parents=True)
        build_model(config.model, 1, 3, len(config.sampling.patch_shape)).save_weights(path)
    return config.run_dir


def flat_inputs(phantoms, folder, names=("{case}_0000.nii.gz",)):
    """The phantom images as a plain folder, one file per channel name pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    for case_folder in sorted(phantoms.iterdir()):
        for pattern in names:
            shutil.copy(case_folder / "imaging.nii.gz", folder / pattern.format(case=case_folder.name))
    return folder


@pytest.mark.slow
def test_predictions_keep_the_input_geometry_and_header(untrained_run, phantoms, tmp_path):
    out = tmp_path / "out"
    main([str(untrained_run), "-i", str(phantoms), "-o", str(out), "--save-probabilities"])
    for case_folder in sorted(phantoms.iterdir()):
        source = nib.load(case_folder / "imaging.nii.gz")
        prediction = nib.load(out / f"{case_folder.name}.nii.gz")
        assert prediction.shape == source.shape
        np.testing.assert_array_equal(prediction.affine, source.affine)
        for key in ("qform_code", "sform_code", "descrip", "pixdim", "xyzt_units", "quatern_b", "srow_x"):
            np.testing.assert_array_equal(prediction.header[key], source.header[key], err_msg=key)
        assert (int(prediction.header["qform_code"]), int(prediction.header["sform_code"])) == (1, 4)
        assert prediction.get_data_dtype() == np.uint8
        labels = np.asarray(prediction.dataobj)
        probabilities = np.load(out / f"{case_folder.name}.npz")["probabilities"]
        assert probabilities.shape == (3, *source.shape) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
        np.testing.assert_array_equal(np.argmax(probabilities, axis=0), labels)
    record = json.loads((out / "predict.json").read_text())
    assert record["folds"] == [0, 1] and record["mirror"] is False and len(record["cases"]) == CASES


@pytest.mark.slow
def test_the_ensemble_is_the_mean_of_the_single_folds(untrained_run, phantoms, tmp_path):
    inputs = flat_inputs(phantoms, tmp_path / "inputs")  # nnU-Net naming, one channel
    probabilities = {}
    for folds in (["0"], ["1"], ["0", "1"]):
        out = tmp_path / f"out_{'_'.join(folds)}"
        main([str(untrained_run), "-i", str(inputs), "-o", str(out), "--folds", *folds, "--save-probabilities"])
        probabilities[len(folds), folds[0]] = np.load(out / "case_00000.npz")["probabilities"]
    single_0, single_1, ensemble = probabilities[1, "0"], probabilities[1, "1"], probabilities[2, "0"]
    assert np.abs(single_0 - single_1).max() > 1e-3  # the folds really differ
    np.testing.assert_allclose(ensemble, (single_0 + single_1) / 2, atol=2e-6)


def test_mirroring_averages_every_flip_exactly(untrained_run):
    import tensorflow as tf

    config = load_config(untrained_run / "config.yaml")
    models = predict_module.fold_models(untrained_run, config, [0, 1])
    networks = predict_module.load_models(config, models)
    assert sorted(flips(3, True)) == sorted([(), (1,), (2,), (3,), (1, 2), (1, 3), (2, 3), (1, 2, 3)])
    assert flips(2, True) == [(), (1,), (2,), (1, 2)] and flips(3, False) == [()]
    batch = np.random.default_rng(0).normal(size=(2, 8, 32, 32, 1)).astype(np.float32)
    expected = np.zeros((2, 8, 32, 32, 3))
    for network in networks:
        for axes in flips(3, True):
            flipped = np.flip(batch, axes) if axes else batch
            output = network(tf.constant(np.ascontiguousarray(flipped)), training=False).numpy()
            expected += np.flip(output, axes) if axes else output
    expected /= 16
    mirrored = ensemble_predictor(networks, (8, 32, 32), 1, 2, mirror=True)(batch)
    np.testing.assert_allclose(mirrored, expected, atol=1e-6)
    plain = ensemble_predictor(networks, (8, 32, 32), 1, 2, mirror=False)(batch)
    assert np.abs(plain - mirrored).max() > 1e-4  # the networks are not flip-invariant: the flips matter


def _fails_cleanly(capsys, argv, *expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    for text in expected:
        assert text in error[0]


def test_bad_inputs_fail_in_one_line_and_write_nothing(untrained_run, phantoms, tmp_path, capsys):
    out = tmp_path / "out"
    inputs = flat_inputs(phantoms, tmp_path / "inputs")
    _fails_cleanly(capsys, [str(tmp_path / "no_run"), "-i", str(inputs), "-o", str(out)], "no_run", "run folder")
    _fails_cleanly(
        capsys, [str(untrained_run), "-i", str(inputs), "-o", str(out), "--folds", "2"], "--folds 2", "out of range"
    )
    _fails_cleanly(capsys, [str(untrained_run), "-i", str(tmp_path / "none"), "-o", str(out)], "none", "not found")
    _fails_cleanly(capsys, [str(untrained_run), "-i", str(inputs), "-o", str(inputs)], "input folder")

    incomplete = tmp_path / "incomplete"
    shutil.copytree(untrained_run, incomplete)
    (incomplete / "fold_1" / "checkpoints" / "best_model.h5").unlink()
    _fails_cleanly(
        capsys,
        [str(incomplete), "-i", str(inputs), "-o", str(out)],
        "fold_1/checkpoints/best_model.h5",
        "no trained model",
    )
    (incomplete / "fold_1" / "checkpoints" / "best_model.h5").write_bytes(b"not hdf5")
    _fails_cleanly(capsys, [str(incomplete), "-i", str(inputs), "-o", str(out)], "not a readable Keras weights")

    two_channels = flat_inputs(phantoms, tmp_path / "two_channels", ("{case}_0000.nii.gz", "{case}_0001.nii.gz"))
    _fails_cleanly(
        capsys,
        [str(untrained_run), "-i", str(two_channels), "-o", str(out)],
        "has 2 channel(s), but the run's model takes 1",
    )
    (two_channels / "case_00001_0000.nii.gz").unlink()
    _fails_cleanly(
        capsys, [str(untrained_run), "-i", str(two_channels), "-o", str(out)], "case_00001_0000.nii.gz", "missing"
    )

    truncated = inputs / "case_00001_0000.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[:-2000])
    _fails_cleanly(capsys, [str(untrained_run), "-i", str(inputs), "-o", str(out)], "case_00001_0000.nii.gz")
    assert not out.exists()


@pytest.mark.slow
def test_predict_and_evaluate_reproduce_the_runner(tmp_path, phantoms):
    """A trained fold: ``predict`` from the raw scans gives the runner's label maps (preprocessing as in
    training), and ``evaluate`` on them gives the runner's metrics.csv, equal to today's in-memory scores."""
    import pipeline.experiment as experiment
    from pipeline.data import open_dataset
    from pipeline.evaluation import evaluate
    from pipeline.evaluation.metrics import read_metrics_csv, score_case

    config = tiny_config(tmp_path, phantoms, "trained")
    experiment.run_experiment(config, folds=[0])
    fold_dir = config.run_dir / "fold_0"
    runner_rows = read_metrics_csv(fold_dir / "metrics.csv")

    evaluate.main(
        [
            str(fold_dir / "predictions"),
            str(phantoms),
            "--classes",
            "kidney",
            "tumour",
            "--regions",
            "kidney_and_tumour=1,2",
            "--out",
            str(tmp_path / "evaluated.csv"),
        ]
    )
    assert read_metrics_csv(tmp_path / "evaluated.csv") == runner_rows
    dataset = open_dataset("kits19", phantoms, exclude=[])
    for row in runner_rows:
        labels = np.asarray(nib.load(fold_dir / "predictions" / f"{row['case']}.nii.gz").dataobj)
        scores = score_case(
            dataset.load_segmentation(row["case"]), labels, dataset.class_names, {"kidney_and_tumour": [1, 2]}
        )[row["class"]]
        assert (row["dsc"], row["precision"], row["recall"]) == (scores.dsc, scores.precision, scores.recall)

    main([str(config.run_dir), "-i", str(phantoms), "-o", str(tmp_path / "predicted"), "--folds", "0"])
    for path in (fold_dir / "predictions").glob("*.nii.gz"):
        np.testing.assert_array_equal(
            np.asarray(nib.load(tmp_path / "predicted" / path.name).dataobj), np.asarray(nib.load(path).dataobj)
        )


@pytest.mark.slow
def test_a_four_dimensional_image_equals_one_file_per_channel(tmp_path, phantoms):
    """Decathlon images hold every channel in one 4-D file, in imagesTs/ of the data set root."""
    import tensorflow as tf

    from pipeline.atomic_files import write_atomically
    from pipeline.training.train import build_model

    config = tiny_config(tmp_path, phantoms, "two_channels")
    write_atomically(config.run_dir / "config.yaml", config.to_yaml())
    tf.keras.utils.set_random_seed(0)
    (config.run_dir / "fold_0" / "checkpoints").mkdir(parents=True)
    build_model(config.model, 2, 3).save_weights(config.run_dir / "fold_0" / "checkpoints" / "best_model.h5")
    separate = flat_inputs(phantoms, tmp_path / "separate", ("{case}_0000.nii.gz", "{case}_0001.nii.gz"))
    (tmp_path / "msd" / "imagesTs").mkdir(parents=True)
    for case_folder in sorted(phantoms.iterdir()):
        image = nib.load(case_folder / "imaging.nii.gz")
        data = np.asarray(image.dataobj)
        nib.save(
            nib.Nifti1Image(np.stack([data, data[::-1]], axis=-1), image.affine),
            tmp_path / "msd" / "imagesTs" / f"{case_folder.name}.nii.gz",
        )
        nib.save(nib.Nifti1Image(data[::-1], image.affine), separate / f"{case_folder.name}_0001.nii.gz")
    (tmp_path / "msd" / "imagesTs" / "._case_00000.nii.gz").write_bytes(b"macOS resource fork")
    main([str(config.run_dir), "-i", str(tmp_path / "msd"), "-o", str(tmp_path / "from_4d"), "--folds", "0"])
    main([str(config.run_dir), "-i", str(separate), "-o", str(tmp_path / "from_files"), "--folds", "0"])
    for case_folder in sorted(phantoms.iterdir()):
        from_4d = nib.load(tmp_path / "from_4d" / f"{case_folder.name}.nii.gz")
        from_files = nib.load(tmp_path / "from_files" / f"{case_folder.name}.nii.gz")
        assert from_4d.shape == nib.load(case_folder / "imaging.nii.gz").shape
        np.testing.assert_array_equal(from_4d.affine, from_files.affine)
        np.testing.assert_array_equal(np.asarray(from_4d.dataobj), np.asarray(from_files.dataobj))


def test_tolerances_must_name_every_class_before_training(tmp_path, phantoms):
    import pipeline.experiment as experiment
    from pipeline.errors import ConfigError

    config = tiny_config(tmp_path, phantoms, "tolerance", "evaluation.nsd_tolerance_mm={kidney: 1.0}")
    with pytest.raises(ConfigError, match="no tolerance for tumour, kidney_and_tumour"):
        experiment.run_experiment(config, folds=[0])
    assert not config.run_dir.exists()


def test_channels_and_classes_are_read_from_every_architectures_weights(tmp_path):
    """predict rebuilds the model from the config; the weights say how many channels and classes it had."""
    from pipeline.training.model import ARCHITECTURES, build_unet

    for architecture in ARCHITECTURES:
        path = tmp_path / f"{architecture}.h5"
        build_unet(
            2,
            4,
            n_filters=32 if architecture == "multires" else 4,
            depth=2,
            architecture=architecture,
            deep_supervision=True,
            deep_supervision_heads=1,
        ).save_weights(path)
        kernels = predict_module.weight_shapes(path)
        assert (kernels[0][-2], kernels[-1][-1]) == (2, 4), architecture
