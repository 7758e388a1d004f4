#!/usr/bin/env python3
"""Export a PyTorch classifier to an Attrib ONNX model directory, and check it.

Makes OUT_DIR/model.onnx (torch.onnx.export: the TorchScript exporter, opset 17, a dynamic
batch dimension, constant folding on), OUT_DIR/labels.json when labels are given, and
OUT_DIR/preprocessing.json when mean/std are given (recorded for image inputs). Then loads
the directory with `attrib predict` on a seeded random input and compares its probabilities
with the module's softmax: the export is only reported written once attrib reproduces it.

As a module:

    from export_onnx import export
    export(model, input_shape=[3, 224, 224], out_dir="my-resnet", labels=None,
           mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])

From the command line (a module saved whole with torch.save(model, path)):

    python3 scripts/export_onnx.py MODEL.pt OUT_DIR --input-shape 3 224 224 [--labels a b c]
        [--mean 0.485 0.456 0.406 --std 0.229 0.224 0.225] [--attrib .build/release/attrib]

Requirements: torch (and onnx, which torch.onnx.export needs). `--no-check` skips the attrib check.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_attrib(explicit: str | None) -> str | None:
    for p in [explicit, os.environ.get("ATTRIB_BINARY"), os.path.join(ROOT, ".build", "release", "attrib"),
              os.path.join(ROOT, ".build", "debug", "attrib"), shutil.which("attrib")]:
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def check(model: torch.nn.Module, input_shape: Sequence[int], out_dir: str, attrib: str, rtol: float = 1e-4) -> float:
    """Max |p_attrib - p_torch| / max p_torch over 2 seeded random inputs; raises if > rtol.
    rtol 1e-4: Float32 on both sides through the same network (the parity tests' bound)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2] + list(input_shape), generator=g)
    with torch.no_grad():
        ref = torch.softmax(model(x).reshape(2, -1).double(), dim=1).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        xp = os.path.join(tmp, "x.npy")
        np.save(xp, x.numpy())
        r = subprocess.run([attrib, "predict", "--device", "cpu", "--model", out_dir, "--inputs", xp, "--json"],
                           capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"attrib could not load {out_dir}: {r.stderr.strip()}")
    got = np.array([p["probabilities"] for p in json.loads(r.stdout)])
    err = float(np.abs(got - ref).max() / np.abs(ref).max())
    if not err <= rtol:
        raise RuntimeError(f"attrib's probabilities differ from PyTorch's by {err:.2e} (relative) in {out_dir}")
    return err


class BatchFirstAttention(torch.nn.Module):
    """nn.MultiheadAttention (batch_first=True, no masks, inference) written batch-first
    throughout, with the module's own parameters. Why: PyTorch's own forward moves the batch
    axis (it transposes to [L, N, E] and folds the heads into the batch), which the exporters
    write as it is. attrib follows the moved axis (its graph keeps the batch first in every
    value), but each of those transposes is then a copy within every sample; written batch-first,
    the attention has none of them. The same function: `export` checks the written file against
    the original module."""

    def __init__(self, mha: torch.nn.MultiheadAttention):
        super().__init__()
        self.mha = mha
        self.heads = mha.num_heads

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if key_padding_mask is not None or attn_mask is not None or is_causal:
            raise ValueError("BatchFirstAttention: masks are not supported")
        m = self.mha
        e, h = m.embed_dim, self.heads
        d = e // h
        w, b = m.in_proj_weight, m.in_proj_bias
        if w is None:
            raise ValueError("BatchFirstAttention: separate q/k/v projection weights are not supported")
        def project(x, i):
            y = x @ w[i * e:(i + 1) * e].t()
            return y if b is None else y + b[i * e:(i + 1) * e]
        n, lq, lk = query.shape[0], query.shape[1], key.shape[1]
        q = project(query, 0).reshape(n, lq, h, d).transpose(1, 2)            # [N, H, Lq, d]
        k = project(key, 1).reshape(n, lk, h, d).permute(0, 2, 3, 1)          # [N, H, d, Lk]
        v = project(value, 2).reshape(n, lk, h, d).transpose(1, 2)            # [N, H, Lk, d]
        a = torch.softmax((q @ k) * (1.0 / d ** 0.5), dim=-1)                 # [N, H, Lq, Lk]
        o = (a @ v).transpose(1, 2).reshape(n, lq, e)                         # [N, Lq, E]
        o = o @ m.out_proj.weight.t()
        if m.out_proj.bias is not None:
            o = o + m.out_proj.bias
        return o, None


def batch_first_attention(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose batch-first nn.MultiheadAttention modules are BatchFirstAttention
    (the model itself is not changed); `model` where it has none."""
    import copy
    if not any(isinstance(m, torch.nn.MultiheadAttention) and m.batch_first for m in model.modules()):
        return model
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.MultiheadAttention) and child.batch_first:
                setattr(parent, name, BatchFirstAttention(child))
    return out


def export(model: torch.nn.Module, input_shape: Sequence[int], out_dir: str, labels: Sequence[str] | None = None,
           mean: Sequence[float] | None = None, std: Sequence[float] | None = None, attrib: str | None = None,
           check_with_attrib: bool = True) -> dict:
    """Write OUT_DIR (model.onnx, labels.json, preprocessing.json) and check it with attrib."""
    model = model.eval()
    shape = [int(s) for s in input_shape]
    if not shape or any(s <= 0 for s in shape):
        raise ValueError(f"input_shape must be positive ints (one sample, no batch dimension), got {list(input_shape)}")
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    with torch.no_grad():
        out = model(torch.zeros([2] + shape))
    classes = int(np.prod(out.shape[1:]))
    # Attention written batch-first (torchvision's ViT); the check below compares with `model` itself.
    torch.onnx.export(batch_first_attention(model), (torch.zeros([2] + shape),), path, input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      dynamo=False)
    info = {"model": path, "input_shape": shape, "classes": classes}
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != classes:
            raise ValueError(f"{len(labels)} labels for a model with {classes} outputs")
        with open(os.path.join(out_dir, "labels.json"), "w") as f:
            json.dump(labels, f, indent=1)
        info["labels"] = len(labels)
    if mean is not None:
        if len(mean) != shape[0] or len(std) != shape[0] or any(s <= 0 for s in std):
            raise ValueError(f"mean and std need one value per channel ({shape[0]}), std > 0")
        with open(os.path.join(out_dir, "preprocessing.json"), "w") as f:
            json.dump({"mean": list(map(float, mean)), "std": list(map(float, std)), "size": shape[1:]}, f, indent=1)
    if check_with_attrib:
        binary = find_attrib(attrib)
        if binary is None:
            raise RuntimeError("no attrib binary to check the export with: build it (swift build -c release --product attrib), "
                               "pass --attrib PATH, or --no-check")
        info["max_relative_difference"] = check(model, shape, out_dir, binary)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="file saved with torch.save(module)")
    ap.add_argument("out_dir")
    ap.add_argument("--input-shape", type=int, nargs="+", required=True, help="one sample's shape, no batch dimension")
    ap.add_argument("--labels", nargs="+")
    ap.add_argument("--mean", type=float, nargs="+")
    ap.add_argument("--std", type=float, nargs="+")
    ap.add_argument("--attrib", help="the attrib binary to check the export with")
    ap.add_argument("--no-check", action="store_true", help="do not load the export with attrib")
    a = ap.parse_args(argv)
    try:
        model = torch.load(a.model, map_location="cpu", weights_only=False)
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{a.model} holds a {type(model).__name__}, not a torch.nn.Module (a state_dict? build the "
                             f"model, load_state_dict, and call export_onnx.export)")
        info = export(model, a.input_shape, a.out_dir, a.labels, a.mean, a.std, a.attrib, not a.no_check)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    extra = f"; attrib matches PyTorch to {info['max_relative_difference']:.1e}" if "max_relative_difference" in info else ""
    print(f"wrote {a.out_dir}: model.onnx, input {info['input_shape']}, {info['classes']} outputs{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
