#!/usr/bin/env python3
"""GEMM on one GPU: attrib's kernels against torch.matmul, FP32, TF32 and BF16.

For each precision and size n (n x n x n):
  attrib   `attrib bench gemm --device SPEC --precision P --sizes ... --json`: GFLOP/s, the
           kernel that ran (tensor cores or not), the max relative error against the CPU
           backend's FP32 product (sizes up to --check-up-to), its share of the peak
  torch    torch.matmul on CUDA: fp32 with allow_tf32 off, tf32 with it on, bf16 on
           bfloat16 tensors (Float32 accumulation inside cuBLAS); mean of timed products
           after warm-ups, CUDA events
Peaks: the FP32 peak `attrib devices` derives (SMs x lanes x 2 x clock) and the dense
tensor-core peaks it derives for tf32 and bf16 (SMs x dense FLOP per clock x clock). The
ratio column is attrib's rate over torch's.
"""
import argparse, json, subprocess, sys


def attrib_rates(binary, device, precision, sizes, check_up_to):
    cmd = [binary, "bench", "gemm", "--device", device, "--precision", precision, "--sizes", sizes,
           "--seconds", "0.3", "--check-up-to", str(check_up_to), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited with {p.returncode}: {p.stderr.strip()[-1500:]}")
    sys.stderr.write(p.stderr)
    text = p.stdout.strip()
    return {r["m"]: r for r in json.loads(text[text.find("["):])}


def torch_rate(torch, n, precision):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    g = torch.Generator(device="cuda").manual_seed(1)
    a = torch.rand(n, n, device="cuda", generator=g).to(dtype)
    b = torch.rand(n, n, device="cuda", generator=g).to(dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    reps = max(3, int(2e12 / (2 * n ** 3)))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (start.elapsed_time(end) / 1e3) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attrib", default="attrib")
    ap.add_argument("--device", default="opencl:0")
    ap.add_argument("--sizes", default="1024,2048,4096,8192")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--check-up-to", type=int, default=2048)
    args = ap.parse_args()
    import torch
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    print(f"{'prec':5} {'n':>5} {'attrib GFLOP/s':>15} {'of peak':>8} {'torch GFLOP/s':>14} {'torch of peak':>13} "
          f"{'attrib/torch':>12}  max rel err  kernel")
    for prec in args.precisions.split(","):
        try:
            rows = attrib_rates(args.attrib, args.device, prec, args.sizes, args.check_up_to)
        except RuntimeError as e:
            print(f"{prec}: attrib failed: {e}")
            continue
        for n in [int(s) for s in args.sizes.split(",")]:
            r = rows[n]
            t = torch_rate(torch, n, prec)
            peak = r.get("peakGFLOPS")
            share = f"{100 * r['gflops'] / peak:.1f}%" if peak else "?"
            tshare = f"{100 * t / peak:.1f}%" if peak else "?"
            err = r.get("maxRelativeError")
            err = "unchecked" if err is None else f"{err:.2e}"
            print(f"{prec:5} {n:>5} {r['gflops']:>15.1f} {share:>8} {t:>14.1f} {tshare:>13} {r['gflops'] / t:>12.2f}  "
                  f"{err:>11}  {r.get('parameters', '')}", flush=True)


if __name__ == "__main__":
    main()
