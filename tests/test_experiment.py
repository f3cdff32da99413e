"""run-experiment end to end on KiTS19 phantoms with a tiny model: outputs, geometry, resume, splits, CLI."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest

import pipeline.experiment as experiment
from pipeline.config import load_config
from pipeline.data.phantoms import write_kits19
from pipeline.errors import ConfigError, DataError
from pipeline.evaluation.metrics import read_metrics_csv
from pipeline.runner_cli import main
from pipeline.training.cross_validation import load_or_create_splits, make_splits
from pipeline.training.train import train_fold
from tiny_runs import tiny_kits19_overrides

CASES = 4


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "kits19"
    write_kits19(root, CASES, seed=1, size="demo")
    return root


def tiny_config(tmp_path, phantoms, name="tiny", *overrides):
    return load_config(
        "configs/demo_dice.yaml",
        [
            f"experiment.name={name}",
            *tiny_kits19_overrides(tmp_path / "runs", phantoms, tmp_path / "cache", epochs=2),
            *overrides,
        ],
    )


class Interrupt(Exception):
    pass


@pytest.mark.slow
def test_one_fold_then_the_other_then_metrics(tmp_path, phantoms, caplog):
    config = tiny_config(tmp_path, phantoms)
    with caplog.at_level(logging.INFO):
        assert experiment.run_experiment(config, folds=[0]) is None
    run_dir = config.run_dir
    assert "folds 1 not done" in caplog.text
    assert "fold 1/2 (" in caplog.text and "training left" in caplog.text  # fold header and ETA
    splits = json.loads((run_dir / "splits.json").read_text())
    fold_dir = run_dir / "fold_0"
    assert json.loads((fold_dir / "done.json").read_text())["epochs"] == 2
    assert len((fold_dir / "log.csv").read_text().splitlines()) == 3
    assert not (run_dir / "metrics.csv").exists()

    for case_id in splits[0]["val"]:  # predictions on the published grid, with the published affine
        prediction = nib.load(fold_dir / "predictions" / f"{case_id}.nii.gz")
        source = nib.load(phantoms / case_id / "imaging.nii.gz")
        assert prediction.shape == source.shape
        np.testing.assert_allclose(prediction.affine, source.affine)
        assert prediction.get_data_dtype() == np.uint8
        assert set(np.unique(np.asarray(prediction.dataobj))) <= {0, 1, 2}
    rows = read_metrics_csv(fold_dir / "metrics.csv")
    assert {(row["case"], row["class"]) for row in rows} == {
        (case_id, name) for case_id in splits[0]["val"] for name in ("kidney", "tumour", "kidney_and_tumour")
    }

    caplog.clear()
    with caplog.at_level(logging.INFO):
        experiment.run_experiment(config, folds=[0])
    assert "fold 1/2 (" in caplog.text and "done, skipped" in caplog.text
    summary = experiment.run_experiment(config, folds=[1])
    rows = read_metrics_csv(run_dir / "metrics.csv")
    assert sorted({row["case"] for row in rows}) == sorted(splits[0]["val"] + splits[1]["val"])
    assert {row["fold"] for row in rows if row["case"] in splits[1]["val"]} == {1}
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert summary["kidney"]["cases"] == CASES
    kidney = [row["dsc"] for row in rows if row["class"] == "kidney"]
    assert summary["kidney"]["dsc"] == pytest.approx(np.mean(kidney))


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_metrics(tmp_path, phantoms, monkeypatch):
    import tensorflow as tf

    class InterruptSecondEpoch(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise Interrupt

    straight = tiny_config(tmp_path, phantoms, "straight")
    experiment.run_experiment(straight, folds=[0])

    resumed = tiny_config(tmp_path, phantoms, "resumed")
    monkeypatch.setattr(
        experiment,
        "train_fold",
        lambda *args, callbacks=(), **kwargs: train_fold(
            *args, callbacks=[*callbacks, InterruptSecondEpoch()], **kwargs
        ),
    )
    with pytest.raises(Interrupt):
        experiment.run_experiment(resumed, folds=[0])
    assert not (resumed.run_dir / "fold_0" / "done.json").exists()
    monkeypatch.undo()
    experiment.run_experiment(resumed, folds=[0])

    for name in ("metrics.csv", "log.csv"):
        assert (resumed.run_dir / "fold_0" / name).read_text() == (straight.run_dir / "fold_0" / name).read_text()


def test_a_run_folder_refuses_another_config(tmp_path, phantoms):
    config = tiny_config(tmp_path, phantoms)
    experiment._claim_run_dir(config.run_dir, config)
    experiment._claim_run_dir(config.run_dir, config)  # the same config is welcome
    changed = tiny_config(tmp_path, phantoms, "tiny", "training.epochs=3", "model.n_filters=4")
    with pytest.raises(ConfigError, match="model.n_filters, training.epochs"):
        experiment._claim_run_dir(changed.run_dir, changed)


def test_fold_out_of_range_is_refused_before_any_work(tmp_path, phantoms):
    config = tiny_config(tmp_path, phantoms)
    with pytest.raises(ConfigError, match="--fold 2"):
        experiment.run_experiment(config, folds=[2])
    assert not config.run_dir.exists()


def test_splits_partition_the_cases_and_are_reused(tmp_path):
    cases = [f"case_{i:05d}" for i in range(11)]
    splits = make_splits(cases, 5, seed=0)
    assert sorted(case for fold in splits for case in fold["val"]) == cases
    assert all(sorted(fold["train"] + fold["val"]) == cases for fold in splits)
    assert sorted(len(fold["val"]) for fold in splits) == [2, 2, 2, 2, 3]
    assert make_splits(cases, 5, seed=0) == splits and make_splits(cases, 5, seed=1) != splits

    path = tmp_path / "splits.json"
    assert load_or_create_splits(path, cases, 5, seed=0) == splits
    assert load_or_create_splits(path, cases, 5, seed=99) == splits  # reused, not redrawn
    with pytest.raises(DataError, match="no fold validates cases case_00011"):
        load_or_create_splits(path, cases + ["case_00011"], 5, seed=0)
    with pytest.raises(DataError, match="has 5 folds"):
        load_or_create_splits(path, cases, 4, seed=0)
    path.write_text("{")
    with pytest.raises(DataError, match="not a readable JSON"):
        load_or_create_splits(path, cases, 5, seed=0)


def test_shared_splits_file_is_copied_into_the_run(tmp_path, phantoms):
    shared = tmp_path / "group_splits.json"
    config = tiny_config(tmp_path, phantoms, "tiny", f"cross_validation.splits_file={shared}")
    cases = [f"case_{i:05d}" for i in range(CASES)]
    splits = experiment._splits(config, cases)
    assert json.loads(shared.read_text()) == splits == json.loads((config.run_dir / "splits.json").read_text())
    shared.write_text(json.dumps(make_splits(cases, 2, seed=5)))
    with pytest.raises(DataError, match="differs from the shared splits file"):
        experiment._splits(config, cases)


def test_command_line_prints_the_run_dir_and_reports_errors_in_one_line(tmp_path, capsys):
    assert main(["configs/demo_dice.yaml", "--print-run-dir", "--set", f"experiment.output_root={tmp_path}"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "demo_dice")
    with pytest.raises(SystemExit) as exit_info:
        main(["configs/demo_dice.yaml", "--set", "training.epochs=0"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "training.epochs:" in error and "configs/demo_dice.yaml" in error
