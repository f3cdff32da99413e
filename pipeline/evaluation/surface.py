"""Surface distances between two masks in mm: 95th-percentile Hausdorff distance (HD95), normalised surface distance.

Metrics Reloaded (Maier-Hein et al., Nature Methods 2024) recommends a
boundary metric beside DSC; these are its two, computed as its reference
implementation does, on border voxels, in 2D and 3D:

* The border of a mask is its voxels with at least one face neighbour (4 in
  2D, 6 in 3D) outside the mask; voxels on the image edge are border voxels.
* ``d(a, B)`` is the Euclidean distance in mm from border voxel ``a`` of one
  mask to the nearest border voxel of the other: scipy's exact distance
  transform with ``sampling=spacing`` (mm per array axis, from the header).
* ``HD95 = max(P95 {d(a, B)}, P95 {d(b, A)})``: the larger of the two directed
  95th percentiles (numpy's linear percentile), as Metrics Reloaded and MONAI
  define it (MedPy takes one percentile of both directions pooled).
* ``NSD(tau) = (#{a: d(a, B) <= tau} + #{b: d(b, A) <= tau}) / (#A + #B)``: the
  share of both borders within the tolerance ``tau`` mm of the other border
  (Nikolov et al. 2021, with border voxels counted instead of surface areas).

Empty masks (the conventions of ``metrics``: nothing to find and nothing found
is perfect, one of them empty is the worst score):

* reference and prediction both empty: HD95 0, NSD 1;
* only one empty: NSD 0, and HD95 the length of the image's diagonal
  ``sqrt(sum((shape * spacing)^2))``, the largest distance the image holds
  (BraTS scores a missed or hallucinated region so: 373.13 mm for its
  240 x 240 x 155 mm volumes). A finite worst case keeps every case in the
  means and the paired tests.

Only the bounding box of the two masks is transformed: every border voxel lies
in it, so the distances are exact and the cost follows the structures, not the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from pipeline.console import lazy_module

ndimage = lazy_module("scipy.ndimage")  # loaded on first use, so that evaluate --help answers at once

PERCENTILE = 95.0


@dataclass(frozen=True)
class SurfaceScores:
    """HD95 (mm) and NSD at ``tolerance_mm`` of one structure in one case."""

    hd95: float
    nsd: float
    tolerance_mm: float


def border(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face neighbour outside it (the image edge counts as outside)."""
    structure = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)


def directed_distances(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(d(b, A) for b on the prediction's border, d(a, B) for a on the reference's border)`` in mm.

    Both masks must be non-empty and of the same shape.
    """
    union = reference | prediction
    box = tuple(slice(int(indices.min()), int(indices.max()) + 1) for indices in np.nonzero(union))
    reference_border = border(reference[box])
    prediction_border = border(prediction[box])
    spacing = tuple(float(size) for size in spacing)
    to_reference = ndimage.distance_transform_edt(~reference_border, sampling=spacing)
    to_prediction = ndimage.distance_transform_edt(~prediction_border, sampling=spacing)
    return to_reference[prediction_border], to_prediction[reference_border]


def image_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """``sqrt(sum((shape * spacing)^2))``: HD95 of a case where only one mask is empty."""
    return float(np.sqrt(np.sum((np.asarray(shape, np.float64) * np.asarray(spacing, np.float64)) ** 2)))


def surface_scores(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float], tolerance_mm: float
) -> SurfaceScores:
    """HD95 and NSD of two boolean masks on one grid (2D or 3D), with the empty-mask conventions.

    Args:
        reference, prediction: boolean arrays of the same shape.
        spacing: mm per array axis.
        tolerance_mm: NSD tolerance ``tau``.
    """
    reference = np.asarray(reference, bool)
    prediction = np.asarray(prediction, bool)
    if reference.shape != prediction.shape or len(spacing) != reference.ndim:
        raise ValueError(
            f"masks {reference.shape} and {prediction.shape} with spacing {tuple(spacing)} do not describe one grid"
        )
    has_reference, has_prediction = reference.any(), prediction.any()
    if not has_reference and not has_prediction:
        return SurfaceScores(hd95=0.0, nsd=1.0, tolerance_mm=tolerance_mm)
    if not has_reference or not has_prediction:
        return SurfaceScores(hd95=image_diagonal_mm(reference.shape, spacing), nsd=0.0, tolerance_mm=tolerance_mm)
    from_prediction, from_reference = directed_distances(reference, prediction, spacing)
    hd95 = max(float(np.percentile(from_prediction, PERCENTILE)), float(np.percentile(from_reference, PERCENTILE)))
    within = np.count_nonzero(from_prediction <= tolerance_mm) + np.count_nonzero(from_reference <= tolerance_mm)
    return SurfaceScores(
        hd95=hd95, nsd=int(within) / (from_prediction.size + from_reference.size), tolerance_mm=tolerance_mm
    )
