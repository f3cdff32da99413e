"""The tiny KiTS19-phantom experiment the end-to-end tests train: 2 folds, a 2-filter U-Net, two batches an epoch."""

from __future__ import annotations

from pathlib import Path


def tiny_kits19_overrides(
    runs: Path, data: Path, cache: Path, epochs: int, splits_file: Path | None = None
) -> list[str]:
    """``--set`` overrides of a ``configs/demo_*.yaml`` for a run of seconds on ``make-phantoms kits19`` data."""
    return [
        f"experiment.output_root={runs}",
        f"data.root={data}",
        f"preprocessing.cache_dir={cache}",
        f"cross_validation.splits_file={'null' if splits_file is None else splits_file}",
        "cross_validation.folds=2",
        "preprocessing.target_spacing=[6.0, 6.0, 6.0]",
        "sampling.patch_shape=[8, 32, 32]",
        "sampling.batches_per_epoch=2",
        "sampling.val_batches=1",
        "model.n_filters=2",
        "model.depth=2",
        f"training.epochs={epochs}",
        "inference.overlap=[4, 16, 16]",
    ]
