"""Reference values for gankit's self-attention layer (crates/gankit/src/nn/attention/tests.rs).

SAGAN's block (Zhang et al. 2019) written in PyTorch, in float64, on inputs and weights
given by closed formulas both sides compute (no shared random generator): value k of a
tensor is `a * sin(b * k + c)`. Writes crates/gankit/src/nn/attention/fixtures.json with,
for each variant, the output y and the gradients of sum(y * r) with respect to x, gamma
and the weights f, g, h (and v).

    venv/bin/python scripts/reference_attention.py
"""
import json
import math
import os

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def pattern(shape, a, b, c):
    n = math.prod(shape)
    return torch.tensor([a * math.sin(b * k + c) for k in range(n)]).reshape(shape)


B, C, H, W = 2, 16, 4, 4
CK = C // 8


def block(x, f, g, h, v, gamma, official):
    """y = gamma * o + x, o_j = sum_i softmax_i(f(x_j) . g(x_i)) h(x_i)."""
    q = F.conv2d(x, f)
    k = F.conv2d(x, g)
    val = F.conv2d(x, h)
    if official:
        k = F.max_pool2d(k, 2)
        val = F.max_pool2d(val, 2)
    q = q.flatten(2)  # (B, CK, N)
    k = k.flatten(2)  # (B, CK, Nk)
    val = val.flatten(2)  # (B, Cv, Nk)
    beta = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)  # (B, N, Nk)
    o = torch.bmm(val, beta.transpose(1, 2)).reshape(B, -1, H, W)
    if official:
        o = F.conv2d(o, v)
    return gamma * o + x


def case(official):
    cv = C // 2 if official else C
    x = pattern((B, C, H, W), 1.0, 0.37, 0.1).requires_grad_()
    f = pattern((CK, C, 1, 1), 0.3, 0.61, 0.2).requires_grad_()
    g = pattern((CK, C, 1, 1), 0.3, 0.53, 0.7).requires_grad_()
    h = pattern((cv, C, 1, 1), 0.2, 0.41, 0.4).requires_grad_()
    v = pattern((C, cv, 1, 1), 0.2, 0.29, 0.9).requires_grad_() if official else None
    gamma = torch.tensor([0.7], requires_grad=True)
    r = pattern((B, C, H, W), 1.0, 0.23, 0.5)
    y = block(x, f, g, h, v, gamma, official)
    (y * r).sum().backward()
    out = {
        "y": y.detach().flatten().tolist(),
        "dx": x.grad.flatten().tolist(),
        "dgamma": gamma.grad.flatten().tolist(),
        "df": f.grad.flatten().tolist(),
        "dg": g.grad.flatten().tolist(),
        "dh": h.grad.flatten().tolist(),
    }
    if official:
        out["dv"] = v.grad.flatten().tolist()
    return out


here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "crates", "gankit", "src", "nn", "attention", "fixtures.json")
with open(path, "w") as fh:
    json.dump({"paper": case(False), "official": case(True), "torch": torch.__version__}, fh)
print("wrote", os.path.normpath(path))
