"""unifocal's experiment pipeline: data -> preprocessing -> training -> inference -> evaluation.

MIScnn and this project use the Keras 2 API, which TensorFlow >= 2.16 serves
from the ``tf-keras`` package only when ``TF_USE_LEGACY_KERAS=1`` is set
before TensorFlow is first imported.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
