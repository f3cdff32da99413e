"""``predict``: apply a finished run's fold models to new, unlabelled scans.

    predict RUN_DIR -i INPUT_DIR -o OUTPUT_DIR [--folds 0 1 2 3 4] [--mirror] [--save-probabilities]

* Inputs (``INPUT_DIR``): a plain folder of NIfTI images, one file per case
  (``<case_id>.nii.gz``), or several channels per case with nnU-Net's naming
  (``<case_id>_0000.nii.gz``, ``<case_id>_0001.nii.gz``, ... in channel order;
  used when every file in the folder ends in ``_XXXX``), or one 4-D file per
  case with the channels on its last axis (the Decathlon's); or case folders
  in the run's data layout (KiTS19 ``case_XXXXX/imaging.nii.gz``, BraTS20
  ``<case>/<case>_<modality>.nii.gz`` for the run's ``data.modalities``); or
  a data set root whose ``imagesTs/`` holds them (nnU-Net, Decathlon).
* A 2D run (``sampling.patch_shape`` of two axes: CVC-ClinicDB, DRIVE,
  BUS2017) takes images instead: PNG or TIFF files (any format Pillow reads
  that the data sets use), or a data set root in the run's layout (CVC-ClinicDB
  ``Original/``, DRIVE ``test/images/`` and ``training/images/``, BUS2017
  ``original/``); colour as the run's ``data.color`` reads it. It writes
  ``<case_id>.png`` (0/255 for a binary task, at the image's size; cleared
  outside DRIVE's field of view when the layout has its mask) and, with
  ``--save-probabilities``, ``<case_id>.npz`` with ``(C, H, W)``. A 3D model
  given images, a 2D model given volumes, a multi-page image or a grey image
  for a colour data set's model is refused in one line.
* Preprocessing is the run's (``config.yaml``: clipping, resampling to the
  target spacing, normalisation), through the same code as training
  (``pipeline.preprocessing.preprocess_image``).
* Every chosen fold's ``fold_K/checkpoints/best_model.h5`` (every seed's ``seed_S/fold_K/`` in a run of several
  seeds; the model rebuilt
  from the config) predicts each sliding window; the softmax outputs are
  averaged (the ensemble). ``--mirror`` adds nnU-Net's test-time
  augmentation: each window is also predicted flipped along every subset of
  its spatial axes (2^3 = 8 flips in 3D), flipped back, and averaged. The
  averaging happens per window, so one float32 buffer of the preprocessed
  case's size holds the whole ensemble.
* Outputs (``OUTPUT_DIR``): ``<case_id>.nii.gz``, a uint8 label map (the run's
  class indices, after ``data.label_map``) on the input's grid with the
  input's header (shape, affine, qform and sform with their codes);
  ``<case_id>.npz`` with ``--save-probabilities``: ``probabilities``, float32
  ``(C, D, H, W)`` on the same grid (as nnU-Net's), streamed class by class;
  ``predict.json``: what was predicted, with which folds and options.

The run folder, the folds' weights and every input (read in full, channel
count and grids checked) are validated before the first file is written;
problems are one line naming the file and exit code 2. Memory: the input
case, its preprocessed copy, the (D', H', W', C) ensemble buffer, and one
class at a time on the original grid while mapping back.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import math
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
from pipeline import console
from pipeline.atomic_files import atomic_target, write_atomically
from pipeline.data.image_files import IMAGE_SUFFIXES, PIXEL_SPACING, colour_channels, image_size, is_image_name
from pipeline.data.image_files import read_binary_mask, read_image as read_image_2d, write_label_png
from pipeline.data.nifti import NIFTI_SUFFIXES, check_same_grid, find_nifti, read_image, write_nifti_like
from pipeline.errors import ConfigError, DataError, UnifocalError, exits_cleanly
from pipeline.run_layout import run_folds

if TYPE_CHECKING:
    from pipeline.config import InferenceSection

logger = logging.getLogger(__name__)

PredictBatch = Callable[[np.ndarray], np.ndarray]
CHANNEL_NAME = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})\.nii(\.gz)?$")
#: Image files of a case folder in a data set's published layout, by ``data.dataset``.
CASE_FOLDER_IMAGES: dict[str, Callable[[Path, Sequence[str]], list[str]]] = {
    "kits19": lambda folder, modalities: ["imaging"],
    "brats20": lambda folder, modalities: [f"{folder.name}_{modality}" for modality in modalities],
}
DEFAULT_MODALITIES = {"kits19": ("ct",), "brats20": ("t1ce",)}


@dataclass(frozen=True)
class InputCase:
    """A scan to predict: its case id and one image file per channel, in channel order.

    ``field_of_view``: a 2D image's field-of-view mask (DRIVE), outside which the prediction is background.
    """

    case_id: str
    images: tuple[Path, ...]
    field_of_view: Path | None = None


@dataclass(frozen=True)
class FoldModel:
    """A fold's best weights and the input channels and output classes they were trained with.

    ``seed``: the training seed, in a run of several seeds (``pipeline.run_layout``); else ``None``.
    """

    fold: int
    weights: Path
    num_channels: int
    num_classes: int
    seed: int | None = None

    @property
    def name(self) -> str:
        return str(self.fold) if self.seed is None else f"{self.fold} (seed {self.seed})"


# --- validation (no TensorFlow needed) ------------------------------------------------------


def load_run_config(run_dir):
    """The run's ``config.yaml``, validated as ``run-experiment`` does."""
    from pipeline.config import load_config

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(run_dir, "run folder not found")
    if not (run_dir / "config.yaml").is_file():
        raise DataError(run_dir / "config.yaml", "missing: not a run-experiment output folder")
    return load_config(run_dir / "config.yaml")


def weight_shapes(path: Path) -> list[tuple[int, ...]]:
    """Shapes of the kernels in a Keras HDF5 weights file, in layer order."""
    import h5py

    try:
        with h5py.File(path, "r") as weights:
            shapes = []
            for layer in weights.attrs["layer_names"]:
                group = weights[layer.decode() if isinstance(layer, bytes) else layer]
                for name in group.attrs["weight_names"]:
                    name = name.decode() if isinstance(name, bytes) else name
                    if name.rsplit("/", 1)[-1].startswith("kernel"):
                        shapes.append(tuple(group[name].shape))
            return shapes
    except (OSError, KeyError) as error:
        raise DataError(path, f"not a readable Keras weights file ({' '.join(str(error).split())})") from None


def fold_models(run_dir, config, folds: Sequence[int] | None) -> list[FoldModel]:
    """Each chosen fold's best weights (default: every fold), checked to exist and to agree.

    A run of several seeds gives every seed's model of each chosen fold (``pipeline.run_layout``).
    """
    run_dir = Path(run_dir)
    available = config.cross_validation.folds
    folds = list(range(available)) if not folds else sorted(set(folds))
    bad = [fold for fold in folds if not 0 <= fold < available]
    if bad:
        raise ConfigError(
            f"--folds {bad[0]}: out of range; the run has cross_validation.folds={available} (folds 0..{available - 1})"
        )
    models = []
    for task in run_folds(run_dir, config.experiment.training_seeds, folds):
        fold = task.fold
        weights = task.path / "checkpoints" / "best_model.h5"
        if not weights.is_file():
            raise DataError(
                weights,
                f"missing: fold {fold} has no trained model (run run-experiment "
                f"--fold {fold} first, or leave it out with --folds)",
            )
        kernels = weight_shapes(weights)
        if not kernels:
            raise DataError(weights, "holds no convolution kernels")
        models.append(
            FoldModel(
                fold,
                weights,
                num_channels=kernels[0][-2],
                num_classes=kernels[-1][-1],
                seed=task.seed if config.seeded_layout else None,
            )
        )
    for model in models[1:]:
        if (model.num_channels, model.num_classes) != (models[0].num_channels, models[0].num_classes):
            raise DataError(
                model.weights,
                f"{model.num_channels} channels and {model.num_classes} classes, but "
                f"{models[0].num_channels} and {models[0].num_classes} in "
                f"{models[0].weights}",
            )
    return models


def is_two_dimensional(config) -> bool:
    """Whether the run's model takes 2D images (its patch has two axes)."""
    return len(config.sampling.patch_shape) == 2


def find_inputs(input_dir, config) -> list[InputCase]:
    """The cases in ``input_dir``: NIfTI files (one per case, or nnU-Net ``_XXXX`` channels) or case folders;
    for a 2D run, image files or a data set root in the run's 2D layout (:func:`find_images`)."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise DataError(input_dir, "input folder not found")
    files = sorted(
        path
        for path in input_dir.iterdir()
        if path.is_file() and path.name.endswith(NIFTI_SUFFIXES) and not path.name.startswith("._")
    )  # macOS resource forks in the Decathlon's archives
    if is_two_dimensional(config):
        return find_images(input_dir, config, volumes=bool(files))
    if not files and any(path.is_file() and is_image_name(path.name) for path in input_dir.iterdir()):
        raise DataError(
            input_dir,
            f"2D images, but the run's model is 3D ({config.data.dataset}, patch "
            f"{list(config.sampling.patch_shape)}): give NIfTI volumes",
        )
    if files:
        return _cases_of_files(files)
    if (input_dir / "imagesTs").is_dir():  # a data set root in the nnU-Net or Decathlon layout
        return find_inputs(input_dir / "imagesTs", config)
    folders = sorted(path for path in input_dir.iterdir() if path.is_dir())
    layout = CASE_FOLDER_IMAGES.get(config.data.dataset)
    if not folders or layout is None:
        raise DataError(
            input_dir,
            "no NIfTI images (<case>.nii.gz or <case>_0000.nii.gz ...)"
            + (f" nor {config.data.dataset} case folders" if layout else ""),
        )
    modalities = config.data.modalities or DEFAULT_MODALITIES[config.data.dataset]
    cases = []
    for folder in folders:
        images = []
        for stem in layout(folder, modalities):
            path = find_nifti(folder, stem)
            if path is None:
                raise DataError(
                    folder / f"{stem}.nii.gz",
                    f"file not found (a {config.data.dataset} case folder "
                    f"needs {', '.join(layout(folder, modalities))})",
                )
            images.append(path)
        cases.append(InputCase(folder.name, tuple(images)))
    return cases


def find_images(input_dir: Path, config, volumes: bool = False) -> list[InputCase]:
    """A 2D run's inputs: the image files in ``input_dir``, else the images of the run's data set layout under it.

    ``volumes``: ``input_dir`` holds NIfTI files (refused: the model is 2D).
    """
    from pipeline.data.registry import DATASETS

    images = sorted(
        (
            path
            for path in input_dir.iterdir()
            if path.is_file() and is_image_name(path.name) and not path.name.startswith(".")
        ),
        key=lambda path: path.name,
    )
    layout = DATASETS.get(config.data.dataset)
    if not images and hasattr(layout, "layout_images"):
        images = layout.layout_images(input_dir)
    if not images:
        found = "NIfTI volumes, but" if volumes else "no PNG or TIFF images, and"
        raise DataError(
            input_dir,
            f"{found} the run's model is 2D ({config.data.dataset}, patch "
            f"{list(config.sampling.patch_shape)}): give images ({', '.join(IMAGE_SUFFIXES)})"
            + (f" or a {config.data.dataset} data set root" if layout else ""),
        )
    cases: dict[str, InputCase] = {}
    for path in images:
        if path.stem in cases:
            raise DataError(path, f"a second image of case {path.stem} (also {cases[path.stem].images[0].name})")
        field_of_view = layout.field_of_view_file(path) if hasattr(layout, "field_of_view_file") else None
        cases[path.stem] = InputCase(
            path.stem, (path,), field_of_view if config.data.restrict_to_fov is not False else None
        )
    return list(cases.values())


def run_color(config) -> str:
    """How the run read its images: ``data.color``, else its data set's own (``"rgb"`` or ``"grey"``)."""
    from pipeline.data.registry import DATASETS

    return config.data.color or DATASETS[config.data.dataset].default_color


def _cases_of_files(files: list[Path]) -> list[InputCase]:
    matches = [CHANNEL_NAME.match(path.name) for path in files]
    if not all(matches):
        return [InputCase(_stem(path), (path,)) for path in files]
    channels: dict[str, dict[int, Path]] = {}
    for path, match in zip(files, matches):
        channels.setdefault(match["case"], {})[int(match["channel"])] = path
    cases = []
    for case_id, found in sorted(channels.items()):
        missing = [index for index in range(max(found) + 1) if index not in found]
        if missing:
            raise DataError(
                files[0].parent / f"{case_id}_{missing[0]:04d}.nii.gz",
                f"missing: case {case_id} has channels {sorted(found)}",
            )
        cases.append(InputCase(case_id, tuple(found[index] for index in sorted(found))))
    return cases


def _stem(path: Path) -> str:
    return next(path.name[: -len(suffix)] for suffix in NIFTI_SUFFIXES if path.name.endswith(suffix))


def check_images(cases: Sequence[InputCase], config, num_channels: int) -> None:
    """Decode every 2D input: readable, one image per file, its colour fit for the run's model."""
    color = run_color(config)
    if num_channels != (3 if color == "rgb" else 1):
        raise DataError(
            Path(config.run_dir) / "config.yaml",
            f"data.color {color} gives {3 if color == 'rgb' else 1} channel(s), but the model takes {num_channels}",
        )
    from pipeline.data.registry import DATASETS

    colour_data = DATASETS[config.data.dataset].default_color == "rgb"
    for case in console.progress(cases, description="check inputs", unit="case", leave=False):
        channels = colour_channels(case.images[0])
        if color == "rgb" and colour_data and channels == 1:
            raise DataError(
                case.images[0],
                f"a grey image, but the run's model was trained on colour "
                f"{config.data.dataset} images (data.color: rgb, 3 channels)",
            )
        if case.field_of_view is not None:
            read_binary_mask(case.field_of_view, image_size(case.images[0]))  # the image itself was decoded above


def check_inputs(cases: Sequence[InputCase], num_channels: int) -> None:
    """Read every input in full: readable, finite, the model's channel count, channels on one grid."""
    for case in console.progress(cases, description="check inputs", unit="case", leave=False):
        if len(case.images) not in (1, num_channels):
            raise DataError(
                case.images[0],
                f"case {case.case_id} has {len(case.images)} channel(s), but the "
                f"run's model takes {num_channels} (name the channels "
                f"{case.case_id}_0000.nii.gz ... _{num_channels - 1:04d}.nii.gz)",
            )
        read_channels(case, num_channels)


def read_channels(case: InputCase, num_channels: int) -> list:
    """The case's images as ``NiftiVolume``s on one grid: one file per channel, or one 4-D file of all
    channels (the Decathlon's), whose ``data`` is then ``(D, H, W, num_channels)``."""
    if len(case.images) == 1:
        return [read_image(case.images[0], channels=num_channels)]
    volumes = [read_image(path) for path in case.images]
    for volume in volumes[1:]:
        check_same_grid(volume, volumes[0])
    return volumes


# --- prediction ---------------------------------------------------------------------------------


def load_models(config, models: Sequence[FoldModel]) -> list:
    """The configured network of each fold with its best weights, under the run's precision policy."""
    from pipeline.training import distribute
    from pipeline.training.train import build_model

    distribute.apply_precision_policy(config.training.precision)
    networks = []
    for model in models:
        network = build_model(config.model, model.num_channels, model.num_classes, len(config.sampling.patch_shape))
        try:
            network.load_weights(model.weights)
        except ValueError as error:
            raise DataError(
                model.weights, f"does not fit the model config.yaml describes ({' '.join(str(error).split())[:200]})"
            ) from None
        networks.append(network)
    return networks


def flips(num_spatial_axes: int, mirror: bool) -> list[tuple[int, ...]]:
    """Spatial axes (1 = first after the batch axis) to flip: every subset when mirroring, else none."""
    axes = range(1, num_spatial_axes + 1) if mirror else ()
    return [subset for count in range(len(axes) + 1) for subset in itertools.combinations(axes, count)]


def ensemble_predictor(
    networks: Sequence, patch_shape: Sequence[int], num_channels: int, batch_size: int, mirror: bool = False
) -> PredictBatch:
    """A batch function: the mean softmax of every network over every flip (flipped back), float32.

    One traced ``tf.function`` runs ``len(networks) * len(flips)`` forward
    passes per batch; only the first output of a deeply supervised model is used.
    """
    import tensorflow as tf

    signature = tf.TensorSpec((batch_size, *patch_shape, num_channels), tf.float32)
    flip_sets = flips(len(patch_shape), mirror)

    @tf.function(input_signature=[signature])
    def predict(batch):
        total = None
        for network in networks:
            for axes in flip_sets:
                outputs = network(tf.reverse(batch, axes) if axes else batch, training=False)
                if isinstance(outputs, (list, tuple)):
                    outputs = outputs[0]
                outputs = tf.cast(outputs, tf.float32)
                outputs = tf.reverse(outputs, axes) if axes else outputs
                total = outputs if total is None else total + outputs
        return total / float(len(networks) * len(flip_sets))

    return lambda batch: predict(batch).numpy()


def window_fill(normalization: str, image: np.ndarray):
    """Image value around a volume smaller than a window, as in training: 0 for brain-masked MRI
    (``zscore_nonzero``), else each channel's minimum (air)."""
    return 0.0 if normalization == "zscore_nonzero" else np.min(image, axis=tuple(range(image.ndim - 1)))


def predict_probabilities(
    predict_batch: PredictBatch,
    image: np.ndarray,
    num_classes: int,
    patch_shape: Sequence[int],
    overlap: Sequence[int],
    inference: InferenceSection,
    normalization: str,
    progress: Callable[[], None] | None = None,
) -> np.ndarray:
    """Sliding-window class probabilities (D', H', W', C) of a preprocessed image.

    Args:
        patch_shape, overlap: the window (``sampling.patch_shape``) and the voxels neighbours share.
        inference: ``gaussian_sigma_scale`` and ``batch_size``.
        normalization: ``preprocessing.normalization``, which decides the padding (:func:`window_fill`).
        progress: called after every network call.
    """
    from pipeline.inference.sliding_window import sliding_window_predict

    def counted(batch):
        result = predict_batch(batch)
        if progress is not None:
            progress()
        return result

    return sliding_window_predict(
        counted,
        np.asarray(image),
        patch_shape,
        overlap,
        num_classes,
        sigma_scale=inference.gaussian_sigma_scale,
        batch_size=inference.batch_size,
        pad_value=window_fill(normalization, image),
    )


def network_calls(shape: Sequence[int], patch_shape: Sequence[int], overlap: Sequence[int], batch_size: int) -> int:
    """How many batches :func:`predict_probabilities` sends through the network for an image of ``shape``."""
    from pipeline.inference.sliding_window import window_starts

    windows = math.prod(len(window_starts(max(size, p), p, o)) for size, p, o in zip(shape, patch_shape, overlap))
    return math.ceil(windows / batch_size)


@contextlib.contextmanager
def probability_writer(
    path: Path, num_classes: int, shape: Sequence[int]
) -> Iterator[Callable[[int, np.ndarray], None]]:
    """Write ``path`` (``.npz``, atomically): ``probabilities`` float32 (C, *shape), given one class at a time.

    Yields ``add(label, probabilities)``, to be called for labels 0, 1, ... in order.
    """
    with (
        atomic_target(path, suffix=".npz") as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("probabilities.npy", "w", force_zip64=True) as member,
    ):
        np.lib.format.write_array_header_1_0(
            member,
            {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False,
                "shape": (num_classes, *shape),
            },
        )
        expected = iter(range(num_classes))

        def add(label: int, probabilities: np.ndarray) -> None:
            if label != next(expected):
                raise ValueError(f"class {label} given out of order")
            member.write(np.ascontiguousarray(probabilities, dtype=np.float32).tobytes())

        yield add


def predict_case(
    case: InputCase,
    config,
    predict_batch: PredictBatch,
    num_channels: int,
    num_classes: int,
    out_dir: Path,
    save_probabilities: bool = False,
) -> dict:
    """Read, preprocess, predict and write one case; return its record for ``predict.json``."""
    from pipeline.preprocessing import preprocess_image
    from pipeline.preprocessing.resampling import probabilities_to_labels

    started = time.perf_counter()
    if is_two_dimensional(config):  # as the 2D data sets read images: one unit per pixel, no affine
        image, spacing, affine = read_image_2d(case.images[0], run_color(config)), PIXEL_SPACING, np.eye(4)
    else:
        volumes = read_channels(case, num_channels)
        image = (
            volumes[0].data.reshape(*volumes[0].shape, num_channels)
            if len(volumes) == 1
            else np.stack([volume.data for volume in volumes], axis=-1)
        )
        spacing, affine = volumes[0].spacing, volumes[0].affine
        del volumes
    preprocessed, geometry = preprocess_image(image, spacing, affine, config.preprocessing.settings())
    del image
    patch_shape, overlap = config.sampling.patch_shape, config.inference_overlap
    with console.bar(
        network_calls(geometry.shape, patch_shape, overlap, config.inference.batch_size), case.case_id, unit="batch"
    ) as bar:
        probabilities = predict_probabilities(
            predict_batch,
            preprocessed,
            num_classes,
            patch_shape,
            overlap,
            config.inference,
            config.preprocessing.normalization,
            bar.update,
        )
    del preprocessed
    with contextlib.ExitStack() as stack:
        each_class = (
            stack.enter_context(
                probability_writer(out_dir / f"{case.case_id}.npz", num_classes, geometry.original_shape)
            )
            if save_probabilities
            else None
        )
        labels = probabilities_to_labels(probabilities, geometry.original_shape, each_class=each_class)
    if is_two_dimensional(config):
        if case.field_of_view is not None:
            labels[read_binary_mask(case.field_of_view, labels.shape) == 0] = 0
        write_label_png(out_dir / f"{case.case_id}.png", labels, num_classes)
    else:
        write_nifti_like(
            out_dir / f"{case.case_id}.nii.gz",
            labels,
            case.images[0],
            channels=num_channels if len(case.images) == 1 else 1,
        )
    return {
        "case": case.case_id,
        "inputs": [str(path) for path in case.images],
        "preprocessed_shape": list(geometry.shape),
        "seconds": round(time.perf_counter() - started, 2),
    }


def predict(
    run_dir,
    input_dir,
    output_dir,
    folds: Sequence[int] | None = None,
    mirror: bool = False,
    save_probabilities: bool = False,
) -> list[dict]:
    """Validate everything, then predict every case of ``input_dir`` into ``output_dir`` (see the module doc)."""
    run_dir, input_dir, output_dir = Path(run_dir), Path(input_dir), Path(output_dir)
    config = load_run_config(run_dir)
    models = fold_models(run_dir, config, folds)
    cases = find_inputs(input_dir, config)
    if output_dir.exists() and not output_dir.is_dir():
        raise UnifocalError(f"{output_dir}: -o exists and is not a folder")
    if output_dir.resolve() == input_dir.resolve():
        raise UnifocalError(f"{output_dir}: -o is the input folder; predictions would mix with the scans")
    if is_two_dimensional(config):
        check_images(cases, config, models[0].num_channels)
    else:
        check_inputs(cases, models[0].num_channels)
    from pipeline.inference.sliding_window import resolve_batch_size

    networks = load_models(config, models)
    windows = resolve_batch_size(
        config.inference.batch_size, networks[0], config.sampling.patch_shape, models[0].num_channels
    )
    config = config.model_copy(update={"inference": config.inference.model_copy(update={"batch_size": windows})})
    predict_batch = ensemble_predictor(
        networks, config.sampling.patch_shape, models[0].num_channels, config.inference.batch_size, mirror
    )
    logger.info(
        "predicting %d case(s) with fold(s) %s%s into %s",
        len(cases),
        ", ".join(model.name for model in models),
        " and mirroring" if mirror else "",
        output_dir,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    records = [
        predict_case(
            case, config, predict_batch, models[0].num_channels, models[0].num_classes, output_dir, save_probabilities
        )
        for case in console.progress(cases, description="predict", unit="case")
    ]
    write_atomically(
        output_dir / "predict.json",
        json.dumps(
            {
                "run_dir": str(run_dir.resolve()),
                "folds": [model.fold for model in models],
                **({"seeds": [model.seed for model in models]} if config.seeded_layout else {}),
                "mirror": mirror,
                "flips": len(flips(len(config.sampling.patch_shape), mirror)),
                "classes": models[0].num_classes,
                "preprocessing": config.preprocessing.settings().as_dict(),
                "cases": records,
            },
            indent=1,
        )
        + "\n",
    )
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="predict",
        description="Predict new scans with a finished run's fold models (softmax ensemble, optional mirroring); "
        "label maps in each input's geometry and header.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run-experiment output folder")
    parser.add_argument(
        "-i",
        "--input",
        required=True,
        metavar="INPUT_DIR",
        help="NIfTI images (<case>.nii.gz, or <case>_0000.nii.gz ... per channel) or case folders "
        "in the run's data layout; a 2D run: PNG or TIFF images, or a data set root in its "
        "layout",
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUTPUT_DIR", help="folder for the predictions")
    parser.add_argument(
        "--folds",
        type=int,
        nargs="+",
        metavar="K",
        help="folds whose best models are averaged (default: every fold of the run)",
    )
    parser.add_argument(
        "--mirror",
        action="store_true",
        help="test-time augmentation: average over every flip of the spatial axes (8x the time in 3D)",
    )
    parser.add_argument(
        "--save-probabilities",
        action="store_true",
        help="also write <case>.npz with the class probabilities (C, D, H, W), 2D (C, H, W), on the input's grid",
    )
    return console.add_arguments(parser)


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.configure(args)
    records = predict(args.run_dir, args.input, args.output, args.folds, args.mirror, args.save_probabilities)
    seconds = sum(record["seconds"] for record in records)
    logger.info(
        "wrote %d prediction(s) to %s (%.1f s, %.1f s per case)",
        len(records),
        args.output,
        seconds,
        seconds / max(len(records), 1),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
