"""From a data set's published label values to the classes a model is trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from pipeline.errors import ConfigError, DataError


def every_label_its_own_class(values: Iterable[int]) -> dict[int, int]:
    """A label map giving every published foreground label its own class, in the order of the values."""
    return {value: rank for rank, value in enumerate(sorted(values), start=1)}


@dataclass(frozen=True)
class LabelMapping:
    """Maps the label values a data set publishes to contiguous classes 0..K-1.

    Args:
        source_names: name of every label value the data set's masks may hold
            besides 0, e.g. BraTS20 ``{1: "necrotic_core", 2: "oedema", 4: "enhancing_tumour"}``.
        label_map: published label -> class index (1..K-1, every index used).
            Labels it leaves out become background (0). BraTS20's paper task is
            ``{4: 1}``; KiTS19 "kidney as label > 0" (the challenge's) is ``{1: 1, 2: 1}``.

    Class names derive from the map: class k is named after the published
    labels mapped to it, joined by "+"; class 0 is ``background_name``.
    """

    source_names: Mapping[int, str]
    label_map: Mapping[int, int]
    background_name: str = "background"

    def __post_init__(self):
        try:
            label_map = {int(source): int(target) for source, target in dict(self.label_map).items()}
        except (TypeError, ValueError):
            raise ConfigError(f"label_map: expected integer label -> class pairs, got {self.label_map!r}") from None
        unknown = sorted(set(label_map) - set(self.source_names))
        if unknown:
            raise ConfigError(
                f"label_map: labels {unknown} do not occur in this data set (its labels: {sorted(self.source_names)})"
            )
        targets = sorted(set(label_map.values()) - {0})
        if not targets or targets != list(range(1, len(targets) + 1)):
            raise ConfigError(f"label_map: target classes must be 1..K without gaps, got {targets}")
        object.__setattr__(self, "label_map", label_map)

    @property
    def class_names(self) -> tuple[str, ...]:
        num_foreground = max(self.label_map.values())
        names = [self.background_name]
        for target in range(1, num_foreground + 1):
            names.append(
                "+".join(
                    self.source_names[source] for source in sorted(self.label_map) if self.label_map[source] == target
                )
            )
        return tuple(names)

    def apply(self, mask: np.ndarray, path: Path) -> np.ndarray:
        """Validate a published mask and map it to classes (uint8).

        Raises ``DataError(path, ...)`` for NaN, non-integer or unknown label values.
        """
        largest = max(self.source_names)
        if mask.dtype.kind == "f":
            if not np.isfinite(mask).all():
                raise DataError(path, "mask holds NaN or Inf values")
            if not np.array_equal(mask, np.round(mask)):
                raise DataError(path, "mask holds non-integer label values")
        elif mask.dtype.kind not in "iub":
            raise DataError(path, f"mask has data type {mask.dtype}, expected integers")
        low, high = mask.min(), mask.max()
        if low < 0 or high > largest:
            outside = np.unique(mask[(mask < 0) | (mask > largest)])[:10]
            raise DataError(
                path, f"unexpected label values {outside.tolist()} (expected {[0, *sorted(self.source_names)]})"
            )
        values = mask.astype(np.uint8, copy=False)
        counts = np.bincount(values.ravel(), minlength=largest + 1)
        expected = {0, *self.source_names}
        unexpected = [int(value) for value in np.flatnonzero(counts) if value not in expected]
        if unexpected:
            raise DataError(path, f"unexpected label values {unexpected} (expected {sorted(expected)})")
        lookup = np.zeros(largest + 1, dtype=np.uint8)
        for source, target in self.label_map.items():
            lookup[source] = target
        return lookup[values]
