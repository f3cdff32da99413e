"""Reading and writing NIfTI volumes with checks that name the offending file.

Everything a published data set can get wrong at the file level (missing,
not NIfTI, truncated, not 3-D, NaN or Inf voxels, a mask on another grid)
becomes a ``DataError(path, problem)`` here, so the readers above stay short.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.atomic_files import atomic_target
from pipeline.console import lazy_module
from pipeline.errors import DataError

nib = lazy_module("nibabel")  # loaded on first use, so that --help answers at once

NIFTI_SUFFIXES = (".nii.gz", ".nii")

#: Largest difference (mm) tolerated between the affines of an image and its mask.
AFFINE_TOLERANCE_MM = 1e-3


@dataclass(frozen=True, eq=False)
class NiftiVolume:
    """A 3-D NIfTI volume: its geometry and (unless only the header was read) its voxels.

    ``spacing`` comes from the header's zooms, in array-axis order (for
    KiTS19, whose arrays are (slices, H, W), the slice thickness first).
    ``shape`` is the spatial shape; a multi-channel file (the Decathlon's 4-D
    images, channels on the last axis) has ``data`` of shape ``(*shape, channels)``.
    """

    path: Path
    shape: tuple[int, int, int]
    affine: np.ndarray
    spacing: tuple[float, float, float]
    data: np.ndarray | None = None


def find_nifti(folder: Path, stem: str) -> Path | None:
    """``folder/stem.nii.gz`` or ``folder/stem.nii``, whichever exists (compressed first)."""
    for suffix in NIFTI_SUFFIXES:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def is_nifti_name(name: str) -> bool:
    return name.endswith(NIFTI_SUFFIXES)


def _reason(error: Exception, path: Path) -> str:
    """A library's error message on one line, without repeating the path."""
    return " ".join(str(error).replace(str(path), "the file").split()) or type(error).__name__


def _open(path: Path, channels: int = 1) -> nib.Nifti1Image:
    """Open the header (not the voxels) of a 3-D NIfTI file, or a 4-D one of ``channels`` > 1 channels."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        image = nib.load(path)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError, zlib.error) as error:
        raise DataError(path, f"not a readable NIfTI file ({_reason(error, path)})") from None
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise DataError(path, f"not a NIfTI file (read as {type(image).__name__})")
    if channels == 1 and len(image.shape) != 3:
        raise DataError(path, f"expected a 3-D volume, found shape {image.shape}")
    if channels > 1 and (len(image.shape) != 4 or image.shape[3] != channels):
        raise DataError(path, f"expected a 4-D volume of {channels} channels (last axis), found shape {image.shape}")
    return image


def _voxels(image: nib.Nifti1Image, path: Path, dtype=None) -> np.ndarray:
    """The voxel array; a truncated or corrupt file raises ``DataError``."""
    try:
        if dtype is None:
            return np.asanyarray(image.dataobj)
        return image.get_fdata(dtype=dtype)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise DataError(path, f"truncated or corrupt NIfTI data ({_reason(error, path)})") from None


def _volume(image: nib.Nifti1Image, path: Path, data: np.ndarray | None) -> NiftiVolume:
    spacing = tuple(float(zoom) for zoom in image.header.get_zooms()[:3])
    return NiftiVolume(
        path=path,
        shape=tuple(int(n) for n in image.shape[:3]),
        affine=np.asarray(image.affine, dtype=np.float64),
        spacing=spacing,
        data=data,
    )


def read_image(path: Path, channels: int = 1) -> NiftiVolume:
    """Read an intensity volume as float32 (header scaling applied); NaN or Inf is an error.

    ``channels`` > 1 reads a 4-D file holding that many channels on its last axis.
    """
    path = Path(path)
    image = _open(path, channels)
    data = _voxels(image, path, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.all():
        raise DataError(path, f"{finite.size - int(finite.sum())} voxels are NaN or Inf")
    return _volume(image, path, data)


def read_mask(path: Path) -> NiftiVolume:
    """Read a label volume in its stored dtype; the label mapping validates the values."""
    path = Path(path)
    image = _open(path)
    return _volume(image, path, _voxels(image, path))


def read_geometry(path: Path, channels: int = 1) -> NiftiVolume:
    """Header only (shape, affine, spacing), for comparing grids without reading voxels."""
    path = Path(path)
    image = _open(path, channels)
    return _volume(image, path, None)


def check_same_grid(volume: NiftiVolume, reference: NiftiVolume) -> None:
    """Raise ``DataError`` naming ``volume`` unless it lies on ``reference``'s voxel grid."""
    if volume.shape != reference.shape:
        raise DataError(volume.path, f"shape {volume.shape} differs from {reference.shape} of {reference.path.name}")
    if not np.allclose(volume.affine, reference.affine, rtol=0, atol=AFFINE_TOLERANCE_MM):
        raise DataError(
            volume.path,
            f"affine differs from that of {reference.path.name} (the volumes are not on the same voxel grid)",
        )


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write ``data`` with ``affine`` atomically: a reader never sees half a file.

    The data type is ``data``'s (e.g. uint8 label maps, int16 CT). Compression
    follows the file name (``.nii.gz`` or ``.nii``).
    """
    image = nib.Nifti1Image(data, affine)
    image.header.set_data_dtype(data.dtype)
    with atomic_target(path, suffix=".nii.gz" if str(path).endswith(".nii.gz") else ".nii") as temporary:
        nib.save(image, temporary)


def write_nifti_like(path: Path, data: np.ndarray, reference: Path, channels: int = 1) -> None:
    """Write ``data`` atomically with the header of the NIfTI file ``reference``: its affine, qform and
    sform (with their codes), units and description, as a viewer expects of a label map of that scan.

    ``data`` must have the reference's (spatial) shape; its dtype becomes the file's. A reference of
    ``channels`` > 1 is a 4-D file whose last axis is dropped. The reference's intensity scaling and
    display window (``scl_slope``, ``cal_min``, ...) are cleared.
    """
    source = _open(Path(reference), channels)
    if tuple(data.shape) != tuple(source.shape[:3]):
        raise ValueError(f"data of shape {data.shape} does not fit {reference} of shape {source.shape}")
    header = source.header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(None, None)
    header["cal_min"] = header["cal_max"] = 0
    image = type(source)(data, source.affine, header)
    with atomic_target(path, suffix=".nii.gz" if str(path).endswith(".nii.gz") else ".nii") as temporary:
        nib.save(image, temporary)
