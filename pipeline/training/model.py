"""The U-Net in 2D or 3D: MIScnn's standard architecture with a float32 softmax head and deep supervision.

The encoder, bottleneck and decoder are MIScnn's own building blocks
(``miscnn.neural_network.architecture.unet.standard``: two 3x3(x3)
convolutions with ReLU and optional batch normalisation per level,
max-pooling down, transposed convolutions up, skip connections by
concatenation; Ronneberger et al. 2015, Cicek et al. 2016), the ``_2D`` or
``_3D`` blocks chosen by the number of spatial dimensions: inputs are
``(B, H, W, C)`` in 2D and ``(B, D, H, W, C)`` in 3D. Only the head is
rebuilt, for two reasons:

* mixed precision: the 1x1(x1) convolution computes in the policy's dtype, but
  the softmax is a separate ``Activation`` layer with ``dtype="float32"``, so
  probabilities (and every loss) stay float32 (TensorFlow mixed-precision guide);
* deep supervision (Lee et al. 2015; nnU-Net, Isensee et al. 2021): optional
  auxiliary softmax heads on the decoder outputs at 1/2, 1/4, ... of the input
  resolution. The model then returns ``[full, half, quarter, ...]``; the
  targets are the one-hot ground truth downsampled by strided nearest
  neighbour (``y[:, ::2, ::2]`` in 2D, ``y[:, ::2, ::2, ::2]`` in 3D, which
  keeps it one-hot), see :func:`downsample_targets`; the loss of output ``k``
  is weighted ``2**-k``, normalised to sum 1 (:func:`deep_supervision_weights`),
  as in nnU-Net.
"""

from __future__ import annotations

import numpy as np

from pipeline.miscnn_compat import miscnn  # noqa: F401  (patched MIScnn, loads TensorFlow)

import tensorflow as tf  # noqa: E402
from miscnn.neural_network.architecture.unet import standard  # noqa: E402

SPATIAL_DIMS = (2, 3)


def build_unet(num_channels: int, num_classes: int, n_filters: int = 32, depth: int = 4,
               batch_normalization: bool = True, batch_norm_momentum: float = 0.99,
               deep_supervision: bool = False, deep_supervision_heads: int = 2,
               spatial_dims: int = 3) -> tf.keras.Model:
    """A U-Net for inputs ``(B, *spatial, num_channels)`` of any size divisible by ``2**depth``.

    Args:
        num_channels: image channels (modalities).
        num_classes: output classes including background (softmax channels).
        n_filters: filters of the first level, doubled at each level down (MIScnn default 32).
        depth: number of down-sampling steps (MIScnn default 4).
        batch_normalization: batch normalisation after each convolution (MIScnn default on).
        batch_norm_momentum: weight of the old value in the moving mean and variance used at
            inference (MIScnn: 0.99, i.e. averaged over ~100 steps). Short trainings need
            less (0.9): statistics still lagging behind the weights at the end of training
            make inference-mode predictions poor although training looked fine.
        deep_supervision: add auxiliary heads; the model then has ``1 + deep_supervision_heads``
            outputs, full resolution first.
        deep_supervision_heads: auxiliary outputs at 1/2, 1/4, ... resolution; must be < depth.
        spatial_dims: 2 for images ``(B, H, W, C)``, 3 for volumes ``(B, D, H, W, C)``;
            :func:`spatial_dims_of` gives it from a patch shape.

    Returns:
        An uncompiled ``tf.keras.Model`` whose outputs are float32 softmax probabilities.
    """
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if deep_supervision and not 0 < deep_supervision_heads < depth:
        raise ValueError(f"deep_supervision_heads must be in [1, {depth - 1}], got {deep_supervision_heads}")
    suffix = f"_{spatial_dims}D"
    contracting_layer = getattr(standard, "contracting_layer" + suffix)
    middle_layer = getattr(standard, "middle_layer" + suffix)
    expanding_layer = getattr(standard, "expanding_layer" + suffix)

    inputs = tf.keras.layers.Input((None,) * spatial_dims + (num_channels,), name="image")
    chain = inputs
    skips = []
    for level in range(depth):
        chain, skip = contracting_layer(chain, n_filters * 2**level, batch_normalization, batch_norm_momentum)
        skips.append(skip)
    chain = middle_layer(chain, n_filters * 2**depth, batch_normalization, batch_norm_momentum)
    decoder_outputs = []  # lowest resolution first
    for level in reversed(range(depth)):
        chain = expanding_layer(chain, n_filters * 2**level, skips[level], batch_normalization,
                                batch_norm_momentum)
        decoder_outputs.append(chain)
    heads = 1 + (deep_supervision_heads if deep_supervision else 0)
    outputs = [
        _softmax_head(decoder_outputs[-1 - k], num_classes, spatial_dims,
                      "probabilities" if k == 0 else f"probabilities_{2**k}")
        for k in range(heads)
    ]
    return tf.keras.Model(inputs, outputs if deep_supervision else outputs[0], name=f"unet{spatial_dims}d")


def spatial_dims_of(patch_shape) -> int:
    """2 for a 2D patch shape ``(H, W)``, 3 for a 3D one ``(D, H, W)``."""
    if len(patch_shape) not in SPATIAL_DIMS:
        raise ValueError(f"a patch shape has 2 or 3 dimensions, got {tuple(patch_shape)}")
    return len(patch_shape)


def _softmax_head(features, num_classes: int, spatial_dims: int, name: str):
    """1x1(x1) convolution to class scores, then a float32 softmax."""
    convolution = tf.keras.layers.Conv2D if spatial_dims == 2 else tf.keras.layers.Conv3D
    logits = convolution(num_classes, 1, name=f"{name}_logits")(features)
    return tf.keras.layers.Activation("softmax", dtype="float32", name=name)(logits)


def deep_supervision_weights(heads: int) -> list[float]:
    """Loss weights ``2**-k`` for outputs ``k = 0..heads``, normalised to sum 1 (nnU-Net)."""
    weights = np.array([2.0**-k for k in range(heads + 1)])
    return list(weights / weights.sum())


def downsample_targets(y, heads: int) -> tuple:
    """One-hot targets for each output: ``y``, then strided nearest neighbour at 1/2, 1/4, ...

    ``y`` is a ``(B, H, W, C)`` or ``(B, D, H, W, C)`` array or tensor whose
    spatial sizes are divisible by ``2**heads``.
    """
    spatial_dims = len(y.shape) - 2
    return tuple(y[(slice(None),) + (slice(None, None, 2**k),) * spatial_dims] for k in range(heads + 1))
