"""``open_dataset``: a published data set by name, as the experiment config names it."""

from __future__ import annotations

import inspect

from pipeline.data.brats20 import BraTS20
from pipeline.data.dataset import NiftiDataset
from pipeline.data.kits19 import KiTS19
from pipeline.errors import ConfigError

DATASETS: dict[str, type[NiftiDataset]] = {dataset.name: dataset for dataset in (KiTS19, BraTS20)}


def open_dataset(name: str, root, **options) -> NiftiDataset:
    """Open the data set ``name`` ("kits19" or "brats20") in its published layout under ``root``.

    ``options`` are the reader's keyword arguments (``exclude``, ``label_map``,
    ``modalities``, ``exclude_without_label``; see ``KiTS19`` and ``BraTS20``).
    Raises ``ConfigError`` for an unknown name or option, ``DataError`` for bad data.
    """
    try:
        dataset = DATASETS[name]
    except KeyError:
        raise ConfigError(f"data.name: unknown data set {name!r} (known: {', '.join(DATASETS)})") from None
    try:
        inspect.signature(dataset).bind(root, **options)
    except TypeError as error:
        raise ConfigError(f"data: {error} for data set {name!r}") from None
    return dataset(root, **options)
