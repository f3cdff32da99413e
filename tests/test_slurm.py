"""Slurm batch jobs: submit-grid, the grid file, the completeness check, and real jobs on a local cluster.

The cluster tests start a single-node Slurm cluster (tests/slurm_cluster.py)
and are skipped, with the reason, only where Slurm cannot be installed or
started as root (see scripts/install_slurm.sh).
"""

from __future__ import annotations

import csv
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from slurm_cluster import LocalSlurmCluster, unavailable_reason, wait_until

from pipeline.batch import collect, submit
from pipeline.batch.cluster_settings import ClusterSettings, read_cluster_settings
from pipeline.batch.grid import GridTask, plan_grid, read_grid, write_grid
from pipeline.errors import ConfigError, DataError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, name: str, folds: int = 2, output_root: str = "runs", **sections) -> Path:
    """A minimal valid experiment config (data is never read by these tests' stand-ins)."""
    config = {
        "experiment": {"name": name, "output_root": output_root},
        "data": {"dataset": "kits19", "root": "data/kits19"},
        "sampling": {"patch_shape": [16, 16, 16]},
        "loss": {"name": "dice"},
        "training": {"epochs": 1},
        "cross_validation": {"folds": folds},
        **sections,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_data(folder: Path, cases: int = 2) -> Path:
    """Tiny KiTS19 phantoms where write_config's ``data.root`` points (relative to ``folder``)."""
    from pipeline.data.phantoms import write_kits19

    write_kits19(folder / "data" / "kits19", cases=cases, seed=0, size="demo")
    return folder / "data" / "kits19"


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


def write_cluster_env(path: Path, setup: str = "true", **variables: str) -> Path:
    lines = [f'{name}="{value}"' for name, value in variables.items()]
    path.write_text("\n".join(lines) + f"\nunifocal_setup() {{\n    {setup}\n}}\n")
    return path


# --- grid, settings and completeness check: no cluster needed -------------------------------------


def test_plan_grid_has_one_task_per_config_and_fold(tmp_path):
    first = write_config(tmp_path, "first", folds=3)
    second = write_config(tmp_path, "second", folds=2)

    tasks = plan_grid([first, second], working_dir=tmp_path)

    assert [(task.task, task.config.name, task.fold) for task in tasks] == [
        (0, "first.yaml", 0),
        (1, "first.yaml", 1),
        (2, "first.yaml", 2),
        (3, "second.yaml", 0),
        (4, "second.yaml", 1),
    ]
    assert {task.run_dir for task in tasks} == {tmp_path / "runs" / "first", tmp_path / "runs" / "second"}
    write_grid(tmp_path / "grid.tsv", tasks)
    assert read_grid(tmp_path / "grid.tsv") == tasks


@pytest.mark.parametrize("output_root", ["runs", "runs/first"])
def test_configs_writing_to_the_same_or_a_nested_run_dir_are_refused(tmp_path, output_root):
    first = write_config(tmp_path, "first")
    clash = tmp_path / "other"
    clash.mkdir()
    # Same experiment name in the same output root, or a run folder inside the first one.
    second = write_config(clash, "first" if output_root == "runs" else "inner", output_root=output_root)

    with pytest.raises(ConfigError, match="overlaps") as refused:
        plan_grid([first, second], working_dir=tmp_path)
    assert str(first.resolve()) in str(refused.value) and str(second) in str(refused.value)


def test_cluster_settings_come_from_cluster_env_and_flags_override_them(tmp_path):
    env_file = write_cluster_env(
        tmp_path / "cluster.env",
        PARTITION="gpu",
        ACCOUNT="proj1",
        GPUS_PER_TASK="1",
        CPUS_PER_TASK="8",
        MEMORY="64G",
        TIME_LIMIT="24:00:00",
        COMPARE_TIME_LIMIT="00:30:00",
        EXTRA_SBATCH_FLAGS="--qos=high --constraint='a100 80gb'",
    )
    settings = read_cluster_settings(env_file)
    assert settings == ClusterSettings(
        "gpu", "proj1", 1, 8, "64G", "24:00:00", "00:30:00", ("--qos=high", "--constraint=a100 80gb")
    )
    overridden = settings.updated(partition="a100", gpus_per_task=0, memory=None)
    assert overridden.training_options() == [
        "--partition=a100",
        "--account=proj1",
        "--mem=64G",
        "--cpus-per-task=8",
        "--time=24:00:00",
        "--qos=high",
        "--constraint=a100 80gb",
    ]
    assert overridden.compare_options() == [
        "--partition=a100",
        "--account=proj1",
        "--mem=64G",
        "--time=00:30:00",
        "--qos=high",
        "--constraint=a100 80gb",
    ]
    assert read_cluster_settings(write_cluster_env(tmp_path / "empty.env")) == ClusterSettings()


def test_project_cluster_env_is_readable():
    settings = read_cluster_settings(PROJECT_ROOT / "scripts" / "slurm" / "cluster.env")
    assert settings.gpus_per_task >= 1 and settings.time_limit


@pytest.mark.parametrize(
    "content, problem",
    [
        ('GPUS_PER_TASK="two"\n', "GPUS_PER_TASK: expected a whole number, got 'two'"),
        ("if then\n", "bash cannot source it"),
    ],
)
def test_bad_cluster_env_is_one_config_error_naming_the_file(tmp_path, content, problem):
    env_file = tmp_path / "cluster.env"
    env_file.write_text(content)
    with pytest.raises(ConfigError, match=problem) as refused:
        read_cluster_settings(env_file)
    assert str(env_file) in str(refused.value)
    with pytest.raises(ConfigError, match="not found"):
        read_cluster_settings(tmp_path / "missing.env")


def test_dry_run_writes_the_plan_and_prints_the_sbatch_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_data(tmp_path, cases=3)
    configs = [write_config(tmp_path, "first", folds=3), write_config(tmp_path, "second", folds=2)]
    env_file = write_cluster_env(
        tmp_path / "cluster.env",
        PARTITION="cpu",
        ACCOUNT="proj1",
        GPUS_PER_TASK="1",
        MEMORY="64G",
        TIME_LIMIT="24:00:00",
    )

    submit.main(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--partition",
            "gpu",
            "--gpus",
            "2",
            "--time",
            "2-00:00:00",
            "--mem",
            "32G",
            "--out",
            "grid",
            "--dry-run",
        ]
    )

    printed = capsys.readouterr().out
    train = next(line for line in printed.splitlines() if line.startswith("train=$(sbatch "))
    compare = next(line for line in printed.splitlines() if "compare.sbatch" in line)
    status = next(line for line in printed.splitlines() if "status.sbatch" in line)
    for option in (
        "--array=0-4",
        "--partition=gpu",
        "--account=proj1",
        "--gres=gpu:2",
        "--time=2-00:00:00",
        "--mem=32G",
        str(tmp_path / "grid" / "train_array.sbatch"),
    ):
        assert option in train
    for option in ("--dependency=afterok:$train", "--partition=gpu", "--mem=32G"):
        assert option in compare
    assert "--dependency=afterany:$train" in status and "UNIFOCAL_TRAIN_JOB=$train" in status
    assert "gres" not in compare and "gres" not in status
    assert f"task 4: run-experiment {configs[1].resolve()} --fold 1" in printed
    assert listing(tmp_path / "grid") == ["compare.sbatch", "grid.tsv", "logs", "status.sbatch", "train_array.sbatch"]
    assert not (tmp_path / "runs").exists()  # the plan only: no run folder, no job ids
    script = (tmp_path / "grid" / "train_array.sbatch").read_text()
    assert f"export UNIFOCAL_GRID={tmp_path / 'grid' / 'grid.tsv'}" in script
    assert script.index("#SBATCH --signal") < script.index("export UNIFOCAL_ROOT") < script.index("set -eo")
    assert read_grid(tmp_path / "grid" / "grid.tsv")[4].config == configs[1].resolve()


def test_submit_grid_refuses_a_submitted_grid_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, "first")
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "jobs.json").write_text('{"train": "1"}')
    with pytest.raises(SystemExit) as exited:
        submit.main([str(config), "--out", "grid", "--dry-run"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "already submitted" in error


def test_submit_grid_checks_the_data_before_anything_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "kits19").mkdir(parents=True)  # an empty data root: every task would fail
    config = write_config(tmp_path, "first")
    with pytest.raises(SystemExit) as exited:
        submit.main([str(config), "--out", "grid", "--dry-run"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "data/kits19: no case folders" in error
    assert listing(tmp_path) == ["data", "data/kits19", "first.yaml"]


def test_collect_names_every_unfinished_config_and_fold(tmp_path, capsys):
    tasks = [
        GridTask(task, tmp_path / f"{name}.yaml", fold, tmp_path / "runs" / name)
        for task, (name, fold) in enumerate([("dice", 0), ("dice", 1), ("focal", 0), ("focal", 1)])
    ]
    grid_file = tmp_path / "grid.tsv"
    write_grid(grid_file, tasks)
    for task in tasks[:3]:
        task.done_marker.parent.mkdir(parents=True)
        task.done_marker.write_text("{}")

    with pytest.raises(SystemExit) as exited:
        collect.main([str(grid_file)])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"1 of 4 folds unfinished: {tmp_path / 'focal.yaml'} fold 1" in error
    assert "dice.yaml fold" not in error

    tasks[3].done_marker.parent.mkdir(parents=True)
    tasks[3].done_marker.write_text("{}")
    collect.main([str(grid_file)])
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / "runs" / "dice"), str(tmp_path / "runs" / "focal")]


def test_collect_refuses_a_file_that_is_not_a_grid(tmp_path):
    not_a_grid = tmp_path / "grid.tsv"
    not_a_grid.write_text("config,fold\n")
    with pytest.raises(DataError, match="not a grid file"):
        collect.finished_run_dirs(not_a_grid)


# --- a real local Slurm cluster ------------------------------------------------------------------

needs_slurm = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


@pytest.fixture
def slurm_cluster(tmp_path, monkeypatch):
    """A fresh single-node cluster; ``SLURM_CONF`` points this test's sbatch calls at it."""
    cluster = LocalSlurmCluster(tmp_path / "slurm")
    try:
        cluster.start()
        monkeypatch.setenv("SLURM_CONF", str(cluster.config_file))
        yield cluster
    finally:
        cluster.stop()


@needs_slurm
@pytest.mark.slurm
def test_array_job_and_afterok_dependency(slurm_cluster, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()

    def submit_job(*options: str) -> str:
        return slurm_cluster.run("sbatch", "--parsable", f"--chdir={outputs}", *options).stdout.strip()

    array = submit_job(
        "--array=0-2", "--output=array_%a.log", "--wrap=echo task $SLURM_ARRAY_TASK_ID > task_$SLURM_ARRAY_TASK_ID.txt"
    )
    after = submit_job(f"--dependency=afterok:{array}", "--output=after.log", "--wrap=cat task_*.txt > collected.txt")
    failing = submit_job("--array=0-1", "--output=failing_%a.log", "--wrap=exit $SLURM_ARRAY_TASK_ID")
    never = submit_job(
        f"--dependency=afterok:{failing}", "--kill-on-invalid-dep=yes", "--output=never.log", "--wrap=touch never.txt"
    )
    records = slurm_cluster.wait_for([array, after, failing, never], timeout=120)

    assert [records[f"{array}_{task}"]["JobState"] for task in range(3)] == ["COMPLETED"] * 3
    assert records[after]["JobState"] == "COMPLETED"
    assert (outputs / "collected.txt").read_text().split() == ["task", "0", "task", "1", "task", "2"]
    assert records[f"{failing}_1"]["JobState"] == "FAILED"
    assert records[never]["JobState"] == "CANCELLED" and records[never]["Reason"] == "DependencyNeverSatisfied"
    assert not (outputs / "never.txt").exists()


STAND_IN_RUNNER = """\
#!{python}
# Stand-in for run-experiment: marks the fold finished as the real runner does
# (fold_K/done.json, written last) and records each attempt. The fold named
# "<experiment>/<fold>" in $HOLD_FOLD waits on its first attempt until the test
# requeues it; the one in $UNFINISHED_FOLD exits 0 without finishing.
import json, os, sys, time
from pathlib import Path
import yaml
config_path, _, fold = sys.argv[1:4]
config = yaml.safe_load(open(config_path))
fold_dir = Path(config["experiment"]["output_root"]) / config["experiment"]["name"] / f"fold_{{fold}}"
fold_dir.mkdir(parents=True, exist_ok=True)
restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
with open(fold_dir / "attempts.txt", "a") as attempts:
    attempts.write(restarts + "\\n")
this_fold = f"{{config['experiment']['name']}}/{{fold}}"
if this_fold == os.environ.get("HOLD_FOLD") and restarts == "0":
    time.sleep(600)
if this_fold != os.environ.get("UNFINISHED_FOLD"):
    (fold_dir / "done.json").write_text(json.dumps({{"fold": int(fold)}}))
"""

STAND_IN_COMPARE = """\
#!/bin/bash
# Stand-in for compare-losses RUN_DIR... --out DIR: lists what it was given.
mkdir -p "${@: -1}"
printf '%s\\n' "${@:1:$#-2}" > "${@: -1}/performance.md"
"""


def _install_stand_ins(folder: Path, python: str) -> None:
    folder.mkdir()
    for name, text in (("run-experiment", STAND_IN_RUNNER.format(python=python)), ("compare-losses", STAND_IN_COMPARE)):
        (folder / name).write_text(text)
        (folder / name).chmod(stat.S_IRWXU)


def _stand_in_cluster_env(tmp_path: Path, **variables: str) -> Path:
    """Cluster settings whose jobs use the project's environment with the stand-ins first on PATH."""
    if not (tmp_path / "bin").exists():
        _install_stand_ins(tmp_path / "bin", sys.executable)
    setup = f'source "{PROJECT_ROOT / ".venv/bin/activate"}"; export PATH="{tmp_path / "bin"}:$PATH"'
    return write_cluster_env(
        tmp_path / "cluster.env",
        setup=setup,
        **{"CPUS_PER_TASK": "1", "GPUS_PER_TASK": "1", "MEMORY": "64G", **variables},
    )


def _submit_grid(arguments: list[str], capsys) -> dict[str, str]:
    """Run submit-grid in this process; return its printed job ids by job kind."""
    submit.main(arguments)
    printed = capsys.readouterr().out
    return dict(
        line.split(": ", 1) for line in printed.splitlines() if line.startswith(("train: ", "compare: ", "status: "))
    )


@needs_slurm
@pytest.mark.slurm
def test_submit_grid_trains_every_fold_survives_a_requeue_then_compares(slurm_cluster, tmp_path, monkeypatch, capsys):
    """The real job scripts with stand-in commands: grid -> array -> requeue -> afterok -> collect -> compare."""
    monkeypatch.chdir(tmp_path)
    env_file = _stand_in_cluster_env(tmp_path)
    configs = [write_config(tmp_path, "dice"), write_config(tmp_path, "focal")]
    monkeypatch.setenv("HOLD_FOLD", "focal/1")

    write_data(tmp_path)

    jobs = _submit_grid(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "100M",
            "--time",
            "10",
            "--out",
            "grid",
        ],
        capsys,
    )

    held = tmp_path / "runs" / "focal" / "fold_1" / "attempts.txt"
    wait_until(held.exists, 60, "the held task did not start")
    held_task = f"{jobs['train']}_3"
    assert slurm_cluster.job_records(held_task)[held_task]["Requeue"] == "1"  # the script's --requeue
    slurm_cluster.run("scontrol", "requeue", held_task)
    records = slurm_cluster.wait_for([jobs["train"], jobs["compare"]], timeout=240)

    assert {records[f"{jobs['train']}_{task}"]["JobState"] for task in range(4)} == {"COMPLETED"}
    assert records[held_task]["Restarts"] == "1"
    assert held.read_text().split() == ["0", "1"]
    assert records[jobs["compare"]]["JobState"] == "COMPLETED"
    compared = (tmp_path / "grid" / "comparison" / "performance.md").read_text().split()
    assert compared == [str(tmp_path / "runs" / "dice"), str(tmp_path / "runs" / "focal")]
    grid_rows = (tmp_path / "grid" / "grid.tsv").read_text().splitlines()
    assert len(grid_rows) == 1 + 4
    assert "attempt 2" in (tmp_path / "grid" / "logs" / f"train_{jobs['train']}_3.log").read_text()


@needs_slurm
@pytest.mark.slurm
@pytest.mark.slow
def test_submit_grid_end_to_end_on_phantoms(slurm_cluster, tmp_path, monkeypatch, capsys):
    """The real commands: run-experiment per (config, fold) as array tasks, then compare-losses."""
    from pipeline.data.phantoms import write_kits19

    monkeypatch.chdir(tmp_path)
    write_kits19(tmp_path / "data", cases=4, seed=0, size="demo")
    tiny = {
        "experiment": {"output_root": "runs"},
        "data": {"root": "data"},
        "preprocessing": {"cache_dir": "cache"},
        "sampling": {"patch_shape": [16, 32, 32], "batches_per_epoch": 2, "val_batches": 1},
        "model": {"n_filters": 4},
        "training": {"epochs": 1},
        "cross_validation": {"folds": 2, "splits_file": "runs/splits.json"},
        "inference": {"overlap": [8, 16, 16]},
    }
    configs = []
    for loss in ("dice", "asymmetric_unified_focal"):
        config = {
            "base": str(PROJECT_ROOT / "configs" / "base" / "demo.yaml"),
            **tiny,
            "experiment": {**tiny["experiment"], "name": f"tiny_{loss}"},
            "loss": {"name": loss},
        }
        configs.append(tmp_path / f"tiny_{loss}.yaml")
        configs[-1].write_text(yaml.safe_dump(config))
    env_file = write_cluster_env(
        tmp_path / "cluster.env", setup=f'source "{PROJECT_ROOT / ".venv/bin/activate"}"', CPUS_PER_TASK="1"
    )

    jobs = _submit_grid(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "1G",
            "--time",
            "20",
            "--out",
            "grid",
        ],
        capsys,
    )
    records = slurm_cluster.wait_for([jobs["train"], jobs["compare"]], timeout=900)

    logs = "\n".join(path.read_text() for path in sorted((tmp_path / "grid" / "logs").iterdir()))
    assert {record["JobState"] for record in records.values()} == {"COMPLETED"}, logs[-6000:]
    for loss in ("dice", "asymmetric_unified_focal"):
        run_dir = tmp_path / "runs" / f"tiny_{loss}"
        assert all((run_dir / f"fold_{fold}" / "done.json").is_file() for fold in (0, 1))
        assert (run_dir / "metrics.csv").is_file()  # collected by the fold task that finished last
    comparison = tmp_path / "grid" / "comparison"
    with open(comparison / "runs.csv") as runs:
        assert [(row["loss"], row["run_dir"]) for row in csv.DictReader(runs)] == [
            ("dice", str(tmp_path / "runs" / "tiny_dice")),
            ("asymmetric_unified_focal", str(tmp_path / "runs" / "tiny_asymmetric_unified_focal")),
        ]
    performance = (comparison / "performance.md").read_text()
    assert "Dice" in performance and "Asymmetric Unified Focal" in performance
    assert (comparison / "performance.csv").is_file() and list(comparison.glob("pvalues_*.md"))


@needs_slurm
@pytest.mark.slurm
def test_comparison_job_refuses_a_grid_with_an_unfinished_fold(slurm_cluster, tmp_path, monkeypatch, capsys):
    """A task that exits 0 without finishing its fold: the comparison names the pair and compares nothing."""
    monkeypatch.chdir(tmp_path)
    env_file = _stand_in_cluster_env(tmp_path)
    configs = [write_config(tmp_path, "dice"), write_config(tmp_path, "focal")]
    monkeypatch.setenv("UNFINISHED_FOLD", "dice/1")
    write_data(tmp_path)

    jobs = _submit_grid(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "100M",
            "--time",
            "10",
            "--out",
            "grid",
        ],
        capsys,
    )
    records = slurm_cluster.wait_for([jobs["train"], jobs["compare"], jobs["status"]], timeout=240)

    assert {records[f"{jobs['train']}_{task}"]["JobState"] for task in range(4)} == {"COMPLETED"}
    assert records[jobs["compare"]]["JobState"] == "FAILED"
    log = (tmp_path / "grid" / "logs" / f"compare_{jobs['compare']}.log").read_text()
    assert f"incomplete grid, 1 of 4 folds unfinished: {configs[0].resolve()} fold 1" in log
    assert not (tmp_path / "grid" / "comparison").exists()
    # The status job (afterany) names the failed pair; --status prints the table.
    status_log = (tmp_path / "grid" / "logs" / f"status_{jobs['status']}.log").read_text()
    assert f"failed: 1 of 4 tasks: {configs[0].resolve()} fold 1 (COMPLETED)" in status_log
    rows = [line.split("\t") for line in (tmp_path / "grid" / "status.tsv").read_text().splitlines()[1:]]
    assert [(row[0], row[2]) for row in rows] == [("0", "DONE"), ("1", "COMPLETED"), ("2", "DONE"), ("3", "DONE")]
    submit.main(["--status", "grid"])
    captured = capsys.readouterr()
    assert captured.out.startswith("task\tfold\tstate\tconfig\n") and "scontrol" in captured.err


@needs_slurm
@pytest.mark.slurm
def test_compare_args_reach_the_comparison_job(slurm_cluster, tmp_path, monkeypatch, capsys):
    """submit-grid --compare-args (reproduce-paper --slurm): the comparison job runs compare-losses with them."""
    monkeypatch.chdir(tmp_path)
    env_file = _stand_in_cluster_env(tmp_path)
    recorder = tmp_path / "bin" / "compare-losses"
    recorder.write_text('#!/bin/bash\nprintf \'%s\\n\' "$@" > "$COMPARE_ARGS_FILE"\n')
    monkeypatch.setenv("COMPARE_ARGS_FILE", str(tmp_path / "compare_args.txt"))
    configs = [write_config(tmp_path, "dice"), write_config(tmp_path, "focal")]
    write_data(tmp_path)
    jobs = _submit_grid(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "100M",
            "--time",
            "10",
            "--out",
            "grid",
            "--compare-args=--paper --published mixed_focal_brats20",
        ],
        capsys,
    )
    records = slurm_cluster.wait_for([jobs["train"], jobs["compare"]], timeout=240)
    assert records[jobs["compare"]]["JobState"] == "COMPLETED"
    assert (tmp_path / "compare_args.txt").read_text().split() == [
        str(tmp_path / "runs" / "dice"),
        str(tmp_path / "runs" / "focal"),
        "--out",
        str(tmp_path / "grid" / "comparison"),
        "--paper",
        "--published",
        "mixed_focal_brats20",
    ]


@needs_slurm
@pytest.mark.slurm
@pytest.mark.parametrize("refused", ["train", "compare"])
def test_a_refused_submission_leaves_nothing_queued_and_nothing_in_out(
    slurm_cluster, tmp_path, monkeypatch, capsys, refused
):
    """A GPU request on the GPU-less test partition, or a bad comparison time limit after the array was
    accepted: nothing stays queued, --out is as it was, and the fixed command succeeds into the same --out."""
    monkeypatch.chdir(tmp_path)
    env_file = _stand_in_cluster_env(tmp_path, COMPARE_TIME_LIMIT="not-a-time" if refused == "compare" else "")
    configs = [write_config(tmp_path, "dice")]
    write_data(tmp_path)
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid" / "notes.txt").write_text("kept")
    before = listing(tmp_path / "grid")
    arguments = [*map(str, configs), "--cluster-env", str(env_file), "--mem", "100M", "--time", "10", "--out", "grid"]

    with pytest.raises(SystemExit) as exited:
        submit.main([*arguments, "--gpus", "1" if refused == "train" else "0"])

    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "sbatch refused the job" in error
    assert slurm_cluster.run("squeue", "--noheader").stdout.strip() == ""
    assert listing(tmp_path / "grid") == before
    _stand_in_cluster_env(tmp_path)  # fixed settings
    jobs = _submit_grid([*arguments, "--gpus", "0"], capsys)
    records = slurm_cluster.wait_for(list(jobs.values()), timeout=240)
    assert records[jobs["compare"]]["JobState"] == "COMPLETED"
    assert (tmp_path / "grid" / "notes.txt").read_text() == "kept"
    assert json.loads((tmp_path / "grid" / "jobs.json").read_text())["train"] == jobs["train"]


@needs_slurm
@pytest.mark.slurm
def test_the_dry_run_plan_runs_by_hand(slurm_cluster, tmp_path, monkeypatch, capsys):
    """The commands --dry-run prints, pasted into a shell, run the grid and its comparison."""
    monkeypatch.chdir(tmp_path)
    env_file = _stand_in_cluster_env(tmp_path)
    configs = [write_config(tmp_path, "dice"), write_config(tmp_path, "focal")]
    write_data(tmp_path)
    submit.main(
        [
            *map(str, configs),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "100M",
            "--time",
            "10",
            "--out",
            "grid",
            "--dry-run",
        ]
    )
    printed = capsys.readouterr().out.splitlines()
    commands = printed[printed.index(next(line for line in printed if line.startswith("plan written"))) + 1 :]
    assert len(commands) == 3

    script = "\n".join([commands[0], "echo $train", *commands[1:]])
    shell = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=False, env=slurm_cluster.environment
    )
    assert shell.returncode == 0, shell.stderr
    job_ids = shell.stdout.split()
    assert len(job_ids) == 3
    records = slurm_cluster.wait_for(job_ids, timeout=240)
    assert records[job_ids[1]]["JobState"] == "COMPLETED"
    compared = (tmp_path / "grid" / "comparison" / "performance.md").read_text().split()
    assert compared == [str(tmp_path / "runs" / "dice"), str(tmp_path / "runs" / "focal")]
    assert (tmp_path / "grid" / "status.tsv").read_text().count("DONE") == 4
    assert "Slurm states from scontrol" in (tmp_path / "grid" / "logs" / f"status_{job_ids[2]}.log").read_text()


@needs_slurm
@pytest.mark.slurm
@pytest.mark.slow
def test_a_task_preempted_mid_epoch_is_requeued_and_scores_as_an_uninterrupted_run(
    slurm_cluster, tmp_path, monkeypatch, capsys
):
    """The warning signal (scancel --signal=USR1 --batch, as --signal=B:USR1@180 sends it) reaches run-experiment
    through the batch shell; the task exits 75, requeues itself, resumes, and scores exactly as a run never stopped."""
    from pipeline.data.phantoms import write_kits19
    from pipeline.runner_cli import main as run_experiment

    monkeypatch.chdir(tmp_path)
    write_kits19(tmp_path / "data", cases=4, seed=0, size="demo")
    configs = {}
    for name in ("preempted", "reference"):
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(
            yaml.safe_dump(
                {
                    "base": str(PROJECT_ROOT / "configs" / "base" / "demo.yaml"),
                    "experiment": {"name": name, "output_root": "runs"},
                    "data": {"root": "data"},
                    "preprocessing": {"cache_dir": "cache", "target_spacing": [6.0, 6.0, 6.0]},
                    "sampling": {"patch_shape": [8, 32, 32], "batches_per_epoch": 12, "val_batches": 1},
                    "model": {"n_filters": 2, "depth": 2},
                    "loss": {"name": "dice"},
                    "training": {"epochs": 3},
                    "cross_validation": {"folds": 2, "splits_file": "runs/splits.json"},
                    "inference": {"overlap": [4, 16, 16]},
                }
            )
        )
    env_file = write_cluster_env(
        tmp_path / "cluster.env", setup=f'source "{PROJECT_ROOT / ".venv/bin/activate"}"', CPUS_PER_TASK="1"
    )

    jobs = _submit_grid(
        [
            str(configs["preempted"]),
            "--cluster-env",
            str(env_file),
            "--gpus",
            "0",
            "--mem",
            "1G",
            "--time",
            "30",
            "--out",
            "grid",
        ],
        capsys,
    )
    state = tmp_path / "runs" / "preempted" / "fold_0" / "checkpoints" / "state.json"
    wait_until(state.exists, 600, "fold 0 did not finish its first epoch")
    task = f"{jobs['train']}_0"
    slurm_cluster.run("scancel", "--signal=USR1", "--batch", task)
    records = slurm_cluster.wait_for([jobs["train"], jobs["compare"], jobs["status"]], timeout=900)

    log = (tmp_path / "grid" / "logs" / f"train_{jobs['train']}_0.log").read_text()
    assert records[task]["JobState"] == "COMPLETED" and records[task]["Restarts"] == "1", log[-3000:]
    assert "stopped by SIGUSR1" in log and f"requeueing {task}" in log and "(attempt 2)" in log
    assert records[f"{jobs['train']}_1"]["JobState"] == "COMPLETED"

    assert run_experiment([str(configs["reference"])]) == 0
    for name in ("metrics.csv", "fold_0/log.csv", "fold_0/metrics.csv"):
        assert (tmp_path / "runs" / "preempted" / name).read_text() == (
            tmp_path / "runs" / "reference" / name
        ).read_text()
