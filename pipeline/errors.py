"""The pipeline's user-facing errors, the exit codes of every command, and how commands report them.

Exit codes (one table, also in docs/gpu-slurm-faults.md, "Exit codes and faults"; sysexits-style where one fits):

====  =================  ===================================================  ===============================
code  name               meaning                                              Slurm (train_array.sbatch)
====  =================  ===================================================  ===============================
0     OK                 finished                                             done
1     (Python)           a bug: a traceback; please report it                 fail
2     BAD_INPUT          bad config key, file or argument; nothing written    fail: fix the input
65    DIVERGED           the loss or the weights became NaN or infinite       fail (alert): change the config
71    OUT_OF_MEMORY      GPU or host memory ran out                           fail (alert): lower the keys named
73    DISK_FULL          no space (or quota) left while writing a file        requeue held: free space, release
74    DATA_VANISHED      the data set's files disappeared mid-run             requeue held: remount, release
75    REQUEUE            stopped by SIGTERM/SIGUSR1 (preemption, time limit)  requeue
130   INTERRUPTED        Ctrl-C                                               fail
====  =================  ===================================================  ===============================

Every one of them leaves the run folder resumable: files are written
atomically, so what exists is complete, and a rerun continues where the run
stopped (a diverged fold under ``training.on_nonfinite: stop`` diverges again
until its config changes).
"""

from __future__ import annotations

import errno
import functools
import shutil
import sys
from pathlib import Path
from typing import Callable

BAD_INPUT_EXIT_CODE = 2
DIVERGED_EXIT_CODE = 65  # EX_DATAERR: the numbers went bad
OUT_OF_MEMORY_EXIT_CODE = 71  # EX_OSERR: the system could not provide a resource
DISK_FULL_EXIT_CODE = 73  # EX_CANTCREAT: an output file could not be written
DATA_VANISHED_EXIT_CODE = 74  # EX_IOERR: input that was there could no longer be read
REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "run me again" (pipeline.training.preemption)
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT

#: errno values of a full disk: no space, and a user's quota exhausted.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: What the C libraries (HDF5, TensorFlow) put in their messages instead of an errno.
DISK_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


class UnifocalError(Exception):
    """Base of every error a command reports in one line; its class decides the exit code.

    The base and :class:`DataError`, :class:`ConfigError` are the user's input
    (exit 2); the subclasses below are faults of the run's environment.
    """

    exit_code = BAD_INPUT_EXIT_CODE


class DataError(UnifocalError):
    """A data set file is missing, unreadable or inconsistent.

    The message names the file and the problem, on one line.
    """

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(UnifocalError):
    """An experiment configuration is invalid; the message names the key path."""


class TrainingDiverged(UnifocalError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is kept."""

    exit_code = DIVERGED_EXIT_CODE


class OutOfMemory(UnifocalError):
    """The GPU or the host ran out of memory; the message names the sizes and the keys to lower."""

    exit_code = OUT_OF_MEMORY_EXIT_CODE


class DiskFull(UnifocalError):
    """A write found no space left; no partial file stays under ``path``.

    Args:
        path: the file (or folder) being written.
        needed_bytes: about how much the write needed (``None``: unknown).
    """

    exit_code = DISK_FULL_EXIT_CODE

    def __init__(self, path, needed_bytes: int | None = None):
        self.path = Path(path)
        self.needed_bytes = needed_bytes
        needed = "" if needed_bytes is None else f"needs about {human_bytes(needed_bytes)}, "
        super().__init__(
            f"{self.path}: disk full ({needed}{human_bytes(free_bytes(self.path))} free there); "
            "nothing partial was kept: free space and rerun the same command to resume"
        )


class DataVanished(UnifocalError):
    """Data that passed the checks at the start disappeared mid-run (an unmounted share, a moved folder)."""

    exit_code = DATA_VANISHED_EXIT_CODE


#: Free bytes below which a write's ``OSError`` without an errno counts as a full disk.
NEARLY_FULL_BYTES = 1024**2


def is_disk_full(error: BaseException, folder=None) -> bool:
    """Whether ``error`` (an ``OSError``, or a library's error wrapping one) says the disk or quota is full.

    Some writers lose the errno (NumPy's ``tofile``: "60500 requested and 4064
    written"); given the ``folder`` written to, such an ``OSError`` counts when
    less than :data:`NEARLY_FULL_BYTES` are free there at that moment.
    """
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    if any(message in str(error) for message in DISK_FULL_MESSAGES):
        return True
    return (
        isinstance(error, OSError)
        and error.errno is None
        and folder is not None
        and free_bytes(folder) < NEARLY_FULL_BYTES
    )


def is_resource_exhausted(error: BaseException) -> bool:
    """TensorFlow's out-of-memory error, or a ``MemoryError`` it passed on from a data thread (checked by name:
    this module does not import TensorFlow)."""
    if any(cls.__name__ == "ResourceExhaustedError" for cls in type(error).__mro__):
        return True
    return type(error).__module__.startswith("tensorflow") and "MemoryError" in str(error)


def free_bytes(path) -> int:
    """Free space on the file system of ``path`` (its nearest existing ancestor); 0 if unknown."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free
        except OSError:
            continue
    return 0


def human_bytes(count: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def exits_cleanly(main: Callable[..., int | None]) -> Callable[..., int]:
    """Turn a command's ``UnifocalError`` into one line on stderr and its exit code (see the module's table).

    A full disk or exhausted memory that no stage named more precisely gets
    its exit code too, with the error's own text.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except UnifocalError as error:
            _fail(str(error), error.exit_code)
        except MemoryError:
            _fail(
                "out of host memory; ask for more memory (Slurm --mem) or make the inputs smaller",
                OUT_OF_MEMORY_EXIT_CODE,
            )
        except Exception as error:
            if is_disk_full(error):
                _fail(str(DiskFull(getattr(error, "filename", None) or ".")), DISK_FULL_EXIT_CODE)
            if is_resource_exhausted(error):
                _fail(
                    f"out of GPU memory ({str(error).splitlines()[0] if str(error) else 'OOM'}); lower the batch "
                    "size (--batch-size, inference.batch_size, sampling.batch_size) or the patch",
                    OUT_OF_MEMORY_EXIT_CODE,
                )
            raise
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT_CODE)

    return wrapper


def _fail(message: str, code: int):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)
