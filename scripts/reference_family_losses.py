"""Reference values for the losses of the encoder families (crates/gankit/src/family/tests.rs).

Written from the papers, in PyTorch, float64, on values given by closed formulas both sides
compute (value k of a tensor is a * sin(b * k + c)):

- BigBiGAN (Donahue & Simonyan 2019, Sec. 2): D minimises
  sum over s in (s_x, s_z, s_xz) of mean(relu(1 - s(real pairs))) + mean(relu(1 + s(fake
  pairs))); E and G minimise mean(s_x + s_z + s_xz)(real pairs) - mean(same)(fake pairs).
- VAE-GAN (Larsen et al. 2016, Alg. 1): L_prior = KL(N(mu, sigma^2) || N(0, 1)) summed over
  the latent, mean over the batch; L_llike = 0.5 * ||f(x~) - f(x)||^2 summed per image, mean
  over the batch; D's loss is BCE with real images as 1 and the reconstructions and prior
  samples (together) as 0; the decoder's is gamma * L_llike + BCE(fakes, 1).

    venv/bin/python scripts/reference_family_losses.py
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


n = 6
real = {k: pattern((n,), 1.5, 0.7 + i * 0.11, 0.2 * i) for i, k in enumerate(["s_x", "s_z", "s_xz"])}
fake = {k: pattern((n,), 1.5, 0.5 + i * 0.13, 1.0 + 0.3 * i) for i, k in enumerate(["s_x", "s_z", "s_xz"])}
d_loss = sum(F.relu(1 - real[k]).mean() + F.relu(1 + fake[k]).mean() for k in real)
eg_loss = sum(real[k] for k in real).mean() - sum(fake[k] for k in fake).mean()

z = 5
mu = pattern((n, z), 0.8, 0.37, 0.1)
log_var = pattern((n, z), 0.6, 0.29, 0.4)
kl = (-0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)).mean()
f_recon = pattern((n, 3, 2, 2), 1.0, 0.41, 0.3)
f_real = pattern((n, 3, 2, 2), 1.0, 0.43, 0.9)
nll = (0.5 * (f_recon - f_real).pow(2).flatten(1).sum(1)).mean()
s_real = pattern((n,), 2.0, 0.31, 0.2)
s_fakes = pattern((2 * n,), 2.0, 0.23, 0.7)
vae_d = F.binary_cross_entropy_with_logits(s_real, torch.ones(n)) + F.binary_cross_entropy_with_logits(
    s_fakes, torch.zeros(2 * n)
)
gamma = 0.01
vae_g = gamma * nll + F.binary_cross_entropy_with_logits(s_fakes, torch.ones(2 * n))

out = {
    "torch": torch.__version__,
    "bigbigan_d": d_loss.item(),
    "bigbigan_eg": eg_loss.item(),
    "kl": kl.item(),
    "nll": nll.item(),
    "vaegan_d": vae_d.item(),
    "vaegan_g": vae_g.item(),
}
here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "crates", "gankit", "src", "family", "fixtures", "losses.json")
with open(path, "w") as fh:
    json.dump(out, fh, indent=1)
print("wrote", os.path.normpath(path), out)
