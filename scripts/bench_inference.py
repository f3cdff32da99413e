"""Benchmark: sliding-window inference of a KiTS19-sized case, back to its original geometry.

    .venv/bin/python scripts/bench_inference.py [--shape 100 512 512] [--filters 8] [--repeats 2]

A phantom CT of ``--shape`` voxels at 3 x 0.78 x 0.78 mm is preprocessed as
in the paper (3.22 x 1.62 x 1.62 mm), then predicted by a randomly initialised
U-Net (``--filters``, depth 4) with 80 x 160 x 160 windows overlapping by
40 x 80 x 80, mapped back to the original grid and written as NIfTI. Prints
voxels per second (original grid) and where the time goes: predict (the
network), stitch (Gaussian weighting and accumulation), resample back, write.
Goal (issue 4, 2 cores): at most 22 s per case; MIScnn takes about 40 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import quiet_start  # noqa: F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console

import numpy as np

import pipeline  # noqa: F401  (environment for TensorFlow)
from pipeline.data.case import Case
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine, kits19_phantom
from pipeline.inference.sliding_window import keras_predictor, sliding_window_predict
from pipeline.config import PreprocessingSection, load_section
from pipeline.preprocessing import preprocess_case, restore_to_original
from pipeline.training.model import build_unet

PATCH = (80, 160, 160)
OVERLAP = (40, 80, 80)
SPACING = (3.0, 0.78, 0.78)

#: The papers' KiTS19 preprocessing, as configs/base/kits19.yaml sets it.
KITS19 = load_section(
    Path(__file__).resolve().parents[1] / "configs/base/kits19.yaml", "preprocessing", PreprocessingSection
).settings()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(100, 512, 512), help="original voxels (D, H, W)")
    parser.add_argument("--filters", type=int, default=8, help="U-Net filters of the first level")
    parser.add_argument("--batch-size", type=int, default=2, help="windows per network call")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs after one warm-up")
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)

    image, label = kits19_phantom(np.random.default_rng(0), tuple(args.shape), SPACING)
    case = Case("bench", image[..., None].astype(np.float32), label, SPACING, kits19_affine(SPACING))
    pre = preprocess_case(case, KITS19, num_classes=3)
    model = build_unet(1, 3, n_filters=args.filters, depth=4)
    network = keras_predictor(model, PATCH, 1, args.batch_size)
    predict_seconds = []

    def timed_network(batch):
        started = time.perf_counter()
        result = network(batch)
        predict_seconds.append(time.perf_counter() - started)
        return result

    print(
        f"original {tuple(args.shape)} at {SPACING} mm -> preprocessed {pre.image.shape[:3]}; "
        f"{args.filters}-filter U-Net, windows {PATCH}, overlap {OVERLAP}, batch {args.batch_size}"
    )
    network(np.zeros((args.batch_size, *PATCH, 1), np.float32))  # trace once, outside the timings
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.repeats + 1):
            predict_seconds.clear()
            started = time.perf_counter()
            probabilities = sliding_window_predict(
                timed_network, np.asarray(pre.image), PATCH, OVERLAP, 3, batch_size=args.batch_size
            )
            windowed = time.perf_counter()
            labels = restore_to_original(probabilities, pre)
            restored = time.perf_counter()
            write_nifti(Path(folder) / "bench.nii.gz", labels, pre.affine)
            written = time.perf_counter()
            predict = sum(predict_seconds)
            total = written - started
            print(
                f"{'warm-up' if run == 0 else f'run {run}':>8}: total {total:5.1f} s  "
                f"({np.prod(args.shape) / total / 1e6:.2f} M voxels/s)  predict {predict:5.1f} s  "
                f"stitch {windowed - started - predict:4.1f} s  resample back {restored - windowed:4.1f} s  "
                f"write {written - restored:4.1f} s  [{len(predict_seconds)} network calls]"
            )


if __name__ == "__main__":
    main()
