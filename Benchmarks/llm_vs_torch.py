#!/usr/bin/env python3
"""A decoder LLM (SmolLM2-135M-Instruct, the GGUF scripts/fetch_smollm2.sh fetches) in attrib
against transformers on the CPU, same threads: forward tokens/s, and AtP per prompt pair.

Forward: B prompts of T seeded random tokens, logits at every position (transformers'
model(ids).logits), float32; attrib: `attrib bench lm` (the same shapes; its AtP timing too).
Both as useful GFLOP/s (the products' operations, DecoderConfig.forwardFLOPs, the same count for
both sides) and as shares of the limit: each side's own GEMM at the MLP's shape (B·T × F × D):
OpenBLAS's through attrib, torch.matmul's (MKL in the pip wheel) here. The ceiling line is the
ratio attrib would reach running every product at the faster of the two GEMM rates with nothing
else costing time: a ratio target above it cannot be met on this machine by any engine.

AtP per pair, PyTorch side as a TransformerLens-style user writes it with transformers: forward
pre-hooks on every layer's self_attn.o_proj capture its input z [1, T, H·d_h] (heads) or on
mlp.down_proj its input (neurons) on the corrupt run; on the clean run the token embeddings are
a leaf that requires grad (weights frozen) and each captured input keeps its grad; one backward
of the logit difference at the last position; score = Σ (corrupt − clean)·∂L/∂ per head or
neuron. attrib side: `attrib atp --pairs` on the same pairs (Models/smollm2-pairs), its
secondsPerPair (model load excluded), and the two sides' scores compared.

    python3 Benchmarks/llm_vs_torch.py [--threads 2] [--tokens 128] [--batch 4] [--pairs 8]
        [--attrib .build/release/attrib] [--nodes heads]
"""
import argparse, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--nodes", default="heads", choices=["heads", "neurons"])
    ap.add_argument("--set", default="ioi")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    ap.add_argument("--gguf", default=os.path.join(ROOT, ".models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(a.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(a.gguf), gguf_file=os.path.basename(a.gguf),
                                                 dtype=torch.float32).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = model.config
    L, H, F = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.intermediate_size
    dh = cfg.hidden_size // H

    # Forward tokens/s.
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.tokens), generator=g)
    with torch.no_grad():
        model(ids)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds:
            model(ids).logits.sum().item(); n += 1
        torch_fwd = a.batch * a.tokens * n / (time.perf_counter() - t0)
    out = subprocess.run([a.attrib, "bench", "lm", "--model", a.gguf, "--tokens", str(a.tokens), "--batch", str(a.batch),
                          "--seconds", str(a.seconds), "--nodes", a.nodes, "--json"], check=True, capture_output=True, text=True,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), ATTRIB_THREADS=str(a.threads)))
    lm = json.loads(out.stdout)
    flops_per_token = lm["forwardGFLOPS"] * 1e9 / lm["forwardTokensPerSecond"]
    torch_gflops = torch_fwd * flops_per_token / 1e9
    x, w = torch.randn(a.batch * a.tokens, cfg.hidden_size), torch.randn(cfg.hidden_size, F)
    torch.matmul(x, w)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 1:
        torch.matmul(x, w); n += 1
    matmul_gflops = 2 * x.shape[0] * x.shape[1] * F * n / (time.perf_counter() - t0) / 1e9

    # AtP per pair.
    pairs = json.load(open(os.path.join(ROOT, "Models/smollm2-pairs", a.set + ".json")))["pairs"][: a.pairs]
    mods = [(model.model.layers[l].self_attn.o_proj if a.nodes == "heads" else model.model.layers[l].mlp.down_proj) for l in range(L)]
    store = {}

    def hook(l):
        def f(module, args):
            x = args[0]
            if x.requires_grad:
                x.retain_grad()
            store[l] = x
        return f

    def leaf(module, args, out):
        return out.detach().requires_grad_(True) if torch.is_grad_enabled() else out

    handles = [m.register_forward_pre_hook(hook(l)) for l, m in enumerate(mods)]
    handles.append(model.model.embed_tokens.register_forward_hook(leaf))
    torch_scores, times = [], []
    for i, p in enumerate(pairs):
        clean, corrupt = torch.tensor([p["clean_ids"]]), torch.tensor([p["corrupt_ids"]])
        t0 = time.perf_counter()
        with torch.no_grad():
            model(corrupt)
        cor = {l: store[l].detach().clone() for l in range(L)}
        logits = model(clean).logits
        (logits[0, -1, p["clean_answer_id"]] - logits[0, -1, p["corrupt_answer_id"]]).backward()
        s = []
        for l in range(L):
            d = (cor[l] - store[l].detach()) * store[l].grad           # [1, T, H·d_h] or [1, T, F]
            s.append(d.reshape(1, -1, H, dh).sum(dim=(0, 1, 3)) if a.nodes == "heads" else d.sum(dim=(0, 1)))
        torch_scores.append(torch.stack(s))
        if i > 0:                                                    # the first pair warms up
            times.append(time.perf_counter() - t0)
    for h in handles:
        h.remove()
    torch_pair = sum(times) / len(times)

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([a.attrib, "atp", "--model", a.gguf, "--pairs", os.path.join(ROOT, "Models/smollm2-pairs", a.set + ".json"),
                        "--limit", str(a.pairs), "--nodes", a.nodes, "--out", tmp + "/atp", "--json"], check=True, capture_output=True,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), ATTRIB_THREADS=str(a.threads)))
        summary = json.load(open(tmp + "/atp/summary.json"))
        import numpy as np
        ours = np.load(tmp + "/atp/scores.npy").reshape(len(pairs), -1)
    theirs = torch.stack(torch_scores).reshape(len(pairs), -1).numpy()
    rel = float(abs(ours - theirs).max() / abs(theirs).max())
    attrib_pair = summary["secondsPerPair"]
    print(f"SmolLM2-135M ({L} layers), CPU, {a.threads} threads, float32")
    print(f"forward {a.batch} x {a.tokens} tokens: attrib {lm['forwardTokensPerSecond']:.1f} tokens/s, "
          f"transformers {torch_fwd:.1f} tokens/s: {lm['forwardTokensPerSecond'] / torch_fwd:.2f}x")
    print(f"  products: attrib {lm['forwardGFLOPS']:.1f} GFLOP/s = {100 * lm['shareOfGEMM']:.0f}% of OpenBLAS's GEMM at "
          f"{a.batch * a.tokens}x{F}x{cfg.hidden_size} ({lm['gemmGFLOPS']:.1f}); transformers {torch_gflops:.1f} GFLOP/s = "
          f"{100 * torch_gflops / matmul_gflops:.0f}% of torch.matmul's ({matmul_gflops:.1f})")
    print(f"  ceiling: every product at the faster GEMM rate and nothing else: "
          f"{max(lm['gemmGFLOPS'], matmul_gflops) / torch_gflops:.2f}x transformers")
    print(f"AtP {a.nodes} per pair ({a.set}, {len(pairs)} pairs of {len(pairs[0]['clean_ids'])} tokens): attrib {attrib_pair * 1000:.1f} ms, "
          f"PyTorch hooks {torch_pair * 1000:.1f} ms: {torch_pair / attrib_pair:.2f}x; scores differ by {rel:.1e} (max relative)")
    print(json.dumps({"threads": a.threads, "forward": {"attrib": lm["forwardTokensPerSecond"], "torch": torch_fwd,
                                                        "attribGFLOPS": lm["forwardGFLOPS"], "torchGFLOPS": torch_gflops,
                                                        "openblasGEMM": lm["gemmGFLOPS"], "torchMatmul": matmul_gflops},
                      "atpPerPair": {"attrib": attrib_pair, "torch": torch_pair, "nodes": a.nodes, "set": a.set},
                      "scoreDifference": rel}))


if __name__ == "__main__":
    main()
