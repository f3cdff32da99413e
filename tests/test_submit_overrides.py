"""submit-grid --set and --sweep: validated with every config, passed to every array task."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from pipeline.batch import submit
from pipeline.batch.grid import plan_grid, write_grid

from test_slurm import PROJECT_ROOT, write_cluster_env, write_config, write_data


def test_overrides_are_validated_and_decide_the_run_folders(tmp_path, capsys):
    config = write_config(tmp_path, "first", folds=2)
    tasks = plan_grid([config], tmp_path, ["experiment.name=renamed", "cross_validation.folds=3"])
    assert [task.fold for task in tasks] == [0, 1, 2] and tasks[0].run_dir == tmp_path / "runs" / "renamed"
    with pytest.raises(SystemExit) as exited:
        submit.main([str(config), "--set", "training.epochs=many", "--dry-run", "--out", str(tmp_path / "g")])
    assert exited.value.code == 2 and "training.epochs" in capsys.readouterr().err


def test_dry_run_shows_the_overrides_in_every_task(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path, cases=2)
    config = write_config(tmp_path, "first", folds=2)
    submit.main(
        [
            str(config),
            "--set",
            "training.epochs=3",
            "--set",
            "sampling.patch_shape=[16, 32, 32]",
            "--out",
            "grid",
            "--dry-run",
        ]
    )
    tasks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  task ")]
    assert len(tasks) == 2
    for line in tasks:
        assert line.endswith("--set training.epochs=3 --set 'sampling.patch_shape=[16, 32, 32]'")


def test_array_task_passes_every_override_to_run_experiment(tmp_path):
    """The sbatch script itself, with a stand-in run-experiment that prints its arguments one per line."""
    config = write_config(tmp_path, "first", folds=2)
    grid = tmp_path / "grid.tsv"
    write_grid(grid, plan_grid([config], tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "run-experiment"
    stand_in.write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    environment = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        SLURM_ARRAY_TASK_ID="1",
        UNIFOCAL_GRID=str(grid),
        UNIFOCAL_CLUSTER_ENV=str(write_cluster_env(tmp_path / "cluster.env")),
        UNIFOCAL_OVERRIDES="training.epochs=3\nsampling.patch_shape=[16, 32, 32]",
    )
    script = PROJECT_ROOT / "scripts" / "slurm" / "train_array.sbatch"
    result = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-7:] == [
        str(config.resolve()),
        "--fold",
        "1",
        "--set",
        "training.epochs=3",
        "--set",
        "sampling.patch_shape=[16, 32, 32]",
    ]

    environment.pop("UNIFOCAL_OVERRIDES")
    result = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-3:] == [str(config.resolve()), "--fold", "1"]


def test_a_sweep_dry_run_writes_one_resolved_config_per_member_and_the_sweep_manifest(tmp_path, monkeypatch, capsys):
    from pipeline.config import load_config

    monkeypatch.chdir(tmp_path)
    write_data(tmp_path, cases=2)
    config = write_config(tmp_path, "auf", folds=2, loss={"name": "asymmetric_unified_focal"})
    submit.main(
        [
            str(config),
            "--set",
            "training.epochs=2",
            "--sweep",
            "loss.params.gamma=0.3,0.5",
            "--sweep",
            "loss.params.delta=0.6,0.7",
            "--out",
            "grid",
            "--dry-run",
        ]
    )
    tasks = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  task ")]
    assert len(tasks) == 4 * 2 and not any("--set" in line for line in tasks)
    members = sorted(path.stem for path in (tmp_path / "grid" / "configs").iterdir())
    assert members == [
        "auf_gamma-0.3_delta-0.6",
        "auf_gamma-0.3_delta-0.7",
        "auf_gamma-0.5_delta-0.6",
        "auf_gamma-0.5_delta-0.7",
    ]
    member = load_config(tmp_path / "grid" / "configs" / "auf_gamma-0.5_delta-0.6.yaml")
    assert member.loss.params == {"gamma": 0.5, "delta": 0.6} and member.training.epochs == 2
    assert member.run_dir == Path("runs/auf-sweep/auf_gamma-0.5_delta-0.6")  # relative to the jobs' folder
    manifest = json.loads((tmp_path / "runs" / "auf-sweep" / "sweep.json").read_text())
    assert [m["name"] for m in manifest["members"]] == members
    script = (tmp_path / "grid" / "compare.sbatch").read_text()
    assert "export UNIFOCAL_SWEEP=" in script and "auf-sweep" in script
    assert "export UNIFOCAL_OVERRIDES=''" in (tmp_path / "grid" / "train_array.sbatch").read_text()


def test_a_sweep_grid_refuses_several_configs_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first, second = write_config(tmp_path, "a"), write_config(tmp_path, "b")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as exited:
        submit.main([str(first), str(second), "--sweep", "training.epochs=1,2", "--out", "grid", "--dry-run"])
    assert exited.value.code == 2 and "--sweep: expands one CONFIG, got 2" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_comparison_job_of_a_sweep_runs_sweep_report(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("sweep-report", "compare-losses", "python"):
        stand_in = bin_dir / name
        stand_in.write_text(f'#!/bin/bash\necho {name} "$@"\n')
        stand_in.chmod(stand_in.stat().st_mode | stat.S_IEXEC)
    environment = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        UNIFOCAL_GRID=str(tmp_path / "grid.tsv"),
        UNIFOCAL_CLUSTER_ENV=str(write_cluster_env(tmp_path / "cluster.env")),
        UNIFOCAL_COMPARISON=str(tmp_path / "comparison"),
        UNIFOCAL_SWEEP=str(tmp_path / "runs" / "x-sweep"),
    )
    script = PROJECT_ROOT / "scripts" / "slurm" / "compare.sbatch"
    result = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, check=True)
    assert (
        result.stdout.splitlines()[-1]
        == f"sweep-report {tmp_path / 'runs' / 'x-sweep'} --out {tmp_path / 'comparison'}"
    )
