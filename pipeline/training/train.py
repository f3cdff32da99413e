"""Training of one cross-validation fold: fresh model, Adam, reduce-on-plateau, resumable.

Protocol (Yeung et al. 2021, section III.D; SPEC section 3): Adam at
``training.learning_rate`` (passed as ``learning_rate=``: Keras >= 2.11
silently ignores MIScnn's ``lr=``), the learning rate multiplied by
``plateau_factor`` after ``plateau_patience`` epochs without a lower
validation loss, down to ``min_learning_rate``; the validation loss is
computed after every epoch and the weights with the lowest one are kept.

Every fold starts from a fresh model and optimizer state, initialised with
``tf.keras.utils.set_random_seed`` of the fold's seed (``experiment.seed + fold`` for one seed;
``pipeline.run_layout.fold_seed``; see :func:`fresh_model`).

Each function receives only the config sections it uses (``training``,
``model``, ``loss``), validated once by ``pipeline.config``.

Files in ``fold_K/`` (all written atomically):

* ``checkpoints/epoch_NNNN/``: model and optimizer state after the last
  finished epoch (``tf.train.Checkpoint``); ``checkpoints/state.json`` points
  to it and holds the epoch, the plateau callback's state and the best
  validation loss so far. The folder is complete before ``state.json``
  switches to it, so a run killed at any moment resumes from the last
  finished epoch.
* ``checkpoints/best_model.h5``: weights with the lowest validation loss
  (rebuild the model with :func:`build_model` and ``load_weights``).
* ``log.csv``: ``epoch, loss, val_loss, lr``, one row per finished epoch
  (epochs counted from 1; ``lr`` is the rate used during the epoch).
* ``tensorboard/``: TensorBoard scalars.

Non-finite values (``training.on_nonfinite``): an epoch whose loss, validation
loss or weights hold a NaN or infinity is never saved, neither as the last
checkpoint nor as the best model. ``stop`` raises :class:`TrainingDiverged`
(exit 65) naming the epoch, the value and the last good checkpoint. ``restore``
reloads the last good checkpoint (or the seeded initial weights), multiplies
the learning rate by ``nonfinite_lr_factor`` and trains on, up to
``nonfinite_retries`` times per fold. Only then (a fault-free fold's files
are unchanged): ``nonfinite.json`` lists the retries (epoch, quantity, value,
restored epoch, new learning rate), written before the retry starts, and
``log.csv`` gets a ``retry`` column (the retries made before the row's epoch
was trained) and one row per diverged attempt, with its non-finite values.
A rerun reads ``nonfinite.json``, so an interrupted retry resumes with the
lowered rate and the same retry count.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pipeline import console
from pipeline.atomic_files import write_atomically
from pipeline.config import LossSection, ModelSection, TrainingSection
from pipeline.errors import DiskFull, TrainingDiverged, is_disk_full
from pipeline.training import distribute
from pipeline.training.model import build_unet, deep_supervision_weights, downsample_targets, spatial_dims_of

import h5py  # noqa: E402
import tensorflow as tf  # noqa: E402  (after pipeline: TF_USE_LEGACY_KERAS)
from tf_keras.src.saving.legacy import hdf5_format  # noqa: E402  (what model.save_weights(h5) calls)

import losses  # noqa: E402

LOG_COLUMNS = ("epoch", "loss", "val_loss", "lr")
#: ``log.csv``'s extra column in a fold that retried after non-finite values.
RETRY_COLUMN = "retry"
#: The retries of a fold under ``training.on_nonfinite: restore`` (absent when there were none).
RETRIES_FILE = "nonfinite.json"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldTraining:
    """What :func:`train_fold` produced: ``model`` holds the best weights."""

    model: tf.keras.Model
    best_weights: Path
    best_val_loss: float
    epochs: int
    resumed_after_epoch: int
    retries: tuple[dict, ...] = ()  # the records of nonfinite.json, oldest first


def build_model(section: ModelSection, num_channels: int, num_classes: int, spatial_dims: int = 3) -> tf.keras.Model:
    """The configured U-Net (uncompiled), under the current precision policy; 2D or 3D (``spatial_dims``)."""
    return build_unet(
        num_channels,
        num_classes,
        architecture=section.architecture,
        n_filters=section.n_filters,
        depth=section.depth,
        batch_normalization=section.batch_normalization,
        batch_norm_momentum=section.batch_norm_momentum,
        deep_supervision=section.deep_supervision,
        deep_supervision_heads=section.deep_supervision_heads,
        spatial_dims=spatial_dims,
    )


def compile_model(
    model_section: ModelSection,
    loss: LossSection,
    learning_rate: float,
    num_channels: int,
    num_classes: int,
    spatial_dims: int = 3,
    jit_compile: bool = False,
) -> tf.keras.Model:
    """A fresh configured U-Net compiled with a fresh Adam and the configured loss (XLA with ``jit_compile``).

    Call inside the training strategy's scope, after the precision policy is
    set. With deep supervision the loss of output ``k`` is weighted as in
    :func:`pipeline.training.model.deep_supervision_weights`.
    """
    model = build_model(model_section, num_channels, num_classes, spatial_dims)
    weights = deep_supervision_weights(model_section.deep_supervision_heads) if model_section.deep_supervision else None
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
        loss=losses.get(loss.name, **loss.params),
        loss_weights=weights,
        jit_compile=jit_compile,
    )
    return model


def train_fold(
    training: TrainingSection,
    model_section: ModelSection,
    loss: LossSection,
    seed: int,
    fold_dir,
    train_batches: tf.keras.utils.Sequence,
    val_batches: tf.keras.utils.Sequence,
    num_channels: int,
    num_classes: int,
    callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> FoldTraining:
    """Train (or resume training) one fold; return the model with its best weights.

    Args:
        training, model_section, loss: the config sections.
        seed: the fold's seed (``pipeline.run_layout.fold_seed``: ``experiment.seed + fold`` for a one-seed
            run); the initial weights are seeded with it.
        fold_dir: ``<run>/fold_K`` (``<run>/seed_S/fold_K`` with several seeds); checkpoints and logs go there.
        train_batches, val_batches: ``(x, y)`` batches of ``sampling.batch_size`` patches,
            ``y`` one-hot at full resolution, such as ``pipeline.training.sampling.PatchBatches``
            (``batch_size`` and ``patch_shape`` attributes give the batches' static shape).
            ``train_batches`` has ``set_epoch(e)``, and epoch ``e``'s batches must not depend
            on earlier epochs: a resumed run starts at the checkpointed epoch.
            ``val_batches`` are the same every epoch (``PatchBatches(fixed_patches=True)``).
        num_channels, num_classes: image channels and output classes.
        callbacks: extra Keras callbacks, run after the built-in ones.

    Raises:
        TrainingDiverged: the loss, validation loss or weights became NaN or infinite
            (``training.on_nonfinite: stop``, or its retries used up).
        DiskFull: a checkpoint found no space; the last complete one stays.
    """
    fold_dir = Path(fold_dir)
    checkpoints = fold_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    retries = read_retries(fold_dir)
    first_start = None
    while True:  # once, or once more per retry after non-finite values: each round starts as a rerun would
        state = _read_state(checkpoints)
        start_epoch = state["epoch"] if state else 0
        first_start = start_epoch if first_start is None else first_start
        model = fresh_model(
            training, model_section, loss, seed, num_channels, num_classes, spatial_dims_of(train_batches.patch_shape)
        )
        if state is not None:
            _restore(model, checkpoints / state["checkpoint"])
        if retries and retries[-1]["restored_epoch"] == start_epoch:  # a retry starts here: its lowered rate
            tf.keras.backend.set_value(model.optimizer.learning_rate, retries[-1]["learning_rate"])
        plateau = ResumablePlateau(
            resume_state=state["plateau"] if state else None,
            monitor="val_loss",
            factor=training.plateau_factor,
            patience=training.plateau_patience,
            min_lr=training.min_learning_rate,
            verbose=1,
        )
        saver = EpochCheckpoint(
            checkpoints,
            fold_dir / "log.csv",
            plateau,
            best_val_loss=state["best_val_loss"] if state else math.inf,
            rows=_read_log(fold_dir / "log.csv", start_epoch),
            retries=retries,
        )
        if start_epoch >= training.epochs:
            break
        if start_epoch:
            logger.info("%s: resuming after epoch %d", fold_dir, start_epoch)
        shapes = _BatchShapes(
            train_batches.batch_size,
            tuple(train_batches.patch_shape),
            num_channels,
            num_classes,
            model_section.deep_supervision_heads if model_section.deep_supervision else 0,
        )
        try:
            model.fit(
                _dataset(train_batches, shapes, first_epoch=start_epoch),
                validation_data=_dataset(val_batches, shapes),
                epochs=training.epochs,
                initial_epoch=start_epoch,
                verbose=_keras_verbosity(),
                callbacks=[
                    tf.keras.callbacks.TerminateOnNaN(),
                    plateau,
                    saver,
                    tf.keras.callbacks.TensorBoard(str(fold_dir / "tensorboard"), write_graph=False, profile_batch=0),
                    *callbacks,
                ],
            )
        except BaseException:
            _compiled.clear()  # an interrupted fit leaves Keras state behind (e.g. its validation data)
            raise
        if saver.diverged is None:
            break
        retries = _retry_or_stop(training, fold_dir, saver, retries)
    final = _read_state(checkpoints)
    model.load_weights(checkpoints / "best_model.h5")
    return FoldTraining(
        model=model,
        best_weights=checkpoints / "best_model.h5",
        best_val_loss=final["best_val_loss"],
        epochs=final["epoch"],
        resumed_after_epoch=first_start,
        retries=tuple(retries),
    )


def _fold_name(fold_dir: Path) -> str:
    """``fold K`` for ``fold_K/``, ``seed S fold K`` for ``seed_S/fold_K/`` (``pipeline.run_layout``)."""
    names = [fold_dir.name] if not fold_dir.parent.name.startswith("seed_") else [fold_dir.parent.name, fold_dir.name]
    return " ".join(name.replace("_", " ") for name in names)


def read_retries(fold_dir) -> list[dict]:
    """The fold's retries after non-finite values (``nonfinite.json``), oldest first; ``[]`` when none."""
    path = Path(fold_dir) / RETRIES_FILE
    return json.loads(path.read_text())["retries"] if path.exists() else []


def _retry_or_stop(
    training: TrainingSection, fold_dir: Path, saver: "EpochCheckpoint", retries: list[dict]
) -> list[dict]:
    """After a diverged epoch: record a retry and return the retries, or raise :class:`TrainingDiverged`."""
    diverged, good = saver.diverged, saver.last_saved_epoch
    kept = (
        f"the last good checkpoint is {saver.checkpoints / f'epoch_{good:04d}'} (epoch {good})"
        if good
        else "no epoch finished with finite values, nothing is kept"
    )
    what = f"{_fold_name(fold_dir)}: epoch {diverged['epoch']}: {diverged['quantity']} is {diverged['value']}"
    if training.on_nonfinite == "stop":
        raise TrainingDiverged(
            f"{what}; training stopped, {kept}; the fold is not done: rerun with "
            "--set training.on_nonfinite=restore to retry at a lower learning rate, or lower "
            "training.learning_rate in a new run (another experiment.name)"
        )
    if len(retries) >= training.nonfinite_retries:
        raise TrainingDiverged(
            f"{what} again after {len(retries)} retries (training.nonfinite_retries); training stopped, {kept}; "
            "the fold is not done: lower training.learning_rate in a new run (another experiment.name)"
        )
    learning_rate = diverged["lr"] * training.nonfinite_lr_factor
    retries = [*retries, {**diverged, "restored_epoch": good, "learning_rate": learning_rate}]
    write_atomically(fold_dir / RETRIES_FILE, json.dumps({"retries": retries}, indent=1) + "\n")
    write_atomically(fold_dir / "log.csv", _csv(saver.rows, retries))
    logger.warning(
        "%s; retry %d/%d from epoch %d at learning rate %g (training.on_nonfinite=restore)",
        what,
        len(retries),
        training.nonfinite_retries,
        good,
        learning_rate,
    )
    return retries


_compiled: dict[str, tf.keras.Model] = {}


def fresh_model(
    training: TrainingSection,
    model_section: ModelSection,
    loss: LossSection,
    seed: int,
    num_channels: int,
    num_classes: int,
    spatial_dims: int = 3,
) -> tf.keras.Model:
    """A compiled model in the state of a new one: weights initialised with ``seed``, Adam reset.

    Compiling makes Keras trace its training and validation steps, seconds per
    fold on a CPU. The compiled model of the last configuration is therefore
    kept and, for each fold, given the weights a new model built after
    ``tf.keras.utils.set_random_seed(seed)`` gets, a zero
    Adam state (step count and moments) and the configured learning rate:
    the same start as a new model and optimizer. Under ``mixed_float16`` the
    optimizer's dynamic loss scale is state too; those models are rebuilt.
    """
    key = json.dumps(
        [
            model_section.model_dump(mode="json"),
            loss.model_dump(mode="json"),
            training.precision,
            training.distribute,
            training.jit_compile,
            num_channels,
            num_classes,
            spatial_dims,
        ]
    )
    model = _compiled.get(key)
    if model is None:
        _compiled.clear()
        tf.keras.backend.clear_session()
        distribute.apply_precision_policy(training.precision)
        with distribute.strategy_for(training.distribute).scope():
            model = compile_model(
                model_section,
                loss,
                training.learning_rate,
                num_channels,
                num_classes,
                spatial_dims,
                training.jit_compile,
            )
        optimizer = model.optimizer
        getattr(optimizer, "inner_optimizer", optimizer).build(model.trainable_variables)
        if optimizer is getattr(optimizer, "inner_optimizer", optimizer):
            _compiled[key] = model
    tf.keras.utils.set_random_seed(seed)
    model.set_weights(build_model(model_section, num_channels, num_classes, spatial_dims).get_weights())
    for variable in model.optimizer.variables:
        variable.assign(tf.zeros_like(variable))
    tf.keras.backend.set_value(model.optimizer.learning_rate, training.learning_rate)
    return model


class ResumablePlateau(tf.keras.callbacks.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` whose counters survive a restart.

    Keras resets ``wait``, ``cooldown_counter`` and ``best`` when training
    begins; a resumed run sets them back to the checkpointed values.
    """

    def __init__(self, resume_state: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self._resume_state = resume_state

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._resume_state is not None:
            self.wait = self._resume_state["wait"]
            self.cooldown_counter = self._resume_state["cooldown_counter"]
            self.best = self._resume_state["best"]

    def state(self) -> dict:
        """The counters to checkpoint."""
        return {"wait": int(self.wait), "cooldown_counter": int(self.cooldown_counter), "best": float(self.best)}


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """After each epoch: best weights, ``log.csv``, last checkpoint, then ``state.json``.

    Runs after :class:`ResumablePlateau` (which records the epoch's learning
    rate in the logs and may lower it for the next epoch). An epoch with a
    non-finite loss, validation loss or weight is not saved; training stops
    and ``diverged`` describes it (epoch, quantity, value, losses, learning rate).
    """

    def __init__(
        self,
        checkpoints: Path,
        log_path: Path,
        plateau: ResumablePlateau,
        best_val_loss: float,
        rows: list[dict],
        retries: Sequence[dict] = (),
    ):
        super().__init__()
        self.checkpoints = checkpoints
        self.log_path = log_path
        self.plateau = plateau
        self.best_val_loss = best_val_loss
        self.rows = rows
        self.retries = list(retries)
        self.diverged: dict | None = None
        self.last_saved_epoch = rows[-1]["epoch"] if rows else 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        number = epoch + 1
        loss, val_loss = float(logs.get("loss", math.nan)), float(logs.get("val_loss", math.nan))
        lr = float(logs.get("lr", tf.keras.backend.get_value(self.model.optimizer.learning_rate)))
        nonfinite = _nonfinite(loss, val_loss, self.model)
        if nonfinite is not None:
            self.diverged = {
                "epoch": number,
                "quantity": nonfinite[0],
                "value": nonfinite[1],
                "loss": _json_number(loss),
                "val_loss": _json_number(val_loss),
                "lr": lr,
                RETRY_COLUMN: len(self.retries),
            }
            self.model.stop_training = True
            return
        if val_loss < self.best_val_loss:
            self.best_val_loss = val_loss
            write_atomically(self.checkpoints / "best_model.h5", _h5_weights(self.model))
        self.rows.append(
            {"epoch": number, "loss": loss, "val_loss": val_loss, "lr": lr, RETRY_COLUMN: len(self.retries)}
        )
        name = f"epoch_{number:04d}"
        staging = self.checkpoints / f".{name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            tf.train.Checkpoint(model=self.model, optimizer=self.model.optimizer).write(str(staging / "ckpt"))
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(error, Exception) and is_disk_full(error, self.checkpoints):
                raise DiskFull(self.checkpoints / name, _weight_bytes(self.model, optimizer=True)) from None
            raise
        shutil.rmtree(self.checkpoints / name, ignore_errors=True)
        staging.rename(self.checkpoints / name)
        write_atomically(self.log_path, _csv(self.rows, self.retries))
        write_atomically(
            self.checkpoints / "state.json",
            json.dumps(
                {
                    "epoch": number,
                    "checkpoint": name,
                    "best_val_loss": self.best_val_loss,
                    "plateau": self.plateau.state(),
                },
                indent=1,
            )
            + "\n",
        )
        for old in self.checkpoints.glob("epoch_*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        self.last_saved_epoch = number


def _nonfinite(loss: float, val_loss: float, model: tf.keras.Model) -> tuple[str, str] | None:
    """``(quantity, value)`` of the first non-finite one of the losses and the weights, or ``None``."""
    for name, value in (("loss", loss), ("val_loss", val_loss)):
        if not math.isfinite(value):
            return name, str(value)
    for variable in model.weights:
        if variable.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(variable))):
            return f"weight {variable.name}", "non-finite"
    return None


def _json_number(value: float) -> float | str:
    """A float as JSON can hold it: finite numbers as they are, ``nan``/``inf`` as text."""
    return value if math.isfinite(value) else str(value)


def _h5_weights(model: tf.keras.Model) -> bytes:
    """The bytes ``model.save_weights(path, save_format="h5")`` writes (the same bytes), made in memory.

    HDF5 crashes the process (a segmentation fault in ``h5py.File.close``)
    when the disk fills while it writes a file; writing the finished bytes
    with Python instead gives a clean ``DiskFull``.
    """
    with h5py.File("best_model.h5", "w", driver="core", backing_store=False) as handle:  # no file is created
        hdf5_format.save_weights_to_hdf5_group(handle, model)
        handle.flush()
        return handle.id.get_file_image()


def _weight_bytes(model: tf.keras.Model, optimizer: bool = False) -> int:
    """Bytes of the model's variables (and the optimizer's): about what a checkpoint of them takes."""
    variables = [*model.weights, *(model.optimizer.variables if optimizer else ())]
    return sum(int(np.prod(variable.shape)) * variable.dtype.size for variable in variables)


@dataclass(frozen=True)
class _BatchShapes:
    """Static shapes of a batch: the losses need to know the number of classes when tracing."""

    batch_size: int
    patch_shape: tuple[int, ...]
    num_channels: int
    num_classes: int
    heads: int  # deep-supervision heads; 0 without

    def signature(self):
        patch = (self.batch_size, *self.patch_shape)
        return (
            tf.TensorSpec((*patch, self.num_channels), tf.float32),
            tf.TensorSpec((*patch, self.num_classes), tf.float32),
        )


def _dataset(batches: tf.keras.utils.Sequence, shapes: _BatchShapes, first_epoch: int | None = None) -> tf.data.Dataset:
    """The batches as a ``tf.data.Dataset`` with static shapes, one pass per epoch.

    Keras reads a ``Sequence`` with every dimension unknown; a dataset keeps
    the batch's shapes. Keras makes a new iterator each epoch; with
    ``first_epoch`` set, each one starts the next epoch of ``batches``
    (``set_epoch``), from ``first_epoch``; without, the batches are read as they are.
    With deep supervision the targets become :func:`downsample_targets`' tuple.
    """
    epochs = itertools.count(first_epoch or 0)

    def one_epoch():
        if first_epoch is not None:
            batches.set_epoch(next(epochs))
        for index in range(len(batches)):
            yield batches[index]

    # PatchBatches tell their own shapes: their targets may carry distance maps, and one array per head.
    signature = batches.output_signature() if hasattr(batches, "output_signature") else shapes.signature()
    dataset = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(batches)))
    if shapes.heads and not isinstance(signature[1], tuple):
        dataset = dataset.map(lambda x, y: (x, downsample_targets(y, shapes.heads)))
    return dataset


def _keras_verbosity() -> int:
    """Keras' progress bar on a terminal, one line per epoch in a log file, nothing with ``-q``."""
    if console.verbosity() == console.QUIET:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _read_state(checkpoints: Path) -> dict | None:
    path = checkpoints / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def _restore(model: tf.keras.Model, checkpoint: Path) -> None:
    """Load model and optimizer state (:func:`fresh_model` created the optimizer's slots)."""
    optimizer = model.optimizer
    tf.train.Checkpoint(model=model, optimizer=optimizer).read(str(checkpoint / "ckpt")).assert_consumed()


def _read_log(path: Path, last_epoch: int) -> list[dict]:
    """Finished epochs of ``log.csv`` up to the checkpointed one (later rows belong to a lost epoch).

    Rows of diverged attempts are left out: ``nonfinite.json`` holds them.
    """
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = [
            {key: (int(value) if key in ("epoch", RETRY_COLUMN) else float(value)) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]
    return [
        {RETRY_COLUMN: 0, **row}
        for row in rows
        if row["epoch"] <= last_epoch and math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])
    ]


def _csv(rows: list[dict], retries: Sequence[dict] = ()) -> str:
    """``log.csv``: the finished epochs; after retries also the diverged attempts and the ``retry`` column."""
    columns = LOG_COLUMNS
    if retries:
        columns = (*LOG_COLUMNS, RETRY_COLUMN)
        attempts = [{key: retry[key] for key in columns} for retry in retries]
        rows = sorted([*rows, *attempts], key=lambda row: (row[RETRY_COLUMN], row["epoch"]))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()
