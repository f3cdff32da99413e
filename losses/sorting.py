"""Host-side sorting for the losses that rank voxels (Lovász-softmax, TopK).

TensorFlow sorts with ``TopKV2``, which on a CPU is an indirect comparison
sort: 0.85-1.5 s for the 6 rows of 2 M voxels of the paper's KiTS19 batch,
against 0.05-0.2 s for NumPy's vectorised sort of the same values. On a GPU
(and under XLA) TensorFlow's sort is a device radix sort and a host round trip
would stall the device: the losses use these functions only where
:func:`losses.placement.on_host` says so.
"""

from __future__ import annotations

import numpy as np

from losses.placement import host_threads


def lovasz_weights(truth: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Each element's Lovász gradient at its place in the descending order of ``errors``.

    ``truth`` and ``errors`` are float32 ``(B, N, C)`` (``errors >= 0``); the
    order is per sample and class. One sort of 64-bit keys per sample and
    class, ``(descending error bits, index, truth bit)``, gives the order
    (ties broken by index, as ``tf.math.top_k`` breaks them) and the sorted
    truth without a gather; the gradient of
    :func:`losses.lovasz_softmax.lovasz_gradient` (in float32, as there) is
    then scattered back. Row by row, so that the temporaries are reused
    rather than freshly mapped.
    """
    batch, count, classes = errors.shape
    if count >= 2**31:
        raise ValueError(f"lovasz_softmax: {count} voxels per patch; at most 2**31 - 1 are supported")
    bits = np.ascontiguousarray(errors, np.float32).view(np.int32)  # >= 0: ordered like the values
    inside = np.asarray(truth) > 0.5
    shifted_index = np.arange(count, dtype=np.int64) << 1
    position = np.arange(1, count + 1, dtype=np.float32)
    weights = np.empty((batch, count, classes), np.float32)

    def one_row(sample: int, channel: int) -> None:
        keys = np.subtract(0x7FFFFFFF, bits[sample, :, channel], dtype=np.int64)
        keys <<= 32
        keys |= shifted_index
        keys |= inside[sample, :, channel]
        keys.sort()
        truth_count = np.cumsum(keys & 1, dtype=np.int64).astype(np.float32)
        total = truth_count[-1]
        jaccard = (total - truth_count) / (total + position - truth_count)  # 1 - J
        gradient = np.empty_like(jaccard)
        gradient[0] = 1.0 - jaccard[0]
        np.subtract(jaccard[:-1], jaccard[1:], out=gradient[1:])
        keys >>= 1
        keys &= 0x7FFFFFFF
        weights[sample, :, channel][keys] = gradient

    rows = [(sample, channel) for sample in range(batch) for channel in range(classes)]
    list(host_threads().map(lambda row: one_row(*row), rows))  # NumPy's sort releases the GIL
    return weights


def kth_largest(values: np.ndarray, kept: int) -> np.ndarray:
    """The ``kept``-th largest value of each row of a float32 ``(R, N)`` array, shape ``(R, 1)``.

    ``np.partition`` selects it in linear time, without sorting.
    """
    count = values.shape[-1]
    return np.partition(values, count - kept, axis=-1)[:, count - kept : count - kept + 1]
