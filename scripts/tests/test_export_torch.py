#!/usr/bin/env python3
"""Tests of scripts/export_torch.py: BatchNorm folding and Dropout dropping against the
original module's outputs, the refusals that name the layer, and the messages a saved
state_dict, a checkpoint dict and a class from the user's own script get.

    python3 scripts/tests/test_export_torch.py      # needs torch and safetensors
"""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import torch  # noqa: E402
from torch import nn  # noqa: E402

import export_torch  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export_torch.py")


def _randomize_bn(bn: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
        if bn.affine:
            bn.weight.copy_(torch.randn(bn.num_features, generator=g))
            bn.bias.copy_(torch.randn(bn.num_features, generator=g))


class Net(nn.Module):
    """A model that is not an nn.Sequential."""
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 2)

    def forward(self, x):
        return self.a(x)


class SimplifyTests(unittest.TestCase):
    def test_folds_and_drops(self):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout2d(0.3),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Identity(),
                          nn.Linear(8, 3))
        _randomize_bn(m[1], 1)
        _randomize_bn(m[6], 2)
        m.eval()
        s, notes = export_torch.simplify(m)
        self.assertEqual([type(l).__name__ for l in s], ["Conv2d", "ReLU", "Flatten", "Linear", "Linear"])
        self.assertEqual(len(notes), 5)
        self.assertIn("layer 1 (BatchNorm2d) folded into layer 0 (Conv2d)", notes[0])
        self.assertIn("layer 3 (Dropout2d) dropped", notes[1])
        x = torch.randn(5, 1, 6, 6)
        with torch.no_grad():
            # float32 rounding of the folded weights: |Δ| well under 1e-5 at these magnitudes.
            torch.testing.assert_close(s(x), m(x), rtol=1e-5, atol=1e-5)
        with tempfile.TemporaryDirectory() as d:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                cfg = export_torch.export(m, [1, 6, 6], d)
            self.assertNotIn("BatchNorm", str(cfg["layers"]))
            self.assertIn("note: layer 6 (BatchNorm1d) folded into layer 5 (Linear)", err.getvalue())
            reloaded, _ = export_torch.load(d)
            with torch.no_grad():
                torch.testing.assert_close(reloaded(x), m(x), rtol=1e-5, atol=1e-5)

    def test_batchnorm_without_a_layer_to_fold_into(self):
        m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4)).eval()
        with self.assertRaisesRegex(ValueError, r"layer 2 \(BatchNorm1d\) comes after layer 1 \(ReLU\)"):
            export_torch.simplify(m)
        first = nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)).eval()
        with self.assertRaisesRegex(ValueError, r"layer 0 \(BatchNorm1d\) comes first"):
            export_torch.simplify(first)
        stats = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
        with self.assertRaisesRegex(ValueError, "track_running_stats=False"):
            export_torch.simplify(stats)


class LoadMessageTests(unittest.TestCase):
    def run_cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)

    def test_state_dict(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "sd.pt")
            torch.save(nn.Sequential(nn.Linear(3, 2)).state_dict(), p)
            r = self.run_cli(p, os.path.join(d, "out"), "--input-shape", "3")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("holds a state_dict", r.stderr)
            self.assertIn("load_state_dict", r.stderr)
            self.assertNotIn("Traceback", r.stderr)

    def test_checkpoint_dict(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "ckpt.pt")
            torch.save({"epoch": 3, "model": nn.Sequential(nn.Linear(3, 2)).state_dict()}, p)
            r = self.run_cli(p, os.path.join(d, "out"), "--input-shape", "3")
            self.assertEqual(r.returncode, 1)
            self.assertIn("keys epoch, model", r.stderr)

    def test_class_from_the_users_script(self):
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "my_model.py")
            with open(script, "w") as f:
                f.write(textwrap.dedent("""
                    import sys, torch
                    from torch import nn
                    class Scaled(nn.Sequential):
                        pass
                    if __name__ == "__main__":
                        torch.manual_seed(0)
                        torch.save(Scaled(nn.Linear(3, 4), nn.Dropout(0.1), nn.ReLU(), nn.Linear(4, 2)), sys.argv[1])
                """))
            p = os.path.join(d, "m.pt")
            subprocess.run([sys.executable, script, p], check=True)
            r = self.run_cli(p, os.path.join(d, "out"), "--input-shape", "3")
            self.assertEqual(r.returncode, 1)
            self.assertIn("--import", r.stderr)
            self.assertIn("Scaled", r.stderr)
            ok = self.run_cli(p, os.path.join(d, "out"), "--input-shape", "3", "--import", script)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("note: layer 1 (Dropout) dropped", ok.stderr)

    def test_not_sequential(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "net.pt")
            torch.save(Net(), p)
            with self.assertRaisesRegex(ValueError, "not an nn.Sequential.*ONNX"):
                export_torch.load_module(p, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
