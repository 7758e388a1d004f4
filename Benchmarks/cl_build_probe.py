#!/usr/bin/env python3
"""Builds OpenCL sources on a GPU host through the ICD loader (ctypes, no pyopencl) and
prints clBuildProgram's status and the full build log for each: a diagnostic for
kernels that fail to build on one vendor's compiler (the log attrib shows is the
same, but this tries many variants in one process, one after another).

    Benchmarks/cl_build_probe.py FILE.cl "OPTIONS" [FILE.cl "OPTIONS" ...]

An OPTIONS string may start with `s/OLD/NEW/;` edits applied to the source first
(Python str.replace, separated by ';' and ended by a space), to try a change
without rebuilding attrib. Uses the first GPU device (else the first device).
"""
import ctypes, ctypes.util, sys, time

lib = ctypes.CDLL(ctypes.util.find_library("OpenCL") or "libOpenCL.so.1")
cl_uint, cl_int, size_t = ctypes.c_uint32, ctypes.c_int32, ctypes.c_size_t
vp = ctypes.c_void_p


# What attrib prepends to each kernel file (Kernels/KernelSources.swift's `prelude`).
PRELUDES = {
    "activation.cl": ["activation_math.cl"],
    "path.cl": ["activation_math.cl"],
    "conv_igemm.cl": ["activation_math.cl", "operand_round.cl"],
    "gemm.cl": ["activation_math.cl", "operand_round.cl", "gemm_epilogue.cl"],
    "gemm_db.cl": ["activation_math.cl", "operand_round.cl", "gemm_epilogue.cl"],
    "gemm_mma.cl": ["activation_math.cl", "operand_round.cl", "gemm_epilogue.cl"],
}


def with_prelude(path):
    """The file's source as attrib builds it: its preludes from the same folder, then it."""
    import os
    folder, name = os.path.split(path)
    return "".join(open(os.path.join(folder, p)).read() for p in PRELUDES.get(name, [])) + open(path).read()


def device():
    n = cl_uint()
    lib.clGetPlatformIDs(0, None, ctypes.byref(n))
    plats = (vp * n.value)()
    lib.clGetPlatformIDs(n.value, plats, None)
    chosen = None
    for p in plats:
        for kind in (1 << 2, 0xFFFFFFFF):     # GPU, then all
            m = cl_uint()
            if lib.clGetDeviceIDs(vp(p), ctypes.c_uint64(kind), 0, None, ctypes.byref(m)) == 0 and m.value:
                ds = (vp * m.value)()
                lib.clGetDeviceIDs(vp(p), ctypes.c_uint64(kind), m.value, ds, None)
                if kind != 0xFFFFFFFF:
                    return ds[0]
                chosen = chosen or ds[0]
    return chosen


def main(args):
    dev = vp(device())
    name = ctypes.create_string_buffer(256)
    lib.clGetDeviceInfo(dev, 0x102B, 256, name, None)    # CL_DEVICE_NAME
    print("device:", name.value.decode())
    err = cl_int()
    lib.clCreateContext.restype = vp
    ctx = vp(lib.clCreateContext(None, 1, ctypes.byref(dev), None, None, ctypes.byref(err)))
    lib.clCreateProgramWithSource.restype = vp
    for path, opts in zip(args[0::2], args[1::2]):
        src = with_prelude(path)
        while opts.startswith("s/"):
            edit, _, opts = opts.partition("; ")
            _, old, new, _ = edit.split("/")
            src = src.replace(old, new)
        s = ctypes.c_char_p(src.encode())
        prog = vp(lib.clCreateProgramWithSource(ctx, 1, ctypes.byref(s), None, ctypes.byref(err)))
        t0 = time.time()
        status = lib.clBuildProgram(prog, 1, ctypes.byref(dev), opts.encode(), None, None)
        dt = time.time() - t0
        size = size_t()
        lib.clGetProgramBuildInfo(prog, dev, 0x1183, 0, None, ctypes.byref(size))   # CL_PROGRAM_BUILD_LOG
        log = ctypes.create_string_buffer(size.value + 1)
        lib.clGetProgramBuildInfo(prog, dev, 0x1183, size.value, log, None)
        print(f"== {path} {opts}\n   status {status} in {dt:.2f} s; log:\n{log.value.decode(errors='replace').strip()[:3000]}", flush=True)
        lib.clReleaseProgram(prog)


if __name__ == "__main__":
    main(sys.argv[1:])
