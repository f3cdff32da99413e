"""K-fold splits of the case ids: one seeded assignment, saved and reused by every loss.

The paper (Yeung et al. 2021, section III.D) makes "a single random assignment
of scans to each fold and uses the resulting configuration to evaluate all
loss functions", so results pair by case. The split is stored as
``splits.json``: a list with one ``{"train": [...], "val": [...]}`` per fold;
the validation sets partition the cases and each fold trains on the rest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline.atomic_files import write_atomically
from pipeline.errors import DataError


def make_splits(case_ids: Sequence[str], folds: int, seed: int) -> list[dict[str, list[str]]]:
    """Shuffle the cases with ``seed`` and cut them into ``folds`` near-equal validation sets.

    Raises ``ValueError`` if there are fewer cases than folds.
    """
    case_ids = sorted(case_ids)
    if len(case_ids) < folds:
        raise ValueError(f"{len(case_ids)} cases cannot fill {folds} folds")
    order = np.random.default_rng(seed).permutation(len(case_ids))
    val_sets = [sorted(case_ids[i] for i in part) for part in np.array_split(order, folds)]
    return [{"train": sorted(set(case_ids) - set(val)), "val": val} for val in val_sets]


def check_splits(splits, case_ids: Sequence[str], folds: int, path) -> None:
    """Raise ``DataError(path, ...)`` unless ``splits`` is a valid ``folds``-fold split of ``case_ids``."""
    if not isinstance(splits, list) or not all(
        isinstance(fold, dict) and set(fold) == {"train", "val"} and all(isinstance(fold[key], list) for key in fold)
        for fold in splits
    ):
        raise DataError(path, 'expected a list of {"train": [...], "val": [...]} per fold')
    if len(splits) != folds:
        raise DataError(path, f"has {len(splits)} folds, the config asks for {folds} (cross_validation.folds)")
    cases = set(case_ids)
    val_cases = [case for fold in splits for case in fold["val"]]
    unknown = sorted(set(val_cases) - cases)
    if unknown:
        raise DataError(
            path,
            f"lists cases the data set does not have: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}",
        )
    missing = sorted(cases - set(val_cases))
    if missing:
        raise DataError(
            path,
            f"no fold validates cases {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''} (made for another data set "
            "or other exclusions?)",
        )
    if len(val_cases) != len(set(val_cases)):
        raise DataError(path, "a case is in the validation set of two folds")
    for index, fold in enumerate(splits):
        if sorted(fold["train"]) != sorted(cases - set(fold["val"])):
            raise DataError(path, f"fold {index}: train is not the complement of val")


def read_splits(path, case_ids: Sequence[str], folds: int):
    """The splits in ``path``, validated against the cases; ``None`` if the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        splits = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(path, f"not a readable JSON file ({error})") from None
    check_splits(splits, case_ids, folds, path)
    return splits


def load_or_create_splits(path, case_ids: Sequence[str], folds: int, seed: int):
    """The splits in ``path`` if it exists (validated), else new ones written there atomically."""
    path = Path(path)
    splits = read_splits(path, case_ids, folds)
    if splits is not None:
        return splits
    try:
        splits = make_splits(case_ids, folds, seed)
    except ValueError as error:
        raise DataError(path, str(error)) from None
    write_atomically(path, json.dumps(splits, indent=1) + "\n")
    return splits
