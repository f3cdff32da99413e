"""The pipeline's user-facing errors and how command-line tools report them."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class UnifocalError(Exception):
    """Base of every error caused by the user's input rather than by a bug."""


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


def exits_cleanly(main: Callable[..., int | None]) -> Callable[..., int]:
    """Turn a command's ``UnifocalError`` into one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except UnifocalError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
