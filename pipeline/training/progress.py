"""Where a run is and how long it has left: epoch times across folds, logged after every epoch.

Keras prints its own line per epoch (losses, seconds); :class:`EpochProgress`
adds one saying which fold and epoch that was and estimating the time left
for the run's training, from the median of the recent epochs' durations (the
first epoch of a fold also traces the model, so a median, not a mean).
"""

from __future__ import annotations

import logging
import statistics
import sys
import time

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
import tensorflow as tf  # noqa: E402

from pipeline.console import duration  # noqa: E402

logger = logging.getLogger(__name__)

#: Epoch durations the estimate looks back on.
RECENT_EPOCHS = 10


class EpochClock:
    """Counts down the epochs a run has left and times those done.

    Args:
        epochs_left: epochs still to train in the run (every fold to run, resumed ones in full;
            :meth:`skip` takes their finished epochs off).
    """

    def __init__(self, epochs_left: int):
        self.epochs_left = epochs_left
        self.durations: list[float] = []

    def skip(self, epochs: int) -> None:
        """Epochs finished before this process started (a resumed fold)."""
        self.epochs_left = max(0, self.epochs_left - epochs)

    def record(self, seconds: float) -> None:
        self.durations.append(seconds)
        self.epochs_left = max(0, self.epochs_left - 1)

    def seconds_left(self) -> float | None:
        """Estimated training time left, or None before the first epoch is done."""
        if not self.durations:
            return None
        return statistics.median(self.durations[-RECENT_EPOCHS:]) * self.epochs_left


class EpochProgress(tf.keras.callbacks.Callback):
    """Logs ``fold 2/5, epoch 7/200 (41 s); training left: ~3 h 10 min (460 epochs)`` after each epoch.

    The line is logged when the next epoch (or training) begins, after Keras
    has finished its own line for the epoch, so that the two never interleave.
    """

    def __init__(self, clock: EpochClock, fold_label: str, epochs: int):
        super().__init__()
        self.clock = clock
        self.fold_label = fold_label
        self.epochs = epochs
        self._started = None
        self._first = True
        self._pending: str | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._emit()
        if self._first:
            self.clock.skip(epoch)  # a resumed fold starts after its checkpointed epochs
            self._first = False
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._started
        self.clock.record(seconds)
        left = self.clock.epochs_left
        self._pending = (
            f"{self.fold_label}, epoch {epoch + 1}/{self.epochs} ({duration(seconds)}); training left: "
            f"~{duration(self.clock.seconds_left())} ({left} epoch{'' if left == 1 else 's'})"
        )

    def on_train_end(self, logs=None):
        self._emit()

    def _emit(self):
        if self._pending is not None:
            sys.stdout.flush()
            logger.info(self._pending)
            self._pending = None
