"""Benchmark: preprocessing a KiTS19-sized case to the paper's spacing, and the cache's speed-up.

    .venv/bin/python scripts/bench_preprocessing.py [--repeats 3] [--skip-miscnn]

Draws a full-size KiTS19 phantom (100 x 512 x 512 at 3 x 0.78 x 0.78 mm,
labels 0/1/2) into a temporary folder, then prints:

- preprocessing (clip [-79, 304] HU, resample to 3.22 x 1.62 x 1.62 mm,
  z-score) in memory, best and median of ``--repeats`` runs; goal <= 2 s on 2 cores;
- the same with MIScnn's own subfunctions (Clipping, Normalization, cubic
  Resampling), as its KiTS19 example does;
- a cache miss (read NIfTI + preprocess + write) against a cache hit (read
  the arrays back into memory), and the speed-up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import quiet_start  # noqa: F401  (first: TensorFlow's start-up log only with -v)
from pipeline import console

import numpy as np

from pipeline.data import open_dataset
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine, kits19_phantom
from pipeline.miscnn_compat import miscnn
from pipeline.config import PreprocessingSection, load_section
from pipeline.preprocessing import PreprocessedCache, preprocess_case

SHAPE, SPACING = (100, 512, 512), (3.0, 0.78, 0.78)

#: The papers' KiTS19 preprocessing, as configs/base/kits19.yaml sets it.
KITS19 = load_section(
    Path(__file__).resolve().parents[1] / "configs/base/kits19.yaml", "preprocessing", PreprocessingSection
).settings()


def timed(function, repeats: int) -> tuple[float, float, object]:
    """(best, median) seconds of ``repeats`` calls, and the last result."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds), result


def miscnn_pipeline(case) -> np.ndarray:
    """MIScnn's KiTS19 preprocessing, subfunction by subfunction, on a MIScnn sample."""
    subfunctions = miscnn.processing.subfunctions
    sample = miscnn.data_loading.sample.Sample(
        case.case_id, case.image.copy(), 1, 3, {"spacing": np.array(case.spacing)}
    )
    sample.add_segmentation(case.label.copy())
    for step in (
        subfunctions.Clipping(min=-79, max=304),
        subfunctions.Normalization(mode="z-score"),
        subfunctions.Resampling(KITS19.target_spacing),
    ):
        step.preprocessing(sample, training=True)
    return sample.img_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-miscnn", action="store_true", help="skip MIScnn's (slow) pipeline")
    console.add_arguments(parser)
    args = parser.parse_args()
    console.configure(args)

    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary) / "kits19"
        (root / "case_00000").mkdir(parents=True)
        started = time.perf_counter()
        image, label = kits19_phantom(np.random.default_rng(0), SHAPE, SPACING)
        write_nifti(root / "case_00000" / "imaging.nii.gz", image, kits19_affine(SPACING))
        write_nifti(root / "case_00000" / "segmentation.nii.gz", label, kits19_affine(SPACING))
        print(
            f"phantom {SHAPE} at {SPACING} mm drawn and written in {time.perf_counter() - started:.1f} s; "
            f"kidney {np.mean(label == 1):.2%}, tumour {np.mean(label == 2):.2%} of voxels"
        )

        dataset = open_dataset("kits19", root)
        best, median, case = timed(lambda: dataset.load("case_00000"), args.repeats)
        print(f"read NIfTI (image + mask, checked):      best {best:6.2f} s, median {median:6.2f} s")
        best, median, pre = timed(lambda: preprocess_case(case, KITS19, 3), args.repeats)
        print(
            f"preprocess to {KITS19.target_spacing} mm:   best {best:6.2f} s, median {median:6.2f} s "
            f"-> {pre.image.shape[:3]} (goal <= 2 s)"
        )
        if not args.skip_miscnn:
            best, _, result = timed(lambda: miscnn_pipeline(case), 1)
            print(f"MIScnn Clipping+Normalization+Resampling: {best:6.2f} s -> {result.shape[:3]}")

        cache = PreprocessedCache(Path(temporary) / "cache", dataset, KITS19)
        started = time.perf_counter()
        cache.load("case_00000")
        miss = time.perf_counter() - started
        best, median, _ = timed(lambda: np.array(cache.load("case_00000").image), args.repeats)
        print(f"cache miss (read + preprocess + write):   {miss:6.2f} s")
        print(
            f"cache hit (arrays read into memory):      best {best:6.2f} s, median {median:6.2f} s "
            f"-> speed-up x{miss / median:.0f}"
        )


if __name__ == "__main__":
    main()
