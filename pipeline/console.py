"""What every command shares on the console: -v/-q/--version, one logging setup, quiet TensorFlow.

    parser = argparse.ArgumentParser(prog="my-command", ...)
    console.add_arguments(parser)              # -v/--verbose, -q/--quiet, --version
    arguments = parser.parse_args(argv)
    console.configure(arguments)               # before anything imports TensorFlow

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
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile

QUIET, NORMAL, VERBOSE = -1, 0, 1


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
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=VERBOSE, default=NORMAL,
                          help="debug messages and TensorFlow's own log")
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=QUIET,
                          help="warnings and errors only, no progress bars")
    parser.add_argument("--version", action="version", version=f"%(prog)s (unifocal) {version()}")
    return parser


def configure(arguments_or_verbosity) -> int:
    """Set up logging for a command and, unless verbose, quiet TensorFlow; returns the verbosity."""
    verbosity = getattr(arguments_or_verbosity, "verbosity", arguments_or_verbosity)
    level = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}[verbosity]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbosity < VERBOSE
                                           else "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_unifocal", False)]:
        root.removeHandler(old)
    handler._unifocal = True
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("absl", "tensorflow", "matplotlib", "h5py"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbosity >= VERBOSE else logging.ERROR)
    if verbosity < VERBOSE:
        quiet_tensorflow()
    return verbosity


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
