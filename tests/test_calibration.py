"""Calibration (ECE, Brier, NLL) against an independent NumPy computation; from a run and from predict's files."""

import csv
import json

import numpy as np
import pytest

import pipeline.evaluation.calibration as calibration
from tiny_runs import tiny_kits19_overrides
from pipeline.evaluation.calibration import case_calibration

NAMES = ("background", "kidney", "tumour")


def softmax_maps(rng, shape, classes):
    logits = rng.normal(0.0, 2.0, (classes, *shape))
    exp = np.exp(logits - logits.max(axis=0))
    return (exp / exp.sum(axis=0)).astype(np.float32)


def reference_ece(confidence, hits, bins=15):
    """Guo et al.'s ECE written out: bins ((m-1)/M, m/M], a loop over the bins."""
    confidence, hits = confidence.astype(np.float64).ravel(), hits.astype(np.float64).ravel()
    total = 0.0
    for m in range(1, bins + 1):
        low, high = (m - 1) / bins, m / bins
        inside = (confidence > low) & (confidence <= high) if m > 1 else (confidence <= high)
        if inside.any():
            total += inside.sum() / confidence.size * abs(hits[inside].mean() - confidence[inside].mean())
    return total


def reference_rows(probabilities, labels, names, regions=None):
    """Every row of calibration.csv, from the definitions (SPEC section 5), on all voxels at once."""
    p = probabilities.astype(np.float64)
    one_hot = np.stack([labels == c for c in range(p.shape[0])]).astype(np.float64)
    eps = 1e-7
    rows = {
        "all": dict(
            ece=reference_ece(p.max(axis=0), p.argmax(axis=0) == labels),
            brier=np.mean(np.sum((p - one_hot) ** 2, axis=0)),
            nll=np.mean(-np.log(np.maximum(np.take_along_axis(p, labels[None].astype(int), 0)[0], eps))),
        )
    }
    structures = {name: [c] for c, name in enumerate(names) if c > 0}
    structures.update(regions or {})
    for name, members in structures.items():
        q, y = p[members].sum(axis=0), np.isin(labels, members)
        clipped = np.clip(q, eps, 1 - eps)
        rows[name] = dict(
            ece=reference_ece(q, y),
            brier=np.mean((q - y) ** 2),
            nll=np.mean(-(y * np.log(clipped) + (~y) * np.log(1 - clipped))),
        )
    return rows


def as_dict(rows):
    return {row["class"]: {key: row[key] for key in ("ece", "brier", "nll")} for row in rows}


@pytest.mark.parametrize(
    "shape, names, regions",
    [
        ((6, 9, 11), NAMES, {"kidney_and_tumour": [1, 2]}),  # 3D multiclass with a region
        ((6, 9, 11), ("background", "tumour"), None),  # 3D binary
        ((17, 23), NAMES, None),  # 2D multiclass
        ((17, 23), ("background", "polyp"), None),  # 2D binary
    ],
)
def test_rows_equal_an_independent_numpy_computation(shape, names, regions):
    rng = np.random.default_rng(len(shape) * 10 + len(names))
    probabilities = softmax_maps(rng, shape, len(names))
    labels = rng.integers(0, len(names), shape)
    rows = as_dict(case_calibration(probabilities, labels, names, regions).rows())
    expected = reference_rows(probabilities, labels, names, regions)
    assert list(rows) == list(expected)
    for name in expected:
        tolerance = 1e-6 if name in (regions or {}) else 1e-9  # a region's probabilities are summed in float32
        for metric in ("ece", "brier", "nll"):
            assert rows[name][metric] == pytest.approx(expected[name][metric], abs=tolerance), (name, metric)


def test_a_hand_computed_case():
    """Four voxels, two classes: p(fg) = 0.9, 0.6, 0.2, 0.05 against y = 1, 0, 0, 1."""
    foreground = np.array([0.9, 0.6, 0.2, 0.05], np.float32)
    probabilities = np.stack([1 - foreground, foreground])
    labels = np.array([1, 0, 0, 1])
    rows = as_dict(case_calibration(probabilities, labels, ("background", "lesion")).rows())
    # top label: confidences 0.9 (right), 0.6 (wrong), 0.8 (right), 0.95 (wrong), each alone in its bin
    assert rows["all"]["ece"] == pytest.approx((0.1 + 0.6 + 0.2 + 0.95) / 4, abs=1e-6)
    # foreground class-wise: bins of 0.9 (hit), 0.6 (miss), 0.2 (miss), 0.05 (hit)
    assert rows["lesion"]["ece"] == pytest.approx((0.1 + 0.6 + 0.2 + 0.95) / 4, abs=1e-6)
    assert rows["lesion"]["brier"] == pytest.approx((0.01 + 0.36 + 0.04 + 0.9025) / 4, abs=1e-6)
    assert rows["all"]["brier"] == pytest.approx(2 * rows["lesion"]["brier"], abs=1e-6)  # two classes: twice
    assert rows["all"]["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.4, 0.8, 0.05])), abs=1e-6)
    assert rows["lesion"]["nll"] == pytest.approx(rows["all"]["nll"], abs=1e-6)  # binary: the same log loss


def test_slabs_give_the_whole_volumes_numbers_and_the_region_mask_restricts(monkeypatch):
    rng = np.random.default_rng(4)
    probabilities = softmax_maps(rng, (8, 10, 12), 3)
    labels = rng.integers(0, 3, (8, 10, 12))
    whole = as_dict(case_calibration(probabilities, labels, NAMES, {"both": [1, 2]}).rows())
    monkeypatch.setattr(calibration, "SLAB_VOXELS", 7)  # one slice of 120 voxels per slab
    slabs = as_dict(case_calibration(probabilities, labels, NAMES, {"both": [1, 2]}).rows())
    assert list(slabs) == list(whole)
    for name in whole:
        assert slabs[name] == pytest.approx(whole[name], abs=1e-12)
    mask = rng.random((8, 10, 12)) > 0.5
    masked = as_dict(case_calibration(probabilities, labels, NAMES, region_mask=mask).rows())
    expected = reference_rows(probabilities[:, mask], labels[mask], NAMES)
    for name in expected:
        assert masked[name]["ece"] == pytest.approx(expected[name]["ece"], abs=1e-9)
        assert masked[name]["nll"] == pytest.approx(expected[name]["nll"], abs=1e-9)


def test_npz_files_are_read_one_class_at_a_time_to_the_same_numbers(tmp_path):
    from pipeline.inference.predict import probability_writer

    rng = np.random.default_rng(7)
    probabilities = softmax_maps(rng, (5, 6, 7), 3)
    labels = rng.integers(0, 3, (5, 6, 7))
    with probability_writer(tmp_path / "case.npz", 3, (5, 6, 7)) as add:
        for label in range(3):
            add(label, probabilities[label])
    np.testing.assert_array_equal(np.load(tmp_path / "case.npz")["probabilities"], probabilities)
    from_file = calibration.file_calibration(tmp_path / "case.npz", labels, NAMES).rows()
    assert from_file == case_calibration(probabilities, labels, NAMES).rows()


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory):
    """Tiny 2-fold Dice and Focal runs on four KiTS19 phantoms, one split."""
    from pipeline.config import load_config
    from pipeline.data.phantoms import write_kits19
    from pipeline.experiment import run_experiment

    tmp_path = tmp_path_factory.mktemp("calibration")
    write_kits19(tmp_path / "kits19", 4, seed=1, size="demo")
    runs = {}
    for loss in ("dice", "focal"):
        config = load_config(
            f"configs/demo_{loss}.yaml",
            tiny_kits19_overrides(
                tmp_path / "runs",
                tmp_path / "kits19",
                tmp_path / "cache",
                epochs=1,
                splits_file=tmp_path / "splits.json",
            ),
        )
        run_experiment(config)
        runs[loss] = config.run_dir
    return tmp_path, runs


@pytest.mark.slow
def test_a_runs_calibration_equals_numpy_on_predicts_saved_probabilities(finished_runs, tmp_path):
    """Done-when: ECE, Brier and NLL from run-experiment equal, within 1e-6, plain NumPy on the .npz files
    that `predict --save-probabilities` writes with each fold's model for its validation cases."""
    import nibabel as nib

    from pipeline.evaluation.evaluate import main as evaluate_main
    from pipeline.inference.predict import main as predict_main

    data, runs = finished_runs
    run_dir = runs["dice"]
    rows = read_rows(run_dir / "calibration.csv")
    assert [row["class"] for row in rows[:4]] == ["all", "kidney", "tumour", "kidney_and_tumour"]
    assert len(read_rows(run_dir / "calibration_bins.csv")) == 4 * 15
    splits = json.loads((run_dir / "splits.json").read_text())
    for fold, split in enumerate(splits):
        inputs = tmp_path / f"inputs_{fold}"
        inputs.mkdir()
        for case_id in split["val"]:
            (inputs / f"{case_id}.nii.gz").symlink_to(data / "kits19" / case_id / "imaging.nii.gz")
        out = tmp_path / f"predicted_{fold}"
        assert (
            predict_main(
                [str(run_dir), "-i", str(inputs), "-o", str(out), "--folds", str(fold), "--save-probabilities"]
            )
            == 0
        )
        for case_id in split["val"]:
            probabilities = np.load(out / f"{case_id}.npz")["probabilities"]
            labels = np.asarray(nib.load(data / "kits19" / case_id / "segmentation.nii.gz").dataobj)
            expected = reference_rows(probabilities, labels, NAMES, {"kidney_and_tumour": [1, 2]})
            for row in (row for row in rows if row["case"] == case_id):
                for metric in ("ece", "brier", "nll"):
                    assert float(row[metric]) == pytest.approx(expected[row["class"]][metric], abs=1e-6)
        # evaluate --probabilities computes the same rows from the files
        references = tmp_path / f"references_{fold}"
        references.mkdir()
        for case_id in split["val"]:
            (references / f"{case_id}.nii.gz").symlink_to(data / "kits19" / case_id / "segmentation.nii.gz")
        assert (
            evaluate_main(
                [
                    str(out),
                    str(references),
                    "--classes",
                    "kidney",
                    "tumour",
                    "--regions",
                    "kidney_and_tumour=1,2",
                    "--fold",
                    str(fold),
                    "--probabilities",
                ]
            )
            == 0
        )
        evaluated = read_rows(out / "calibration.csv")
        ran = [row for row in rows if row["fold"] == str(fold)]
        assert [(row["case"], row["class"]) for row in evaluated] == [(row["case"], row["class"]) for row in ran]
        for mine, theirs in zip(evaluated, ran):
            for metric in ("ece", "brier", "nll"):
                assert float(mine[metric]) == pytest.approx(float(theirs[metric]), abs=1e-6)


@pytest.mark.slow
def test_compare_losses_tests_calibration_and_draws_a_reliability_diagram(finished_runs, tmp_path, capsys):
    from pipeline.evaluation.compare import main as compare_main
    from pipeline.evaluation.runs import check_metric, load_runs

    _, runs = finished_runs
    loaded = load_runs([runs["dice"], runs["focal"]])
    check_metric(loaded, "nll")
    for run in loaded:  # the scores' nll is calibration.csv's, row by row; its 'all' rows stay out
        expected = {(row["case"], row["class"]): float(row["nll"]) for row in read_rows(run.path / "calibration.csv")}
        assert {
            (case, name): value for case, name, value in run.scores[["case", "class", "nll"]].itertuples(index=False)
        } == {key: value for key, value in expected.items() if key[1] != "all"}
    assert compare_main([str(runs["dice"]), str(runs["focal"]), "--metric", "ece", "--out", str(tmp_path / "out")]) == 0
    performance = (tmp_path / "out" / "performance.md").read_text()
    assert "ECE" in performance and (tmp_path / "out" / "pvalues_ece_kidney.csv").is_file()
    assert (tmp_path / "out" / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    moved = tmp_path / "moved_focal"
    import shutil

    shutil.copytree(runs["focal"], moved)
    (moved / "calibration.csv").unlink()
    with pytest.raises(SystemExit) as caught:
        compare_main([str(runs["dice"]), str(moved), "--metric", "brier", "--out", str(tmp_path / "refused")])
    error = capsys.readouterr().err
    assert caught.value.code == 2 and "calibration.csv: missing" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "refused").exists()


def test_a_missing_or_mismatched_probability_file_is_one_data_error(tmp_path):
    from pipeline.errors import DataError
    from pipeline.inference.predict import probability_writer

    labels = np.zeros((4, 5, 6), np.uint8)
    with pytest.raises(DataError, match="missing: no probabilities"):
        calibration.file_calibration(tmp_path / "absent.npz", labels, NAMES)
    with probability_writer(tmp_path / "small.npz", 3, (4, 5, 5)) as add:
        for label in range(3):
            add(label, np.full((4, 5, 5), 1 / 3, np.float32))
    with pytest.raises(
        DataError, match=r"probabilities of shape \(3, 4, 5, 5\), but 3 classes on the reference's grid"
    ):
        calibration.file_calibration(tmp_path / "small.npz", labels, NAMES)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DataError, match="not a predict --save-probabilities file"):
        calibration.file_calibration(tmp_path / "text.npz", labels, NAMES)
