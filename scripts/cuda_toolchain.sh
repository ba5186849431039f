#!/usr/bin/env bash
# A CUDA toolkit for building gankit's CUDA code on a machine without a GPU, from PyPI
# (nothing else is reachable here): nvcc, its front end (nvvm, crt), the runtime headers and
# CCCL (cuda_fp16.h includes <nv/target>).
#
#   eval "$(scripts/cuda_toolchain.sh /tmp/cuda-venv)"
#
# prints the exports to build with. The versions are pinned together: cudarc 0.19 (under
# candle 0.11) knows CUDA up to 13.4 and refuses 13.5, and ptxas refuses the PTX of a newer
# nvvm (13.5's cicc writes PTX 9.5, 13.4's ptxas reads up to 9.4). There is no 13.4 CCCL
# wheel; 13.3's headers serve.
#
# Checked on 2026-12-01: with these, `cargo check` of candle-core 0.11 with its `cuda` and
# `cudnn` features (and candle-nn's `cuda`) succeeds, CUDA_COMPUTE_CAP=90, in 10 minutes on
# 2 cores (most of it compiling candle's kernels to PTX).
set -euo pipefail
venv=${1:?usage: scripts/cuda_toolchain.sh VENV_DIR}
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install -q \
  "nvidia-cuda-nvcc==13.4.92" "nvidia-cuda-runtime==13.4.92" \
  "nvidia-nvvm==13.4.92" "nvidia-cuda-crt==13.4.92" "nvidia-cuda-cccl==13.3.5.0.6" >&2
root=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')
"$root/bin/nvcc" --version >&2
echo "export PATH=\"$root/bin:\$PATH\" CUDA_ROOT=\"$root\" CUDA_PATH=\"$root\" CUDA_COMPUTE_CAP=90"
