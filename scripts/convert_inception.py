"""Convert pytorch-fid's Inception weights (.pth) into a safetensors file gankit imports.

pytorch-fid's weights are the TensorFlow FID Inception of 2015-12-05 as a PyTorch state
dict, `pt_inception-2015-12-05-6726825d.pth`, released at
https://github.com/mseitzer/pytorch-fid/releases (gankit never downloads them). This
script keeps the float tensors the FID network reads (it drops the batch norms'
`num_batches_tracked` counters and the auxiliary classifier, which FID does not use) and
writes them as float32 safetensors, without the `safetensors` package:

    venv/bin/pip install torch
    venv/bin/python scripts/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception.safetensors
    gankit evaluator import-inception inception.safetensors

gankit then checks every tensor's name and shape and stores the file with its SHA-256.
"""
import json
import struct
import sys

import torch


def main(src, dst):
    state = torch.load(src, map_location="cpu", weights_only=True)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    kept = {
        name: t.detach().to(torch.float32).contiguous()
        for name, t in state.items()
        if torch.is_floating_point(t) and not name.startswith("AuxLogits.")
    }
    header, blobs, offset = {}, [], 0
    for name in sorted(kept):
        data = kept[name].numpy().tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(kept[name].shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    dropped = len(state) - len(kept)
    print(f"wrote {len(kept)} tensors to {dst} ({dropped} dropped: counters, auxiliary head)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: convert_inception.py WEIGHTS.pth OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
