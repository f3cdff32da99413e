"""The state of every (config, fold) task of a submitted grid.

    submit-grid --status DIR            # the table, from Slurm and the run folders
    python -m pipeline.batch.status DIR --write   # also DIR/status.tsv (the grid's status job)

A fold with ``done.json`` is ``DONE`` whatever Slurm says. For the others the
state comes from ``sacct`` when the cluster keeps accounting, else from
``scontrol show job`` (which forgets a job ``MinJobAge`` seconds after it
ended), else ``UNKNOWN``. The array's job id comes from ``DIR/jobs.json``,
which ``submit-grid`` writes once Slurm accepted the jobs (or, in the status
job, from ``$UNIFOCAL_TRAIN_JOB``).

The grid's status job (``scripts/slurm/status.sbatch``, ``afterany`` on the
array) runs this with ``--write``: its log and ``DIR/status.tsv`` name the
failed (config, fold) pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from collections.abc import Sequence

from pipeline.atomic_files import write_atomically
from pipeline.batch.grid import GridTask, read_grid
from pipeline.errors import DataError, exits_cleanly

FINISHED_WITHOUT_RESULT = (
    "FAILED",
    "TIMEOUT",
    "CANCELLED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "COMPLETED",
)


def train_job_id(grid_dir: Path) -> str | None:
    """The array's job id: ``$UNIFOCAL_TRAIN_JOB`` (set in the status job), else ``DIR/jobs.json``, else ``None``."""
    if os.environ.get("UNIFOCAL_TRAIN_JOB"):
        return os.environ["UNIFOCAL_TRAIN_JOB"]
    path = Path(grid_dir) / "jobs.json"
    if not path.exists():
        return None  # a --dry-run plan submitted by hand
    try:
        return str(json.loads(path.read_text())["train"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DataError(path, f"unreadable ({error})") from None


def slurm_task_states(array_job_id: str) -> tuple[dict[int, str], str]:
    """``{array task: Slurm state}`` and where they came from (``sacct``, ``scontrol`` or ``none``)."""
    try:
        completed = subprocess.run(
            ["sacct", "--noheader", "--parsable2", "--array", "--jobs", array_job_id, "--format=JobID,State"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if completed.returncode == 0 and completed.stdout.strip():
            states = {}
            for line in completed.stdout.splitlines():
                job, _, state = line.partition("|")
                match = re.fullmatch(rf"{re.escape(array_job_id)}_(\d+)", job)
                if match:
                    states[int(match.group(1))] = state.split()[0]
            if states:
                return states, "sacct"
        completed = subprocess.run(
            ["scontrol", "--oneliner", "show", "job", array_job_id],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}, "none"
    states = {}
    for line in completed.stdout.splitlines() if completed.returncode == 0 else []:
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        for number in _task_range(fields.get("ArrayTaskId", "")):  # pending tasks share one record, "0-3"
            states[number] = fields.get("JobState", "UNKNOWN")
    return states, "scontrol" if states else "none"


def _task_range(spec: str) -> list[int]:
    numbers = []
    for part in spec.strip("[]").split("%")[0].split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            numbers += list(range(int(low), int(high or low) + 1))
    return numbers


def task_table(grid_dir: Path) -> tuple[list[tuple[GridTask, str]], str]:
    """Every task with its state, and the source of the Slurm states."""
    grid_dir = Path(grid_dir)
    tasks = read_grid(grid_dir / "grid.tsv")
    job_id = train_job_id(grid_dir)
    states, source = slurm_task_states(job_id) if job_id else ({}, "none")
    table = []
    for task in tasks:
        if task.done_marker.is_file():
            table.append((task, "DONE"))
        else:
            table.append((task, states.get(task.task, "UNKNOWN")))
    return table, source


def failed(table: list[tuple[GridTask, str]]) -> list[GridTask]:
    """Tasks that ended without their fold's ``done.json``."""
    return [task for task, state in table if state in FINISHED_WITHOUT_RESULT]


def format_table(table: list[tuple[GridTask, str]]) -> str:
    if any(task.seed is not None for task, _ in table):
        lines = ["task\tseed\tfold\tstate\tconfig"]
        lines += [
            f"{task.task}\t{'' if task.seed is None else task.seed}\t{task.fold}\t{state}\t{task.config}"
            for task, state in table
        ]
    else:
        lines = ["task\tfold\tstate\tconfig"]
        lines += [f"{task.task}\t{task.fold}\t{state}\t{task.config}" for task, state in table]
    return "\n".join(lines) + "\n"


def report(grid_dir: Path, write: bool = False) -> int:
    """Print the table (and write ``status.tsv``); return how many tasks failed."""
    table, source = task_table(grid_dir)
    text = format_table(table)
    print(text, end="")
    note = {
        "sacct": "Slurm states from sacct",
        "scontrol": "Slurm states from scontrol (no accounting storage: ended jobs are forgotten after MinJobAge)",
        "none": "no Slurm states available (no job id, no sacct accounting, or jobs no longer known to scontrol)",
    }[source]
    print(f"# {note}; DONE means the fold wrote done.json", file=sys.stderr)
    bad = failed(table)
    if bad:
        print(
            f"failed: {len(bad)} of {len(table)} tasks: "
            + "; ".join(f"{task.config} {task.name} ({state})" for task, state in table if task in bad)
        )
    if write:
        write_atomically(Path(grid_dir) / "status.tsv", text)
    return len(bad)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.batch.status", description="Print the state of every task of a submitted grid."
    )
    parser.add_argument("grid_dir", type=Path, metavar="DIR", help="the grid's --out folder")
    parser.add_argument("--write", action="store_true", help="also write DIR/status.tsv")
    args = parser.parse_args(argv)
    report(args.grid_dir, write=args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
