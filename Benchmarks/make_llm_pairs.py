#!/usr/bin/env python3
"""Prompt pairs for patching, AtP and AtP* on a Llama-tokenizer LLM (SmolLM2 by default),
written as Models/smollm2-pairs/{ioi,induction}.json ({"pairs": [{clean_ids, corrupt_ids,
clean_answer_id, corrupt_answer_id, clean_text, corrupt_text}]}, the format `attrib patch
--pairs` reads). Token ids come from transformers' tokenizer of the GGUF (the model's own).

IOI (Wang et al. 2022): templates "When {A} and {B} went to the {place}, {B} gave a {thing}
to" with single-token names; the answer is the indirect object A, the contrast the subject
B. The corrupt prompt is the same template with three other names (two other names):
it carries no information about which of A, B is the indirect object, so the metric
logit(A) − logit(B) moves towards 0 there. Clean and corrupt have equal token lengths because
every name is one token.

Induction: a random sequence r of R tokens then its first R − 1 tokens again; the answer is
r[R−1] (the token that followed r[R−2] before), the contrast a random token y. The corrupt
prompt replaces the first half by another random sequence s (so nothing repeats) and keeps
the second half: logit(r[R−1]) − logit(y) falls to chance.

    python3 Benchmarks/make_llm_pairs.py [--gguf PATH] [--n 64] [--seed 0]
"""
import argparse, json, os, random
from transformers import AutoTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ["Mary", "John", "Tom", "James", "Anna", "Paul", "Sarah", "David", "Lisa", "Mark", "Emma", "Peter",
         "Kate", "Michael", "Laura", "Daniel", "Alice", "Robert", "Jane", "Chris", "Linda", "George", "Susan",
         "Richard", "Helen", "Thomas", "Karen", "Steven", "Nancy", "Kevin", "Amy", "Brian", "Rachel", "Jack"]
PLACES = ["store", "park", "school", "office", "station", "market", "library", "garden", "beach", "cafe"]
THINGS = ["drink", "book", "ball", "gift", "letter", "ring", "key", "card", "flower", "pen"]
TEMPLATES = ["When{A} and{B} went to the {place},{B} gave a {thing} to",
             "Then,{A} and{B} had a long day at the {place}.{B} gave a {thing} to",
             "After{A} and{B} arrived at the {place},{B} handed a {thing} to",
             "While{A} and{B} were working at the {place},{B} passed a {thing} to"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.path.join(ROOT, ".models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(ROOT, "Models/smollm2-pairs"))
    a = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(os.path.dirname(a.gguf), gguf_file=os.path.basename(a.gguf))
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    names = [" " + n for n in NAMES if len(enc(" " + n)) == 1]
    rng = random.Random(a.seed)

    ioi = []
    while len(ioi) < a.n:
        t = rng.choice(TEMPLATES)
        A, B, C, D = rng.sample(names, 4)
        place, thing = rng.choice(PLACES), rng.choice(THINGS)
        clean = t.format(A=A, B=B, place=place, thing=thing)
        corrupt = t.format(A=C, B=D, place=place, thing=thing)
        ci, xi = enc(clean), enc(corrupt)
        if len(ci) != len(xi):
            continue
        ioi.append({"clean_text": clean, "corrupt_text": corrupt, "clean_ids": ci, "corrupt_ids": xi,
                    "clean_answer_id": enc(A)[0], "corrupt_answer_id": enc(B)[0]})

    induction = []
    R = 8
    lo, hi = 1000, 20000          # ordinary word pieces, no specials
    for _ in range(a.n):
        r = [rng.randrange(lo, hi) for _ in range(R)]
        s = [rng.randrange(lo, hi) for _ in range(R)]
        y = rng.randrange(lo, hi)
        induction.append({"clean_ids": r + r[:-1], "corrupt_ids": s + r[:-1],
                          "clean_answer_id": r[-1], "corrupt_answer_id": y})

    os.makedirs(a.out, exist_ok=True)
    for name, pairs, what in [("ioi", ioi, "IOI: answer the indirect object (clean_answer_id) against the subject (corrupt_answer_id); corrupt = the template with two other names"),
                              ("induction", induction, "Induction: r (8 random tokens) then r[:-1]; answer r[-1] against a random token; corrupt replaces the first r by another random sequence")]:
        with open(os.path.join(a.out, name + ".json"), "w") as f:
            json.dump({"description": what, "model": os.path.basename(a.gguf),
                       "made_by": "Benchmarks/make_llm_pairs.py --seed %d" % a.seed,
                       "metric": "logits[last, clean_answer_id] - logits[last, corrupt_answer_id]", "pairs": pairs}, f, indent=1)
        print(f"wrote {name}.json: {len(pairs)} pairs, {len(pairs[0]['clean_ids'])} tokens (first)")


if __name__ == "__main__":
    main()
