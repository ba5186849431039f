"""Reference trajectory for crates/gankit/src/optim.rs tests (PyTorch Adam, float32).

Run: python scripts/reference_adam.py  (a venv with `pip install torch`).
"""
import torch

p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
target = torch.tensor([0.3, 0.2, -0.1])
w = torch.tensor([1.0, 2.0, 3.0])
opt = torch.optim.Adam([p], lr=0.1, betas=(0.5, 0.999))
for _ in range(5):
    opt.zero_grad()
    loss = ((p - target) ** 2 * w).sum()
    loss.backward()
    opt.step()
print("after 5 steps:", ", ".join(f"{v:.9f}" for v in p.tolist()))
