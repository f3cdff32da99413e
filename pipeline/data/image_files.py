"""Reading and writing 2D image files (TIFF, GIF, PNG, ...) with checks that name the offending file.

The 2D data sets ship colour photographs (CVC-ClinicDB and DRIVE: 8-bit RGB
TIFF), grey ultrasound (BUS2017: PNG) and binary masks in several encodings
(0/255 TIFF, PNG and palette GIF; 0/1 in some copies). Everything a file can
get wrong (missing, not an image, truncated, a mask that is not binary, a mask
of another size) becomes a ``DataError(path, problem)`` here, as
``pipeline.data.nifti`` does for volumes. Pillow reads every format involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipeline.atomic_files import atomic_target
from pipeline.errors import DataError

Color = Literal["rgb", "grey"]
COLORS = ("rgb", "grey")
#: File name endings the readers recognise, in order of preference.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".gif", ".bmp", ".jpg", ".jpeg")
#: Pixel size of images without geometry: predictions are compared pixel for pixel.
PIXEL_SPACING = (1.0, 1.0)
#: Binary mask encodings: the set of values a mask may hold, and the value meaning "foreground".
BINARY_ENCODINGS = ((0, 1), (0, 255))


def find_image(folder: Path, stem: str) -> Path | None:
    """``folder/stem.<suffix>`` for the first of :data:`IMAGE_SUFFIXES` that exists (any case)."""
    for suffix in IMAGE_SUFFIXES:
        for candidate in (suffix, suffix.upper()):
            path = folder / f"{stem}{candidate}"
            if path.is_file():
                return path
    return None


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _open(path: Path) -> Image.Image:
    """The decoded image; a missing, unknown or truncated file raises ``DataError``."""
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy() if image.mode != "P" else image.convert("L" if _grey_palette(image) else "RGB")
    except UnidentifiedImageError:
        raise DataError(path, "not a readable image file (format not recognised)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        problem = " ".join(str(error).replace(str(path), "the file").split()) or type(error).__name__
        raise DataError(path, f"not a readable image file ({problem})") from None


def _grey_palette(image: Image.Image) -> bool:
    """True if every palette entry is a grey (R = G = B), as in DRIVE's GIF masks."""
    palette = image.getpalette() or []
    entries = np.asarray(palette[: len(palette) // 3 * 3]).reshape(-1, 3)
    return bool((entries == entries[:, :1]).all())


def read_image(path: Path, color: Color) -> np.ndarray:
    """float32 (H, W, 3) for ``color="rgb"`` or (H, W, 1) for ``"grey"``, on the file's value scale.

    A grey file read as "rgb" repeats its channel; an RGB file read as "grey"
    becomes Pillow's luma (ITU-R 601-2: 0.299 R + 0.587 G + 0.114 B). An alpha
    channel is dropped.
    """
    path = Path(path)
    image = _open(path)
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16-bit / float grey: keep the values
        data = np.asarray(image, dtype=np.float32)[..., None]
        return np.repeat(data, 3, axis=-1) if color == "rgb" else data
    data = np.asarray(image.convert("RGB" if color == "rgb" else "L"), dtype=np.float32)
    return data if data.ndim == 3 else data[..., None]


def read_binary_mask(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 (H, W) with 0 background, 1 foreground, from a 0/1 or 0/255 encoded mask.

    An RGB mask is accepted when its three channels are equal. Any other value
    (anti-aliased edges, JPEG artefacts, a label map with several classes)
    raises ``DataError``, as does a size differing from ``shape`` (the image's).
    """
    path = Path(path)
    image = _open(path)
    data = np.asarray(image)
    if data.ndim == 3:
        channels = data[..., :3]
        if not (channels == channels[..., :1]).all():
            raise DataError(path, "mask has colour (its RGB channels differ); expected a binary mask")
        data = channels[..., 0]
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if shape is not None and tuple(data.shape) != tuple(shape):
        raise DataError(
            path,
            f"mask size {data.shape[1]} x {data.shape[0]} differs from its image's "
            f"{shape[1]} x {shape[0]} (width x height)",
        )
    values = np.unique(data)
    for encoding in BINARY_ENCODINGS:
        if set(values.tolist()) <= set(encoding):
            return (data == encoding[1]).astype(np.uint8)
    shown = ", ".join(str(value) for value in values[:6]) + (" ..." if values.size > 6 else "")
    raise DataError(path, f"mask values {{{shown}}} are not a binary encoding (0/1 or 0/255)")


def colour_channels(path: Path) -> int:
    """1 for a grey image (a grey palette included), 3 for a colour one (alpha not counted).

    Raises ``DataError`` for an unreadable file or a stack of several images (a multi-page TIFF).
    """
    path = Path(path)
    image = _open(path)
    with Image.open(path) as stack:
        frames = getattr(stack, "n_frames", 1)
    if frames > 1:
        raise DataError(path, f"holds {frames} images (a multi-page file); expected one 2D image")
    return 3 if len([band for band in image.getbands() if band != "A"]) >= 3 else 1


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file's header, without decoding the pixels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise DataError(path, "not a readable image file") from None
    return height, width


def write_label_png(path: Path, labels: np.ndarray, num_classes: int = 2) -> None:
    """Write a (H, W) label map as an 8-bit grey PNG, atomically.

    Binary maps are written 0/255 like the data sets' own masks (and readable
    by :func:`read_binary_mask`); maps with more classes keep their values.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map for a PNG is (H, W), got shape {labels.shape}")
    scale = 255 if num_classes == 2 else 1
    with atomic_target(path, suffix=".png") as temporary:
        Image.fromarray((labels.astype(np.uint8) * scale).astype(np.uint8)).save(temporary, format="PNG")


def read_label_png(path: Path) -> np.ndarray:
    """uint8 (H, W) labels of a PNG written by :func:`write_label_png` (0/255 read back as 0/1)."""
    path = Path(path)
    labels = np.asarray(_open(path).convert("L"))
    if set(np.unique(labels).tolist()) <= {0, 255}:
        labels = labels // 255
    return labels.astype(np.uint8)


def write_rgb(path: Path, image: np.ndarray, format: str | None = None) -> None:
    """Write a uint8 (H, W, 3) or (H, W) array in the format the suffix names (or ``format``), atomically."""
    array = np.ascontiguousarray(image, dtype=np.uint8)
    with atomic_target(path, suffix=Path(path).suffix) as temporary:
        Image.fromarray(array).save(temporary, format=format)
