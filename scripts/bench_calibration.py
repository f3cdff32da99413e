"""Benchmark of the calibration scores of one large case: time and peak memory, beside the volume's size.

    .venv/bin/python scripts/bench_calibration.py [--shape 600 512 512] [--classes 3] [--regions 1]

A synthetic softmax of ``--classes`` classes on a CT-sized grid (the default:
600 slices of 512 x 512, a long KiTS19 scan) is fed one class at a time, as
``run-experiment`` and ``evaluate --probabilities`` do, to
``pipeline.evaluation.calibration.CaseCalibration``; ``--regions`` composite
regions of two classes each are scored beside them. Prints the seconds spent
and the process's peak resident memory over the class volumes it had to
hold anyway (the label map and the class in hand).
"""

from __future__ import annotations

import argparse
import resource
import time

from pipeline import console

import numpy as np

from pipeline.evaluation.calibration import CaseCalibration


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs="+", default=[600, 512, 512])
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--regions", type=int, default=1, choices=(0, 1))
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)
    shape = tuple(args.shape)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, args.classes, shape, dtype=np.uint8)
    class_volume_gib = np.prod(shape) * 4 / 2**30
    names = ["background", *(f"class_{label}" for label in range(1, args.classes))]
    regions = {"both": [1, 2]} if args.regions and args.classes > 2 else None
    before = peak_rss_gib()
    started = time.perf_counter()
    calibration = CaseCalibration(labels, names, regions)
    remaining = np.ones(shape, np.float32)
    for label in range(args.classes):  # a valid softmax built one class at a time, as the callers stream it
        probabilities = remaining if label == args.classes - 1 else remaining * rng.random(shape, np.float32)
        calibration.add_class(label, probabilities)
        remaining = remaining - probabilities if label < args.classes - 1 else remaining
    rows = calibration.rows()
    seconds = time.perf_counter() - started
    print(
        f"grid {' x '.join(map(str, shape))} ({np.prod(shape) / 1e6:.0f} M voxels), {args.classes} classes, "
        f"{len(regions or {})} region(s)"
    )
    print(f"calibration: {seconds:.1f} s ({np.prod(shape) * args.classes / seconds / 1e6:.0f} M class-voxels/s)")
    print(
        f"peak resident memory {peak_rss_gib():.2f} GiB (before: {before:.2f} GiB); one float32 class volume "
        f"is {class_volume_gib:.2f} GiB"
    )
    top = rows[0]
    print(f"top-label ECE {top['ece']:.4f}, Brier {top['brier']:.4f}, NLL {top['nll']:.4f} (random softmax)")


if __name__ == "__main__":
    main()
