#!/usr/bin/env bash
# The GPU checks of issue "GPU: CUDA with cuDNN" in one run, on a machine with an NVIDIA GPU,
# PyTorch, and no Rust toolchain (the device tool's H200): the GPU tests, then gankit against
# PyTorch eager on the same GPU, alternating (bench/compare.py --device cuda).
#
#   scripts/gpu_kit.sh                      # here: builds gpu-kit/kit.tar.gz
#   bash scripts/gpu_check.sh [ROUNDS]      # there, from the repository's root, gpu-kit carried
#
# Everything it prints also goes to $OUT (or /tmp/gpu-check): gpu.txt, tests.txt, bench.md.
# Not yet timed on a GPU: 5 benchmark pairs × ROUNDS (2), 30 timed steps each after 5.
set -uo pipefail
rounds=${1:-2}
out=${OUT:-/tmp/gpu-check}
mkdir -p "$out" gpu-kit/bin
tar xzf gpu-kit/kit.tar.gz -C gpu-kit/bin || exit 1
# The CUDA libraries gankit links (cuDNN, cuBLAS, cuRAND, NVRTC): the ones PyTorch's wheels
# brought, found through the `nvidia` package.
libs=$(python3 - <<'PY'
import glob, os
import nvidia
dirs = {os.path.dirname(f) for p in nvidia.__path__
        for f in glob.glob(os.path.join(p, "**", "lib*.so*"), recursive=True)}
print(":".join(sorted(dirs)))
PY
)
export LD_LIBRARY_PATH="$libs:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuDNN", torch.backends.cudnn.version())' \
  | tee -a "$out/gpu.txt"
ldd gpu-kit/bin/gankit | grep -E "cuda|cudnn|cublas|curand|nvrtc|not found" | tee -a "$out/gpu.txt"

echo "== GPU tests" | tee "$out/tests.txt"
gpu-kit/bin/cuda-tests --test-threads 1 2>&1 | tee -a "$out/tests.txt"
tests=${PIPESTATUS[0]}

echo "== gankit / PyTorch eager, ms per iteration" | tee "$out/bench.md"
for batch in 64 256; do
  configs="configs/dcgan-fashion.toml configs/dcgan64-folder.toml"
  [ "$batch" = 64 ] && configs="$configs configs/wgan-gp.toml"
  # shellcheck disable=SC2086
  python3 bench/compare.py $configs --device cuda --gankit gpu-kit/bin/gankit \
    --batch "$batch" --rounds "$rounds" --steps 30 --warmup 5 2>&1 | tee -a "$out/bench.md"
done
exit "$tests"
