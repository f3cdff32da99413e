"""Test-wide settings: quiet, deterministic TensorFlow on the CPU."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as pipeline/__init__.py: fast 3D convolutions on any x86 CPU
