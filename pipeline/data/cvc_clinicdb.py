"""CVC-ClinicDB (Bernal et al. 2015), colonoscopy frames with polyp masks, as published.

Layout (the archive of https://polyp.grand-challenge.org/CVCClinicDB/)::

    <root>/Original/1.tif ... 612.tif        384 x 288 RGB frames (8-bit TIFF)
    <root>/Ground Truth/1.tif ... 612.tif    polyp masks, 0/255

The common PNG copy (e.g. Kaggle's) ships both formats one level down::

    <root>/PNG/Original/1.png ...   <root>/PNG/Ground Truth/1.png ...
    <root>/TIF/Original/1.tif ...   <root>/TIF/Ground Truth/1.tif ...

``root`` may be any of these; when it holds both ``TIF/`` and ``PNG/``, the
publisher's TIFF files are read. Case ids are the frame numbers ("1" ... "612").
Frames come from 31 sequences of 23 patients' videos; the archive does not say
which frame is from which video, so folds cannot group them (as in the paper).

Reference: J. Bernal et al., "WM-DOVA maps for accurate polyp highlighting in
colonoscopy", Computerized Medical Imaging and Graphics 43 (2015) 99-111.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.data.image_dataset import ImageCaseFiles, ImageDataset, paired_by_stem
from pipeline.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

IMAGES, MASKS = "Original", "Ground Truth"


def _layout_folder(root: Path) -> Path:
    """The folder holding ``Original/`` and ``Ground Truth/``: root itself, or its TIF/ or PNG/ copy."""
    for folder in (root, root / "TIF", root / "PNG"):
        if (folder / IMAGES).is_dir():
            if not (folder / MASKS).is_dir():
                raise DataError(folder / MASKS, "folder not found (the masks of the frames in Original/)")
            return folder
    raise DataError(
        root, f"no {IMAGES}/ folder (nor TIF/{IMAGES}/, PNG/{IMAGES}/): not CVC-ClinicDB in its published layout"
    )


class CVCClinicDB(ImageDataset):
    """CVC-ClinicDB as published: 612 RGB frames, one polyp mask each.

    Args:
        root: the folder holding ``Original/`` and ``Ground Truth/`` (or their ``TIF/``/``PNG/`` copies).
        color: "rgb" (default, as published) or "grey".
        exclude: frame numbers or ids left out.
    """

    name = "cvc"
    foreground_name = "polyp"
    default_color = "rgb"
    image_folders = ("Original", "TIF/Original", "PNG/Original")

    def case_id_of(self, case: int | str) -> str:
        try:
            return str(int(case))
        except ValueError:
            raise ConfigError(f"exclude: {case!r} is not a CVC-ClinicDB frame number") from None

    def locate_cases(self, root: Path) -> dict[str, ImageCaseFiles]:
        folder = _layout_folder(root)
        if folder != root:
            logger.info("cvc: reading the frames in %s", folder)
        return paired_by_stem(folder / IMAGES, folder / MASKS)
