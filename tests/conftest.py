"""Test-wide settings: quiet, deterministic TensorFlow on the CPU; ``gpu`` tests skipped without a GPU.

Tests run in the repository root whatever folder pytest was started from, so
that shipped files named relative to it (``configs/demo_dice.yaml``,
``scripts/...``) are found, and no test silently finds nothing.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as pipeline/__init__.py: fast 3D convolutions on any x86 CPU


@pytest.fixture(autouse=True, scope="session")
def _in_the_repository_root():
    previous = os.getcwd()
    os.chdir(ROOT)
    yield
    os.chdir(previous)


def pytest_collection_modifyitems(config, items):
    """Skip the ``gpu``-marked tests, with the reason, when TensorFlow sees no GPU."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU: TensorFlow sees none (run scripts/gpu_check.sh on a GPU node)")
    for item in gpu_tests:
        item.add_marker(skip)
