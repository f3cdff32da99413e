"""The U-Net in 2D or 3D: MIScnn's architectures with a float32 softmax head and deep supervision.

``architecture`` picks one of MIScnn's U-Net variants
(``miscnn.neural_network.architecture.unet``); the encoder, bottleneck and
decoder are built from that variant's own blocks, ``_2D`` or ``_3D`` by the
number of spatial dimensions: inputs are ``(B, H, W, C)`` in 2D and
``(B, D, H, W, C)`` in 3D.

* ``standard``: two 3x3(x3) convolutions with ReLU and batch normalisation per
  level, max-pooling down, transposed convolutions up, skip connections by
  concatenation (Ronneberger et al. 2015, Cicek et al. 2016);
* ``residual``: the same with a 1x1(x1) shortcut added around each block;
* ``dense``: each convolution's output concatenated with the block's input;
* ``compact``: each block's output concatenated with its input;
* ``attention``, ``attention_residual``: attention gates on the skip
  connections (Oktay et al. 2018), the latter with residual encoder blocks;
* ``multires``: MultiRes blocks and residual skip paths (Ibtehaz and Rahman
  2020), generalised from MIScnn's fixed 32 filters and depth 4 to
  ``n_filters`` and ``depth``;
* ``plain``: nnU-Net's plain U-Net (Isensee et al. 2021): convolution,
  instance normalisation, leaky ReLU (slope 0.1), filters doubling from
  ``n_filters`` up to 320. Pooling is isotropic, so that every level halves
  every axis as the patch-size check and :func:`downsample_targets` assume
  (MIScnn's default pools the first level only in-plane, ``(1, 2, 2)``).

Each builder's layers equal MIScnn's own ``create_model_2D``/``_3D`` of the
same variant up to the head (``tests/test_architectures.py``). ``plain`` and
``multires`` always normalise (instance and batch normalisation, MIScnn's
blocks fix it), so ``batch_normalization`` and ``batch_norm_momentum`` apply
to the others. Only the head is the project's, for two reasons:

* mixed precision: the 1x1(x1) convolution computes in the policy's dtype, but
  the softmax is a separate ``Activation`` layer with ``dtype="float32"``, so
  probabilities (and every loss) stay float32 (TensorFlow mixed-precision guide);
* deep supervision (Lee et al. 2015; nnU-Net, Isensee et al. 2021), for every
  architecture: optional auxiliary softmax heads on the decoder outputs at
  1/2, 1/4, ... of the input resolution. The model then returns
  ``[full, half, quarter, ...]``; the targets are the one-hot ground truth
  downsampled by strided nearest neighbour (``y[:, ::2, ::2]`` in 2D,
  ``y[:, ::2, ::2, ::2]`` in 3D, which keeps it one-hot), see
  :func:`downsample_targets`; the loss of output ``k`` is weighted ``2**-k``,
  normalised to sum 1 (:func:`deep_supervision_weights`), as in nnU-Net.
"""

from __future__ import annotations

import importlib

import numpy as np

from pipeline.config import MULTIRES_MIN_FILTERS
from pipeline.miscnn_compat import miscnn  # noqa: F401  (patched MIScnn, loads TensorFlow)

import tensorflow as tf  # noqa: E402

SPATIAL_DIMS = (2, 3)
PLAIN_MAX_FILTERS = 320  # nnU-Net's cap, MIScnn's plain feature map [30, 60, 120, 240, 320]


def build_unet(
    num_channels: int,
    num_classes: int,
    n_filters: int = 32,
    depth: int = 4,
    batch_normalization: bool = True,
    batch_norm_momentum: float = 0.99,
    deep_supervision: bool = False,
    deep_supervision_heads: int = 2,
    spatial_dims: int = 3,
    architecture: str = "standard",
) -> tf.keras.Model:
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
        architecture: one of :data:`ARCHITECTURES` (MIScnn's U-Net variants).

    Returns:
        An uncompiled ``tf.keras.Model`` whose outputs are float32 softmax probabilities.
    """
    if spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of: {', '.join(ARCHITECTURES)}")
    if deep_supervision and not 0 < deep_supervision_heads < depth:
        raise ValueError(f"deep_supervision_heads must be in [1, {depth - 1}], got {deep_supervision_heads}")
    inputs = tf.keras.layers.Input((None,) * spatial_dims + (num_channels,), name="image")
    decoder_outputs = ARCHITECTURES[architecture](
        inputs, n_filters, depth, batch_normalization, batch_norm_momentum, spatial_dims
    )
    heads = 1 + (deep_supervision_heads if deep_supervision else 0)
    outputs = [
        _softmax_head(
            decoder_outputs[-1 - k], num_classes, spatial_dims, "probabilities" if k == 0 else f"probabilities_{2**k}"
        )
        for k in range(heads)
    ]
    return tf.keras.Model(
        inputs, outputs if deep_supervision else outputs[0], name=f"unet{spatial_dims}d_{architecture}"
    )


def _miscnn_blocks(variant: str):
    """The MIScnn module ``miscnn.neural_network.architecture.unet.<variant>``."""
    return importlib.import_module(f"miscnn.neural_network.architecture.unet.{variant}")


def _layers(spatial_dims: int):
    """Keras' convolution, transposed convolution and max-pooling layers of this dimension."""
    layers = tf.keras.layers
    if spatial_dims == 2:
        return layers.Conv2D, layers.Conv2DTranspose, layers.MaxPooling2D
    return layers.Conv3D, layers.Conv3DTranspose, layers.MaxPooling3D


def _block_unet(variant: str):
    """A backbone from a variant's ``contracting_layer``, ``middle_layer`` and ``expanding_layer`` blocks.

    The loop is MIScnn's ``create_model_2D``/``_3D`` of these variants, without the head.
    Returns the decoder's outputs, lowest resolution first.
    """

    def backbone(inputs, n_filters, depth, batch_normalization, momentum, spatial_dims):
        module = _miscnn_blocks(variant)
        suffix = f"_{spatial_dims}D"
        contracting_layer = getattr(module, "contracting_layer" + suffix)
        middle_layer = getattr(module, "middle_layer" + suffix)
        expanding_layer = getattr(module, "expanding_layer" + suffix)
        chain, skips = inputs, []
        for level in range(depth):
            chain, skip = contracting_layer(chain, n_filters * 2**level, batch_normalization, momentum)
            skips.append(skip)
        chain = middle_layer(chain, n_filters * 2**depth, batch_normalization, momentum)
        decoder_outputs = []
        for level in reversed(range(depth)):
            chain = expanding_layer(chain, n_filters * 2**level, skips[level], batch_normalization, momentum)
            decoder_outputs.append(chain)
        return decoder_outputs

    return backbone


def _plain_unet(inputs, n_filters, depth, _batch_normalization, _momentum, spatial_dims):
    """MIScnn's plain U-Net: per level two (convolution, instance normalisation, leaky ReLU), pooled by 2."""
    plain = _miscnn_blocks("plain")
    conv_layer = getattr(plain, f"conv_layer_{spatial_dims}D")
    settings = plain.Architecture()  # MIScnn's defaults: leaky ReLU 0.1, instance norm eps 1e-5, no dropout
    _, transposed, pooling = _layers(spatial_dims)

    def two_convolutions(chain, filters):
        for _ in range(2):
            chain = conv_layer(
                chain,
                filters,
                settings.conv_layer_activation,
                settings.inst_norm,
                settings.inst_norm_params,
                settings.dropout,
            )
        return chain

    filters = [min(n_filters * 2**level, PLAIN_MAX_FILTERS) for level in range(depth)]
    chain, skips = inputs, []
    for level in range(depth):
        chain = two_convolutions(chain, filters[level])
        skips.append(chain)
        chain = pooling(2)(chain)
    chain = two_convolutions(chain, filters[-1])
    decoder_outputs = []
    for level in reversed(range(depth)):
        chain = transposed(filters[level], 2, strides=2, padding="same")(chain)
        chain = two_convolutions(tf.keras.layers.concatenate([chain, skips[level]], axis=-1), filters[level])
        decoder_outputs.append(chain)
    return decoder_outputs


def _multires_unet(inputs, n_filters, depth, _batch_normalization, _momentum, spatial_dims):
    """MIScnn's MultiRes U-Net: MultiRes blocks, residual paths of length ``depth - level`` on the skips."""
    if n_filters < MULTIRES_MIN_FILTERS:
        raise ValueError(f"the multires architecture needs n_filters >= {MULTIRES_MIN_FILTERS}, got {n_filters}")
    multires = _miscnn_blocks("multiRes")
    block = getattr(multires, f"MultiResBlock_{spatial_dims}D")
    res_path = getattr(multires, f"ResPath_{spatial_dims}D")
    _, transposed, pooling = _layers(spatial_dims)
    chain, skips = inputs, []
    for level in range(depth):
        features = block(n_filters * 2**level, chain)
        chain = pooling(2)(features)
        skips.append(res_path(n_filters * 2**level, depth - level, features))
    chain = block(n_filters * 2**depth, chain)
    decoder_outputs = []
    for level in reversed(range(depth)):
        up = transposed(n_filters * 2**level, 2, strides=2, padding="same")(chain)
        chain = block(n_filters * 2**level, tf.keras.layers.concatenate([up, skips[level]], axis=-1))
        decoder_outputs.append(chain)
    return decoder_outputs


ARCHITECTURES = {
    "standard": _block_unet("standard"),
    "plain": _plain_unet,
    "residual": _block_unet("residual"),
    "multires": _multires_unet,
    "dense": _block_unet("dense"),
    "compact": _block_unet("compact"),
    "attention": _block_unet("attention"),
    "attention_residual": _block_unet("attention_residual"),
}


def spatial_dims_of(patch_shape) -> int:
    """2 for a 2D patch shape ``(H, W)``, 3 for a 3D one ``(D, H, W)``."""
    if len(patch_shape) not in SPATIAL_DIMS:
        raise ValueError(f"a patch shape has 2 or 3 dimensions, got {tuple(patch_shape)}")
    return len(patch_shape)


def _softmax_head(features, num_classes: int, spatial_dims: int, name: str):
    """1x1(x1) convolution to class scores, then a float32 softmax."""
    convolution, _, _ = _layers(spatial_dims)
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
