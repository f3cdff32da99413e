"""Everything that can be wrong with an experiment's input, checked before its first write.

``run-experiment`` and ``submit-grid`` call :func:`check_experiment` after
opening the data set and before writing ``config.yaml``, ``splits.json``
or the cache: bad input then stops with one line and leaves every output
location as it was. It checks, reading only:

* ``cross_validation.folds`` against the number of cases;
* a run folder made with another config (``config.yaml`` differs);
* the splits files that exist (the shared one and the run's own copy);
* every case of the data set (``pipeline.data.verify``): the only write,
  the record of verified files in ``preprocessing.cache_dir``, happens when
  all of them passed.
"""

from __future__ import annotations

import yaml

from pipeline.config import ExperimentConfig
from pipeline.data.verify import verify_dataset
from pipeline.errors import ConfigError, DataError
from pipeline.training.cross_validation import read_splits


def check_experiment(config: ExperimentConfig, dataset, progress: bool = True) -> list[dict] | None:
    """Check ``config`` and its data; return the splits already on disk (``None`` if none yet).

    Raises:
        ConfigError: too many folds for the cases, or a run folder made with another config.
        DataError: a bad case or splits file, naming the file.
    """
    case_ids = dataset.case_ids()
    check_folds(config, len(case_ids))
    check_run_dir(config)
    splits = existing_splits(config, case_ids)
    verify_dataset(dataset, record_dir=config.preprocessing.cache_dir, progress=progress)
    return splits


def check_config(config: ExperimentConfig) -> None:
    """Open the config's data set and :func:`check_experiment` it (for commands that write before training)."""
    from pipeline.data import open_dataset

    dataset = open_dataset(config.data.dataset, config.data.root, **config.data.dataset_options())
    check_experiment(config, dataset)


def check_folds(config: ExperimentConfig, cases: int) -> None:
    folds = config.cross_validation.folds
    if folds > cases:
        raise ConfigError(
            f"cross_validation.folds: {folds} folds need at least {folds} cases; {config.data.root} has {cases} to use"
        )


#: ``training`` keys that decide only what happens after a non-finite loss; a rerun may change them
#: (e.g. to ``on_nonfinite: restore`` after a stop): a fault-free fold trains the same either way.
FAULT_HANDLING_KEYS = ("on_nonfinite", "nonfinite_retries", "nonfinite_lr_factor")


def check_run_dir(config: ExperimentConfig) -> None:
    """Raise ``ConfigError`` if the run folder's ``config.yaml`` differs from ``config`` (naming the keys)."""
    path = config.run_dir / "config.yaml"
    if not path.exists():
        return
    try:
        previous = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        raise ConfigError(f"{path}: unreadable; delete the run folder or choose another experiment.name") from None
    current = yaml.safe_load(config.to_yaml())
    for mapping in (previous, current):  # how a fault is handled may change between attempts
        training = mapping.get("training") if isinstance(mapping, dict) else None
        if isinstance(training, dict):
            for key in FAULT_HANDLING_KEYS:
                training.pop(key, None)
    if previous != current:
        keys = differing_keys(previous, current)
        raise ConfigError(
            f"{path}: this run folder was made with another config (differs at "
            f"{', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}); choose another "
            "experiment.name or delete the folder"
        )


def differing_keys(previous, current, prefix: str = "") -> list[str]:
    """Dotted paths of the values that differ between two nested mappings."""
    if isinstance(previous, dict) and isinstance(current, dict):
        return [
            key
            for name in sorted(set(previous) | set(current), key=str)
            for key in differing_keys(previous.get(name), current.get(name), f"{prefix}{name}.")
        ]
    return [] if previous == current else [prefix.rstrip(".")]


def existing_splits(config: ExperimentConfig, case_ids: list[str]) -> list[dict] | None:
    """The splits already written for this run (shared file first), validated; ``None`` if none."""
    folds = config.cross_validation.folds
    shared = config.cross_validation.splits_file
    own_path = config.run_dir / "splits.json"
    own = read_splits(own_path, case_ids, folds)
    if shared is None:
        return own
    splits = read_splits(shared, case_ids, folds)
    if own is not None and splits is not None and own != splits:
        raise DataError(
            own_path,
            f"differs from the shared splits file {shared}, which changed after "
            "this run started; restore it or start a new run",
        )
    return splits if splits is not None else own
