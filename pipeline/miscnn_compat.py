"""Every fix MIScnn 1.4.0 needs to run on current TensorFlow, numpy and batchgenerators.

MIScnn is unmaintained. Instead of forking it, the project imports it through
this module, which applies each fix once, in place, so MIScnn's own internal
uses are fixed too. Each fix has a test in ``tests/test_miscnn_compat.py``
that fails if the fix is removed.

Import MIScnn as ``from pipeline.miscnn_compat import miscnn``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import os
import random
import sys
import threading
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
# Submodules the project reaches as attributes (``miscnn.data_loading.sample.Sample``).
import miscnn.data_loading.interfaces  # noqa: E402
import miscnn.data_loading.interfaces.abstract_io  # noqa: E402
import miscnn.data_loading.sample  # noqa: E402
import miscnn.processing.subfunctions.abstract_subfunction  # noqa: E402


def _without(function, *removed):
    """Wrap ``function`` so that it ignores the keyword arguments ``removed``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for name in removed:
            kwargs.pop(name, None)
        return function(*args, **kwargs)

    return wrapper


def _fix_resize_keywords() -> None:
    """MIScnn's Resampling, Resize and TransformHU pass ``cval_seg=0`` to
    ``augment_resize`` and ``cval=0`` to ``resize_segmentation``; batchgenerators
    0.23 removed both keywords (0 was their default), so every call raised
    ``TypeError``. Dropping them keeps MIScnn's behaviour.
    """
    for name in ("resampling", "resize", "transform_HU"):
        module = importlib.import_module(f"miscnn.processing.subfunctions.{name}")
        module.augment_resize = _without(module.augment_resize, "cval_seg")
        module.resize_segmentation = _without(module.resize_segmentation, "cval")


def _fix_adam_learning_rate() -> None:
    """MIScnn compiles with ``Adam(lr=...)``. Keras >= 2.11 logs a warning and
    ignores ``lr``, so every model trained at Adam's default 1e-3 whatever
    ``learning_rate`` was given. Pass it on as ``learning_rate``.
    """
    for name in ("miscnn.neural_network.model", "miscnn.evaluation.cross_validation"):
        module = importlib.import_module(name)
        adam = module.Adam

        def adam_honouring_lr(*args, _adam=adam, lr=None, **kwargs):
            if lr is not None:
                kwargs.setdefault("learning_rate", lr)
            return _adam(*args, **kwargs)

        module.Adam = adam_honouring_lr


def _fix_shared_class_state() -> None:
    """``Preprocessor`` keeps its patch queue, prediction cache and lock, and
    ``Data_IO`` its batch-file seed, in class attributes: every instance shares
    them, so two preprocessors mix each other's patches and two ``Data_IO``
    objects overwrite each other's batch files. ``Preprocessor``'s default
    ``data_aug`` is also one object for all, which patch-wise cropping mutates
    (``cropping = True``). Give each instance its own.
    """
    preprocessor_init = miscnn.Preprocessor.__init__
    shared_augmentation = inspect.signature(preprocessor_init).parameters["data_aug"].default

    @functools.wraps(preprocessor_init)
    def preprocessor_with_own_state(self, *args, **kwargs):
        preprocessor_init(self, *args, **kwargs)
        if self.data_augmentation is shared_augmentation:
            self.data_augmentation = copy.copy(shared_augmentation)
        self.img_queue = []
        self.cache = {}
        self.thread_lock = threading.Lock()

    miscnn.Preprocessor.__init__ = preprocessor_with_own_state

    data_io_init = miscnn.Data_IO.__init__

    @functools.wraps(data_io_init)
    def data_io_with_own_seed(self, *args, **kwargs):
        data_io_init(self, *args, **kwargs)
        self.seed = random.randint(0, 99999999)

    miscnn.Data_IO.__init__ = data_io_with_own_seed


def _fix_nifti_interface_spacing() -> None:
    """``NIFTI_interface.load_image`` guesses the voxel spacing from the affine's
    diagonal, or its anti-diagonal when the diagonal has exactly one non-zero
    entry. For an oblique affine (a tilted MRI acquisition) it returns
    cosine-shrunk values, for some axis permutations zeros, and where neither
    guess applies it raises ``UnboundLocalError``. The spacing is the header's
    zooms, in array-axis order; the volume is read as float32 (MIScnn: float64,
    twice the memory, and the pipeline casts to float32 anyway).
    """
    import nibabel
    import numpy

    interface = miscnn.data_loading.interfaces.nifti_io.NIFTI_interface

    @functools.wraps(interface.load_image)
    def load_image_with_header_spacing(self, index):
        image_path = os.path.join(self.data_directory, index)
        if not os.path.exists(image_path):
            raise ValueError(f'Image could not be found "{image_path}"')
        volume = nibabel.load(os.path.join(image_path, "imaging.nii.gz"))
        spacing = numpy.array(volume.header.get_zooms()[:3], dtype=numpy.float64)
        return volume.get_fdata(dtype=numpy.float32), {"type": "nifti", "affine": volume.affine, "spacing": spacing}

    interface.load_image = load_image_with_header_spacing


_fix_resize_keywords()
_fix_adam_learning_rate()
_fix_shared_class_state()
_fix_nifti_interface_spacing()

__all__ = ["miscnn"]
