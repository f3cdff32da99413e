"""Repeated training seeds: layout, collection, refusals, seed averaging, seed SD, two-level bootstrap, end to end."""

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.batch.grid import COLUMNS, SEED_COLUMNS, plan_tasks, read_grid, write_grid
from pipeline.config import load_config
from pipeline.evaluation import tables
from pipeline.evaluation.compare import main as compare_main
from pipeline.evaluation.methods import PROJECT
from pipeline.evaluation.metrics import read_metrics_csv, write_metrics_csv
from pipeline.evaluation.ranking import Task, bootstrap_task
from pipeline.evaluation.runs import load_runs
from pipeline.evaluation.statistics import seed_sd, two_level_bootstrap
from pipeline.run_layout import (
    collect_fold_rows,
    csv_text,
    fold_seed,
    read_csv_rows,
    run_folds,
    with_seed_column,
)
from pipeline.runner_cli import main as run_main

ROOT = Path(__file__).resolve().parents[1]


def demo(tmp_path, *overrides):
    return load_config("configs/demo_dice.yaml", [f"experiment.output_root={tmp_path / 'runs'}", *overrides])


# --- layout and collection ---------------------------------------------------------------------


def test_one_seed_keeps_the_flat_layout_and_several_seeds_nest_by_seed(tmp_path):
    assert [(task.seed, task.fold, task.path) for task in run_folds(tmp_path, [7], 2)] == [
        (7, 0, tmp_path / "fold_0"),
        (7, 1, tmp_path / "fold_1"),
    ]
    assert [(task.seed, task.fold, task.path) for task in run_folds(tmp_path, [3, 1], 2)] == [
        (3, 0, tmp_path / "seed_3" / "fold_0"),
        (3, 1, tmp_path / "seed_3" / "fold_1"),
        (1, 0, tmp_path / "seed_1" / "fold_0"),
        (1, 1, tmp_path / "seed_1" / "fold_1"),
    ]
    config = demo(tmp_path, "experiment.seeds=[0, 1, 2]", "cross_validation.folds=3")
    assert len(config.run_folds()) == 9 and config.seeded_layout
    assert [task.path.parent.name for task in config.run_folds(seeds=[2])] == ["seed_2"] * 3


def test_fold_seeds_are_today_s_with_one_seed_and_distinct_with_several():
    assert [fold_seed(5, fold, [5], 4) for fold in range(4)] == [5, 6, 7, 8]  # experiment.seed + fold, as before
    seeds = [0, 1, 2]
    all_seeds = [fold_seed(seed, fold, seeds, 5) for seed, fold in itertools.product(seeds, range(5))]
    assert len(set(all_seeds)) == len(all_seeds) == 15


def test_collected_rows_get_the_seed_right_after_the_fold(tmp_path):
    rows = [{"case": "a", "fold": 0, "class": "kidney", "dsc": 0.5}]
    assert list(with_seed_column(rows, 3)[0]) == ["case", "fold", "seed", "class", "dsc"]
    for task in run_folds(tmp_path, [0, 1], 1):  # any per-fold CSV, e.g. a calibration table
        task.path.mkdir(parents=True)
        (task.path / "table.csv").write_text(f"case,fold,class,ece\na,0,kidney,0.{task.seed + 1}\n")
    collected = collect_fold_rows(run_folds(tmp_path, [0, 1], 1), "table.csv", read_csv_rows, seeded=True)
    assert collected == [
        {"case": "a", "fold": "0", "seed": 0, "class": "kidney", "ece": "0.1"},
        {"case": "a", "fold": "0", "seed": 1, "class": "kidney", "ece": "0.2"},
    ]
    assert csv_text(collected) == "case,fold,seed,class,ece\na,0,0,kidney,0.1\na,0,1,kidney,0.2\n"
    one_seed = collect_fold_rows(run_folds(tmp_path, [0, 1], 1)[:1], "table.csv", read_csv_rows, seeded=False)
    assert csv_text(one_seed) == (tmp_path / "seed_0" / "fold_0" / "table.csv").read_text()  # unchanged
    write_metrics_csv(
        tmp_path / "metrics.csv",
        [{"case": "a", "fold": 0, "seed": 4, "class": "kidney", "dsc": 0.5, "precision": 0.25, "recall": 1.0}],
    )
    assert (tmp_path / "metrics.csv").read_text().splitlines()[0] == "case,fold,seed,class,dsc,precision,recall"
    assert read_metrics_csv(tmp_path / "metrics.csv")[0]["seed"] == 4


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0,x"], "--seeds '0,x': expected whole numbers >= 0"),
        (["--seeds", "1,1"], "configs/demo_dice.yaml: experiment.seeds: seed 1 given twice"),
        (["--seeds=-1,2"], "--seeds '-1,2': expected whole numbers >= 0"),
        (["--seeds", "0,1", "--seed", "5"], "--seed 5: not one of the run's seeds (experiment.seeds: 0, 1)"),
        (["--seed", "1"], "--seed 1: not one of the run's seeds (experiment.seeds: 0)"),
    ],
)
def test_bad_seeds_are_refused_in_one_line_before_anything_is_written(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        run_main(
            [
                "configs/demo_dice.yaml",
                "--set",
                f"experiment.output_root={tmp_path / 'runs'}",
                "--set",
                f"data.root={tmp_path}",
                *argv,
            ]
        )
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert list(tmp_path.iterdir()) == []


def test_plan_lists_the_seeds_and_the_grid_runs_one_task_per_seed_and_fold(tmp_path):
    config = demo(tmp_path, "experiment.seeds=[0, 1]", "cross_validation.folds=2")
    tasks = plan_tasks([(tmp_path / "a.yaml", config)], tmp_path)
    assert [(task.seed, task.fold) for task in tasks] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert tasks[3].done_marker == (tmp_path / config.run_dir).resolve() / "seed_1" / "fold_1" / "done.json"
    write_grid(tmp_path / "grid.tsv", tasks)
    assert tuple((tmp_path / "grid.tsv").read_text().splitlines()[0].split("\t")) == SEED_COLUMNS
    assert read_grid(tmp_path / "grid.tsv") == tasks
    one_seed = plan_tasks([(tmp_path / "b.yaml", demo(tmp_path, "experiment.name=b"))], tmp_path)
    write_grid(tmp_path / "grid1.tsv", one_seed)
    assert tuple((tmp_path / "grid1.tsv").read_text().splitlines()[0].split("\t")) == COLUMNS  # as before seeds
    assert all(task.seed is None for task in read_grid(tmp_path / "grid1.tsv"))


def test_one_seed_config_yaml_has_no_seeds_key(tmp_path):
    assert "seeds" not in yaml.safe_load(demo(tmp_path).to_yaml())["experiment"]
    assert yaml.safe_load(demo(tmp_path, "experiment.seeds=[2, 3]").to_yaml())["experiment"]["seeds"] == [2, 3]


# --- statistics ---------------------------------------------------------------------------------


def reference_bootstrap(row, column, samples, seed):
    """The two-level bootstrap written out replicate by replicate, with the documented draws."""
    rng = np.random.default_rng(seed)
    n = row.shape[0]
    cases = rng.integers(0, n, size=(samples, n))
    row_seeds = rng.integers(0, row.shape[1], size=(samples, row.shape[1]))
    column_seeds = rng.integers(0, column.shape[1], size=(samples, column.shape[1]))
    differences = []
    for b in range(samples):
        row_mean = np.mean([row[i, j] for i in cases[b] for j in row_seeds[b]])
        column_mean = np.mean([column[i, j] for i in cases[b] for j in column_seeds[b]])
        differences.append(row_mean - column_mean)
    return np.quantile(differences, [0.025, 0.975])


def test_two_level_bootstrap_equals_a_replicate_by_replicate_reference():
    rng = np.random.default_rng(4)
    row = rng.uniform(0.5, 0.9, size=(7, 3))
    column = rng.uniform(0.4, 0.9, size=(7, 2))  # the losses may have different numbers of seeds
    result = two_level_bootstrap(row, column, samples=1500, seed=11)  # > one block of 1000 replicates
    np.testing.assert_allclose([result.low, result.high], reference_bootstrap(row, column, 1500, 11), rtol=1e-12)
    assert result.difference == pytest.approx(row.mean() - column.mean())
    assert result.low <= result.difference <= result.high
    assert two_level_bootstrap(row, column, samples=1500, seed=11) == result  # seeded: deterministic


def test_identical_seeds_shrink_the_two_level_interval_to_the_cases_only_one():
    rng = np.random.default_rng(5)
    cases_row, cases_column = rng.uniform(size=9), rng.uniform(size=9)
    result = two_level_bootstrap(np.repeat(cases_row[:, None], 3, axis=1), np.repeat(cases_column[:, None], 2, axis=1))
    assert (result.low, result.high) == pytest.approx((result.case_low, result.case_high))
    # Seed noise (a shift per seed) widens it; the cases-only interval ignores the seeds' spread.
    close = cases_row - 0.05 + rng.normal(0, 0.01, size=9)  # paired cases: the case-to-case spread cancels
    noisy = two_level_bootstrap(cases_row[:, None] + np.array([-0.2, 0.0, 0.2]), close[:, None] + [0, 0])
    assert noisy.high - noisy.low > 2 * (noisy.case_high - noisy.case_low)


def seeded_run(root, name, loss, scores):
    """A finished run of several seeds: ``scores[seed][case]`` is (kidney dsc) for folds case % 2."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(
            {"experiment": {"name": name}, "loss": {"name": loss}, "data": {"dataset": "kits19", "root": "none"}}
        )
    )
    lines = ["case,fold,seed,class,dsc,precision,recall"]
    lines += [
        f"case_{case},{case % 2},{seed},kidney,{value},0.5,0.5"
        for seed, values in scores.items()
        for case, value in enumerate(values)
    ]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def test_cases_are_averaged_over_seeds_and_each_mean_has_its_seed_sd(tmp_path):
    dice = seeded_run(tmp_path, "a", "dice", {0: [0.2, 0.4, 0.6, 0.8], 1: [0.4, 0.6, 0.8, 1.0]})
    combo = seeded_run(
        tmp_path, "b", "combo", {0: [0.3, 0.3, 0.3, 0.3], 1: [0.5, 0.5, 0.5, 0.5], 2: [0.1, 0.1, 0.1, 0.1]}
    )
    runs = load_runs([dice, combo])
    assert runs[0].per_case("kidney").tolist() == pytest.approx([0.3, 0.5, 0.7, 0.9])
    summary = tables.performance_summary(runs, PROJECT, metrics=["dsc"]).set_index("loss")
    # Per-seed means: dice 0.5 and 0.7 -> SD sqrt(0.02); combo 0.3, 0.5, 0.1 -> SD 0.2.
    assert summary.loc["Dice", "mean"] == pytest.approx(0.6)
    assert summary.loc["Dice", "seed_sd"] == pytest.approx(np.sqrt(0.02))
    assert summary.loc["Combo", "seed_sd"] == pytest.approx(0.2) == seed_sd([0.3, 0.5, 0.1])
    assert summary.loc["Combo", "seeds"] == 3
    markdown = tables.performance_markdown(tables.performance_summary(runs, PROJECT, metrics=["dsc"]))
    from scipy import stats

    half_width = stats.t.ppf(0.975, 3) * np.std([0.3, 0.5, 0.7, 0.9], ddof=1) / 2  # over the case means
    assert f"**0.600 ± {half_width:.3f} (seed SD 0.141)**" in markdown
    folds = tables.performance_summary(
        runs, PROJECT.__class__(**{**PROJECT.__dict__, "interval": "folds"}), metrics=["dsc"]
    ).set_index("loss")
    assert folds.loc["Dice", "seed_sd"] == pytest.approx(np.sqrt(0.02))  # fold means per seed: same means here


def test_compare_losses_writes_the_seed_sd_the_differences_and_their_figure(tmp_path, capsys):
    dice = seeded_run(tmp_path, "a", "dice", {0: [0.2, 0.4, 0.6, 0.8], 1: [0.4, 0.6, 0.8, 1.0]})
    combo = seeded_run(tmp_path, "b", "combo", {0: [0.3, 0.3, 0.3, 0.3], 1: [0.5, 0.5, 0.5, 0.5]})
    assert compare_main([str(dice), str(combo), "--out", str(tmp_path / "out"), "--bootstrap", "500", "-q"]) == 0
    differences = pd.read_csv(tmp_path / "out" / "differences_kidney.csv")
    assert differences[["row", "column"]].values.tolist() == [["Combo", "Dice"]]
    expected = two_level_bootstrap(
        np.array([[0.3, 0.5]] * 4), np.array([[0.2, 0.4], [0.4, 0.6], [0.6, 0.8], [0.8, 1.0]]), samples=500
    )
    assert differences.loc[0, ["difference", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [expected.difference, expected.low, expected.high]
    )
    assert differences.loc[0, "row_seed_sd"] == pytest.approx(np.sqrt(0.02))
    out = capsys.readouterr().out
    assert "(seed SD 0.141)" in out and "95 % interval, cases and seeds" in out
    assert (tmp_path / "out" / "seed_noise.png").read_bytes().startswith(b"\x89PNG")
    per_case = pd.read_csv(tmp_path / "out" / "per_case.csv")
    assert list(per_case.columns[:5]) == ["loss", "case", "fold", "seed", "class"]


def test_rank_bootstrap_draws_seeds_and_equals_the_cases_only_one_for_identical_seeds():
    scores = np.random.default_rng(2).uniform(size=(6, 3))
    plain = Task("t", ("a", "b", "c"), scores)
    same_seeds = Task(
        "t", ("a", "b", "c"), scores, seed_scores=tuple(np.repeat(scores[:, [j]], 2, axis=1) for j in range(3))
    )
    np.testing.assert_array_equal(
        bootstrap_task(plain, 200, np.random.default_rng(0)).ranks,
        bootstrap_task(same_seeds, 200, np.random.default_rng(0)).ranks,
    )
    noisy = Task(
        "t", ("a", "b", "c"), scores, seed_scores=tuple(scores[:, [j]] + np.array([-0.5, 0.5]) for j in range(3))
    )
    assert not np.array_equal(
        bootstrap_task(plain, 200, np.random.default_rng(0)).ranks,
        bootstrap_task(noisy, 200, np.random.default_rng(0)).ranks,
    )


# --- end to end ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from pipeline.data.phantoms import write_kits19

    root = tmp_path_factory.mktemp("data") / "kits19"
    write_kits19(root, 4, seed=1, size="demo")
    return root


def tiny(tmp_path, phantoms, name):
    return [
        "configs/demo_dice.yaml",
        "-q",
        "--set",
        f"experiment.name={name}",
        "--set",
        f"experiment.output_root={tmp_path / 'runs'}",
        "--set",
        f"data.root={phantoms}",
        "--set",
        f"preprocessing.cache_dir={tmp_path / 'cache'}",
        "--set",
        "cross_validation.splits_file=null",
        "--set",
        "cross_validation.folds=2",
        "--set",
        "preprocessing.target_spacing=[6.0, 6.0, 6.0]",
        "--set",
        "sampling.patch_shape=[8, 32, 32]",
        "--set",
        "sampling.batches_per_epoch=2",
        "--set",
        "sampling.val_batches=1",
        "--set",
        "model.n_filters=2",
        "--set",
        "model.depth=2",
        "--set",
        "training.epochs=1",
        "--set",
        "inference.overlap=[4, 16, 16]",
    ]


@pytest.mark.slow
def test_one_seed_runs_are_unchanged_and_two_seeds_give_a_seed_column_and_seed_noise(tmp_path, phantoms, capsys):
    runs = tmp_path / "runs"
    assert run_main(tiny(tmp_path, phantoms, "plain")) == 0
    assert run_main([*tiny(tmp_path, phantoms, "one"), "--seeds", "0"]) == 0  # experiment.seed's own value
    for name in ("metrics.csv", "summary.json", "splits.json", "fold_0/metrics.csv", "fold_1/log.csv"):
        assert (runs / "plain" / name).read_bytes() == (runs / "one" / name).read_bytes()
    assert (runs / "plain" / "metrics.csv").read_text().startswith("case,fold,class,tp,")
    assert not list((runs / "plain").glob("seed_*"))

    assert run_main([*tiny(tmp_path, phantoms, "two"), "--seeds", "0,1", "--seed", "1"]) == 0  # one seed's tasks
    assert not (runs / "two" / "metrics.csv").exists() and not (runs / "two" / "seed_0").exists()
    assert run_main([*tiny(tmp_path, phantoms, "two"), "--seeds", "0,1"]) == 0
    metrics = pd.read_csv(runs / "two" / "metrics.csv")
    assert list(metrics.columns[:4]) == ["case", "fold", "seed", "class"]
    assert sorted(metrics["seed"].unique()) == [0, 1]
    by_seed = metrics.pivot_table(index=["case", "class"], columns="seed", values="prediction_voxels")
    assert (by_seed[0] != by_seed[1]).any()  # another seed trains another network
    assert json.loads((runs / "two" / "seed_1" / "fold_0" / "done.json").read_text())["seed"] == 1
    # Seed 0 of the two-seed run trains as the one-seed run with experiment.seed 0.
    assert metrics[metrics["seed"] == 0].drop(columns="seed").to_csv(index=False) == pd.read_csv(
        runs / "plain" / "metrics.csv"
    ).to_csv(index=False)
    summary = json.loads((runs / "two" / "summary.json").read_text())
    assert summary["kidney"]["seeds"] == 2 and "dsc_seed_sd" in summary["kidney"]
    from pipeline.inference.predict import main as predict_main

    predict_main([str(runs / "two"), "-i", str(phantoms), "-o", str(tmp_path / "predicted"), "--folds", "0", "-q"])
    record = json.loads((tmp_path / "predicted" / "predict.json").read_text())
    assert (record["folds"], record["seeds"]) == ([0, 0], [0, 1])  # fold 0 of every seed in the ensemble

    assert run_main([*tiny(tmp_path, phantoms, "two_tversky"), "--seeds", "0,1", "--set", "loss.name=tversky"]) == 0
    capsys.readouterr()
    assert (
        compare_main(
            [str(runs / "two"), str(runs / "two_tversky"), "--out", str(tmp_path / "cmp"), "--bootstrap", "200", "-q"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "seed SD" in out and "95 % interval, cases and seeds" in out
    assert (tmp_path / "cmp" / "seed_noise.png").is_file()
    differences = pd.read_csv(tmp_path / "cmp" / "differences_kidney.csv")
    assert (differences["ci_low"] <= differences["difference"]).all()
    assert (differences["difference"] <= differences["ci_high"]).all()


@pytest.mark.parametrize(
    "seeds, task, expected",
    [
        (None, 1, "CONFIG --fold 1 --set training.epochs=1"),
        ([0, 1], 3, "CONFIG --fold 1 --seed 1 --set training.epochs=1"),
    ],
)
def test_the_array_task_runs_its_seed_and_fold(tmp_path, seeds, task, expected):
    import subprocess

    overrides = [f"experiment.seeds={seeds}"] if seeds else []
    config = demo(tmp_path, "cross_validation.folds=2", *overrides)
    tasks = plan_tasks([(tmp_path / "CONFIG", config)], tmp_path)
    write_grid(tmp_path / "grid.tsv", tasks)
    (tmp_path / "cluster.env").write_text("unifocal_setup() { :; }\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "run-experiment").write_text('#!/bin/bash\necho "$@" > "$ARGS_FILE"\n')
    (tmp_path / "bin" / "run-experiment").chmod(0o755)
    environment = {
        "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
        "UNIFOCAL_GRID": str(tmp_path / "grid.tsv"),
        "UNIFOCAL_CLUSTER_ENV": str(tmp_path / "cluster.env"),
        "SLURM_ARRAY_TASK_ID": str(task),
        "UNIFOCAL_OVERRIDES": "training.epochs=1",
        "ARGS_FILE": str(tmp_path / "args.txt"),
    }
    subprocess.run(["bash", "scripts/slurm/train_array.sbatch"], env=environment, check=True, capture_output=True)
    assert (tmp_path / "args.txt").read_text().strip() == expected.replace("CONFIG", str(tmp_path / "CONFIG"))


def test_submit_grid_seeds_make_one_task_per_seed_and_fold(tmp_path, capsys, monkeypatch):
    from pipeline.batch import submit

    monkeypatch.setattr(submit, "preflight_grid", lambda *arguments: None)  # no BraTS20 data here
    assert (
        submit.main(["configs/brats20_combo.yaml", "--seeds", "0,1", "--out", str(tmp_path / "grid"), "--dry-run"]) == 0
    )
    printed = capsys.readouterr().out
    folds = load_config("configs/brats20_combo.yaml").cross_validation.folds
    tasks = read_grid(tmp_path / "grid" / "grid.tsv")
    assert [(task.seed, task.fold) for task in tasks] == [(seed, fold) for seed in (0, 1) for fold in range(folds)]
    assert f"--fold {folds - 1} --seed 1 --set 'experiment.seeds=[0, 1]'" in printed
    with pytest.raises(SystemExit) as exit_info:
        submit.main(["configs/brats20_combo.yaml", "--seeds", "zero", "--out", str(tmp_path / "bad"), "--dry-run"])
    assert exit_info.value.code == 2 and not (tmp_path / "bad").exists()


def test_sweep_and_reproduce_paper_pass_the_seeds_to_every_run(tmp_path, capsys):
    from pipeline.config import seeds_override
    from pipeline.paper import reproduce
    from pipeline.sweep import expand_sweep

    sweep = expand_sweep(
        "configs/demo_dice.yaml",
        ["training.learning_rate=0.01,0.001"],
        [f"experiment.output_root={tmp_path}", seeds_override("0,1")],
    )
    assert [member.config.experiment.seeds for member in sweep.members] == [[0, 1], [0, 1]]
    assert (
        reproduce.main(
            ["mixed_focal_brats20", "--set", "experiment.seeds=[0, 1]", "--results", str(tmp_path), "--print"]
        )
        == 0
    )
    runs = [line for line in capsys.readouterr().out.splitlines() if line.startswith("run-experiment")]
    assert runs and all("--set 'experiment.seeds=[0, 1]'" in line for line in runs)
    reproduce._write_resolved("configs/brats20_combo.yaml", tmp_path / "c.yaml", ["experiment.seeds=[0, 1]"])
    assert load_config(tmp_path / "c.yaml").experiment.seeds == [0, 1]
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["mixed_focal_brats20", "--set", "experiment.seeds=[1, 1]", "--print"])
    assert exit_info.value.code == 2 and "seed 1 given twice" in capsys.readouterr().err


def test_plan_shows_the_seeds(tmp_path, phantoms, capsys):
    argv = tiny(tmp_path, phantoms, "planned")
    assert run_main([*argv, "--seeds", "0,1", "--plan"]) == 0
    printed = capsys.readouterr().out
    assert "seeds        2 (0, 1)" in printed and "4 training tasks in seed_<S>/fold_<K>/" in printed
    assert run_main([*argv, "--plan"]) == 0
    assert "seeds " not in capsys.readouterr().out  # one seed: the plan as before
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("mode", ["default", "paper"])
def test_one_seed_comparison_is_byte_identical_to_the_code_before_seeds(tmp_path, capsys, mode):
    """tests/data/one_seed_compare/: compare-losses outputs of test_compare_outputs' fixture runs, written by
    the code before seeds existed (every text file but runs.csv, which holds the run folders' paths)."""
    from test_compare_outputs import FIXTURE_SCORES, write_run

    expected = ROOT / "tests" / "data" / "one_seed_compare" / mode
    run_dirs = [
        str(write_run(tmp_path / "runs", f"kits19_{loss}", loss, scores)) for loss, scores in FIXTURE_SCORES.items()
    ]
    capsys.readouterr()
    assert (
        compare_main([*run_dirs, "--out", str(tmp_path / "out"), "-q", *(["--paper"] if mode == "paper" else [])]) == 0
    )
    assert capsys.readouterr().out == (expected / "stdout.txt").read_text()
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    golden = sorted(path.name for path in expected.iterdir() if path.name != "stdout.txt")
    assert written == sorted([*golden, "runs.csv", "dsc_distribution.png", "training_curves.png"])
    for name in golden:
        assert (tmp_path / "out" / name).read_bytes() == (expected / name).read_bytes(), name


def test_grid_status_and_collection_name_the_seed(tmp_path):
    from pipeline.batch.collect import finished_run_dirs
    from pipeline.batch.status import format_table
    from pipeline.errors import DataError

    config = demo(tmp_path, "experiment.seeds=[0, 1]", "cross_validation.folds=2")
    tasks = plan_tasks([(tmp_path / "a.yaml", config)], tmp_path)
    write_grid(tmp_path / "grid.tsv", tasks)
    for task in tasks[:3]:
        task.done_marker.parent.mkdir(parents=True)
        task.done_marker.write_text("{}")
    with pytest.raises(DataError, match=r"1 of 4 folds unfinished: .*a\.yaml seed 1 fold 1$"):
        finished_run_dirs(tmp_path / "grid.tsv")
    tasks[3].done_marker.parent.mkdir(parents=True)
    tasks[3].done_marker.write_text("{}")
    assert finished_run_dirs(tmp_path / "grid.tsv") == [tasks[0].run_dir]
    table = format_table([(task, "DONE") for task in tasks]).splitlines()
    assert table[0] == "task\tseed\tfold\tstate\tconfig" and table[4].startswith("3\t1\t1\tDONE\t")


def test_a_one_seed_run_compares_and_ranks_beside_runs_of_several_seeds(tmp_path):
    from pipeline.evaluation.rank_losses import main as rank_main

    dice = seeded_run(tmp_path, "a", "dice", {0: [0.2, 0.4, 0.6, 0.8], 1: [0.4, 0.6, 0.8, 1.0]})
    focal = tmp_path / "b"
    focal.mkdir()
    (focal / "config.yaml").write_text(
        yaml.safe_dump(
            {"experiment": {"name": "b"}, "loss": {"name": "focal"}, "data": {"dataset": "kits19", "root": "none"}}
        )
    )
    (focal / "metrics.csv").write_text(
        "case,fold,class,dsc,precision,recall\n"
        + "".join(f"case_{case},{case % 2},kidney,{0.5 + 0.01 * case},0.5,0.5\n" for case in range(4))
    )
    assert compare_main([str(dice), str(focal), "--out", str(tmp_path / "out"), "-q", "--bootstrap", "300"]) == 0
    assert "(seed SD n/a)" in (tmp_path / "out" / "performance.md").read_text()
    differences = pd.read_csv(tmp_path / "out" / "differences_kidney.csv")
    assert differences.loc[0, ["row_seeds", "column_seeds"]].tolist() == [1, 2]
    per_case = pd.read_csv(tmp_path / "out" / "per_case.csv", dtype={"seed": "Int64"})
    assert per_case.loc[per_case["loss"] == "Focal", "seed"].isna().all()
    assert rank_main([str(tmp_path / "out"), "--out", str(tmp_path / "rank"), "-q", "--bootstrap", "100"]) == 0
    assert "training seeds" in (tmp_path / "rank" / "ranking.md").read_text()
