#!/usr/bin/env python3
"""Issue 23's malformed-input classes, each made from a copy of a bundled model or input and
run through an attrib binary; prints one row per case: the class, the command, the exit
status (132/134/139: a crash; 0: accepted) and the first line of what it printed on stderr.

    python3 scripts/malformed_cases.py [--attrib .build/debug/attrib] [--markdown]

Run it with an old and a new binary to compare (Benchmarks/results/2026-12-04-malformed/).
Needs numpy and safetensors (scripts/requirements-fixtures.txt).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "Models")


def copy_model(tmp: str, name: str, tag: str) -> str:
    d = os.path.join(tmp, f"{name}-{tag}")
    shutil.copytree(os.path.join(MODELS, name), d)
    return d


def edit_config(d: str, f) -> None:
    p = os.path.join(d, "config.json")
    c = json.load(open(p))
    f(c)
    json.dump(c, open(p, "w"))


def edit_weights(d: str, f) -> None:
    p = os.path.join(d, "model.safetensors")
    w = load_file(p)
    f(w)
    save_file(w, p)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attrib", default=os.path.join(ROOT, ".build/debug/attrib"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="malformed_")
    x = np.load(os.path.join(MODELS, "digits-data", "test_inputs.npy")).astype(np.float32)[:4]
    xp = os.path.join(tmp, "x.npy")
    np.save(xp, x)
    cases = []

    def predict(cls, d, inputs=xp):
        cases.append((cls, ["predict", "--model", d, "--inputs", inputs, "--device", "cpu"]))

    def layer(c, i, k, v):
        c["layers"][i][k] = v

    for tag, shape in (("a", [1, 2**32, 2**32]), ("b", [1, 2**63 - 1, 8])):
        d = copy_model(tmp, "digits-cnn", "inshape-" + tag)
        edit_config(d, lambda c: c.__setitem__("input_shape", shape))
        predict(f"1-2 input_shape {shape}", d)
    d = copy_model(tmp, "digits-cnn", "pad")
    edit_config(d, lambda c: layer(c, 0, "padding", [2**63 - 1, 1]))
    predict("2 Conv2d padding 2^63-1", d)
    for n in (9, 0, 11):
        d = copy_model(tmp, "digits-mlp", f"labels{n}")
        edit_config(d, lambda c: c.__setitem__("labels", ["x"] * n))
        predict(f"3 labels: {n} for 10 outputs", d)
    for ns in ([-1], [2**62, 4], [2**31], [2**31, 2**31], [2**28], [0]):
        d = copy_model(tmp, "digits-mlp", "ln" + "_".join(map(str, ns)))
        edit_config(d, lambda c: c["layers"].insert(1, {"type": "LayerNorm", "normalized_shape": ns, "elementwise_affine": False}))
        predict(f"4 LayerNorm normalized_shape {ns}", d)
    atp_args = ["--clean", "<|endoftext|>1fOGwHMn1fOGw", "--corrupt", "<|endoftext|>1fOGwYMn1fOGw", "--metric", "logit-diff:H,Y",
                "--nodes", "heads", "--device", "cpu"]
    for v in (2**62, -2**63):
        d = copy_model(tmp, "induction-2l", f"nembd{v}")
        edit_config(d, lambda c: c.__setitem__("n_embd", v))
        cases.append((f"5 GPT-2 n_embd {v}", ["atp", "--model", d, "--out", os.path.join(tmp, "o"), *atp_args]))
    bp = os.path.join(tmp, "b_empty.npy")
    with open(bp, "wb") as f:
        h = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, 0), }" % 2**58
        h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode())
    cases.append(("6 baseline .npy (2^58, 0)", ["ig", "--model", os.path.join(MODELS, "digits-mlp"), "--inputs", xp, "--baseline", f"file:{bp}",
                                                "--device", "cpu", "--quiet", "--no-heatmaps", "--out", os.path.join(tmp, "o6")]))
    d = copy_model(tmp, "induction-2l", "scaled")
    edit_weights(d, lambda w: w.__setitem__("transformer.ln_f.weight", w["transformer.ln_f.weight"] * 1e20))
    cases.append(("7 atp table, ln_f.weight x 1e20", ["atp", "--model", d, "--out", os.path.join(tmp, "o7"), *atp_args]))
    xn = x.copy()
    xn[1, 0, 2, 3] = np.nan
    xnp = os.path.join(tmp, "x_nan.npy")
    np.save(xnp, xn)
    predict("predict NaN input", os.path.join(MODELS, "digits-mlp"), xnp)
    d = copy_model(tmp, "digits-mlp", "nanw")
    edit_weights(d, lambda w: w["1.weight"].__setitem__((0, 0), np.nan))
    predict("NaN weight", d)
    d = copy_model(tmp, "digits-mlp", "short")
    p = os.path.join(d, "model.safetensors")
    b = bytearray(open(p, "rb").read())
    n = struct.unpack("<Q", b[:8])[0]
    b[:8] = struct.pack("<Q", n - 1)
    open(p, "wb").write(b)
    predict("safetensors header length 1 short (padding)", d)
    d = copy_model(tmp, "digits-mlp", "int")
    edit_weights(d, lambda w: w.__setitem__("1.bias", w["1.bias"].astype(np.int32)))
    predict("I32 weight", d)
    d = copy_model(tmp, "induction-2l", "eps")
    edit_config(d, lambda c: c.__setitem__("layer_norm_epsilon", 1.8e19))
    cases.append(("layer_norm_epsilon 1.8e19", ["atp", "--model", d, "--out", os.path.join(tmp, "o8"), *atp_args]))
    d = copy_model(tmp, "induction-2l", "vocab")
    open(os.path.join(d, "vocab.json"), "w").write("{\"a\": 0, ")
    cases.append(("broken vocab.json", ["atp", "--model", d, "--out", os.path.join(tmp, "o9"), *atp_args]))
    d = copy_model(tmp, "digits-cnn", "pool")
    edit_config(d, lambda c: layer(c, 2, "kernel_size", [-1, 2]))
    predict("AvgPool2d kernel [-1, 2]", d)
    d = copy_model(tmp, "digits-cnn", "stride")
    edit_config(d, lambda c: layer(c, 0, "stride", [1]))
    predict("Conv2d stride [1]", d)
    xt = os.path.join(tmp, "x_t.npy")
    np.save(xt, x.reshape(4, 8, 8, 1))
    predict("inputs [4, 8, 8, 1] for [1, 8, 8]", os.path.join(MODELS, "digits-cnn"), xt)
    tp = os.path.join(tmp, "t0.npy")
    np.save(tp, np.zeros((4, 0), dtype=np.int32))
    cases.append(("targets [N, 0]", ["ig", "--model", os.path.join(MODELS, "digits-mlp"), "--inputs", xp, "--targets", tp,
                                     "--device", "cpu", "--quiet", "--no-heatmaps", "--out", os.path.join(tmp, "o10")]))

    pairs = os.path.join(tmp, "pairs.json")
    json.dump([{"clean_ids": [0, 5, 9, 12], "corrupt_ids": [0, 5, 9, 12], "clean_answer_id": 3, "corrupt_answer_id": 4},
               {"clean_ids": [0, 5, 9, 12, 7], "corrupt_ids": [0, 5, 9], "clean_answer_id": 3, "corrupt_answer_id": 4}], open(pairs, "w"))
    cases.append(("pairs of unequal length (pair 1)", ["atp", "--model", os.path.join(MODELS, "induction-2l"), "--pairs", pairs,
                                                       "--nodes", "heads", "--device", "cpu", "--out", os.path.join(tmp, "o11")]))
    pairs2 = os.path.join(tmp, "pairs2.json")
    json.dump([{"clean_ids": [0, 5, 9, 12], "corrupt_ids": [0, 5, 9, 13], "clean_answer_id": 3, "corrupt_answer_id": 99}], open(pairs2, "w"))
    cases.append(("metric token outside the vocabulary", ["atp", "--model", os.path.join(MODELS, "induction-2l"), "--pairs", pairs2,
                                                          "--nodes", "heads", "--device", "cpu", "--out", os.path.join(tmp, "o12")]))
    mp = os.path.join(tmp, "maps_nan.npy")
    m = np.ones((4, 1, 8, 8), dtype=np.float32)
    m[0, 0, 0, 0] = np.nan
    np.save(mp, m)
    cases.append(("evaluate: a NaN in the maps", ["evaluate", "deletion", "--model", os.path.join(MODELS, "digits-mlp"), "--inputs", xp,
                                                  "--maps", mp, "--device", "cpu", "--quiet"]))

    rows = []
    for cls, cmd in cases:
        try:
            r = subprocess.run([args.attrib, *cmd], capture_output=True, text=True, timeout=120)
            code, err = r.returncode, (r.stderr.strip().splitlines() or [""])[0]
            lines = len(r.stderr.strip().splitlines())
        except subprocess.TimeoutExpired:
            code, err, lines = "timeout", "", 0
        err = err.replace(tmp, "$TMP")
        if len(err) > 150:
            err = err[:150] + "…"
        rows.append((cls, cmd[0], code, lines, err))
    shutil.rmtree(tmp, ignore_errors=True)
    if args.markdown:
        print("| case | command | exit | stderr lines | first line |\n| --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4].replace('|', '/')} |")
    else:
        for r in rows:
            print(f"{r[0]:45s} {r[1]:8s} exit {str(r[2]):7s} {r[3]:3d} lines  {r[4]}")
    crashes = sum(1 for r in rows if r[2] in (132, 134, 139, -4, -6, -11, "timeout"))
    accepted = sum(1 for r in rows if r[2] == 0)
    print(f"\n{len(rows)} cases: {crashes} crashes or hangs, {accepted} accepted (exit 0), {len(rows) - crashes - accepted} clean errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
