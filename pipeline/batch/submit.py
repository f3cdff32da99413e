"""``submit-grid``: train every (config, fold) pair as one Slurm array job, then compare the losses.

    submit-grid CONFIG [CONFIG ...] [--set KEY=VALUE ...] [--partition P] [--account A] [--gpus N]
                [--cpus N] [--time T] [--mem M] [--out DIR] [--cluster-env FILE] [--compare-args=ARGS]
                [--dry-run] [-v | -q] [--version]

Validates every config, writes ``DIR/grid.tsv`` (one row per array task, see
``pipeline.batch.grid``) and submits two jobs with ``sbatch --parsable``:

1. ``scripts/slurm/train_array.sbatch`` as an array of one task per row, each
   running ``run-experiment CONFIG --fold K [--set KEY=VALUE ...]``. Tasks are requeueable and the
   runner resumes from its last checkpoint, so a preempted task loses at most
   one epoch.
2. ``scripts/slurm/compare.sbatch`` with ``--dependency=afterok:<array>``: it
   starts only when every task succeeded, checks that every fold wrote its
   ``done.json`` (``pipeline.batch.collect``) and runs ``compare-losses`` on
   the run folders into ``DIR/comparison/``, with ``--compare-args`` added
   (e.g. ``--compare-args="--paper --published mixed_focal_brats20"``, as
   ``reproduce-paper --slurm`` passes them).

sbatch options come from ``scripts/slurm/cluster.env`` (or ``--cluster-env``);
the command-line flags override them. Job logs go to ``DIR/logs/``. Prints
the job ids; ``--dry-run`` prints the grid and the sbatch commands instead and
writes nothing. Jobs run in the current directory, against which relative
paths in the configs are resolved. Configs of one grid should be one data
set's losses: ``compare-losses`` pairs them by case.

If a task fails or runs out of time, Slurm cancels the comparison (the
dependency can no longer be met). Submit the same configs again with another
``--out``: finished folds are skipped, unfinished ones resume from their last
checkpoint, and the comparison runs once all are done.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import time
from pathlib import Path
from typing import Sequence

import pipeline
from pipeline import console
from pipeline.batch.cluster_settings import ClusterSettings, read_cluster_settings
from pipeline.batch.grid import GridTask, plan_grid, write_grid
from pipeline.errors import ConfigError, UnifocalError, exits_cleanly

PROJECT_ROOT = Path(pipeline.__file__).resolve().parent.parent
SLURM_SCRIPTS = PROJECT_ROOT / "scripts" / "slurm"


def training_command(task_count: int, settings: ClusterSettings, out_dir: Path,
                     working_dir: Path) -> list[str]:
    """The sbatch command line of the training array.

    Args:
        task_count: rows of the grid; the array has one task per row.
        settings: cluster settings with the command-line flags applied.
        out_dir: the grid's folder (logs go to ``out_dir/logs``).
        working_dir: where the jobs run.
    """
    return ["sbatch", "--parsable", f"--chdir={working_dir}", f"--array=0-{task_count - 1}",
            f"--output={out_dir / 'logs'}/train_%A_%a.log", *settings.training_options(),
            str(SLURM_SCRIPTS / "train_array.sbatch")]


def compare_command(settings: ClusterSettings, out_dir: Path, working_dir: Path,
                    train_job_id: str) -> list[str]:
    """The sbatch command line of the comparison job, which waits for the whole array.

    ``--kill-on-invalid-dep=yes``: if a training task fails, the comparison is
    cancelled instead of waiting in the queue forever.
    """
    return ["sbatch", "--parsable", f"--chdir={working_dir}",
            f"--dependency=afterok:{train_job_id}", "--kill-on-invalid-dep=yes",
            f"--output={out_dir / 'logs'}/compare_%j.log", *settings.compare_options(),
            str(SLURM_SCRIPTS / "compare.sbatch")]


def task_command(task: GridTask, overrides: Sequence[str] = ()) -> list[str]:
    """What array task ``task`` runs (``scripts/slurm/train_array.sbatch`` builds the same line)."""
    return ["run-experiment", str(task.config), "--fold", str(task.fold),
            *(argument for override in overrides for argument in ("--set", override))]


def _submit(command: list[str], environment: dict[str, str]) -> str:
    """Run one ``sbatch --parsable`` command and return the job id it prints."""
    try:
        completed = subprocess.run(command, capture_output=True, text=True, env=environment)
    except FileNotFoundError:
        raise UnifocalError("sbatch: not found; run submit-grid where Slurm is installed "
                            "(a login node), or use --dry-run") from None
    if completed.returncode != 0:
        problem = completed.stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise UnifocalError(f"sbatch refused the job: {problem[0]}")
    return completed.stdout.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="submit-grid",
        description="Submit every (config, fold) pair as a Slurm array job and a compare-losses job after it.",
    )
    parser.add_argument("configs", nargs="+", type=Path, metavar="CONFIG", help="experiment configs (YAML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of every config, in every task, e.g. --set training.epochs=3 "
                             "(repeatable)")
    parser.add_argument("--partition", help="Slurm partition (default: cluster.env's PARTITION)")
    parser.add_argument("--account", help="Slurm account (default: cluster.env's ACCOUNT)")
    parser.add_argument("--gpus", type=int, help="GPUs per training task, 0 for none (default: GPUS_PER_TASK)")
    parser.add_argument("--cpus", type=int, help="CPUs per training task (default: CPUS_PER_TASK)")
    parser.add_argument("--time", help="time limit per training task, e.g. 24:00:00 (default: TIME_LIMIT)")
    parser.add_argument("--mem", help="memory per job, e.g. 64G (default: MEMORY)")
    parser.add_argument("--out", type=Path,
                        help="folder for grid.tsv, logs/ and comparison/ "
                             "(default: <first config's output_root>/grid-<date>-<time>)")
    parser.add_argument("--cluster-env", type=Path, default=SLURM_SCRIPTS / "cluster.env",
                        help="cluster settings file (default: scripts/slurm/cluster.env)")
    parser.add_argument("--compare-args", default="", metavar="ARGS",
                        help="options added to the comparison job's compare-losses, e.g. "
                             "--compare-args='--paper --published mixed_focal_brats20'")
    parser.add_argument("--dry-run", action="store_true", help="print the grid and the sbatch commands only")
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console.configure(args)
    for flag, value in (("--gpus", args.gpus), ("--cpus", args.cpus)):
        if value is not None and value < 0:
            raise ConfigError(f"{flag}: expected a whole number, got {value}")
    compare_args = shlex.split(args.compare_args)
    if any(not argument or any(character.isspace() for character in argument) for argument in compare_args):
        raise ConfigError(f"--compare-args: {args.compare_args!r}: options must not contain spaces")
    settings = read_cluster_settings(args.cluster_env).updated(
        partition=args.partition, account=args.account, gpus_per_task=args.gpus,
        cpus_per_task=args.cpus, time_limit=args.time, memory=args.mem,
    )
    working_dir = Path.cwd()
    if any("\n" in override for override in args.overrides):
        raise ConfigError("--set: a value with a line break cannot be passed to the tasks")
    tasks = plan_grid(args.configs, working_dir, args.overrides)
    default_out = tasks[0].run_dir.parent / time.strftime("grid-%Y%m%d-%H%M%S")
    out_dir = (working_dir / (args.out or default_out)).resolve()
    grid_file = out_dir / "grid.tsv"
    if grid_file.exists():
        raise ConfigError(f"{grid_file}: a grid was already submitted from this folder; choose another --out")

    configs = len(dict.fromkeys(task.config for task in tasks))
    summary = f"grid: {grid_file} ({len(tasks)} tasks: {configs} configs x their folds)"
    train = training_command(len(tasks), settings, out_dir, working_dir)
    print(summary)
    if args.dry_run:
        for task in tasks:
            print(f"  task {task.task}: {shlex.join(task_command(task, args.overrides))}")
        print(f"train: {shlex.join(train)}")
        compare = compare_command(settings, out_dir, working_dir, "<train-job-id>")
        print(f"compare: {shlex.join(compare)}")
        if compare_args:
            print(f"compare-losses options: {shlex.join(compare_args)}")
        return 0

    write_grid(grid_file, tasks)
    (out_dir / "logs").mkdir(exist_ok=True)
    environment = dict(
        os.environ,
        UNIFOCAL_ROOT=str(PROJECT_ROOT),
        UNIFOCAL_GRID=str(grid_file),
        UNIFOCAL_CLUSTER_ENV=str(args.cluster_env.resolve()),
        UNIFOCAL_COMPARISON=str(out_dir / "comparison"),
        UNIFOCAL_COMPARE_ARGS=" ".join(compare_args),
        UNIFOCAL_OVERRIDES="\n".join(args.overrides),
    )
    train_job_id = _submit(train, environment)
    print(f"train: {train_job_id}", flush=True)
    compare = compare_command(settings, out_dir, working_dir, train_job_id)
    print(f"compare: {_submit(compare, environment)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
