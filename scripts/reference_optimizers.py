"""Reference trajectories for the optimiser tests in crates/gankit/src/optim/ (PyTorch, float32).

Every optimiser minimises loss = sum((p - [0.3, 0.2, -0.1])**2 * [1, 2, 3]) from
p = [1, -2, 0.5] for 5 steps; the printed values are the tests' expected results.
Run: python scripts/reference_optimizers.py  (a venv with `pip install torch`).
"""
import torch


def run(make):
    p = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    target = torch.tensor([0.3, 0.2, -0.1])
    w = torch.tensor([1.0, 2.0, 3.0])
    opt = make([p])
    for _ in range(5):
        opt.zero_grad()
        loss = ((p - target) ** 2 * w).sum()
        loss.backward()
        opt.step()
    return ", ".join(f"{v:.9f}" for v in p.tolist())


print("adam lr=0.1 betas=(0.5,0.999):", run(lambda ps: torch.optim.Adam(ps, lr=0.1, betas=(0.5, 0.999))))
print("rmsprop lr=0.01 alpha=0.99:", run(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99)))
print("rmsprop lr=0.01 alpha=0.99 momentum=0.9:", run(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, momentum=0.9)))
print("sgd lr=0.05 momentum=0.9:", run(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)))
