"""A data set of NIfTI cases, read through MIScnn's I/O-interface contract.

Subclasses (one per published data set) only say where a case's files are;
this base class checks and reads them. Being a MIScnn ``Abstract_IO``, a data
set also plugs straight into ``miscnn.Data_IO``: case ids are its indices.
"""

from __future__ import annotations

import logging
import os
import re
from abc import abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Mapping

import numpy as np

from pipeline.data.case import Case, LabelledCases
from pipeline.data.labels import LabelMapping
from pipeline.data.nifti import (
    NIFTI_SUFFIXES,
    NiftiVolume,
    check_same_grid,
    read_geometry,
    read_image,
    read_mask,
    write_nifti,
)
from pipeline.errors import ConfigError, DataError
from pipeline.miscnn_compat import miscnn

logger = logging.getLogger(__name__)

Abstract_IO = miscnn.data_loading.interfaces.abstract_io.Abstract_IO


@dataclass(frozen=True)
class CaseFiles:
    """Where one case lives: one image file per chosen modality, and its mask."""

    images: tuple[Path, ...]
    mask: Path


class NiftiDataset(LabelledCases, Abstract_IO):
    """Base of the published data sets: discovery, exclusions, checked reading.

    Args:
        root: the data set's folder, exactly as the publisher ships it. ``None``
            defers discovery to ``initialize(root)``, as ``miscnn.Data_IO`` calls it.
        modalities: image channels, in this order.
        label_map: published label -> class index (see ``LabelMapping``).
        exclude: cases left out, as case ids (or numbers where ids are numbered).
        exclude_without_label: leave out cases whose mask has no foreground
            voxel after the label map (each is read once, when the data set opens).
    """

    #: "kits19", "nnunet", ...: the name ``open_dataset`` and the config use.
    name: ClassVar[str]
    #: Every label value the publisher's masks may hold besides 0, with its name.
    source_label_names: Mapping[int, str]
    #: Modalities a case offers.
    available_modalities: tuple[str, ...]
    #: Name of class 0.
    background_name: str = "background"

    def __init__(
        self,
        root=None,
        *,
        modalities: Iterable[str],
        label_map: Mapping[int, int],
        exclude: Iterable[int | str] = (),
        exclude_without_label: bool = False,
    ):
        modalities = tuple(modalities)
        unknown = [modality for modality in modalities if modality not in self.available_modalities]
        if not modalities or unknown or len(set(modalities)) != len(modalities):
            raise ConfigError(
                f"modalities: {list(modalities)} is not a non-empty list of distinct "
                f"modalities from {list(self.available_modalities)}"
            )
        self.labels = LabelMapping(self.source_label_names, label_map, self.background_name)
        self.modalities = modalities
        self.exclude = tuple(self.case_id_of(case) for case in exclude)
        self.exclude_without_label = bool(exclude_without_label)
        #: Cases present in the folder but left out, by reason (each a sorted list of case ids).
        self.excluded: list[str] = []
        self.skipped_without_mask: list[str] = []
        self.excluded_without_label: list[str] = []
        super().__init__(channels=len(modalities), classes=len(self.labels.class_names), three_dim=True)
        self.root = None if root is None else Path(root)
        self._files: dict[str, CaseFiles] = {}
        self._case_ids: list[str] = []
        if root is not None:
            self.initialize(root)

    # ---- what a subclass provides -------------------------------------------------

    def case_id_of(self, case: int | str) -> str:
        """The case id of an ``exclude`` entry: here only ids; numbered layouts accept numbers."""
        if isinstance(case, str):
            return case
        raise ConfigError(f"exclude: {case!r} is not a case id of this {self.name} data set (give ids as strings)")

    @abstractmethod
    def discover(self, root: Path) -> list[str]:
        """The ids of every case in the data set's folder (before exclusions); ``DataError`` if none."""

    @abstractmethod
    def locate_case(self, case_id: str) -> CaseFiles | None:
        """The files of a discovered case; ``None`` if it has no mask (skipped).

        Raises ``DataError`` for a missing image file.
        """

    # ---- the project's interface ----------------------------------------------------

    def source_files(self, case_id: str) -> tuple[Path, ...]:
        """The files a case is read from (its images, then its mask)."""
        files = self._files_of(case_id)
        return (*files.images, files.mask)

    def fingerprint(self) -> dict:
        """What decides a case's arrays: hash it for a cache key.

        Exclusions are not part of it (they choose cases, they do not change
        them); the files' contents are tracked per case by the cache.
        """
        return {
            "name": self.name,
            "root": str(self.root.resolve()),
            "modalities": list(self.modalities),
            "label_map": sorted(self.labels.label_map.items()),
        }

    def load(self, case_id: str) -> Case:
        """Read and check one case: every image and the mask on one voxel grid."""
        image, extended = self.load_image(case_id)
        label = self.load_segmentation(case_id)
        return Case(case_id=case_id, image=image, label=label, spacing=extended["spacing"], affine=extended["affine"])

    # ---- MIScnn's Abstract_IO -------------------------------------------------------

    def initialize(self, input_path) -> list[str]:
        """Find the cases under ``input_path``, apply the exclusions, return the case ids."""
        root = Path(input_path)
        if not root.is_dir():
            raise DataError(root, "data set folder not found")
        self.root = root
        self.excluded, self.skipped_without_mask, self.excluded_without_label = [], [], []
        found = self.discover(root)
        files = {}
        for case_id in sorted(found):
            if case_id in self.exclude:
                self.excluded.append(case_id)
                continue
            located = self.locate_case(case_id)
            if located is None:
                self.skipped_without_mask.append(case_id)
            else:
                files[case_id] = located
        if self.skipped_without_mask:
            logger.warning(
                "%s: skipped %d case(s) without a mask: %s",
                self.name,
                len(self.skipped_without_mask),
                ", ".join(self.skipped_without_mask),
            )
        self._files = files
        if self.exclude_without_label:
            self._exclude_cases_without_label()
        if not self._files:
            raise DataError(
                root,
                f"no {self.name} case left to use ({len(found)} cases, "
                f"{len(self.excluded)} excluded, {len(self.skipped_without_mask)} without "
                f"mask, {len(self.excluded_without_label)} without a foreground voxel)",
            )
        self.data_directory = root
        self._case_ids = sorted(self._files)
        return list(self._case_ids)

    def load_image(self, index: str) -> tuple[np.ndarray, dict]:
        """float32 (D, H, W, M) and MIScnn's extended data: affine and spacing."""
        files = self._files_of(index)
        volumes = [read_image(path) for path in files.images]
        for volume in volumes[1:]:
            check_same_grid(volume, volumes[0])
        image = np.stack([volume.data for volume in volumes], axis=-1)
        return image, {"type": "nifti", "affine": volumes[0].affine, "spacing": volumes[0].spacing}

    def load_segmentation(self, index: str) -> np.ndarray:
        """uint8 (D, H, W) classes, checked against the first image's grid."""
        files = self._files_of(index)
        mask = read_mask(files.mask)
        check_same_grid(mask, self.geometry(index))
        return self.labels.apply(mask.data, mask.path)

    def geometry(self, case_id: str) -> NiftiVolume:
        """The case's grid (shape, affine, spacing) from its first image's header; no voxels are read."""
        return read_geometry(self._files_of(case_id).images[0])

    def load_prediction(self, index: str, output_path) -> np.ndarray:
        """A label map written by ``save_prediction`` (``<output_path>/<case_id>.nii.gz``)."""
        path = Path(output_path) / f"{index}.nii.gz"
        return read_mask(path).data

    def save_prediction(self, sample, output_path) -> None:
        """Write a MIScnn sample's label map with the case's affine, atomically."""
        prediction = np.asarray(sample.pred_data)
        if prediction.ndim == 4:
            prediction = prediction[..., 0]
        write_nifti(
            Path(output_path) / f"{sample.index}.nii.gz",
            prediction.astype(np.uint8),
            sample.get_extended_data()["affine"],
        )

    @staticmethod
    def check_file_termination(termination: str) -> bool:
        return termination in NIFTI_SUFFIXES

    # ---- internals ------------------------------------------------------------------

    def _files_of(self, case_id: str) -> CaseFiles:
        try:
            return self._files[case_id]
        except KeyError:
            raise DataError(self.root / str(case_id), f"no such case in this {self.name} data set") from None

    def _has_foreground(self, case_id: str) -> bool:
        return bool(self.load_segmentation(case_id).any())

    def _exclude_cases_without_label(self) -> None:
        """Read every mask once (in parallel: decompression releases the GIL)."""
        case_ids = sorted(self._files)
        with ThreadPoolExecutor(max_workers=min(32, os.cpu_count() or 1)) as pool:
            keep = list(pool.map(self._has_foreground, case_ids))
        self.excluded_without_label = [case_id for case_id, kept in zip(case_ids, keep) if not kept]
        for case_id in self.excluded_without_label:
            del self._files[case_id]
        logger.log(
            logging.WARNING if self.excluded_without_label else logging.INFO,
            "%s: excluded %d of %d case(s) without a voxel of %s",
            self.name,
            len(self.excluded_without_label),
            len(case_ids),
            "/".join(self.class_names[1:]),
        )


class CaseFolderDataset(NiftiDataset):
    """A data set with one folder per case (KiTS19, BraTS20): ``<root>/<case_id>/<files>``."""

    #: Full match of a case folder's name.
    case_folder_pattern: ClassVar[str]
    #: ``str.format`` pattern turning a case number into its case id.
    case_id_format: ClassVar[str]

    def case_id_of(self, case: int | str) -> str:
        """The case id of a case number (or the id itself, checked)."""
        if isinstance(case, str) and re.fullmatch(self.case_folder_pattern, case):
            return case
        try:
            return self.case_id_format.format(int(case))
        except ValueError:
            raise ConfigError(f"exclude: {case!r} is neither a case number nor a {self.name} case id") from None

    @abstractmethod
    def locate(self, folder: Path) -> CaseFiles | None:
        """The files of the case in ``folder``; ``None`` if it has no mask (skipped)."""

    def discover(self, root: Path) -> list[str]:
        folders = [
            entry.name
            for entry in root.iterdir()
            if entry.is_dir() and re.fullmatch(self.case_folder_pattern, entry.name)
        ]
        if not folders:
            raise DataError(
                root,
                f"no case folders ({self.case_folder_pattern}) found: "
                f"not a {self.name} data set in its published layout",
            )
        return folders

    def locate_case(self, case_id: str) -> CaseFiles | None:
        return self.locate(self.root / case_id)
