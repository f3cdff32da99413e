"""DRIVE (Staal et al. 2004), retinal fundus photographs with vessel masks, as published.

Layout (the archive of https://drive.grand-challenge.org/)::

    <root>/training/images/21_training.tif ... 40_training.tif   565 x 584 RGB (8-bit TIFF)
    <root>/training/1st_manual/21_manual1.gif ...                vessel masks, 0/255 (GIF)
    <root>/training/mask/21_training_mask.gif ...                field-of-view masks, 0/255 (GIF)
    <root>/test/images/01_test.tif ... 20_test.tif
    <root>/test/1st_manual/01_manual1.gif ...                    (2nd_manual/: a second observer)
    <root>/test/mask/01_test_mask.gif ...

Some copies (the challenge's current download) hold back the test set's
manual segmentations: test images without ``1st_manual`` are skipped with a
warning, as KiTS19 cases without a mask. Case ids are the image stems
("21_training", "01_test"); the paper used all 40 images.

Field of view: the camera sees a disc of about 540 pixels; outside it the
photograph is black and never a vessel. With ``restrict_to_fov`` (the
default, DRIVE's own evaluation protocol) predictions are cleared outside the
FOV mask and only pixels inside it are scored; the network still sees the
whole image. ``restrict_to_fov: false`` scores every pixel.

Reference: J. Staal et al., "Ridge-based vessel segmentation in color images
of the retina", IEEE Trans. Med. Imaging 23 (2004) 501-509.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import numpy as np

from pipeline.data.image_dataset import ImageCaseFiles, ImageDataset
from pipeline.data.image_files import Color, find_image, image_size, read_binary_mask
from pipeline.errors import ConfigError, DataError

SUBSETS = ("training", "test")
MANUAL = "1st_manual"


class DRIVE(ImageDataset):
    """DRIVE as published: 40 RGB photographs with vessel and field-of-view masks.

    Args:
        root: the folder holding ``training/`` and ``test/``.
        color: "rgb" (default, as published) or "grey".
        restrict_to_fov: score only inside the field-of-view mask (default True).
        exclude: image numbers (1-40) or ids left out.
    """

    name = "drive"
    foreground_name = "vessel"
    default_color = "rgb"
    image_folders = ("test/images", "training/images")

    def __init__(
        self, root, *, color: Color | None = None, restrict_to_fov: bool = True, exclude: Iterable[int | str] = ()
    ):
        self.restrict_to_fov = bool(restrict_to_fov)
        super().__init__(root, color=color, exclude=exclude)

    def case_id_of(self, case: int | str) -> str:
        if isinstance(case, str) and re.fullmatch(r"\d{2}_(training|test)", case):
            return case
        try:
            number = int(case)
        except ValueError:
            raise ConfigError(f"exclude: {case!r} is not a DRIVE image number or id") from None
        return f"{number:02d}_{'training' if number > 20 else 'test'}"

    def fingerprint(self) -> dict:
        return {**super().fingerprint(), "restrict_to_fov": self.restrict_to_fov}

    def scoring_mask(self, case_id: str) -> np.ndarray | None:
        if not self.restrict_to_fov:
            return None
        files = self._files_of(case_id)
        return read_binary_mask(files.fov, image_size(files.image)).astype(bool)

    @classmethod
    def field_of_view_file(cls, image: Path) -> Path | None:
        """``<subset>/mask/<stem>_mask.gif`` beside ``<subset>/images/<stem>.tif``, if it is there."""
        return find_image(Path(image).parent.parent / "mask", f"{Path(image).stem}_mask")

    def locate_cases(self, root: Path) -> dict[str, ImageCaseFiles]:
        if not (root / "training" / "images").is_dir():
            raise DataError(
                root / "training" / "images",
                "folder not found: not DRIVE in its published layout (training/ and test/)",
            )
        cases = {}
        for subset in SUBSETS:
            folder = root / subset
            if not (folder / "images").is_dir():
                continue
            images = sorted(
                path
                for path in (folder / "images").iterdir()
                if re.fullmatch(rf"\d{{2}}_{subset}\.tiff?", path.name, flags=re.IGNORECASE)
            )
            for image in images:
                number = image.stem.split("_")[0]
                fov = find_image(folder / "mask", f"{image.stem}_mask")
                if fov is None:
                    raise DataError(
                        folder / "mask" / f"{image.stem}_mask.gif", f"field-of-view mask of {image.name} not found"
                    )
                if not (folder / MANUAL).is_dir():
                    self.skipped_without_mask.append(image.stem)
                    continue
                mask = find_image(folder / MANUAL, f"{number}_manual1")
                if mask is None:
                    raise DataError(image, f"image without a mask (expected {MANUAL}/{number}_manual1.gif)")
                cases[image.stem] = ImageCaseFiles(image=image, mask=mask, fov=fov)
        if not cases and not self.skipped_without_mask:
            raise DataError(root / "training" / "images", "no DRIVE images (NN_training.tif) found")
        return cases
