"""Random training patches, foreground-biased, augmented and seeded, as a Keras ``Sequence``.

Rare classes are tiny (a KiTS19 tumour fills well under 1 % of the volume),
so uniformly placed patches starve them. A share ``foreground_fraction`` of
the patches is centred on a foreground voxel: first a foreground class present
in the case is chosen uniformly, then one of its voxels, so the rarest class
gets as many such patches as the commonest (nnU-Net's foreground
oversampling, Isensee et al. 2021, with a per-class draw). The other patches
are placed uniformly. A volume smaller than the patch is padded: the label
with 0 (background), the image with ``pad_value``.

Every patch is a pure function of ``(seed, epoch, batch index, position in
the batch)``: it draws from its own ``numpy.random.Generator`` seeded with
those four numbers, so a batch does not depend on which thread computes it or
when, and a resumed run (``set_epoch``) sees the same batches. A thread pool
builds the patches (numpy and scipy release the GIL) and computes the next
``prefetch`` batches while the model trains on the current one.

Losses that weigh voxels by ground-truth distance maps (boundary,
Hausdorff-DT, distance-penalised CE) get them here, computed once per patch
after augmentation (which moves the labels) by the worker threads:
``target_maps`` (such a loss's ``target_maps``) appends one map channel per
class to the one-hot target. With deep supervision (``target_heads``) the
targets of the lower-resolution outputs are made here too: the one-hot
subsampled by strided nearest neighbour, as
``pipeline.training.model.downsample_targets`` does, and the maps
recomputed at that resolution (in its voxels), which is what the loss would
compute from that output's one-hot target itself.

Feed it to Keras as ``model.fit(batches, shuffle=False)`` (``workers=1``, no
multiprocessing: the parallelism is inside). The batches are random already;
Keras' shuffling of the batch order would only defeat the prefetching.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional, Sequence, Union

import numpy as np

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf  # noqa: E402

from pipeline.errors import ConfigError, DataError  # noqa: E402
from pipeline.training.augmentation import (  # noqa: E402
    AugmentationSettings,
    PatchAugmenter,
    crop_with_padding,
)

# Candidate centres kept per case and class. Beyond this, an evenly strided
# subset (in raster order, so every part of the structure stays represented)
# bounds the memory held for large classes; rare classes are kept whole.
_MAX_CENTRES_PER_CLASS = 50_000


def available_cpus() -> int:
    """CPUs granted to this job: ``SLURM_CPUS_PER_TASK`` if set, else those this process may run on."""
    granted = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if granted.isdigit() and int(granted) > 0:
        return int(granted)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _PendingBatch:
    """A batch whose patches are being written into ``x`` and the targets ``ys`` by the pool."""

    def __init__(self, x: np.ndarray, ys: list[np.ndarray], patches: list[Future]):
        self.x, self.ys, self.patches = x, ys, patches

    def result(self) -> tuple[np.ndarray, Union[np.ndarray, tuple]]:
        for patch in self.patches:
            patch.result()
        return self.x, (tuple(self.ys) if len(self.ys) > 1 else self.ys[0])

    def cancel(self) -> None:
        for patch in self.patches:
            patch.cancel()


class PatchBatches(tf.keras.utils.Sequence):
    """Batches ``(x, y)`` of random patches: x float32 (B, *patch_shape, M), y float32 one-hot (B, *patch_shape, C).

    Args:
        cases: objects with ``.image`` float32 (D, H, W, M) and ``.label``
            integer (D, H, W), such as ``PreprocessedCase`` (read-only
            memmaps are fine), or 2D images (H, W, M) and labels (H, W);
            ``.case_id``, if present, names a case in errors.
        patch_shape: voxels per patch, (d, h, w), or pixels (h, w) for 2D
            cases. A patch as large as the images gives whole-image training.
        batch_size: patches per batch, B.
        num_classes: C, the one-hot depth; every label value must be below it.
        batches_per_epoch: ``len(self)``.
        foreground_fraction: share of patches centred on a foreground voxel,
            in [0, 1] (default 0.33, nnU-Net's).
        augmentation: transforms applied to training patches; None (or
            ``enabled: false``) for plain crops.
        seed: with the epoch and the batch index, fixes every patch.
        fixed_patches: True for validation: batch ``i`` is the same in every
            epoch, and its patches cycle through the cases in order so that
            each case counts equally in the validation loss.
        pad_value: image value where a patch reaches beyond the volume (small
            volumes, rotated grids). ``"minimum"`` (default): each case's
            per-channel minimum, which after clipping and z-score is CT's air;
            or a number, e.g. ``0.0`` for MRI z-scored over the brain, whose
            background is 0.
        workers: threads building patches (default: :func:`available_cpus`).
        prefetch: batches computed ahead of the one requested (default:
            enough to keep every worker busy, at least 2).
        target_maps: computes extra target channels from one patch's one-hot
            labels ``(*patch_shape, C)``, returning float32 ``(*patch_shape, C)``,
            e.g. a distance-map loss's ``target_maps``; y then has ``2C``
            channels, the one-hot first.
        target_heads: deep-supervision outputs at 1/2, 1/4, ... resolution
            whose targets are made here (default 0); y is then a tuple of
            ``1 + target_heads`` arrays, full resolution first.
    """

    def __init__(
        self,
        cases: Sequence,
        patch_shape: Sequence[int],
        batch_size: int,
        num_classes: int,
        batches_per_epoch: int,
        *,
        foreground_fraction: float = 0.33,
        augmentation: Optional[AugmentationSettings] = None,
        seed: int = 0,
        fixed_patches: bool = False,
        pad_value: Union[str, float] = "minimum",
        workers: Optional[int] = None,
        prefetch: Optional[int] = None,
        target_maps: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        target_heads: int = 0,
    ):
        super().__init__()
        enabled = augmentation is not None and augmentation.enabled
        self._check_settings(
            cases,
            patch_shape,
            batch_size,
            num_classes,
            batches_per_epoch,
            foreground_fraction,
            enabled,
            seed,
            pad_value,
            workers,
            prefetch,
            target_heads,
        )
        self.cases = list(cases)
        self.patch_shape = tuple(int(size) for size in patch_shape)
        self.batch_size = int(batch_size)
        self.num_classes = int(num_classes)
        self.batches_per_epoch = int(batches_per_epoch)
        self.foreground_fraction = float(foreground_fraction)
        self.seed = int(seed)
        self.fixed_patches = bool(fixed_patches)
        self.pad_value = pad_value
        self.target_maps = target_maps
        self.target_heads = int(target_heads)
        workers = int(workers or available_cpus())
        self.prefetch = max(2, -(-workers // self.batch_size)) if prefetch is None else int(prefetch)
        self._augmenter = PatchAugmenter(augmentation, len(self.patch_shape)) if enabled else None
        self._num_channels = self._check_cases()
        self._fills: list[Optional[np.ndarray]] = [None] * len(self.cases)
        self._epoch = 0
        self._pending: dict[tuple[int, int], _PendingBatch] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patch-batches")
        try:
            self._centres = list(self._pool.map(self._foreground_voxels, range(len(self.cases))))
        except BaseException:
            self._pool.shutdown(cancel_futures=True)
            raise

    @property
    def epoch(self) -> int:
        """The epoch whose batches ``__getitem__`` returns."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Continue at ``epoch`` (resuming a run: Keras' ``initial_epoch``)."""
        if int(epoch) < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self._epoch = int(epoch)

    def on_epoch_end(self) -> None:
        """Keras calls this after every epoch: the next batches are the next epoch's."""
        self._epoch += 1

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of a sequence of {len(self)}")
        key = (0 if self.fixed_patches else self._epoch, int(index))
        with self._lock:
            window = self._window(key)
            for stale in [k for k in self._pending if k not in window]:
                self._pending.pop(stale).cancel()
            for upcoming in window:
                if upcoming not in self._pending:
                    self._pending[upcoming] = self._submit(upcoming)
            batch = self._pending.pop(key)
        return batch.result()

    def close(self) -> None:
        """Cancel the prefetched batches and stop the threads."""
        with self._lock:
            for batch in self._pending.values():
                batch.cancel()
            self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _window(self, key: tuple[int, int]) -> list[tuple[int, int]]:
        """``key`` and the ``prefetch`` batches after it, into the next epoch if need be."""
        window = [key]
        epoch, index = key
        for _ in range(self.prefetch):
            index += 1
            if index == len(self):
                epoch, index = (epoch if self.fixed_patches else epoch + 1), 0
            if (epoch, index) not in window:
                window.append((epoch, index))
        return window

    def output_signature(self) -> tuple:
        """``tf.TensorSpec``s of ``(x, y)`` (y a tuple with ``target_heads``), for ``tf.data``."""
        x = tf.TensorSpec((self.batch_size, *self.patch_shape, self._num_channels), tf.float32)
        ys = tuple(tf.TensorSpec(shape, tf.float32) for shape in self._target_shapes())
        return x, (ys if self.target_heads else ys[0])

    def _target_shapes(self) -> list[tuple[int, ...]]:
        channels = self.num_classes * (2 if self.target_maps is not None else 1)
        return [
            (self.batch_size, *(size // 2**head for size in self.patch_shape), channels)
            for head in range(self.target_heads + 1)
        ]

    def _submit(self, key: tuple[int, int]) -> _PendingBatch:
        x = np.empty((self.batch_size, *self.patch_shape, self._num_channels), dtype=np.float32)
        ys = [np.empty(shape, dtype=np.float32) for shape in self._target_shapes()]
        patches = [self._pool.submit(self._write_patch, key, slot, x, ys) for slot in range(self.batch_size)]
        return _PendingBatch(x, ys, patches)

    def _write_patch(self, key: tuple[int, int], slot: int, x: np.ndarray, ys: list[np.ndarray]) -> None:
        """Patch ``slot`` of batch ``key = (epoch, index)``, from its own Generator."""
        epoch, index = key
        rng = np.random.default_rng((self.seed, epoch, index, slot))
        if self.fixed_patches:
            case_index = (index * self.batch_size + slot) % len(self.cases)
        else:
            case_index = int(rng.integers(len(self.cases)))
        case = self.cases[case_index]
        start = self._patch_start(case_index, rng)
        fill = self._fill(case_index)
        if self._augmenter is None:
            image = crop_with_padding(case.image, start, self.patch_shape, fill)
            label = crop_with_padding(case.label, start, self.patch_shape, 0)
        else:
            image, label = self._augmenter.extract(case.image, case.label, start, self.patch_shape, fill, rng)
        x[slot] = image
        classes = self.num_classes
        for value in range(classes):  # per class: 4x faster than a broadcast comparison
            np.equal(label, value, out=ys[0][slot, ..., value], casting="unsafe")
        for head, y in enumerate(ys):
            if head:
                y[slot, ..., :classes] = ys[0][(slot, *[slice(None, None, 2**head)] * len(self.patch_shape))][
                    ..., :classes
                ]
            if self.target_maps is not None:
                y[slot, ..., classes:] = self.target_maps(y[slot, ..., :classes])

    def _patch_start(self, case_index: int, rng: np.random.Generator) -> np.ndarray:
        """First voxel of the patch: centred on a foreground voxel, or uniform; kept inside the (padded) volume."""
        shape = np.asarray(self.cases[case_index].label.shape)
        patch = np.asarray(self.patch_shape)
        low, high = np.minimum(0, shape - patch), np.maximum(0, shape - patch)
        present = [voxels for voxels in self._centres[case_index] if voxels.size]
        if rng.random() < self.foreground_fraction and present:
            voxels = present[rng.integers(len(present))]
            centre = np.unravel_index(voxels[rng.integers(voxels.size)], tuple(shape))
            return np.clip(np.asarray(centre) - patch // 2, low, high)
        return rng.integers(low, high + 1)

    def _fill(self, case_index: int) -> Union[float, np.ndarray]:
        """The image's padding value for this case; minima are computed on first use."""
        if self.pad_value != "minimum":
            return float(self.pad_value)
        fill = self._fills[case_index]
        if fill is None:  # concurrent first uses compute the same value
            image = self.cases[case_index].image
            fill = np.min(image, axis=tuple(range(image.ndim - 1))).astype(np.float32)
            self._fills[case_index] = fill
        return fill

    def _foreground_voxels(self, case_index: int) -> list[np.ndarray]:
        """Flat indices of each foreground class's voxels (class 1 first); checks the label values."""
        label = self.cases[case_index].label
        if not np.issubdtype(label.dtype, np.integer):
            raise DataError(self._name(case_index), f"label dtype {label.dtype} is not an integer type")
        flat = np.asarray(label).reshape(-1)
        voxels = np.flatnonzero(flat)
        values = flat[voxels]
        if values.size and (values.min() < 0 or values.max() >= self.num_classes):
            bad = values.min() if values.min() < 0 else values.max()
            raise DataError(
                self._name(case_index),
                f"label value {bad} outside 0..{self.num_classes - 1} (num_classes={self.num_classes})",
            )
        centres = []
        for value in range(1, self.num_classes):
            members = voxels[values == value]
            stride = -(-members.size // _MAX_CENTRES_PER_CLASS)
            centres.append(members[::stride] if stride > 1 else members)
        return centres

    def _check_cases(self) -> int:
        """The number of image channels, after checking every case's array shapes."""
        channels = None
        for case_index, case in enumerate(self.cases):
            image, label = case.image, case.label
            if image.ndim != len(self.patch_shape) + 1 or image.shape[:-1] != label.shape:
                raise DataError(
                    self._name(case_index),
                    f"image {image.shape} and label {label.shape} do not match "
                    f"a {len(self.patch_shape)}-D patch: expected image (*label.shape, channels)",
                )
            if channels is not None and image.shape[-1] != channels:
                raise DataError(
                    self._name(case_index), f"{image.shape[-1]} image channels, the first case has {channels}"
                )
            channels = image.shape[-1]
        return channels

    def _name(self, case_index: int) -> str:
        return str(getattr(self.cases[case_index], "case_id", f"case #{case_index}"))

    @staticmethod
    def _check_settings(
        cases,
        patch_shape,
        batch_size,
        num_classes,
        batches_per_epoch,
        foreground_fraction,
        augmented,
        seed,
        pad_value,
        workers,
        prefetch,
        target_heads,
    ) -> None:
        """One ConfigError naming the first impossible argument."""
        problems = {
            "cases": len(cases) == 0 and "no cases to sample from",
            "patch_shape": (len(patch_shape) == 0 or any(int(s) < 1 for s in patch_shape))
            and f"expected positive sizes, got {list(patch_shape)}",
            "batch_size": int(batch_size) < 1 and f"must be >= 1, got {batch_size}",
            "num_classes": int(num_classes) < 2 and f"must be >= 2 (background and one class), got {num_classes}",
            "batches_per_epoch": int(batches_per_epoch) < 1 and f"must be >= 1, got {batches_per_epoch}",
            "foreground_fraction": not 0.0 <= float(foreground_fraction) <= 1.0
            and f"must lie in [0, 1], got {foreground_fraction}",
            "augmentation": augmented
            and len(patch_shape) not in (2, 3)
            and f"the spatial transforms need 2-D or 3-D patches, got patch_shape {list(patch_shape)}",
            "seed": int(seed) < 0 and f"must be >= 0, got {seed}",
            "pad_value": isinstance(pad_value, str)
            and pad_value != "minimum"
            and f"expected 'minimum' or a number, got {pad_value!r}",
            "workers": workers is not None and int(workers) < 1 and f"must be >= 1, got {workers}",
            "prefetch": prefetch is not None and int(prefetch) < 0 and f"must be >= 0, got {prefetch}",
            "target_heads": (int(target_heads) < 0 or any(int(size) % 2 ** int(target_heads) for size in patch_shape))
            and f"must be >= 0 with patch_shape divisible by 2**target_heads, got {target_heads}",
        }
        for key, problem in problems.items():
            if problem:
                raise ConfigError(f"{key}: {problem}")
