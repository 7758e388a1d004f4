#!/usr/bin/env python3
"""What --precision tf32 and bf16 do to each method's result, against fp32 on the same device.

Runs each method three times on DEVICE (fp32, tf32, bf16), same inputs and seeds, and
compares every .npy the method writes with the fp32 run's: max |x - x_fp32| / max |x_fp32|
(the difference relative to the result's scale), and for IG the completeness delta
(sum of attributions - (F(x) - F(baseline)), deltas.npy) under each precision.
Methods: IG (digits-cnn and digits-mlp, 64 inputs, m = 64, Gauss-Legendre), SmoothGrad
(digits-cnn, 64 inputs, 32 samples), Expected Gradients (digits-mlp, 64 inputs, 16 baselines,
64 samples), Sobol attribution (digits-cnn, 16 inputs, grid 4), AtP (the bundled induction
transformer, its 24 prompt pairs, heads).

    Benchmarks/precision_effect.py [--attrib PATH] [--device opencl:0]
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--device", default="opencl:0")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="precision_effect_")
    data = os.path.join(ROOT, "Models", "digits-data")
    x = os.path.join(data, "test_inputs.npy")
    t = os.path.join(data, "test_labels.npy")
    base = os.path.join(tmp, "baselines.npy")
    np.save(base, np.load(x)[-16:].astype(np.float32))
    common = ["--inputs", x, "--targets", t, "--no-heatmaps", "--quiet", "--force", "--seed", "7"]
    runs = {
        "ig digits-cnn": ["ig", "--model", "Models/digits-cnn", "--limit", "64", "--steps", "64", "--method", "gauss_legendre"] + common,
        "ig digits-mlp": ["ig", "--model", "Models/digits-mlp", "--limit", "64", "--steps", "64", "--method", "gauss_legendre"] + common,
        "smoothgrad digits-cnn": ["smoothgrad", "--model", "Models/digits-cnn", "--limit", "64", "--samples", "32", "--stdev", "0.1"] + common,
        "expected-gradients digits-mlp": ["expected-gradients", "--model", "Models/digits-mlp", "--limit", "64",
                                          "--baselines", base, "--samples", "64"] + common,
        "sobol digits-cnn": ["sobol", "--model", "Models/digits-cnn", "--limit", "16", "--grid", "4"] + common,
        "atp induction-2l": ["atp", "--model", "Models/induction-2l", "--pairs", "Models/induction-2l/prompts.json",
                             "--nodes", "heads", "--quiet", "--force"],
    }
    print(f"{'method':32} {'precision':9} {'file':22} {'max|Δ|/max|fp32|':>17}  note")
    for name, cmd in runs.items():
        outs = {}
        for prec in ("fp32", "tf32", "bf16"):
            out = os.path.join(tmp, name.replace(" ", "_") + "_" + prec)
            p = subprocess.run([args.attrib] + cmd + ["--device", args.device, "--precision", prec, "--out", out],
                               capture_output=True, text=True, cwd=ROOT)
            if p.returncode != 0:
                print(f"{name:32} {prec:9} failed: {p.stderr.strip()[-400:]}")
                continue
            outs[prec] = out
        if "fp32" not in outs:
            continue
        files = sorted(f for f in os.listdir(outs["fp32"]) if f.endswith(".npy"))
        for prec in ("tf32", "bf16"):
            if prec not in outs:
                continue
            for f in files:
                ref = np.load(os.path.join(outs["fp32"], f)).astype(np.float64)
                got = np.load(os.path.join(outs[prec], f)).astype(np.float64)
                if ref.shape != got.shape or not np.issubdtype(ref.dtype, np.floating):
                    continue
                scale = np.abs(ref).max()
                rel = np.abs(got - ref).max() / scale if scale > 0 else 0.0
                note = ""
                if f == "deltas.npy":
                    note = f"max |completeness delta|: fp32 {np.abs(ref).max():.2e}, {prec} {np.abs(got).max():.2e}"
                    rel = float("nan")
                print(f"{name:32} {prec:9} {f:22} {rel:>17.2e}  {note}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
