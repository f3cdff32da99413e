"""``make-phantoms``: phantom data sets in the publishers' layouts (KiTS19, BraTS20, nnU-Net v2, Decathlon;
2D: CVC-ClinicDB, DRIVE, BUS2017).

No real data can be shipped, so the demo and the tests run on phantoms that
the readers cannot tell from the real thing: same folders, file names,
array axes, affines, data types and label values.

    make-phantoms kits19 data/kits19 --cases 20 --seed 0 --size demo
    make-phantoms nnunet data/Dataset900_KidneyPhantom --kind ct     # one CT channel: kidney, tumour
    make-phantoms msd data/Task01_BrainPhantom --kind mri            # 4-D images of four MRI channels

``nnunet`` and ``msd`` draw the KiTS19 CT phantom (``--kind ct``) or the
BraTS20 MRI phantom (``--kind mri``, labels renumbered to the Decathlon's
BrainTumour task: 1 edema, 2 non-enhancing tumour, 3 enhancing tumour), and
add ``max(1, cases // 5)`` unlabelled cases to ``imagesTs/``.

Sizes:
    demo  KiTS19: 24-40 slices of 96 x 96, slices 3-5 mm, in-plane 2.5-3.5 mm;
          BraTS20: 96 x 96 x 62 at 2.5 mm (BraTS' field of view). For a CPU.
    full  KiTS19: 512 x 512 in-plane at 0.6-1.0 mm, slices 1.5-5 mm over
          250-350 mm; BraTS20: 240 x 240 x 155 at 1 mm. For benchmarks.
    2D    demo: a quarter of the published size in each axis; full: the
          published size. CVC-ClinicDB 384 x 288 (W x H), DRIVE 565 x 584,
          BUS2017 about 760 x 570, varying from image to image as in the data.

Each case is a pure function of (seed, case number): ``--cases 30`` repeats
the first 20 cases of ``--cases 20``.
"""

from __future__ import annotations

import argparse
import logging
import json
from pathlib import Path

import numpy as np

from pipeline import console
from pipeline.atomic_files import write_atomically
from pipeline.data.image_files import write_label_png, write_rgb
from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_2d import colonoscopy_phantom, fundus_phantom, ultrasound_phantom
from pipeline.data.phantom_ct import kits19_affine, kits19_phantom
from pipeline.data.phantom_mri import MODALITIES, brats20_affine, brats20_phantom
from pipeline.errors import ConfigError, DataError, exits_cleanly

ndimage = console.lazy_module("scipy.ndimage")  # loaded on first use, so that --help answers at once

SIZES = ("demo", "full")
#: Share of BraTS20 phantom cases without enhancing tumour.
NON_ENHANCING_SHARE = 0.15


def kits19_geometry(rng: np.random.Generator, size: str) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """A random KiTS19-like (shape, spacing): anisotropic, different for every case."""
    if size == "demo":
        slice_mm, pixel_mm, pixels = rng.uniform(3, 5), rng.uniform(2.5, 3.5), 96
        coverage_mm, slice_range = 120, (24, 40)
    else:
        slice_mm, pixel_mm, pixels = rng.uniform(1.5, 5), rng.uniform(0.6, 1.0), 512
        coverage_mm, slice_range = rng.uniform(250, 350), (40, 240)
    slices = int(np.clip(round(coverage_mm / slice_mm), *slice_range))
    spacing = (round(slice_mm, 2), round(pixel_mm, 4), round(pixel_mm, 4))
    return (slices, pixels, pixels), spacing


def brats20_geometry(size: str) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    return ((96, 96, 62), (2.5, 2.5, 2.5)) if size == "demo" else ((240, 240, 155), (1.0, 1.0, 1.0))


def write_kits19(out_dir: Path, cases: int, seed: int = 0, size: str = "demo") -> list[Path]:
    """Write ``case_00000 ...`` folders with imaging.nii.gz (int16 HU) and segmentation.nii.gz (uint8)."""
    folders = []
    for number in range(cases):
        rng = np.random.default_rng([seed, number])
        shape, spacing = kits19_geometry(rng, size)
        image, label = kits19_phantom(rng, shape, spacing)
        folder = out_dir / f"case_{number:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_nifti(folder / "imaging.nii.gz", image, kits19_affine(spacing))
        write_nifti(folder / "segmentation.nii.gz", label, kits19_affine(spacing))
        folders.append(folder)
    return folders


def write_brats20(out_dir: Path, cases: int, seed: int = 0, size: str = "demo") -> list[Path]:
    """Write ``BraTS20_Training_001 ...`` folders: four int16 modalities and the uint8 seg."""
    non_enhancing = set(
        np.random.default_rng(seed).choice(cases, size=round(NON_ENHANCING_SHARE * cases), replace=False).tolist()
    )
    shape, spacing = brats20_geometry(size)
    affine = brats20_affine(spacing, shape)
    folders = []
    for number in range(cases):
        rng = np.random.default_rng([seed, number])
        volumes, label = brats20_phantom(rng, shape, spacing, with_enhancing=number not in non_enhancing)
        case_id = f"BraTS20_Training_{number + 1:03d}"
        folder = out_dir / case_id
        folder.mkdir(parents=True, exist_ok=True)
        for modality in MODALITIES:
            write_nifti(folder / f"{case_id}_{modality}.nii.gz", volumes[modality], affine)
        write_nifti(folder / f"{case_id}_seg.nii.gz", label, affine)
        folders.append(folder)
    return folders


#: Channel and label names of the two kinds of generic phantom (the Decathlon's BrainTumour names for MRI).
KIND_CHANNELS = {"ct": ("CT",), "mri": ("FLAIR", "T1w", "T1gd", "T2w")}
KIND_LABELS = {"ct": ("kidney", "tumour"), "mri": ("edema", "non-enhancing tumour", "enhancing tumour")}
KIND_PREFIX = {"ct": "kidney", "mri": "BRATS"}
#: BraTS label -> Decathlon BrainTumour label.
BRATS_TO_DECATHLON = np.array([0, 2, 1, 0, 3], dtype=np.uint8)


def draw_case(kind: str, seed: int, number: int, size: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """One generic phantom case: its channels (int16), labels (uint8, 0..3) and affine."""
    rng = np.random.default_rng([seed, number])
    if kind == "ct":
        shape, spacing = kits19_geometry(rng, size)
        image, label = kits19_phantom(rng, shape, spacing)
        return [image], label, kits19_affine(spacing)
    shape, spacing = brats20_geometry(size)
    volumes, label = brats20_phantom(rng, shape, spacing, with_enhancing=True)
    return [volumes[modality] for modality in MODALITIES], BRATS_TO_DECATHLON[label], brats20_affine(spacing, shape)


def _generic_cases(kind: str, cases: int) -> tuple[list[str], list[str]]:
    """Training and test case ids: ``kidney_000 ...``, then ``max(1, cases // 5)`` more for imagesTs."""
    ids = [f"{KIND_PREFIX[kind]}_{number:03d}" for number in range(cases + max(1, cases // 5))]
    return ids[:cases], ids[cases:]


def write_nnunet(out_dir: Path, cases: int, seed: int = 0, size: str = "demo", kind: str = "ct") -> list[Path]:
    """Write an nnU-Net v2 raw data set: dataset.json, imagesTr/<case>_<XXXX>.nii.gz, labelsTr/, imagesTs/."""
    training, test = _generic_cases(kind, cases)
    written = []
    for number, case_id in enumerate(training + test):
        channels, label, affine = draw_case(kind, seed, number, size)
        images = "imagesTr" if case_id in training else "imagesTs"
        for channel, image in enumerate(channels):
            write_nifti(out_dir / images / f"{case_id}_{channel:04d}.nii.gz", image, affine)
        if case_id in training:
            write_nifti(out_dir / "labelsTr" / f"{case_id}.nii.gz", label, affine)
            written.append(out_dir / "labelsTr" / f"{case_id}.nii.gz")
    description = {
        "name": f"{kind.upper()} phantom",
        "description": "unifocal make-phantoms",
        "channel_names": dict(enumerate(KIND_CHANNELS[kind])),
        "labels": {"background": 0, **{name: value for value, name in enumerate(KIND_LABELS[kind], start=1)}},
        "numTraining": cases,
        "file_ending": ".nii.gz",
    }
    write_atomically(out_dir / "dataset.json", json.dumps(description, indent=1) + "\n")
    return written


def write_msd(out_dir: Path, cases: int, seed: int = 0, size: str = "demo", kind: str = "mri") -> list[Path]:
    """Write a Decathlon task: dataset.json, imagesTr/<case>.nii.gz (4-D for several channels), labelsTr/, imagesTs/."""
    training, test = _generic_cases(kind, cases)
    written = []
    for number, case_id in enumerate(training + test):
        channels, label, affine = draw_case(kind, seed, number, size)
        image = channels[0] if len(channels) == 1 else np.stack(channels, axis=-1)
        write_nifti(out_dir / ("imagesTr" if case_id in training else "imagesTs") / f"{case_id}.nii.gz", image, affine)
        if case_id in training:
            write_nifti(out_dir / "labelsTr" / f"{case_id}.nii.gz", label, affine)
            written.append(out_dir / "labelsTr" / f"{case_id}.nii.gz")
    description = {
        "name": f"{kind.upper()} phantom",
        "description": "unifocal make-phantoms",
        "tensorImageSize": "4D",
        "modality": dict(enumerate(KIND_CHANNELS[kind])),
        "labels": {"0": "background", **{str(value): name for value, name in enumerate(KIND_LABELS[kind], start=1)}},
        "numTraining": cases,
        "numTest": len(test),
        "training": [{"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"} for case in training],
        "test": [f"./imagesTs/{case}.nii.gz" for case in test],
    }
    write_atomically(out_dir / "dataset.json", json.dumps(description, indent=1) + "\n")
    return written


def _scaled(shape: tuple[int, int], size: str) -> tuple[int, int]:
    return shape if size == "full" else (shape[0] // 4, shape[1] // 4)


def write_cvc(out_dir: Path, cases: int, seed: int = 0, size: str = "demo") -> list[Path]:
    """Write ``Original/1.tif ...`` (RGB) and ``Ground Truth/1.tif ...`` (0/255), CVC-ClinicDB's layout."""
    frames = []
    for number in range(1, cases + 1):
        image, mask = colonoscopy_phantom(np.random.default_rng([seed, number]), _scaled((288, 384), size))
        write_rgb(out_dir / "Original" / f"{number}.tif", image)
        write_rgb(out_dir / "Ground Truth" / f"{number}.tif", mask)
        frames.append(out_dir / "Original" / f"{number}.tif")
    return frames


def write_drive(out_dir: Path, cases: int, seed: int = 0, size: str = "demo") -> list[Path]:
    """Write DRIVE's ``training/`` (images 21, 22, ...) and ``test/`` (01, 02, ...) folders, half each.

    Images are RGB TIFF; vessel masks (``1st_manual``, and ``2nd_manual`` for
    the test set, a second "observer" one pixel thinner or thicker) and
    field-of-view masks (``mask``) are 0/255 GIF, as published.
    """
    if cases > 40:
        raise ConfigError(f"--cases: DRIVE has 40 images (20 training, 20 test), got {cases}")
    training = -(-cases // 2)
    images = []
    for index in range(cases):
        subset, number = ("training", 21 + index) if index < training else ("test", 1 + index - training)
        rng = np.random.default_rng([seed, number])
        image, vessels, fov = fundus_phantom(rng, _scaled((584, 565), size))
        folder = out_dir / subset
        stem = f"{number:02d}_{subset}"
        write_rgb(folder / "images" / f"{stem}.tif", image)
        write_rgb(folder / "1st_manual" / f"{number:02d}_manual1.gif", vessels)
        write_rgb(folder / "mask" / f"{stem}_mask.gif", fov)
        if subset == "test":
            change = ndimage.binary_dilation if rng.random() < 0.5 else ndimage.binary_erosion
            second = change(vessels > 0) & (fov > 0)
            write_rgb(folder / "2nd_manual" / f"{number:02d}_manual2.gif", second.astype(np.uint8) * 255)
        images.append(folder / "images" / f"{stem}.tif")
    return images


def write_bus2017(out_dir: Path, cases: int, seed: int = 0, size: str = "demo") -> list[Path]:
    """Write ``original/000001.png ...`` (grey) and ``GT/000001.png ...`` (0/255), BUS2017 dataset B's layout."""
    images = []
    for number in range(1, cases + 1):
        rng = np.random.default_rng([seed, number])
        shape = tuple(int(round(n * rng.uniform(0.85, 1.15))) for n in _scaled((570, 760), size))
        image, mask = ultrasound_phantom(rng, shape)
        write_rgb(out_dir / "original" / f"{number:06d}.png", image)
        write_label_png(out_dir / "GT" / f"{number:06d}.png", mask > 0)
        images.append(out_dir / "original" / f"{number:06d}.png")
    return images


logger = logging.getLogger(__name__)

WRITERS = {
    "kits19": write_kits19,
    "brats20": write_brats20,
    "nnunet": write_nnunet,
    "msd": write_msd,
    "cvc": write_cvc,
    "drive": write_drive,
    "bus2017": write_bus2017,
}
GENERIC_KINDS = {"nnunet": "ct", "msd": "mri"}


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make-phantoms", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(WRITERS), help="which data set's layout to write")
    parser.add_argument("out_dir", type=Path, help="folder to write the case folders into (created)")
    parser.add_argument("--cases", type=int, default=20, help="number of cases (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", choices=SIZES, default="demo", help="demo (CPU-sized, default) or full")
    parser.add_argument(
        "--kind",
        choices=sorted(KIND_CHANNELS),
        help="nnunet / msd only: CT kidney (nnunet's default) or four-channel MRI brain (msd's)",
    )
    console.add_arguments(parser)
    args = parser.parse_args(argv)
    console.configure(args)
    if args.kind is not None and args.dataset not in GENERIC_KINDS:
        raise ConfigError(f"--kind: only for {' and '.join(GENERIC_KINDS)} (the {args.dataset} layout has one kind)")
    if args.cases < 1:
        raise ConfigError(f"--cases: must be at least 1, got {args.cases}")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise DataError(args.out_dir, "exists and is not a folder")
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(args.out_dir, f"cannot create the folder ({error.strerror})") from None
    kind = {} if args.dataset not in GENERIC_KINDS else {"kind": args.kind or GENERIC_KINDS[args.dataset]}
    written = WRITERS[args.dataset](args.out_dir, args.cases, args.seed, args.size, **kind)
    logger.info("wrote %d %s phantom cases (%s size) to %s", len(written), args.dataset, args.size, args.out_dir)
    return 0
