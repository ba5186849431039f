"""Reference values for gankit's Inception-v3 (crates/gankit/src/evaluator/inception/tests.rs).

Builds pytorch-fid's own network (`pytorch_fid.inception.InceptionV3`, the FID-specific
blocks of the TensorFlow Inception) with weights from closed formulas instead of the real
ones (no 95 MB fixture, nothing downloaded), runs it on a small fixed batch, and computes
pytorch-fid's FID between two fixed 2048-d feature arrays. gankit's tests fill their
network from the same formulas (`inception::synthetic_weights`) and compare.

The values come from a generator both sides implement: for a stream named NAME, value k
is u(k) = splitmix64(fnv1a64(NAME) + k) >> 11, scaled by 2^-53 to [0, 1), and
r(k) = 2 u(k) - 1 in [-1, 1). (A smooth formula such as sin(b k + c) would make every
layer's weight matrix of rank 2 and the features of all images the same.) Each tensor of
the state dict, named NAME:
    conv weights (o, i, kh, kw):  sqrt(6 / (i kh kw)) r(k)   (He's uniform scale)
    batch-norm weight:            1 + 0.1 r(k)
    batch-norm bias, mean:        0.1 r(k)
    batch-norm running_var:       1 + 0.5 u(k)
    fc.weight (1008, 2048):       sqrt(3 / 2048) r(k)
    fc.bias:                      0.01 r(k)
The batch: 3 RGB images of 32x32 in [0, 1], the stream "images": value k (over the whole
batch) = u(k) (j + 1) / 3 in image j.
FID arrays: two 2100 x 2048 arrays, the streams "fid-a" and "fid-b":
    a = r(k),  b = 1.5 r(k) + 0.2 d / 2048   for value k = 2048 i + d.

    venv/bin/pip install torch torchvision pytorch-fid scipy
    venv/bin/python scripts/reference_inception.py
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_fid import inception as pf
from pytorch_fid.fid_score import calculate_frechet_distance


MASK = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def uniform(name, n):
    """u(k) for k < n: splitmix64 of fnv1a64(name) + k, top 53 bits, in [0, 1)."""
    with np.errstate(over="ignore"):
        z = (np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64)) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def synthetic(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniform(name, n)
    r = 2.0 * u - 1.0
    if name == "fc.weight":
        v = math.sqrt(3.0 / 2048) * r
    elif name == "fc.bias":
        v = 0.01 * r
    elif name.endswith("conv.weight"):
        fan_in = shape[1] * shape[2] * shape[3]
        v = math.sqrt(6.0 / fan_in) * r
    elif name.endswith("bn.weight"):
        v = 1.0 + 0.1 * r
    elif name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        v = 0.1 * r
    elif name.endswith("bn.running_var"):
        v = 1.0 + 0.5 * u
    else:
        raise ValueError(name)
    return torch.tensor(v.reshape(shape), dtype=torch.float32)


def state_dict_like(model):
    out = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            out[name] = t
        else:
            out[name] = synthetic(name, tuple(t.shape))
    return out


def main():
    torch.set_num_threads(2)
    # pytorch-fid's network, its weights from the formulas (load_state_dict_from_url is
    # what fid_inception_v3 calls for the real ones).
    probe = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    weights = state_dict_like(probe)
    pf.load_state_dict_from_url = lambda *a, **k: weights
    net = pf.InceptionV3([3]).eval()
    fc_w, fc_b = weights["fc.weight"], weights["fc.bias"]

    b, side = 3, 32
    # Contrast (j + 1) / 3 for image j, so that the features differ between images.
    contrast = np.array([(j + 1) / 3.0 for j in range(b)]).reshape(b, 1, 1, 1)
    images = contrast * uniform("images", b * 3 * side * side).reshape(b, 3, side, side)
    x = torch.tensor(images, dtype=torch.float32)
    with torch.no_grad():
        pool3 = net(x)[0].reshape(b, 2048)
        logits = pool3 @ fc_w.T + fc_b
        resized = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)

    n, dim = 2100, 2048
    d = np.arange(dim, dtype=np.float64)[None, :]
    arrays = [
        (2.0 * uniform("fid-a", n * dim) - 1.0).reshape(n, dim),
        1.5 * (2.0 * uniform("fid-b", n * dim) - 1.0).reshape(n, dim) + 0.2 * d / dim,
    ]
    mus = [a.mean(axis=0) for a in arrays]
    sigmas = [np.cov(a, rowvar=False) for a in arrays]
    fid = calculate_frechet_distance(mus[0], sigmas[0], mus[1], sigmas[1])

    out = {
        "pool3": pool3.double().numpy().tolist(),
        "logits": logits.double().numpy().tolist(),
        # A few values of the resized input (image 0, channel 1), to locate an error.
        "resized_row_100": resized[0, 1, 100, :20].double().numpy().tolist(),
        "fid": float(fid),
        # The first values of two streams, to check the generator alone.
        "uniform_images": uniform("images", 4).tolist(),
        "uniform_fc_weight": uniform("fc.weight", 4).tolist(),
    }
    path = os.path.join(
        os.path.dirname(__file__),
        "../crates/gankit/src/evaluator/inception/fixtures.json",
    )
    with open(path, "w") as f:
        json.dump(out, f)
    spread = float(pool3.std(dim=0).mean() / pool3.abs().mean())
    print("pool3 relative spread", spread, "fid", fid)


if __name__ == "__main__":
    main()
