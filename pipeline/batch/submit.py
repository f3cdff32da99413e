"""``submit-grid``: train every (config, fold) pair as one Slurm array job, then compare the losses.

    submit-grid CONFIG [CONFIG ...] [--set KEY=VALUE ...] [--sweep KEY=V1,V2,...] [--partition P]
                [--account A] [--gpus N] [--cpus N] [--time T] [--mem M] [--out DIR] [--cluster-env FILE]
                [--compare-args=ARGS] [--dry-run] [-v | -q] [--version]
    submit-grid --status DIR

First every config and its data are checked (``pipeline.preflight``: the
whole data set is verified once, then remembered), so a grid never starts on
input that cannot work. Then three jobs are submitted with ``sbatch --parsable``:

1. ``scripts/slurm/train_array.sbatch`` as an array of one task per row of
   ``DIR/grid.tsv``, each running ``run-experiment CONFIG --fold K [--seed S] [--set KEY=VALUE ...]``. Tasks
   ask for a warning signal before their time limit, and a task stopped by
   it (or by preemption) exits with ``REQUEUE_EXIT_CODE`` and is requeued;
   the runner resumes from its last checkpoint, losing at most one epoch.
2. ``scripts/slurm/compare.sbatch`` with ``--dependency=afterok:<array>``:
   checks that every fold wrote its ``done.json`` (``pipeline.batch.collect``)
   and runs ``compare-losses`` into ``DIR/comparison/``, with ``--compare-args``
   added (e.g. ``--compare-args="--paper --published mixed_focal_brats20"``, as
   ``reproduce-paper --slurm`` passes them).
3. ``scripts/slurm/status.sbatch`` with ``--dependency=afterany:<array>``:
   writes ``DIR/status.tsv`` and names the failed (config, fold) pairs in its log.

Submission is all or nothing: the array is submitted held, the plan (grid
file, the job scripts with the variables they need, ``logs/``, ``jobs.json``)
is written once Slurm accepted every job, and only then is the array
released. If sbatch refuses a job, the accepted ones are cancelled and
``DIR`` is left as it was, so the same command with fixed settings succeeds
into the same ``DIR``. ``--dry-run`` writes the same plan without
``jobs.json`` and prints the sbatch commands that submit it by hand.

sbatch options come from ``scripts/slurm/cluster.env`` (or ``--cluster-env``);
the command-line flags override them. Jobs run in the current directory,
against which relative paths in the configs are resolved. Configs of one
grid should be one data set's losses: ``compare-losses`` pairs them by case.
``--status DIR`` prints every task's state (``pipeline.batch.status``).
``--sweep`` (one CONFIG) submits the expansion of ``run-experiment --sweep``:
each member a resolved config in ``DIR/configs/``, the sweep folder's
``sweep.json`` written with the plan, and ``sweep-report`` as the comparison.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Sequence

import pipeline
from pipeline import console
from pipeline.atomic_files import write_atomically
from pipeline.batch.cluster_settings import ClusterSettings, read_cluster_settings
from pipeline.batch.grid import GridTask, plan_tasks, write_grid
from pipeline.errors import ConfigError, UnifocalError, exits_cleanly

PROJECT_ROOT = Path(pipeline.__file__).resolve().parent.parent
SLURM_SCRIPTS = PROJECT_ROOT / "scripts" / "slurm"
JOB_SCRIPTS = ("train_array.sbatch", "compare.sbatch", "status.sbatch")


def training_command(
    task_count: int, settings: ClusterSettings, out_dir: Path, working_dir: Path, script: Path | None = None
) -> list[str]:
    """The sbatch command line of the training array.

    Args:
        task_count: rows of the grid; the array has one task per row.
        settings: cluster settings with the command-line flags applied.
        out_dir: the grid's folder (logs go to ``out_dir/logs``).
        working_dir: where the jobs run.
        script: the job script; ``None``: sbatch reads it from its standard input.
    """
    return [
        "sbatch",
        "--parsable",
        f"--chdir={working_dir}",
        f"--array=0-{task_count - 1}",
        f"--output={out_dir / 'logs'}/train_%A_%a.log",
        *settings.training_options(),
        *([str(script)] if script else []),
    ]


def compare_command(
    settings: ClusterSettings, out_dir: Path, working_dir: Path, train_job_id: str, script: Path | None = None
) -> list[str]:
    """The sbatch command line of the comparison job, which waits for the whole array.

    ``--kill-on-invalid-dep=yes``: if a training task fails, the comparison is
    cancelled instead of waiting in the queue forever.
    """
    return [
        "sbatch",
        "--parsable",
        f"--chdir={working_dir}",
        f"--dependency=afterok:{train_job_id}",
        "--kill-on-invalid-dep=yes",
        f"--output={out_dir / 'logs'}/compare_%j.log",
        *settings.compare_options(),
        *([str(script)] if script else []),
    ]


def status_command(
    settings: ClusterSettings, out_dir: Path, working_dir: Path, train_job_id: str, script: Path | None = None
) -> list[str]:
    """The sbatch command line of the status job: after the array, however it ended, it writes ``status.tsv``."""
    return [
        "sbatch",
        "--parsable",
        f"--chdir={working_dir}",
        f"--dependency=afterany:{train_job_id}",
        f"--export=ALL,UNIFOCAL_TRAIN_JOB={train_job_id}",
        f"--output={out_dir / 'logs'}/status_%j.log",
        *settings.compare_options(),
        *([str(script)] if script else []),
    ]


def task_command(task: GridTask, overrides: Sequence[str] = ()) -> list[str]:
    """What array task ``task`` runs (``scripts/slurm/train_array.sbatch`` builds the same line)."""
    return [
        "run-experiment",
        str(task.config),
        "--fold",
        str(task.fold),
        *(["--seed", str(task.seed)] if task.seed is not None else []),
        *(argument for override in overrides for argument in ("--set", override)),
    ]


def job_scripts(variables: dict[str, str]) -> dict[str, str]:
    """The job scripts with ``export`` lines for ``variables`` after their ``#SBATCH`` header."""
    scripts = {}
    for name in JOB_SCRIPTS:
        lines = (SLURM_SCRIPTS / name).read_text().splitlines()
        header = max(index for index, line in enumerate(lines) if line.startswith("#SBATCH")) + 1
        exports = ["# Set by submit-grid:"] + [f"export {key}={shlex.quote(value)}" for key, value in variables.items()]
        scripts[name] = "\n".join(lines[:header] + exports + lines[header:]) + "\n"
    return scripts


def grid_configs(args: argparse.Namespace, out_dir: Path):
    """The grid's ``(config file, config)`` pairs, and the files a sweep adds to the plan.

    Without ``--sweep`` the configs are the files given. With it, each member
    of the sweep (``pipeline.sweep``) becomes a resolved config written to
    ``DIR/configs/<member>.yaml``, and the sweep folder gets its ``sweep.json``
    (the comparison job then runs ``sweep-report``).
    """
    from pipeline.config import load_config

    if not args.sweeps:
        return [(Path(path), load_config(path, args.overrides)) for path in args.configs], {}
    from pipeline.sweep import check_sweep_folder, expand_sweep, manifest_text

    if len(args.configs) != 1:
        raise ConfigError(f"--sweep: expands one CONFIG, got {len(args.configs)}")
    sweep = expand_sweep(args.configs[0], args.sweeps, args.overrides)
    files = {out_dir / "configs" / f"{member.name}.yaml": member.config.to_yaml() for member in sweep.members}
    if check_sweep_folder(sweep):
        files[Path.cwd() / sweep.folder / "sweep.json"] = manifest_text(sweep)
    return [(out_dir / "configs" / f"{member.name}.yaml", member.config) for member in sweep.members], files


def preflight_grid(configs) -> None:
    """Check every config of the grid and its data before anything is submitted (``pipeline.preflight``)."""
    from pipeline.preflight import check_config

    for _, config in configs:
        check_config(config)


def write_plan(
    out_dir: Path,
    tasks: Sequence[GridTask],
    scripts: dict[str, str],
    jobs: dict | None = None,
    files: dict[Path, str] | None = None,
) -> list[Path]:
    """Write the grid file, the job scripts, ``logs/``, ``files`` (and ``jobs.json``); return what was created."""
    created = [path for path in (out_dir, out_dir / "logs") if not path.exists()]
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    for path, text in (files or {}).items():
        created += [folder for folder in reversed(path.parents) if not folder.exists()] + [path]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    for name, text in scripts.items():
        created.append(out_dir / name)
        write_atomically(out_dir / name, text)
        (out_dir / name).chmod(0o755)
    created.append(out_dir / "grid.tsv")
    write_grid(out_dir / "grid.tsv", tasks)
    if jobs is not None:
        created.append(out_dir / "jobs.json")
        write_atomically(out_dir / "jobs.json", json.dumps(jobs, indent=1) + "\n")
    return created


def _submit(command: list[str], script: str) -> str:
    """Run one ``sbatch --parsable`` command with the job script on its stdin; return the job id."""
    completed = _slurm(command, script)
    if completed.returncode != 0:
        problem = completed.stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        raise UnifocalError(f"sbatch refused the job: {problem[0]}")
    return completed.stdout.strip().split(";")[0]  # "<id>" or "<id>;<cluster>"


def _slurm(command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UnifocalError(
            f"{command[0]}: not found; run submit-grid where Slurm is installed (a login node), or use --dry-run"
        ) from None


def submit_plan(
    out_dir: Path,
    tasks: Sequence[GridTask],
    scripts: dict[str, str],
    commands: dict,
    files: dict[Path, str] | None = None,
) -> dict:
    """Submit the array held, then its comparison and status jobs, write the plan, release the array.

    All or nothing: if sbatch refuses a job or writing fails, the jobs
    already accepted are cancelled and the files written are removed, so
    the same command can be run again into the same ``out_dir``.
    """
    accepted: list[str] = []
    created: list[Path] = []
    try:
        train = _submit([*commands["train"][:2], "--hold", *commands["train"][2:]], scripts["train_array.sbatch"])
        accepted.append(train)
        jobs = {"train": train}
        for kind, script in (("compare", "compare.sbatch"), ("status", "status.sbatch")):
            jobs[kind] = _submit(commands[kind](train), scripts[script])
            accepted.append(jobs[kind])
        created = write_plan(out_dir, tasks, scripts, jobs, files)
        released = _slurm(["scontrol", "release", train])
        if released.returncode != 0:
            raise UnifocalError(f"scontrol release {train} failed: {released.stderr.strip()}")
        return jobs
    except BaseException:
        if accepted:
            _slurm(["scancel", *accepted])
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="submit-grid",
        description="Submit every (config, fold) pair as a Slurm array job and a compare-losses job after it.",
    )
    parser.add_argument("configs", nargs="*", type=Path, metavar="CONFIG", help="experiment configs (YAML)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value of every config, in every task, e.g. --set training.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--seeds",
        metavar="S1,S2,...",
        help="train every config once per seed (same split), one task per seed and fold, "
        "as run-experiment --seeds; sets experiment.seeds",
    )
    parser.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="one task set per combination of values, as run-experiment --sweep (one CONFIG); "
        "the comparison job runs sweep-report",
    )
    parser.add_argument("--partition", help="Slurm partition (default: cluster.env's PARTITION)")
    parser.add_argument("--account", help="Slurm account (default: cluster.env's ACCOUNT)")
    parser.add_argument("--gpus", type=int, help="GPUs per training task, 0 for none (default: GPUS_PER_TASK)")
    parser.add_argument("--cpus", type=int, help="CPUs per training task (default: CPUS_PER_TASK)")
    parser.add_argument("--time", help="time limit per training task, e.g. 24:00:00 (default: TIME_LIMIT)")
    parser.add_argument("--mem", help="memory per job, e.g. 64G (default: MEMORY)")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for grid.tsv, logs/ and comparison/ (default: <first config's output_root>/grid-<date>-<time>)",
    )
    parser.add_argument(
        "--cluster-env",
        type=Path,
        default=SLURM_SCRIPTS / "cluster.env",
        help="cluster settings file (default: scripts/slurm/cluster.env)",
    )
    parser.add_argument(
        "--compare-args",
        default="",
        metavar="ARGS",
        help="options added to the comparison job's compare-losses, e.g. "
        "--compare-args='--paper --published mixed_focal_brats20'",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="write the plan (grid, job scripts, logs/) and print the sbatch commands; submit nothing",
    )
    parser.add_argument(
        "--status",
        type=Path,
        metavar="DIR",
        help="print the state of every task of the grid submitted into DIR, and exit",
    )
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    console.configure(args)
    if args.status is not None:
        if args.configs:
            raise ConfigError("--status DIR takes no CONFIG arguments")
        from pipeline.batch.status import report

        report(args.status)
        return 0
    if not args.configs:
        parser.error("the following arguments are required: CONFIG")
    for flag, value in (("--gpus", args.gpus), ("--cpus", args.cpus)):
        if value is not None and value < 0:
            raise ConfigError(f"{flag}: expected a whole number, got {value}")
    compare_args = shlex.split(args.compare_args)
    if any(not argument or any(character.isspace() for character in argument) for argument in compare_args):
        raise ConfigError(f"--compare-args: {args.compare_args!r}: options must not contain spaces")
    settings = read_cluster_settings(args.cluster_env).updated(
        partition=args.partition,
        account=args.account,
        gpus_per_task=args.gpus,
        cpus_per_task=args.cpus,
        time_limit=args.time,
        memory=args.mem,
    )
    working_dir = Path.cwd()
    if args.seeds is not None:
        from pipeline.config import seeds_override

        args.overrides = [*args.overrides, seeds_override(args.seeds)]
    if any("\n" in override for override in args.overrides):
        raise ConfigError("--set: a value with a line break cannot be passed to the tasks")
    from pipeline.config import load_config

    first = load_config(args.configs[0], args.overrides)
    default_out = first.experiment.output_root / time.strftime("grid-%Y%m%d-%H%M%S")
    out_dir = (working_dir / (args.out or default_out)).resolve()
    configs, files = grid_configs(args, out_dir)
    tasks = plan_tasks(configs, working_dir)
    if (out_dir / "jobs.json").exists():
        raise ConfigError(
            f"{out_dir / 'jobs.json'}: a grid was already submitted from this folder; "
            "choose another --out (submit-grid --status shows its tasks)"
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: --out exists and is not a folder")
    preflight_grid(configs)

    scripts = job_scripts(
        {
            "UNIFOCAL_ROOT": str(PROJECT_ROOT),
            "UNIFOCAL_GRID": str(out_dir / "grid.tsv"),
            "UNIFOCAL_CLUSTER_ENV": str(args.cluster_env.resolve()),
            "UNIFOCAL_COMPARISON": str(out_dir / "comparison"),
            "UNIFOCAL_COMPARE_ARGS": " ".join(compare_args),
            "UNIFOCAL_OVERRIDES": "" if args.sweeps else "\n".join(args.overrides),  # a sweep's configs hold them
            "UNIFOCAL_SWEEP": str(working_dir / configs[0][1].experiment.output_root) if args.sweeps else "",
        }
    )
    configs = len(dict.fromkeys(task.config for task in tasks))
    print(f"grid: {out_dir / 'grid.tsv'} ({len(tasks)} tasks: {configs} configs x their folds)")
    if args.dry_run:
        write_plan(out_dir, tasks, scripts, files=files)
        for task in tasks:
            print(f"  task {task.task}: {shlex.join(task_command(task, [] if args.sweeps else args.overrides))}")
        print(f"plan written to {out_dir}; submit it with:")
        train = training_command(len(tasks), settings, out_dir, working_dir, out_dir / "train_array.sbatch")
        print(f"train=$({shlex.join(train)}) && train=${{train%%;*}}")
        for command, script in ((compare_command, "compare.sbatch"), (status_command, "status.sbatch")):
            line = shlex.join(command(settings, out_dir, working_dir, "@train@", out_dir / script))
            print(line.replace("@train@", "$train"))
        if compare_args:
            print(f"compare-losses options: {shlex.join(compare_args)}")
        return 0

    jobs = submit_plan(
        out_dir,
        tasks,
        scripts,
        {
            "train": training_command(len(tasks), settings, out_dir, working_dir),
            "compare": lambda train: compare_command(settings, out_dir, working_dir, train),
            "status": lambda train: status_command(settings, out_dir, working_dir, train),
        },
        files,
    )
    for kind in ("train", "compare", "status"):
        print(f"{kind}: {jobs[kind]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
