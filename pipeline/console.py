"""What every command shares on the console: -v/-q/--version, one logging setup, quiet TensorFlow.

    parser = argparse.ArgumentParser(prog="my-command", ...)
    console.add_arguments(parser)              # -v/--verbose, -q/--quiet, --version
    arguments = parser.parse_args(argv)
    console.configure(arguments)               # before anything imports TensorFlow
    logger.info("...")                         # logger = logging.getLogger(__name__)
    for case in console.progress(cases, len(cases), "predict", unit="case"): ...

Messages go through ``logging`` to stderr (``-q``: warnings and errors only;
``-v``: debug messages and TensorFlow's own log); stdout is kept for
machine-readable output (``--print-run-dir``, tables, ``--json``).

TensorFlow prints C++ log lines while it loads (oneDNN, the CUDA stub, cuInit)
through absl before its log level applies, twice per process. Unless ``-v``,
:func:`quiet_tensorflow` sets ``TF_CPP_MIN_LOG_LEVEL=3`` and discards stderr
while the ``tensorflow`` package is imported (replayed if the import fails).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from typing import Iterable, Sequence, TypeVar

T = TypeVar("T")

QUIET, NORMAL, VERBOSE = -1, 0, 1

_verbosity = NORMAL


def version() -> str:
    """The installed ``unifocal`` version."""
    from importlib.metadata import PackageNotFoundError, version as package_version

    try:
        return package_version("unifocal")
    except PackageNotFoundError:
        return "unknown"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``-v/--verbose``, ``-q/--quiet`` and ``--version`` to a command's parser."""
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=VERBOSE,
        default=NORMAL,
        help="debug messages and TensorFlow's own log",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=QUIET,
        help="warnings and errors only, no progress bars",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s (unifocal) {version()}")
    return parser


def configure(arguments_or_verbosity) -> int:
    """Set up logging for a command and, unless verbose, quiet TensorFlow; returns the verbosity."""
    global _verbosity
    verbosity = _verbosity = getattr(arguments_or_verbosity, "verbosity", arguments_or_verbosity)
    level = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}[verbosity]
    handler = _ProgressAwareHandler()
    handler.setFormatter(
        _PlainFormatter()
        if verbosity < VERBOSE
        else logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ProgressAwareHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("absl", "tensorflow", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity >= VERBOSE else logging.ERROR)
    if verbosity < VERBOSE:
        quiet_tensorflow()
    return verbosity


def progress(
    iterable: Iterable[T], total: int | None = None, description: str = "", unit: str = "it", leave: bool = True
) -> Iterable[T]:
    """``iterable`` with a tqdm progress bar on stderr when it is a terminal and the command is not ``-q``.

    In a log file (Slurm, CI) no bar is drawn: bars there are unreadable, and
    the commands log a line per finished step instead.
    """
    if not progress_bars_enabled():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=description, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True)


def verbosity() -> int:
    """The command's verbosity: QUIET, NORMAL or VERBOSE (NORMAL until :func:`configure`)."""
    return _verbosity


def bar(total: int, description: str = "", unit: str = "it", leave: bool = False):
    """A progress bar to ``update()`` by hand (a context manager); does nothing where :func:`progress` draws none."""
    if not progress_bars_enabled():
        return contextlib.nullcontext(_NoBar())
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, leave=leave, file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass


def progress_bars_enabled() -> bool:
    """Whether :func:`progress` draws bars: stderr is a terminal and the command is not ``-q``."""
    return _verbosity > QUIET and sys.stderr.isatty()


def duration(seconds: float) -> str:
    """``42 s``, ``13 min``, ``2 h 05 min``: a rounded span for people."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


class _PlainFormatter(logging.Formatter):
    """The message alone; warnings and errors say so (``warning: ...``) unless they name their kind."""

    def format(self, record):
        message = super().format(record)
        if record.levelno >= logging.WARNING and not message.startswith(("notice:", "warning:", "error:")):
            return f"{record.levelname.lower()}: {message}"
        return message


class _ProgressAwareHandler(logging.StreamHandler):
    """Logs to stderr; while a progress bar is drawn, above it instead of through it."""

    def __init__(self):
        super().__init__(sys.stderr)

    def emit(self, record):
        self.stream = sys.stderr  # the current one (tests and tqdm replace it)
        tqdm = sys.modules.get("tqdm")
        if tqdm is None or not getattr(tqdm.tqdm, "_instances", None):
            return super().emit(record)
        try:
            tqdm.tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)


class lazy_module:  # noqa: N801  (used like a module)
    """A module imported on first attribute access: ``pd = lazy_module("pandas")``.

    Lets a command's module be imported, and its parser built, without
    loading what only the work needs (pandas, SciPy, matplotlib: seconds), so
    that ``--help`` answers at once.
    """

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        module = importlib.import_module(self._name)
        self.__dict__.update(module.__dict__)  # later lookups skip __getattr__
        return getattr(module, attribute)

    def __repr__(self):
        return f"<lazy module {self._name!r}>"


def quiet_unless_verbose(argv: Sequence[str] | None = None) -> None:
    """Quiet TensorFlow now unless ``argv`` (default ``sys.argv[1:]``) asks for ``-v``.

    For scripts that import TensorFlow before they parse their arguments (the
    benchmarks): call it before that import, then ``add_arguments`` and
    ``configure`` as a command does. ``--verb`` and longer prefixes of
    ``--verbose`` count, as argparse takes them; nothing after ``--`` does.
    """
    for argument in sys.argv[1:] if argv is None else argv:
        if argument == "--":
            break
        if argument == "-v" or (len(argument) >= 6 and "--verbose".startswith(argument)):
            return
    quiet_tensorflow()


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up log; call before TensorFlow is imported (no effect after)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, then runs its import with stderr (file descriptor 2) discarded."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self.loader.exec_module(module)
            except BaseException:
                os.dup2(saved, 2)
                captured.seek(0)
                sys.stderr.write(captured.read().decode(errors="replace"))
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
