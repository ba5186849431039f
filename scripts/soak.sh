#!/usr/bin/env bash
# Crash-safety soak: SOAK_KILLS (default 60) kills of one training run, half SIGKILLs at
# random moments and half crashes at gankit's injected points (inside a checkpoint write,
# between the weights and state.json, after the checkpoint's rename, during start-up, half
# way through a metrics.csv line), each followed by `gankit resume`. Passes when the final
# checkpoint's files and metrics.csv (all but the wall-clock columns) equal an
# uninterrupted run's byte for byte. Not part of `cargo test` (it takes minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_KILLS="${SOAK_KILLS:-60}" cargo test --release -p gankit-cli --test kill -- \
  --ignored --nocapture soak_many_kills
