"""The comparison job's first step: refuse an incomplete grid, else list its run folders.

    python -m pipeline.batch.collect GRID_FILE

prints the run folders of the grid, one per line in grid order, when every
(config, fold) pair has its ``fold_K/done.json`` (run-experiment writes it
last, so it exists only for finished folds). Otherwise it prints one line
naming the missing pairs and exits with status 2, so that
``scripts/slurm/compare.sbatch`` never compares partial results.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from pipeline import console
from pipeline.batch.grid import GridTask, read_grid
from pipeline.errors import DataError, exits_cleanly


def unfinished_tasks(tasks: Sequence[GridTask]) -> list[GridTask]:
    """The tasks whose fold has no ``done.json`` yet."""
    return [task for task in tasks if not task.done_marker.is_file()]


def finished_run_dirs(grid_file: Path) -> list[Path]:
    """The grid's run folders, each once, in grid order, if every fold is finished.

    Raises:
        DataError: naming the grid file and every unfinished (config, fold) pair.
    """
    tasks = read_grid(grid_file)
    missing = unfinished_tasks(tasks)
    if missing:
        pairs = "; ".join(f"{task.config} {task.name}" for task in missing)
        raise DataError(grid_file, f"incomplete grid, {len(missing)} of {len(tasks)} folds unfinished: {pairs}")
    return list(dict.fromkeys(task.run_dir for task in tasks))


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.batch.collect",
        description="Check that every (config, fold) of a grid is finished; print its run folders.",
    )
    parser.add_argument("grid_file", type=Path, metavar="GRID_FILE", help="grid.tsv written by submit-grid")
    console.add_arguments(parser)
    args = parser.parse_args(argv)
    console.configure(args)
    for run_dir in finished_run_dirs(args.grid_file):
        print(run_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
