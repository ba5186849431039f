"""gankit against PyTorch, config by config, in one run on the same machine.

For each config, runs `gankit bench --json` and `bench/pytorch_reference.py --json` with the
same flags, alternating the two `--rounds` times, and prints a Markdown table of the median
ms per iteration of each and their ratio (gankit / PyTorch; below 1 means gankit is faster).

    python3 -m venv venv && venv/bin/pip install torch numpy      # once
    cargo build --release
    venv/bin/python bench/compare.py --threads 2 configs/dcgan-fashion.toml configs/wgan-gp.toml

Flags after the config list are passed to both benchmarks (--steps, --warmup, --batch, --set).

`--device cuda` times both on the GPU (gankit built with `--features cuda`, README "GPU").

`--isa avx2` (or `x86-64`) times the paths of CPUs without AVX-512 (or without AVX) on this
one: gankit through GANKIT_ISA (which hides the extensions from the whole process, see
crates/gankit/src/isa.rs), PyTorch through ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# What each side is told for each --isa: gankit's variable, and PyTorch's two (ATen's own
# kernels, oneDNN's convolutions and products).
ISA_ENV = {
    "avx512": ({"GANKIT_ISA": "avx512"}, {"ATEN_CPU_CAPABILITY": "avx512",
                                          "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}),
    "avx2": ({"GANKIT_ISA": "avx2"}, {"ATEN_CPU_CAPABILITY": "avx2",
                                      "ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "x86-64": ({"GANKIT_ISA": "x86-64"}, {"ATEN_CPU_CAPABILITY": "default",
                                          "ONEDNN_MAX_CPU_ISA": "SSE41"}),
}


def bench(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=dict(os.environ, **(env or {}))).stdout
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
    ap.add_argument("--isa", choices=sorted(ISA_ENV), help="restrict both to this level")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where both run the step (cuda: gankit built with --features cuda)")
    args = ap.parse_args()

    flags = ["--json", "--threads", str(args.threads), "--steps", str(args.steps)]
    flags += ["--warmup", str(args.warmup), "--device", args.device]
    if args.batch:
        flags += ["--batch", str(args.batch)]
    for s in args.set:
        flags += ["--set", s]
    peer = [sys.executable, str(ROOT / "bench/pytorch_reference.py")]
    ours_env, peer_env = ISA_ENV[args.isa] if args.isa else ({}, {})

    print(f"threads {args.threads or 'all'}, {args.steps} timed iterations after {args.warmup}, "
          f"{args.rounds} alternating rounds (median of the rounds' medians, range min–max)"
          f"{', ISA ' + args.isa if args.isa else ''}, device {args.device}\n")
    print("| config | step | gankit ms | PyTorch ms | gankit / PyTorch |")
    print("|---|---|---|---|---|")
    for cfg in args.configs:
        ours, theirs = [], []
        for _ in range(args.rounds):
            g = bench([str(args.gankit), "bench", "--config", str(cfg)] + flags, ours_env)
            p = bench(peer + ["--config", str(cfg)] + flags, peer_env)
            if args.isa and g.get("isa") not in (None, args.isa):
                sys.exit(f"gankit ran with {g.get('isa')}, not {args.isa}")
            ours.append(g["ms_median"])
            theirs.append(p["ms_median"])
        a, b = statistics.median(ours), statistics.median(theirs)
        ratios = [x / y for x, y in zip(ours, theirs)]
        step = f"{g['d_steps']} D + {g['g_steps']} G, batch {g['batch_size']}, {g['loss']}"
        print(f"| `{cfg.name}` | {step} | {a:.1f} ({min(ours):.1f}–{max(ours):.1f}) "
              f"| {b:.1f} ({min(theirs):.1f}–{max(theirs):.1f}) "
              f"| {a / b:.2f} ({min(ratios):.2f}–{max(ratios):.2f}) |", flush=True)


if __name__ == "__main__":
    main()
