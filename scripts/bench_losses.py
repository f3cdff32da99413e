"""Forward + backward time of every loss, relative to the cheapest possible loss.

For each registered loss (or those given with ``--losses``) this times one
``tf.function`` that computes the loss and its gradient with respect to
``y_pred`` on a fixed batch, and divides by the time of the floor
``reduce_sum(y_true * y_pred)`` on the same tensors: one product, one sum and
their gradient, i.e. the memory traffic no loss can avoid. The default batch
is the Unified Focal paper's KiTS19 training batch, 2 patches of
80 x 160 x 160 voxels, 3 classes. Times are medians over ``--repeats`` runs
after ``--warmup`` runs, the floor timed in alternation with each loss;
other processes on the machine inflate both.

Goals (issues 2 and 14): every loss within 4x the floor, Lovász-softmax
(a sort of every voxel per class) within 15x. The distance-map losses read
their ground-truth maps from the target, as the training pipeline feeds them
(one-hot ‖ maps, computed once per batch outside the timed step);
``--self-computed-maps`` times the path that computes them inside the loss.
``hausdorff_dt`` computes the prediction's distance map in every step either
way. On a CPU the sorts and distance transforms run on the host (NumPy,
``edt``); on a GPU, or with ``--jit-compile``, in TensorFlow ops
(:mod:`losses.placement`). ``--batch-pooling`` times every loss that takes
``batch`` twice, per sample and pooled over the batch (``name (batch)``).

    python scripts/bench_losses.py                        # the paper's batch, every loss
    python scripts/bench_losses.py --shape 2 32 64 64 3 --losses dice focal
    python scripts/bench_losses.py --losses dice dice_ce --batch-pooling
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import quiet_start  # noqa: E402, F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import losses  # noqa: E402
from losses.distance_maps import DistanceMapLoss  # noqa: E402

GOAL = 4.0
GOALS = {"lovasz_softmax": 15.0}

# Ma's taxonomy (SPEC.md section 1); the goal applies to the first two families.
FAMILIES = {
    "distribution": (
        "cross_entropy",
        "weighted_cross_entropy",
        "topk",
        "distance_penalized_ce",
        "focal",
        "symmetric_focal",
        "asymmetric_focal",
    ),
    "region": (
        "sensitivity_specificity",
        "dice",
        "iou",
        "tversky",
        "generalized_dice",
        "focal_tversky",
        "cosine_tversky",
        "lovasz_softmax",
        "asymmetric_similarity",
        "symmetric_focal_tversky",
        "asymmetric_focal_tversky",
    ),
    "boundary": ("boundary", "hausdorff_dt"),
    "compound": (
        "combo",
        "dice_ce",
        "dice_topk",
        "dice_focal",
        "exp_log",
        "mixed_focal",
        "symmetric_unified_focal",
        "asymmetric_unified_focal",
    ),
}
FAMILY_OF = {name: family for family, names in FAMILIES.items() for name in names}


def floor_loss(y_true, y_pred):
    """The cheapest loss of the two tensors: one product and one sum."""
    return tf.reduce_sum(y_true * y_pred)


def make_batch(shape: tuple[int, ...], seed: int):
    """Imbalanced one-hot labels (70 % background) and softmax probabilities, float32."""
    rng = np.random.default_rng(seed)
    num_classes = shape[-1]
    frequencies = [0.7] + [0.3 / (num_classes - 1)] * (num_classes - 1)
    labels = rng.choice(num_classes, size=shape[:-1], p=frequencies)
    y_true = tf.one_hot(labels, num_classes, dtype=tf.float32)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=shape), tf.float32))
    return y_true, y_pred


def forward_backward_step(loss_fn, jit_compile: bool = False):
    """A compiled function returning the loss and its gradient with respect to ``y_pred`` (XLA with ``jit_compile``)."""

    @tf.function(jit_compile=jit_compile)
    def step(y_true, y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            value = loss_fn(y_true, y_pred)
        return value, tape.gradient(value, y_pred)

    return step


def seconds(step, y_true, y_pred) -> float:
    """Wall time of one call, waiting for the device to finish."""
    start = time.perf_counter()
    step(y_true, y_pred)
    tf.test.experimental.sync_devices()
    return time.perf_counter() - start


def pipeline_target(loss, y_true):
    """The target the sampler feeds a distance-map loss: one-hot, then the loss's maps of each patch."""
    maps = np.stack([loss.target_maps(patch) for patch in y_true.numpy()])
    return tf.concat([y_true, tf.constant(maps)], axis=-1)


def time_against_floor(
    loss_fn, floor_step, y_true, y_pred, warmup: int, repeats: int, loss_target=None, jit_compile: bool = False
):
    """Median times of the loss (on ``loss_target``, default ``y_true``) and of the floor, in alternation.

    Alternating keeps the ratio fair when the load of the machine drifts.
    """
    loss_target = y_true if loss_target is None else loss_target
    step = forward_backward_step(loss_fn, jit_compile)
    for _ in range(warmup):
        step(loss_target, y_pred)
    loss_times, floor_times = [], []
    for _ in range(repeats):
        floor_times.append(seconds(floor_step, y_true, y_pred))
        loss_times.append(seconds(step, loss_target, y_pred))
    return statistics.median(loss_times), statistics.median(floor_times)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shape",
        type=int,
        nargs="+",
        default=[2, 80, 160, 160, 3],
        help="batch shape (B, [D,] H, W, C); default: 2 80 160 160 3",
    )
    parser.add_argument(
        "--losses", nargs="+", default=None, metavar="NAME", help="losses to time; default: every registered loss"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per loss (median reported); default 5")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first; default 2")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random batch; default 0")
    parser.add_argument(
        "--self-computed-maps",
        action="store_true",
        help="distance-map losses compute the maps themselves instead of reading them from the target",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="XLA-compile the loss and the floor (training.jit_compile); sorts and distance "
        "transforms then run in TensorFlow ops, as on a GPU",
    )
    parser.add_argument(
        "--batch-pooling",
        action="store_true",
        help="also time each loss that takes batch with batch=true (TP/FP/FN pooled over the batch)",
    )
    console.add_arguments(parser)
    arguments = parser.parse_args(argv)
    console.configure(arguments)
    if len(arguments.shape) not in (4, 5) or min(arguments.shape) < 1 or arguments.shape[-1] < 2:
        parser.error(f"--shape must be B H W C or B D H W C with C >= 2, got {' '.join(map(str, arguments.shape))}")
    unknown = sorted(set(arguments.losses or ()) - set(losses.names()))
    if unknown:
        parser.error(f"unknown loss {', '.join(unknown)}; choose from: {', '.join(losses.names())}")
    if arguments.repeats < 1 or arguments.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")
    return arguments


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    shape = tuple(arguments.shape)
    y_true, y_pred = make_batch(shape, arguments.seed)
    devices = ", ".join(device.name for device in tf.config.list_logical_devices())
    print(
        f"batch {shape} float32 on {devices}; median of {arguments.repeats} after {arguments.warmup} warm-up runs; "
        f"distance maps {'computed in the loss' if arguments.self_computed_maps else 'fed with the target'}"
        f"{'; XLA' if arguments.jit_compile else ''}",
        flush=True,
    )
    floor_step = forward_backward_step(floor_loss, arguments.jit_compile)
    for _ in range(max(arguments.warmup, 1)):
        floor_step(y_true, y_pred)
    variants = [(name, {}) for name in arguments.losses or losses.names()]
    if arguments.batch_pooling:
        variants = [
            variant
            for name, _ in variants
            for variant in [(name, {})] + ([(name, {"batch": True})] if "batch" in losses.parameters(name) else [])
        ]
    width = max(26, *(len(name) + (8 if params else 0) for name, params in variants))
    print(f"{'loss':{width}s} {'family':12s} {'ms':>9s} {'floor ms':>9s} {'x floor':>8s}")
    above = []
    for name, params in variants:
        loss = losses.get(name, **params)
        fed = isinstance(loss, DistanceMapLoss) and not arguments.self_computed_maps
        loss_seconds, floor_seconds = time_against_floor(
            loss,
            floor_step,
            y_true,
            y_pred,
            arguments.warmup,
            arguments.repeats,
            pipeline_target(loss, y_true) if fed else None,
            arguments.jit_compile,
        )
        family = FAMILY_OF.get(name, "unclassified")
        label = f"{name} (batch)" if params else name
        ratio = loss_seconds / floor_seconds
        flag = ""
        goal = GOALS.get(name, GOAL)
        if ratio > goal:
            above.append(label)
            flag = f"  above {goal:g}x"
        print(
            f"{label:{width}s} {family:12s} {loss_seconds * 1e3:9.1f} {floor_seconds * 1e3:9.1f} {ratio:8.1f}{flag}",
            flush=True,
        )
    print(f"\nlosses above their goal ({GOAL:g}x the floor, lovasz_softmax 15x): {', '.join(above) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
