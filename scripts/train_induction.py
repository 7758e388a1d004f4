#!/usr/bin/env python3
"""Train a 2-layer GPT-2 that does induction, the example model for activation
patching and attribution patching (AtP) on transformers.

Makes (relative to the repository root):
  Models/induction-2l/   config.json, model.safetensors   Hugging Face GPT-2
                                                           (save_pretrained, tied embeddings)
                         generation_config.json            (written by save_pretrained)
                         vocab.json, merges.txt            a GPT-2 byte-level vocabulary of
                                                           single characters (see VOCAB)
                         prompts.json                      clean/corrupt pairs (see make_prompts)
                         training.json                     the training result and settings

The task (known mechanism: induction heads). A sequence is the BOS token
<|endoftext|>, R distinct random tokens x1..xR, then the same R tokens again
(R uniform in [R_MIN, R_MAX], varied so that copying "from R positions back" by
position alone does not work). The first half is unpredictable (chance: about 1/61
once distinct tokens are used up); in the second half, xk+1 follows xk, so a
model that finds the earlier xk and copies the token after it (a previous-token
head in layer 0 and an induction head in layer 1) predicts x2..xR exactly. The
loss is on those second-half predictions only; sequences are padded at the end
with random tokens that no loss sees (attention is causal, so they change
nothing before them).

Vocabulary: id 0 is <|endoftext|> (BOS); ids 1..62 are the characters a-z, A-Z,
0-9, each a GPT-2 byte-level token of its own; merges.txt has no merges, so the
GPT-2 tokenizer turns "<|endoftext|>abcdabc" into one id per character:
[0, 1, 2, 3, 4, 1, 2, 3].

The model: GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=64,
vocab_size=63), GELU "gelu_new" (GPT-2's tanh approximation), no dropout,
lm_head tied to wte (model.safetensors holds wte once).

Training is deterministic (seeds, 2 threads, deterministic algorithms) and
takes about three minutes on one CPU core.

    /tmp/tokwork/venv/bin/python scripts/train_induction.py   # torch + transformers
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Models", "induction-2l")
LAYERS = 2
SEED = 0
BOS = "<|endoftext|>"
ALPHABET = [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
           [chr(c) for c in range(ord("A"), ord("Z") + 1)] + \
           [chr(c) for c in range(ord("0"), ord("9") + 1)]
VOCAB = [BOS] + ALPHABET                   # id = index
N_CTX = 64
R_MIN, R_MAX = 4, (N_CTX - 1) // 2         # 1 + 2R <= 64
STEPS, BATCH, LR = 1200, 48, 3e-3
N_PAIRS = 24


def config() -> GPT2Config:
    cfg = GPT2Config(vocab_size=len(VOCAB), n_positions=N_CTX, n_embd=64, n_layer=LAYERS, n_head=4,
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
                     bos_token_id=0, eos_token_id=0)
    cfg._attn_implementation = "eager"  # plain softmax(QK^T/sqrt(d) + causal mask) V; faster than sdpa here
    return cfg


def batch(g: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sequences [n, N_CTX], the repeat length R [n], and the loss mask [n, N_CTX - 1]
    over next-token predictions (True where the target is x2..xR of the repeat)."""
    seqs = torch.randint(1, len(VOCAB), (n, N_CTX), generator=g)   # the tail is padding
    r = torch.randint(R_MIN, R_MAX + 1, (n,), generator=g)
    mask = torch.zeros(n, N_CTX - 1, dtype=torch.bool)
    for i in range(n):
        R = int(r[i])
        x = torch.randperm(len(VOCAB) - 1, generator=g)[:R] + 1     # R distinct tokens
        seqs[i, 0] = 0
        seqs[i, 1:1 + R] = x
        seqs[i, 1 + R:1 + 2 * R] = x
        # prediction at position p targets seqs[p + 1]; targets x2..xR of the repeat
        # sit at positions R + 2 .. 2R, predicted from p = R + 1 .. 2R - 1
        mask[i, R + 1:2 * R] = True
    return seqs, r, mask


def first_half_mask(r: torch.Tensor) -> torch.Tensor:
    """Predictions of x2..xR in the first half (from positions 1..R-1)."""
    mask = torch.zeros(len(r), N_CTX - 1, dtype=torch.bool)
    for i, R in enumerate(r.tolist()):
        mask[i, 1:R] = True
    return mask


def evaluate(model: GPT2LMHeadModel, seed: int, n: int = 512) -> dict:
    g = torch.Generator().manual_seed(seed)
    seqs, r, second = batch(g, n)
    first = first_half_mask(r)
    with torch.no_grad():
        logits = model(seqs).logits[:, :-1].float()
    targets = seqs[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                            reduction="none").view_as(targets)
    correct = logits.argmax(-1) == targets
    out = {}
    for name, m in [("first_half", first), ("repeated_half", second)]:
        out[name] = {"loss": round(nll[m].mean().item(), 6), "accuracy": round(correct[m].float().mean().item(), 6),
                     "predictions": int(m.sum())}
    return out


def train() -> tuple[GPT2LMHeadModel, list]:
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(config())
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 200) * max(0.05, 1 - s / STEPS))
    g = torch.Generator().manual_seed(SEED + 1)
    log = []
    model.train()
    t0 = time.time()
    for step in range(STEPS):
        seqs, _, mask = batch(g, BATCH)
        logits = model(seqs).logits[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits[mask], seqs[:, 1:][mask])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == STEPS - 1:
            log.append({"step": step, "loss": round(loss.item(), 4)})
            print(f"step {step:5d}  loss {loss.item():.4f}  ({time.time() - t0:.0f} s)", flush=True)
    return model.eval(), log


def write_vocab(out: str) -> None:
    # Every token is one character that GPT-2's byte-to-unicode table maps to
    # itself (printable ASCII but space), so vocab.json spells them plainly.
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump({t: i for i, t in enumerate(VOCAB)}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(out, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")


def make_prompts(model: GPT2LMHeadModel, tok: GPT2Tokenizer) -> list[dict]:
    """Clean: BOS x1..xR x1..xk, answer xk+1 (induction). Corrupt: the same with
    the first xk+1 (position k + 1) replaced by y, a token not in the sequence,
    so induction now predicts y. Metric: logit[xk+1] - logit[y] at the last position."""
    g = torch.Generator().manual_seed(SEED + 2)
    pairs = []
    while len(pairs) < N_PAIRS:
        R = int(torch.randint(6, 13, (1,), generator=g))
        k = int(torch.randint(2, R, (1,), generator=g))            # 2 <= k <= R-1: xk+1 exists
        perm = (torch.randperm(len(VOCAB) - 1, generator=g) + 1).tolist()
        x, y = perm[:R], perm[R]
        clean = [0] + x + x[:k]
        corrupt = list(clean)
        corrupt[k + 1] = y                                        # x[k] sits at position 1 + k
        a, b = x[k], y
        with torch.no_grad():
            lc = model(torch.tensor([clean])).logits[0, -1]
            lx = model(torch.tensor([corrupt])).logits[0, -1]
        clean_text, corrupt_text = tok.decode(clean), tok.decode(corrupt)
        assert tok.encode(clean_text) == clean and tok.encode(corrupt_text) == corrupt
        pairs.append({
            "clean_text": clean_text, "corrupt_text": corrupt_text,
            "clean_ids": clean, "corrupt_ids": corrupt,
            "changed_position": k + 1,
            "clean_answer": VOCAB[a], "clean_answer_id": a,
            "corrupt_answer": VOCAB[b], "corrupt_answer_id": b,
            "clean_logit_diff": round((lc[a] - lc[b]).item(), 5),
            "corrupt_logit_diff": round((lx[a] - lx[b]).item(), 5),
            "clean_top": VOCAB[int(lc.argmax())], "corrupt_top": VOCAB[int(lx.argmax())],
        })
    return pairs


def main() -> int:
    global OUT, LAYERS
    ap = argparse.ArgumentParser(description="Train the induction example model.")
    ap.add_argument("--layers", type=int, default=2,
                    help="transformer blocks (default 2: Models/induction-2l; deeper ones serve "
                         "Benchmarks/graddrop.sh and are not committed)")
    ap.add_argument("--out", default=OUT, help="output directory (default Models/induction-2l)")
    args = ap.parse_args()
    OUT, LAYERS = os.path.abspath(args.out), args.layers
    # One thread: on a shared 2-core machine two threads spin against each other
    # (10x slower here); results are the same for any thread count up to rounding.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model, log = train()
    result = evaluate(model, seed=SEED + 3)
    print(json.dumps(result, indent=1))
    rep, first = result["repeated_half"], result["first_half"]
    if rep["accuracy"] < 0.95 or rep["loss"] > 0.3:
        print(f"error: no clear induction (repeated half: accuracy {rep['accuracy']}, loss {rep['loss']})",
              file=sys.stderr)
        return 1

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    model.save_pretrained(OUT, safe_serialization=True)
    write_vocab(OUT)

    # Check what was written: the tokenizer, and the reloaded model's outputs.
    tok = GPT2Tokenizer.from_pretrained(OUT)
    assert tok.encode(BOS + "abcdabcd") == [0, 1, 2, 3, 4, 1, 2, 3, 4], tok.encode(BOS + "abcdabcd")
    assert tok.encode("aZ09") == [1, 52, 53, 62]
    reloaded = GPT2LMHeadModel.from_pretrained(OUT).eval()
    assert reloaded.lm_head.weight.data_ptr() == reloaded.transformer.wte.weight.data_ptr()
    assert evaluate(reloaded, seed=SEED + 3) == result

    pairs = make_prompts(reloaded, tok)
    good = sum(p["clean_logit_diff"] > 0 and p["corrupt_logit_diff"] < 0 for p in pairs)
    print(f"prompts: {good}/{len(pairs)} pairs with clean logit diff > 0 > corrupt logit diff")
    header = {
        "description": "Induction prompts for activation patching: clean = <|endoftext|> x1..xR x1..xk, "
                       "answer xk+1 by induction; corrupt = the same with the first xk+1 (token "
                       "position changed_position) replaced by a token y not in the sequence, so "
                       "induction predicts y. Both prompts have the same length.",
        "metric": "logit_diff = logits[last, clean_answer_id] - logits[last, corrupt_answer_id]",
        "reference": "clean_logit_diff/corrupt_logit_diff: this model in PyTorch float32; "
                     "clean_top/corrupt_top: its top token at the last position",
    }
    with open(os.path.join(OUT, "prompts.json"), "w", encoding="utf-8") as f:
        # one line per pair
        f.write(json.dumps(header, ensure_ascii=False, indent=1)[:-2] + ',\n "pairs": [\n')
        f.write(",\n".join("  " + json.dumps(p, ensure_ascii=False) for p in pairs))
        f.write("\n ]\n}\n")
    assert json.load(open(os.path.join(OUT, "prompts.json"), encoding="utf-8"))["pairs"] == pairs

    with open(os.path.join(OUT, "training.json"), "w") as f:
        json.dump({
            "task": f"BOS + R distinct random tokens + the same R tokens, R uniform in [{R_MIN}, {R_MAX}]; "
                    "loss on predicting x2..xR of the repeat",
            "evaluation": {"sequences": 512, "seed": SEED + 3, **result,
                           "chance_accuracy_first_half": "about 1/61 (distinct tokens)"},
            "training": {"steps": STEPS, "batch": BATCH, "lr": LR, "optimizer": "AdamW(weight_decay=0.01)",
                         "schedule": "linear warmup 200 steps, linear decay", "seed": SEED, "log": log},
            "prompts": {"pairs": len(pairs), "clean_positive_and_corrupt_negative": good},
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }, f, indent=1)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {OUT} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
