"""Reference values for crates/gankit/src/losses.rs tests (PyTorch, float64).

Run: python scripts/reference_losses.py  (a venv with `pip install torch`).
"""
import torch
import torch.nn.functional as F

logits = [-3.0, -0.5, 0.0, 0.25, 2.0, 40.0]
for target in (1.0, 0.0):
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, torch.full_like(x, target))
    loss.backward()
    print(f"target {target}: value {loss.item():.15f}")
    print("  grad", ", ".join(f"{g:.9e}" for g in x.grad.tolist()))
