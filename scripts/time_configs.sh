#!/usr/bin/env bash
# Time per generator iteration of every shipped config: 25 iterations each, median of the
# iteration times 7..25 from metrics.csv's wall_s. Run from the repository root after
# `cargo build --release`; the figures in the README's Speed table come from this script.
set -euo pipefail
out=${OUT:-/tmp/gankit-timing}
for c in dcgan-fashion minimax hinge lsgan-alpha wgan-clip wgan-gp wgan-gp-conv-critic mlp-vanilla; do
  rm -rf "$out/$c"
  target/release/gankit train --config "configs/$c.toml" --set train.steps=25 \
    --set log.sample_every=1000 --out "$out" --name "$c" >/dev/null 2>&1
  python3 - "$out/$c/metrics.csv" "$c" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
w = [float(r["wall_s"]) for r in rows]
d = sorted(b - a for a, b in zip(w[5:], w[6:]))
print(f"{sys.argv[2]:22s} {1000 * d[len(d) // 2]:7.0f} ms / generator iteration")
PY
done
