"""Where a run keeps its folds, with one training seed or several.

One seed (the default): ``<run_dir>/fold_K/``. Several seeds
(``experiment.seeds``): ``<run_dir>/seed_S/fold_K/`` for every seed S and fold
K, and every table collected from the folds (``metrics.csv``, any per-fold CSV
with a ``fold`` column) gets a ``seed`` column right after ``fold``. Imports no
stage, so every stage (and the Slurm grid) finds fold folders the same way.

The fold's seed (initial weights, patch sampling, augmentation) is
``S + K`` with one seed (``experiment.seed + K``, as before seeds existed) and
``S · folds + K`` with several, distinct for every (seed, fold) of the run.
The split never depends on S.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

SEED_COLUMN = "seed"
RESCORE_RECORD = "rescore.json"
"""What ``evaluate RUN_DIR`` used to rescore a run; it marks ``RUN_DIR/rescored/<name>/`` as a rescoring."""


@dataclass(frozen=True)
class RunFold:
    """One training task of a run: fold ``fold`` trained with seed ``seed``, its files in ``path``."""

    seed: int
    fold: int
    path: Path


def seeded_layout(seeds: Sequence[int]) -> bool:
    """Whether a run with these seeds keeps its folds under ``seed_S/`` (more than one seed)."""
    return len(seeds) > 1


def fold_dir(run_dir: Path | str, fold: int, seed: int | None = None) -> Path:
    """``run_dir/fold_K``, or ``run_dir/seed_S/fold_K`` when ``seed`` is given (a run of several seeds)."""
    run_dir = Path(run_dir)
    return run_dir / f"fold_{fold}" if seed is None else run_dir / f"seed_{seed}" / f"fold_{fold}"


def rescored_dir(run_dir: Path | str, name: str) -> Path:
    """``run_dir/rescored/<name>``: where ``evaluate RUN_DIR --name NAME`` writes its scores."""
    return Path(run_dir) / "rescored" / name


def rescoring_of(folder: Path | str) -> Path | None:
    """The run folder that ``folder`` is a rescoring of (``RUN_DIR/rescored/<name>``), else ``None``."""
    folder = Path(folder)
    return folder.parent.parent if (folder / RESCORE_RECORD).is_file() else None


def run_folds(run_dir: Path | str, seeds: Sequence[int], folds: int | Iterable[int]) -> list[RunFold]:
    """Every (seed, fold, fold folder) of a run, seed-major: all folds of the first seed first.

    Args:
        run_dir: the run folder.
        seeds: the run's training seeds (``ExperimentConfig.training_seeds``); one seed keeps today's layout.
        folds: the number of folds, or the fold numbers.
    """
    fold_numbers = list(range(folds)) if isinstance(folds, int) else list(folds)
    seeded = seeded_layout(seeds)
    return [
        RunFold(seed, fold, fold_dir(run_dir, fold, seed if seeded else None))
        for seed in seeds
        for fold in fold_numbers
    ]


def fold_seed(seed: int, fold: int, seeds: Sequence[int], folds: int) -> int:
    """The seed of fold ``fold`` trained with ``seed`` (weights, patches, augmentation); see the module doc."""
    return seed * folds + fold if seeded_layout(seeds) else seed + fold


def found_fold_dirs(run_dir: Path | str) -> list[tuple[int | None, int, Path]]:
    """``(seed or None, fold, folder)`` of every ``fold_K`` and ``seed_S/fold_K`` folder on disk, sorted.

    For readers that have no config at hand (training logs of a finished run).
    """
    run_dir = Path(run_dir)
    found = []
    for path in run_dir.glob("fold_*"):
        if (match := re.fullmatch(r"fold_(\d+)", path.name)) and path.is_dir():
            found.append((None, int(match.group(1)), path))
    for path in run_dir.glob("seed_*/fold_*"):
        seed_match = re.fullmatch(r"seed_(\d+)", path.parent.name)
        fold_match = re.fullmatch(r"fold_(\d+)", path.name)
        if seed_match and fold_match and path.is_dir():
            found.append((int(seed_match.group(1)), int(fold_match.group(1)), path))
    return sorted(found, key=lambda item: (-1 if item[0] is None else item[0], item[1]))


def with_seed_column(rows: Sequence[Mapping], seed: int) -> list[dict]:
    """``rows`` with a ``seed`` value placed right after ``fold`` (first when there is no ``fold``)."""
    placed = []
    for row in rows:
        items = [(key, value) for key, value in row.items() if key != SEED_COLUMN]
        at = next((index + 1 for index, (key, _) in enumerate(items) if key == "fold"), 0)
        placed.append(dict([*items[:at], (SEED_COLUMN, seed), *items[at:]]))
    return placed


def collect_fold_rows(
    folds: Sequence[RunFold], name: str, read: Callable[[Path], list[dict]], seeded: bool
) -> list[dict]:
    """The rows of every fold's ``name`` file in order, each with its ``seed`` when ``seeded``.

    ``read`` parses one file into row dicts (``metrics.read_metrics_csv``, or
    :func:`read_csv_rows` for any CSV). With one seed the rows are returned as
    read, so the collected file stays exactly as before seeds existed.
    """
    rows = []
    for task in folds:
        read_rows = read(task.path / name)
        rows += with_seed_column(read_rows, task.seed) if seeded else read_rows
    return rows


def read_csv_rows(path: Path) -> list[dict]:
    """A CSV file's rows as dicts of strings, in file order (for collecting any per-fold table unchanged)."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def csv_text(rows: Sequence[Mapping]) -> str:
    """Rows as CSV text, columns in the first row's order (``\\n`` line ends, as every table of a run)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
