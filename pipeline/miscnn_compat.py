"""Every fix MIScnn 1.4.0 needs to run on current TensorFlow, numpy and batchgenerators.

MIScnn is unmaintained. Instead of forking it, the project imports it through
this module, which applies each fix once. Each fix has a test in
``tests/test_miscnn_compat.py`` that fails if the fix is removed.

Import MIScnn as ``from pipeline.miscnn_compat import miscnn``.
"""

from __future__ import annotations

import sys
import types

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)


def _stub_tensorflow_addons() -> None:
    """MIScnn imports ``tensorflow_addons`` at module level for one optional layer.

    tensorflow-addons is end-of-life and has no wheels for TF 2.21, so the
    project drops it (uv override) and registers an empty module instead. Only
    MIScnn's "plain" U-Net with instance normalisation would use it, and that
    architecture raises a clear error if asked for.
    """
    if "tensorflow_addons" in sys.modules:
        return
    stub = types.ModuleType("tensorflow_addons")

    def _missing(*_args, **_kwargs):
        raise ImportError(
            "tensorflow-addons is not installed (no release supports TF 2.21); "
            "MIScnn's instance-normalisation U-Net is unavailable"
        )

    stub.layers = types.SimpleNamespace(InstanceNormalization=_missing)
    sys.modules["tensorflow_addons"] = stub


_stub_tensorflow_addons()

import miscnn  # noqa: E402

__all__ = ["miscnn"]
