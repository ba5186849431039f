#!/usr/bin/env bash
# A CUDA toolkit for building gankit's `cuda` feature on a machine without a GPU, from PyPI
# (nothing else is reachable here): nvcc, its front end (nvvm, crt), the runtime headers and
# CCCL (cuda_fp16.h includes <nv/target>).
#
#   eval "$(scripts/cuda_toolchain.sh /tmp/cuda-venv)"          # enough for `cargo check`
#   eval "$(scripts/cuda_toolchain.sh /tmp/cuda-venv --link)"   # and for `cargo build`
#
# prints the exports to build with. The versions are pinned together, to CUDA 13.0:
# - The GPU machines we measure on run driver 580 (CUDA 13.0). candle compiles its kernels
#   to PTX, which a driver JIT-compiles at start only if it is no newer than the driver: a
#   13.4 toolkit's PTX 9.4 is refused by a 13.0 driver. (cudarc 0.19, under candle 0.11,
#   knows CUDA 11.4 to 13.4 and refuses 13.5 anyway.)
# - nvvm and crt must match nvcc: ptxas refuses the PTX of a newer nvvm.
#
# --link adds what linking needs: cuDNN, cuBLAS, cuRAND and NVRTC from their wheels, with
# the unversioned names the linker looks for, and a stub libcuda.so (the driver library is
# not on PyPI) made from cuda.h's declarations; the real one is loaded where the binary runs
# (README, "GPU").
set -euo pipefail
venv=${1:?usage: scripts/cuda_toolchain.sh VENV_DIR [--link]}
link=${2:-}
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install -q \
  "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-runtime==13.0.96" \
  "nvidia-nvvm==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-cuda-cccl==13.0.85" >&2
site=$("$venv/bin/python" -c 'import nvidia, os; print(nvidia.__path__[0])')
root="$site/cu13"
"$root/bin/nvcc" --version >&2
if [ "$link" = "--link" ]; then
  "$venv/bin/pip" install -q "nvidia-cudnn-cu13==9.13.0.50" "nvidia-cublas==13.0.2.14" \
    "nvidia-curand==10.4.0.35" "nvidia-cuda-nvrtc==13.0.88" >&2
  # cudarc links -lcuda -lnvrtc -lcurand -lcublas -lcublasLt -lcudnn and searches
  # $CUDA_ROOT/lib: the wheels' versioned libraries under their plain names there.
  for so in $(find "$site" -name 'lib*.so.[0-9]*' \( -name 'libcudnn.so.*' -o -name 'libcublas.so.*' \
      -o -name 'libcublasLt.so.*' -o -name 'libcurand.so.*' -o -name 'libnvrtc.so.*' \
      -o -name 'libcudart.so.*' \)); do
    base=$(basename "$so")
    ln -sf "$so" "$root/lib/${base%%.so.*}.so"
  done
  # The driver's entry points, as empty functions, under the driver's soname.
  stub=$(mktemp -d)
  gcc -E -P "$root/include/cuda.h" -I "$root/include" \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t' | sort -u \
    | sed 's/.*/void &(void) {}/' >"$stub/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/libcuda.so" "$stub/cuda_stub.c"
  rm -r "$stub"
fi
echo "export PATH=\"$root/bin:\$PATH\" CUDA_ROOT=\"$root\" CUDA_PATH=\"$root\" CUDA_COMPUTE_CAP=90"
