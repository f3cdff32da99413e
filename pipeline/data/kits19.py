"""KiTS19 (Heller et al. 2019), the kidney tumour CT data set, as published.

Layout (the kits19 repository's ``data/`` folder)::

    <root>/case_00000/imaging.nii.gz        CT in HU, array (slices, H, W)
    <root>/case_00000/segmentation.nii.gz   0 background, 1 kidney, 2 tumour
    ...
    <root>/case_00299/imaging.nii.gz        cases 210-299 (the test set) have no mask

Reference: N. Heller et al., "The KiTS19 Challenge Data", arXiv:1904.00445.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from pipeline.data.dataset import CaseFiles, CaseFolderDataset
from pipeline.data.nifti import find_nifti
from pipeline.errors import DataError

#: Cases the Unified Focal papers leave out for the quality of their ground truth.
PAPER_EXCLUSIONS = (15, 23, 37, 68, 125, 133)
#: Kidney and tumour as separate classes, as the papers score them.
PAPER_LABEL_MAP = MappingProxyType({1: 1, 2: 2})


class KiTS19(CaseFolderDataset):
    """KiTS19 as published; cases without a mask are skipped with a notice.

    Args:
        root: the folder holding ``case_XXXXX/``; ``None``: MIScnn's ``initialize(root)`` later.
        exclude: case numbers or ids left out; default the papers' six.
        label_map: default ``{1: 1, 2: 2}`` (kidney, tumour as separate classes);
            ``{1: 1, 2: 1}`` scores "kidney" as label > 0, as the challenge does.
        modalities: only ``("ct",)``.
        exclude_without_label: leave out cases whose mask has no foreground.
    """

    name = "kits19"
    source_label_names = {1: "kidney", 2: "tumour"}
    available_modalities = ("ct",)
    case_folder_pattern = r"case_\d{5}"
    case_id_format = "case_{:05d}"

    def __init__(
        self,
        root=None,
        *,
        exclude: Iterable[int | str] = PAPER_EXCLUSIONS,
        label_map: Mapping[int, int] = PAPER_LABEL_MAP,
        modalities: Iterable[str] = ("ct",),
        exclude_without_label: bool = False,
    ):
        super().__init__(
            root,
            modalities=modalities,
            label_map=label_map,
            exclude=exclude,
            exclude_without_label=exclude_without_label,
        )

    def locate(self, folder: Path) -> CaseFiles | None:
        imaging = find_nifti(folder, "imaging")
        if imaging is None:
            raise DataError(folder / "imaging.nii.gz", "file not found")
        segmentation = find_nifti(folder, "segmentation")
        return None if segmentation is None else CaseFiles(images=(imaging,), mask=segmentation)
