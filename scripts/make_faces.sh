#!/usr/bin/env bash
# A folder of N face-sized JPEGs (178×218 RGB, like CelebA's aligned crops) for measuring
# the data pipeline at CelebA's scale (the data-at-scale numbers in the README):
#
#   scripts/make_faces.sh OUT_DIR N [SEED]        e.g. scripts/make_faces.sh /data/faces200k 200000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p gankit --example make_faces -- "$@"
