"""Patches per second of ``PatchBatches``: sampling alone and with the papers' augmentation.

Issue 3's goal: at least 2 training batches per second of 2 x 80 x 160 x 160
patches with the papers' augmentation, elastic deformation included, on 2
cores (MIScnn: about 0.8 with prepared data, 0.05 on the fly).

Synthetic cases stand in for preprocessed ones, read through
``np.load(mmap_mode="r")`` like the preprocessing cache: a KiTS19 case after
resampling to 3.22 x 1.62 x 1.62 mm (93 x 250 x 250, labels 0/1/2: two
kidneys and a tumour), and a BraTS20 case (240 x 240 x 155, one channel,
binary enhancing tumour) with 128**3 patches.

Rows: sampling only; the papers' augmentation (cubic interpolation, as
MIScnn); the same with linear interpolation; the worst case, every patch
rotated and elastically deformed (cubic); and the papers' augmentation with
the boundary loss's signed distance maps computed per patch (issue 14).
Each row is measured with every worker count of ``--workers`` (default 1 and
the CPUs available): wall-clock batches and patches per second of the whole
pipeline, which on a shared machine depends on the other users' load; the
CPU seconds one batch costs (all threads), which does not; the rate
``workers / CPU seconds`` those would allow on idle cores; and the speed-up
over one worker.

Usage: python scripts/bench_sampling.py [--batches N] [--workers W [W ...]] [--cases K] [--rows NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import quiet_start  # noqa: F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console

import numpy as np

import losses
from pipeline.config import AugmentationSettings
from pipeline.training.sampling import PatchBatches, available_cpus


def _ellipsoid(shape, centre, radii):
    grids = np.ogrid[tuple(slice(0, size) for size in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii)) <= 1.0


def kits19_like(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """93 x 250 x 250 z-scored CT-like image with two kidneys (1) and a tumour (2)."""
    shape = (93, 250, 250)
    label = np.zeros(shape, dtype=np.uint8)
    label[_ellipsoid(shape, (46, 130, 70), (14, 22, 14))] = 1
    label[_ellipsoid(shape, (44, 128, 180), (14, 22, 14))] = 1
    label[_ellipsoid(shape, (50, 120, 190), (6, 8, 8))] = 2
    image = rng.normal(0.0, 0.3, size=shape).astype(np.float32)
    image += np.float32(1.5) * (label > 0)
    return np.clip(image, -1.5, 3.0)[..., None], label


def brats20_like(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """240 x 240 x 155 brain-like image with an enhancing rim (1)."""
    shape = (240, 240, 155)
    brain = _ellipsoid(shape, (120, 120, 77), (80, 95, 65))
    tumour = _ellipsoid(shape, (100, 140, 80), (18, 18, 15))
    core = _ellipsoid(shape, (100, 140, 80), (14, 14, 11))
    label = (tumour & ~core).astype(np.uint8)
    image = np.where(brain, rng.normal(0.0, 1.0, size=shape), 0.0).astype(np.float32)
    return image[..., None], label


def memmapped_cases(folder: Path, make, count: int, rng) -> list:
    """``count`` cases written as .npy and opened read-only memory-mapped, as the cache serves them."""
    cases = []
    for number in range(count):
        image, label = make(rng)
        np.save(folder / f"image_{number}.npy", image)
        np.save(folder / f"label_{number}.npy", label)
        cases.append(
            SimpleNamespace(
                case_id=f"case_{number}",
                image=np.load(folder / f"image_{number}.npy", mmap_mode="r"),
                label=np.load(folder / f"label_{number}.npy", mmap_mode="r"),
            )
        )
    return cases


def throughput(
    cases, patch_shape, num_classes, augmentation, batches, workers, target_maps=None
) -> tuple[float, float]:
    """Wall-clock batches per second and CPU seconds per batch, over batches read in order as Keras does."""
    sequence = PatchBatches(
        cases,
        patch_shape,
        batch_size=2,
        num_classes=num_classes,
        batches_per_epoch=batches + 1,
        augmentation=augmentation,
        seed=0,
        workers=workers,
        target_maps=target_maps,
    )
    try:
        sequence[0]
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(1, batches + 1):
            sequence[index]
        return batches / (time.perf_counter() - wall), (time.process_time() - cpu) / batches
    finally:
        sequence.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="timed batches per row (default 20)")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=None,
        help="worker thread counts to compare (default: 1 and the available CPUs)",
    )
    parser.add_argument("--cases", type=int, default=2, help="synthetic cases per data set (default 2)")
    paper = AugmentationSettings()
    boundary_maps = losses.get("boundary").target_maps
    rows = {
        "sampling only": (None, None),
        "paper augmentation (cubic)": (paper, None),
        "paper augmentation (linear)": (paper.model_copy(update={"interpolation_order": 1}), None),
        "every patch rotated + elastic (cubic)": (
            paper.model_copy(
                update={
                    "rotation": paper.rotation.model_copy(update={"probability": 1.0}),
                    "elastic": paper.elastic.model_copy(update={"probability": 1.0}),
                }
            ),
            None,
        ),
        "paper augmentation (cubic) + boundary maps": (paper, boundary_maps),
    }
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=list(rows),
        default=list(rows),
        metavar="NAME",
        help=f"rows to measure (default all): {', '.join(map(repr, rows))}",
    )
    parser.add_argument("--datasets", nargs="+", choices=["kits19", "brats20"], default=["kits19", "brats20"])
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        datasets = []
        if "kits19" in args.datasets:
            datasets.append(
                (
                    "KiTS19 93x250x250, patch 80x160x160",
                    (80, 160, 160),
                    3,
                    memmapped_cases(Path(folder), kits19_like, args.cases, rng),
                )
            )
        if "brats20" in args.datasets:
            brats_folder = Path(folder) / "brats"
            brats_folder.mkdir()
            datasets.append(
                (
                    "BraTS20 240x240x155, patch 128^3",
                    (128, 128, 128),
                    2,
                    memmapped_cases(brats_folder, brats20_like, args.cases, rng),
                )
            )
        worker_counts = args.workers or sorted({1, available_cpus()})
        print(
            f"worker threads {worker_counts} ({available_cpus()} CPUs available); "
            "'idle' = workers / CPU seconds per batch"
        )
        for title, patch_shape, num_classes, cases in datasets:
            print(f"{title}, batch 2:")
            print(
                f"  {'':44s} {'workers':>7s} {'batches/s':>9s} {'patches/s':>9s} {'CPU s/batch':>11s} "
                f"{'idle batches/s':>14s} {'speed-up':>8s}"
            )
            for name in args.rows:
                augmentation, target_maps = rows[name]
                single = None
                for workers in worker_counts:
                    rate, cpu = throughput(
                        cases, patch_shape, num_classes, augmentation, args.batches, workers, target_maps
                    )
                    single = single or rate
                    print(
                        f"  {name:44s} {workers:7d} {rate:9.2f} {2 * rate:9.2f} {cpu:11.3f} "
                        f"{workers / cpu:14.2f} {rate / single:7.2f}x",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
