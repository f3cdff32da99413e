"""GPU memory of one training step, counted from the model's layer shapes (no GPU needed).

* parameters: weights, their gradients and Adam's two moments, all float32
  (mixed precision keeps float32 master weights): 16 bytes per parameter.
* activations: every layer output, which backpropagation keeps until the
  backward pass reaches it; in the policy's compute dtype (float16/bfloat16:
  2 bytes, the float32 softmax: 4 bytes).
* estimate: parameters + 2 x activations (at the peak of the backward pass the
  activation gradients need about as much again). cuDNN workspaces and
  allocator fragmentation come on top; TensorFlow reserves most of the GPU
  anyway, so read the figure as "fits / does not fit", not as an exact peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from pipeline.training.distribute import apply_precision_policy

GIB = 1024**3
BYTES_PER_PARAMETER = 4 * 4  # float32 weight, gradient, Adam m and v


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training step needs (see the module docstring for what is counted)."""

    parameters: int
    parameter_bytes: int
    activation_bytes: int

    @property
    def estimate_bytes(self) -> int:
        return self.parameter_bytes + 2 * self.activation_bytes


def training_memory(
    build_model: Callable[[], tf.keras.Model],
    patch_shape: Sequence[int],
    batch_size: int,
    num_channels: int,
    policy: str = "float32",
) -> TrainingMemory:
    """Memory of one training step of ``build_model()`` on ``batch_size`` patches under precision ``policy``.

    The model is built under ``policy`` (its layers' dtypes follow it), then
    rebuilt on a fixed input to get every layer's output shape; the global
    policy is restored afterwards.
    """
    previous = tf.keras.mixed_precision.global_policy().name
    apply_precision_policy(policy)
    try:
        model = build_model()
        sized = tf.keras.models.clone_model(
            model, input_tensors=tf.keras.Input((*patch_shape, num_channels), batch_size=batch_size)
        )
    finally:
        apply_precision_policy(previous)
    activations = 0
    for layer in sized.layers:
        for output in tf.nest.flatten(layer.output):
            activations += int(np.prod(output.shape)) * output.dtype.size
    parameters = sized.count_params()
    return TrainingMemory(
        parameters=parameters, parameter_bytes=parameters * BYTES_PER_PARAMETER, activation_bytes=activations
    )
