"""Estimate the GPU memory one training step of the project's 3D U-Net needs, per precision policy.

    .venv/bin/python scripts/estimate_gpu_memory.py [--patch 80 160 160] [--batch 2]
        [--filters 32] [--depth 4] [--channels 1] [--classes 3] [--deep-supervision]

Defaults: the paper's KiTS19 setting (80 x 160 x 160 patches, batch 2, 32
base filters, depth 4). Counted from the model itself (no GPU needed): every
layer's output shape and dtype at the given patch and batch size, and the
parameter count.

* parameters: weights, their gradients and Adam's two moments, all float32
  (mixed precision keeps float32 master weights): 16 bytes per parameter.
* activations: every layer output, which backpropagation keeps until the
  backward pass reaches it; in the policy's compute dtype (float16/bfloat16:
  2 bytes, the float32 softmax: 4 bytes).
* estimate: parameters + 2 x activations (at the peak of the backward pass the
  activation gradients need about as much again). cuDNN workspaces and
  allocator fragmentation come on top; TensorFlow reserves most of the GPU
  anyway, so read the figure as "fits / does not fit", not as an exact peak.
"""

from __future__ import annotations

import argparse

import pipeline  # noqa: F401  (TF_USE_LEGACY_KERAS)
from pipeline.training.distribute import PRECISION_POLICIES, apply_precision_policy
from pipeline.training.model import build_unet

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GIB = 1024 ** 3
BYTES_PER_PARAMETER = 4 * 4  # float32 weight, gradient, Adam m and v


def training_memory(policy: str, patch, batch: int, channels: int, classes: int, filters: int, depth: int,
                    deep_supervision: bool) -> dict[str, float]:
    """Parameter and activation memory (bytes) of one training step under ``policy``."""
    apply_precision_policy(policy)
    try:
        model = build_unet(channels, classes, n_filters=filters, depth=depth, deep_supervision=deep_supervision)
        # The U-Net accepts any size; rebuild it on a fixed input to get every layer's shape.
        sized = tf.keras.models.clone_model(
            model, input_tensors=tf.keras.Input((*patch, channels), batch_size=batch))
    finally:
        apply_precision_policy("float32")
    activations = 0
    for layer in sized.layers:
        for output in tf.nest.flatten(layer.output):
            activations += int(np.prod(output.shape)) * output.dtype.size
    parameters = sized.count_params()
    return {
        "parameters": parameters,
        "parameter_bytes": parameters * BYTES_PER_PARAMETER,
        "activation_bytes": activations,
        "estimate_bytes": parameters * BYTES_PER_PARAMETER + 2 * activations,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patch", type=int, nargs=3, default=[80, 160, 160], metavar=("D", "H", "W"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--filters", type=int, default=32, help="filters of the first level (model.n_filters)")
    parser.add_argument("--depth", type=int, default=4, help="down-sampling steps (model.depth)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (1: CT or T1-CE)")
    parser.add_argument("--classes", type=int, default=3, help="softmax classes (KiTS19: 3, BraTS20 ET: 2)")
    parser.add_argument("--deep-supervision", action="store_true")
    args = parser.parse_args(argv)

    print(f"3D U-Net, patch {'x'.join(map(str, args.patch))}, batch {args.batch}, {args.filters} filters, "
          f"depth {args.depth}, {args.channels} channel(s), {args.classes} classes"
          f"{', deep supervision' if args.deep_supervision else ''}")
    print(f"{'policy':<16}{'parameters':>12}{'weights+Adam':>14}{'activations':>13}{'estimate':>11}")
    for policy in PRECISION_POLICIES:
        memory = training_memory(policy, tuple(args.patch), args.batch, args.channels, args.classes,
                                 args.filters, args.depth, args.deep_supervision)
        print(f"{policy:<16}{memory['parameters']:>12,}{memory['parameter_bytes'] / GIB:>12.2f} G"
              f"{memory['activation_bytes'] / GIB:>11.2f} G{memory['estimate_bytes'] / GIB:>9.2f} G")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
