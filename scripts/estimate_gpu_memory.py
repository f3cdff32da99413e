"""Estimate the GPU memory one training step of the project's U-Net needs, per precision policy.

    .venv/bin/python scripts/estimate_gpu_memory.py [--patch 80 160 160] [--batch 2]
        [--architecture standard] [--filters 32] [--depth 4] [--channels 1] [--classes 3]
        [--deep-supervision]

``--patch`` has two sizes for the 2D U-Net (H W), three for the 3D one (D H W);
``--architecture all`` prints every MIScnn variant.

Defaults: the paper's KiTS19 setting (80 x 160 x 160 patches, batch 2, 32
base filters, depth 4). What is counted: ``pipeline.training.memory``
(``run-experiment CONFIG --plan`` prints the same estimate for a config).
"""

from __future__ import annotations

import argparse

import quiet_start  # noqa: F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console

import pipeline  # noqa: F401  (TF_USE_LEGACY_KERAS)
from pipeline.config import MULTIRES_MIN_FILTERS, UNET_ARCHITECTURES
from pipeline.training.distribute import PRECISION_POLICIES
from pipeline.training.memory import GIB, training_memory
from pipeline.training.model import build_unet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--patch", type=int, nargs="+", default=[80, 160, 160], metavar="SIZE", help="D H W (3D) or H W (2D)"
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--architecture",
        choices=(*UNET_ARCHITECTURES, "all"),
        default="standard",
        help="model.architecture; all: every variant",
    )
    parser.add_argument("--filters", type=int, default=32, help="filters of the first level (model.n_filters)")
    parser.add_argument("--depth", type=int, default=4, help="down-sampling steps (model.depth)")
    parser.add_argument("--channels", type=int, default=1, help="image channels (1: CT or T1-CE)")
    parser.add_argument("--classes", type=int, default=3, help="softmax classes (KiTS19: 3, BraTS20 ET: 2)")
    parser.add_argument("--deep-supervision", action="store_true")
    console.add_arguments(parser)
    args = parser.parse_args(argv)
    console.configure(args)
    if len(args.patch) not in (2, 3):
        parser.error(f"--patch takes 2 (H W) or 3 (D H W) sizes, got {len(args.patch)}")
    if args.architecture == "multires" and args.filters < MULTIRES_MIN_FILTERS:
        parser.error(f"the multires architecture needs --filters >= {MULTIRES_MIN_FILTERS}")
    architectures = UNET_ARCHITECTURES if args.architecture == "all" else (args.architecture,)
    spatial_dims = len(args.patch)

    print(
        f"{spatial_dims}D U-Net, patch {'x'.join(map(str, args.patch))}, batch {args.batch}, "
        f"{args.filters} filters, depth {args.depth}, {args.channels} channel(s), {args.classes} classes"
        f"{', deep supervision' if args.deep_supervision else ''}"
    )
    print(
        f"{'architecture':<20}{'policy':<16}{'parameters':>12}{'weights+Adam':>14}{'activations':>13}{'estimate':>11}"
    )
    for architecture in architectures:
        if architecture == "multires" and args.filters < MULTIRES_MIN_FILTERS:
            print(f"{architecture:<20}skipped: needs --filters >= {MULTIRES_MIN_FILTERS}")
            continue
        for policy in PRECISION_POLICIES:
            memory = training_memory(
                lambda architecture=architecture: build_unet(
                    args.channels,
                    args.classes,
                    n_filters=args.filters,
                    depth=args.depth,
                    deep_supervision=args.deep_supervision,
                    spatial_dims=spatial_dims,
                    architecture=architecture,
                ),
                args.patch,
                args.batch,
                args.channels,
                policy,
            )
            print(
                f"{architecture:<20}{policy:<16}{memory.parameters:>12,}{memory.parameter_bytes / GIB:>12.2f} G"
                f"{memory.activation_bytes / GIB:>11.2f} G{memory.estimate_bytes / GIB:>9.2f} G"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
