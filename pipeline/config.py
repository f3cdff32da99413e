"""The experiment configuration: one YAML file, validated before any work starts.

A config file is a YAML mapping with the sections below (every key is checked:
an unknown key, a wrong type or an impossible value raises
:class:`pipeline.errors.ConfigError` naming the file and the key's dotted path).
Example: ``configs/kits19_asymmetric_unified_focal.yaml``.

``base: other.yaml`` (optional, path relative to the file) names a config
merged *underneath* this one: mappings merge key by key, any other value in
this file replaces the base's. The paper's configs share ``configs/base/``.

Command-line overrides (``--set training.epochs=3``) are applied last; the
value is parsed as a YAML scalar or flow list (``--set sampling.patch_shape=[16,32,32]``).

Relative paths (``data.root``, ``experiment.output_root``,
``preprocessing.cache_dir``, ``cross_validation.splits_file``) are relative
to the working directory, as for any command-line tool.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.training.augmentation import AugmentationSettings

Shape3 = tuple[PositiveInt, PositiveInt, PositiveInt]


class Section(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExperimentSection(Section):
    """Which run this is and where it goes: ``<output_root>/<name>/``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                      description="run folder name; letters, digits, '.', '_', '-'")
    seed: int = Field(0, description="seeds the split, the initial weights and the patches")
    output_root: Path = Field(Path("runs"), description="folder holding the run folders")


class InterfaceSpec(Section):
    """A MIScnn ``Abstract_IO`` subclass by import path, and its constructor's keyword arguments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True,
                              serialize_by_alias=True)

    class_path: str = Field(alias="class",
                            description="module.Class, e.g. miscnn.data_loading.interfaces.NIFTI_interface")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the class")

    @field_validator("class_path")
    @classmethod
    def _dotted_path(cls, path):
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", path):
            raise ValueError(f"expected an import path module.Class, got {path!r}")
        return path


class DataSection(Section):
    """The data set as published; ``None`` means the data set's own default."""

    dataset: Literal["kits19", "brats20", "nnunet", "msd", "miscnn"]
    root: Path = Field(description="folder of the data set in the publisher's layout")
    interface: Optional[InterfaceSpec] = Field(
        None, validate_default=True,
        description="dataset miscnn: the MIScnn I/O interface reading root, {class: ..., args: {...}}")
    exclude: Optional[list[int | str]] = Field(
        None, description="case numbers or ids left out (KiTS19 default: the paper's 15, 23, 37, 68, 125, 133)")
    modalities: Optional[list[str]] = Field(
        None, description="image channels by name, e.g. BraTS20 [t1ce]; nnunet/msd: dataset.json's names")
    label_map: Optional[dict[int, int]] = Field(
        None, description="label renumbering, e.g. BraTS20 {4: 1}; labels not listed become 0")
    exclude_without_label: Optional[bool] = Field(
        None, description="leave out cases with no voxel of a mapped foreground label (BraTS20 default: true)")

    @field_validator("interface")
    @classmethod
    def _interface_for_miscnn_only(cls, interface, info: ValidationInfo):
        dataset = info.data.get("dataset")
        if dataset == "miscnn" and interface is None:
            raise ValueError("required for data.dataset miscnn, e.g. {class: module.Class, args: {...}}")
        if dataset not in (None, "miscnn") and interface is not None:
            raise ValueError(f"only for data.dataset miscnn (data.dataset is {dataset!r})")
        return interface

    def dataset_options(self) -> dict[str, Any]:
        """The keyword arguments for ``pipeline.data.open_dataset`` that are set."""
        options = {
            "interface": None if self.interface is None else self.interface.model_dump(by_alias=True),
            "exclude": self.exclude,
            "modalities": self.modalities,
            "label_map": self.label_map,
            "exclude_without_label": self.exclude_without_label,
        }
        return {key: value for key, value in options.items() if value is not None}


class PreprocessingSection(Section):
    """Intensity clipping, normalisation and resampling, cached on disk."""

    clip: Optional[tuple[float, float]] = Field(None, description="intensity window [low, high]")
    normalization: Literal["zscore", "zscore_nonzero", "none"] = "zscore"
    target_spacing: Optional[tuple[PositiveFloat, PositiveFloat, PositiveFloat]] = Field(
        None, description="mm per voxel in array axis order; None keeps each case's spacing")
    cache_dir: Path = Field(Path("cache"), description="preprocessed cases, shared by every run")

    @field_validator("clip")
    @classmethod
    def _clip_is_a_window(cls, clip):
        if clip is not None and not clip[0] < clip[1]:
            raise ValueError(f"low must be below high, got {list(clip)}")
        return clip

    def settings(self):
        """The ``PreprocessingSettings`` these values describe."""
        from pipeline.preprocessing import PreprocessingSettings

        return PreprocessingSettings(clip=self.clip, normalization=self.normalization,
                                     target_spacing=self.target_spacing)


class SamplingSection(Section):
    """Random training patches (see ``pipeline.training.sampling``)."""

    patch_shape: Shape3 = Field(description="voxels (D, H, W); divisible by 2**model.depth")
    batch_size: PositiveInt = 2
    batches_per_epoch: PositiveInt = 250
    val_batches: PositiveInt = Field(50, description="validation batches per epoch")
    foreground_fraction: float = Field(
        0.33, ge=0.0, le=1.0, description="share of patches centred on a foreground voxel (nnU-Net: 1/3)")


class ModelSection(Section):
    """MIScnn's standard 3D U-Net (see ``pipeline.training.model``)."""

    n_filters: PositiveInt = Field(32, description="filters of the first level, doubled per level")
    depth: PositiveInt = Field(4, description="number of down-sampling steps")
    batch_normalization: bool = True
    batch_norm_momentum: float = Field(
        0.99, gt=0.0, lt=1.0, description="moving-statistics momentum (MIScnn 0.99; short runs: 0.9)")
    deep_supervision: bool = False
    deep_supervision_heads: PositiveInt = Field(
        2, description="auxiliary outputs at 1/2, 1/4, ... resolution when deep_supervision is on")

    @field_validator("deep_supervision_heads")
    @classmethod
    def _heads_fit_the_decoder(cls, heads, info: ValidationInfo):
        depth = info.data.get("depth")
        if info.data.get("deep_supervision") and depth is not None and heads >= depth:
            raise ValueError(f"{heads} heads need model.depth > {heads}, got depth={depth}")
        return heads


class LossSection(Section):
    """A loss of the ``losses`` registry by name, with its hyperparameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_loss(cls, name):
        import losses

        if name not in losses.names():
            raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(losses.names())}")
        return name

    @field_validator("params")
    @classmethod
    def _known_parameters(cls, params, info: ValidationInfo):
        import losses

        name = info.data.get("name")
        if name is None:  # the name itself was invalid; that error is reported
            return params
        unknown = sorted(set(params) - set(losses.parameters(name)))
        if unknown:
            raise ValueError(
                f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(losses.parameters(name)) or '(none)'}")
        try:
            losses.get(name, **params)
        except (TypeError, ValueError) as error:
            raise ValueError(str(error)) from None
        return params

    def build(self):
        """The configured ``keras.losses.Loss``."""
        import losses

        return losses.get(self.name, **self.params)


class TrainingSection(Section):
    """Adam with reduce-on-plateau; the best-validation-loss model is kept."""

    epochs: PositiveInt
    learning_rate: PositiveFloat = 1e-4
    min_learning_rate: PositiveFloat = 1e-5
    plateau_factor: float = Field(0.1, gt=0.0, lt=1.0,
                                  description="lr multiplier on a plateau of the validation loss")
    plateau_patience: PositiveInt = Field(10, description="epochs without improvement before reducing")
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    distribute: Literal["default", "mirrored"] = "default"

    @field_validator("min_learning_rate")
    @classmethod
    def _minimum_below_start(cls, minimum, info: ValidationInfo):
        start = info.data.get("learning_rate")
        if start is not None and minimum > start:
            raise ValueError(f"{minimum} is above training.learning_rate={start}")
        return minimum


class CrossValidationSection(Section):
    """K folds of one seeded split, shared by every loss of an experiment group."""

    folds: int = Field(5, ge=2)
    splits_file: Optional[Path] = Field(
        None, description="shared splits.json: created on first use, reused by the other runs")


class InferenceSection(Section):
    """Sliding-window prediction (see ``pipeline.inference.sliding_window``)."""

    overlap: Optional[tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt]] = Field(
        None, description="voxels shared by neighbouring windows; None: half the patch")
    gaussian_sigma_scale: PositiveFloat = Field(
        0.125, description="sigma of the window weighting as a fraction of the patch (nnU-Net: 1/8)")
    batch_size: PositiveInt = 2


class EvaluationSection(Section):
    """Composite regions scored beside the classes (e.g. KiTS19 ``kidney_and_tumour: [1, 2]``); NSD tolerance."""

    regions: dict[str, list[PositiveInt]] = Field(default_factory=dict)
    nsd_tolerance_mm: PositiveFloat | dict[str, PositiveFloat] = Field(
        2.0, description="normalised surface distance tolerance in mm: one for all, or one per class and region")

    @field_validator("regions")
    @classmethod
    def _regions_not_empty(cls, regions):
        empty = [name for name, labels in regions.items() if not labels]
        if empty:
            raise ValueError(f"region {empty[0]!r} lists no labels")
        return regions


class ExperimentConfig(Section):
    """The whole experiment; see the module docstring for the file format."""

    experiment: ExperimentSection
    data: DataSection
    preprocessing: PreprocessingSection = Field(default_factory=PreprocessingSection)
    sampling: SamplingSection
    augmentation: AugmentationSettings = Field(default_factory=AugmentationSettings)
    model: ModelSection = Field(default_factory=ModelSection)
    loss: LossSection
    training: TrainingSection
    cross_validation: CrossValidationSection = Field(default_factory=CrossValidationSection)
    inference: InferenceSection = Field(default_factory=InferenceSection)
    evaluation: EvaluationSection = Field(default_factory=EvaluationSection)

    @model_validator(mode="after")
    def _patch_fits_the_model(self):
        divisor = 2 ** self.model.depth
        patch = list(self.sampling.patch_shape)
        if any(size % divisor for size in patch):
            raise ValueError(
                f"sampling.patch_shape: {patch} must be divisible by 2**model.depth = {divisor} "
                f"in every axis (model.depth={self.model.depth})")
        overlap = self.inference.overlap
        if overlap is not None and any(o >= p for o, p in zip(overlap, patch)):
            raise ValueError(f"inference.overlap: {list(overlap)} must be smaller than "
                             f"sampling.patch_shape {patch} in every axis")
        return self

    @property
    def run_dir(self) -> Path:
        """``<output_root>/<experiment.name>``: everything this experiment writes."""
        return self.experiment.output_root / self.experiment.name

    @property
    def inference_overlap(self) -> tuple[int, int, int]:
        """The configured overlap, or half the patch."""
        if self.inference.overlap is not None:
            return tuple(self.inference.overlap)
        return tuple(size // 2 for size in self.sampling.patch_shape)

    def to_yaml(self) -> str:
        """The resolved config (base merged, overrides applied) as YAML."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def load_config(path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read, merge (``base:``), override and validate an experiment config.

    Args:
        path: the YAML file.
        overrides: ``"dotted.key=value"`` strings applied after the file; the
            value is parsed as YAML (``3``, ``1e-4``, ``[16, 32, 32]``, ``null``).

    Raises:
        ConfigError: ``"<file>: <dotted.key>: <problem>"`` for the first of
            any unreadable file, unknown key, wrong type or impossible value.
    """
    path = Path(path)
    raw = _read_with_bases(path, seen=())
    for override in overrides:
        _apply_override(raw, override, path)
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}") from None


def _read_with_bases(path: Path, seen: tuple[Path, ...]) -> dict:
    """The YAML mapping in ``path`` with its ``base:`` chain merged underneath."""
    resolved = path.resolve()
    if resolved in seen:
        raise ConfigError(f"{path}: base: circular reference")
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: expected a file name, got {base!r}")
    merged = _read_with_bases(path.parent / base, seen + (resolved,))
    return _merge(merged, raw)


def _merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``: mappings merge recursively, other values replace."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(raw: dict, override: str, path: Path) -> None:
    """Set ``dotted.key=value`` in the raw mapping, creating sections as needed."""
    key, sep, text = override.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(keys):
        raise ConfigError(f"--set {override!r}: expected dotted.key=value")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {override!r}: value is not valid YAML") from None
    node = raw
    for depth, part in enumerate(keys[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{path}: {'.'.join(keys[:depth + 1])}: is a value, not a section "
                              f"(from --set {override!r})")
        node = child
    node[keys[-1]] = value


def _describe(error: ValidationError) -> str:
    """The first validation problem as ``dotted.key: problem``."""
    first = error.errors()[0]
    loc = first["loc"]
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing" and loc and isinstance(loc[-1], int):
        loc, message = loc[:-1], "too few values"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif "input" in first and first["type"] not in ("value_error", "assertion_error"):
        message = f"{message} (got {first['input']!r})"
    location = ".".join(str(part) for part in loc)
    return f"{location}: {message}" if location else message
