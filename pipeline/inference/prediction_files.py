"""Prediction files: NIfTI for volumes, PNG for 2D images, each as the published images are stored.

A volume's label map goes to ``<case_id>.nii.gz`` with the image's affine; a
2D image's to ``<case_id>.png`` at the image's own size, 0/255 for a binary
task like the data sets' masks (any viewer shows it;
``pipeline.data.image_files.read_label_png`` gives back 0/1). On request a
2D prediction is also written as a (H, W) NIfTI file with the identity affine
(``predictions_nifti/``), for tools that only read NIfTI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.data.image_files import write_label_png
from pipeline.data.nifti import write_nifti

#: File ending of a prediction by the number of spatial dimensions.
SUFFIXES = {2: ".png", 3: ".nii.gz"}


def prediction_path(folder, case_id: str, spatial_dims: int) -> Path:
    """``<folder>/<case_id>.png`` (2D) or ``.nii.gz`` (3D)."""
    return Path(folder) / f"{case_id}{SUFFIXES[spatial_dims]}"


def find_prediction(folder, case_id: str) -> Path:
    """The case's prediction in ``folder``, whichever format it was written in (PNG first)."""
    for suffix in SUFFIXES.values():
        path = Path(folder) / f"{case_id}{suffix}"
        if path.is_file():
            return path
    return Path(folder) / f"{case_id}{SUFFIXES[3]}"


def write_prediction(
    path: Path, labels: np.ndarray, affine: np.ndarray, num_classes: int, nifti_copy: Path | None = None
) -> None:
    """Write a label map in the format ``path`` names, atomically; a PNG's labels also to ``nifti_copy`` if given.

    The copy goes to a folder of its own (``predictions_nifti/``), so that a
    predictions folder holds one label map per case.
    """
    labels = np.asarray(labels, dtype=np.uint8)
    if str(path).endswith(".png"):
        if nifti_copy is not None:
            write_nifti(nifti_copy, labels, affine)
        write_label_png(path, labels, num_classes)
    else:
        write_nifti(path, labels, affine)
