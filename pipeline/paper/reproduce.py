"""``reproduce-paper``: train and compare every run of a published table, the way the paper computed it.

    reproduce-paper TABLE [TABLE ...] [--set KEY=VALUE ...] [--results DIR] [--print]
                    [--slurm [--slurm-option OPTION ...]]
    reproduce-paper --list

TABLE is a table id (``reproduce-paper --list``), a data set (every table of
``kits19``, ``brats20``, ``cvc``, ``drive``, ``bus2017``) or ``all``. For each table, the plan is: one
``run-experiment CONFIG`` per run of the table (a run shared by two tables is
trained once), then ``compare-losses RUN_DIR ... --out DIR/<table> --paper``
with the table's runs only, so that the Holm family is the table's pairs, and
``--published <table>`` where the paper's numbers survived. ``--set``
overrides go to every ``run-experiment`` and decide the run folders the
comparison reads. ``--print`` prints the plan and runs nothing.

``--slurm`` sends the same plan to ``submit-grid``: one grid per table, whose
comparison job runs the same ``compare-losses`` options. ``submit-grid`` reads
config files, so with ``--set`` the resolved configs are written first to
``DIR/<table>/configs/``. Tables that share a run cannot go in one ``--slurm``
call (their arrays would train the same folds at once): submit them one after
the other; finished folds are skipped.

Every config is validated (with the overrides) before anything runs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pipeline import console
from pipeline.errors import ConfigError, UnifocalError, exits_cleanly
from pipeline.paper.registry import TABLES, PaperTable, tables_named

MODULES = {
    "run-experiment": "pipeline.runner_cli",
    "compare-losses": "pipeline.evaluation.compare",
    "submit-grid": "pipeline.batch.submit",
}
"""The module behind each command of a plan (``python -m MODULE`` runs it)."""

log = logging.getLogger(__name__)


@dataclass
class TablePlan:
    """The commands of one table: its new runs (not already in an earlier table's plan) and its comparison."""

    table: PaperTable
    run_dirs: list[Path]
    runs: list[list[str]] = field(default_factory=list)
    compare: list[str] = field(default_factory=list)


def compare_options(table: PaperTable) -> list[str]:
    """The paper's statistics, and the published numbers where the table has any."""
    return ["--paper", *(["--published", table.id] if table.published else [])]


def plan_tables(tables: Sequence[PaperTable], overrides: Sequence[str], results: Path) -> list[TablePlan]:
    """Validate every config with the overrides and list each table's commands.

    Raises:
        ConfigError: a config is missing or invalid (naming the file and key), or two
            runs of one table would write to the same run folder.
    """
    from pipeline.config import load_config

    sets = [part for override in overrides for part in ("--set", override)]
    planned: set[str] = set()
    plans = []
    for table in tables:
        run_dirs: dict[Path, str] = {}
        plan = TablePlan(table, [])
        for config_path in table.configs:
            run_dir = load_config(config_path, list(overrides)).run_dir
            if run_dir in run_dirs:
                raise ConfigError(
                    f"{config_path}: writes to {run_dir} like {run_dirs[run_dir]} in table "
                    f"{table.id}; give each run its own experiment.name"
                )
            run_dirs[run_dir] = config_path
            plan.run_dirs.append(run_dir)
            if config_path not in planned:
                planned.add(config_path)
                plan.runs.append(["run-experiment", config_path, *sets])
        plan.compare = [
            "compare-losses",
            *map(str, plan.run_dirs),
            "--out",
            str(results / table.id),
            *compare_options(table),
        ]
        plans.append(plan)
    return plans


def header_lines(table: PaperTable) -> list[str]:
    return [f"# {table.id}: {table.title}", *(f"#   {note}" for note in table.notes)]


def _run(command: list[str]) -> None:
    """Run one command of the plan as ``python -m MODULE ARGS``; stop the plan if it fails."""
    log.info("+ %s", shlex.join(command))
    for handler in logging.getLogger().handlers:
        handler.flush()
    completed = subprocess.run([sys.executable, "-m", MODULES[command[0]], *command[1:]], check=False)
    if completed.returncode != 0:
        raise UnifocalError(f"{command[0]} failed (exit status {completed.returncode}); the plan stops here")


# --- Slurm -----------------------------------------------------------------------------------


def _shared_runs(plans: Sequence[TablePlan]) -> list[str]:
    seen: dict[Path, str] = {}
    shared = []
    for plan in plans:
        for run_dir in plan.run_dirs:
            if run_dir in seen:
                shared.append(f"{run_dir} ({seen[run_dir]} and {plan.table.id})")
            seen.setdefault(run_dir, plan.table.id)
    return shared


def slurm_command(
    plan: TablePlan, overrides: Sequence[str], results: Path, slurm_options: Sequence[str]
) -> tuple[list[str], list[tuple[str, Path]]]:
    """``submit-grid`` for one table, and the resolved configs it needs written first (with ``--set``)."""
    table_dir = results / plan.table.id
    to_write = []
    if overrides:
        configs = []
        for config_path in plan.table.configs:
            target = table_dir / "configs" / Path(config_path).name
            to_write.append((config_path, target))
            configs.append(str(target))
    else:
        configs = list(plan.table.configs)
    command = [
        "submit-grid",
        *configs,
        "--out",
        str(table_dir / "grid"),
        f"--compare-args={shlex.join(compare_options(plan.table))}",
        *slurm_options,
    ]
    return command, to_write


def _write_resolved(config_path: str, target: Path, overrides: Sequence[str]) -> None:
    from pipeline.atomic_files import write_atomically
    from pipeline.config import load_config

    write_atomically(target, load_config(config_path, list(overrides)).to_yaml())


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reproduce-paper",
        description="Train every run of a published table and compare them as the paper did "
        "(rank-sum test, Holm over the table, interval over fold means).",
    )
    parser.add_argument(
        "tables",
        nargs="*",
        metavar="TABLE",
        help="table ids (see --list), a data set (kits19, brats20, cvc, drive, bus2017) or all",
    )
    parser.add_argument("--list", action="store_true", help="list the tables and exit")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value of every run, e.g. --set training.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("results/paper"),
        metavar="DIR",
        help="comparisons go to DIR/<table> (default: results/paper)",
    )
    parser.add_argument("--print", dest="print_only", action="store_true", help="print the plan; run nothing")
    parser.add_argument("--slurm", action="store_true", help="submit each table with submit-grid instead")
    parser.add_argument(
        "--slurm-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="passed to submit-grid, e.g. --slurm-option=--partition=gpu (repeatable)",
    )
    console.add_arguments(parser)
    return parser


def _list_tables() -> None:
    for table in TABLES.values():
        published = " (published numbers beside ours)" if table.published else ""
        print(f"{table.id}: {table.title}, {len(table.configs)} runs{published}")


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args)
    if args.list:
        _list_tables()
        return 0
    if not args.tables:
        raise UnifocalError("name a table, a data set or all (reproduce-paper --list shows the tables)")
    try:
        tables = tables_named(args.tables)
    except KeyError as error:
        raise UnifocalError(f"unknown table or data set: {error.args[0]}; reproduce-paper --list shows them") from None
    plans = plan_tables(tables, args.overrides, args.results)

    if args.slurm:
        shared = _shared_runs(plans)
        if shared:
            raise UnifocalError(f"--slurm: tables share runs, submit them one after the other: {'; '.join(shared)}")
        commands = [slurm_command(plan, args.overrides, args.results, args.slurm_option) for plan in plans]
        for plan, (command, to_write) in zip(plans, commands):
            if args.print_only:
                print("\n".join(header_lines(plan.table)))
                for source, target in to_write:
                    print(f"# writes {target}: {source} with the --set overrides")
                print(shlex.join(command))
                continue
            for source, target in to_write:
                _write_resolved(source, target, args.overrides)
            _run(command)
        return 0

    for plan in plans:
        if args.print_only:
            print("\n".join(header_lines(plan.table)))
            print("\n".join(shlex.join(command) for command in [*plan.runs, plan.compare]))
            continue
        for command in [*plan.runs, plan.compare]:
            _run(command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
