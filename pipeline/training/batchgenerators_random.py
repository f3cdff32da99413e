"""batchgenerators' random draws, from generators of the calling thread instead of the global ones.

batchgenerators' transforms call ``np.random.uniform`` and friends (NumPy's
single global ``RandomState``) and, for the noise variance, Python's
``random.uniform``. Seeding and using those from several sampling threads
needs a lock, which serialised the intensity transforms (about a tenth of an
augmented patch's time, so 2 threads could reach 1.8x at best). Instead, the
``np`` and ``random`` names of the batchgenerators modules that draw are
replaced by proxies: NumPy and ``random`` themselves, except that
``np.random`` is the ``RandomState`` and ``random``'s functions are those of
the ``random.Random`` the calling thread set with :func:`thread_random_state`
(the global ones otherwise, so other users of batchgenerators are
unaffected). ``RandomState(seed)`` and ``Random(seed)`` draw exactly what the
global generators draw after ``np.random.seed(seed)`` and ``random.seed(seed)``,
so the patches are the same as under the lock, and each thread's state is its own.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import threading
from typing import Iterator

import numpy as np

# Every batchgenerators module whose functions draw through ``np.random``
# for the transforms of pipeline.training.augmentation.
_DRAWING_MODULES = (
    "batchgenerators.transforms.color_transforms",
    "batchgenerators.transforms.noise_transforms",
    "batchgenerators.transforms.spatial_transforms",
    "batchgenerators.augmentations.color_augmentations",
    "batchgenerators.augmentations.noise_augmentations",
    "batchgenerators.augmentations.spatial_transformations",
)

# ... and those that draw through Python's ``random``.
_PYTHON_RANDOM_MODULES = (
    "batchgenerators.augmentations.noise_augmentations",
    "batchgenerators.augmentations.utils",
)

_local = threading.local()


class _NumpyWithThreadRandom:
    """The ``numpy`` module, with ``random`` resolved per thread."""

    def __getattr__(self, name):
        if name == "random":
            return getattr(_local, "state", None) or np.random
        return getattr(np, name)


class _RandomOfThread:
    """The ``random`` module, its functions bound to the thread's ``random.Random``."""

    def __getattr__(self, name):
        return getattr(getattr(_local, "python_state", None) or random, name)


def install() -> None:
    """Point the drawing batchgenerators modules at the proxies (idempotent)."""
    for names, attribute, original, proxy in (
        (_DRAWING_MODULES, "np", np, _NumpyWithThreadRandom),
        (_PYTHON_RANDOM_MODULES, "random", random, _RandomOfThread),
    ):
        for name in names:
            module = importlib.import_module(name)
            current = getattr(module, attribute)
            if current is original:
                setattr(module, attribute, proxy())
            elif not isinstance(current, proxy):  # another batchgenerators release: fail loudly, not racily
                raise RuntimeError(f"{name}: expected {attribute!r} to be {original.__name__}, found {current!r}")


@contextlib.contextmanager
def thread_random_state(seed: int) -> Iterator[None]:
    """batchgenerators draws from ``RandomState(seed)`` and ``Random(seed)`` in this thread while the block runs."""
    previous = getattr(_local, "state", None), getattr(_local, "python_state", None)
    _local.state, _local.python_state = np.random.RandomState(seed), random.Random(seed)
    try:
        yield
    finally:
        _local.state, _local.python_state = previous
