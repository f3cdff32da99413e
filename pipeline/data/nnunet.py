"""A data set in nnU-Net v2's raw layout (Isensee et al. 2021), e.g. ``nnUNet_raw/Dataset005_Prostate``.

Layout (nnU-Net's documentation/dataset_format.md)::

    <root>/dataset.json                  channel_names, labels, numTraining, file_ending
    <root>/imagesTr/<case>_0000.nii.gz   one file per channel: <case>_<XXXX><file_ending>
    <root>/imagesTr/<case>_0001.nii.gz
    <root>/labelsTr/<case>.nii.gz        integer labels, background 0, consecutive values
    <root>/imagesTs/<case>_0000.nii.gz   optional, unlabelled (``test_images()``, for predict)

Channel names and label names and values come from dataset.json. Only NIfTI
(``file_ending`` ``.nii.gz`` or ``.nii``) is read; region labels (a label
whose value is a list) and the ``ignore`` label are refused. Names starting
with "." (macOS ``._*`` resource forks) are ignored.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

from pipeline.data.dataset import CaseFiles, NiftiDataset
from pipeline.data.dataset_json import channel_names, nnunet_labels, read_dataset_json, required
from pipeline.data.labels import every_label_its_own_class
from pipeline.data.nifti import NIFTI_SUFFIXES
from pipeline.errors import DataError

logger = logging.getLogger(__name__)


class NnUNetDataset(NiftiDataset):
    """An nnU-Net v2 raw data set.

    Args:
        root: the ``DatasetXXX_Name`` folder holding dataset.json.
        modalities: channels by their dataset.json name, in order; default all.
        label_map: published label -> class; default every label its own class.
        exclude: case identifiers left out.
        exclude_without_label: leave out cases whose mask has no foreground voxel.
    """

    name = "nnunet"

    def __init__(
        self,
        root,
        *,
        modalities: Iterable[str] | None = None,
        label_map: Mapping[int, int] | None = None,
        exclude: Iterable[int | str] = (),
        exclude_without_label: bool = False,
    ):
        self.description_file, description = read_dataset_json(root)
        self.available_modalities = channel_names(self.description_file, description, "channel_names")
        labels = nnunet_labels(self.description_file, description)
        self.source_label_names, self.background_name = labels.foreground, labels.background
        self.file_ending = required(self.description_file, description, "file_ending", str)
        if self.file_ending not in NIFTI_SUFFIXES:
            raise DataError(
                self.description_file,
                f"file_ending {self.file_ending!r} is not supported (supported: {', '.join(NIFTI_SUFFIXES)})",
            )
        if "dataset" in description:
            raise DataError(
                self.description_file,
                "the 'dataset' key (explicit file lists) is not supported; use the imagesTr/labelsTr layout",
            )
        self.num_training = required(self.description_file, description, "numTraining", int)
        self._channels: dict[str, dict[int, Path]] = {}
        super().__init__(
            root,
            modalities=self.available_modalities if modalities is None else modalities,
            label_map=every_label_its_own_class(labels.foreground) if label_map is None else label_map,
            exclude=exclude,
            exclude_without_label=exclude_without_label,
        )

    def discover(self, root: Path) -> list[str]:
        self._channels = self._channel_files(root / "imagesTr")
        if not self._channels:
            raise DataError(
                root / "imagesTr", f"no images named <case>_<XXXX>{self.file_ending}: not an nnU-Net v2 raw data set"
            )
        if len(self._channels) != self.num_training:
            logger.warning(
                "%s: numTraining is %d but imagesTr holds %d cases",
                self.description_file,
                self.num_training,
                len(self._channels),
            )
        return list(self._channels)

    def locate_case(self, case_id: str) -> CaseFiles:
        images = self._images_of(case_id, self._channels[case_id], self.root / "imagesTr")
        mask = self.root / "labelsTr" / f"{case_id}{self.file_ending}"
        if not mask.is_file():
            raise DataError(mask, "file not found (every imagesTr case needs its labelsTr mask)")
        return CaseFiles(images=images, mask=mask)

    def test_images(self) -> dict[str, tuple[Path, ...]]:
        """The unlabelled cases of ``imagesTs/`` (absent: none): case id -> the chosen channels' files."""
        folder = self.root / "imagesTs"
        if not folder.is_dir():
            return {}
        return {
            case_id: self._images_of(case_id, channels, folder)
            for case_id, channels in sorted(self._channel_files(folder).items())
        }

    def _channel_files(self, folder: Path) -> dict[str, dict[int, Path]]:
        """case id -> channel index -> file, from the file names in ``folder``."""
        if not folder.is_dir():
            raise DataError(folder, "folder not found: not an nnU-Net v2 raw data set")
        pattern = re.compile(rf"(.+)_(\d{{4}}){re.escape(self.file_ending)}")
        cases: dict[str, dict[int, Path]] = defaultdict(dict)
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") or not entry.name.endswith(self.file_ending):
                continue
            match = pattern.fullmatch(entry.name)
            if match is None:
                raise DataError(entry, f"not named <case>_<XXXX>{self.file_ending} (XXXX: the channel, 4 digits)")
            cases[match.group(1)][int(match.group(2))] = entry
        return dict(cases)

    def _images_of(self, case_id: str, channels: dict[int, Path], folder: Path) -> tuple[Path, ...]:
        """The chosen channels' files of a case; every channel of dataset.json must be there, and no other."""
        extra = sorted(set(channels) - set(range(len(self.available_modalities))))
        if extra:
            raise DataError(
                channels[extra[0]],
                f"channel {extra[0]:04d} is not in dataset.json's channel_names "
                f"({len(self.available_modalities)} channels)",
            )
        files = []
        for modality in self.modalities:
            index = self.available_modalities.index(modality)
            if index not in channels:
                raise DataError(
                    folder / f"{case_id}_{index:04d}{self.file_ending}",
                    f"file not found (channel {modality!r} of dataset.json)",
                )
            files.append(channels[index])
        return tuple(files)
