#!/usr/bin/env bash
# Build here what scripts/gpu_check.sh runs on a GPU machine that has no Rust toolchain: the
# gankit binary and the GPU test binary (crates/gankit/tests/cuda.rs), both with the `cuda`
# feature, stripped and packed into gpu-kit/kit.tar.gz (ignored by git; the device tool
# carries it, 64 MiB at most with the working tree: 44 MB on 2026-12-01).
#
#   scripts/gpu_kit.sh            # then, on the GPU machine: bash scripts/gpu_check.sh
#
# The toolkit comes from PyPI (scripts/cuda_toolchain.sh, CUDA 13.0); the build goes to
# target/cuda so that it does not disturb the CPU build's artefacts.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/cuda_toolchain.sh "${CUDA_VENV:-/tmp/cuda-venv}" --link)"
export CARGO_TARGET_DIR=target/cuda
cargo build --release --features cuda -p gankit-cli
tests=$(cargo test --release --features cuda -p gankit --test cuda --no-run --message-format=json \
  | python3 -c 'import json, sys
for m in map(json.loads, sys.stdin):
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')
rm -rf gpu-kit && mkdir gpu-kit
cp target/cuda/release/gankit gpu-kit/gankit
cp "$tests" gpu-kit/cuda-tests
strip gpu-kit/gankit gpu-kit/cuda-tests
tar czf gpu-kit/kit.tar.gz -C gpu-kit gankit cuda-tests
rm gpu-kit/gankit gpu-kit/cuda-tests
ls -la gpu-kit
