"""Where a loss does what TensorFlow does slowly on a CPU: on the host (NumPy), or in the graph.

Sorting (Lovász-softmax, TopK) and distance transforms (the boundary losses)
are several to a hundred times faster in NumPy / compiled host libraries than
in TensorFlow's CPU kernels. On a GPU, and under XLA, the graph's own ops run
on the device and a host round trip (``tf.numpy_function``) would stall it.
:func:`on_host` decides at trace time; both paths give the same values, which
the tests check.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import tensorflow as tf
from tensorflow.python.ops import control_flow_util  # the XLA-context test Keras itself uses


def in_xla_context() -> bool:
    """True while tracing code that XLA compiles (``jit_compile=True``): no ``numpy_function`` there."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def on_host() -> bool:
    """Compute with NumPy on the host: no GPU is visible and the graph is not XLA-compiled."""
    return not tf.config.list_logical_devices("GPU") and not in_xla_context()


def host_cpus() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def host_threads() -> ThreadPoolExecutor:
    """Threads for independent rows, one per CPU this process may use (the work releases the GIL)."""
    return ThreadPoolExecutor(max_workers=host_cpus(), thread_name_prefix="loss-host")
