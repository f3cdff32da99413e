"""A data set of 2D images with binary masks, read through MIScnn's I/O-interface contract.

The 2D counterpart of ``NiftiDataset``: subclasses (CVC-ClinicDB, DRIVE,
BUS2017) only say where each case's files are in the publisher's layout; this
base class checks and reads them. A case is one image: ``Case.image`` is
float32 (H, W, M) with M = 3 for ``color="rgb"`` or 1 for ``"grey"``,
``Case.label`` uint8 (H, W) with 0 background and 1 foreground, the spacing
one unit per pixel and the affine the identity (the files carry no geometry).
The number of spatial dimensions of these arrays is what makes every later
stage work in 2D.

Every file is decoded and checked when the data set opens (readable, masks
binary and of their image's size; 2D data sets are small: CVC-ClinicDB's 612
frames take about a second), so that bad input stops a run before it writes
anything.
"""

from __future__ import annotations

import logging
import os
import re
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable

import numpy as np

from pipeline.data.case import Case, LabelledCases
from pipeline.data.image_files import (
    COLORS,
    IMAGE_SUFFIXES,
    PIXEL_SPACING,
    Color,
    find_image,
    image_size,
    is_image_name,
    read_binary_mask,
    read_image,
    write_label_png,
)
from pipeline.errors import ConfigError, DataError
from pipeline.miscnn_compat import miscnn

logger = logging.getLogger(__name__)

Abstract_IO = miscnn.data_loading.interfaces.abstract_io.Abstract_IO


@dataclass(frozen=True)
class ImageCaseFiles:
    """Where one case lives: the image, its mask and (DRIVE) its field-of-view mask."""

    image: Path
    mask: Path
    fov: Path | None = None


@dataclass(frozen=True)
class ImageGeometry:
    """A 2D case's grid: its image file and size, one unit per pixel, no affine."""

    path: Path
    shape: tuple[int, int]
    spacing: tuple[float, float] = PIXEL_SPACING
    affine: None = None


def paired_by_stem(image_folder: Path, mask_folder: Path) -> dict[str, ImageCaseFiles]:
    """Every image file in ``image_folder`` with the mask of the same stem in ``mask_folder``, by stem.

    An image without a mask raises ``DataError`` naming the image.
    """
    cases = {}
    for image in sorted(image_folder.iterdir()):
        if not (image.is_file() and is_image_name(image.name)):
            continue
        mask = find_image(mask_folder, image.stem)
        if mask is None:
            raise DataError(image, f"image without a mask (expected {mask_folder.name}/{image.stem}{image.suffix})")
        cases[image.stem] = ImageCaseFiles(image=image, mask=mask)
    if not cases:
        raise DataError(image_folder, "no image files found")
    return cases


def natural_key(text: str) -> list:
    """Sort "2" before "10" (CVC-ClinicDB's frames are numbered without padding)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class ImageDataset(LabelledCases, Abstract_IO):
    """Base of the published 2D data sets: discovery, exclusions, checked reading.

    Args:
        root: the data set's folder, exactly as the publisher ships it.
        color: ``"rgb"`` keeps three channels, ``"grey"`` converts to one
            (luma); default the data set's own (``default_color``).
        exclude: cases left out, as numbers or case ids.
    """

    #: "cvc", "drive", "bus2017": the name ``open_dataset`` and the config use.
    name: ClassVar[str]
    #: Name of class 1 (class 0 is "background").
    foreground_name: ClassVar[str]
    #: How the publisher's images are coloured.
    default_color: ClassVar[Color]
    #: Folders under the root that hold images in the publisher's layout (what ``predict`` reads, no masks needed).
    image_folders: ClassVar[tuple[str, ...]]

    def __init__(self, root, *, color: Color | None = None, exclude: Iterable[int | str] = ()):
        color = self.default_color if color is None else color
        if color not in COLORS:
            raise ConfigError(f"data.color: {color!r} is not one of {list(COLORS)}")
        self.color = color
        self.modalities = ("red", "green", "blue") if color == "rgb" else ("grey",)
        self.exclude = tuple(self.case_id_of(case) for case in exclude)
        #: Cases present but left out, by reason (as ``NiftiDataset``).
        self.excluded: list[str] = []
        self.skipped_without_mask: list[str] = []
        self.excluded_without_label: list[str] = []
        super().__init__(channels=3 if color == "rgb" else 1, classes=2, three_dim=False)
        self.root = Path(root)
        self._files: dict[str, ImageCaseFiles] = {}
        self._case_ids = self.initialize(self.root)

    # ---- what a subclass provides -------------------------------------------------

    @abstractmethod
    def locate_cases(self, root: Path) -> dict[str, ImageCaseFiles]:
        """Every case under ``root`` by case id; ``DataError`` if the layout is not the publisher's.

        Cases the publisher ships without a mask go to ``skipped_without_mask``.
        """

    @abstractmethod
    def case_id_of(self, case: int | str) -> str:
        """The case id of a case number (or the id itself, checked)."""

    def scoring_mask(self, case_id: str) -> np.ndarray | None:
        """Pixels that count when scoring (bool (H, W)); ``None``: the whole image."""
        return None

    @classmethod
    def layout_images(cls, root: Path) -> list[Path]:
        """Every image in the layout's :attr:`image_folders` under ``root``, in natural order; masks not needed.

        An image whose stem an earlier folder already gave is left out (CVC-ClinicDB's ``TIF/`` before its
        ``PNG/`` copy of the same frames).
        """
        images: dict[str, Path] = {}
        for folder in (Path(root) / name for name in cls.image_folders):
            for path in sorted(folder.iterdir(), key=lambda path: natural_key(path.name)) if folder.is_dir() else ():
                if path.is_file() and is_image_name(path.name) and not path.name.startswith("."):
                    images.setdefault(path.stem, path)
        return list(images.values())

    @classmethod
    def field_of_view_file(cls, image: Path) -> Path | None:
        """The field-of-view mask of an image in the publisher's layout, if the data set has one (DRIVE)."""
        return None

    # ---- the project's interface ----------------------------------------------------

    @property
    def class_names(self) -> tuple[str, ...]:
        return ("background", self.foreground_name)

    def source_files(self, case_id: str) -> tuple[Path, ...]:
        """The files a case is read from (image, mask, then the field-of-view mask if any)."""
        files = self._files_of(case_id)
        return tuple(path for path in (files.image, files.mask, files.fov) if path is not None)

    def fingerprint(self) -> dict:
        """What decides a case's arrays: hash it for a cache key."""
        return {"name": self.name, "root": str(self.root.resolve()), "color": self.color}

    def geometry(self, case_id: str) -> ImageGeometry:
        """The case's grid from its image's header (no pixels are decoded)."""
        image = self._files_of(case_id).image
        return ImageGeometry(path=image, shape=image_size(image))

    def load(self, case_id: str) -> Case:
        image, extended = self.load_image(case_id)
        return Case(
            case_id=case_id,
            image=image,
            label=self.load_segmentation(case_id),
            spacing=extended["spacing"],
            affine=extended["affine"],
        )

    # ---- MIScnn's Abstract_IO -------------------------------------------------------

    def initialize(self, input_path) -> list[str]:
        """Find and check the cases under ``input_path``, apply the exclusions, return the case ids."""
        root = Path(input_path)
        if not root.is_dir():
            raise DataError(root, "data set folder not found")
        files = {}
        for case_id, located in self.locate_cases(root).items():
            if case_id in self.exclude:
                self.excluded.append(case_id)
            else:
                files[case_id] = located
        if self.skipped_without_mask:
            logger.warning(
                "%s: skipped %d image(s) without a mask: %s",
                self.name,
                len(self.skipped_without_mask),
                ", ".join(self.skipped_without_mask[:10]),
            )
        if not files:
            raise DataError(
                root,
                f"no {self.name} case left to use ({len(self.excluded)} excluded, "
                f"{len(self.skipped_without_mask)} without mask)",
            )
        self._files = files
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(self._check_case, sorted(files)))
        self.data_directory = root
        return sorted(files, key=natural_key)

    def load_image(self, index: str) -> tuple[np.ndarray, dict]:
        """float32 (H, W, M) and MIScnn's extended data (pixel spacing, identity affine)."""
        image = read_image(self._files_of(index).image, self.color)
        return image, {"type": "image", "spacing": PIXEL_SPACING, "affine": np.eye(4)}

    def load_segmentation(self, index: str) -> np.ndarray:
        """uint8 (H, W) 0/1, checked against the image's size."""
        files = self._files_of(index)
        return read_binary_mask(files.mask, image_size(files.image))

    def load_prediction(self, index: str, output_path) -> np.ndarray:
        """A label map written by ``save_prediction`` (``<output_path>/<case_id>.png``)."""
        return read_binary_mask(Path(output_path) / f"{index}.png")

    def save_prediction(self, sample, output_path) -> None:
        """Write a MIScnn sample's label map as a 0/255 PNG, atomically."""
        prediction = np.asarray(sample.pred_data)
        if prediction.ndim == 3:
            prediction = prediction[..., 0]
        write_label_png(Path(output_path) / f"{sample.index}.png", prediction)

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        return termination.lower() in IMAGE_SUFFIXES

    # ---- internals ------------------------------------------------------------------

    def _files_of(self, case_id: str) -> ImageCaseFiles:
        try:
            return self._files[case_id]
        except KeyError:
            raise DataError(self.root / str(case_id), f"no such case in this {self.name} data set") from None

    def _check_case(self, case_id: str) -> None:
        """Every file decoded once: readable, masks binary and of the image's size."""
        files = self._files[case_id]
        shape = read_image(files.image, self.color).shape[:2]
        read_binary_mask(files.mask, shape)
        if files.fov is not None:
            read_binary_mask(files.fov, shape)
