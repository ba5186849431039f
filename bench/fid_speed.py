"""Time the standard FID: gankit's Inception-v3 beside pytorch-fid's, same machine, same run.

Both networks get the same weights: the synthetic ones of scripts/reference_inception.py
(the real ones are never downloaded; the cost of the network does not depend on its
values). pytorch-fid is run through its own module as its command line runs it
(`python -m pytorch_fid FAKE_DIR REAL`, with its loader of weights pointed at the
synthetic ones); gankit through its binary. The images: 10,000 Fashion-MNIST train images
as the "generated" set and the 10,000 test images as the real set, saved as PNG files for
pytorch-fid (what its users score) and as one array for gankit.

Four timings, each the wall time of one command, in this order:
  gankit cold         gankit eval --fake fake.npy --dataset fashion-mnist:test
                              --evaluator inception --fid-only --save-stats DIR
                              (empty cache; writes DIR/real.npz in pytorch-fid's format)
  gankit cached       the same command again (the real features come from the cache)
  pytorch-fid cached  python -m pytorch_fid FAKE_DIR DIR/real.npz
  pytorch-fid cold    python -m pytorch_fid FAKE_DIR REAL_DIR
and the FIDs, which agree when the two networks compute the same features. Each row is
added to --json as it finishes.

    venv/bin/pip install torch torchvision pytorch-fid scipy pillow
    cargo build --release
    venv/bin/python bench/fid_speed.py --gankit target/release/gankit --n 10000
"""
import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import convert_inception  # noqa: E402
import reference_inception  # noqa: E402


def idx_images(path):
    with gzip.open(path) as f:
        data = f.read()
    n, h, w = (int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, h, w)


def write_pngs(images, folder):
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f"{i:05d}.png"))


def pytorch_fid(weights, paths):
    """Run pytorch-fid's command line in this process; returns (seconds, FID or None)."""
    from pytorch_fid import fid_score, inception

    inception.load_state_dict_from_url = lambda *a, **k: weights
    argv = ["pytorch_fid"] + paths
    old, sys.argv = sys.argv, argv
    out = tempfile.TemporaryFile(mode="w+")
    stdout, sys.stdout = sys.stdout, out
    t0 = time.perf_counter()
    try:
        fid_score.main()
    finally:
        seconds = time.perf_counter() - t0
        sys.stdout, sys.argv = stdout, old
    out.seek(0)
    found = re.search(r"FID:\s*([0-9.eE+-]+)", out.read())
    return seconds, float(found.group(1)) if found else None


def gankit_eval(binary, home, fake, n, threads, stats):
    env = dict(os.environ, GANKIT_HOME=home, RAYON_NUM_THREADS=str(threads))
    cmd = [binary, "eval", "--fake", fake, "--input-range", "0,255",
           "--dataset", "fashion-mnist:test", "--evaluator", "inception", "--fid-only",
           "--n", str(n), "--save-stats", stats, "--out", os.path.join(home, "eval.json")]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    with open(os.path.join(home, "eval.json")) as f:
        return seconds, json.load(f)["fid"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gankit", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    work = tempfile.mkdtemp(prefix="fid-speed-")
    probe = reference_inception.pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    weights = reference_inception.state_dict_like(probe)
    pth = os.path.join(work, "synthetic.pth")
    torch.save(weights, pth)
    st = os.path.join(work, "synthetic.safetensors")
    convert_inception.main(pth, st)
    home = os.path.join(work, "home")
    env = dict(os.environ, GANKIT_HOME=home)
    subprocess.run([args.gankit, "evaluator", "import-inception", st], env=env, check=True)

    train = idx_images(os.path.join(args.data, "train-images-idx3-ubyte.gz"))[: args.n]
    test = idx_images(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"))[: args.n]
    fake_dir, real_dir = os.path.join(work, "fake"), os.path.join(work, "real")
    write_pngs(train, fake_dir)
    write_pngs(test, real_dir)
    fake_npy = os.path.join(work, "fake.npy")
    np.save(fake_npy, train.reshape(-1, 1, 28, 28))

    rows = {}

    def record(name, result):
        rows[name] = result
        print(f"{name}: {result[0]:.1f} s, FID {result[1]}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({k: {"seconds": s, "fid": fid} for k, (s, fid) in rows.items()}, f, indent=1)

    stats = os.path.join(work, "stats")
    record("gankit cold", gankit_eval(args.gankit, home, fake_npy, args.n, args.threads, stats))
    record("gankit cached", gankit_eval(args.gankit, home, fake_npy, args.n, args.threads, stats))
    real_npz = os.path.join(stats, "real.npz")
    record("pytorch-fid cached", pytorch_fid(weights, [fake_dir, real_npz]))
    record("pytorch-fid cold", pytorch_fid(weights, [fake_dir, real_dir]))

    print(f"{args.n} images a side, {args.threads} threads, torch {torch.__version__}")
    print(f"{'':22}{'seconds':>9}{'FID':>14}")
    for k, (s, fid) in rows.items():
        print(f"{k:22}{s:9.1f}{fid:14.6f}")
    for what in ("cold", "cached"):
        ratio = rows[f"gankit {what}"][0] / rows[f"pytorch-fid {what}"][0]
        print(f"ratio gankit / pytorch-fid, {what}: {ratio:.2f}")
    a, b = rows["gankit cold"][1], rows["pytorch-fid cold"][1]
    print(f"FID relative difference: {abs(a - b) / abs(b):.2e}")


if __name__ == "__main__":
    main()
