#!/usr/bin/env bash
# The GPU check, one command on a GPU node (at most 10 minutes):
#
#   scripts/gpu_check.sh [--steps N] [--warmup N] [--pipeline-batches N]
#
# 1. the GPU's name, memory and driver (nvidia-smi), if there is one;
# 2. the gpu-marked tests (tests/test_gpu.py: mixed precision and XLA with fed
#    distance maps, MirroredStrategy over every GPU, inference batch size auto,
#    sorting on the device); pytest says why they are skipped on a machine
#    without a GPU;
# 3. scripts/gpu_check.py: seconds per epoch at the papers' KiTS19 and BraTS20
#    settings in float32 and mixed_float16, peak GPU memory next to the
#    estimate, the data pipeline's batches/s next to the GPU's steps/s,
#    MirroredStrategy, sliding-window prediction per KiTS19-sized case.
#    Without a GPU the GPU parts print why they are skipped; the rest runs;
# 4. scripts/bench_losses.py: every loss on the paper's KiTS19 batch as a
#    multiple of the floor, on the device (sorts and distance transforms in
#    TensorFlow ops there; on a CPU-only machine on the host).
#
# The environment needs TensorFlow's CUDA build: `uv sync --extra gpu` (see docs/gpu-slurm-faults.md).
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
status=0

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || status=1
else
    echo "nvidia-smi not found: no NVIDIA driver on this machine"
fi

echo "== gpu-marked tests"
timeout 150 "$python" -m pytest -m gpu -q -rs -p no:cacheprovider tests/test_gpu.py || status=1

echo "== figures"
timeout 360 "$python" scripts/gpu_check.py "$@" || status=1

echo "== losses"
if "$python" -c "import sys, tensorflow as tf; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null; then
    timeout 90 "$python" scripts/bench_losses.py --repeats 3 --warmup 1 || status=1
else
    echo "skipped: TensorFlow sees no GPU (scripts/bench_losses.py times the losses on this CPU, in minutes)"
fi
exit "$status"
