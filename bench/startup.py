"""Start-up of `gankit train` and `gankit resume`: seconds from the command to the first
iteration, data loading excluded, as the binary reports it on its `start-up` line.

For each config: a new run (`train`, stopped with Ctrl-C once its first checkpoint is
written) and its continuation (`resume`, stopped the same way). Data loading (reading the
IDX file, decoding or mapping an image folder's cache, measuring the pipeline) is reported
apart on the same line and left out, as issue #25 asks.

    cargo build --release
    python3 bench/startup.py configs/dcgan-fashion.toml configs/wgan-gp.toml \\
        --set-for dcgan64-folder data.path=/path/to/faces
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"start-up\s+([0-9.]+) s to the first iteration, besides ([0-9.]+) s on the data")


def run_until_checkpoint(cmd, cwd, env):
    """Run cmd until it writes its first checkpoint, then interrupt it; return its output."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         text=True)
    out = []
    for line in p.stderr:
        out.append(line)
        if line.startswith("checkpoint") and len([x for x in out if x.startswith("checkpoint")]) == 1:
            p.send_signal(signal.SIGINT)
    p.wait()
    text = "".join(out)
    found = LINE.search(text)
    if not found:
        sys.exit(f"no start-up line from {' '.join(cmd)}:\n{text}")
    return float(found.group(1)), float(found.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--gankit", type=Path, default=ROOT / "target/release/gankit")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set-for", nargs=2, action="append", default=[],
                    metavar=("CONFIG_STEM", "KEY=VALUE"),
                    help="an override for one config only (e.g. its data.path)")
    args = ap.parse_args()
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    print("| config | train: start-up s | data s | resume: start-up s | data s |")
    print("|---|---|---|---|---|")
    for cfg in args.configs:
        sets = []
        for stem, kv in args.set_for:
            if stem == cfg.stem:
                sets += ["--set", kv]
        with tempfile.TemporaryDirectory() as work:
            base = [str(args.gankit)]
            train = base + ["train", "--config", str(cfg.resolve()), "--name", "r",
                            "--threads", str(args.threads), "--set", "checkpoint.every=1",
                            "--set", "train.steps=1000000"] + sets
            t = run_until_checkpoint(train, work, env)
            r = run_until_checkpoint(base + ["resume", "runs/r"], work, env)
        print(f"| `{cfg.name}` | {t[0]:.2f} | {t[1]:.2f} | {r[0]:.2f} | {r[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
