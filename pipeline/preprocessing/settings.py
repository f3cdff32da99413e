"""What preprocessing does to a case: clipping, intensity normalisation, resampling."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from pipeline.errors import ConfigError

Normalization = Literal["zscore", "zscore_nonzero", "none"]
NORMALIZATIONS = ("zscore", "zscore_nonzero", "none")


@dataclass(frozen=True)
class PreprocessingSettings:
    """Preprocessing applied to every case, in this order: clip, resample, normalise.

    Args:
        clip: (low, high) intensity bounds, e.g. HU for CT; ``None`` keeps all values.
        normalization: "zscore" (each channel to mean 0, std 1), "zscore_nonzero"
            (statistics over non-zero voxels only, zeros kept: skull-stripped MRI),
            or "none".
        target_spacing: voxel size (mm) in array-axis order to resample to;
            ``None`` keeps each case's spacing.
    """

    clip: tuple[float, float] | None = None
    normalization: Normalization = "zscore"
    target_spacing: tuple[float, float, float] | None = None

    def __post_init__(self):
        if self.clip is not None:
            clip = tuple(float(bound) for bound in self.clip)
            if len(clip) != 2 or not clip[0] < clip[1]:
                raise ConfigError(f"preprocessing.clip: expected [low, high] with low < high, got {list(self.clip)}")
            object.__setattr__(self, "clip", clip)
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"preprocessing.normalization: {self.normalization!r} "
                              f"is not one of {list(NORMALIZATIONS)}")
        if self.target_spacing is not None:
            spacing = tuple(float(size) for size in self.target_spacing)
            if len(spacing) != 3 or min(spacing) <= 0:
                raise ConfigError("preprocessing.target_spacing: expected three positive sizes in mm, "
                                  f"got {list(self.target_spacing)}")
            object.__setattr__(self, "target_spacing", spacing)

    def as_dict(self) -> dict:
        """JSON-ready, for cache keys and run records."""
        settings = asdict(self)
        return {name: list(value) if isinstance(value, tuple) else value for name, value in settings.items()}


#: KiTS19 as in the papers and MIScnn's KiTS19 example: HU clipped to [-79, 304], z-score, 3.22 x 1.62 x 1.62 mm.
KITS19_PAPER = PreprocessingSettings(clip=(-79, 304), normalization="zscore", target_spacing=(3.22, 1.62, 1.62))
#: BraTS20 as in the papers: z-score over brain (non-zero) voxels, native 1 mm spacing.
BRATS20_PAPER = PreprocessingSettings(clip=None, normalization="zscore_nonzero", target_spacing=None)
