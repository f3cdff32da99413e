"""``open_dataset``: a published data set by name, as the experiment config names it."""

from __future__ import annotations

import inspect

from pipeline.data.brats20 import BraTS20
from pipeline.data.bus2017 import BUS2017
from pipeline.data.cvc_clinicdb import CVCClinicDB
from pipeline.data.dataset import NiftiDataset
from pipeline.data.decathlon import DecathlonDataset
from pipeline.data.interface import InterfaceDataset
from pipeline.data.drive import DRIVE
from pipeline.data.image_dataset import ImageDataset
from pipeline.data.kits19 import KiTS19
from pipeline.data.nnunet import NnUNetDataset
from pipeline.errors import ConfigError

DATASETS: dict[str, type[NiftiDataset] | type[InterfaceDataset] | type[ImageDataset]] = {
    dataset.name: dataset
    for dataset in (KiTS19, BraTS20, NnUNetDataset, DecathlonDataset, InterfaceDataset, CVCClinicDB, DRIVE, BUS2017)
}


def open_dataset(name: str, root, **options) -> NiftiDataset | InterfaceDataset | ImageDataset:
    """Open the data set ``name`` ("kits19", "brats20", "nnunet", "msd", "miscnn"; 2D: "cvc", "drive",
    "bus2017") under ``root``.

    ``options`` are the reader's keyword arguments (``exclude``, ``label_map``,
    ``modalities``, ``exclude_without_label``; see ``KiTS19``, ``BraTS20``, ``NnUNetDataset``,
    ``DecathlonDataset``; ``interface`` for "miscnn", see ``InterfaceDataset``; 2D: ``color``,
    DRIVE's ``restrict_to_fov``, see ``CVCClinicDB``, ``DRIVE``, ``BUS2017``).
    Raises ``ConfigError`` for an unknown name or option, ``DataError`` for bad data.
    """
    try:
        dataset = DATASETS[name]
    except KeyError:
        raise ConfigError(f"data.dataset: unknown data set {name!r} (known: {', '.join(DATASETS)})") from None
    parameters = inspect.signature(dataset).parameters
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ConfigError(f"data.{unknown[0]}: not an option of data set {name!r}")
    try:
        inspect.signature(dataset).bind(root, **options)
    except TypeError as error:
        raise ConfigError(f"data: {error} for data set {name!r}") from None
    return dataset(root, **options)
