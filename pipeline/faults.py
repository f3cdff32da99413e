"""What ``run-experiment`` reports when its environment fails mid-run: memory, disk, data.

:func:`reported_faults` wraps a run after its input checks passed and turns
the exceptions of the environment into one-line errors with their own exit
codes (``pipeline.errors``):

* out of memory (TensorFlow's ``ResourceExhaustedError`` on the GPU, Python's
  ``MemoryError`` on the host) -> :class:`OutOfMemory`: the patch, the batch
  size, the model's size, the estimate of ``scripts/estimate_gpu_memory.py``
  (``pipeline.training.memory``) and the keys to lower;
* a full disk that no writer named more precisely (TensorFlow's own files) ->
  :class:`DiskFull` naming the file, or else the run folder;
* a data set file that was there at the start and is gone or unreadable now
  (an unmounted network share) -> :class:`DataVanished`.

Everything else passes unchanged. Nothing is written here: every file the run
finished stays valid, so the same command resumes once the cause is fixed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
from pathlib import Path
from typing import Iterator

from pipeline.config import ExperimentConfig
from pipeline.errors import (
    DataError,
    DataVanished,
    DiskFull,
    OutOfMemory,
    UnifocalError,
    human_bytes,
    is_disk_full,
    is_resource_exhausted,
)

logger = logging.getLogger(__name__)

#: errno values of a file system that went away under the run (NFS stale handle, lost mount, I/O error).
VANISHED_ERRNOS = (errno.ENOENT, errno.ESTALE, errno.EIO, errno.ENOTCONN, errno.ENODEV, errno.EHOSTDOWN)


@contextlib.contextmanager
def reported_faults(config: ExperimentConfig, dataset) -> Iterator[None]:
    """Re-raise memory, disk and vanished-data failures of the block as one-line errors (see the module)."""
    try:
        yield
    except DataError as error:
        vanished = vanished_data(config, error.path, error.problem)
        if vanished is None:
            raise
        raise vanished from None
    except UnifocalError:
        raise
    except MemoryError:
        raise OutOfMemory(out_of_memory_message(config, dataset, "host")) from None
    except Exception as error:
        if is_disk_full(error, config.run_dir):
            raise DiskFull(getattr(error, "filename", None) or config.run_dir) from None
        if is_resource_exhausted(error):
            where = "host" if "MemoryError" in str(error) else "GPU"
            raise OutOfMemory(out_of_memory_message(config, dataset, where, error)) from None
        if isinstance(error, OSError) and error.errno in VANISHED_ERRNOS and error.filename:
            vanished = vanished_data(config, error.filename, error.strerror or str(error))
            if vanished is not None:
                raise vanished from None
        raise


def vanished_data(config: ExperimentConfig, path, problem: str) -> DataVanished | None:
    """A :class:`DataVanished` if ``path`` lies under ``data.root`` and it (or the root) is gone now, else ``None``."""
    root, path = Path(config.data.root).absolute(), Path(path).absolute()
    if root != path and root not in path.parents:
        return None
    if root.is_dir() and any(root.iterdir()) and path.exists() and "I/O error" not in problem:
        return None  # the file is there: a genuine problem of its content, reported as bad input
    state = "is gone" if not root.exists() else "is empty" if not any(root.iterdir()) else f"lacks {path.name}"
    return DataVanished(
        f"{path}: disappeared mid-run ({problem}); data.root {root} {state} (an unmounted share?). "
        "Finished epochs, predictions and scores are kept: make the data available again and rerun the same "
        "command to resume"
    )


def out_of_memory_message(config: ExperimentConfig, dataset, where: str, error: BaseException | None = None) -> str:
    """One line: what ran out, the sizes that decide the memory, the estimate, and the keys to lower."""
    sampling, model = config.sampling, config.model
    size = _model_size(config, dataset)
    allocation = re.search(r"OOM when allocating tensor with shape\s*\[[^\]]*\]", str(error or ""))
    keys = (
        (
            "sampling.batch_size, sampling.patch_shape, model.n_filters or model.depth, or set "
            "training.precision=mixed_float16 (prediction: inference.batch_size)"
        )
        if where == "GPU"
        else (
            "sampling.workers, sampling.batch_size or sampling.patch_shape, coarsen preprocessing.target_spacing, "
            "or ask for more memory (Slurm --mem)"
        )
    )
    return (
        f"out of {where} memory{f' ({allocation[0]})' if allocation else ''}: patch "
        f"{'x'.join(map(str, sampling.patch_shape))}, batch {sampling.batch_size}, {model.architecture} U-Net "
        f"({model.n_filters} filters, depth {model.depth}{size}), precision {config.training.precision}; "
        f"lower {keys}"
    )


def _model_size(config: ExperimentConfig, dataset) -> str:
    """``", 1,234 parameters; scripts/estimate_gpu_memory.py estimates 1.2 GiB per training step"``, or ``""``."""
    try:
        import tensorflow as tf

        from pipeline.training.memory import training_memory
        from pipeline.training.train import build_model

        num_channels, num_classes = len(dataset.modalities), dataset.num_classes
        spatial_dims = len(config.sampling.patch_shape)
        with tf.device("/CPU:0"):  # the GPU is full
            memory = training_memory(
                lambda: build_model(config.model, num_channels, num_classes, spatial_dims),
                config.sampling.patch_shape,
                config.sampling.batch_size,
                num_channels,
                config.training.precision,
            )
    except Exception as error:  # the message must come out even if the estimate cannot be made
        logger.debug("no memory estimate: %s", error)
        return ""
    return (
        f", {memory.parameters:,} parameters; scripts/estimate_gpu_memory.py estimates "
        f"{human_bytes(memory.estimate_bytes)} per training step"
    )
