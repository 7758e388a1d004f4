#!/usr/bin/env python3
"""Fixtures for models unlike the bundled ones (issue 16): each a PyTorch nn.Sequential
with seeded random weights, exported with scripts/export_torch.py to <name>/ (config.json +
model.safetensors), with the first 4 digits test inputs and their labels:

    relu-cnn   the digits CNN's sizes with ReLU and max pooling
    tanh-mlp   64-256-256-10 with Tanh
    s2-cnn     5x5 stride-2 padded convolutions, Sigmoid, global average pooling (an
               average pooling over the whole 2x2 plane), Linear head
    fields-cnn the fields issue 22 implements: a dilated convolution (dilation 2), max
               pooling with padding 1, a grouped convolution (groups 2), a depthwise one
               (groups = channels), average pooling with padding and count_include_pad=False
    fields-avg average pooling with padding and count_include_pad=True, then a dilated
               convolution with dilation (1, 2)
    fields-ceil pooling with ceil_mode=True: max pooling 3 stride 2 on 8x8 (4x4 out, the last
               window one past the image), average pooling 3 stride 2 padding 1 with
               count_include_pad=True on 4x4 (3x3 out, the last window one past the padding,
               which its divisor counts and the overhang not)
    bn-cnn     what export_torch.simplify rewrites (issue 24): a bias-free Conv2d with
               BatchNorm2d, Dropout2d, a Linear with BatchNorm1d, Dropout, Identity; random
               running statistics. Its references come from the original module (BatchNorm
               and Dropout in eval mode), not from the folded export, so the test checks the fold.

and, computed in float64 (the float32 weights and inputs cast exactly):
    logits.npy         [4, 10]
    ig.npy, ig_delta.npy   Captum IntegratedGradients, Gauss-Legendre, 16 steps, zero
                       baseline, target = label (attributions [4, 1, 8, 8], deltas [4])
The same IG is checked here against a manual float64 sum over Captum's own nodes.

Run: pip install -r scripts/requirements-fixtures.txt captum==0.9.0
     python Tests/Fixtures/unlike/make_unlike_fixtures.py [NAME ...]   (default: every fixture)
(the script the benchmark's models share: Benchmarks/ig_throughput.py builds the same
three architectures, with another seed, for timing.)
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch
from torch import nn
from captum.attr import IntegratedGradients

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from export_torch import export, load  # noqa: E402

STEPS = 16


def build(name: str) -> nn.Sequential:
    torch.manual_seed({"relu-cnn": 21, "tanh-mlp": 22, "s2-cnn": 23, "fields-cnn": 24, "fields-avg": 25, "bn-cnn": 26, "fields-ceil": 27}[name])
    if name == "relu-cnn":
        layers = [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                  nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10)]
    elif name == "tanh-mlp":
        layers = [nn.Flatten(), nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)]
    elif name == "s2-cnn":
        layers = [nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.Sigmoid(), nn.Conv2d(32, 64, 5, stride=2, padding=2),
                  nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)]
    elif name == "fields-cnn":
        layers = [nn.Conv2d(1, 8, 3, padding=2, dilation=2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1),
                  nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Tanh(), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.Sigmoid(),
                  nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.Flatten(), nn.Linear(32, 10)]
    elif name == "fields-ceil":
        layers = [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, stride=2, ceil_mode=True), nn.Conv2d(4, 6, 3, padding=1),
                  nn.Tanh(), nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=True), nn.Flatten(), nn.Linear(6 * 9, 10)]
    elif name == "bn-cnn":
        layers = [nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.2),
                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 32), nn.BatchNorm1d(32), nn.Tanh(), nn.Dropout(0.5),
                  nn.Identity(), nn.Linear(32, 10)]
        for bn in (layers[1], layers[7]):
            with torch.no_grad():
                bn.running_mean.copy_(torch.randn(bn.num_features) * 0.5)
                bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
                bn.weight.copy_(torch.randn(bn.num_features))
                bn.bias.copy_(torch.randn(bn.num_features) * 0.5)
    else:
        layers = [nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True),
                  nn.Conv2d(4, 6, 3, padding=(1, 2), dilation=(1, 2)), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 64, 10)]
    return nn.Sequential(*layers).eval()


def main() -> None:
    data = os.path.join(ROOT, "Models", "digits-data")
    x32 = np.load(os.path.join(data, "test_inputs.npy")).astype(np.float32)[:4]
    t = np.load(os.path.join(data, "test_labels.npy")).astype(np.int32)[:4]
    only = set(sys.argv[1:])
    for name in ("relu-cnn", "tanh-mlp", "s2-cnn", "fields-cnn", "fields-avg", "bn-cnn", "fields-ceil"):
        if only and name not in only:
            continue
        out = os.path.join(HERE, name)
        export(build(name), [1, 8, 8], out)
        # Exactly what attrib reads; for bn-cnn the original module, so the fold is checked.
        model = build(name) if name == "bn-cnn" else load(out)[0]
        model = model.double().eval()
        for p in model.parameters():
            p.requires_grad_(False)
        x = torch.from_numpy(x32.astype(np.float64))
        tt = torch.from_numpy(t.astype(np.int64))
        with torch.no_grad():
            logits = model(x)
        ig = IntegratedGradients(model)
        a, delta = ig.attribute(x, baselines=0, target=tt, n_steps=STEPS, method="gausslegendre",
                                return_convergence_delta=True)
        # A manual IG over the same nodes: Σ_k w_k ∇F(α_k x) ⊙ x.
        nodes, weights = np.polynomial.legendre.leggauss(STEPS)
        manual = torch.zeros_like(x)
        for al, w in zip((nodes + 1) / 2, weights / 2):
            p = (al * x).requires_grad_(True)
            g, = torch.autograd.grad(model(p).gather(1, tt.view(-1, 1)).sum(), p)
            manual += w * g
        manual *= x
        err = (manual - a).abs().max().item() / a.abs().max().item()
        assert err < 1e-6, (name, err)       # Captum's nodes are float32-rounded: ~6e-8
        np.save(os.path.join(out, "inputs.npy"), x32)
        np.save(os.path.join(out, "targets.npy"), t)
        np.save(os.path.join(out, "logits.npy"), logits.numpy())
        np.save(os.path.join(out, "ig.npy"), a.numpy())
        np.save(os.path.join(out, "ig_delta.npy"), delta.numpy())
        print(f"{name}: logits {tuple(logits.shape)}, IG max {a.abs().max().item():.3e}, manual vs Captum {err:.1e}")


if __name__ == "__main__":
    main()
