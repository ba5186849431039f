"""Reference values for crates/gankit/src/metrics/ (NumPy / SciPy, float64).

Writes crates/gankit/src/metrics/fixtures/{real,fake,probs}.npy (small feature matrices and
class probabilities from a fixed seed) and reference.json with every metric computed the
way the reference implementations do:
  FID      Heusel et al. (pytorch-fid): ||mu1-mu2||^2 + tr(S1) + tr(S2) - 2 tr sqrtm(S1 S2),
           covariances with ddof=1, scipy.linalg.sqrtm
  KID      Binkowski et al.: unbiased MMD^2, kernel (x.y/d + 1)^3, on the full sets
  P/R      Kynkaanniemi et al. 2019, k = 3
  D/C      Naeem et al. 2020, k = 5
  IS       exp(E KL(p(y|x) || p(y))), one split
Run: python scripts/reference_metrics.py  (a venv with `pip install numpy scipy`).
"""
import json
import os

import numpy as np
from scipy import linalg

out = os.path.join(os.path.dirname(__file__), "..", "crates", "gankit", "src", "metrics", "fixtures")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261123)
d = 6
real = rng.normal(size=(120, d)) @ rng.normal(size=(d, d)) * 0.7 + 0.3
fake = rng.normal(size=(90, d)) @ rng.normal(size=(d, d)) * 0.6 - 0.2
logits = rng.normal(size=(80, 10)) * 2.0
probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
np.save(os.path.join(out, "real.npy"), real)
np.save(os.path.join(out, "fake.npy"), fake)
np.save(os.path.join(out, "probs.npy"), probs)


def fid(x, y):
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def kid(x, y):
    dd = x.shape[1]
    k = lambda a, b: (a @ b.T / dd + 1) ** 3
    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def dist(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def radii(x, k):
    return np.sort(dist(x, x), axis=1)[:, k]  # column 0 is the point itself


def precision_recall(x, y, k=3):
    rx, ry = radii(x, k), radii(y, k)
    p = (dist(y, x) <= rx[None, :]).any(1).mean()
    r = (dist(x, y) <= ry[None, :]).any(1).mean()
    return float(p), float(r)


def density_coverage(x, y, k=5):
    rx = radii(x, k)
    inside = dist(x, y) <= rx[:, None]  # (real, fake)
    return float(inside.sum() / (k * len(y))), float(inside.any(1).mean())


def inception_score(p):
    py = p.mean(0, keepdims=True)
    return float(np.exp((p * (np.log(p) - np.log(py))).sum(1).mean()))


s1 = np.cov(real, rowvar=False)
ref = {
    "fid": fid(real, fake),
    "fid_self": fid(real, real),
    "kid": kid(real, fake),
    "precision": precision_recall(real, fake)[0],
    "recall": precision_recall(real, fake)[1],
    "density": density_coverage(real, fake)[0],
    "coverage": density_coverage(real, fake)[1],
    "inception_score": inception_score(probs),
    "sqrtm_trace": float(np.trace(linalg.sqrtm(s1).real)),
    "sqrtm_00": float(linalg.sqrtm(s1).real[0, 0]),
    "sqrtm_01": float(linalg.sqrtm(s1).real[0, 1]),
}
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump(ref, f, indent=2)
print(json.dumps(ref, indent=2))
