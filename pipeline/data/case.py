"""One case of a data set, as the preprocessing stage receives it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Case:
    """An image with its label map, on the voxel grid of the published files.

    Attributes:
        case_id: the case's folder name, e.g. "case_00000", "BraTS20_Training_001".
        image: float32 (D, H, W, M), the NIfTI array axes, one channel per modality.
        label: uint8 (D, H, W), classes 0..num_classes-1 (after the data set's label map).
        spacing: voxel size in mm per array axis, from the header's zooms.
        affine: 4x4 float64 NIfTI affine of the image; predictions are written with it.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray


class LabelledCases:
    """What every data set exposes about its cases: their ids and the class names of their labels.

    Subclasses set ``_case_ids`` (sorted) and ``labels`` (a ``pipeline.data.labels.LabelMapping``).
    """

    _case_ids: list[str]

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.labels.class_names

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def case_ids(self) -> list[str]:
        return list(self._case_ids)
