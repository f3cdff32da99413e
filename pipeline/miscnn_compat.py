"""Every fix MIScnn 1.4.0 needs to run on current TensorFlow, numpy and batchgenerators.

MIScnn is unmaintained. Instead of forking it, the project imports it through
this module, which applies each fix once, in place, so MIScnn's own internal
uses are fixed too. Each fix has a test in ``tests/test_miscnn_compat.py``
that fails if the fix is removed.

Import MIScnn as ``from pipeline.miscnn_compat import miscnn``.

Only code the project runs is fixed: the U-Net variants
(``pipeline.training.model``), ``Data_IO`` with the I/O interfaces
(``pipeline.data.interface``), and ``Resampling``, which
``scripts/bench_preprocessing.py`` runs to measure what replacing it saves.
MIScnn's ``Preprocessor``, ``Neural_Network`` and cross-validation are not
used (docs/development.md, "What MIScnn does here"), so their bugs are left alone.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import types

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)


def _instance_normalization(epsilon: float = 1e-3, **kwargs):
    """``tfa.layers.InstanceNormalization``: a ``GroupNormalization`` with one group per channel."""
    import tensorflow as tf

    return tf.keras.layers.GroupNormalization(groups=-1, epsilon=epsilon, **kwargs)


def _instance_normalization_from_tf_keras() -> None:
    """MIScnn imports ``tensorflow_addons`` at module level for the plain U-Net's
    instance normalisation.

    tensorflow-addons is end-of-life and has no wheels for TF 2.21, so the
    project drops it (uv override) and registers a module in its place whose
    ``layers.InstanceNormalization`` is tf-keras' ``GroupNormalization(groups=-1)``:
    the same normalisation (per sample and channel over the spatial axes) and
    the same per-channel scale and offset.
    """
    if "tensorflow_addons" in sys.modules:
        return
    replacement = types.ModuleType("tensorflow_addons")
    replacement.layers = types.SimpleNamespace(InstanceNormalization=_instance_normalization)
    sys.modules["tensorflow_addons"] = replacement


_instance_normalization_from_tf_keras()

import miscnn  # noqa: E402

# Submodules the project reaches as attributes (``miscnn.data_loading.sample.Sample``).
import miscnn.data_loading.interfaces  # noqa: E402
import miscnn.data_loading.interfaces.abstract_io  # noqa: E402
import miscnn.data_loading.sample  # noqa: E402
import miscnn.processing.subfunctions.abstract_subfunction  # noqa: E402
import tensorflow as tf  # noqa: E402  (MIScnn has loaded it)


@tf.keras.utils.register_keras_serializable(package="miscnn_compat")
class RepeatElements(tf.keras.layers.Layer):
    """``keras.backend.repeat_elements`` as a layer that saves as configuration."""

    def __init__(self, repeats: int, axis: int, **kwargs):
        super().__init__(**kwargs)
        self.repeats = repeats
        self.axis = axis

    def call(self, inputs):
        return tf.keras.backend.repeat_elements(inputs, self.repeats, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "repeats": self.repeats, "axis": self.axis}


def _without(function, *removed):
    """Wrap ``function`` so that it ignores the keyword arguments ``removed``."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        for name in removed:
            kwargs.pop(name, None)
        return function(*args, **kwargs)

    return wrapper


def _fix_resampling_keywords() -> None:
    """MIScnn's Resampling passes ``cval_seg=0`` to ``augment_resize`` and
    ``cval=0`` to ``resize_segmentation``; batchgenerators 0.23 removed both
    keywords (0 was their default), so every call raised ``TypeError``.
    Dropping them keeps MIScnn's behaviour.
    """
    module = importlib.import_module("miscnn.processing.subfunctions.resampling")
    module.augment_resize = _without(module.augment_resize, "cval_seg")
    module.resize_segmentation = _without(module.resize_segmentation, "cval")


def _fix_attention_repeat() -> None:
    """The attention U-Nets repeat the one-channel attention map over the
    skip connection's channels in a ``Lambda`` around a Python ``lambda``.
    Keras 3-style saving (``model.save("m.keras")``) refuses to load such a
    layer unless told to run arbitrary code (``safe_mode=False``); HDF5 saving
    stores its bytecode, which another Python version cannot read. The same
    repeat as a registered layer saves as configuration.
    """
    for name in ("attention", "attention_residual"):
        module = importlib.import_module(f"miscnn.neural_network.architecture.unet.{name}")
        module.repeat_elem = lambda tensor, rep, axs=3: RepeatElements(rep, axs)(tensor)


def _fix_attention_residual_shortcut() -> None:
    """MIScnn's 3D attention-residual encoder block takes its 1x1x1 shortcut
    from the block's last convolution instead of the block's input, so the
    "residual" adds a projection of that convolution to itself and no path
    skips the block. The 2D block, and residual learning (He et al. 2016),
    take the input; so does this one.
    """
    module = importlib.import_module("miscnn.neural_network.architecture.unet.attention_residual")
    layers = tf.keras.layers

    def contracting_layer_3D(input, neurons, ba_norm, ba_norm_momentum):  # noqa: A002 (MIScnn's signature)
        conv = input
        for _ in range(2):
            conv = layers.Conv3D(filters=neurons, kernel_size=3, activation="relu", padding="same")(conv)
            if ba_norm:
                conv = layers.BatchNormalization(momentum=ba_norm_momentum)(conv)
        shortcut = layers.Conv3D(filters=neurons, kernel_size=1, padding="same")(input)
        if ba_norm:
            shortcut = layers.BatchNormalization(momentum=ba_norm_momentum)(shortcut)
        res_path = layers.Activation("relu")(layers.add([shortcut, conv]))
        return layers.MaxPooling3D(pool_size=2)(res_path), res_path

    module.contracting_layer_3D = contracting_layer_3D


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


_fix_resampling_keywords()
_fix_attention_repeat()
_fix_attention_residual_shortcut()
_fix_nifti_interface_spacing()

__all__ = ["miscnn"]
