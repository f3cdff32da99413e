"""unifocal's experiment pipeline: data -> preprocessing -> training -> inference -> evaluation.

MIScnn and this project use the Keras 2 API, which TensorFlow >= 2.16 serves
from the ``tf-keras`` package only when ``TF_USE_LEGACY_KERAS=1`` is set
before TensorFlow is first imported.

TensorFlow enables its oneDNN CPU kernels by default only on some Intel
CPUs; elsewhere (e.g. AMD EPYC) 3D convolutions fall back to Eigen, whose
backward pass is ~10x slower. ``TF_ENABLE_ONEDNN_OPTS=1`` turns oneDNN on
for every x86 CPU (it changes nothing on GPUs); set it to 0 to opt out.

TensorFlow's log level is set by the commands (``pipeline.console``: quiet
unless ``-v``).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
