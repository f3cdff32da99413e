"""Per-case DSC, precision and recall, including the empty-mask conventions."""

import json

import numpy as np
import pytest

from pipeline.evaluation.metrics import (
    Scores,
    confusion_matrix,
    read_metrics_csv,
    score_case,
    write_metrics_csv,
    write_summary_json,
)

NAMES = ("background", "kidney", "tumour")


def test_counts_match_a_hand_computed_case():
    truth = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    prediction = np.array([1, 1, 1, 0, 2, 1, 0, 2])
    scores = score_case(truth, prediction, NAMES)
    # kidney: TP 2, FP 2 (voxels 0 and 5), FN 1 (voxel 3)
    assert scores["kidney"] == pytest.approx(Scores(dsc=4 / 7, precision=2 / 4, recall=2 / 3))
    # tumour: TP 1, FP 1 (voxel 7), FN 1 (voxel 5)
    assert scores["tumour"] == pytest.approx(Scores(dsc=2 / 4, precision=1 / 2, recall=1 / 2))


def test_composite_region_scores_the_union_of_labels():
    truth = np.array([0, 1, 1, 1, 2, 2, 0, 0])
    prediction = np.array([1, 1, 1, 0, 2, 1, 0, 2])
    scores = score_case(truth, prediction, NAMES, regions={"kidney_and_tumour": [1, 2]})
    # label > 0: truth {1..5}, prediction {0,1,2,4,5,7}: TP 4, FP 2, FN 1
    assert scores["kidney_and_tumour"] == pytest.approx(Scores(8 / 11, 4 / 6, 4 / 5))
    assert list(scores) == ["kidney", "tumour", "kidney_and_tumour"]


def test_both_empty_scores_one():
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[0, 0, 0] = 1
    scores = score_case(labels, labels, NAMES)
    assert scores["tumour"] == Scores(1.0, 1.0, 1.0)
    assert scores["kidney"] == Scores(1.0, 1.0, 1.0)


def test_missed_structure_scores_zero():
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[1:3, 1:3, 1:3] = 2
    scores = score_case(truth, np.zeros_like(truth), NAMES)
    assert scores["tumour"] == Scores(0.0, 0.0, 0.0)


def test_hallucinated_structure_scores_zero():
    prediction = np.zeros((4, 4, 4), np.uint8)
    prediction[0, 0, 0] = 2
    scores = score_case(np.zeros_like(prediction), prediction, NAMES)
    assert scores["tumour"] == Scores(0.0, 0.0, 0.0)


def test_confusion_matrix_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros(3, int), np.zeros(4, int), 3)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_region_with_background_or_clashing_name_is_refused():
    labels = np.zeros(4, int)
    with pytest.raises(ValueError, match="not foreground"):
        score_case(labels, labels, NAMES, regions={"all": [0, 1]})
    with pytest.raises(ValueError, match="also a class"):
        score_case(labels, labels, NAMES, regions={"kidney": [1, 2]})


def test_metrics_csv_round_trip_and_summary(tmp_path):
    def row(case, fold, name, scores):  # the columns of runs scored before counts were kept
        return {
            "case": case,
            "fold": fold,
            "class": name,
            "dsc": scores.dsc,
            "precision": scores.precision,
            "recall": scores.recall,
        }

    rows = [
        row("case_00001", 0, "kidney", Scores(0.5, 0.25, 1.0)),
        row("case_00001", 0, "tumour", Scores(1, 1, 1)),
        row("case_00002", 1, "kidney", Scores(1.0, 0.75, 0.0)),
        row("case_00002", 1, "tumour", Scores(0, 0, 0)),
    ]
    write_metrics_csv(tmp_path / "metrics.csv", rows)
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "case,fold,class,dsc,precision,recall"
    assert read_metrics_csv(tmp_path / "metrics.csv") == rows
    summary = write_summary_json(tmp_path / "summary.json", rows)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["kidney"] == {"dsc": 0.75, "precision": 0.5, "recall": 0.5, "cases": 2}
    assert summary["tumour"]["dsc"] == 0.5
    assert not list(tmp_path.glob(".*tmp*"))


def test_confusion_matrix_counts_in_chunks(monkeypatch):
    import pipeline.evaluation.metrics as metrics

    rng = np.random.default_rng(0)
    truth, prediction = rng.integers(0, 3, (10, 10, 10)), rng.integers(0, 3, (10, 10, 10))
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (truth.ravel(), prediction.ravel()), 1)
    monkeypatch.setattr(metrics, "CHUNK_VOXELS", 7)  # 143 passes, the last one partial
    np.testing.assert_array_equal(confusion_matrix(truth, prediction, 3), expected)
