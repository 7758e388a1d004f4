#!/usr/bin/env python3
"""Make Tests/Fixtures/safetensors/dtypes.safetensors and expected.json.

The file holds the same 8 values, chosen to be exact in every dtype
(0, 1, -2, 0.5, 3.25, -0.125, 1024, 0.0078125), as four [2, 4] row-major tensors:
  a_f32 (F32), a_f64 (F64), a_f16 (F16), a_bf16 (BF16)
written with safetensors.torch.save_file, with metadata {"note": "attrib dtype fixture"}.
expected.json lists the values, each tensor's dtype and shape, and the metadata.

Run (from anywhere):
    pip install -r scripts/requirements-fixtures.txt
    python Tests/Fixtures/safetensors/make.py
"""

import json
import os

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
VALUES = [0.0, 1.0, -2.0, 0.5, 3.25, -0.125, 1024.0, 0.0078125]
SHAPE = [2, 4]
TENSORS = {"a_f32": (torch.float32, "F32"), "a_f64": (torch.float64, "F64"),
           "a_f16": (torch.float16, "F16"), "a_bf16": (torch.bfloat16, "BF16")}
METADATA = {"note": "attrib dtype fixture"}


def main() -> None:
    base = torch.tensor(VALUES, dtype=torch.float64).reshape(SHAPE)
    tensors = {name: base.to(dt).contiguous() for name, (dt, _) in TENSORS.items()}
    for name, t in tensors.items():
        assert torch.equal(t.double(), base), f"{name} is not exact"
    path = os.path.join(HERE, "dtypes.safetensors")
    save_file(tensors, path, metadata=METADATA)
    os.chmod(path, 0o644)
    back = load_file(path)
    for name, t in tensors.items():
        assert back[name].dtype == t.dtype and torch.equal(back[name], t)
    expected = {"values": VALUES, "metadata": METADATA,
                "tensors": {name: {"dtype": code, "shape": SHAPE} for name, (_, code) in TENSORS.items()}}
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes) and expected.json")


if __name__ == "__main__":
    main()
