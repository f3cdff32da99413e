"""Stage 1: the data sets as published, and phantom data sets in the same layouts.

    from pipeline.data import open_dataset
    dataset = open_dataset("kits19", root)              # also "brats20", "nnunet", "msd"
    dataset = open_dataset("miscnn", root, interface={"class": "miscnn.data_loading.interfaces.NIFTI_interface",
                                                      "args": {"classes": 3}})
    case = dataset.load(dataset.case_ids()[0])

The readers build on MIScnn, whose import loads TensorFlow (seconds); names
are therefore imported on first use, so ``make-phantoms`` starts instantly.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "open_dataset": "pipeline.data.registry",
    "DATASETS": "pipeline.data.registry",
    "Case": "pipeline.data.case",
    "NiftiDataset": "pipeline.data.dataset",
    "KiTS19": "pipeline.data.kits19",
    "BraTS20": "pipeline.data.brats20",
    "NnUNetDataset": "pipeline.data.nnunet",
    "DecathlonDataset": "pipeline.data.decathlon",
    "InterfaceDataset": "pipeline.data.interface",
    "ImageDataset": "pipeline.data.image_dataset",
    "CVCClinicDB": "pipeline.data.cvc_clinicdb",
    "DRIVE": "pipeline.data.drive",
    "BUS2017": "pipeline.data.bus2017",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
