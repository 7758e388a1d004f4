#!/usr/bin/env python3
"""AtP per prompt pair: attrib against the same AtP written with PyTorch hooks.

Model: a GPT-2-small-shaped model (12 layers, 12 heads, d = 768, vocab 50257) with random
weights made by transformers (torch.manual_seed(0)) into a temp dir; prompt pairs of T
random tokens (a corrupt prompt differs at position --diff-at, default T/2), metric logit difference of two
random answer tokens at the last position. Nodes: attention heads (z summed over positions).

PyTorch side, twice: one pair at a time, as a TransformerLens-style user writes it, and in
batches of --torch-batch pairs (one corrupt forward, one clean forward and one backward per
batch), the strongest a user would write. Per pair: forward hooks on every block's
attn.c_proj capture its input z [B, T, D] (the heads' outputs) on the corrupt run; on the
clean run the token embeddings are a leaf that requires grad and each z keeps its grad
(retain_grad); one backward of the metric; the score of head h
in layer l is sum over positions and d_h of (z_corrupt - z_clean) * dL/dz. Same threads.

attrib side: `attrib atp --nodes heads --pairs P --device cpu --json`, its secondsPerPair
(the sweep: model load excluded; it runs each unit of 8 pairs as one batch), and the mean
per pair after its first unit (that unit also faults in the process's activation memory,
which the PyTorch side's warm-up call has done before its timed rounds). The two sides' scores are compared (max relative
difference), so the timing is of the same computation. attrib runs twice a round: as it runs by
default, its corrupt run computing only the positions from the first difference on (the clean run's
keys and values stand for the shared prefix: causal attention makes them the same), and with
ATTRIB_SHARED_PREFIX=0, the corrupt prompts whole, as the PyTorch side runs them. --diff-at 0
leaves no prefix to share.

    python3 Benchmarks/atp_vs_torch.py [--threads 2] [--tokens 64] [--pairs 32] [--repeat 3] [--torch-batch 8]
        [--attrib .build/release/attrib] [--layers 12] [--diff-at T/2]
Needs torch and transformers (pip), and a release build of attrib.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_atp(torch, model, clean, corrupt, a, b):
    """Head scores [L, H] of one pair (clean, corrupt [1, T]; answers a, b) and the seconds it took:
    the batched form below with a batch of one."""
    scores, secs = torch_atp_batched(torch, model, clean, corrupt, torch.tensor([a]), torch.tensor([b]))
    return scores[0], secs


def torch_atp_batched(torch, model, clean, corrupt, a, b):
    """Head scores [B, L, H] of a batch of pairs (clean, corrupt [B, T]; answers a, b [B]) and the
    seconds it took: one corrupt forward of B prompts, one clean forward and one backward of the
    metrics' sum, whose gradient at each prompt's z is that prompt's own (no prompt attends to
    another)."""
    cfg = model.config
    L, H, D = cfg.n_layer, cfg.n_head, cfg.n_embd
    store = {}

    def hook(l):
        def f(module, args):
            z = args[0]
            if z.requires_grad:
                z.retain_grad()
            store[l] = z
        return f

    # The weights are frozen, so on the clean run the token embeddings are made a leaf that
    # requires grad: every z then carries a gradient (retain_grad), through every path.
    def leaf(module, args, out):
        return out.detach().requires_grad_(True) if torch.is_grad_enabled() else out

    handles = [model.transformer.h[l].attn.c_proj.register_forward_pre_hook(hook(l)) for l in range(L)]
    handles.append(model.transformer.wte.register_forward_hook(leaf))
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            model(corrupt)
        zc = {l: store[l].detach() for l in range(L)}
        logits = model(clean).logits[:, -1, :]
        rows = torch.arange(clean.shape[0])
        (logits[rows, a] - logits[rows, b]).sum().backward()
        scores = torch.stack([((zc[l] - store[l]) * store[l].grad).view(clean.shape[0], -1, H, D // H).sum(dim=(1, 3))
                              for l in range(L)], dim=1)
        secs = time.perf_counter() - t0
    finally:
        for h in handles:
            h.remove()
    return scores.detach(), secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=32)
    ap.add_argument("--torch-batch", type=int, default=8, help="pairs per batch of the batched PyTorch side (attrib's unit is 8 pairs)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--diff-at", type=int, default=None, help="the position where a corrupt prompt differs (default T/2)")
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/release/attrib"))
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="atp_vs_torch_")
    try:
        torch.manual_seed(0)
        cfg = GPT2Config(n_layer=args.layers, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257)
        model = GPT2LMHeadModel(cfg).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        mdir = os.path.join(tmp, "gpt2")
        model.save_pretrained(mdir, safe_serialization=True)
        rng = np.random.default_rng(0)
        diff_at = args.tokens // 2 if args.diff_at is None else args.diff_at
        assert 0 <= diff_at < args.tokens, "--diff-at must be a position of the prompt"
        pairs = []
        for _ in range(args.pairs):
            c = rng.integers(0, 50257, args.tokens).tolist()
            k = list(c)
            k[diff_at] = (c[diff_at] + 1 + int(rng.integers(0, 50256))) % 50257      # another token
            a, b = (int(v) for v in rng.integers(0, 50257, 2))
            pairs.append({"clean_ids": c, "corrupt_ids": k, "clean_answer_id": a, "corrupt_answer_id": b})
        ppath = os.path.join(tmp, "pairs.json")
        with open(ppath, "w") as f:
            json.dump(pairs, f)
        print(f"GPT-2-small shape ({args.layers} layers, 12 heads, d 768, vocab 50257, random weights), "
              f"T = {args.tokens}, corrupt prompts differ at position {diff_at}, {args.pairs} pairs, heads; threads {args.threads}; "
              f"torch {torch.__version__}")

        # Warm-up, then rounds: attrib's sweep of every pair, then PyTorch on every pair.
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads))
        t_secs, a_secs, b_secs, w_secs, worst = [], [], [], [], 0.0
        whole_secs, whole_w_secs, whole_worst = [], [], 0.0

        def run_attrib(out, extra_env):
            """(seconds per pair of the sweep, mean per pair after its first unit or None, scores [P, L, H])."""
            r = subprocess.run([args.attrib, "atp", "--device", "cpu", "--model", mdir, "--pairs", ppath, "--nodes", "heads",
                                "--json", "--out", out], capture_output=True, text=True, env=dict(env, **extra_env))
            if r.returncode != 0:
                raise RuntimeError(f"attrib failed ({r.returncode}): {r.stderr[-2000:]}")
            summary = json.loads(r.stdout[r.stdout.find("{"):])
            per = [p["seconds"] for p in summary["perPair"]]
            return (float(summary["secondsPerPair"]), statistics.mean(per[8:]) if len(per) > 8 else None,
                    np.load(os.path.join(out, "scores.npy")).reshape(args.pairs, args.layers, 12))

        for p in pairs[:1]:
            torch_atp(torch, model, torch.tensor([p["clean_ids"]]), torch.tensor([p["corrupt_ids"]]), p["clean_answer_id"], p["corrupt_answer_id"])
        chunk = pairs[:args.torch_batch]
        torch_atp_batched(torch, model, torch.tensor([p["clean_ids"] for p in chunk]), torch.tensor([p["corrupt_ids"] for p in chunk]),
                          torch.tensor([p["clean_answer_id"] for p in chunk]), torch.tensor([p["corrupt_answer_id"] for p in chunk]))
        for rnd in range(args.repeat):
            try:
                # The two attrib runs alternate which goes first: the process that follows
                # PyTorch's rounds pays for faulting in memory that process gave back (on the
                # development VM its first unit took up to twice as long).
                if rnd % 2 == 0:
                    secs, after, ours = run_attrib(os.path.join(tmp, f"out{rnd}"), {})
                    wsecs, wafter, wours = run_attrib(os.path.join(tmp, f"whole{rnd}"), {"ATTRIB_SHARED_PREFIX": "0"})
                else:
                    wsecs, wafter, wours = run_attrib(os.path.join(tmp, f"whole{rnd}"), {"ATTRIB_SHARED_PREFIX": "0"})
                    secs, after, ours = run_attrib(os.path.join(tmp, f"out{rnd}"), {})
            except RuntimeError as e:
                print(e, file=sys.stderr)
                return 1
            a_secs.append(secs)
            whole_secs.append(wsecs)
            if after is not None:
                w_secs.append(after)
            if wafter is not None:
                whole_w_secs.append(wafter)
            whole_worst = max(whole_worst, float(np.abs(ours - wours).max() / max(np.abs(wours).max(), 1e-30)))
            total = 0.0
            for i, p in enumerate(pairs):
                s, secs = torch_atp(torch, model, torch.tensor([p["clean_ids"]]), torch.tensor([p["corrupt_ids"]]),
                                    p["clean_answer_id"], p["corrupt_answer_id"])
                total += secs
                ref = s.numpy()
                worst = max(worst, float(np.abs(ours[i] - ref).max() / max(np.abs(ref).max(), 1e-30)))
            t_secs.append(total / args.pairs)
            total = 0.0
            for i in range(0, args.pairs, args.torch_batch):
                chunk = pairs[i:i + args.torch_batch]
                s, secs = torch_atp_batched(torch, model, torch.tensor([p["clean_ids"] for p in chunk]),
                                            torch.tensor([p["corrupt_ids"] for p in chunk]),
                                            torch.tensor([p["clean_answer_id"] for p in chunk]),
                                            torch.tensor([p["corrupt_answer_id"] for p in chunk]))
                total += secs
                ref = s.numpy()
                worst = max(worst, float(np.abs(ours[i:i + len(chunk)] - ref).max() / max(np.abs(ref).max(), 1e-30)))
            b_secs.append(total / args.pairs)
        ta, tt, tb = statistics.median(a_secs), statistics.median(t_secs), statistics.median(b_secs)
        print(f"attrib atp           {ta * 1000:9.1f} ms per pair, the whole sweep (rounds {', '.join(f'{v * 1000:.1f}' for v in a_secs)})")
        if w_secs:
            print(f"  after its first unit {statistics.median(w_secs) * 1000:7.1f} ms per pair (pairs 9 on: the first unit's batch also "
                  f"faults in the process's activation memory)")
        tw = statistics.median(whole_secs)
        print(f"attrib, whole prompts {tw * 1000:8.1f} ms per pair, the whole sweep, corrupt prompts run whole (ATTRIB_SHARED_PREFIX=0; "
              f"rounds {', '.join(f'{v * 1000:.1f}' for v in whole_secs)})")
        if whole_w_secs:
            print(f"  after its first unit {statistics.median(whole_w_secs) * 1000:7.1f} ms per pair")
        print(f"  shared prefix against whole prompts: {tw / ta:5.2f}x; their scores agree to {whole_worst:.2e} (max |Δ| / max |score|)")
        print(f"PyTorch hooks        {tt * 1000:9.1f} ms per pair, one pair at a time (rounds {', '.join(f'{v * 1000:.1f}' for v in t_secs)})")
        print(f"PyTorch hooks, batch {tb * 1000:9.1f} ms per pair, {args.torch_batch} pairs a batch (rounds {', '.join(f'{v * 1000:.1f}' for v in b_secs)})")
        print(f"ratio PyTorch/attrib {tt / ta:5.2f}x one pair at a time, {tb / ta:5.2f}x batched (medians of paired rounds "
              f"{statistics.median(t / a for t, a in zip(t_secs, a_secs)):5.2f}x, {statistics.median(t / a for t, a in zip(b_secs, a_secs)):5.2f}x); "
              f"scores agree to {worst:.2e} (max |Δ| / max |score|)")
        if w_secs:
            wa = statistics.median(w_secs)
            print(f"  after attrib's first unit: {tt / wa:5.2f}x one pair at a time, {tb / wa:5.2f}x batched")
        print(f"  attrib with whole prompts: {tt / tw:5.2f}x one pair at a time, {tb / tw:5.2f}x batched")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
