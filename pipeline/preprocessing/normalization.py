"""Z-score intensity normalisation, per channel, optionally over non-zero voxels only."""

from __future__ import annotations

import numpy as np

from pipeline.miscnn_compat import miscnn

Abstract_Subfunction = miscnn.processing.subfunctions.abstract_subfunction.Abstract_Subfunction


def zscore(image: np.ndarray, nonzero_only: bool = False) -> np.ndarray:
    """``(x - mean) / std`` for each channel of a (..., M) image, as a new float32 array.

    With ``nonzero_only`` the statistics come from the non-zero voxels (the
    brain of skull-stripped MRI, as BraTS is preprocessed in the papers and in
    nnU-Net) and zeros stay zero. A constant channel becomes 0 (std taken as 1).
    """
    normalised = np.zeros(image.shape, dtype=np.float32)
    for channel in range(image.shape[-1]):
        values = image[..., channel]
        inside = values != 0 if nonzero_only else slice(None)
        selected = values[inside]
        if selected.size == 0:
            continue
        mean = selected.mean(dtype=np.float64)
        std = selected.std(dtype=np.float64) or 1.0
        normalised[..., channel][inside] = (selected - np.float32(mean)) / np.float32(std)
    return normalised


class ZScoreNormalization(Abstract_Subfunction):
    """MIScnn subfunction: z-score each channel (optionally over non-zero voxels).

    MIScnn's own ``Normalization("z-score")`` pools all channels into one mean
    and std and has no brain mask, so multi-modal or skull-stripped data need this one.
    """

    def __init__(self, nonzero_only: bool = False):
        self.nonzero_only = nonzero_only

    def preprocessing(self, sample, training=True):
        sample.img_data = zscore(sample.img_data, self.nonzero_only)

    def postprocessing(self, sample, prediction, activation_output=False):
        return prediction
