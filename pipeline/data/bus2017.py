"""BUS2017 dataset B (Yap et al. 2017), breast ultrasound images with lesion masks, as published.

Layout (the archive the authors send on request, http://www2.docm.mmu.ac.uk/STAFF/m.yap/dataset.php)::

    <root>/original/000001.png ... 000163.png   grey ultrasound images, sizes vary (about 760 x 570)
    <root>/GT/000001.png ... 000163.png         lesion masks, 0/255

163 images from the UDIAT Diagnostic Centre, Parc Tauli Corporation,
Sabadell (Spain): 109 benign and 54 malignant lesions, one per image. Case
ids are the file stems ("000001" ...). Images are grey; some copies store
them as RGB PNG with three equal channels, which ``color: grey`` (the
default) reads as one channel.

Reference: M. H. Yap et al., "Automated breast ultrasound lesions detection
using convolutional neural networks", IEEE J. Biomed. Health Inform. 22 (2018) 1218-1226.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.image_dataset import ImageCaseFiles, ImageDataset, paired_by_stem
from pipeline.errors import ConfigError, DataError

IMAGES, MASKS = "original", "GT"


class BUS2017(ImageDataset):
    """BUS2017 dataset B as published: 163 grey images, one lesion mask each.

    Args:
        root: the folder holding ``original/`` and ``GT/``.
        color: "grey" (default) or "rgb".
        exclude: image numbers or ids left out.
    """

    name = "bus2017"
    foreground_name = "lesion"
    default_color = "grey"
    image_folders = (IMAGES,)

    def case_id_of(self, case: int | str) -> str:
        try:
            return f"{int(case):06d}"
        except ValueError:
            raise ConfigError(f"exclude: {case!r} is not a BUS2017 image number") from None

    def locate_cases(self, root: Path) -> dict[str, ImageCaseFiles]:
        for folder in (IMAGES, MASKS):
            if not (root / folder).is_dir():
                raise DataError(
                    root / folder,
                    f"folder not found: not BUS2017 dataset B in its published layout ({IMAGES}/ and {MASKS}/)",
                )
        return paired_by_stem(root / IMAGES, root / MASKS)
