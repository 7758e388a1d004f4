#!/usr/bin/env python3
"""Writes the GGUF fixtures of Tests/AttribTests/GGUFTests.swift with gguf-py (pip install gguf==0.19.0 numpy).

  types.gguf            metadata of every GGUF value type (strings, bools, float64, typed and
                        nested arrays) and one tensor of each type Attrib dequantises (F32, F16,
                        BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K), two 3-D ones, and a Q5_K one Attrib
                        refuses
  types.expected.safetensors
                        gguf-py's dequantisation of each of those tensors (F32, PyTorch-order
                        shape), the reference the Swift reader is compared with
  aligned64.gguf        general.alignment = 64, two tensors
  smollm2_slices.safetensors (only with --smollm2 PATH)
                        rows of a few tensors of SmolLM2-135M-Instruct.Q4_1.gguf, dequantised by
                        gguf-py, for the test that runs when ATTRIB_SMOLLM2_GGUF names that file

Q8_0, Q4_0, Q4_1 and BF16 data are random values quantised by gguf.quants.quantize. gguf-py
cannot quantise the K-quants, so their blocks are random bytes (scales as finite f16 values)
and gguf.quants.dequantize gives the reference. Fixed seed: rerunning writes the same files.

  python3 Tests/Fixtures/gguf/make_gguf_fixtures.py [--smollm2 PATH]
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20260101)


def write_safetensors(path, tensors):
    """A minimal safetensors writer (F32 only), to need nothing beyond numpy."""
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def random_f16(n, lo, hi):
    """n finite positive f16 values as bytes (random bytes could be NaN or inf)."""
    return rng.uniform(lo, hi, n).astype("<f2").view(np.uint8).reshape(n, 2)


def k_blocks(qtype, rows, cols):
    """Raw blocks of a K-quant with random contents, shape (rows, bytes per row)."""
    nb = rows * cols // 256
    if qtype == Q.Q4_K or qtype == Q.Q5_K:
        d, dmin = random_f16(nb, 0.001, 0.05), random_f16(nb, 0.001, 0.05)
        rest = rng.integers(0, 256, (nb, 140 if qtype == Q.Q4_K else 172), dtype=np.uint8)
        blocks = np.concatenate([d, dmin, rest], axis=1)
    elif qtype == Q.Q6_K:
        qs = rng.integers(0, 256, (nb, 128 + 64), dtype=np.uint8)
        scales = rng.integers(-128, 128, (nb, 16), dtype=np.int8).view(np.uint8)
        blocks = np.concatenate([qs, scales, random_f16(nb, 0.001, 0.05)], axis=1)
    else:
        raise ValueError(qtype)
    assert blocks.shape[1] == gguf.GGML_QUANT_SIZES[qtype][1]
    return blocks.reshape(rows, -1)


def make_types():
    path = os.path.join(HERE, "types.gguf")
    w = gguf.GGUFWriter(path, arch="fixture")
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float32("test.f32", 1.5)
    w.add_float64("test.f64", 3.141592653589793)
    w.add_bool("test.bool", True)
    w.add_bool("test.bool_false", False)
    w.add_string("test.string", "héllo ✓")
    w.add_key_value("test.empty_string", "", V.STRING)                   # add_string skips empty strings
    w.add_array("test.strings", ["a", "bc", "", "naïve ✓"])
    w.add_array("test.ints", [1, -2, 3])                                  # int32
    w.add_key_value("test.u8s", [0, 7, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.i64s", [-(2**40), 0, 2**40], V.ARRAY, sub_type=V.INT64)
    w.add_key_value("test.u64s", [2**64 - 1], V.ARRAY, sub_type=V.UINT64)
    w.add_array("test.floats", [0.5, -1.25, 3.0])                         # float32
    w.add_key_value("test.f64s", [0.1, 1e300], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("test.bools", [True, False, True])
    w.add_array("test.nested", [[1, 2], [3]])                             # arrays of int32 arrays
    w.add_array("test.nested_mixed", [["x", "y"], [2.5]])                 # inner arrays of different types

    expected = {}

    def plain(name, shape, kind):
        x = rng.standard_normal(shape).astype(np.float32)
        if kind == "F32":
            w.add_tensor(name, x)
            expected[name] = x
        elif kind == "F16":
            h = x.astype(np.float16)
            w.add_tensor(name, h)
            expected[name] = h.astype(np.float32)
        elif kind == "BF16":
            raw = gguf.quants.quantize(x, Q.BF16)
            w.add_tensor(name, raw, raw_dtype=Q.BF16)
            expected[name] = gguf.quants.dequantize(raw, Q.BF16).reshape(shape)

    def quantised(name, shape, qtype):
        x = rng.standard_normal(shape).astype(np.float32)
        raw = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, raw, raw_dtype=qtype)
        expected[name] = gguf.quants.dequantize(raw, qtype).reshape(shape)

    def kquant(name, shape, qtype, reference=True):
        raw = k_blocks(qtype, shape[0], shape[1])
        w.add_tensor(name, raw, raw_dtype=qtype)
        if reference:
            expected[name] = gguf.quants.dequantize(raw, qtype).reshape(shape)

    plain("f32", (3, 5), "F32")
    plain("f32_3d", (2, 3, 4), "F32")
    plain("f32_1d", (7,), "F32")
    plain("f16", (4, 6), "F16")
    plain("bf16", (2, 8), "BF16")
    quantised("q8_0", (3, 64), Q.Q8_0)
    quantised("q4_0", (2, 64), Q.Q4_0)
    quantised("q4_1", (4, 32), Q.Q4_1)
    # 3-D: rows count over both outer dimensions.
    x = rng.standard_normal((2, 2, 32)).astype(np.float32)
    raw = gguf.quants.quantize(x, Q.Q8_0)
    w.add_tensor("q8_0_3d", raw, raw_dtype=Q.Q8_0)
    expected["q8_0_3d"] = gguf.quants.dequantize(raw, Q.Q8_0).reshape(x.shape)
    kquant("q4_k", (2, 512), Q.Q4_K)
    kquant("q6_k", (3, 256), Q.Q6_K)
    kquant("blk.0.ffn_up.weight", (1, 256), Q.Q5_K, reference=False)     # a type Attrib refuses

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    write_safetensors(os.path.join(HERE, "types.expected.safetensors"), expected)


def make_aligned64():
    w = gguf.GGUFWriter(os.path.join(HERE, "aligned64.gguf"), arch="fixture")
    w.add_custom_alignment(64)
    w.add_tensor("a", np.arange(3, dtype=np.float32))
    w.add_tensor("b", np.arange(5, dtype=np.float32) * -1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_smollm2_slices(path):
    """A few rows of SmolLM2's tensors (one of each type it holds), dequantised by gguf-py."""
    r = gguf.GGUFReader(path)
    want = {"token_embd.weight": (100, 103), "blk.0.attn_q.weight": (0, 2),
            "blk.29.ffn_down.weight": (575, 576), "output_norm.weight": (0, 1)}
    out = {}
    for t in r.tensors:
        if t.name in want:
            lo, hi = want[t.name]
            ne0 = int(t.shape[0])
            rows = t.data.reshape(-1, t.data.shape[-1])                     # (rows, bytes or elements per row)
            vals = gguf.quants.dequantize(rows[lo:hi], t.tensor_type).reshape(hi - lo, ne0)
            out[f"{t.name}:{lo}:{hi}:{t.tensor_type.name}"] = vals.astype(np.float32)
    assert len(out) == len(want), out.keys()
    write_safetensors(os.path.join(HERE, "smollm2_slices.safetensors"), out)


if __name__ == "__main__":
    make_types()
    make_aligned64()
    if "--smollm2" in sys.argv:
        make_smollm2_slices(sys.argv[sys.argv.index("--smollm2") + 1])
