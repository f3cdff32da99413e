"""One case through preprocessing, and predictions back to the case's original grid.

The steps are MIScnn subfunctions run on a MIScnn ``Sample``, so the same
objects also plug into ``miscnn.Preprocessor``:

1. clip intensities (MIScnn's ``Clipping``), on the original grid as in the
   papers, so that bright bone cannot bleed into soft tissue when resampled;
2. resample to a spacing (``LinearResampling``) or resize to a fixed grid
   (``LinearResize``, 2D images of varying size): linear image, label-safe labels;
3. z-score (``ZScoreNormalization``). MIScnn's KiTS19 example normalises
   before resampling; linear interpolation commutes with the affine z-score
   map, so only the voxels the statistics are taken over differ, and the
   result has exactly mean 0 and std 1 while the statistics cost 1/4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.case import Case
from pipeline.miscnn_compat import miscnn
from pipeline.preprocessing.normalization import ZScoreNormalization
from pipeline.preprocessing.resampling import LinearResampling, LinearResize, probabilities_to_labels, resample_labels
from pipeline.config import PreprocessingSettings


@dataclass(frozen=True, eq=False)
class Geometry:
    """What maps a preprocessed array back onto the case's original voxel grid.

    Attributes:
        original_shape: (D, H, W) of the published image; (H, W) for a 2D image.
        original_spacing: its voxel size (mm), array-axis order.
        affine: its 4x4 NIfTI affine (predictions are written with it).
        shape: (D', H', W') after preprocessing.
        spacing: voxel size after preprocessing: the target spacing, up to
            the rounding of the shape (``original_shape * original_spacing / shape``).
    """

    original_shape: tuple[int, int, int]
    original_spacing: tuple[float, float, float]
    affine: np.ndarray
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    def to_json(self) -> dict:
        return {
            "original_shape": list(self.original_shape),
            "original_spacing": list(self.original_spacing),
            "affine": np.asarray(self.affine).tolist(),
            "shape": list(self.shape),
            "spacing": list(self.spacing),
        }

    @classmethod
    def from_json(cls, record: dict) -> "Geometry":
        return cls(
            original_shape=tuple(record["original_shape"]),
            original_spacing=tuple(record["original_spacing"]),
            affine=np.array(record["affine"], dtype=np.float64),
            shape=tuple(record["shape"]),
            spacing=tuple(record["spacing"]),
        )


@dataclass(frozen=True, eq=False)
class PreprocessedCase:
    """A case ready for patch sampling.

    Attributes:
        case_id: as in the data set.
        image: float32 (D', H', W', M); read-only memory map when it comes from the cache.
        label: uint8 (D', H', W').
        geometry: see ``Geometry``; ``restore_to_original`` uses it.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    geometry: Geometry

    @property
    def spacing(self) -> tuple[float, float, float]:
        return self.geometry.spacing

    @property
    def original_shape(self) -> tuple[int, int, int]:
        return self.geometry.original_shape

    @property
    def original_spacing(self) -> tuple[float, float, float]:
        return self.geometry.original_spacing

    @property
    def affine(self) -> np.ndarray:
        return self.geometry.affine


def subfunctions(settings: PreprocessingSettings) -> list:
    """The MIScnn subfunctions that carry out ``settings``, in order."""
    steps = []
    if settings.clip is not None:
        steps.append(miscnn.processing.subfunctions.Clipping(min=settings.clip[0], max=settings.clip[1]))
    if settings.target_spacing is not None:
        steps.append(LinearResampling(settings.target_spacing))
    if settings.target_shape is not None:
        steps.append(LinearResize(settings.target_shape))
    if settings.normalization != "none":
        steps.append(ZScoreNormalization(nonzero_only=settings.normalization == "zscore_nonzero"))
    return steps


def preprocess_case(case: Case, settings: PreprocessingSettings, num_classes: int | None = None) -> PreprocessedCase:
    """Clip, resample and normalise one case (in memory; ``PreprocessedCache`` stores it).

    ``num_classes`` (default: the largest label + 1) bounds the classes resampled.
    """
    num_classes = int(case.label.max()) + 1 if num_classes is None else num_classes
    sample, geometry = _run_subfunctions(
        case.case_id, case.image, case.label, case.spacing, case.affine, settings, num_classes
    )
    return PreprocessedCase(
        case_id=case.case_id,
        image=sample.img_data,
        label=np.ascontiguousarray(sample.seg_data[..., 0], dtype=np.uint8),
        geometry=geometry,
    )


def preprocess_image(
    image: np.ndarray, spacing, affine: np.ndarray, settings: PreprocessingSettings
) -> tuple[np.ndarray, Geometry]:
    """A new scan without a label, preprocessed exactly as :func:`preprocess_case` does training cases.

    Args:
        image: float32 (D, H, W, M) (2D: (H, W, M)) on the published grid.
        spacing: its voxel size (mm), array-axis order.
        affine: its NIfTI affine.

    Returns:
        The preprocessed float32 (D', H', W', M) image and the ``Geometry`` that maps predictions back.
    """
    sample, geometry = _run_subfunctions("image", image, None, spacing, affine, settings, num_classes=1)
    return sample.img_data, geometry


def _run_subfunctions(
    case_id: str,
    image: np.ndarray,
    label: np.ndarray | None,
    spacing,
    affine,
    settings: PreprocessingSettings,
    num_classes: int,
):
    """The MIScnn sample after :func:`subfunctions` (labels resampled too when given), and its ``Geometry``."""
    extended = {"type": "nifti", "affine": affine, "spacing": spacing}
    sample = miscnn.data_loading.sample.Sample(case_id, image, image.shape[-1], num_classes, extended)
    if label is not None:
        sample.add_segmentation(label)
    for step in subfunctions(settings):
        step.preprocessing(sample, training=label is not None)
    sample.img_data = np.ascontiguousarray(sample.img_data, dtype=np.float32)
    geometry = Geometry(
        original_shape=tuple(image.shape[:-1]),
        original_spacing=tuple(spacing),
        affine=np.asarray(affine, dtype=np.float64),
        shape=tuple(sample.img_data.shape[:-1]),
        spacing=tuple(float(size) for size in extended["spacing"]),
    )
    return sample, geometry


def restore_to_original(prediction: np.ndarray, pre: PreprocessedCase | Geometry) -> np.ndarray:
    """Map a prediction on the preprocessed grid to a uint8 label map on the original grid.

    Args:
        prediction: class probabilities (D', H', W', C) (2D: (H', W', C)), e.g. the softmax
            output (preferred: each class is interpolated linearly, then
            arg-maxed, which keeps thin structures), or a label map (D', H', W')
            (each class's indicator interpolated, then arg-maxed).
        pre: the ``PreprocessedCase`` (or its ``Geometry``) the prediction was made on.

    Returns:
        uint8 (D, H, W) (2D: (H, W)) on the grid of the published image; write it with ``pre.affine``.
    """
    geometry = pre.geometry if isinstance(pre, PreprocessedCase) else pre
    dims = len(geometry.shape)
    if tuple(prediction.shape[:dims]) != tuple(geometry.shape) or prediction.ndim not in (dims, dims + 1):
        raise ValueError(
            f"prediction of shape {prediction.shape} does not lie on the preprocessed grid {geometry.shape} (+ classes)"
        )
    if prediction.ndim == dims + 1:
        if geometry.shape == geometry.original_shape:
            return np.argmax(prediction, axis=-1).astype(np.uint8)
        return probabilities_to_labels(prediction, geometry.original_shape)
    return resample_labels(np.asarray(prediction), geometry.original_shape)
