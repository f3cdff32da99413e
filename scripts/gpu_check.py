"""GPU readiness figures: training speed and memory at the papers' settings, the data pipeline, inference.

    .venv/bin/python scripts/gpu_check.py [--steps 20] [--warmup 3] [--pipeline-batches 10]

Run by ``scripts/gpu_check.sh`` (which first runs the ``gpu``-marked tests).
Every line is printed as soon as it is measured, so a run stopped early still
reports what it finished. Sections:

1. Training at the papers' settings, from ``configs/kits19_asymmetric_unified_focal.yaml``
   (80 x 160 x 160, batch 2, 32 filters, depth 4, 3 classes) and
   ``configs/brats20_asymmetric_unified_focal.yaml`` (128^3, 2 classes):
   seconds per step and per epoch (``sampling.batches_per_epoch`` steps,
   extrapolated from ``--steps`` timed steps after ``--warmup`` untimed ones,
   which include tracing and XLA compilation) in float32 and mixed_float16
   (KiTS19 also with ``training.jit_compile``), on synthetic batches already
   in memory: the GPU's own speed. Next to it the peak GPU memory
   (``tf.config.experimental.get_memory_info``) and the estimate of
   ``pipeline.training.memory`` (``scripts/estimate_gpu_memory.py``).
2. MirroredStrategy over every visible GPU (global batch 2 per GPU, mixed_float16).
3. The data pipeline: batches per second of ``PatchBatches`` with the
   papers' augmentation (cubic) and with the boundary loss's distance maps, on
   ``available_cpus()`` worker threads, next to the GPU's steps per second:
   whichever is lower is the bottleneck.
4. Sliding-window prediction of a KiTS19-sized preprocessed case
   (93 x 250 x 250, the paper's 3.22 x 1.62 x 1.62 mm grid), windows 80 x 160 x 160
   overlapping by 40 x 80 x 80, ``inference.batch_size: auto``.

Without a GPU, sections 1, 2 and 4 print why they are skipped; the memory
estimates and section 3 still run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import quiet_start  # noqa: F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console

import numpy as np

import pipeline  # noqa: F401  (environment for TensorFlow)
import losses
from pipeline.config import AugmentationSettings, load_config
from pipeline.inference.sliding_window import keras_predictor, resolve_batch_size, sliding_window_predict
from pipeline.training import distribute
from pipeline.training.memory import GIB, training_memory
from pipeline.training.model import build_unet
from pipeline.training.sampling import available_cpus
from pipeline.training.train import compile_model

import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampling import brats20_like, kits19_like, memmapped_cases, throughput  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {  # name: (config, image channels, classes, synthetic case)
    "KiTS19": (ROOT / "configs/kits19_asymmetric_unified_focal.yaml", 1, 3, kits19_like),
    "BraTS20": (ROOT / "configs/brats20_asymmetric_unified_focal.yaml", 1, 2, brats20_like),
}
OVERRIDES: list[str] = []  # --set, applied to both configs
# (setting, precision, jit_compile) rows of section 1.
TRAINING_ROWS = [
    ("KiTS19", "float32", False),
    ("KiTS19", "mixed_float16", False),
    ("KiTS19", "mixed_float16", True),
    ("BraTS20", "float32", False),
    ("BraTS20", "mixed_float16", False),
]


def gpus() -> list:
    return tf.config.list_logical_devices("GPU")


def synthetic_batch(batch: int, patch, channels: int, classes: int, seed: int = 0):
    """Images and one-hot labels with a foreground blob per class, as float32 tensors."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((batch, *patch), np.int64)
    for value in range(1, classes):
        corner = [size // (2 + value) for size in patch]
        labels[(slice(None), *[slice(c, c + size // 4) for c, size in zip(corner, patch)])] = value
    x = (rng.normal(size=(batch, *patch, channels)) + labels[..., None]).astype(np.float32)
    return tf.constant(x), tf.one_hot(labels, classes)


def peak_memory_bytes() -> int:
    """The highest peak over the visible GPUs since the last reset."""
    return max(tf.config.experimental.get_memory_info(f"GPU:{index}")["peak"] for index in range(len(gpus())))


def reset_memory() -> None:
    for index in range(len(gpus())):
        tf.config.experimental.reset_memory_stats(f"GPU:{index}")


def time_training(
    name: str, precision: str, jit_compile: bool, steps: int, warmup: int, strategy_name: str = "default"
) -> dict:
    """Seconds per training step of the setting's U-Net and loss on in-memory batches, and peak memory."""
    path, channels, classes, _ = SETTINGS[name]
    config = load_config(path, OVERRIDES)
    tf.keras.backend.clear_session()
    distribute.apply_precision_policy(precision)
    try:
        strategy = distribute.strategy_for(strategy_name)
        with strategy.scope():
            model = compile_model(
                config.model, config.loss, config.training.learning_rate, channels, classes, jit_compile=jit_compile
            )
        batch = config.sampling.batch_size * strategy.num_replicas_in_sync
        data = tf.data.Dataset.from_tensors(
            synthetic_batch(batch, config.sampling.patch_shape, channels, classes)
        ).repeat()
        reset_memory()
        started = time.perf_counter()
        model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)
        first = time.perf_counter() - started
        started = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        per_step = (time.perf_counter() - started) / steps
        peak = peak_memory_bytes()
    finally:
        distribute.apply_precision_policy("float32")
    return {
        "per_step": per_step,
        "epoch": per_step * config.sampling.batches_per_epoch,
        "batches_per_epoch": config.sampling.batches_per_epoch,
        "warmup": first,
        "peak": peak,
        "batch": batch,
    }


def memory_estimate(name: str, precision: str) -> float:
    path, channels, classes, _ = SETTINGS[name]
    config = load_config(path, OVERRIDES)
    section = config.model
    memory = training_memory(
        lambda: build_unet(
            channels,
            classes,
            n_filters=section.n_filters,
            depth=section.depth,
            deep_supervision=section.deep_supervision,
        ),
        config.sampling.patch_shape,
        config.sampling.batch_size,
        channels,
        precision,
    )
    return memory.estimate_bytes / GIB


def section_training(args, results: dict) -> None:
    print("\n1. Training step at the papers' settings (synthetic batches in GPU memory)", flush=True)
    print(
        f"  {'setting':<34} {'precision':<14} {'XLA':<4} {'s/step':>7} {'s/epoch':>8} {'first':>6} "
        f"{'peak GiB':>8} {'estimate GiB':>12}",
        flush=True,
    )
    for name, precision, jit_compile in TRAINING_ROWS:
        config = load_config(SETTINGS[name][0], OVERRIDES)
        setting = (
            f"{name} {'x'.join(map(str, config.sampling.patch_shape))}, batch {config.sampling.batch_size}, "
            f"{config.model.n_filters} f"
        )
        estimate = memory_estimate(name, precision)
        if not gpus():
            print(
                f"  {setting:<34} {precision:<14} {'on' if jit_compile else 'off':<4} "
                f"{'skipped: no GPU visible to TensorFlow':>45} {estimate:10.1f}",
                flush=True,
            )
            continue
        try:
            row = time_training(name, precision, jit_compile, args.steps, args.warmup)
        except tf.errors.ResourceExhaustedError:
            print(
                f"  {setting:<34} {precision:<14} {'on' if jit_compile else 'off':<4} out of GPU memory "
                f"(estimate {estimate:.1f} GiB)",
                flush=True,
            )
            continue
        results[(name, precision, jit_compile)] = row
        print(
            f"  {setting:<34} {precision:<14} {'on' if jit_compile else 'off':<4} {row['per_step']:7.3f} "
            f"{row['epoch']:8.1f} {row['warmup']:6.1f} {row['peak'] / GIB:8.1f} {estimate:12.1f}",
            flush=True,
        )
    print(
        f"  (s/epoch: {load_config(SETTINGS['KiTS19'][0], OVERRIDES).sampling.batches_per_epoch} steps; 'first': the "
        f"{args.warmup} warm-up steps with tracing and compilation, seconds)",
        flush=True,
    )


def section_mirrored(args, results: dict) -> None:
    print("\n2. MirroredStrategy over every visible GPU (KiTS19, mixed_float16, batch 2 per GPU)", flush=True)
    if not gpus():
        print("  skipped: no GPU visible to TensorFlow", flush=True)
        return
    row = time_training("KiTS19", "mixed_float16", False, args.steps, args.warmup, strategy_name="mirrored")
    single = results.get(("KiTS19", "mixed_float16", False))
    samples = row["batch"] / row["per_step"]
    scaling = f", {samples / (2 / single['per_step']):.2f}x the samples/s of one GPU" if single else ""
    print(
        f"  {len(gpus())} GPU(s), global batch {row['batch']}: {row['per_step']:.3f} s/step, "
        f"{samples:.1f} samples/s{scaling}",
        flush=True,
    )


def section_pipeline(args, results: dict) -> None:
    workers = available_cpus()
    print(f"\n3. Data pipeline on {workers} worker thread(s) (available_cpus()) against the GPU", flush=True)
    paper = AugmentationSettings()
    boundary = losses.get("boundary").target_maps
    with tempfile.TemporaryDirectory() as folder:
        for name in ("KiTS19", "BraTS20"):
            path, _, classes, make = SETTINGS[name]
            config = load_config(path, OVERRIDES)
            cases_folder = Path(folder) / name
            cases_folder.mkdir()
            cases = memmapped_cases(cases_folder, make, 2, np.random.default_rng(0))
            gpu_rates = {
                precision: 1 / row["per_step"]
                for (setting, precision, xla), row in results.items()
                if setting == name and not xla
            }
            for label, target_maps in (
                ("paper augmentation (cubic)", None),
                ("paper augmentation + boundary maps", boundary),
            ):
                rate, cpu = throughput(
                    cases, config.sampling.patch_shape, classes, paper, args.pipeline_batches, workers, target_maps
                )
                line = (
                    f"  {name:<8} {label:<36} {rate:6.2f} batches/s ({cpu:.2f} CPU s/batch, "
                    f"{1 / cpu:.2f} batches/s per core)"
                )
                for precision, gpu_rate in gpu_rates.items():
                    bottleneck = "data pipeline" if rate < gpu_rate else "GPU"
                    line += f"; GPU {precision} {gpu_rate:.2f} steps/s -> {bottleneck} bound"
                if not gpu_rates:
                    line += "; GPU steps/s: not measured (no GPU)"
                print(line, flush=True)


def section_inference(args, results: dict) -> None:
    print("\n4. Sliding-window prediction of a KiTS19-sized case (93 x 250 x 250 at 3.22 x 1.62 x 1.62 mm)", flush=True)
    if not gpus():
        print("  skipped: no GPU visible to TensorFlow (scripts/bench_inference.py measures the CPU)", flush=True)
        return
    config = load_config(SETTINGS["KiTS19"][0], OVERRIDES)
    patch = config.sampling.patch_shape
    for precision in ("float32", "mixed_float16"):
        tf.keras.backend.clear_session()
        distribute.apply_precision_policy(precision)
        try:
            model = build_unet(1, 3, n_filters=config.model.n_filters, depth=config.model.depth)
            windows = resolve_batch_size("auto", model, patch, 1)
            predict = keras_predictor(model, tuple(patch), 1, windows)
            image = kits19_like(np.random.default_rng(1))[0]
            sliding_window_predict(predict, image, patch, config.inference_overlap, 3, batch_size=windows)  # trace
            started = time.perf_counter()
            sliding_window_predict(predict, image, patch, config.inference_overlap, 3, batch_size=windows)
            seconds = time.perf_counter() - started
        finally:
            distribute.apply_precision_policy("float32")
        print(f"  {precision:<14} auto batch {windows:2d} windows: {seconds:.2f} s per case", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per row (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--pipeline-batches", type=int, default=10, help="timed data-pipeline batches (default 10)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for both settings, e.g. sampling.patch_shape=[64,128,128] on a small GPU",
    )
    console.add_arguments(parser)
    args = parser.parse_args(argv)
    console.configure(args)
    OVERRIDES[:] = args.set
    devices = [
        tf.config.experimental.get_device_details(device).get("device_name", device.name)
        for device in tf.config.list_physical_devices("GPU")
    ]
    print(
        f"TensorFlow {tf.__version__}; GPUs: {', '.join(devices) or 'none visible'}; "
        f"{available_cpus()} CPU(s) available",
        flush=True,
    )
    results: dict = {}
    section_training(args, results)
    section_mirrored(args, results)
    section_pipeline(args, results)
    section_inference(args, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
