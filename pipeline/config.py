"""The experiment configuration: one YAML file, validated before any work starts.

A config file is a YAML mapping with the sections below (every key is checked:
an unknown key, a wrong type or an impossible value raises
:class:`pipeline.errors.ConfigError` naming the file and the key's dotted path).
Example: ``configs/kits19_asymmetric_unified_focal.yaml``.

``base: other.yaml`` (optional, path relative to the file) names a config
merged *underneath* this one: mappings merge key by key, any other value in
this file replaces the base's. The paper's configs share ``configs/base/``.

``null`` (or ``~``) removes a key, whatever the base set: the key then takes
its default, as if no file had named it. ``evaluation: {regions: null}``
drops every region of the base, ``evaluation: {regions: {kidney_and_tumour:
null}}`` drops that one region, ``preprocessing: {clip: null}`` drops the
base's intensity window. (Every key that may be empty defaults to empty, so
``null`` still means "none" there.) ``--set evaluation.regions=null`` does the
same from the command line.

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
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from losses import catalog as loss_catalog
from pipeline.errors import ConfigError
from pipeline.run_layout import RunFold, run_folds, seeded_layout


def _two_or_three_axes(sizes: tuple) -> tuple:
    """2 values (H, W) for 2D data or 3 (D, H, W) for volumes."""
    if len(sizes) not in (2, 3):
        raise ValueError(f"expected 2 sizes (H, W) for 2D data or 3 (D, H, W) for volumes, got {list(sizes)}")
    return sizes


#: A 2D (H, W) or 3D (D, H, W) size: the data's number of spatial dimensions decides which.
SpatialShape = Annotated[tuple[PositiveInt, ...], AfterValidator(_two_or_three_axes)]
SpatialSpacing = Annotated[tuple[PositiveFloat, ...], AfterValidator(_two_or_three_axes)]
SpatialOverlap = Annotated[tuple[NonNegativeInt, ...], AfterValidator(_two_or_three_axes)]


class Section(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ExperimentSection(Section):
    """Which run this is and where it goes: ``<output_root>/<name>/``."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="run folder name; letters, digits, '.', '_', '-'"
    )
    seed: int = Field(0, description="seeds the split, the initial weights and the patches")
    seeds: Optional[list[NonNegativeInt]] = Field(
        None,
        description="train the whole cross-validation once per seed (same split, from seed); several "
        "seeds put the folds in seed_<S>/fold_<K>/ (pipeline.run_layout)",
    )
    output_root: Path = Field(Path("runs"), description="folder holding the run folders")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds):
        """At least one seed, none twice."""
        if seeds is not None:
            if not seeds:
                raise ValueError("expected at least one seed, or leave seeds out")
            repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
            if repeated:
                raise ValueError(f"seed {repeated[0]} given twice")
        return seeds

    @property
    def training_seeds(self) -> list[int]:
        """The seeds the cross-validation is trained with: ``seeds``, else ``[seed]``."""
        return list(self.seeds) if self.seeds is not None else [self.seed]


class InterfaceSpec(Section):
    """A MIScnn ``Abstract_IO`` subclass by import path, and its constructor's keyword arguments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True, serialize_by_alias=True)

    class_path: str = Field(
        alias="class", description="module.Class, e.g. miscnn.data_loading.interfaces.NIFTI_interface"
    )
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the class")

    @field_validator("class_path")
    @classmethod
    def _dotted_path(cls, path):
        """An import path module.Class."""
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", path):
            raise ValueError(f"expected an import path module.Class, got {path!r}")
        return path


class DataSection(Section):
    """The data set as published; ``None`` means the data set's own default."""

    dataset: Literal["kits19", "brats20", "nnunet", "msd", "miscnn", "cvc", "drive", "bus2017"] = Field(
        description="the data set's layout, which decides how root is read (pipeline.data)"
    )
    root: Path = Field(description="folder of the data set in the publisher's layout")
    interface: Optional[InterfaceSpec] = Field(
        None,
        validate_default=True,
        description="dataset miscnn: the MIScnn I/O interface reading root, {class: ..., args: {...}}",
    )
    exclude: Optional[list[int | str]] = Field(
        None, description="case numbers or ids left out (KiTS19 default: the paper's 15, 23, 37, 68, 125, 133)"
    )
    modalities: Optional[list[str]] = Field(
        None, description="image channels by name, e.g. BraTS20 [t1ce]; nnunet/msd: dataset.json's names"
    )
    label_map: Optional[dict[int, int]] = Field(
        None, description="label renumbering, e.g. BraTS20 {4: 1}; labels not listed become 0"
    )
    exclude_without_label: Optional[bool] = Field(
        None, description="leave out cases with no voxel of a mapped foreground label (BraTS20 default: true)"
    )
    color: Optional[Literal["rgb", "grey"]] = Field(
        None, description="2D data sets: keep 3 RGB channels or convert to 1 grey (default: as published)"
    )
    restrict_to_fov: Optional[bool] = Field(
        None, description="DRIVE: score only inside the field-of-view mask (default true)"
    )

    @field_validator("interface")
    @classmethod
    def _interface_for_miscnn_only(cls, interface, info: ValidationInfo):
        """Required for data.dataset miscnn, refused for any other data set."""
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
            "color": self.color,
            "restrict_to_fov": self.restrict_to_fov,
        }
        return {key: value for key, value in options.items() if value is not None}


class PreprocessingSettings(Section):
    """What preprocessing does to every case, in this order: clip, resample, normalise.

    ``pipeline.preprocessing`` receives these (the section without its cache
    folder); they also key the on-disk cache (:meth:`as_dict`).
    """

    clip: Optional[tuple[float, float]] = Field(None, description="intensity window [low, high], e.g. HU for CT")
    normalization: Literal["zscore", "zscore_nonzero", "none"] = Field(
        "zscore", description="zscore: per channel; zscore_nonzero: over non-zero voxels, zeros kept (MRI)"
    )
    target_spacing: Optional[SpatialSpacing] = Field(
        None, description="mm per voxel in array axis order; None keeps each case's spacing"
    )
    target_shape: Optional[SpatialShape] = Field(
        None,
        description="resize every case to this grid instead (2D images of varying size: [H, W]); "
        "predictions go back to each case's own size",
    )

    @field_validator("clip")
    @classmethod
    def _clip_is_a_window(cls, clip):
        """Low below high."""
        if clip is not None and not clip[0] < clip[1]:
            raise ValueError(f"low must be below high, got {list(clip)}")
        return clip

    @model_validator(mode="after")
    def _one_target_grid(self):
        """target_shape and target_spacing are not both set."""
        if self.target_shape is not None and self.target_spacing is not None:
            raise ValueError("target_shape: set either target_shape or target_spacing, not both")
        return self

    def as_dict(self) -> dict:
        """JSON-ready, for cache keys and run records (``target_shape`` only when set: older keys stay valid)."""
        return self.model_dump(mode="json", exclude=set() if self.target_shape is not None else {"target_shape"})


class PreprocessingSection(PreprocessingSettings):
    """Intensity clipping, normalisation and resampling, cached on disk."""

    cache_dir: Path = Field(Path("cache"), description="preprocessed cases, shared by every run")

    def settings(self) -> PreprocessingSettings:
        """The preprocessing stage's settings: this section without ``cache_dir`` (already validated)."""
        return PreprocessingSettings.model_construct(**self.model_dump(exclude={"cache_dir"}))


class SamplingSection(Section):
    """Random training patches (see ``pipeline.training.sampling``)."""

    patch_shape: SpatialShape = Field(
        description="voxels (D, H, W), or pixels (H, W) for 2D data; divisible by 2**model.depth"
    )
    batch_size: PositiveInt = Field(2, description="patches per training step (the global batch across GPUs)")
    batches_per_epoch: PositiveInt = Field(250, description="training steps per epoch")
    val_batches: PositiveInt = Field(50, description="validation batches per epoch")
    foreground_fraction: float = Field(
        0.33, ge=0.0, le=1.0, description="share of patches centred on a foreground voxel (nnU-Net: 1/3)"
    )
    workers: Optional[PositiveInt] = Field(
        None, description="threads building patches; None: SLURM_CPUS_PER_TASK, else the CPUs this process may use"
    )


# Augmentation (pipeline.training.augmentation); defaults are MIScnn 1.4.0's, as the papers train.
def _ordered(bounds):
    """Low <= high."""
    if bounds[0] > bounds[1]:
        raise ValueError(f"lower bound above upper bound: {list(bounds)}")
    return bounds


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Range = Annotated[tuple[float, float], AfterValidator(_ordered)]
NonNegativeRange = Annotated[tuple[NonNegativeFloat, NonNegativeFloat], AfterValidator(_ordered)]
PositiveRange = Annotated[tuple[PositiveFloat, PositiveFloat], AfterValidator(_ordered)]


class RotationSettings(Section):
    """Rotation about each array axis (batchgenerators ``angle_x``, ``angle_y``, ``angle_z``).

    Attributes:
        probability: share of patches rotated (MIScnn: 0.15).
        degrees: one ``[low, high]`` angle range per axis, in degrees; each
            angle is drawn uniformly (MIScnn: ±15° about every axis). 2D
            patches turn in their plane by an angle from the first range
            (batchgenerators' ``angle_x`` in 2D).
    """

    probability: Probability = 0.15
    degrees: tuple[Range, Range, Range] = ((-15.0, 15.0), (-15.0, 15.0), (-15.0, 15.0))


class ScalingSettings(Section):
    """Isotropic zoom; a factor > 1 samples a larger region, so the anatomy shrinks.

    Not in the papers' list of transforms, hence off by default; MIScnn's
    ``Data_Augmentation`` enables it with probability 0.15 and range
    (0.85, 1.25). As in batchgenerators, half the draws are below 1.

    Attributes:
        probability: share of patches scaled (default 0: off).
        range: ``[low, high]`` scale factor.
    """

    probability: Probability = 0.0
    range: PositiveRange = (0.85, 1.25)


class ElasticSettings(Section):
    """Elastic deformation (Simard et al. 2003) as batchgenerators parameterises it.

    Attributes:
        probability: share of patches deformed (MIScnn: 0.15).
        alpha: ``[low, high]`` magnitude: the smoothed uniform noise is
            multiplied by it (MIScnn: [0, 900], i.e. displacements of up to
            a few voxels).
        sigma: ``[low, high]`` width in voxels of the Gaussian smoothing the
            noise: small is local, large is global (MIScnn: [9, 13]).
    """

    probability: Probability = 0.15
    alpha: NonNegativeRange = (0.0, 900.0)
    sigma: PositiveRange = (9.0, 13.0)


class MirroringSettings(Section):
    """Flips along array axes; image and label together.

    Attributes:
        probability: share of patches considered for mirroring; each listed
            axis of such a patch is then flipped with probability 1/2
            (MIScnn: every patch, as its MirrorTransform has no probability).
        axes: spatial axes (0, 1, 2 = D, H, W; 2D: 0, 1 = H, W) that may be
            flipped; axes a 2D patch lacks are ignored.
    """

    probability: Probability = 1.0
    axes: tuple[Literal[0, 1, 2], ...] = (0, 1, 2)


class BrightnessSettings(Section):
    """Multiply each channel by a factor drawn from ``range`` (``BrightnessMultiplicativeTransform``).

    Attributes:
        probability: share of patches changed (MIScnn: 0.15).
        range: ``[low, high]`` multiplier (MIScnn: [0.5, 2]).
    """

    probability: Probability = 0.15
    range: PositiveRange = (0.5, 2.0)


class ContrastSettings(Section):
    """``(x - mean) * factor + mean`` per channel, clipped to the patch's range (``ContrastAugmentationTransform``).

    Attributes:
        probability: share of patches changed (MIScnn: 0.15).
        range: ``[low, high]`` factor; half the draws are below 1 when the
            range spans 1 (MIScnn: [0.3, 3]).
    """

    probability: Probability = 0.15
    range: PositiveRange = (0.3, 3.0)


class GammaSettings(Section):
    """``x -> x**gamma`` on the channel rescaled to [0, 1], keeping its mean and std (``GammaTransform``).

    Attributes:
        probability: share of patches changed (MIScnn: 0.15).
        range: ``[low, high]`` gamma; half the draws are below 1 when the
            range spans 1 (MIScnn: [0.7, 1.5]).
    """

    probability: Probability = 0.15
    range: PositiveRange = (0.7, 1.5)


class NoiseSettings(Section):
    """Additive Gaussian noise (``GaussianNoiseTransform``).

    Attributes:
        probability: share of patches changed (MIScnn: 0.15).
        variance: ``[low, high]``, batchgenerators' ``noise_variance``. Note
            that batchgenerators passes the drawn value to
            ``np.random.normal`` as the *scale*, so it acts as a standard
            deviation (MIScnn: [0, 0.05], on z-scored intensities).
    """

    probability: Probability = 0.15
    variance: NonNegativeRange = (0.0, 0.05)


class AugmentationSettings(Section):
    """Patch augmentation (``pipeline.training.augmentation``): every transform's probability and range.

    The defaults are the papers' set (MIScnn's values).

    Attributes:
        enabled: ``False`` switches augmentation off altogether (validation
            patches never use it).
        interpolation_order: spline order for the image under spatial
            transforms (batchgenerators and MIScnn: 3, cubic; 1 is several
            times faster). Labels always use 0, nearest neighbour.
    """

    enabled: bool = True
    rotation: RotationSettings = Field(default_factory=RotationSettings)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)
    elastic: ElasticSettings = Field(default_factory=ElasticSettings)
    mirroring: MirroringSettings = Field(default_factory=MirroringSettings)
    brightness: BrightnessSettings = Field(default_factory=BrightnessSettings)
    contrast: ContrastSettings = Field(default_factory=ContrastSettings)
    gamma: GammaSettings = Field(default_factory=GammaSettings)
    noise: NoiseSettings = Field(default_factory=NoiseSettings)
    interpolation_order: int = Field(3, ge=0, le=5)


UNET_ARCHITECTURES = (
    "standard",
    "plain",
    "residual",
    "multires",
    "dense",
    "compact",
    "attention",
    "attention_residual",
)
MULTIRES_MIN_FILTERS = 4  # fewer leave a MultiRes block's first convolution without a filter


class ModelSection(Section):
    """One of MIScnn's U-Net variants, 2D or 3D as the patch (see ``pipeline.training.model``)."""

    architecture: Literal[UNET_ARCHITECTURES] = Field(
        "standard", description="MIScnn's U-Net variant (pipeline.training.model)"
    )
    n_filters: PositiveInt = Field(32, description="filters of the first level, doubled per level")
    depth: PositiveInt = Field(4, description="number of down-sampling steps")
    batch_normalization: bool = Field(True, description="batch normalisation after each convolution")
    batch_norm_momentum: float = Field(
        0.99, gt=0.0, lt=1.0, description="moving-statistics momentum (MIScnn 0.99; short runs: 0.9)"
    )
    deep_supervision: bool = Field(False, description="train on auxiliary lower-resolution outputs too")
    deep_supervision_heads: PositiveInt = Field(
        2, description="auxiliary outputs at 1/2, 1/4, ... resolution when deep_supervision is on"
    )

    @field_validator("deep_supervision_heads")
    @classmethod
    def _heads_fit_the_decoder(cls, heads, info: ValidationInfo):
        """With deep_supervision, fewer heads than model.depth."""
        depth = info.data.get("depth")
        if info.data.get("deep_supervision") and depth is not None and heads >= depth:
            raise ValueError(f"{heads} heads need model.depth > {heads}, got depth={depth}")
        return heads

    @field_validator("n_filters")
    @classmethod
    def _enough_filters_for_multires(cls, n_filters, info: ValidationInfo):
        """At least 4 for the multires architecture."""
        if info.data.get("architecture") == "multires" and n_filters < MULTIRES_MIN_FILTERS:
            raise ValueError(f"the multires architecture needs n_filters >= {MULTIRES_MIN_FILTERS}, got {n_filters}")
        return n_filters


class LossSection(Section):
    """A loss of the ``losses`` registry by name, with its hyperparameters (``list-losses`` shows them).

    Checked against ``losses.catalog``, which needs no TensorFlow; the
    training stage builds the loss with ``losses.get(name, **params)``.
    """

    name: str = Field(description="a loss of the registry (docs/reference/losses.md, list-losses)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the loss's hyperparameters; those left out take the loss's defaults"
    )

    @field_validator("name")
    @classmethod
    def _known_loss(cls, name):
        """A name of losses.catalog."""
        loss_catalog.entry(name)
        return name

    @field_validator("params")
    @classmethod
    def _valid_parameters(cls, params, info: ValidationInfo):
        """Parameters of that loss, each in its range (losses.catalog)."""
        name = info.data.get("name")
        if name is not None:  # else the name itself was invalid; that error is reported
            loss_catalog.check(name, params)
        return params


class TrainingSection(Section):
    """Adam with reduce-on-plateau; the best-validation-loss model is kept."""

    epochs: PositiveInt = Field(description="training epochs per fold")
    learning_rate: PositiveFloat = Field(1e-4, description="Adam's initial learning rate")
    min_learning_rate: PositiveFloat = Field(1e-5, description="floor of the reduce-on-plateau schedule")
    plateau_factor: float = Field(0.1, gt=0.0, lt=1.0, description="lr multiplier on a plateau of the validation loss")
    plateau_patience: PositiveInt = Field(10, description="epochs without improvement before reducing")
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "float32", description="Keras precision policy; softmax and losses stay float32 (mixed_float16: GPUs)"
    )
    distribute: Literal["default", "mirrored"] = Field(
        "default", description="mirrored: tf.distribute.MirroredStrategy over every visible GPU"
    )
    jit_compile: bool = Field(False, description="XLA-compile the training step (GPUs)")
    on_nonfinite: Literal["stop", "restore"] = Field(
        "stop",
        description="a NaN/inf loss or weight: stop the fold (exit 65), or restore the last good "
        "checkpoint and retry at a lower learning rate",
    )
    nonfinite_retries: int = Field(3, ge=1, le=20, description="restore: retries per fold before stopping")
    nonfinite_lr_factor: float = Field(
        0.5, gt=0.0, lt=1.0, description="restore: learning-rate multiplier at each retry"
    )

    @field_validator("min_learning_rate")
    @classmethod
    def _minimum_below_start(cls, minimum, info: ValidationInfo):
        """Not above training.learning_rate."""
        start = info.data.get("learning_rate")
        if start is not None and minimum > start:
            raise ValueError(f"{minimum} is above training.learning_rate={start}")
        return minimum


class CrossValidationSection(Section):
    """K folds of one seeded split, shared by every loss of an experiment group."""

    folds: int = Field(5, ge=2, description="number of cross-validation folds K")
    splits_file: Optional[Path] = Field(
        None, description="shared splits.json: created on first use, reused by the other runs"
    )


class InferenceSection(Section):
    """Sliding-window prediction (see ``pipeline.inference.sliding_window``)."""

    overlap: Optional[SpatialOverlap] = Field(
        None, description="voxels shared by neighbouring windows; None: half the patch"
    )
    gaussian_sigma_scale: PositiveFloat = Field(
        0.125, description="sigma of the window weighting as a fraction of the patch (nnU-Net: 1/8)"
    )
    batch_size: Union[int, Literal["auto"]] = Field(
        2, description="windows per network call; auto: as many as the GPU holds (2 on a CPU)"
    )
    write_nifti: bool = Field(False, description="2D runs: also write each PNG prediction as a NIfTI file")

    @field_validator("batch_size", mode="before")
    @classmethod
    def _windows_or_auto(cls, value):
        """A positive whole number or auto."""
        if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"expected a positive number of windows or 'auto', got {value!r}")
        return value


class EvaluationSection(Section):
    """Composite regions scored beside the classes (e.g. KiTS19 ``kidney_and_tumour: [1, 2]``); NSD tolerance."""

    regions: dict[str, list[PositiveInt]] = Field(
        default_factory=dict, description="region name to the labels it unites, scored like a class"
    )
    nsd_tolerance_mm: PositiveFloat | dict[str, PositiveFloat] = Field(
        2.0, description="normalised surface distance tolerance in mm: one for all, or one per class and region"
    )

    @field_validator("regions")
    @classmethod
    def _regions_not_empty(cls, regions):
        """Every region lists at least one label."""
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
        """sampling.patch_shape divisible by 2**model.depth; overlap and target grids as many axes as it."""
        divisor = 2**self.model.depth
        patch = list(self.sampling.patch_shape)
        if any(size % divisor for size in patch):
            raise ValueError(
                f"sampling.patch_shape: {patch} must be divisible by 2**model.depth = {divisor} "
                f"in every axis (model.depth={self.model.depth})"
            )
        overlap = self.inference.overlap
        grids = {
            "inference.overlap": overlap,
            "preprocessing.target_spacing": self.preprocessing.target_spacing,
            "preprocessing.target_shape": self.preprocessing.target_shape,
        }
        for key, grid in grids.items():
            if grid is not None and len(grid) != len(patch):
                raise ValueError(
                    f"{key}: {list(grid)} has {len(grid)} axes, sampling.patch_shape {patch} has {len(patch)}"
                )
        if overlap is not None and any(o >= p for o, p in zip(overlap, patch)):
            raise ValueError(
                f"inference.overlap: {list(overlap)} must be smaller than sampling.patch_shape {patch} in every axis"
            )
        return self

    @property
    def run_dir(self) -> Path:
        """``<output_root>/<experiment.name>``: everything this experiment writes."""
        return self.experiment.output_root / self.experiment.name

    @property
    def inference_overlap(self) -> tuple[int, ...]:
        """The configured overlap, or half the patch."""
        if self.inference.overlap is not None:
            return tuple(self.inference.overlap)
        return tuple(size // 2 for size in self.sampling.patch_shape)

    def to_yaml(self) -> str:
        """The resolved config (base merged, overrides applied) as YAML."""
        resolved = self.model_dump(mode="json")
        if resolved["experiment"]["seeds"] is None:  # a one-seed run's config.yaml stays as before seeds existed
            del resolved["experiment"]["seeds"]
        return yaml.safe_dump(resolved, sort_keys=False)

    def run_folds(self, seeds: Sequence[int] | None = None, folds: Sequence[int] | None = None) -> list[RunFold]:
        """The run's (seed, fold, folder) tasks (``pipeline.run_layout.run_folds``), or the given seeds and folds."""
        everything = run_folds(self.run_dir, self.experiment.training_seeds, self.cross_validation.folds)
        return [
            task
            for task in everything
            if (seeds is None or task.seed in seeds) and (folds is None or task.fold in folds)
        ]

    def chosen_seeds(self, seeds: Sequence[int] | None) -> list[int]:
        """The run's seeds among ``seeds`` (``run-experiment --seed``; ``None``: all), in the run's order.

        Raises:
            ConfigError: a seed that is not one of the run's.
        """
        all_seeds = self.experiment.training_seeds
        if seeds is None:
            return all_seeds
        unknown = sorted(set(seeds) - set(all_seeds))
        if unknown:
            raise ConfigError(
                f"--seed {unknown[0]}: not one of the run's seeds (experiment.seeds: {', '.join(map(str, all_seeds))})"
            )
        return [seed for seed in all_seeds if seed in set(seeds)]

    @property
    def seeded_layout(self) -> bool:
        """Whether the folds live in ``seed_S/fold_K/`` and collected tables have a ``seed`` column."""
        return seeded_layout(self.experiment.training_seeds)


def seeds_override(text: str) -> str:
    """``--seeds 0,1,2`` as the override ``experiment.seeds=[0, 1, 2]``.

    Raises:
        ConfigError: not a comma-separated list of whole numbers >= 0 (one line, before anything is written).
    """
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise ConfigError(f"--seeds {text!r}: expected whole numbers >= 0 separated by commas, e.g. --seeds 0,1,2")
    return f"experiment.seeds=[{', '.join(str(int(part)) for part in parts)}]"


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
        return ExperimentConfig.model_validate(_without_removed_keys(raw))
    except ValidationError as error:
        raise ConfigError(f"{path}: {_describe(error)}") from None


def load_section(path, key: str, schema: type[Section]) -> Section:
    """One section of a YAML config file (``base:`` merged), validated alone.

    E.g. the papers' preprocessing, kept in one place (the base config):
    ``load_section("configs/base/kits19.yaml", "preprocessing", PreprocessingSection).settings()``.
    """
    path = Path(path)
    try:
        return schema.model_validate(_without_removed_keys(_read_with_bases(path, seen=())).get(key, {}))
    except ValidationError as error:
        raise ConfigError(f"{path}: {key}.{_describe(error)}") from None


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
    """``override`` on top of ``base``: mappings merge recursively, other values replace, ``null`` removes."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _without_removed_keys(raw: dict) -> dict:
    """``raw`` without its ``null`` entries, at every depth: a removed key takes the schema's default.

    Every key of the schema that accepts ``null`` defaults to ``null`` (a test checks), so removing such
    an entry changes nothing; any other key set to ``null`` is removed rather than refused.
    """
    return {
        key: _without_removed_keys(value) if isinstance(value, dict) else value
        for key, value in raw.items()
        if value is not None
    }


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
            raise ConfigError(
                f"{path}: {'.'.join(keys[: depth + 1])}: is a value, not a section (from --set {override!r})"
            )
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
