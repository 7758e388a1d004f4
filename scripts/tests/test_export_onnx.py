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

    def test_refusals(self):
        m = Residual().eval()
        with tempfile.TemporaryDirectory() as d:
            with self.assertRaisesRegex(ValueError, "3 labels for a model with 4 outputs"):
                export_onnx.export(m, [3, 8, 8], d, labels=["a", "b", "c"], check_with_attrib=False)
            with self.assertRaisesRegex(ValueError, "both mean and std"):
                export_onnx.export(m, [3, 8, 8], d, mean=[0.5, 0.5, 0.5], check_with_attrib=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
