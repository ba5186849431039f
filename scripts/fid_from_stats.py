"""FID between two pytorch-fid statistics files, with NumPy alone.

    python scripts/fid_from_stats.py A.npz B.npz

Reads the files as pytorch-fid does (`np.load(path)['mu']`, `['sigma']`) and prints
||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), the trace of the square root
taken as the sum of the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2) (the same
value as pytorch-fid's scipy.linalg.sqrtm for covariance matrices, without SciPy; small
negative eigenvalues from rounding count as 0). The test
`inception_scores_arrays_and_reads_and_writes_pytorch_fid_statistics`
(crates/gankit-cli/tests/inception.rs) runs it on files `gankit eval --save-stats` wrote.
"""
import sys

import numpy as np


def load(path):
    with np.load(path) as f:
        return f["mu"][:].astype(np.float64), f["sigma"][:].astype(np.float64)


def sqrt_psd(s):
    values, vectors = np.linalg.eigh(s)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def main(a, b):
    mu1, s1 = load(a)
    mu2, s2 = load(b)
    h = sqrt_psd(s1)
    inner = h @ s2 @ h
    inner = (inner + inner.T) / 2
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(inner), 0, None)).sum()
    diff = mu1 - mu2
    print(repr(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: fid_from_stats.py A.npz B.npz")
    main(sys.argv[1], sys.argv[2])
