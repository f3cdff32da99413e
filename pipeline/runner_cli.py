"""``run-experiment CONFIG [--fold K] [--seeds S1,S2,...] [--seed S] [--set a.b=value ...]
[--sweep a.b=v1,v2 ...] [--print-run-dir] [--plan] [-v | -q] [--version]``.

Trains, cross-validates and scores one experiment config (see
``pipeline.experiment``), or with ``--sweep`` one run per combination of the
swept values (see ``pipeline.sweep``). Running the same command again skips
finished folds and resumes an unfinished one from its last epoch. ``--seeds``
repeats the whole cross-validation once per seed (``experiment.seeds``; folds
in ``seed_S/fold_K/``, see ``pipeline.run_layout``); ``--seed S`` runs only
that seed's folds, as ``--fold K`` runs one fold (a Slurm task runs one pair). SIGTERM or
SIGUSR1 (a cluster's preemption or time-limit warning) stops it with exit
status 75 (``pipeline.training.preemption``): rerun it to resume.
"""

from __future__ import annotations

import argparse
import logging

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pipeline import console
from pipeline.errors import exits_cleanly
from pipeline.training.preemption import requeues_when_preempted

logger = logging.getLogger(__name__)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run-experiment", description="Train, cross-validate and score one experiment config; resumable."
    )
    parser.add_argument("config", help="experiment YAML file, e.g. configs/kits19_asymmetric_unified_focal.yaml")
    parser.add_argument(
        "--fold",
        type=int,
        action="append",
        metavar="K",
        help="run only fold K (0-based; repeatable); metrics are collected once all folds are done",
    )
    parser.add_argument(
        "--seeds",
        metavar="S1,S2,...",
        help="repeat the cross-validation once per training seed (same split), e.g. --seeds 0,1,2; "
        "sets experiment.seeds",
    )
    parser.add_argument(
        "--seed",
        dest="only_seeds",
        type=int,
        action="append",
        metavar="S",
        help="run only the folds of seed S, one of experiment.seeds (repeatable); "
        "metrics are collected once every seed's folds are done",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set training.epochs=3 (repeatable)",
    )
    parser.add_argument(
        "--sweep",
        dest="sweeps",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="run once per value (repeatable: every combination), e.g. "
        "--sweep loss.params.gamma=0.1,0.3,0.5; runs go to "
        "<output_root>/<name>-sweep/",
    )
    parser.add_argument(
        "--print-run-dir",
        action="store_true",
        help="print <experiment.output_root>/<experiment.name> (with --sweep: the sweep folder) and exit",
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the resolved data set, preprocessing, model and folds, and exit (writes nothing)",
    )
    console.add_arguments(parser)
    return parser.parse_args(argv)


@requeues_when_preempted
@exits_cleanly
def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    console.configure(arguments)
    if arguments.seeds is not None:
        from pipeline.config import seeds_override

        arguments.overrides = [*arguments.overrides, seeds_override(arguments.seeds)]
    if arguments.sweeps:
        return _run_sweep(arguments)
    from pipeline.config import load_config

    config = load_config(arguments.config, arguments.overrides)
    if arguments.print_run_dir:
        print(config.run_dir)
        return 0
    if arguments.plan:
        from pipeline.plan import experiment_plan, format_plan

        print(format_plan(experiment_plan(config)))
        return 0
    from pipeline.experiment import run_experiment

    run_experiment(config, folds=arguments.fold, seeds=arguments.only_seeds)
    return 0


def _run_sweep(arguments: argparse.Namespace) -> int:
    """Every member of the sweep in order; finished folds are skipped, as for one run."""
    from pipeline.sweep import check_sweep_folder, claim_sweep_folder, expand_sweep

    sweep = expand_sweep(arguments.config, arguments.sweeps, arguments.overrides)
    if arguments.print_run_dir:
        print(sweep.folder)
        return 0
    if arguments.plan:
        from pipeline.plan import experiment_plan, format_plan

        for number, member in enumerate(sweep.members, start=1):
            print(f"sweep {number}/{len(sweep.members)}: {member.name}\n{format_plan(experiment_plan(member.config))}")
        return 0
    from pipeline.experiment import run_experiment
    from pipeline.preflight import check_config

    check_sweep_folder(sweep)
    for member in sweep.members:  # every member's data and run folder, before anything is written
        check_config(member.config)
        member.config.chosen_seeds(arguments.only_seeds)
    claim_sweep_folder(sweep)
    for number, member in enumerate(sweep.members, start=1):
        setting = ", ".join(f"{key}={value}" for key, value in member.values.items())
        logger.info("sweep %d/%d: %s (%s)", number, len(sweep.members), member.name, setting)
        run_experiment(member.config, folds=arguments.fold, seeds=arguments.only_seeds)
    logger.info(
        "sweep: %d runs in %s; compare them with sweep-report %s", len(sweep.members), sweep.folder, sweep.folder
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
