#!/usr/bin/env bash
# The README's quality tables (Evaluation and Stabilisation): trains each config for its
# 3000 iterations on the full Fashion-MNIST train split (Debian's dataset-fashion-mnist),
# seed 0, and scores it with `gankit eval RUN` (10k generated vs 10k real, the built-in
# fashion-mnist-v1 evaluator). Prints one Markdown row per run. About 45 minutes on 2 cores.
#
#   [GANKIT_BIN=BINARY] scripts/quality_tables.sh [OUT_DIR]      (default: runs-quality)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs-quality}"
mkdir -p "$out"
# A copy, so a rebuild while this runs cannot change the binary half way. GANKIT_BIN
# names a binary already built (else this tree's release build).
if [ -n "${GANKIT_BIN:-}" ]; then
  cp "$GANKIT_BIN" "$out/gankit"
else
  cargo build --release -q
  cp target/release/gankit "$out/gankit"
fi
bin="$out/gankit"
export GANKIT_HOME="$out/home"   # nothing trained there: the built-in evaluator scores
threads=2

row() { # name, eval.json
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
extra = f" (class agreement {r['class_agreement']:.3f})" if r.get("class_agreement") is not None else ""
print(f"| {sys.argv[1]}{extra} | {r['fid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['classes_covered']} / {len(r['class_histogram'])} |")
PY
}

train() { # name, config, extra args... (an interrupted run is resumed, a finished one kept)
  local name="$1" config="$2"; shift 2
  if [ -f "$out/$name/config.toml" ]; then
    "$bin" resume "$out/$name" --threads "$threads" >/dev/null 2>>"$out/$name.log"
  else
    "$bin" train --config "configs/$config" --out "$out" --name "$name" --threads "$threads" "$@" >/dev/null 2>"$out/$name.log"
  fi
}

score() { # name, run, extra eval args...
  local name="$1" run="$2"; shift 2
  "$bin" eval "$out/$run" --out "$out/$name.eval.json" "$@" >/dev/null 2>>"$out/eval.log"
  row "$name" "$out/$name.eval.json"
}

echo "| run | FID | precision | recall | classes |"
echo "|---|---|---|---|---|"
# The test split against the train split: the floor of what a generator can reach.
python3 - "$out/test.npy" <<'PY'
import gzip, struct, sys
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (10000, 1, 28, 28), }"
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack(f"<{len(raw)}f", *[b / 127.5 - 1 for b in raw]))
PY
"$bin" eval --fake "$out/test.npy" --dataset fashion-mnist:train --out "$out/split.eval.json" >/dev/null 2>>"$out/eval.log"
row "test split vs train split" "$out/split.eval.json"

train dcgan-fashion dcgan-fashion.toml
score "dcgan-fashion (baseline)" dcgan-fashion
train lsgan-alpha lsgan-alpha.toml
score "lsgan-alpha" lsgan-alpha
train dcgan-sn dcgan-sn.toml
score "dcgan-sn" dcgan-sn
train dcgan-diffaugment dcgan-diffaugment.toml
score "dcgan-diffaugment" dcgan-diffaugment
train dcgan-instance-noise dcgan-instance-noise.toml
score "dcgan-instance-noise" dcgan-instance-noise
train dcgan-ema dcgan-ema.toml
score "dcgan-ema (0.999)" dcgan-ema
score "dcgan-ema, --no-ema" dcgan-ema --no-ema
train stabilized stabilized.toml
score "stabilized (SN + DiffAugment + EMA)" stabilized
score "stabilized, --no-ema" stabilized --no-ema
train lsgan-rates lsgan-pretrained.toml --set pretrain.g_epochs=0 --set pretrain.d_epochs=0
score "LSGAN, report 001's rates (lsgan-pretrained.toml without pretraining)" lsgan-rates
train lsgan-pretrained lsgan-pretrained.toml --set pretrain.images=10000 --set pretrain.g_epochs=2 --set pretrain.d_epochs=2
score "LSGAN + pretraining (10k images, 2 + 2 epochs)" lsgan-pretrained
train combined-best combined-best.toml
score "combined-best (LSGAN + pretraining + instance noise)" combined-best
train conditional conditional.toml
score "conditional" conditional
