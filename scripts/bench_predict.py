"""Benchmark: ``predict`` of a KiTS19-sized case with one model or the 5-fold ensemble, with and without mirroring.

    .venv/bin/python scripts/bench_predict.py [--shape 100 512 512] [--filters 8] [--folds 5] [--repeats 1]
                                              [--only single ensemble single+mirror ensemble+mirror]

A phantom CT of ``--shape`` voxels at 3 x 0.78 x 0.78 mm is written as NIfTI
and predicted through the ``predict`` command's code path (read, preprocess
to the paper's 3.22 x 1.62 x 1.62 mm, sliding windows of 80 x 160 x 160
overlapping by 40 x 80 x 80, softmax ensemble, mirroring, map back, write
with the input's header) by randomly initialised U-Nets (``--filters``,
depth 4), as ``scripts/bench_inference.py`` measures the single model of
``run-experiment``. Each network is traced once before the timings. Prints
seconds per case for each setting and its multiple of the single model.
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
from pipeline.config import load_config
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine, kits19_phantom
from pipeline.inference.predict import InputCase, ensemble_predictor, flips, predict_case
from pipeline.training.train import build_model

SPACING = (3.0, 0.78, 0.78)
SETTINGS = {
    "single": (1, False),
    "single+mirror": (1, True),
    "ensemble": (None, False),
    "ensemble+mirror": (None, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(100, 512, 512), help="original voxels (D, H, W)")
    parser.add_argument("--filters", type=int, default=8, help="U-Net filters of the first level")
    parser.add_argument("--folds", type=int, default=5, help="models in the ensemble")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per setting")
    parser.add_argument("--only", nargs="+", choices=SETTINGS, default=list(SETTINGS), help="settings to time")
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)

    config = load_config("configs/kits19_dice.yaml", [f"model.n_filters={args.filters}", "inference.batch_size=2"])
    import tensorflow as tf

    networks = []
    for fold in range(args.folds):
        tf.keras.utils.set_random_seed(fold)
        networks.append(build_model(config.model, 1, 3))
    image, _ = kits19_phantom(np.random.default_rng(0), tuple(args.shape), SPACING)
    print(
        f"original {tuple(args.shape)} at {SPACING} mm, preprocessed to {config.preprocessing.target_spacing} mm; "
        f"{args.filters}-filter U-Net, windows {config.sampling.patch_shape}, overlap {config.inference_overlap}, "
        f"batch {config.inference.batch_size}; {args.repeats} timed run(s) per setting"
    )
    timings = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        write_nifti(folder / "bench_0000.nii.gz", image, kits19_affine(SPACING))
        case = InputCase("bench", (folder / "bench_0000.nii.gz",))
        for name in args.only:
            count, mirror = SETTINGS[name]
            chosen = networks[: count or args.folds]
            predict_batch = ensemble_predictor(
                chosen, config.sampling.patch_shape, 1, config.inference.batch_size, mirror
            )
            predict_batch(np.zeros((config.inference.batch_size, *config.sampling.patch_shape, 1), np.float32))
            seconds = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                predict_case(case, config, predict_batch, 1, 3, folder / "out")
                seconds.append(time.perf_counter() - started)
            timings[name] = min(seconds)
            passes = len(chosen) * len(flips(3, mirror))
            print(
                f"{name:>16}: {timings[name]:6.1f} s per case  ({passes:2d} forward passes per window"
                + (f", {timings[name] / timings['single']:.1f}x the single model)" if "single" in timings else ")"),
                flush=True,
            )


if __name__ == "__main__":
    main()
