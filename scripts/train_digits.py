#!/usr/bin/env python3
"""Train the two example models on scikit-learn's 8x8 digits and export them.

Makes (relative to the repository root):
  Models/digits-mlp/      config.json + model.safetensors  (Flatten, 64-128-64-10 MLP, GELU)
  Models/digits-cnn/      config.json + model.safetensors  (small CNN, see build_cnn)
  Models/digits-data/     test_inputs.npy  (float32 [360, 1, 8, 8], pixels in [0, 1])
                          test_labels.npy  (int32 [360])
                          train_inputs.npy (float32 [1437, 1, 8, 8])
                          train_labels.npy (int32 [1437])
                          accuracy.json    (test accuracy of each model)
Both models take input_shape [1, 8, 8] and output 10 logits (no softmax).

The data set ships inside scikit-learn (no download). Pixels are divided by 16;
the split is a stratified 80/20 with a fixed seed. Training is deterministic
(fixed seeds, 2 threads, torch.use_deterministic_algorithms) and takes well
under a minute on CPU.

Run from anywhere:
    pip install -r scripts/requirements-fixtures.txt
    python scripts/train_digits.py
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from torch import nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torch import export, load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 0
LABELS = [str(d) for d in range(10)]


# Smooth activations (GELU) and average pooling: the models are smooth along any
# straight path, so path integrals (IG and its relatives) converge at the rate
# of the quadrature rule. With ReLU and max pooling the integrand is piecewise
# constant, Gauss-Legendre loses its order, and at m = 64 the completeness gap
# stays around 1e-3 to 4e-3 of F(x) - F(x') (measured on the ReLU versions of
# these two models); float32 and float64 runs can also route gradients through
# different max-pool winners where a window ties.
def build_mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128), nn.GELU(),
        nn.Linear(128, 64), nn.GELU(),
        nn.Linear(64, 10),
    )


def build_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.GELU(),   # 16 x 8 x 8
        nn.AvgPool2d(2),                             # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1), nn.GELU(),  # 32 x 4 x 4
        nn.AvgPool2d(2),                             # 32 x 2 x 2
        nn.Flatten(),                                # 128
        nn.Linear(128, 10),
    )


def train(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
          seed: int, batch: int = 64) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    return model.eval()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main() -> int:
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]  # [1797, 1, 8, 8]
    labels = digits.target.astype(np.int32)
    xtr, xte, ytr, yte = train_test_split(images, labels, test_size=0.2, stratify=labels,
                                          random_state=SEED)

    data_dir = os.path.join(ROOT, "Models", "digits-data")
    os.makedirs(data_dir, exist_ok=True)
    for name, arr in [("train_inputs", xtr), ("train_labels", ytr),
                      ("test_inputs", xte), ("test_labels", yte)]:
        np.save(os.path.join(data_dir, name + ".npy"), np.ascontiguousarray(arr))

    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    xte_t, yte_t = torch.from_numpy(xte), torch.from_numpy(yte).long()

    results = {}
    for name, builder, epochs, lr in [("digits-mlp", build_mlp, 40, 2e-3),
                                      ("digits-cnn", build_cnn, 80, 5e-3)]:
        torch.manual_seed(SEED)
        model = train(builder(), xtr_t, ytr_t, epochs=epochs, lr=lr, seed=SEED)
        out_dir = os.path.join(ROOT, "Models", name)
        export(model, [1, 8, 8], out_dir, labels=LABELS)
        reloaded, _ = load(out_dir)  # measure what was written
        acc = accuracy(reloaded, xte_t, yte_t)
        results[name] = {"test_accuracy": round(acc, 6), "test_samples": len(yte),
                         "train_accuracy": round(accuracy(reloaded, xtr_t, ytr_t), 6),
                         "epochs": epochs}
        print(f"{name}: test accuracy {acc:.4f} ({round(acc * len(yte))}/{len(yte)})")
        if acc < 0.95:
            print(f"error: {name} test accuracy {acc:.4f} is below 0.95", file=sys.stderr)
            return 1

    results["split"] = {"seed": SEED, "test_size": 0.2, "stratified": True,
                        "train_samples": len(ytr), "pixel_scale": "x / 16"}
    results["versions"] = {"torch": torch.__version__, "numpy": np.__version__}
    with open(os.path.join(data_dir, "accuracy.json"), "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
