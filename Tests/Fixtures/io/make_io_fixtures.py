#!/usr/bin/env python3
"""Makes the tiny IO test fixtures in this folder (run from anywhere).

NumPy files come from numpy itself; safetensors files from the reference
`safetensors` package (pip install safetensors numpy), which must be installed
for those. IOTests.swift checks the values written here, so keep the two in step.
"""
import os
import numpy as np
from numpy.lib import format as npf

HERE = os.path.dirname(os.path.abspath(__file__))


def path(name):
    return os.path.join(HERE, name)


def npy():
    np.save(path("f4_2x3.npy"), (np.arange(6, dtype="<f4") * 0.5 - 1).reshape(2, 3))
    np.save(path("f8_3.npy"), np.array([0.1, -2.0, 1e300], dtype="<f8"))
    np.save(path("i4_2x2.npy"), np.array([[1, -2], [3, 2147483647]], dtype="<i4"))
    np.save(path("i8_4.npy"), np.array([0, -5, 2**40, 7], dtype="<i8"))
    np.save(path("u1_5.npy"), np.array([0, 1, 2, 254, 255], dtype="|u1"))
    np.save(path("f2_3.npy"), np.array([0.5, -65504, 2.0**-24], dtype="<f2"))
    np.save(path("f8_scalar.npy"), np.float64(3.25))
    np.save(path("f4_empty.npy"), np.zeros((0, 3), dtype="<f4"))
    for version in [(2, 0), (3, 0)]:
        with open(path(f"f4_v{version[0]}.npy"), "wb") as f:
            npf.write_array(f, np.array([1, 2, 3], dtype="<f4"), version=version)
    np.save(path("f4_fortran.npy"), np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    np.save(path("f4_bigendian.npy"), np.array([1, 2], dtype=">f4"))


def safetensors_files():
    from safetensors.numpy import save_file
    from safetensors import serialize_file
    tensors = {
        "w_f32": (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(2, 3),
        "b_f64": np.array([0.1, 1e300, -0.0], dtype=np.float64),
        "h_f16": np.array([0.5, -65504, 2.0**-24, 1 / 3], dtype=np.float16),
        "ids_i32": np.array([[0, -1], [2147483647, 5]], dtype=np.int32),
        "big_i64": np.array([1, -2, 2**40], dtype=np.int64),
        "u8": np.array([0, 7, 255], dtype=np.uint8),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "i16": np.array([-32768, 1, 32767], dtype=np.int16),
        "flags": np.array([True, False, True], dtype=np.bool_),
        "scalar": np.array(2.5, dtype=np.float32),
    }
    save_file(tensors, path("mixed.safetensors"), metadata={"format": "np", "note": "tiny fixture"})

    # bfloat16 (no numpy dtype): hand the raw bits to the reference serializer.
    bits = np.array([0x3F80, 0xC020, 0x3E20, 0x7F7F, 0x0001, 0x8000], dtype="<u2")
    try:  # safetensors >= 0.7 takes TensorSpec; earlier versions a dict with the bytes
        from safetensors import TensorSpec
        spec = TensorSpec(dtype="bfloat16", shape=[2, 3], data_ptr=bits.ctypes.data, data_len=bits.nbytes)
    except ImportError:
        spec = {"dtype": "bfloat16", "shape": [2, 3], "data": bits.tobytes()}
    serialize_file({"x_bf16": spec}, path("bf16.safetensors"), metadata=None)


if __name__ == "__main__":
    npy()
    safetensors_files()
