"""``run-experiment CONFIG [--fold K] [--set a.b=value ...] [--print-run-dir]``.

Trains, cross-validates and scores one experiment config (see
``pipeline.experiment``). Running the same command again skips finished folds
and resumes an unfinished one from its last epoch.
"""

from __future__ import annotations

import argparse

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pipeline.errors import exits_cleanly


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="run-experiment",
        description="Train, cross-validate and score one experiment config; resumable.")
    parser.add_argument("config", help="experiment YAML file, e.g. configs/kits19_asymmetric_unified_focal.yaml")
    parser.add_argument("--fold", type=int, action="append", metavar="K",
                        help="run only fold K (0-based; repeatable); metrics are collected once all folds are done")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.epochs=3 (repeatable)")
    parser.add_argument("--print-run-dir", action="store_true",
                        help="print <experiment.output_root>/<experiment.name> and exit")
    return parser.parse_args(argv)


@exits_cleanly
def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    from pipeline.config import load_config

    config = load_config(arguments.config, arguments.overrides)
    if arguments.print_run_dir:
        print(config.run_dir)
        return 0
    from pipeline.experiment import run_experiment

    run_experiment(config, folds=arguments.fold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
