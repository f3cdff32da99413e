"""BraTS 2020 (Menze et al. 2015; Bakas et al. 2017, 2018), the brain tumour MRI data set, as published.

Layout (the training set)::

    <root>/BraTS20_Training_001/BraTS20_Training_001_{flair,t1,t1ce,t2}.nii.gz
    <root>/BraTS20_Training_001/BraTS20_Training_001_seg.nii.gz
    ...                                     (some copies ship uncompressed .nii)

Masks: 0 background, 1 necrotic / non-enhancing core, 2 oedema, 4 enhancing
tumour (ET). One public copy names case 355's mask ``W39_1998.09.19_Segm.nii``:
a case whose ``_seg`` file is missing uses the single other NIfTI file in its
folder with "seg" in its name, with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping

from pipeline.data.dataset import CaseFiles, CaseFolderDataset
from pipeline.data.nifti import find_nifti, is_nifti_name
from pipeline.errors import DataError

logger = logging.getLogger(__name__)

#: The Unified Focal paper's task: enhancing tumour (label 4) against everything else.
PAPER_LABEL_MAP = MappingProxyType({4: 1})
MODALITIES = ("flair", "t1", "t1ce", "t2")


class BraTS20(CaseFolderDataset):
    """BraTS20 training data as published.

    Args:
        root: the folder holding ``BraTS20_Training_XXX/``; ``None``: MIScnn's ``initialize(root)`` later.
        modalities: channels, in order; default the paper's ``("t1ce",)``.
        label_map: default the paper's ``{4: 1}``; e.g. ``{1: 1, 4: 1}`` is the tumour core.
        exclude_without_label: default True: cases with no voxel of a mapped
            label are left out (the paper drops cases without ET); the count
            is logged and kept in ``excluded_without_label``.
        exclude: case numbers or ids left out (default none).
    """

    name = "brats20"
    source_label_names = {1: "necrotic_core", 2: "oedema", 4: "enhancing_tumour"}
    available_modalities = MODALITIES
    case_folder_pattern = r"BraTS20_Training_\d{3}"
    case_id_format = "BraTS20_Training_{:03d}"

    def __init__(
        self,
        root=None,
        *,
        modalities: Iterable[str] = ("t1ce",),
        label_map: Mapping[int, int] = PAPER_LABEL_MAP,
        exclude_without_label: bool = True,
        exclude: Iterable[int | str] = (),
    ):
        super().__init__(
            root,
            modalities=modalities,
            label_map=label_map,
            exclude=exclude,
            exclude_without_label=exclude_without_label,
        )

    def locate(self, folder: Path) -> CaseFiles:
        case_id = folder.name
        images = []
        for modality in self.modalities:
            path = find_nifti(folder, f"{case_id}_{modality}")
            if path is None:
                raise DataError(folder / f"{case_id}_{modality}.nii.gz", "file not found (nor .nii)")
            images.append(path)
        mask = find_nifti(folder, f"{case_id}_seg") or self._stray_mask(folder)
        return CaseFiles(images=tuple(images), mask=mask)

    @staticmethod
    def _stray_mask(folder: Path) -> Path:
        """The one unclaimed NIfTI file whose name mentions "seg", or ``DataError``."""
        case_id = folder.name
        claimed = {f"{case_id}_{name}{suffix}" for name in (*MODALITIES, "seg") for suffix in (".nii", ".nii.gz")}
        candidates = sorted(
            entry
            for entry in folder.iterdir()
            if entry.is_file()
            and is_nifti_name(entry.name)
            and entry.name not in claimed
            and "seg" in entry.name.lower()
        )
        expected = folder / f"{case_id}_seg.nii.gz"
        if not candidates:
            raise DataError(expected, "mask not found (nor .nii, nor another NIfTI file named *seg*)")
        if len(candidates) > 1:
            raise DataError(
                expected,
                "mask not found, and several files could be it: " + ", ".join(entry.name for entry in candidates),
            )
        logger.warning("%s: mask not found; using the stray file %s", expected, candidates[0].name)
        return candidates[0]
