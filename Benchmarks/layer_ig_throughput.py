#!/usr/bin/env python3
"""Layer IG on a BERT-style text classifier: attrib against Captum and against the same method
written directly in PyTorch, same threads, CPU.

Model: Hugging Face's BertForSequenceClassification (or --family roberta: RobertaFor…, whose
position ids attrib computes from the ids at run time) from transformers' constructor (random
weights, torch.manual_seed(0), eager attention, 2 labels) at bert-base's sizes (hidden 768,
12 layers, 12 heads, intermediate 3072) or bert-small's (--size small: 512, 4, 8, 2048), exported
to ONNX (TorchScript exporter, opset 17, dynamic batch) for attrib. Inputs: N sequences of T
random ids (seeded), target = class 1, baseline ids all the pad token (0 for BERT, 1 for
RoBERTa), Gauss-Legendre, m steps. The layer: the embeddings module's output (after its
LayerNorm), Captum's usual layer.

  Captum         LayerIntegratedGradients(model, model.bert.embeddings), internal_batch_size = R rows
  torch direct   the same integral by hand: the embeddings' outputs of the ids and the baseline,
                 then batches of R (input, step) rows, each one forward with a hook that replaces
                 the embeddings' output by the path point, and one backward (torch.autograd.grad)
                 to it; weights do not require gradients
  attrib         attrib layer-ig (its Float32 CPU backend), batches sized by its memory plan (the
                 rows it chose are printed), or --batch R with --attrib-batch rows

Captum and the direct side take R rows per batch (--rows); attrib takes what a user gets by
default, its planned batches, unless --attrib-batch rows gives it R too. (On the 2-core KVM
development VM, BERT-base at T = 128: 32 rows a batch touch about 6 GB of fresh memory, whose page
faults took a third of attrib's time; its plan chose 3 rows, 1.5x faster.) Rates are input·steps/s; the ratios are the
figures. Useful GFLOP/s assume 2·(multiply-adds) per forward plus the same for the backward to
the layer (no weight gradients), from the model's sizes, and are printed as a share of OpenBLAS's
GEMM rate (`attrib bench gemm --sizes 4096`), beside torch's (a @ b, 1024x4096x4096); the last
line is the most an engine doing that work could be over direct PyTorch: all of it at the faster
GEMM rate. Peak RSS: attrib's process (its summary's peakResidentBytes); Captum's and direct
PyTorch's, this process's over their run (VmHWM reset before each), with the growth over what
the process held before it.

Usage: python3 Benchmarks/layer_ig_throughput.py [--family bert|roberta] [--size base|small] [--inputs 16] [--tokens 128]
       [--steps 32] [--rows 32] [--threads 2] [--attrib .build/release/attrib] [--attrib-batch plan|rows]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The GEMM rates and peak-memory readers of the IG benchmark (same directory).
from ig_throughput import blas_rate, gemm_rate, gib, peak_bytes, peak_reset  # noqa: E402


class Logits(torch.nn.Module):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids):
        return self.bert(input_ids=input_ids).logits


def gauss_legendre(m):
    x, w = np.polynomial.legendre.leggauss(m)
    return (x + 1) / 2, w / 2


def direct(model, emb, pad, ids, target, m, rows):
    alphas, weights = gauss_legendre(m)
    with torch.no_grad():
        v = emb(input_ids=ids)
        vb = emb(input_ids=torch.full_like(ids, pad))
    n = ids.shape[0]
    total = torch.zeros_like(v)
    pairs = [(i, k) for i in range(n) for k in range(m)]
    for s in range(0, len(pairs), rows):
        chunk = pairs[s:s + rows]
        ii = torch.tensor([p[0] for p in chunk])
        a = torch.tensor([alphas[p[1]] for p in chunk], dtype=v.dtype).view(-1, 1, 1)
        point = (vb[ii] + a * (v[ii] - vb[ii])).requires_grad_(True)
        h = emb.register_forward_hook(lambda mod, inp, out: point)
        try:
            out = model(ids[ii])
        finally:
            h.remove()
        g, = torch.autograd.grad(out[:, target].sum(), point)
        w = torch.tensor([weights[p[1]] for p in chunk], dtype=v.dtype).view(-1, 1, 1)
        total.index_add_(0, ii, g * w)
    return (v - vb) * total


def macs_per_row(c, t):
    h, f, l = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    per_token_layer = 4 * h * h + 2 * h * f + 2 * t * h        # q, k, v, out; MLP; scores and values
    return l * t * per_token_layer + h * h + 2 * h              # + pooler and classifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="bert", choices=["bert", "roberta"])
    ap.add_argument("--size", default="base", choices=["base", "small"])
    ap.add_argument("--inputs", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--attrib-batch", default="plan", choices=["plan", "rows"],
                    help="attrib's batches: its memory plan (default) or --rows")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    size = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072) if a.size == "base" \
        else dict(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, intermediate_size=2048)
    if a.family == "bert":
        config = BertConfig(vocab_size=30522, max_position_embeddings=512, num_labels=2, attn_implementation="eager", **size)
        model = Logits(BertForSequenceClassification(config).eval()).eval()
        emb, pad = model.bert.bert.embeddings, 0
    else:
        config = RobertaConfig(vocab_size=50265, max_position_embeddings=514, pad_token_id=1, num_labels=2, attn_implementation="eager", **size)
        model = Logits(RobertaForSequenceClassification(config).eval()).eval()
        emb, pad = model.bert.roberta.embeddings, 1
    for p in model.parameters():
        p.requires_grad_(False)
    ids = torch.from_numpy(np.random.default_rng(0).integers(1000, 30000, (a.inputs, a.tokens)).astype(np.int64))
    target = 1
    print(f"layer IG, {a.family}-{a.size} (random weights), N = {a.inputs}, T = {a.tokens}, m = {a.steps}, {a.rows} rows per batch, "
          f"{a.threads} threads; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        mdir = os.path.join(tmp, "bert")
        os.makedirs(mdir)
        torch.onnx.export(model, (ids[:2],), os.path.join(mdir, "model.onnx"), input_names=["input_ids"], output_names=["logits"],
                          opset_version=17, dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
        np.save(os.path.join(tmp, "ids.npy"), ids.numpy().astype(np.int32))
        rows_total = a.inputs * a.steps
        flop = 2 * 2 * macs_per_row(config, a.tokens) * rows_total
        results, peaks = {}, {}
        peak_reset()
        t = time.perf_counter()
        lig = LayerIntegratedGradients(model, emb)
        ref = lig.attribute(ids, baselines=torch.full_like(ids, pad), target=target, n_steps=a.steps, method="gausslegendre",
                            internal_batch_size=a.rows)
        results["Captum"] = time.perf_counter() - t
        peaks["Captum"] = peak_bytes()
        peak_reset()
        t = time.perf_counter()
        mine = direct(model, emb, pad, ids, target, a.steps, a.rows)
        results["torch direct"] = time.perf_counter() - t
        peaks["torch direct"] = peak_bytes()
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads))
        cmd = [a.attrib, "layer-ig", "--model", mdir, "--inputs", os.path.join(tmp, "ids.npy"), "--target", str(target),
               "--steps", str(a.steps), "--device", "cpu", "--json", "--out", os.path.join(tmp, "out"), "--force",
               "--baseline-token", str(pad)]
        if a.attrib_batch == "rows":
            cmd += ["--batch", str(a.rows)]
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            sys.exit(f"attrib failed: {p.stderr[-2000:]}")
        s = json.loads(p.stdout[p.stdout.find("{"):])
        print(f"attrib batches: {s['rowsPerBatch']} rows ({'its memory plan' if a.attrib_batch == 'plan' else '--batch'}); "
              f"Captum and torch direct: {a.rows}")
        results["attrib (method)"] = s["seconds"]
        results["attrib (process)"] = wall
        peaks["attrib (method)"] = peaks["attrib (process)"] = s.get("peakResidentBytes")
        ours = np.load(os.path.join(tmp, "out", "attributions.npy"))
        err_direct = float((mine - ref).abs().max() / ref.abs().max())
        err_attrib = float(np.abs(ours - ref.numpy()).max() / ref.abs().max())
    print(f"agreement with Captum (max |diff| / max |Captum|): torch direct {err_direct:.1e}, attrib {err_attrib:.1e}")
    # The limit: every useful FLOP at the faster of the two GEMM rates measured here.
    torch_gemm, blas = gemm_rate(torch), blas_rate(a.attrib, a.threads)
    best = max(torch_gemm, blas)
    print(f"GEMM rates: torch {torch_gemm:.1f} GFLOP/s (1024x4096x4096), OpenBLAS {blas:.1f} (`attrib bench gemm --sizes 4096`); "
          f"useful work {flop / rows_total / 1e9:.2f} GFLOP per input·step")
    print(f"{'side':<18} {'seconds':>8} {'input·steps/s':>14} {'useful GFLOP/s':>15} {'% OpenBLAS':>10} {'vs Captum':>10} {'vs direct':>10}  peak RSS")
    for k, v in results.items():
        print(f"{k:<18} {v:8.2f} {rows_total / v:14.2f} {flop / v / 1e9:15.1f} {100 * flop / v / 1e9 / blas:9.1f}% "
              f"{results['Captum'] / v:9.2f}x {results['torch direct'] / v:9.2f}x  {gib(peaks.get(k))}")
    d = results["torch direct"]
    print(f"the most an engine doing this work could be over torch direct here (all of it at {best:.1f} GFLOP/s): "
          f"{best * 1e9 * d / flop:.2f}x")


if __name__ == "__main__":
    main()
