#!/usr/bin/env python3
"""AtP and AtP* against exact activation patching on SmolLM2 (Models/smollm2-pairs): per pair,
Spearman ρ between |estimate| and |exact effect| over every node patched exactly, and the recall
of the true top 10 and top 20 (|exact|) among the estimate's top 10 / 20; seconds per pair of each
method (model load excluded). Reads the output directories of

    attrib patch|atp|atp-star --model M --pairs Models/smollm2-pairs/SET.json --limit N --nodes G --out DIR/SET-METHOD-G

(Benchmarks/llm_quality.sh runs them; atp-qk is `atp-star --no-grad-drop`, the QK fix alone,
and atp-gd is `atp-star --no-qk-fix`, GradDrop alone). Exact patching of the neurons of chosen layers only
(`attrib patch --layers`): the other nodes are NaN there and are left out of ρ and recall.

    python3 Benchmarks/llm_atp_quality.py DIR [--sets ioi induction] [--nodes heads neurons]
"""
import argparse, json, os
import numpy as np


def ranks(v):
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v)); r[order] = np.arange(len(v))
    # average ties
    vals, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
    sums = np.zeros(len(vals)); np.add.at(sums, inv, r)
    return (sums / counts)[inv]


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean(); rb -= rb.mean()
    d = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / d) if d > 0 else float("nan")


def recall(truth, est, k):
    top_t = set(np.argsort(-truth, kind="stable")[:k]); top_e = set(np.argsort(-est, kind="stable")[:k])
    return len(top_t & top_e) / k


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--sets", nargs="+", default=["ioi", "induction"])
    ap.add_argument("--nodes", nargs="+", default=["heads", "neurons"])
    a = ap.parse_args()
    rows = []
    for s in a.sets:
        for g in a.nodes:
            ex_dir = os.path.join(a.dir, f"{s}-patch-{g}")
            if not os.path.exists(ex_dir + "/scores.npy"):
                continue
            exact = np.load(ex_dir + "/scores.npy"); n = exact.shape[0]; exact = exact.reshape(n, -1)
            ex_sum = json.load(open(ex_dir + "/summary.json"))
            for m in ["atp", "atp-qk", "atp-gd", "atp-star"]:
                d = os.path.join(a.dir, f"{s}-{m}-{g}")
                if not os.path.exists(d + "/scores.npy"):
                    continue
                est = np.load(d + "/scores.npy").reshape(-1, exact.shape[1])[:n]
                summ = json.load(open(d + "/summary.json"))
                rho, r10, r20 = [], [], []
                for i in range(n):
                    keep = ~np.isnan(exact[i])
                    t, e = np.abs(exact[i][keep]), np.abs(est[i][keep])
                    rho.append(spearman(e, t)); r10.append(recall(t, e, 10)); r20.append(recall(t, e, 20))
                rows.append({"set": s, "nodes": g, "method": m, "pairs": n, "nodesCompared": int((~np.isnan(exact[0])).sum()),
                             "nodesTotal": exact.shape[1], "spearman": float(np.mean(rho)), "recall10": float(np.mean(r10)),
                             "recall20": float(np.mean(r20)), "secondsPerPair": summ["secondsPerPair"],
                             "exactSecondsPerPair": ex_sum["secondsPerPair"],
                             "exactSecondsPerPairAllNodes": ex_sum["secondsPerPair"] * exact.shape[1] / max(1, int((~np.isnan(exact[0])).sum()))})
    print(f"{'set':10} {'nodes':8} {'method':9} {'pairs':>5} {'compared':>9} {'rho':>6} {'R@10':>5} {'R@20':>5} {'s/pair':>8} {'exact s/pair (all nodes)':>24} {'speed-up':>9}")
    for r in rows:
        print(f"{r['set']:10} {r['nodes']:8} {r['method']:9} {r['pairs']:5} {r['nodesCompared']:9} {r['spearman']:6.3f} {r['recall10']:5.2f} "
              f"{r['recall20']:5.2f} {r['secondsPerPair']:8.3f} {r['exactSecondsPerPairAllNodes']:24.1f} {r['exactSecondsPerPairAllNodes'] / r['secondsPerPair']:8.0f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
