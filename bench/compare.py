"""gankit against PyTorch, config by config, in one run on the same machine.

For each config, runs `gankit bench --json` and `bench/pytorch_reference.py --json` with the
same flags, alternating the two `--rounds` times, and prints a Markdown table of the median
ms per iteration of each and their ratio (gankit / PyTorch; below 1 means gankit is faster).

    python3 -m venv venv && venv/bin/pip install torch numpy      # once
    cargo build --release
    venv/bin/python bench/compare.py --threads 2 configs/dcgan-fashion.toml configs/wgan-gp.toml

Flags after the config list are passed to both benchmarks (--steps, --warmup, --batch, --set).
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the pair")
    ap.add_argument("--gankit", type=Path, default=ROOT / "target/release/gankit")
    args = ap.parse_args()

    flags = ["--json", "--threads", str(args.threads), "--steps", str(args.steps)]
    flags += ["--warmup", str(args.warmup)]
    if args.batch:
        flags += ["--batch", str(args.batch)]
    for s in args.set:
        flags += ["--set", s]
    peer = [sys.executable, str(ROOT / "bench/pytorch_reference.py")]

    print(f"threads {args.threads or 'all'}, {args.steps} timed iterations after {args.warmup}, "
          f"{args.rounds} alternating rounds (median of the rounds' medians)\n")
    print("| config | step | gankit ms | PyTorch ms | gankit / PyTorch |")
    print("|---|---|---|---|---|")
    for cfg in args.configs:
        ours, theirs = [], []
        for _ in range(args.rounds):
            g = bench([str(args.gankit), "bench", "--config", str(cfg)] + flags)
            p = bench(peer + ["--config", str(cfg)] + flags)
            ours.append(g["ms_median"])
            theirs.append(p["ms_median"])
        a, b = statistics.median(ours), statistics.median(theirs)
        step = f"{g['d_steps']} D + {g['g_steps']} G, batch {g['batch_size']}, {g['loss']}"
        print(f"| `{cfg.name}` | {step} | {a:.1f} | {b:.1f} | {a / b:.2f} |", flush=True)


if __name__ == "__main__":
    main()
