"""``evaluate PRED_DIR REF_DIR``: scores from files equal the in-memory metrics; layouts, 2D, bad inputs."""

import json

import nibabel as nib
import numpy as np
import pytest

from pipeline.evaluation.evaluate import evaluate_cases, main
from pipeline.evaluation.metrics import CSV_COLUMNS, read_metrics_csv, score_case
from pipeline.evaluation.surface import surface_scores

SPACING = (3.0, 0.8, 0.8)
AFFINE = np.diag([*SPACING, 1.0])
NAMES = ("background", "kidney", "tumour")


def blob_labels(rng, shape=(12, 20, 20)):
    """Two overlapping boxes of random size and position: classes 1 and 2."""
    labels = np.zeros(shape, np.uint8)
    for label in (1, 2):
        start = rng.integers(1, [s // 2 for s in shape])
        size = rng.integers(2, [s // 2 for s in shape])
        labels[tuple(slice(a, a + b) for a, b in zip(start, size))] = label
    return labels


def write(path, labels, affine=AFFINE):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(labels, affine), path)


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    cases = {}
    for index in range(3):
        case_id = f"case_{index:05d}"
        truth, prediction = blob_labels(rng), blob_labels(rng)
        write(tmp_path / "ref" / f"{case_id}.nii.gz", truth)
        write(tmp_path / "pred" / f"{case_id}.nii.gz", prediction)
        cases[case_id] = (truth, prediction)
    return tmp_path, cases


def test_scores_equal_the_in_memory_metrics_and_surface_distances(folders, capsys):
    tmp_path, cases = folders
    main(
        [
            str(tmp_path / "pred"),
            str(tmp_path / "ref"),
            "--classes",
            "kidney",
            "tumour",
            "--regions",
            "kidney_and_tumour=1,2",
            "--nsd-tolerance",
            "1.5",
            "--fold",
            "3",
        ]
    )
    metrics = tmp_path / "pred" / "metrics.csv"
    assert metrics.read_text().splitlines()[0] == ",".join(CSV_COLUMNS)
    rows = read_metrics_csv(metrics)
    assert [(row["case"], row["class"]) for row in rows] == [
        (case_id, name) for case_id in cases for name in ("kidney", "tumour", "kidney_and_tumour")
    ]
    regions = {"kidney_and_tumour": [1, 2]}
    for row in rows:
        truth, prediction = cases[row["case"]]
        in_memory = score_case(truth, prediction, NAMES, regions)[row["class"]]
        assert (row["dsc"], row["precision"], row["recall"]) == pytest.approx(
            (in_memory.dsc, in_memory.precision, in_memory.recall), abs=1e-12
        )
        labels = [1, 2] if row["class"] == "kidney_and_tumour" else [NAMES.index(row["class"])]
        true_mask, predicted_mask = np.isin(truth, labels), np.isin(prediction, labels)
        assert row["tp"] == np.sum(true_mask & predicted_mask)
        assert row["fp"] == np.sum(~true_mask & predicted_mask)
        assert row["fn"] == np.sum(true_mask & ~predicted_mask)
        assert (row["reference_voxels"], row["prediction_voxels"]) == (true_mask.sum(), predicted_mask.sum())
        surface = surface_scores(true_mask, predicted_mask, SPACING, 1.5)
        assert (row["hd95"], row["nsd"], row["nsd_tolerance_mm"]) == pytest.approx((surface.hd95, surface.nsd, 1.5))
        assert row["fold"] == 3
    summary = json.loads((tmp_path / "pred" / "summary.json").read_text())
    kidney = [row for row in rows if row["class"] == "kidney"]
    assert summary["kidney"]["hd95"] == pytest.approx(np.mean([row["hd95"] for row in kidney]))
    assert summary["kidney"]["cases"] == 3
    assert "HD95 (mm)" in capsys.readouterr().out


def test_case_folder_references_and_default_class_names(folders):
    tmp_path, cases = folders
    for case_id, (truth, _) in cases.items():  # the KiTS19 layout: <case>/segmentation.nii.gz beside the image
        write(tmp_path / "kits" / case_id / "segmentation.nii.gz", truth)
        write(tmp_path / "kits" / case_id / "imaging.nii.gz", truth.astype(np.float32))
    out = tmp_path / "scores" / "kits.csv"
    main([str(tmp_path / "pred"), str(tmp_path / "kits"), "--out", str(out)])
    main([str(tmp_path / "pred"), str(tmp_path / "ref"), "--out", str(tmp_path / "scores" / "flat.csv")])
    assert out.read_text() == (tmp_path / "scores" / "flat.csv").read_text()
    assert {row["class"] for row in read_metrics_csv(out)} == {"label_1", "label_2"}
    assert (tmp_path / "scores" / "summary.json").exists()


def test_a_two_dimensional_image_stored_as_nifti_is_scored_in_2d(tmp_path):
    truth = np.zeros((30, 40), np.uint8)
    truth[5:15, 10:30] = 1
    prediction = np.roll(truth, 2, axis=0)
    spacing = (0.5, 0.25)
    affine = np.diag([*spacing, 1.0, 1.0])
    write(tmp_path / "ref" / "image.nii.gz", truth[..., None], affine)
    write(tmp_path / "pred" / "image.nii.gz", prediction[..., None], affine)
    main([str(tmp_path / "pred"), str(tmp_path / "ref"), "--classes", "polyp", "--nsd-tolerance", "0.6"])
    row = read_metrics_csv(tmp_path / "pred" / "metrics.csv")[0]
    expected = surface_scores(truth == 1, prediction == 1, spacing, 0.6)
    assert (row["hd95"], row["nsd"]) == pytest.approx((expected.hd95, expected.nsd))
    assert row["hd95"] == pytest.approx(2 * 0.5)


def test_per_class_tolerances(folders):
    tmp_path, _ = folders
    main(
        [
            str(tmp_path / "pred"),
            str(tmp_path / "ref"),
            "--classes",
            "kidney",
            "tumour",
            "--nsd-tolerance",
            "kidney=1",
            "tumour=4",
        ]
    )
    rows = read_metrics_csv(tmp_path / "pred" / "metrics.csv")
    assert {(row["class"], row["nsd_tolerance_mm"]) for row in rows} == {("kidney", 1.0), ("tumour", 4.0)}


def test_both_empty_and_one_empty_follow_the_conventions(tmp_path):
    empty = np.zeros((6, 8, 10), np.uint8)
    kidney = empty.copy()
    kidney[1:3, 1:3, 1:3] = 1
    write(tmp_path / "ref" / "a.nii.gz", kidney)
    write(tmp_path / "pred" / "a.nii.gz", empty)
    main([str(tmp_path / "pred"), str(tmp_path / "ref"), "--classes", "kidney", "tumour"])
    rows = {row["class"]: row for row in read_metrics_csv(tmp_path / "pred" / "metrics.csv")}
    diagonal = np.sqrt((6 * 3.0) ** 2 + (8 * 0.8) ** 2 + (10 * 0.8) ** 2)
    assert (rows["kidney"]["dsc"], rows["kidney"]["hd95"], rows["kidney"]["nsd"]) == pytest.approx((0, diagonal, 0))
    assert (rows["tumour"]["dsc"], rows["tumour"]["hd95"], rows["tumour"]["nsd"]) == (1.0, 0.0, 1.0)


def _fails_cleanly(capsys, argv, *expected):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    for text in expected:
        assert text in error
    return error


def test_bad_inputs_fail_in_one_line_and_write_nothing(folders, capsys):
    tmp_path, cases = folders
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    before = sorted(path.name for path in pred.iterdir())

    (ref / "case_00002.nii.gz").rename(tmp_path / "moved.nii.gz")
    _fails_cleanly(capsys, [str(pred), str(ref)], "case_00002", "missing reference")
    (tmp_path / "moved.nii.gz").rename(ref / "case_00002.nii.gz")

    write(ref / "case_00001.nii.gz", np.zeros((12, 20, 21), np.uint8))
    _fails_cleanly(capsys, [str(pred), str(ref)], "pred/case_00001.nii.gz", "shape (12, 20, 20) differs")
    write(ref / "case_00001.nii.gz", cases["case_00001"][0], np.diag([3.0, 0.8, 0.9, 1.0]))
    _fails_cleanly(capsys, [str(pred), str(ref)], "case_00001.nii.gz", "affine differs")
    write(ref / "case_00001.nii.gz", cases["case_00001"][0])

    _fails_cleanly(capsys, [str(pred), str(ref), "--classes", "kidney"], "label 2 is not one of the 2 classes")
    _fails_cleanly(
        capsys,
        [str(pred), str(ref), "--classes", "kidney", "tumour", "--nsd-tolerance", "kidney=1"],
        "evaluation.nsd_tolerance_mm",
        "tumour",
    )
    _fails_cleanly(capsys, [str(pred), str(ref), "--classes", "kidney", "--regions", "all=0,1"], "not foreground")
    _fails_cleanly(capsys, [str(tmp_path / "nowhere"), str(ref)], "nowhere", "folder not found")
    (tmp_path / "empty").mkdir()
    _fails_cleanly(capsys, [str(tmp_path / "empty"), str(ref)], "no label maps")
    (pred / "case_00000.nii.gz").write_bytes(b"not a nifti file")
    _fails_cleanly(capsys, [str(pred), str(ref)], "case_00000.nii.gz", "not a readable NIfTI")

    assert sorted(path.name for path in pred.iterdir()) == before  # no metrics.csv, no temporary file
    assert not (tmp_path / "empty" / "metrics.csv").exists()


def test_evaluate_cases_takes_any_reader():
    """The runner's use: label maps from any source, e.g. the data set's masks."""
    from pipeline.evaluation.evaluate import LabelMap

    truth = np.zeros((4, 5), np.uint8)
    truth[1:3, 1:3] = 1
    read = {"a": LabelMap("a.png", truth, (1.0, 1.0)), "b": LabelMap("b.png", np.zeros_like(truth), (1.0, 1.0))}
    rows = evaluate_cases(
        ["a"],
        read_prediction=lambda case: read["b"],
        read_reference=lambda case: read[case],
        class_names=("background", "polyp"),
        nsd_tolerance=1.0,
        fold=2,
    )
    assert rows[0]["case"] == "a" and rows[0]["fold"] == 2 and rows[0]["fn"] == 4 and rows[0]["nsd"] == 0.0


def test_float_label_maps_are_read_if_integral(tmp_path, capsys):
    truth = np.zeros((4, 5, 6), np.float32)
    truth[1:3, 1:3, 1:3] = 1
    write(tmp_path / "ref" / "a.nii.gz", truth)
    write(tmp_path / "pred" / "a.nii.gz", truth.astype(np.uint8))
    main([str(tmp_path / "pred"), str(tmp_path / "ref")])
    assert read_metrics_csv(tmp_path / "pred" / "metrics.csv")[0]["dsc"] == 1.0
    capsys.readouterr()
    write(tmp_path / "ref" / "a.nii.gz", truth * 0.5)
    _fails_cleanly(
        capsys,
        [str(tmp_path / "pred"), str(tmp_path / "ref"), "--out", str(tmp_path / "x.csv")],
        "ref/a.nii.gz",
        "non-integer",
    )
    assert not (tmp_path / "x.csv").exists()


def test_label_map_equals_scoring_the_converted_references(tmp_path):
    """BraTS-style references (labels 1, 2, 4) through --label-map 4=1,1=0,2=0 score as the converted files."""
    rng = np.random.default_rng(3)
    for index in range(3):
        published = np.zeros((10, 16, 16), np.uint8)
        for label in (1, 2, 4):
            start = rng.integers(0, 8, size=3)
            published[start[0] : start[0] + 3, start[1] : start[1] + 6, start[2] : start[2] + 6] = label
        write(tmp_path / "ref" / f"case_{index}.nii.gz", published)
        write(tmp_path / "converted" / f"case_{index}.nii.gz", (published == 4).astype(np.uint8))
        write(tmp_path / "pred" / f"case_{index}.nii.gz", (rng.random((10, 16, 16)) > 0.7).astype(np.uint8))
    assert (
        main(
            [
                str(tmp_path / "pred"),
                str(tmp_path / "ref"),
                "--classes",
                "enhancing_tumour",
                "--label-map",
                "4=1,1=0,2=0",
                "--out",
                str(tmp_path / "mapped.csv"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                str(tmp_path / "pred"),
                str(tmp_path / "converted"),
                "--classes",
                "enhancing_tumour",
                "--out",
                str(tmp_path / "converted.csv"),
            ]
        )
        == 0
    )
    mapped = (tmp_path / "mapped.csv").read_text()
    assert mapped == (tmp_path / "converted.csv").read_text()
    assert any(float(row["dsc"]) > 0 for row in read_metrics_csv(tmp_path / "mapped.csv"))
    # labels the map leaves out become background, as data.label_map: "4=1" alone is the same task
    assert (
        main(
            [
                str(tmp_path / "pred"),
                str(tmp_path / "ref"),
                "--classes",
                "enhancing_tumour",
                "--label-map",
                "4=1",
                "--out",
                str(tmp_path / "short.csv"),
            ]
        )
        == 0
    )
    assert (tmp_path / "short.csv").read_text() == mapped


def test_2d_png_and_tiff_are_scored_per_pixel_or_with_a_given_spacing(tmp_path):
    from PIL import Image

    truth = np.zeros((30, 40), np.uint8)
    truth[5:20, 8:30] = 1
    prediction = np.zeros_like(truth)
    prediction[8:24, 10:33] = 1
    (tmp_path / "pred").mkdir()
    (tmp_path / "ref").mkdir()
    Image.fromarray(prediction * 255).save(tmp_path / "pred" / "frame_1.png")
    Image.fromarray(truth * 255).save(tmp_path / "ref" / "frame_1.tif")
    Image.fromarray(np.stack([prediction * 255] * 3, axis=-1)).save(tmp_path / "pred" / "frame_2.tiff")
    Image.fromarray(truth * 255).save(tmp_path / "ref" / "frame_2.png")
    for spacing, out in ((None, "unit.csv"), ((0.5, 0.25), "mm.csv")):
        arguments = [
            str(tmp_path / "pred"),
            str(tmp_path / "ref"),
            "--classes",
            "polyp",
            "--nsd-tolerance",
            "1",
            "--out",
            str(tmp_path / out),
        ]
        assert main(arguments + ([] if spacing is None else ["--spacing", *map(str, spacing)])) == 0
        rows = read_metrics_csv(tmp_path / out)
        assert [row["case"] for row in rows] == ["frame_1", "frame_2"]
        expected = surface_scores(truth == 1, prediction == 1, spacing or (1.0, 1.0), 1.0)
        in_memory = score_case(truth, prediction, ("background", "polyp"))["polyp"]
        for row in rows:
            assert float(row["dsc"]) == pytest.approx(in_memory.dsc, abs=1e-12)
            assert float(row["hd95"]) == pytest.approx(expected.hd95, abs=1e-9)
            assert float(row["nsd"]) == pytest.approx(expected.nsd, abs=1e-9)
    assert float(read_metrics_csv(tmp_path / "mm.csv")[0]["hd95"]) < float(
        read_metrics_csv(tmp_path / "unit.csv")[0]["hd95"]
    )


@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--label-map", "4:1"], "--label-map '4:1': expected LABEL=CLASS pairs"),
        (["--label-map", "4=1,4=0"], "label 4 given twice"),
        (["--spacing", "0.5", "-1"], "--spacing 0.5 -1: expected positive mm per pixel"),
        (["--spacing", "0.5", "0.5"], "has its own spacing in its header"),
    ],
)
def test_bad_label_map_or_spacing_is_one_line_and_writes_nothing(folders, capsys, arguments, expected):
    tmp_path, _ = folders
    with pytest.raises(SystemExit) as caught:
        main([str(tmp_path / "pred"), str(tmp_path / "ref"), *arguments])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert expected in error and "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "pred" / "metrics.csv").exists()


def test_a_folder_without_references_must_be_a_run(folders, capsys):
    tmp_path, _ = folders
    with pytest.raises(SystemExit) as caught:
        main([str(tmp_path / "pred")])
    assert caught.value.code == 2 and "give REF_DIR, or a run-experiment folder" in capsys.readouterr().err
