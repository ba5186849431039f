#!/usr/bin/env bash
# A folder of N face-sized JPEGs (178×218 RGB, like CelebA's aligned crops) for measuring
# the data pipeline at CelebA's scale (the data-at-scale numbers in the README):
#
#   scripts/make_faces.sh OUT_DIR N [SEED] [--gray]   e.g. scripts/make_faces.sh /data/faces200k 200000
#
# --gray writes 8-bit grayscale JPEGs (report 000's CUFS sketches are grayscale).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p gankit --example make_faces -- "$@"
