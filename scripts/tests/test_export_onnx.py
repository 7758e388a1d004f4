#!/usr/bin/env python3
"""Tests of scripts/export_onnx.py: a small CNN with BatchNorm, Hardswish and a residual add is
exported, and attrib (the debug or release build) loads it and matches PyTorch; labels and
preprocessing are written; bad arguments are refused.

    python3 scripts/tests/test_export_onnx.py      # needs torch, onnx and a built attrib
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch  # noqa: E402
from torch import nn  # noqa: E402

import export_onnx  # noqa: E402

try:                    # torchvision is optional: only the torchvision-ViT test needs it
    import torchvision  # noqa: F401
    HAVE_TORCHVISION = True
except ImportError:
    HAVE_TORCHVISION = False


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.body = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        y = nn.functional.hardswish(self.bn(self.conv(x)))
        y = torch.relu(y + self.body(y))
        return self.head(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))


class ExportONNXTests(unittest.TestCase):
    def test_export_and_check(self):
        torch.manual_seed(0)
        m = Residual().eval()
        with tempfile.TemporaryDirectory() as d:
            info = export_onnx.export(m, [3, 12, 12], d, labels=["a", "b", "c", "d"], mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
            self.assertLess(info["max_relative_difference"], 1e-4)
            self.assertEqual(json.load(open(os.path.join(d, "labels.json"))), ["a", "b", "c", "d"])
            self.assertEqual(json.load(open(os.path.join(d, "preprocessing.json")))["size"], [12, 12])

    def test_batch_first_attention(self):
        # The same function as nn.MultiheadAttention(batch_first=True), self- and cross-attention.
        torch.manual_seed(1)
        mha = nn.MultiheadAttention(12, 3, batch_first=True).eval()
        bfa = export_onnx.BatchFirstAttention(mha)
        q, kv = torch.randn(2, 5, 12), torch.randn(2, 7, 12)
        with torch.no_grad():
            for a, b in ((q, q), (q, kv)):
                want, _ = mha(a, b, b, need_weights=False)
                got, _ = bfa(a, b, b, need_weights=False)
                self.assertLess(float((got - want).abs().max()), 1e-5)
            with self.assertRaisesRegex(ValueError, "masks"):
                bfa(q, q, q, attn_mask=torch.zeros(5, 5))

    @unittest.skipUnless(HAVE_TORCHVISION, "torchvision is not installed (pip install torchvision): NOT run")
    def test_torchvision_vit(self):
        # torchvision's ViT, whose attention moves the batch axis as PyTorch computes it: written
        # batch-first, loaded by attrib and checked against the original module.
        torch.manual_seed(2)
        m = torchvision.models.vision_transformer.VisionTransformer(image_size=16, patch_size=8, num_layers=1, num_heads=2,
                                                                   hidden_dim=8, mlp_dim=16, num_classes=3).eval()
        nn.init.normal_(m.heads.head.weight)          # torchvision starts it at zero
        with tempfile.TemporaryDirectory() as d:
            info = export_onnx.export(m, [3, 16, 16], d)
            self.assertLess(info["max_relative_difference"], 1e-4)
        self.assertTrue(any(isinstance(x, nn.MultiheadAttention) for x in m.modules()), "the model itself is unchanged")

    def test_refusals(self):
        m = Residual().eval()
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ValueError, "3 labels for a model with 4 outputs"):
                export_onnx.export(m, [3, 8, 8], d, labels=["a", "b", "c"], check_with_attrib=False)
            with self.assertRaisesRegex(ValueError, "both mean and std"):
                export_onnx.export(m, [3, 8, 8], d, mean=[0.5, 0.5, 0.5], check_with_attrib=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
