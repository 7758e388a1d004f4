#!/usr/bin/env python3
"""Forward + backward throughput (samples/s) of Attrib against PyTorch, same machine, same threads.

Work per batch, on both sides: the model's outputs and the gradient of the
target logits with respect to the input (weights frozen: attribution needs
no weight gradients, and Attrib computes none).

Models: the bundled digits CNN (Models/digits-cnn) and a wide MLP
784-4096-4096-10 with random weights, at batch 1, 64 and 1024. Attrib runs on
the CPU backend and on each OpenCL device (PoCL where there is no GPU).

    python3 Benchmarks/model_throughput.py [--threads 2] [--seconds 0.5] [--devices cpu,opencl:0]

Needs torch (scripts/requirements-fixtures.txt) and a release build of attrib
(swift build -c release --product attrib).
"""
import argparse, json, os, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_throughput(torch, model, input_shape, batch, seconds):
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand((batch, *input_shape), dtype=torch.float32)
    classes = model(x[:1]).shape[-1]
    target = (torch.arange(batch) % classes).unsqueeze(1)

    def step():
        xi = x.clone().requires_grad_(True)
        out = model(xi)
        out.gather(1, target).sum().backward()
        return xi.grad

    step()
    reps, elapsed = 1, 0.0
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds or reps >= 1 << 16:
            break
        reps = max(reps * 2, int(reps * seconds / max(elapsed, 1e-9) * 1.1))
    return batch * reps / elapsed


def attrib_throughput(binary, device, model_args, batches, seconds, threads):
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    cmd = [binary, "bench", "model", *model_args, "--device", device,
           "--batches", ",".join(map(str, batches)), "--seconds", str(seconds), "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return {r["batch"]: r["samplesPerSecond"] for r in json.loads(out)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--devices", default="cpu,opencl", help="attrib --device specs, comma-separated")
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    args = ap.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from export_torch import load

    batches = [int(b) for b in args.batches.split(",")]
    torch.manual_seed(0)
    wide = torch.nn.Sequential(torch.nn.Linear(784, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096),
                               torch.nn.ReLU(), torch.nn.Linear(4096, 10))
    models = [
        ("digits-cnn", load(os.path.join(ROOT, "Models/digits-cnn"))[0], [1, 8, 8],
         ["--model", os.path.join(ROOT, "Models/digits-cnn")]),
        ("wide-mlp 784-4096-4096-10", wide, [784], ["--mlp", "784,4096,4096,10"]),
    ]
    print(f"threads: {args.threads} (torch {torch.__version__}, OPENBLAS_NUM_THREADS for attrib)")
    print(f"{'model':28} {'batch':>6} {'torch samples/s':>16} {'device':>9} {'attrib samples/s':>17} {'ratio':>7}")
    rows = []
    for name, model, shape, attrib_args in models:
        ref = {b: torch_throughput(torch, model, shape, b, args.seconds) for b in batches}
        for device in args.devices.split(","):
            ours = attrib_throughput(args.attrib, device, attrib_args, batches, args.seconds, args.threads)
            for b in batches:
                ratio = ours[b] / ref[b]
                rows.append(dict(model=name, batch=b, device=device, torch=ref[b], attrib=ours[b], ratio=ratio))
                print(f"{name:28} {b:>6} {ref[b]:>16.1f} {device:>9} {ours[b]:>17.1f} {ratio:>6.2f}×")
    with open(os.environ.get("ATTRIB_BENCH_JSON", os.devnull), "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
