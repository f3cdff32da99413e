"""The grid of a batch submission: one array task per (config, fold) pair, or (config, seed, fold).

``submit-grid`` writes the grid as a tab-separated file with a header line::

    task    config                          fold    run_dir
    0       /abs/configs/kits19_dice.yaml   0       /abs/runs/kits19_dice
    1       /abs/configs/kits19_dice.yaml   1       /abs/runs/kits19_dice

Array task ``task`` runs ``run-experiment <config> --fold <fold>``
(``scripts/slurm/train_array.sbatch`` looks its row up with awk), and the
comparison job reads the run folders back (``pipeline.batch.collect``). Paths
are absolute so that jobs do not depend on their working directory.

A config of several seeds (``experiment.seeds``) gives one task per seed and
fold, and the grid then has a fifth column ``seed``; its task runs
``run-experiment <config> --fold <fold> --seed <seed>`` and owns
``seed_S/fold_K/`` (``pipeline.run_layout``). A grid of one-seed configs
keeps the four columns above.

Tasks of one grid must write to disjoint folders: each config owns its run
folder ``<output_root>/<experiment.name>`` and each task one ``fold_K/`` in it,
so two configs whose run folders coincide or nest are refused.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from pipeline.atomic_files import write_atomically
from pipeline.errors import ConfigError, DataError
from pipeline.run_layout import fold_dir

if TYPE_CHECKING:
    from pipeline.config import ExperimentConfig

COLUMNS = ("task", "config", "fold", "run_dir")
SEED_COLUMNS = (*COLUMNS, "seed")
"""A grid with a config of several seeds: the seed of each task ('' for a one-seed config's task)."""


@dataclass(frozen=True)
class GridTask:
    """One array task: train and score fold ``fold`` (of seed ``seed``, several seeds) of the experiment."""

    task: int
    config: Path
    fold: int
    run_dir: Path
    seed: int | None = None

    @property
    def done_marker(self) -> Path:
        """``fold_K/done.json`` (``seed_S/fold_K/``), which run-experiment writes last when the fold is finished."""
        return fold_dir(self.run_dir, self.fold, self.seed) / "done.json"

    @property
    def name(self) -> str:
        """``fold K`` or ``seed S fold K``, for messages."""
        return f"fold {self.fold}" if self.seed is None else f"seed {self.seed} fold {self.fold}"


def plan_grid(config_paths: Sequence[str | Path], working_dir: Path, overrides: Sequence[str] = ()) -> list[GridTask]:
    """Validate every config and list its folds as tasks, in the order given.

    Args:
        config_paths: experiment configs; each contributes
            ``cross_validation.folds`` tasks.
        working_dir: the folder the jobs run in; relative paths in the configs
            (``experiment.output_root``) are relative to it.
        overrides: ``--set`` values applied to every config (the tasks get them too).

    Raises:
        ConfigError: a config is invalid, or two configs would write to the
            same (or a nested) run folder; the message names both configs.
    """
    from pipeline.config import load_config

    return plan_tasks([(Path(path), load_config(path, overrides)) for path in config_paths], working_dir)


def plan_tasks(configs: Sequence[tuple[Path, "ExperimentConfig"]], working_dir: Path) -> list[GridTask]:
    """The tasks of already validated ``(config file, config)`` pairs (see :func:`plan_grid`)."""
    owners: dict[Path, Path] = {}
    tasks: list[GridTask] = []
    for path, config in configs:
        config_file = Path(path).resolve()
        run_dir = (working_dir / config.run_dir).resolve()
        for other_dir, other_config in owners.items():
            if run_dir == other_dir or run_dir.is_relative_to(other_dir) or other_dir.is_relative_to(run_dir):
                raise ConfigError(
                    f"{path}: writes to {run_dir}, which overlaps {other_dir} of {other_config}; "
                    "give each config of a grid its own experiment.name"
                )
        owners[run_dir] = config_file
        for run_fold in config.run_folds():
            seed = run_fold.seed if config.seeded_layout else None
            tasks.append(GridTask(len(tasks), config_file, run_fold.fold, run_dir, seed))
    return tasks


def write_grid(path: Path, tasks: Sequence[GridTask]) -> None:
    """Write the grid file atomically (a job never reads half a grid)."""
    for task in tasks:
        for value in (task.config, task.run_dir):
            if any(character in str(value) for character in "\t\n\r"):
                raise ConfigError(f"{value}: a tab or line break in a path cannot go into the grid file")
    seeded = any(task.seed is not None for task in tasks)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_NONE)
    writer.writerow(SEED_COLUMNS if seeded else COLUMNS)
    writer.writerows(
        (task.task, task.config, task.fold, task.run_dir, *([""] if task.seed is None else [task.seed]))
        if seeded
        else (task.task, task.config, task.fold, task.run_dir)
        for task in tasks
    )
    write_atomically(path, buffer.getvalue())


def read_grid(path: Path) -> list[GridTask]:
    """Read a grid file written by :func:`write_grid`.

    Raises:
        DataError: the file is missing or not a grid file.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise DataError(path, f"cannot read the grid file ({error.strerror or error})") from None
    header = tuple(lines[0].split("\t")) if lines else ()
    if header not in (COLUMNS, SEED_COLUMNS):
        raise DataError(path, f"not a grid file: the first line must be {' '.join(COLUMNS)} [seed] (tab-separated)")
    tasks = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        seed = fields[4] if len(fields) == len(header) == len(SEED_COLUMNS) else ""
        if (
            len(fields) != len(header)
            or not fields[0].isdigit()
            or not fields[2].isdigit()
            or not (seed == "" or seed.isdigit())
        ):
            raise DataError(path, f"line {number}: expected {', '.join(header)}")
        tasks.append(
            GridTask(int(fields[0]), Path(fields[1]), int(fields[2]), Path(fields[3]), int(seed) if seed else None)
        )
    if not tasks:
        raise DataError(path, "the grid lists no tasks")
    return tasks
