#!/usr/bin/env python3
"""Sobol attribution on the digits CNN: Attrib against the NumPy/PyTorch reference, same machine.

The reference is the independent implementation of Fel et al.'s steps in
Tests/Fixtures/sobol/make_sobol_fixtures.py (the one the tests check the engine
against): QMC design, nearest upsampling, inpainting with 0, PyTorch forward
passes in float32 in batches of --torch-batch, Jansen indices, bicubic resize.
Grid 8, N = 32: 2,112 forward passes per image.

    python3 Benchmarks/sobol_throughput.py [--images 16] [--threads 2] [--devices cpu,opencl]

Prints time per image, forward passes per second, the engine's share of time
outside the forward passes, and the ratio engine/reference.

    python3 Benchmarks/sobol_throughput.py --resnet18 [--grid 16] [--designs 8] [--images 1] [--devices cpu]

The same at 224 × 224 (issue 17): torchvision's ResNet-18 with seeded random weights, exported
with scripts/export_onnx.py, one seeded random image per --images, target its predicted class;
the reference forwards the masked images through the torch module in batches of --torch-batch.
Grid s, N designs: N·(s² + 2) forward passes per image (grid 16, N = 8: 2,064).
"""
import argparse, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--torch-batch", type=int, default=2112)
    ap.add_argument("--devices", default="cpu,opencl")
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--resnet18", action="store_true", help="ResNet-18 at 224 x 224 instead of the digits CNN")
    ap.add_argument("--grid", type=int, default=16, help="grid size with --resnet18")
    ap.add_argument("--designs", type=int, default=8, help="designs N with --resnet18")
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.resnet18:
        return resnet18(args)
    import numpy as np, torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    sys.path.insert(0, os.path.join(ROOT, "Tests", "Fixtures", "sobol"))
    from export_torch import load
    import make_sobol_fixtures as ref

    model, _ = load(os.path.join(ROOT, "Models", "digits-cnn"))
    x = np.load(os.path.join(ROOT, "Models", "digits-data", "test_inputs.npy"))[: args.images].astype(np.float32)
    labels = np.load(os.path.join(ROOT, "Models", "digits-data", "test_labels.npy"))[: args.images]
    s, n = 8, 32
    t0 = time.perf_counter()
    forward = 0.0
    for xi, label in zip(x, labels):
        masks = ref.design(s, n)
        up = ref.upsample(masks, 8, 8, "nearest").astype(np.float32)
        xt = xi[None] * up
        f0 = time.perf_counter()
        with torch.no_grad():
            y = np.concatenate([model(torch.from_numpy(xt[i:i + args.torch_batch])).numpy()[:, label]
                                for i in range(0, len(xt), args.torch_batch)])
        forward += time.perf_counter() - f0
        ref.resize_cubic(ref.jansen(y.astype(np.float64), n, s * s).reshape(s, s), 8, 8)
    total = time.perf_counter() - t0
    passes = n * (s * s + 2)
    print(f"reference (NumPy + PyTorch {torch.__version__}, {args.threads} threads): {total / args.images:.4f} s per image, "
          f"{passes * args.images / forward:.0f} forward passes/s, {100 * (total - forward) / total:.1f}% outside the forward passes")
    with tempfile.TemporaryDirectory() as tmp:
        run_attrib(args, os.path.join(ROOT, "Models", "digits-cnn"), tmp, x, labels, s, n, total / args.images, (4, 0))


def run_attrib(args, model_dir, tmp, x, labels, grid, designs, reference_per_image, places):
    """`attrib sobol` on the same images and targets on each --devices entry; prints its time
    per image (to places[0] decimals) and forward passes/s (places[1]) beside the reference's."""
    import numpy as np
    np.save(os.path.join(tmp, "x.npy"), x)
    np.save(os.path.join(tmp, "t.npy"), labels.astype(np.int32))
    for device in args.devices.split(","):
        cmd = [args.attrib, "sobol", "--model", model_dir, "--inputs", os.path.join(tmp, "x.npy"),
               "--targets", os.path.join(tmp, "t.npy"), "--grid", str(grid), "--designs", str(designs), "--device", device,
               "--out", os.path.join(tmp, device.replace(":", "_")), "--no-heatmaps", "--json"]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                      env=dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))).stdout)
        per = r["secondsPerInput"]
        print(f"attrib {device:9}: {per:.{places[0]}f} s per image, {r['forwardPassesPerSecond']:.{places[1]}f} forward passes/s, "
              f"{100 * r['outsideForwardShare']:.1f}% outside the forward passes; {reference_per_image / per:.2f}x the reference's speed")


def resnet18(args):
    import numpy as np, torch, torchvision
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    sys.path.insert(0, os.path.join(ROOT, "Tests", "Fixtures", "sobol"))
    from export_onnx import export
    import make_sobol_fixtures as ref
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    s, n, batch = args.grid, args.designs, min(args.torch_batch, 64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.images, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.from_numpy(x)).argmax(1).numpy()
    t0, forward = time.perf_counter(), 0.0
    for xi, label in zip(x, labels):
        up = ref.upsample(ref.design(s, n), 224, 224, "nearest").astype(np.float32)     # [N(d+2), 1, 224, 224]
        f0 = time.perf_counter()
        ys = []
        with torch.no_grad():
            for i in range(0, len(up), batch):
                ys.append(model(torch.from_numpy(xi[None] * up[i:i + batch])).numpy()[:, label])
        forward += time.perf_counter() - f0
        ref.resize_cubic(ref.jansen(np.concatenate(ys).astype(np.float64), n, s * s).reshape(s, s), 224, 224)
    total = time.perf_counter() - t0
    passes = n * (s * s + 2)
    print(f"ResNet-18, 224 x 224, grid {s}, N = {n}: {passes} forward passes per image, {args.images} image(s), {args.threads} threads")
    print(f"reference (NumPy + PyTorch {torch.__version__}): {total / args.images:.2f} s per image, "
          f"{passes * args.images / forward:.1f} forward passes/s, {100 * (total - forward) / total:.1f}% outside the forward passes")
    with tempfile.TemporaryDirectory() as tmp:
        export(model, [3, 224, 224], os.path.join(tmp, "resnet18"), attrib=args.attrib)
        run_attrib(args, os.path.join(tmp, "resnet18"), tmp, x, labels, s, n, total / args.images, (2, 1))


if __name__ == "__main__":
    main()
