#!/usr/bin/env python3
"""Integrated Gradients throughput (input·steps per second): Captum + PyTorch against Attrib.

Same machine, same thread count, same weights, same inputs. Work on both
sides: Gauss-Legendre IG with m steps from the zero baseline to each input,
target = one class per input (the input's label for the digits models).

Captum side (CPU, or CUDA with --torch-device cuda): IntegratedGradients(model).attribute(x, baselines=0,
target=t, n_steps=m, method="gausslegendre", internal_batch_size=B), weights
frozen (requires_grad_(False)), B chosen so one internal batch holds at most
--batch-mb MB (default 256) of activations and their gradients (the estimate
per row is printed).

Attrib side, for each --devices entry:
    attrib ig --model DIR --inputs X.npy --targets T.npy --steps M
              --method gauss_legendre --baseline zero --device SPEC --json --out OUTDIR
              --warmup --no-heatmaps
with OPENBLAS_NUM_THREADS = --threads; its JSON "seconds" (wall time of the
sweep, model load and the warm-up excluded) and "inputStepsPerSecond" are read.
--warmup runs the same IG on one input first, as the Captum side's first run
does. Both sides are timed in interleaved rounds (attrib, then Captum) on the
same prefix, and the medians are printed, with the median of the rounds' own
ratios beside them ("paired rounds"): on a shared machine whose speed drifts,
a round's two runs see the same phase. Rounds: --repeat (default 3), or more
where one Captum run is short, as many as the budget holds up to
--max-repeat (default 9): a sweep that attrib finishes in a few tens of ms
is one sample of a noisy machine, and a median of 3 such samples still
swings by a quarter from one run of the script to the next.

Direct PyTorch side ("torch"): the same IG written as a user would write it
without Captum, the strongest thing a user would write instead: every
(input, step) row of a block of inputs interpolated at once, one forward and
one backward per batch of at most the Captum side's internal batch size (the
target outputs summed, so one backward gives every row's gradient), the
Gauss-Legendre weights applied and summed on the tensor. Timed in the same
rounds as Captum and attrib; its ratio is printed beside Captum's.

Limit (CPU, models whose only weighted layers are Linear: the MLPs): the input·steps/s of IG
doing nothing but the products no engine can skip (product_limit: the hidden layers' forward
and input-gradient products, at the faster of torch's and OpenBLAS's rate for those shapes),
printed with each side's share of it and the most any engine could gain over direct PyTorch.
The ONNX models get the same limit from the products PyTorch dispatches for a batch of 4 rows
(layer_product_limit: convolutions and their input gradients, linear layers and theirs,
attention's batched matmuls, less the first layer's and the head's), each at the faster of its
PyTorch time and attrib's OpenBLAS time as a plain GEMM, with the useful rate it implies as a
share of the GEMM rate: the most any engine could reach on the "share of the BLAS rate" line.
--limit-only prints the limits and useful work and times nothing else.

Models: digits-cnn and digits-mlp (Models/), and a wide MLP 784-4096-4096-10
with seeded random weights, exported with scripts/export_torch.py to a temp
dir so both sides use the same weights. Models unlike the bundled ones, with
seeded random weights and the digits inputs (issue 16: speed must hold on
models the project did not make): relu-cnn (the digits CNN's sizes with ReLU
and max pooling), tanh-mlp (64-256-256-10, Tanh), s2-cnn (5x5 stride-2
convolutions, Sigmoid, global average pooling as an average pooling over the
whole plane). Through ONNX files (graphs the Sequential format cannot hold): res-mlp (a
residual MLP, 64 -> 64 Tanh -> 64, + x, ReLU -> 10) and resnet18 (torchvision's, random
weights, 224x224 RGB inputs drawn N(0, 1)) and resnet50 (the same), resnext50 (torchvision's resnext50_32x4d: grouped convolutions; the same), mobilenet-v3-small (torchvision's: depthwise
convolutions, Hardswish, squeeze-excitation; the same inputs), efficientnet-b0 (torchvision's: depthwise
3x3 and 5x5, SiLU, squeeze-excitation; the same), vit-tiny and vit-b16 (Hugging Face's
ViTForImageClassification at DeiT-tiny's and ViT-B/16's sizes, random weights, the same inputs), tv-vit-b16
(torchvision's vit_b_16, exported as scripts/export_onnx.py exports it), densenet121, squeezenet1-1, googlenet, swin-t and mobilenet-v2
(torchvision's, random weights, the same inputs: norms no convolution absorbs, ceil_mode pooling, shifted windows, ReLU6). Inputs 1, 64, 1024 (digits: the test
inputs repeated; wide MLP: seeded U[0,1) of shape [N, 784]); m = 64, 512.

Time budget: big configurations take far too long on a few cores (1024 inputs
x 512 steps on the wide MLP is tens of TFLOP), so each configuration gets
--budget seconds per side: Captum runs IG on 1 input (one full IG run, the
warm-up; timed again if it was short), then on the prefix of the N inputs a
quarter of the budget allows at that rate, then on the longest prefix that
fits the budget at the improved rate (at least 1 input, never less than one
full IG run); the last run is the measurement. The number of inputs timed is printed; the
engine runs on the same prefix. Throughput per input·step is the figure, so
a prefix is a fair measurement.

For the wide MLP the useful GFLOP/s of each side is printed too: only the
products IG needs per input·step, forward 2·(784·4096 + 4096·4096 + 4096·10)
and backward to the input 2·(4096·10 + 4096·4096 + 4096·784) flops, and
their share of a measured float32 GEMM rate (torch a @ b, 1024x4096 by
4096x4096, same process and threads) and, for attrib's CPU backend, of the
rate of its own BLAS (`attrib bench gemm --sizes 4096`, same threads).

For every other model: the products one (input, step) row of plain IG needs, counted by
torch's FlopCounterMode over one forward and one backward to the input with frozen weights
(useful_flops), each side's rate in useful GFLOP/s as a share of torch's GEMM rate and of
OpenBLAS's (`attrib bench gemm --sizes 4096`), and the most an engine doing that work could
be over direct PyTorch on this host: all of it at the faster of the two GEMM rates.
(attrib's fused first affine layer skips that layer's per-step share, so its "useful" rate
counts work it did not do.)

Peak memory: each side's peak resident memory. attrib's is its process's (the summary's
peakResidentBytes); Captum's and direct PyTorch's are this process's over their last run,
from the kernel's VmHWM reset before it (/proc/self/clear_refs), printed with how much that
peak is above what the process held before the run (the model, torch and the inputs).

    python3 Benchmarks/ig_throughput.py [--threads 2] [--budget 20] [--devices cpu,opencl]
        [--models digits-cnn,digits-mlp,wide-mlp] [--inputs 1,64,1024] [--steps 64,512]
        [--attrib .build/release/attrib] [--captum-only] [--torch-device cuda] [--engine-timeout S]

--engine-only times attrib alone on all N inputs (no Captum, no ratio): the
figure for large N where Captum's budget covers only a prefix.

On a GPU host (Benchmarks/gpu_host.sh): --torch-device cuda --devices opencl.
Captum then runs on CUDA in float32 with TF32 off (attrib's kernels are plain
FP32; --precision tf32 turns TF32 on for both sides, attrib's --precision tf32), timed with torch.cuda.synchronize() before each clock read. The GEMM
rate printed is then torch's on CUDA, and attrib's own share is of its
Kernels/gemm.cl rate on that device (`attrib bench gemm --device opencl`).

Needs torch, captum (pip install captum==0.9.0 next to
scripts/requirements-fixtures.txt) and, unless --captum-only, a release build
of attrib (swift build -c release --product attrib).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDE = [784, 4096, 4096, 10]
# products IG needs per input·step on the wide MLP: forward + backward to the input
WIDE_FLOPS = 2 * (784 * 4096 + 4096 * 4096 + 4096 * 10) + 2 * (4096 * 10 + 4096 * 4096 + 4096 * 784)


def parse_ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def bytes_per_row(torch, model, input_shape) -> int:
    """float32 bytes of one row's activations (input + every layer output), x2 for their gradients."""
    n = 1
    for d in input_shape:
        n *= d
    sizes = [n]
    # Every leaf module's output (any module, not only nn.Sequential: ResNet, a residual MLP).
    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda mod, i, o: sizes.append(o.numel())) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    finally:
        for h in hooks:
            h.remove()
    return 4 * sum(sizes) * 2


def sync(torch, device: str) -> None:
    """CUDA work is asynchronous: wait for it before reading the clock."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def captum_ig(torch, IntegratedGradients, model, x, t, m, batch_rows, device="cpu"):
    ig = IntegratedGradients(model)
    b = max(batch_rows, x.shape[0])      # Captum needs internal_batch_size >= inputs
    sync(torch, device)
    t0 = time.perf_counter()
    a = ig.attribute(x, baselines=0, target=t, n_steps=m, method="gausslegendre", internal_batch_size=b)
    sync(torch, device)
    del a
    return time.perf_counter() - t0, b


def direct_ig(torch, model, x, t, m, batch_rows, device="cpu"):
    """IG written directly in PyTorch: all (input, step) rows of a block of inputs in one
    tensor, one forward and one backward per batch of at most batch_rows rows, the
    Gauss-Legendre weights applied to the gradients and summed over steps on the tensor."""
    import numpy as np
    nodes, weights = np.polynomial.legendre.leggauss(m)
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device)
    w = torch.tensor(weights / 2, dtype=x.dtype, device=x.device)
    per = max(1, batch_rows // m)                       # inputs per batch
    view = (-1,) + (1,) * (x.dim() - 1)
    sync(torch, device)
    t0 = time.perf_counter()
    out = []
    for lo in range(0, x.shape[0], per):
        xb, tb = x[lo:lo + per], t[lo:lo + per]
        k = xb.shape[0]
        # rows [k, m] + sample: baseline 0, so the path point is alpha * x
        path = (xb.unsqueeze(1) * alphas.view((1, m) + (1,) * (x.dim() - 1))).reshape((k * m,) + tuple(x.shape[1:]))
        path.requires_grad_(True)
        y = model(path)
        sel = y.gather(1, tb.repeat_interleave(m).view(-1, 1)).sum()
        g, = torch.autograd.grad(sel, path)
        g = g.view((k, m) + tuple(x.shape[1:]))
        out.append(xb * (g * w.view((1, m) + (1,) * (x.dim() - 1))).sum(1))
    a = torch.cat(out)
    sync(torch, device)
    del a
    return time.perf_counter() - t0


def unlike_model(torch, name):
    """Models unlike the bundled ones (seeded random weights), each nn.Sequential over the
    digits inputs [1, 8, 8]."""
    nn = torch.nn
    torch.manual_seed(1)
    if name == "relu-cnn":      # the digits CNN's sizes, ReLU and max pooling
        layers = [nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1),
                  nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10)]
    elif name == "tanh-mlp":
        layers = [nn.Flatten(), nn.Linear(64, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)]
    elif name == "s2-cnn":      # 5x5 stride-2 convolutions, Sigmoid, global average pooling
        layers = [nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.Sigmoid(), nn.Conv2d(32, 64, 5, stride=2, padding=2),
                  nn.Sigmoid(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 10)]
    else:
        raise ValueError(name)
    return nn.Sequential(*layers).eval()


UNLIKE = ("relu-cnn", "tanh-mlp", "s2-cnn")
# Graphs the Sequential format cannot hold, through ONNX (torch.onnx.export, the TorchScript
# exporter, opset 17, a dynamic batch): attrib reads the .onnx file, Captum and the direct
# PyTorch side run the module it came from.
ONNX_MODELS = ("res-mlp", "resnet18", "resnet50", "resnext50", "mobilenet-v3-small", "efficientnet-b0", "vit-tiny", "vit-b16", "tv-vit-b16",
               "densenet121", "squeezenet1-1", "googlenet", "swin-t", "mobilenet-v2")


def onnx_model(torch, name, path):
    """(module, per-sample input shape) of an ONNX benchmark model, exported to `path`."""
    nn = torch.nn
    torch.manual_seed(1)
    if name == "res-mlp":       # x [64] -> fc1 -> Tanh -> fc2 -> (+ x) -> ReLU -> fc3 [10]: a skip add
        class ResMLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2, self.fc3 = nn.Linear(64, 64), nn.Linear(64, 64), nn.Linear(64, 10)

            def forward(self, x):
                return self.fc3(torch.relu(self.fc2(torch.tanh(self.fc1(x))) + x))
        model, shape = ResMLP().eval(), [64]
    elif name in ("resnet18", "resnet50", "resnext50"):    # torchvision's, random weights, 224x224 RGB (resnext50: 32x4d, grouped convolutions)
        import torchvision
        model, shape = getattr(torchvision.models, "resnext50_32x4d" if name == "resnext50" else name)(weights=None).eval(), [3, 224, 224]
    elif name == "mobilenet-v3-small":        # torchvision's: depthwise convolutions, Hardswish, squeeze-excitation
        import torchvision
        torch.manual_seed(1)
        model, shape = torchvision.models.mobilenet_v3_small(weights=None).eval(), [3, 224, 224]
    elif name == "efficientnet-b0":           # torchvision's: depthwise 3x3 and 5x5, SiLU (Sigmoid then Mul in ONNX), squeeze-excitation
        import torchvision
        model, shape = torchvision.models.efficientnet_b0(weights=None).eval(), [3, 224, 224]
    elif name in ("densenet121", "squeezenet1-1", "googlenet", "swin-t", "mobilenet-v2"):
        # torchvision's, random weights, 224x224: DenseNet's norms before each convolution (no
        # convolution absorbs them), SqueezeNet's and GoogLeNet's ceil_mode max pooling, Swin's
        # shifted windows (the batch merged with the windows, strided slices), MobileNetV2's ReLU6.
        import torchvision
        ctor = {"densenet121": "densenet121", "squeezenet1-1": "squeezenet1_1", "googlenet": "googlenet", "swin-t": "swin_t",
                "mobilenet-v2": "mobilenet_v2"}[name]
        kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        model, shape = getattr(torchvision.models, ctor)(weights=None, **kw).eval(), [3, 224, 224]
    elif name in ("vit-tiny", "vit-b16"):     # Hugging Face's ViTForImageClassification, random weights, 224x224, 16x16 patches
        from transformers import ViTConfig, ViTForImageClassification
        size = dict(hidden_size=192, num_hidden_layers=12, num_attention_heads=3, intermediate_size=768) if name == "vit-tiny" \
            else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
        vit = ViTForImageClassification(ViTConfig(image_size=224, patch_size=16, num_labels=1000, attn_implementation="eager", **size))

        class Logits(nn.Module):
            def __init__(self):
                super().__init__()
                self.vit = vit

            def forward(self, x):
                return self.vit(pixel_values=x).logits
        model, shape = Logits().eval(), [3, 224, 224]
    elif name == "tv-vit-b16":                # torchvision's vit_b_16, random weights (its zero head drawn N(0, 0.02²))
        import torchvision
        model, shape = torchvision.models.vit_b_16(weights=None).eval(), [3, 224, 224]
        nn.init.normal_(model.heads.head.weight, std=0.02)
    else:
        raise ValueError(name)
    # Written as scripts/export_onnx.py writes it: nn.MultiheadAttention batch-first (torchvision's ViT).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from export_onnx import batch_first_attention
    torch.onnx.export(batch_first_attention(model), (torch.zeros([2] + shape),), path, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    return model, shape


# --precision: passed to every attrib run (set by main).
ENGINE_EXTRA: list = []


def run_engine(binary, device, model_dir, x_path, t_path, m, threads, out_dir, timeout=None):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "ig", "--model", model_dir, "--inputs", x_path, "--targets", t_path,
           "--steps", str(m), "--method", "gauss_legendre", "--baseline", "zero",
           "--device", device, "--json", "--out", out_dir, "--force", "--warmup", "--no-heatmaps"] + ENGINE_EXTRA
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"`{' '.join(cmd)}` ran past --engine-timeout ({timeout:g} s) and was stopped")
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {p.returncode}:\n{p.stderr.strip()[-2000:]}")
    # one JSON object on stdout (tolerate log lines before it)
    text = p.stdout.strip()
    start = text.find("{")
    if start < 0:
        raise RuntimeError(f"`{' '.join(cmd)}` printed no JSON object:\n{text[-2000:]}")
    r = json.loads(text[start:])
    for k in ("seconds", "inputStepsPerSecond"):
        if k not in r:
            raise RuntimeError(f"attrib's JSON lacks {k!r}: {r}")
    return r


def blas_rate(binary, threads, device="cpu") -> float:
    """float32 GFLOP/s of attrib's GEMM on a device at 4096^3, from `attrib bench gemm --json`
    (on "cpu" that is OpenBLAS; on an OpenCL device, Kernels/gemm.cl with its tuned tiles)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    p = subprocess.run([binary, "bench", "gemm", "--sizes", "4096", "--device", device, "--json"] + ENGINE_EXTRA,
                       capture_output=True, text=True, env=env, check=True)
    text = p.stdout.strip()
    return float(json.loads(text[text.find("["):])[0]["gflops"])


def gemm_rate(torch, device="cpu") -> float:
    """float32 GFLOP/s of a @ b, 1024x4096 by 4096x4096 (best of 5 after a warm-up)."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(1024, 4096, generator=g).to(device)
    b = torch.rand(4096, 4096, generator=g).to(device)
    a @ b
    sync(torch, device)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        sync(torch, device)
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024 * 4096 * 4096 / best / 1e9


def product_limit(torch, binary, model, threads, rows=4096):
    """For a model whose only weighted layers are nn.Linear (the MLPs): the input·steps/s at
    which IG would run if it did nothing but the products no engine can skip, or None.
    Those are the hidden layers' (every Linear but the first, whose IG path is affine in alpha
    and summed over the steps before its one product per input, and the last, whose input
    gradient for one target is a row of its weight): x·Wᵀ forward and dy·W backward per row,
    each timed at `rows` rows with torch (MKL) and with attrib's OpenBLAS (`attrib bench gemm
    --shapes`), the faster of the two. Elementwise work, which no engine skips either, is left
    out, so this bounds every engine from above."""
    weighted = [m for m in model.modules() if not list(m.children()) and any(True for _ in m.parameters())]
    if not weighted or not all(isinstance(m, torch.nn.Linear) for m in weighted):
        return None
    hidden = weighted[1:-1]
    if not hidden:
        return None
    torch_secs = 0.0
    shapes = []
    for lin in hidden:
        o, i = lin.weight.shape
        w = lin.weight.detach()
        x, dy = torch.rand(rows, i), torch.rand(rows, o)
        for a, b in ((x, w.t()), (dy, w)):
            a @ b
            best = float("inf")
            for _ in range(20):
                t0 = time.perf_counter()
                a @ b
                best = min(best, time.perf_counter() - t0)
            torch_secs += best
        shapes += [f"{rows}x{o}x{i}", f"{rows}x{i}x{o}"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    p = subprocess.run([binary, "bench", "gemm", "--device", "cpu", "--shapes", ",".join(shapes), "--json"],
                       capture_output=True, text=True, env=env, check=True)
    text = p.stdout.strip()
    blas_secs = sum(2 * r["m"] * r["n"] * r["k"] / (r["gflops"] * 1e9) for r in json.loads(text[text.find("["):]))
    secs = min(torch_secs, blas_secs)
    flops = sum(4 * lin.weight.shape[0] * lin.weight.shape[1] for lin in hidden)
    return rows / secs, (f"{len(hidden)} hidden product(s), {flops / 1e3:.0f} kFLOP per input·step, "
                         f"{rows} rows: torch {flops * rows / torch_secs / 1e9:.0f}, "
                         f"OpenBLAS {flops * rows / blas_secs / 1e9:.0f} GFLOP/s")


def recorded_products(torch, model, shape, images):
    """The products one IG batch of `images` rows runs in PyTorch, as dispatched: a forward and a
    backward to the input with the weights frozen (what the direct side runs). Returns
    (forward, backward) lists of (aten op, args) with each tensor argument replaced by its
    shape (a tuple; the ops' int-list arguments stay lists), in call order: convolutions,
    convolution_backward, mm, addmm, bmm."""
    from torch.utils._python_dispatch import TorchDispatchMode
    aten = torch.ops.aten
    wanted = {aten.convolution.default, aten.convolution_backward.default, aten.mm.default,
              aten.addmm.default, aten.bmm.default}
    calls = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func in wanted:
                calls.append((func, [tuple(a.shape) if isinstance(a, torch.Tensor) else a for a in args]))
            return func(*args, **(kwargs or {}))

    x = torch.rand([images] + list(shape), requires_grad=True)
    with Record():
        y = model(x)
        n_forward = len(calls)
        y.reshape(images, -1)[:, 0].sum().backward()
    return calls[:n_forward], calls[n_forward:]


def gemm_form(func, shapes, torch):
    """(m, n, k, count) of the plain GEMMs a recorded product is (a convolution as im2col's
    product, per group), or None where it is not one attrib's OpenBLAS runs (grouped convolutions)."""
    aten = torch.ops.aten
    if func == aten.convolution.default:
        x, w, groups = shapes[0], shapes[1], shapes[8]
        stride, pad, dil = shapes[3], shapes[4], shapes[5]
        if groups != 1:
            return None
        oh = (x[2] + 2 * pad[0] - dil[0] * (w[2] - 1) - 1) // stride[0] + 1
        ow = (x[3] + 2 * pad[1] - dil[1] * (w[3] - 1) - 1) // stride[1] + 1
        return w[0], x[0] * oh * ow, w[1] * w[2] * w[3], 1
    if func == aten.convolution_backward.default:
        dy, w, groups = shapes[0], shapes[2], shapes[9]
        if groups != 1:
            return None
        return w[1] * w[2] * w[3], dy[0] * dy[2] * dy[3], w[0], 1
    if func == aten.mm.default:
        a, b = shapes[0], shapes[1]
        return a[0], b[1], a[1], 1
    if func == aten.addmm.default:
        a, b = shapes[1], shapes[2]
        return a[0], b[1], a[1], 1
    if func == aten.bmm.default:
        a, b = shapes[0], shapes[1]
        return a[1], b[2], a[2], a[0]
    return None


def layer_product_limit(torch, binary, model, shape, threads, images=4):
    """For any model (an MLP has product_limit): the input·steps/s at which IG would run if it
    did nothing but the products no engine can skip, each at the faster of PyTorch's rate and
    attrib's OpenBLAS's rate for that product's shape, everything else free; or None.
    The products are those the direct side dispatches for a batch of `images` rows (convolutions
    and their input gradients, linear layers and theirs, attention's batched matmuls), less the
    first product of the forward and the last of the backward (the first layer: IG's path is
    affine in alpha up to its output, so its products run once per input, not per step) and
    the last product of the forward and the first of the backward where they are the head's
    (one target's logit and its input gradient are a row of the head's weight). PyTorch's time
    is each product re-run alone on random operands of its shapes (best of 10); OpenBLAS's is
    `attrib bench gemm --shapes` on the same products as plain GEMMs (a convolution as im2col's
    product, with no im2col or col2im counted; grouped convolutions and fused attention kernels
    are timed on PyTorch alone)."""
    forward, backward = recorded_products(torch, model, shape, images)
    if not forward:
        return None
    aten = torch.ops.aten
    head = forward[-1][0] in (aten.mm.default, aten.addmm.default) and backward and backward[0][0] == aten.mm.default
    forward = forward[1:-1] if head else forward[1:]
    backward = (backward[1:] if head else backward)[:-1]
    ops = forward + backward
    if not ops:
        return None

    def operand(s):
        return torch.rand(s) if isinstance(s, tuple) else s

    torch_secs = []
    for func, shapes in ops:
        args = [operand(s) for s in shapes]
        if func == aten.convolution_backward.default:
            args[-1] = [True, False, False]          # the input's gradient alone: weights are frozen
        func(*args)
        best = float("inf")
        for _ in range(10):
            t0 = time.perf_counter()
            func(*args)
            best = min(best, time.perf_counter() - t0)
        torch_secs.append(best)
    forms = [gemm_form(f, s, torch) for f, s in ops]
    unique = sorted({(m, n, k) for g in forms if g for m, n, k, _ in [g]})
    rate = {}
    if unique:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
        p = subprocess.run([binary, "bench", "gemm", "--device", "cpu", "--shapes", ",".join(f"{m}x{n}x{k}" for m, n, k in unique),
                            "--json"], capture_output=True, text=True, env=env, check=True)
        text = p.stdout.strip()
        rate = {(r["m"], r["n"], r["k"]): r["gflops"] for r in json.loads(text[text.find("["):])}
    blas_secs = [g[3] * 2 * g[0] * g[1] * g[2] / (rate[g[:3]] * 1e9) if g else float("inf") for g in forms]
    secs = sum(min(t, b) for t, b in zip(torch_secs, blas_secs))
    flops = sum(2 * g[0] * g[1] * g[2] * g[3] for g in forms if g)
    on_blas = sum(1 for t, b in zip(torch_secs, blas_secs) if b < t)
    return images / secs, (f"{len(forward)} forward and {len(backward)} backward products at {images} rows a batch, "
                           f"{flops / images / 1e9:.2f} GFLOP per input·step as plain GEMMs; PyTorch alone "
                           f"{images / sum(torch_secs):.2f}, OpenBLAS where it is faster ({on_blas} of {len(ops)}) "
                           f"{images / secs:.2f} input·steps/s")


def useful_flops(torch, model, shape) -> int:
    """FLOPs of the products one (input, step) row of plain IG needs: one forward and one
    backward to the input with the weights frozen, counted by torch's FlopCounterMode as the
    direct PyTorch side runs them (convolutions, linear layers, attention's matmuls; elementwise
    work is not counted). An engine that fuses the first affine layer (attrib) skips that
    layer's share per step, so its 'useful' rate counts work it did not have to do."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros([1] + list(shape), requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        y = model(x)
        y.reshape(1, -1)[:, 0].sum().backward()     # x alone requires a gradient
    return int(fc.get_total_flops())


def status_bytes(field):
    """A memory figure of this process from /proc/self/status (VmHWM, VmRSS), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


PEAK_START = {"rss": None}


def peak_reset() -> None:
    """Resets this process's peak resident memory (VmHWM) to what is resident now (Linux), and
    notes that figure: a torch side's peak is printed with what the process held before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    PEAK_START["rss"] = status_bytes("VmRSS")


def peak_bytes():
    """(peak resident bytes since the last peak_reset, resident bytes at that reset), or None."""
    peak = status_bytes("VmHWM")
    return None if peak is None else (peak, PEAK_START["rss"])


def gib(b) -> str:
    """A peak figure: bytes, or (peak, resident before) as 'peak (+ growth)'."""
    if b is None:
        return "?"
    if isinstance(b, tuple):
        peak, start = b
        return f"{peak / 2**30:.2f} GiB" + (f" (+{(peak - start) / 2**30:.2f} over the process before it)" if start else "")
    return f"{b / 2**30:.2f} GiB"


def wide_mlp(torch):
    """The wide MLP 784-4096-4096-10 with ReLUs, weights drawn after torch.manual_seed(0)."""
    torch.manual_seed(0)
    layers = []
    for i in range(len(WIDE) - 1):
        layers.append(torch.nn.Linear(WIDE[i], WIDE[i + 1]))
        if i < len(WIDE) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def save_prefix(tmp, name, xs, ts, n):
    """The first n inputs and targets as .npy files for attrib; their paths."""
    import numpy as np
    x_path, t_path = os.path.join(tmp, f"{name}_x_{n}.npy"), os.path.join(tmp, f"{name}_t_{n}.npy")
    np.save(x_path, np.ascontiguousarray(xs[:n]))
    np.save(t_path, np.ascontiguousarray(ts[:n].astype(np.int32)))
    return x_path, t_path


def median_run(runs):
    """The run of median time among attrib's JSON summaries."""
    return sorted(runs, key=lambda v: float(v["seconds"]))[len(runs) // 2]


def flops_text(rate, gemm, dev=None, blas=None) -> str:
    """Wide-MLP useful GFLOP/s at `rate` input·steps/s, as shares of torch's GEMM rate and,
    for an attrib device, of that device's own GEMM rate."""
    gf = rate * WIDE_FLOPS / 1e9
    text = f"  {gf:7.1f} GFLOP/s = {100 * gf / gemm:5.1f}% of GEMM"
    if dev is not None and dev in blas:
        own = "OpenBLAS" if dev == "cpu" else "its own"
        text += f" = {100 * gf / blas[dev]:5.1f}% of {own} GEMM"
    return text


def useful_text(rate, flops, gemm, blas, dev=None) -> str:
    """Useful GFLOP/s at `rate` input·steps/s, as shares of torch's and OpenBLAS's GEMM rates."""
    gf = rate * flops / 1e9
    text = f"  {gf:7.1f} useful GFLOP/s = {100 * gf / gemm:5.1f}% of torch's GEMM"
    if dev is not None and dev in blas:
        text += f" = {100 * gf / blas[dev]:5.1f}% of {'OpenBLAS' if dev == 'cpu' else 'its own'} GEMM"
    return text


def engine_only(args, binary, devices, tmp, name, mdir, xs, ts, n, m, gemm, blas) -> int:
    """--engine-only: attrib on all n inputs, median of --repeat runs; returns the failures."""
    x_path, t_path = save_prefix(tmp, name, xs, ts, n)
    failures = 0
    for dev in devices:
        out_dir = os.path.join(tmp, "out")
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            runs = [run_engine(binary, dev, mdir, x_path, t_path, m, args.threads, out_dir, args.engine_timeout)
                    for _ in range(args.repeat)]
        except (RuntimeError, OSError, json.JSONDecodeError) as e:
            print(f"  N={n:5d} m={m:4d}  attrib {dev}: FAILED: {e}", flush=True)
            failures += 1
            continue
        r = median_run(runs)
        rate = float(r["inputStepsPerSecond"])
        line = f"  N={n:5d} m={m:4d}  attrib {dev:10s} {rate:12.1f} ({float(r['seconds']):6.3f} s, {r.get('rowsPerBatch', '?')} rows per batch)"
        if name == "wide-mlp":
            line += flops_text(rate, gemm, dev, blas)
        print(line, flush=True)
    return failures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=20.0, help="seconds per configuration and side")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per configuration and side; the median is reported (a shared machine is noisy)")
    ap.add_argument("--max-repeat", type=int, default=9,
                    help="rounds where one Captum run is short: as many as --budget seconds of Captum runs hold, "
                         "at least --repeat and at most this")
    ap.add_argument("--models", default="digits-cnn,digits-mlp,wide-mlp")
    ap.add_argument("--inputs", default="1,64,1024")
    ap.add_argument("--steps", default="64,512")
    ap.add_argument("--devices", default="cpu,opencl", help="attrib --device specs, comma-separated")
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--batch-mb", type=float, default=256.0,
                    help="Captum internal batch: at most this many MB of activations + gradients")
    ap.add_argument("--captum-only", action="store_true", help="time Captum only (no attrib binary needed)")
    ap.add_argument("--torch-device", default="cpu",
                    help="where Captum + PyTorch run: cpu, or cuda on a GPU host (float32 throughout: "
                         "TF32 is switched off for matmul and cuDNN, as attrib's kernels are plain FP32)")
    ap.add_argument("--limit-only", action="store_true",
                    help="print each model's useful work and product limit, and time nothing else")
    ap.add_argument("--engine-only", action="store_true",
                    help="time attrib alone on all N inputs of each configuration (no Captum run, no ratio)")
    ap.add_argument("--engine-timeout", type=float, default=None,
                    help="seconds after which one attrib run is stopped and counted as failed")
    ap.add_argument("--precision", choices=["fp32", "tf32"], default="fp32",
                    help="matrix-product arithmetic on both sides: fp32, or tf32 (attrib --precision tf32; "
                         "PyTorch with allow_tf32 for matmul and cuDNN), TF32 against TF32")
    args = ap.parse_args()
    if args.precision != "fp32":
        ENGINE_EXTRA.extend(["--precision", args.precision])

    models_wanted = [s.strip() for s in args.models.split(",") if s.strip()]
    known = {"digits-cnn", "digits-mlp", "wide-mlp", *UNLIKE, *ONNX_MODELS}
    if set(models_wanted) - known:
        ap.error(f"unknown model(s) {sorted(set(models_wanted) - known)}; choose from {sorted(known)}")
    inputs_list, steps_list = parse_ints(args.inputs), parse_ints(args.steps)
    devices = [] if args.captum_only else [d.strip() for d in args.devices.split(",") if d.strip()]
    binary = os.path.abspath(args.attrib)
    if not args.captum_only and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"error: attrib binary not found (or not executable) at {binary}\n"
              f"       build it with `swift build -c release --product attrib`, pass --attrib PATH,\n"
              f"       or run with --captum-only to time Captum alone.", file=sys.stderr)
        return 2

    if not args.captum_only:
        try:
            h = subprocess.run([binary, "help", "ig"], capture_output=True, text=True, timeout=60)
            usage = h.stdout + h.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            usage = f"(could not run it: {e})"
        if "attrib ig" not in usage or "--steps" not in usage:
            print(f"error: the attrib binary at {binary} has no `ig` subcommand with --steps\n"
                  f"       (`attrib help ig` printed: {usage.strip().splitlines()[:3]})\n"
                  f"       rebuild it with `swift build -c release --product attrib`, pass --attrib PATH,\n"
                  f"       or run with --captum-only to time Captum alone.", file=sys.stderr)
            return 2

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    try:
        import captum
        from captum.attr import IntegratedGradients
    except ImportError:
        print("error: captum is not installed (pip install captum==0.9.0)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    tdev = args.torch_device
    if tdev.startswith("cuda"):
        if not torch.cuda.is_available():
            print("error: --torch-device cuda, but torch sees no CUDA device", file=sys.stderr)
            return 2
        torch.backends.cuda.matmul.allow_tf32 = args.precision == "tf32"
        torch.backends.cudnn.allow_tf32 = args.precision == "tf32"
    print(f"precision: {args.precision} on both sides")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from export_torch import export, load

    tmp = tempfile.mkdtemp(prefix="ig_throughput_")
    try:
        data = os.path.join(ROOT, "Models", "digits-data")
        digits_x = np.load(os.path.join(data, "test_inputs.npy")).astype(np.float32)
        digits_t = np.load(os.path.join(data, "test_labels.npy")).astype(np.int32)
        n_max = max(inputs_list)
        reps = -(-n_max // len(digits_x))
        models = []
        for name in models_wanted:
            if name == "wide-mlp":
                mdir = os.path.join(tmp, "wide-mlp")
                export(wide_mlp(torch), [784], mdir)
                rng = np.random.default_rng(0)
                xs = rng.random((n_max, 784), dtype=np.float32)
                ts = rng.integers(0, 10, n_max).astype(np.int32)
                label = "wide-mlp 784-4096-4096-10"
            elif name in UNLIKE:
                mdir = os.path.join(tmp, name)
                export(unlike_model(torch, name), [1, 8, 8], mdir)
                xs = np.concatenate([digits_x] * reps)[:n_max]
                ts = np.concatenate([digits_t] * reps)[:n_max]
                label = name + " (unlike the bundled models, random weights)"
            elif name in ONNX_MODELS:
                mdir = os.path.join(tmp, name + ".onnx")
                model, shape = onnx_model(torch, name, mdir)
                if name == "res-mlp":
                    xs = np.concatenate([digits_x] * reps)[:n_max].reshape(n_max, 64)
                    ts = np.concatenate([digits_t] * reps)[:n_max]
                else:
                    rng = np.random.default_rng(0)
                    xs = rng.standard_normal([n_max] + shape, dtype=np.float32)
                    ts = rng.integers(0, 1000, n_max).astype(np.int32)
                label = name + " (ONNX, random weights)"
                for p in model.parameters():
                    p.requires_grad_(False)
                models.append((name, label, mdir, model, shape, xs, ts))
                continue
            else:
                mdir = os.path.join(ROOT, "Models", name)
                xs = np.concatenate([digits_x] * reps)[:n_max]
                ts = np.concatenate([digits_t] * reps)[:n_max]
                label = name
            model, cfg = load(mdir)
            for p in model.parameters():
                p.requires_grad_(False)
            models.append((name, label, mdir, model, cfg["input_shape"], xs, ts))

        print(f"threads {args.threads} (torch.set_num_threads; OPENBLAS_NUM_THREADS for attrib), "
              f"budget {args.budget:g} s per configuration and side; torch {torch.__version__}, "
              f"captum {captum.__version__}, numpy {np.__version__}; torch device {tdev}"
              + (f" ({torch.cuda.get_device_name(0)}, TF32 {'on' if args.precision == 'tf32' else 'off'})" if tdev.startswith("cuda") else ""))
        gemm = None
        blas: dict[str, float] = {}
        if "wide-mlp" in models_wanted:
            gemm = gemm_rate(torch, tdev)
            where = f"{args.threads} threads" if tdev == "cpu" else tdev
            print(f"measured GEMM rate (torch float32 a @ b, 1024x4096x4096, {where}): "
                  f"{gemm:.1f} GFLOP/s; wide-MLP IG work: {WIDE_FLOPS / 1e6:.2f} MFLOP per input·step")
            for dev in devices:
                blas[dev] = blas_rate(binary, args.threads, dev)
                what = "OpenBLAS sgemm" if dev == "cpu" else "Kernels/gemm.cl"
                print(f"measured GEMM rate of attrib on {dev} ({what}, 4096^3, `attrib bench gemm`): "
                      f"{blas[dev]:.1f} GFLOP/s")
        print("'timed' = inputs actually timed (a prefix of N that fits the budget); rates in input·steps/s")
        print()

        failures = 0
        for name, label, mdir, model, input_shape, xs, ts in models:
            bpr = bytes_per_row(torch, model, input_shape)
            model.to(tdev)
            batch_rows = max(1, int(args.batch_mb * 2**20 // bpr))
            print(f"== {label}: Captum internal_batch_size = max(timed inputs, {batch_rows}) "
                  f"(~{bpr / 1024:.1f} KiB activations+grads per row, <= {args.batch_mb:g} MB per internal batch)")
            limit = product_limit(torch, binary, model, args.threads) if tdev == "cpu" and binary else None
            if limit is None and tdev == "cpu" and binary and name in ONNX_MODELS:
                limit = layer_product_limit(torch, binary, model, input_shape, args.threads)
            if limit:
                print(f"   limit: {limit[0]:12.1f} input·steps/s doing only the products no engine skips ({limit[1]})")
            # Every other model: its useful FLOPs per input·step, each side's rate in GFLOP/s as a
            # share of the GEMM rates, and the input·steps/s at which those FLOPs would run at the
            # faster GEMM's rate: no engine that does them all can be faster on this host.
            flops = None
            if name != "wide-mlp":
                flops = useful_flops(torch, model.cpu(), input_shape)
                model.to(tdev)
                if gemm is None:
                    gemm = gemm_rate(torch, tdev)
                    print(f"   measured GEMM rate (torch float32 a @ b, 1024x4096x4096): {gemm:.1f} GFLOP/s")
                for dev in devices:
                    if dev not in blas:
                        blas[dev] = blas_rate(binary, args.threads, dev)
                        print(f"   measured GEMM rate of attrib on {dev} (`attrib bench gemm --sizes 4096`): {blas[dev]:.1f} GFLOP/s")
                best = max([gemm] + list(blas.values()))
                print(f"   useful work: {flops / 1e6:.3f} MFLOP per input·step (forward + backward to the input, "
                      f"torch's FlopCounterMode); at {best:.1f} GFLOP/s, the faster GEMM here: {best * 1e9 / flops:.2f} input·steps/s")
                if limit:
                    print(f"   at the limit the useful rate would be {limit[0] * flops / 1e9:.1f} GFLOP/s: "
                          f"{100 * limit[0] * flops / 1e9 / best:.1f}% of the faster GEMM's {best:.1f}")
            if args.limit_only:
                print()
                continue
            for n_inputs in inputs_list:
                for m in steps_list:
                    if args.engine_only:
                        failures += engine_only(args, binary, devices, tmp, name, mdir, xs, ts, n_inputs, m, gemm, blas)
                        continue
                    x_all = torch.from_numpy(xs[:n_inputs]).to(tdev)
                    t_all = torch.from_numpy(ts[:n_inputs].astype(np.int64)).to(tdev)
                    # Calibration on 1 input (one full IG run; also the warm-up), then on a
                    # quarter of the budget's worth of inputs, then the timed prefix.
                    # Peak resident memory of this process over the last run of each torch side
                    # (VmHWM reset before each run; the last Captum run is on the timed prefix).
                    peaks = {"captum": None, "direct": None}

                    def run(k):
                        peak_reset()
                        out = captum_ig(torch, IntegratedGradients, model, x_all[:k], t_all[:k], m, batch_rows, tdev)
                        peaks["captum"] = peak_bytes()
                        return out
                    t1, _ = run(1)
                    n = 1
                    secs, b = run(1) if t1 < args.budget / 2 else (t1, max(batch_rows, 1))
                    rate = 1 / secs                                   # inputs per second
                    n2 = min(n_inputs, int(0.25 * args.budget * rate))
                    if n2 > 1:
                        n = n2
                        secs, b = run(n2)
                        rate = n2 / secs
                    n3 = min(n_inputs, max(1, int(0.9 * args.budget * rate)))
                    if n3 > n:
                        n = n3
                        secs, b = run(n3)
                    if devices:
                        x_path, t_path = save_prefix(tmp, name, xs, ts, n)
                    # The measurement: rounds of one attrib run per device then one Captum run
                    # (the last calibration run is the first Captum run), so both sides see the
                    # same phases of a shared machine; medians, and the median of the rounds'
                    # ratios. Short runs get more rounds (up to --max-repeat), as the budget allows.
                    rounds = max(args.repeat, min(args.max_repeat, int(args.budget / max(secs, 1e-9))))
                    times = [secs]
                    direct = []
                    engine: dict[str, list] = {dev: [] for dev in devices}
                    failed: dict[str, str] = {}
                    for rnd in range(rounds):
                        for dev in devices:
                            if dev in failed:
                                continue
                            out_dir = os.path.join(tmp, "out")
                            shutil.rmtree(out_dir, ignore_errors=True)
                            try:
                                engine[dev].append(run_engine(binary, dev, mdir, x_path, t_path, m, args.threads, out_dir,
                                                              args.engine_timeout))
                            except (RuntimeError, OSError, json.JSONDecodeError) as e:
                                failed[dev] = str(e)
                        peak_reset()
                        direct.append(direct_ig(torch, model, x_all[:n], t_all[:n], m, b, tdev))
                        peaks["direct"] = peak_bytes()
                        if rnd < rounds - 1:
                            times.append(run(n)[0])
                    secs = statistics.median(times)
                    c_rate = n * m / secs
                    line = (f"  N={n_inputs:5d} m={m:4d}  timed {n:5d}  Captum {c_rate:12.1f} "
                            f"({secs:6.2f} s, B={b}, {rounds} rounds)")
                    if name == "wide-mlp":
                        line += flops_text(c_rate, gemm)
                    elif flops:
                        line += useful_text(c_rate, flops, gemm, blas)
                    if peaks["captum"]:
                        line += f"  peak RSS {gib(peaks['captum'])}"
                    print(line, flush=True)
                    d_secs = statistics.median(direct)
                    d_rate = n * m / d_secs
                    line = f"      torch direct      {d_rate:12.1f} ({d_secs:6.2f} s)  ratio torch/Captum {d_rate / c_rate:6.2f}x"
                    if name == "wide-mlp":
                        line += flops_text(d_rate, gemm)
                    elif flops:
                        line += useful_text(d_rate, flops, gemm, blas)
                    line += f"  peak RSS {gib(peaks['direct'])}"
                    print(line, flush=True)
                    for dev in devices:
                        if dev in failed:
                            failures += 1
                            print(f"      attrib {dev}: FAILED: {failed[dev]}", flush=True)
                            continue
                        runs = engine[dev]
                        r = median_run(runs)
                        paired = statistics.median(float(v["inputStepsPerSecond"]) / (n * m / t) for v, t in zip(runs, times))
                        e_rate = float(r["inputStepsPerSecond"])
                        paired_d = statistics.median(float(v["inputStepsPerSecond"]) / (n * m / t) for v, t in zip(runs, direct))
                        line = (f"      attrib {dev:10s} {e_rate:12.1f} ({float(r['seconds']):6.2f} s)  "
                                f"ratio attrib/Captum {e_rate / c_rate:6.2f}x (paired rounds {paired:6.2f}x)  "
                                f"attrib/torch direct {e_rate / d_rate:6.2f}x (paired {paired_d:6.2f}x)")
                        if name == "wide-mlp":
                            line += flops_text(e_rate, gemm, dev, blas)
                        elif flops:
                            line += useful_text(e_rate, flops, gemm, blas, dev)
                        line += f"  peak RSS {gib(r.get('peakResidentBytes'))}"
                        print(line, flush=True)
                        if flops and dev == "cpu" and not limit:
                            best = max([gemm] + list(blas.values()))
                            print(f"      at the faster GEMM's rate: torch direct {100 * d_rate * flops / 1e9 / best:5.1f}%, "
                                  f"attrib {100 * e_rate * flops / 1e9 / best:5.1f}%; the most an engine doing this work could be "
                                  f"over torch direct here: {best * 1e9 / flops / d_rate:5.2f}x", flush=True)
                        if limit and dev == "cpu":
                            print(f"      of the limit: attrib {100 * e_rate / limit[0]:5.1f}%, torch direct {100 * d_rate / limit[0]:5.1f}%; "
                                  f"the most any engine could be over torch direct here: {limit[0] / d_rate:5.2f}x", flush=True)
            print()
        if gemm is not None:
            print(f"GEMM rate re-measured at the end: {gemm_rate(torch, tdev):.1f} GFLOP/s "
                  f"(shares above use the first, {gemm:.1f}; the two differ when the machine is busy)")
        if failures:
            print(f"{failures} attrib run(s) failed", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
