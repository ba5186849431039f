"""Reference values for crates/gankit/src/losses.rs tests (PyTorch, float64).

Run: python scripts/reference_losses.py  (a venv with `pip install torch`).
"""
import torch
import torch.nn.functional as F

logits = [-3.0, -0.5, 0.0, 0.25, 2.0, 40.0]
targets = [0.9, 0.0, 1.2, 0.3, 1.0, 0.7]
other = [0.5, -1.5, 2.5, -0.25, 0.0, 1.0]


def report(name, fn):
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = fn(x)
    loss.backward()
    print(f"{name}: value {loss.item():.15f}")
    print("  grad", ", ".join(f"{g:.9e}" for g in x.grad.tolist()))


for target in (1.0, 0.0):
    report(f"bce target {target}", lambda x: F.binary_cross_entropy_with_logits(x, torch.full_like(x, target)))
t = torch.tensor(targets, dtype=torch.float64)
o = torch.tensor(other, dtype=torch.float64)
report("bce targets", lambda x: F.binary_cross_entropy_with_logits(x, t))
report("half mse", lambda x: 0.5 * ((x - t) ** 2).mean())
report("hinge d", lambda x: F.relu(1 - x).mean() + F.relu(1 + o).mean())
report("feature matching", lambda x: ((x.reshape(2, 3).mean(0) - o.reshape(2, 3).mean(0)) ** 2).sum())
report("cross entropy", lambda x: F.cross_entropy(x.reshape(2, 3), torch.tensor([2, 0])))
