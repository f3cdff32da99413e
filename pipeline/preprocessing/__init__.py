"""Stage 2: clip / normalise / resample each case, with an on-disk cache, and map predictions back.

from pipeline.preprocessing import PreprocessedCache, restore_to_original
cache = PreprocessedCache("cache", dataset, config.preprocessing.settings())
pre = cache.load(case_id)
labels = restore_to_original(probabilities, pre)     # on the published image's grid
"""

from pipeline.preprocessing.cache import PreprocessedCache
from pipeline.preprocessing.preprocess import (
    Geometry,
    PreprocessedCase,
    preprocess_case,
    preprocess_image,
    restore_to_original,
)
from pipeline.config import PreprocessingSettings

__all__ = [
    "Geometry",
    "PreprocessedCache",
    "PreprocessedCase",
    "PreprocessingSettings",
    "preprocess_case",
    "preprocess_image",
    "restore_to_original",
]
