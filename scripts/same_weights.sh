#!/usr/bin/env bash
# Two gankit binaries train every config in configs/ for 20 iterations (seed 0; the full
# Fashion-MNIST train split when installed, a generated 64×64 folder for the folder
# configs; pretraining cut to 512 images) and the weights and optimiser states of the
# checkpoint at 20 are compared byte for byte. For refactors that must not change what
# is computed:
#
#   scripts/same_weights.sh OLD_BIN NEW_BIN [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
old="$1" new="$2" work="${3:-$(mktemp -d)}"
mkdir -p "$work"
# A folder of 256 RGB PNGs for the folder configs.
python3 - "$work/faces" <<'PY'
import gzip, os, struct, sys, zlib
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
raw = gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").read()[16:]
def png(path, w, h, rows):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"".join(b"\x00" + r for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
for i in range(256):
    img = raw[i * 784:(i + 1) * 784]
    rows = [bytes(v for x in range(28) for v in (img[y * 28 + x], 255 - img[y * 28 + x], img[y * 28 + x] // 2)) for y in range(28)]
    png(f"{out}/{i:03}.png", 28, 28, rows)
PY
fail=0
for cfg in configs/*.toml; do
  name=$(basename "$cfg" .toml)
  sets=(--set train.steps=20 --set checkpoint.every=20 --set log.sample_every=20 --set pretrain.images=512)
  grep -q 'dataset = "folder"' "$cfg" && sets+=(--set "data.path=$work/faces")
  for which in old new; do
    bin=${!which}
    "$bin" train --config "$cfg" --out "$work/$which" --name "$name" --threads 2 "${sets[@]}" >/dev/null 2>"$work/$which-$name.log" || {
      echo "$name: $which failed: $(tail -1 "$work/$which-$name.log")"; fail=1; continue 2; }
  done
  a="$work/old/$name/checkpoints/step_00000020" b="$work/new/$name/checkpoints/step_00000020"
  diffs=""
  for f in "$a"/*.safetensors; do
    cmp -s "$f" "$b/$(basename "$f")" || diffs="$diffs $(basename "$f")"
  done
  for f in "$b"/*.safetensors; do [ -e "$a/$(basename "$f")" ] || diffs="$diffs +$(basename "$f")"; done
  if [ -z "$diffs" ]; then echo "$name: identical ($(ls "$a"/*.safetensors | wc -l) files)"; else echo "$name: DIFFERENT:$diffs"; fail=1; fi
done
exit $fail
