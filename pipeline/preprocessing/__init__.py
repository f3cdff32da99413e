"""Stage 2: clip / normalise / resample each case, with an on-disk cache, and map predictions back.

    from pipeline.preprocessing import KITS19_PAPER, PreprocessedCache, restore_to_original
    cache = PreprocessedCache("cache", dataset, KITS19_PAPER)
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
from pipeline.preprocessing.settings import BRATS20_PAPER, KITS19_PAPER, PreprocessingSettings

__all__ = [
    "BRATS20_PAPER",
    "KITS19_PAPER",
    "Geometry",
    "PreprocessedCache",
    "PreprocessedCase",
    "PreprocessingSettings",
    "preprocess_case",
    "preprocess_image",
    "restore_to_original",
]
