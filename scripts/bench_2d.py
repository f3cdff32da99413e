"""Benchmark of the pipeline in 2D: training batches per second and prediction time per image.

    .venv/bin/python scripts/bench_2d.py [--batches 10] [--filters 32] [--repeats 2] [--skip-training-steps]

Full-size phantoms of the three 2D data sets, preprocessed as in
``configs/base/<dataset>.yaml``: CVC-ClinicDB (288 x 384 RGB, whole frames,
batch 8), DRIVE (584 x 565 RGB, 256 x 256 patches, batch 8) and BUS2017
(about 570 x 760 grey, resized to 256 x 256, batch 8).

Training: batches per second of ``PatchBatches`` (foreground oversampling,
the papers' augmentation with cubic or linear interpolation, threads as in
training), then, unless ``--skip-training-steps``, of whole training steps
(batches fed to ``train_on_batch`` of the U-Net with ``--filters``, depth 4,
the Dice loss).

Prediction per image: preprocessing (z-score, resize), the network through the
sliding window (one window for whole frames, 3 x 3 windows for DRIVE),
mapping back to the image's size, and writing the PNG.
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
from pipeline.data.image_files import write_label_png
from pipeline.data.phantom_2d import colonoscopy_phantom, fundus_phantom, ultrasound_phantom
from pipeline.inference.sliding_window import keras_predictor, sliding_window_predict
from pipeline.preprocessing import PreprocessingSettings, preprocess_case, restore_to_original
from pipeline.training.augmentation import AugmentationSettings
from pipeline.training.sampling import PatchBatches, available_cpus

BATCH = 8


def cvc(rng):
    image, mask = colonoscopy_phantom(rng, (288, 384))
    return image, mask


def drive(rng):
    image, vessels, _ = fundus_phantom(rng, (584, 565))
    return image, vessels


def bus2017(rng):
    image, mask = ultrasound_phantom(rng, (int(570 * rng.uniform(0.85, 1.15)), int(760 * rng.uniform(0.85, 1.15))))
    return image[..., None], mask


#: name -> (phantom, preprocessing, patch, overlap)
DATASETS = {
    "CVC-ClinicDB 288x384 RGB, whole frames": (cvc, PreprocessingSettings(), (288, 384), (0, 0)),
    "DRIVE 584x565 RGB, patches 256x256": (drive, PreprocessingSettings(), (256, 256), (128, 128)),
    "BUS2017 ~570x760 grey, resized 256x256": (
        bus2017,
        PreprocessingSettings(target_shape=(256, 256)),
        (256, 256),
        (0, 0),
    ),
}


def preprocessed_cases(make, settings, count, seed=0):
    cases = []
    for number in range(count):
        image, mask = make(np.random.default_rng([seed, number]))
        case = Case(f"case_{number}", image.astype(np.float32), (mask > 0).astype(np.uint8), (1.0, 1.0), np.eye(4))
        cases.append(preprocess_case(case, settings, num_classes=2))
    return cases


def batches_per_second(cases, patch, augmentation, batches, workers, step=None) -> float:
    sequence = PatchBatches(
        cases,
        patch,
        batch_size=BATCH,
        num_classes=2,
        batches_per_epoch=batches + 1,
        augmentation=augmentation,
        seed=0,
        workers=workers,
    )
    try:
        x, y = sequence[0]
        if step is not None:
            step(x, y)  # trace outside the timing
        started = time.perf_counter()
        for index in range(1, batches + 1):
            x, y = sequence[index]
            if step is not None:
                step(x, y)
        return batches / (time.perf_counter() - started)
    finally:
        sequence.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=10, help="timed batches per row (default 10)")
    parser.add_argument("--filters", type=int, default=32, help="U-Net filters of the first level (paper: 32)")
    parser.add_argument("--repeats", type=int, default=2, help="timed predictions per data set")
    parser.add_argument("--skip-training-steps", action="store_true", help="time the batches only")
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)

    import losses
    import tensorflow as tf
    from pipeline.training.model import build_unet

    workers = available_cpus()
    paper = AugmentationSettings()
    linear = paper.model_copy(update={"interpolation_order": 1})
    print(f"{workers} worker threads, batch {BATCH}; U-Net {args.filters} filters, depth 4")
    for title, (make, settings, patch, overlap) in DATASETS.items():
        cases = preprocessed_cases(make, settings, 4)
        channels = cases[0].image.shape[-1]
        print(f"{title}:")
        for name, augmentation in (
            ("sampling only", None),
            ("paper augmentation (cubic)", paper),
            ("paper augmentation (linear)", linear),
        ):
            rate = batches_per_second(cases, patch, augmentation, args.batches, workers)
            print(f"  batches/s, {name:38s} {rate:7.2f}", flush=True)
        model = build_unet(channels, 2, n_filters=args.filters, depth=4, spatial_dims=2)
        if not args.skip_training_steps:
            model.compile(tf.keras.optimizers.Adam(1e-4), loss=losses.get("dice"))
            steps = max(2, args.batches // 3)
            rate = batches_per_second(cases, patch, linear, steps, workers, step=model.train_on_batch)
            print(f"  batches/s, {'training steps (linear augmentation)':38s} {rate:7.2f}", flush=True)
        network = keras_predictor(model, patch, channels, 2)
        network(np.zeros((2, *patch, channels), np.float32))
        with tempfile.TemporaryDirectory() as folder:
            timings = []
            for repeat in range(args.repeats):
                image, mask = make(np.random.default_rng([99, repeat]))
                case = Case("bench", image.astype(np.float32), (mask > 0).astype(np.uint8), (1.0, 1.0), np.eye(4))
                started = time.perf_counter()
                pre = preprocess_case(case, settings, num_classes=2)
                prepared = time.perf_counter()
                probabilities = sliding_window_predict(network, np.asarray(pre.image), patch, overlap, 2)
                predicted = time.perf_counter()
                labels = restore_to_original(probabilities, pre)
                write_label_png(Path(folder) / "bench.png", labels)
                timings.append((prepared - started, predicted - prepared, time.perf_counter() - predicted))
            prepare, predict, back = np.median(timings, axis=0)
            print(
                f"  prediction per image: {prepare + predict + back:5.2f} s (preprocess {prepare:.2f}, "
                f"network {predict:.2f}, back to size + PNG {back:.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
