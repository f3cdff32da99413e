"""Where training runs (tf.distribute strategy) and in which precision (Keras mixed precision).

Both are config switches; the runner calls them before it builds the model:

    apply_precision_policy(config.training.precision)   # before the model exists
    strategy = strategy_for(config.training.distribute)
    with strategy.scope():
        model = build_unet(...)        # final softmax with dtype="float32"
        model.compile(optimizer, loss=losses.get(...))
    model.fit(batches, ...)            # batch size = global batch, split across replicas

Multi-GPU (``"mirrored"``): ``model.fit`` splits each global batch evenly
across the replicas, every replica computes its loss as the mean over its own
samples, Keras divides it by the number of replicas
(``losses_utils.scale_loss_for_distribution``) and the gradients are summed
across replicas. Because every loss of ``losses/`` returns one value per sample
(``losses/base.py``), that sum is exactly the global-batch mean, so training is
the same as on one device, provided that

* the global batch size is a multiple of the number of replicas (otherwise the
  replicas hold different numbers of samples and their means are weighed
  equally, not by sample), and
* the model has no layer whose output depends on the other samples of the
  batch: ``BatchNormalization`` computes its statistics per replica (build it
  with ``synchronized=True``, or use instance normalisation, where that
  matters).

Mixed precision: layers compute in float16 (or bfloat16) and keep float32
weights. The model's final softmax is built with ``dtype="float32"`` and
every loss casts its inputs to float32 (``SegmentationLoss.call``), so
probabilities, ``log`` and the Tversky sums stay in float32. Under
``mixed_float16`` tf-keras' ``Model.compile`` wraps the optimizer in a
``LossScaleOptimizer`` with dynamic loss scaling by itself
(``tf_keras/src/engine/training.py``, ``Model._get_optimizer``, which checks
the *model's* dtype policy: hence the policy must be set before the model is
built). bfloat16 has float32's exponent range and needs no loss scaling.

References: TensorFlow guides "Distributed training with Keras" and "Mixed
precision"; Micikevicius et al., "Mixed Precision Training", ICLR 2018.
"""

from __future__ import annotations

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import tensorflow as tf  # noqa: E402

STRATEGIES = ("default", "mirrored")
PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def strategy_for(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name``.

    Args:
        name: ``"default"``: TensorFlow's default strategy (one device: the
            first GPU if there is one, else the CPU). ``"mirrored"``:
            synchronous data parallelism with ``MirroredStrategy`` over every
            visible GPU (select them with ``CUDA_VISIBLE_DEVICES``, as Slurm
            does for ``--gres=gpu:N``); on a machine without GPUs, over the
            visible CPU devices, which are one unless the CPU was split into
            logical devices with ``tf.config.set_logical_device_configuration``
            (how the tests check multi-replica training on a CPU).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    raise ValueError(f"unknown distribution strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")


def apply_precision_policy(name: str) -> tf.keras.mixed_precision.Policy:
    """Make ``name`` the global Keras dtype policy and return it.

    Affects layers created afterwards, so call it before building the model.

    Args:
        name: ``"float32"`` (full precision, the default everywhere),
            ``"mixed_float16"`` (float16 compute with loss scaling, for GPUs with
            tensor cores, compute capability >= 7.0) or ``"mixed_bfloat16"``
            (bfloat16 compute, for Ampere and newer GPUs and TPUs).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if name not in PRECISION_POLICIES:
        raise ValueError(f"unknown precision policy {name!r}; choose one of: {', '.join(PRECISION_POLICIES)}")
    tf.keras.mixed_precision.set_global_policy(name)
    return tf.keras.mixed_precision.global_policy()
