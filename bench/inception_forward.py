"""pytorch-fid's Inception-v3 forward on one batch of 16 Fashion-MNIST-sized images: the peer
of `cargo bench -p gankit --bench inception` (same batch, same synthetic weights, same
preparation: 28x28 grayscale in [0, 1] repeated to 3 channels, bilinear resize to 299,
scaled to [-1, 1], as pytorch-fid's `InceptionV3([3])` does), timed as the median of
--rounds forwards after one warm-up, in one process.

    venv/bin/python bench/inception_forward.py --threads 2
"""
import argparse
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
import reference_inception  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pf = reference_inception.pf
    probe = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    weights = reference_inception.state_dict_like(probe)
    pf.load_state_dict_from_url = lambda *a, **k: weights
    net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    x = torch.rand(args.n, 1, 28, 28).repeat(1, 3, 1, 1)
    times = []
    with torch.no_grad():
        net(x)
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(f"pytorch-fid InceptionV3, {args.n} images, {args.threads} threads, torch "
          f"{torch.__version__}: median {med:.3f} s ({times[0]:.3f}-{times[-1]:.3f}), "
          f"{med / args.n:.4f} s per image")


if __name__ == "__main__":
    main()
