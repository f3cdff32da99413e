"""A data set's ground truth as the scores use it: after its label map, on its image's grid, in its scoring region.

``run-experiment`` scores each fold's predictions against these references, and
``evaluate RUN_DIR`` reads the same ones again to rescore a finished run, so
both give the same numbers.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluation.evaluate import LabelMap


def scoring_region(dataset, case_id: str) -> np.ndarray | None:
    """The pixels a case is scored on (DRIVE's field of view), or ``None`` for all of them."""
    scoring_mask = getattr(dataset, "scoring_mask", None)
    return None if scoring_mask is None else scoring_mask(case_id)


def reference_label_map(dataset, case_id: str) -> LabelMap:
    """The case's ground truth (after the data set's label map) with the spacing and affine of its image.

    Outside the scoring region (DRIVE's field of view) it is background, as the prediction there.
    """
    geometry = dataset.geometry(case_id)
    labels = dataset.load_segmentation(case_id)
    region = scoring_region(dataset, case_id)
    if region is not None:
        labels = np.where(region, labels, 0).astype(labels.dtype)
    return LabelMap(path=geometry.path, labels=labels, spacing=geometry.spacing, affine=geometry.affine)
