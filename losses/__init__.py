"""Segmentation losses for Keras (tf-keras, Keras 2 API), 2D and 3D, binary and multiclass.

Usage::

    import losses
    loss = losses.get("asymmetric_unified_focal", weight=0.5, delta=0.6, gamma=0.5)
    model.compile(optimizer="adam", loss=loss)

``losses.names()`` lists every loss. Conventions and formulas: ``losses/base.py``
and each loss's docstring; the science is in the project's SPEC.md section 1.
"""

from losses.registry import custom_objects, get, names, parameters

# Importing the loss modules registers their classes.
from losses import combo, focal, mixed_focal, tversky, unified_focal  # noqa: E402,F401  (the Unified Focal family)
from losses import (  # noqa: E402,F401  (the rest of Ma's taxonomy)
    asymmetric_similarity, boundary, cross_entropy, dice_plus, distance_penalized_ce, exp_log,
    generalized_dice, hausdorff_dt, iou, lovasz_softmax, sensitivity_specificity, topk,
    weighted_cross_entropy,
)

__all__ = ["get", "names", "parameters", "custom_objects"]
