"""Segmentation losses for Keras (tf-keras, Keras 2 API), 2D and 3D, binary and multiclass.

Usage::

    import losses
    loss = losses.get("asymmetric_unified_focal", weight=0.5, delta=0.6, gamma=0.5)
    model.compile(optimizer="adam", loss=loss)

``losses.names()`` lists every loss. Conventions and formulas: ``losses/base.py``
and each loss's docstring; the science is in the project's SPEC.md section 1.

``losses.catalog`` describes every loss (parameters, defaults, ranges, paper)
without importing TensorFlow; the registry functions (``get``, ``names``,
``parameters``, ``custom_objects``) load TensorFlow and the loss classes on
first use, so that ``import losses.catalog`` stays cheap.
"""

from losses import catalog

_REGISTRY_FUNCTIONS = ("get", "names", "parameters", "custom_objects")


def __getattr__(attribute):
    if attribute not in _REGISTRY_FUNCTIONS:
        raise AttributeError(f"module 'losses' has no attribute {attribute!r}")
    from losses import registry

    return getattr(registry, attribute)


__all__ = ["catalog", *_REGISTRY_FUNCTIONS]
