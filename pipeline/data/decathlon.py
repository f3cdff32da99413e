"""A Medical Segmentation Decathlon task (Antonelli et al. 2022), e.g. ``Task01_BrainTumour``, as published.

Layout (medicaldecathlon.com archives)::

    <root>/dataset.json           modality, labels, numTraining, training: [{image, label}], test: [...]
    <root>/imagesTr/<case>.nii.gz 3-D, or 4-D with the modalities on the last axis (BrainTumour, Prostate)
    <root>/labelsTr/<case>.nii.gz integer labels as dataset.json names them
    <root>/imagesTs/<case>.nii.gz unlabelled (``test_images()``, for predict)

The cases are those that dataset.json's ``training`` list names (paths
relative to the task folder), so the macOS ``._*`` files that the published
archives hold next to every image are never read. Channels and label names
and values come from dataset.json.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from pipeline.data.dataset import CaseFiles, NiftiDataset
from pipeline.data.dataset_json import channel_names, decathlon_labels, read_dataset_json, required
from pipeline.data.labels import every_label_its_own_class
from pipeline.data.nifti import NIFTI_SUFFIXES, NiftiVolume, read_geometry, read_image
from pipeline.errors import DataError

logger = logging.getLogger(__name__)


class DecathlonDataset(NiftiDataset):
    """A Decathlon task.

    Args:
        root: the ``TaskXX_Name`` folder holding dataset.json.
        modalities: channels by their dataset.json name, in order; default all.
        label_map: published label -> class; default every label its own class.
        exclude: case ids (image file names without ``.nii.gz``) left out.
        exclude_without_label: leave out cases whose mask has no foreground voxel.
    """

    name = "msd"

    def __init__(
        self,
        root,
        *,
        modalities: Iterable[str] | None = None,
        label_map: Mapping[int, int] | None = None,
        exclude: Iterable[int | str] = (),
        exclude_without_label: bool = False,
    ):
        self.description_file, self._description = read_dataset_json(root)
        self.available_modalities = channel_names(self.description_file, self._description, "modality")
        labels = decathlon_labels(self.description_file, self._description)
        self.source_label_names, self.background_name = labels.foreground, labels.background
        self._training: dict[str, CaseFiles] = {}
        super().__init__(
            root,
            modalities=self.available_modalities if modalities is None else modalities,
            label_map=every_label_its_own_class(labels.foreground) if label_map is None else label_map,
            exclude=exclude,
            exclude_without_label=exclude_without_label,
        )

    @property
    def file_channels(self) -> int:
        """Channels in each image file: every modality of dataset.json (4-D files when more than one)."""
        return len(self.available_modalities)

    def discover(self, root: Path) -> list[str]:
        training = required(self.description_file, self._description, "training", list)
        self._training = {}
        for number, entry in enumerate(training):
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("image"), str)
                or not isinstance(entry.get("label"), str)
            ):
                raise DataError(
                    self.description_file,
                    f'training[{number}]: expected {{"image": path, "label": path}}, got {entry!r}',
                )
            image = self._listed_file(root, entry["image"], f"training[{number}].image")
            case_id = _case_id(image)
            if case_id in self._training:
                raise DataError(self.description_file, f"training[{number}]: case {case_id} is listed twice")
            self._training[case_id] = CaseFiles(
                images=(image,), mask=self._listed_file(root, entry["label"], f"training[{number}].label")
            )
        if not self._training:
            raise DataError(self.description_file, "training: lists no case")
        declared = self._description.get("numTraining")
        if declared != len(self._training):
            logger.warning(
                "%s: numTraining is %r but training lists %d cases",
                self.description_file,
                declared,
                len(self._training),
            )
        return list(self._training)

    def locate_case(self, case_id: str) -> CaseFiles:
        files = self._training[case_id]
        for path in (*files.images, files.mask):
            if not path.is_file():
                raise DataError(path, "file not found (listed in dataset.json's training)")
        return files

    def load_image(self, index: str) -> tuple[np.ndarray, dict]:
        """float32 (D, H, W, M): the chosen modalities of the (4-D) image file."""
        volume = read_image(self._files_of(index).images[0], channels=self.file_channels)
        channels = volume.data if self.file_channels > 1 else volume.data[..., np.newaxis]
        chosen = [self.available_modalities.index(modality) for modality in self.modalities]
        image = np.ascontiguousarray(channels[..., chosen])
        return image, {"type": "nifti", "affine": volume.affine, "spacing": volume.spacing}

    def geometry(self, case_id: str) -> NiftiVolume:
        return read_geometry(self._files_of(case_id).images[0], channels=self.file_channels)

    def test_images(self) -> dict[str, tuple[Path, ...]]:
        """dataset.json's ``test`` list: case id -> its image file (all modalities, 4-D when several)."""
        test = self._description.get("test", [])
        if not isinstance(test, list) or not all(isinstance(path, str) for path in test):
            raise DataError(self.description_file, f"test: expected a list of paths, got {test!r}")
        images = [self._listed_file(self.root, path, f"test[{number}]") for number, path in enumerate(test)]
        return {_case_id(image): (image,) for image in sorted(images)}

    def _listed_file(self, root: Path, listed: str, key: str) -> Path:
        if not listed.endswith(NIFTI_SUFFIXES):
            raise DataError(
                self.description_file, f"{key}: {listed!r} is not a NIfTI file (supported: {', '.join(NIFTI_SUFFIXES)})"
            )
        return root / Path(listed)


def _case_id(image: Path) -> str:
    """``imagesTr/BRATS_001.nii.gz`` -> ``BRATS_001``."""
    return image.name.removesuffix(".gz").removesuffix(".nii")
