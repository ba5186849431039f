"""Reference values for crates/gankit/src/nn/norm.rs and batch_norm.rs tests (PyTorch).

Run: python scripts/reference_norms.py  (a venv with `pip install torch`).
"""
import torch
import torch.nn.functional as F

x = torch.arange(24, dtype=torch.float64).reshape(2, 3, 2, 2) ** 1.5
print("layer norm (group_norm, 1 group), first 4 and last 4:")
y = F.group_norm(x, 1, eps=1e-5).flatten()
print("  ", ", ".join(f"{v:.7f}" for v in y[:4].tolist()), " ... ", ", ".join(f"{v:.7f}" for v in y[-4:].tolist()))

bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1).double()
with torch.no_grad():
    bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
    bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
bn.train()
y = bn(x).flatten()
print("batch norm (train), first 4:", ", ".join(f"{v:.7f}" for v in y[:4].tolist()))
print("running_mean:", ", ".join(f"{v:.7f}" for v in bn.running_mean.tolist()))
print("running_var:", ", ".join(f"{v:.7f}" for v in bn.running_var.tolist()))
bn.eval()
y = bn(x).flatten()
print("batch norm (eval), first 4:", ", ".join(f"{v:.7f}" for v in y[:4].tolist()))
