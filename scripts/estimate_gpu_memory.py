"""Estimate the GPU memory one training step of the project's 3D U-Net needs, per precision policy.

    .venv/bin/python scripts/estimate_gpu_memory.py [--patch 80 160 160] [--batch 2]
        [--filters 32] [--depth 4] [--channels 1] [--classes 3] [--deep-supervision]

Defaults: the paper's KiTS19 setting (80 x 160 x 160 patches, batch 2, 32
base filters, depth 4). What is counted: ``pipeline.training.memory``
(``run-experiment CONFIG --plan`` prints the same estimate for a config).
"""

from __future__ import annotations

import argparse

import pipeline  # noqa: F401  (TF_USE_LEGACY_KERAS)
from pipeline.training.distribute import PRECISION_POLICIES
from pipeline.training.memory import GIB, training_memory
from pipeline.training.model import build_unet


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
        memory = training_memory(
            lambda: build_unet(args.channels, args.classes, n_filters=args.filters, depth=args.depth,
                               deep_supervision=args.deep_supervision),
            args.patch, args.batch, args.channels, policy)
        print(f"{policy:<16}{memory.parameters:>12,}{memory.parameter_bytes / GIB:>12.2f} G"
              f"{memory.activation_bytes / GIB:>11.2f} G{memory.estimate_bytes / GIB:>9.2f} G")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
