"""Reading the ``dataset.json`` of nnU-Net v2 and Medical Segmentation Decathlon data sets.

Both formats describe a data set's channels and labels in one JSON file;
they differ in key names and in the direction of the label mapping:

    nnU-Net v2:  "channel_names": {"0": "T2", "1": "ADC"},  "labels": {"background": 0, "PZ": 1, "TZ": 2}
    Decathlon:   "modality":      {"0": "T2", "1": "ADC"},  "labels": {"0": "background", "1": "PZ", "2": "TZ"}

Every problem is a one-line ``DataError`` naming the file and the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import DataError


@dataclass(frozen=True)
class LabelNames:
    """What a dataset.json says about labels: class 0's name and every other value's name."""

    background: str
    foreground: dict[int, str]


def read_dataset_json(root: Path) -> tuple[Path, dict]:
    """``root/dataset.json``'s path and content (a mapping)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "data set folder not found")
    path = root / "dataset.json"
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "file not found (every nnU-Net / Decathlon data set has one)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read ({getattr(error, 'strerror', None) or error})") from None
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON (line {error.lineno}: {error.msg})") from None
    if not isinstance(content, dict):
        raise DataError(path, f"expected a JSON object, got {type(content).__name__}")
    return path, content


def required(path: Path, content: dict, key: str, kind: type):
    """``content[key]``, which must exist and be of type ``kind``."""
    if key not in content:
        raise DataError(path, f"required key {key!r} is missing")
    value = content[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DataError(path, f"{key}: expected a JSON {_json_type(kind)}, got {value!r}")
    return value


def channel_names(path: Path, content: dict, key: str) -> tuple[str, ...]:
    """Channel names in channel order from ``{"0": name, "1": name, ...}`` (indices 0..N-1, no gaps).

    Names that repeat (two "MRI" channels) are told apart by their index: "MRI_0000", "MRI_0001".
    """
    mapping = required(path, content, key, dict)
    try:
        indexed = {int(index): str(name) for index, name in mapping.items()}
    except ValueError:
        raise DataError(path, f'{key}: keys must be channel indices "0", "1", ..., got {list(mapping)}') from None
    if sorted(indexed) != list(range(len(indexed))) or not indexed:
        raise DataError(path, f"{key}: channel indices must be 0..N-1 without gaps, got {sorted(indexed)}")
    names = [indexed[index] for index in range(len(indexed))]
    return tuple(name if names.count(name) == 1 else f"{name}_{index:04d}" for index, name in enumerate(names))


def nnunet_labels(path: Path, content: dict) -> LabelNames:
    """nnU-Net v2's ``"labels": {name: value}``; regions (lists) and the ignore label are refused."""
    labels = required(path, content, "labels", dict)
    by_value: dict[int, str] = {}
    for name, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise DataError(
                path,
                f"labels: {name!r} is a region {value} (nnU-Net region-based training); "
                "unifocal supports one integer value per label only",
            )
        if name == "ignore":
            raise DataError(path, "labels: the 'ignore' label (nnU-Net sparse annotations) is not supported")
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise DataError(path, f"labels: {name!r} has value {value!r}, expected a non-negative integer")
        if value in by_value:
            raise DataError(path, f"labels: {by_value[value]!r} and {name!r} share the value {value}")
        by_value[value] = str(name)
    return _label_names(path, by_value)


def decathlon_labels(path: Path, content: dict) -> LabelNames:
    """The Decathlon's ``"labels": {"0": name, "1": name, ...}``."""
    labels = required(path, content, "labels", dict)
    try:
        by_value = {int(value): str(name) for value, name in labels.items()}
    except ValueError:
        raise DataError(path, f"labels: keys must be integer label values, got {list(labels)}") from None
    if any(value < 0 for value in by_value):
        raise DataError(path, f"labels: negative label value in {sorted(by_value)}")
    return _label_names(path, by_value)


def _label_names(path: Path, by_value: dict[int, str]) -> LabelNames:
    if 0 not in by_value:
        raise DataError(path, "labels: no label has value 0 (the background)")
    foreground = {value: name for value, name in sorted(by_value.items()) if value}
    if not foreground:
        raise DataError(path, "labels: only the background is labelled; nothing to segment")
    if max(foreground) > 255:
        raise DataError(path, f"labels: values up to 255 are supported, got {max(foreground)}")
    return LabelNames(background=by_value[0], foreground=foreground)


def _json_type(kind: type) -> str:
    return {dict: "object", list: "array", str: "string", int: "integer"}.get(kind, kind.__name__)
