"""Any MIScnn I/O interface as a data set (``data.dataset: miscnn``).

MIScnn's extension point for data is ``Abstract_IO``: ``initialize(path)``
returns the case indices, ``load_image(index)`` an array (channels last) and a
dict of extended data, ``load_segmentation(index)`` the labels. This module
imports the configured interface class, hands it to ``miscnn.Data_IO`` (which
calls ``initialize``) and reads every case through ``Data_IO.sample_loader``,
so MIScnn's own interfaces (``NIFTI_interface``), a user's ``Abstract_IO``
subclass and the project's readers (``pipeline.data.kits19.KiTS19``) all run
the same path.

Geometry comes from the interface's extended data: ``spacing`` (array-axis
order) and ``affine``; an affine alone gives the spacing as its column
lengths, a spacing alone a diagonal affine, neither 1 mm and the identity
(with a warning). Class and channel names are the interface's
``class_names`` / ``modalities`` attributes where it has them, else
``class_1 ...`` and ``channel_0 ...``. Indices whose name starts with "."
(macOS ``._*`` files, ``.DS_Store``) are ignored.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from pipeline.data.case import Case, LabelledCases
from pipeline.data.labels import LabelMapping
from pipeline.data.nifti import NiftiVolume
from pipeline.errors import ConfigError, DataError, UnifocalError
from pipeline.miscnn_compat import miscnn

logger = logging.getLogger(__name__)

Abstract_IO = miscnn.data_loading.interfaces.abstract_io.Abstract_IO


def load_interface(spec: Mapping[str, Any]) -> Abstract_IO:
    """Import ``spec["class"]`` (an ``Abstract_IO`` subclass) and construct it with ``spec["args"]``."""
    path, args = spec["class"], dict(spec.get("args") or {})
    module_name, _, class_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"data.interface.class: cannot import {path!r} ({error})") from None
    interface_class = getattr(module, class_name, None)
    if interface_class is None:
        similar = [name for name in dir(module) if name.lower() == class_name.lower()]
        hint = f"; did you mean {module_name}.{similar[0]}?" if similar else ""
        raise ConfigError(
            f"data.interface.class: cannot import {path!r} (module {module_name} has no {class_name}{hint})"
        )
    if not (isinstance(interface_class, type) and issubclass(interface_class, Abstract_IO)):
        raise ConfigError(f"data.interface.class: {path} is not a MIScnn Abstract_IO subclass")
    try:
        inspect.signature(interface_class).bind(**args)
    except TypeError as error:
        raise ConfigError(f"data.interface.args: {error} (for {path})") from None
    interface = interface_class(**args)
    if not getattr(interface, "three_dim", True):
        raise ConfigError(
            f"data.interface.args: {path} reads 2-D images (three_dim=False); the pipeline trains on 3-D volumes"
        )
    return interface


class InterfaceDataset(LabelledCases):
    """The pipeline's data set contract (``pipeline.data.NiftiDataset``'s) over a MIScnn interface.

    Args:
        root: the folder the interface's ``initialize`` reads.
        interface: ``{"class": "module.Class", "args": {...}}``.
        exclude: case ids (the indices as strings) left out.
        label_map: label -> class; default the identity on ``0 .. interface.classes - 1``.
    """

    name = "miscnn"

    def __init__(
        self,
        root,
        *,
        interface: Mapping[str, Any],
        exclude: Iterable[int | str] = (),
        label_map: Mapping[int, int] | None = None,
    ):
        self.interface_spec = {"class": interface["class"], "args": dict(interface.get("args") or {})}
        self.interface = load_interface(self.interface_spec)
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(self.root, "data set folder not found")
        self.io = self._call(self.root, "initialize", lambda: miscnn.Data_IO(self.interface, str(self.root)))
        indices = [index for index in (self.io.indices_list or []) if not str(index).startswith(".")]
        self._indices = {str(index): index for index in indices}
        if len(self._indices) != len(indices):
            raise DataError(self.root, f"{self.interface_class}.initialize returned duplicate indices")
        unusable = [case_id for case_id in self._indices if "/" in case_id or case_id in ("", "..")]
        if unusable:
            raise DataError(self.root, f"index {unusable[0]!r} cannot name a file (the pipeline writes <index>.nii.gz)")
        excluded = {str(case) for case in exclude}
        unmatched = sorted(excluded - set(self._indices))
        if unmatched:
            logger.warning(
                "data.exclude: %s match no index of %s (indices look like %r)",
                ", ".join(unmatched),
                self.interface_class,
                next(iter(self._indices), None),
            )
        self._case_ids = sorted(case_id for case_id in self._indices if case_id not in excluded)
        if not self._case_ids:
            raise DataError(
                self.root,
                f"{self.interface_class}.initialize found no case "
                f"({len(self._indices)} indices, {len(excluded & set(self._indices))} excluded)",
            )
        # Cases left out here, and by the interface itself (the project's readers record theirs).
        self.excluded = sorted(excluded & set(self._indices) | set(getattr(self.interface, "excluded", [])))
        self.skipped_without_mask = list(getattr(self.interface, "skipped_without_mask", []))
        self.excluded_without_label = list(getattr(self.interface, "excluded_without_label", []))
        classes, channels = int(self.interface.classes), int(self.interface.channels)
        names = tuple(
            getattr(self.interface, "class_names", None) or ("background", *(f"class_{k}" for k in range(1, classes)))
        )
        if classes < 2:
            raise ConfigError(
                f"data.interface.args: {self.interface_class} has classes={classes}; "
                "segmentation needs 2 or more (the background and a class)"
            )
        if len(names) != classes:
            raise ConfigError(
                f"data.interface: {self.interface_class} names {len(names)} classes but has classes={classes}"
            )
        identity = {k: k for k in range(1, classes)}
        self.labels = LabelMapping(
            {k: names[k] for k in identity}, identity if label_map is None else label_map, names[0]
        )
        self.modalities = tuple(
            getattr(self.interface, "modalities", None) or (f"channel_{k}" for k in range(channels))
        )
        if len(self.modalities) != channels:
            raise ConfigError(
                f"data.interface: {self.interface_class} names {len(self.modalities)} channels but has "
                f"channels={channels}"
            )

    @property
    def interface_class(self) -> str:
        return type(self.interface).__name__

    def load(self, case_id: str) -> Case:
        """The case through ``Data_IO.sample_loader``: image, labels and the interface's geometry."""
        sample = self._call(
            self.root / case_id,
            "load_image/load_segmentation",
            lambda: self.io.sample_loader(self._index(case_id), load_seg=True),
        )
        image = np.asarray(sample.img_data, dtype=np.float32)
        if image.ndim != 4 or image.shape[-1] != len(self.modalities):
            raise DataError(
                self.root / case_id,
                f"{self.interface_class}.load_image gave shape {image.shape}, "
                f"expected 3-D with {len(self.modalities)} channel(s)",
            )
        if not np.isfinite(image).all():
            raise DataError(self.root / case_id, "image holds NaN or Inf values")
        label = self._labels(case_id, np.asarray(sample.seg_data))
        if label.shape != image.shape[:3]:
            raise DataError(
                self.root / case_id, f"segmentation shape {label.shape} differs from the image's {image.shape[:3]}"
            )
        affine, spacing = self._geometry(case_id, sample.get_extended_data() or {})
        return Case(case_id=case_id, image=image, label=label, spacing=spacing, affine=affine)

    def load_segmentation(self, case_id: str) -> np.ndarray:
        """uint8 (D, H, W) classes, from the interface's ``load_segmentation``."""
        segmentation = self._call(
            self.root / case_id, "load_segmentation", lambda: self.interface.load_segmentation(self._index(case_id))
        )
        return self._labels(case_id, np.asarray(segmentation))

    def geometry(self, case_id: str) -> NiftiVolume:
        """Shape, affine and spacing: the interface's ``geometry`` if it has one (headers only), else by loading."""
        if hasattr(self.interface, "geometry"):
            return self.interface.geometry(self._index(case_id))
        case = self.load(case_id)
        return NiftiVolume(path=self.root / case_id, shape=case.label.shape, affine=case.affine, spacing=case.spacing)

    def source_files(self, case_id: str) -> tuple[Path, ...]:
        """The interface's ``source_files`` if it has them, else the files of ``root/<index>`` (a file or folder)."""
        if hasattr(self.interface, "source_files"):
            return tuple(self.interface.source_files(self._index(case_id)))
        location = self.root / case_id
        if location.is_dir():
            return tuple(sorted(path for path in location.rglob("*") if path.is_file()))
        return (location,) if location.is_file() else ()

    def fingerprint(self) -> dict:
        return {
            "name": self.name,
            "interface": self.interface_spec,
            "root": str(self.root.resolve()),
            "label_map": sorted(self.labels.label_map.items()),
        }

    # ---- internals ------------------------------------------------------------------

    def _index(self, case_id: str):
        try:
            return self._indices[case_id]
        except KeyError:
            raise DataError(self.root / str(case_id), f"no such case among {self.interface_class}'s indices") from None

    def _labels(self, case_id: str, segmentation: np.ndarray) -> np.ndarray:
        if segmentation.ndim == 4 and segmentation.shape[-1] == 1:
            segmentation = segmentation[..., 0]
        if segmentation.ndim != 3:
            raise DataError(
                self.root / case_id,
                f"{self.interface_class}.load_segmentation gave shape {segmentation.shape}, expected 3-D",
            )
        return self.labels.apply(segmentation, self.root / case_id)

    def _geometry(self, case_id: str, extended: Mapping) -> tuple[np.ndarray, tuple[float, float, float]]:
        affine = extended.get("affine")
        spacing = extended.get("spacing")
        if affine is not None:
            affine = np.asarray(affine, dtype=np.float64)
            if affine.shape != (4, 4) or not np.isfinite(affine).all():
                raise DataError(self.root / case_id, f"{self.interface_class}'s affine is not a finite 4x4 matrix")
        if spacing is None and affine is not None:
            spacing = np.linalg.norm(affine[:3, :3], axis=0)
        if spacing is None:
            logger.warning(
                "%s: %s gives neither spacing nor affine; assuming 1 mm voxels", case_id, self.interface_class
            )
            spacing = (1.0, 1.0, 1.0)
        spacing = tuple(float(value) for value in np.ravel(spacing))
        if len(spacing) != 3 or not all(np.isfinite(value) and value > 0 for value in spacing):
            raise DataError(
                self.root / case_id, f"{self.interface_class} gives spacing {spacing}, expected 3 positive numbers"
            )
        if affine is None:
            affine = np.diag([*spacing, 1.0])
        return affine, spacing

    def _call(self, where: Path, method: str, call: Callable):
        """Run interface code; its exceptions become one-line ``DataError``s naming the case."""
        try:
            return call()
        except UnifocalError:
            raise
        except Exception as error:  # noqa: BLE001 (the interface is the user's code: any failure is bad input)
            message = " ".join(str(error).split()) or "no message"
            raise DataError(
                where, f"{self.interface_class}.{method} failed: {type(error).__name__}: {message}"
            ) from None
