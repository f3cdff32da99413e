"""``evaluate RUN_DIR``: a finished run rescored from its saved predictions, beside its own scores."""

import json

import pytest

from pipeline.config import load_config
from pipeline.data.phantoms import write_kits19
from pipeline.evaluation.compare import main as compare_main
from pipeline.evaluation.evaluate import main as evaluate_main
from pipeline.evaluation.metrics import read_metrics_csv
from pipeline.evaluation.runs import read_run
from pipeline.experiment import run_experiment
from tiny_runs import tiny_kits19_overrides


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny 2-fold run on KiTS19 phantoms, with the kidney-and-tumour region of the demo base."""
    tmp_path = tmp_path_factory.mktemp("rescore")
    write_kits19(tmp_path / "kits19", 4, seed=1, size="demo")
    config = load_config(
        "configs/demo_dice.yaml",
        tiny_kits19_overrides(tmp_path / "runs", tmp_path / "kits19", tmp_path / "cache", epochs=1),
    )
    run_experiment(config)
    return config.run_dir


def listing(folder):
    return {str(path.relative_to(folder)): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


@pytest.mark.slow
def test_rescoring_with_nothing_changed_reproduces_metrics_csv_exactly(finished_run, capsys):
    before = listing(finished_run)
    assert evaluate_main([str(finished_run)]) == 0
    rescored = finished_run / "rescored" / "rescore"
    assert (rescored / "metrics.csv").read_bytes() == (finished_run / "metrics.csv").read_bytes()
    assert (rescored / "summary.json").read_bytes() == (finished_run / "summary.json").read_bytes()
    record = json.loads((rescored / "rescore.json").read_text())
    assert record["regions"] == {"kidney_and_tumour": [1, 2]} and record["nsd_tolerance_mm"] == 2.0
    after = listing(finished_run)
    assert {name: stamp for name, stamp in after.items() if not name.startswith("rescored/")} == before
    assert f"{rescored}: mean over 4 cases" in capsys.readouterr().out


@pytest.mark.slow
def test_a_new_tolerance_and_region_are_written_beside_and_compare_losses_reads_them(finished_run, tmp_path):
    original = (finished_run / "metrics.csv").read_bytes()
    assert (
        evaluate_main([str(finished_run), "--name", "nsd1", "--nsd-tolerance", "1", "--regions", "kidney_only=1"]) == 0
    )
    assert (finished_run / "metrics.csv").read_bytes() == original
    rows = read_metrics_csv(finished_run / "rescored" / "nsd1" / "metrics.csv")
    old = read_metrics_csv(finished_run / "metrics.csv")
    assert {row["class"] for row in rows} == {"kidney", "tumour", "kidney_only"}
    assert {float(row["nsd_tolerance_mm"]) for row in rows} == {1.0}
    by_key = {(row["case"], row["class"]): row for row in old}
    for row in rows:  # overlap counts do not depend on the tolerance; the region kidney_only is the kidney
        same = by_key[(row["case"], "kidney" if row["class"] == "kidney_only" else row["class"])]
        assert (row["tp"], row["fp"], row["fn"], row["dsc"]) == (same["tp"], same["fp"], same["fn"], same["dsc"])
    assert any(
        float(row["nsd"]) <= float(by_key[(row["case"], row["class"])]["nsd"])
        for row in rows
        if row["class"] != "kidney_only"
    )

    run = read_run(finished_run / "rescored" / "nsd1")
    assert run.path == finished_run and run.regions == {"kidney_only": [1]}
    assert set(run.class_names()) == {"kidney", "tumour", "kidney_only"}
    assert (
        compare_main([str(finished_run / "rescored" / "nsd1"), "--metric", "nsd", "--out", str(tmp_path / "compare")])
        == 0
    )
    assert "kidney_only" in (tmp_path / "compare" / "performance.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    "arguments, expected",
    [
        (["--classes", "a"], "--classes: not for a run folder"),
        (["--out", "x.csv"], "--out: not for a run folder"),
        (["--name", "../up"], "--name '../up': letters, digits"),
        (["--regions", "bad=7"], "evaluation.regions:"),
    ],
)
def test_bad_rescoring_options_are_one_line_and_write_nothing(finished_run, capsys, arguments, expected):
    before = listing(finished_run)
    with pytest.raises(SystemExit) as caught:
        evaluate_main([str(finished_run), "--name", "refused", *arguments])
    error = capsys.readouterr().err
    assert caught.value.code == 2 and expected in error and len(error.strip().splitlines()) == 1
    assert listing(finished_run) == before
