#!/usr/bin/env python3
"""Peak memory of a big IG sweep on the GPU: 1,000 inputs at m = 4096 on the wide MLP
(784-4096-4096-10, seeded random weights, exported with scripts/export_torch.py), run
by `attrib ig --device opencl`. Prints the GPU memory in use before and at its peak
(nvidia-smi, sampled every 0.1 s while attrib runs), the peak RSS of the attrib
process, and the sweep's own timing from its JSON summary.

    python3 Benchmarks/gpu_memory.py [ATTRIB_BINARY] [--inputs 1000] [--steps 4096] [--device opencl]

Needs torch, numpy and nvidia-smi (a CUDA host); Benchmarks/gpu_host.sh runs it.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "Benchmarks"))
from export_torch import export  # noqa: E402
from ig_throughput import wide_mlp  # noqa: E402  (the same weights as the throughput benchmark)


def gpu_memory_used_mib() -> int:
    q = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                       capture_output=True, text=True, check=True)
    return int(q.stdout.split()[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attrib", nargs="?", default=shutil.which("attrib") or os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=4096)
    ap.add_argument("--device", default="opencl")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="gpu_memory_")
    try:
        export(wide_mlp(torch), [784], os.path.join(tmp, "wide"))
        np.save(os.path.join(tmp, "x.npy"), np.random.default_rng(0).random((args.inputs, 784), dtype=np.float32))

        base = gpu_memory_used_mib()
        peak, stop = [base], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], gpu_memory_used_mib())
                time.sleep(0.1)

        th = threading.Thread(target=sample)
        th.start()
        t0 = time.time()
        p = subprocess.run([args.attrib, "ig", "--model", os.path.join(tmp, "wide"), "--inputs", os.path.join(tmp, "x.npy"),
                            "--target", "3", "--steps", str(args.steps), "--device", args.device,
                            "--out", os.path.join(tmp, "out"), "--force", "--quiet", "--json", "--no-heatmaps"],
                           capture_output=True, text=True)
        stop.set()
        th.join()
        wall = time.time() - t0
        rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if p.returncode != 0:
            print(f"attrib exited with {p.returncode}:\n{p.stderr[-2000:]}")
            return 1
        r = json.loads(p.stdout[p.stdout.find("{"):])
        print(f"IG of {args.inputs} inputs at m = {args.steps} on the wide MLP, device {r.get('device')}: "
              f"{wall:.1f} s wall, sweep {float(r['seconds']):.2f} s, {float(r['inputStepsPerSecond']):.0f} input·steps/s, "
              f"{r.get('rowsPerBatch')} rows per batch, max |delta| {r.get('maxAbsDelta')}")
        print(f"GPU memory used: {base} MiB before, peak {peak[0]} MiB while attrib ran "
              f"(+{peak[0] - base} MiB; nvidia-smi every 0.1 s)")
        print(f"peak RSS of attrib: {rss_mib:.0f} MiB")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
