#!/usr/bin/env python3
"""Make the PyTorch reference fixtures in Tests/Fixtures/torch/{mlp,cnn,zoo}/.

Each directory holds a model directory written by scripts/export_torch.py
(config.json + model.safetensors, fixed seeded random float32 weights) and:

  inputs.npy           float32 [5, *input_shape]  seeded standard normal
  targets.npy          int32   [5]                a class per input
  logits.npy           float64 [5, classes]       model output, PyTorch in float64
  input_grads.npy      float64 like inputs        d(sum_i logits[i, targets[i]]) / d inputs
  hidden.npy           float64 [5, ...]           output of layer index 1
  hidden_grads.npy     float64 like hidden.npy    d(same scalar) / d(output of layer index 1)
  logits_f32.npy       float32                    the same, PyTorch in float32
  input_grads_f32.npy  float32
  hidden_grads_f32.npy float32
  meta.json            shapes, seeds, versions, margins (see below)

The float64 references come from the model cast with .double(); its weights
and the inputs are float32 values, so the cast is exact and the float64
results are the reference for both precisions.

Models:
  mlp  input [20]:        Linear 20->32, ReLU, Linear 32->16, Tanh, Linear 16->5
  cnn  input [2, 9, 11]:  Conv2d 2->4 3x3 s1 p1, ReLU, MaxPool2d 2, Conv2d 4->6 k[2,3] s[1,2] p[0,1],
                          Sigmoid, AvgPool2d 2, Flatten, Linear 6->7
  zoo  input [12]:        Linear 12->16, LayerNorm 16, GELU(none), Linear 16->16, GELU(tanh),
                          Softplus, Linear 16->8, Sigmoid, Linear 8->6, LogSoftmax
Layer index 1 is ReLU (mlp, cnn) and LayerNorm (zoo).

The script checks that no ReLU input is within 1e-3 of 0 and no max-pool
window has its top two values within 1e-3 of each other unless they are both
exactly 0 (so float32 and float64 pick the same branches); meta.json records
the margins. Windows of the cnn fixture that are all ReLU zeros are exact ties:
PyTorch sends their gradient to the first maximum in row-major window order,
which hidden_grads.npy therefore tests (see docs/model-format.md).

Run (from anywhere):
    pip install -r scripts/requirements-fixtures.txt
    python Tests/Fixtures/torch/make_fixtures.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_torch import export  # noqa: E402

BATCH = 5
HIDDEN_LAYER = 1
MIN_MARGIN = 1e-3


def build(name: str) -> tuple[nn.Sequential, list[int]]:
    if name == "mlp":
        return nn.Sequential(
            nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.Tanh(), nn.Linear(16, 5),
        ), [20]
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, stride=1, padding=1), nn.ReLU(),         # 4 x 9 x 11
            nn.MaxPool2d(2, stride=2),                                  # 4 x 4 x 5 (floor)
            nn.Conv2d(4, 6, (2, 3), stride=(1, 2), padding=(0, 1)),     # 6 x 3 x 3
            nn.Sigmoid(),
            nn.AvgPool2d(2, stride=2),                                  # 6 x 1 x 1
            nn.Flatten(),                                               # 6
            nn.Linear(6, 7),
        ), [2, 9, 11]
    if name == "zoo":
        return nn.Sequential(
            nn.Linear(12, 16), nn.LayerNorm(16), nn.GELU(approximate="none"),
            nn.Linear(16, 16), nn.GELU(approximate="tanh"), nn.Softplus(),
            nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 6), nn.LogSoftmax(dim=-1),
        ), [12]
    raise ValueError(name)


def randomize(model: nn.Sequential, g: torch.Generator) -> None:
    """Seeded weights: default-like scale, LayerNorm affine made non-trivial."""
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, (nn.Linear, nn.Conv2d)):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * (1.5 / fan_in ** 0.5))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.3)
            elif isinstance(layer, nn.LayerNorm):
                layer.weight.copy_(1.0 + 0.3 * torch.randn(layer.weight.shape, generator=g))
                layer.bias.copy_(0.3 * torch.randn(layer.bias.shape, generator=g))


def run(model: nn.Sequential, x: torch.Tensor, targets: torch.Tensor):
    """Output, input gradient, hidden output and hidden gradient of sum_i out[i, t_i]."""
    x = x.clone().requires_grad_(True)
    store = {}

    def hook(_m, _inp, out):
        out.retain_grad()
        store["hidden"] = out

    h = model[HIDDEN_LAYER].register_forward_hook(hook)
    try:
        out = model(x)
    finally:
        h.remove()
    out.gather(1, targets[:, None]).sum().backward()
    hidden = store["hidden"]
    return out.detach(), x.grad.detach(), hidden.detach(), hidden.grad.detach()


def margins(model: nn.Sequential, x: torch.Tensor) -> dict:
    """Smallest |ReLU input| and smallest top-2 gap in a max-pool window (float64)."""
    out = {}
    with torch.no_grad():
        for idx, layer in enumerate(model):
            if isinstance(layer, nn.ReLU):
                out[f"{idx}.ReLU.min_abs_input"] = x.abs().min().item()
            if isinstance(layer, nn.MaxPool2d):
                kh, kw = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (layer.kernel_size,) * 2
                s = layer.stride if isinstance(layer.stride, tuple) else (layer.stride,) * 2
                win = x.unfold(2, kh, s[0]).unfold(3, kw, s[1]).reshape(*x.shape[:2], -1, kh * kw)
                top2 = win.topk(2, dim=-1).values
                gap = top2[..., 0] - top2[..., 1]
                tied = gap == 0
                if bool((top2[..., 0][tied] != 0).any()):
                    raise RuntimeError("exact max-pool tie at a non-zero value")
                # Exact ties at 0 (windows of ReLU zeros) are the same in both
                # precisions; they test the first-maximum gradient rule.
                out[f"{idx}.MaxPool2d.min_nonzero_top2_gap"] = gap[~tied].min().item()
                out[f"{idx}.MaxPool2d.windows_tied_at_zero"] = int(tied.sum().item())
            x = layer(x)
    return out


def make(name: str, seed: int) -> dict:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model, input_shape = build(name)
    randomize(model, g)
    model = model.float().eval()
    out_dir = os.path.join(HERE, name)
    export(model, input_shape, out_dir)

    x32 = torch.randn([BATCH] + input_shape, generator=g, dtype=torch.float32)
    with torch.no_grad():
        classes = model(x32).shape[1]
    targets = torch.randint(0, classes, (BATCH,), generator=g)

    logits32, igrad32, _, hgrad32 = run(model, x32, targets)
    model64 = build(name)[0].double().eval()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x64 = x32.double()
    logits64, igrad64, hidden64, hgrad64 = run(model64, x64, targets)

    m = margins(model64, x64)
    for k, v in m.items():
        if not k.endswith("tied_at_zero") and v < MIN_MARGIN:
            raise RuntimeError(f"{name}: margin {k} = {v:g} < {MIN_MARGIN}; pick another seed")

    arrays = {
        "inputs": x32.numpy().astype(np.float32),
        "targets": targets.numpy().astype(np.int32),
        "logits": logits64.numpy(),
        "input_grads": igrad64.numpy(),
        "hidden": hidden64.numpy(),
        "hidden_grads": hgrad64.numpy(),
        "logits_f32": logits32.numpy().astype(np.float32),
        "input_grads_f32": igrad32.numpy().astype(np.float32),
        "hidden_grads_f32": hgrad32.numpy().astype(np.float32),
    }
    for k, a in arrays.items():
        np.save(os.path.join(out_dir, k + ".npy"), np.ascontiguousarray(a))

    def rel(a, b):
        return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))

    meta = {
        "model": name,
        "seed": seed,
        "input_shape": input_shape,
        "classes": int(classes),
        "scalar": "sum_i logits[i, targets[i]] (logits = model output)",
        "hidden_layer_index": HIDDEN_LAYER,
        "hidden_layer_type": type(model[HIDDEN_LAYER]).__name__,
        "shapes": {k: list(a.shape) for k, a in arrays.items()},
        "dtypes": {k: str(a.dtype) for k, a in arrays.items()},
        "margins": m,
        "f32_vs_f64_max_rel_err": {
            "logits": rel(arrays["logits_f32"], arrays["logits"]),
            "input_grads": rel(arrays["input_grads_f32"], arrays["input_grads"]),
            "hidden_grads": rel(arrays["hidden_grads_f32"], arrays["hidden_grads"]),
        },
        "torch": torch.__version__.split("+")[0],
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    return meta


def main() -> int:
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    for name, seed in [("mlp", 1), ("cnn", 2), ("zoo", 3)]:
        meta = make(name, seed)
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in meta["shapes"].items()))
        print(f"     margins {meta['margins']}  f32 rel err {meta['f32_vs_f64_max_rel_err']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
