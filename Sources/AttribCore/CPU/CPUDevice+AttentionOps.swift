// The CPU backend's attention helpers: the [a, b, c, d] → [a, c, b, d] transpose
// (in C for Float32) and the strided box copy (activation patching, last-position slices).
import CVecMath

extension CPUDevice {
    public func transpose12(a: Int, b: Int, c: Int, d: Int, x: BufferView, y: BufferView) throws {
        let op = "transpose12"
        try AttribError.requirePositive(op, ["a": a, "b": b, "c": c, "d": d])
        let n = a * b * c * d
        if try buffer(y, op).dtype == .float32 {
            let xp = try pointer(Float.self, x, op, n), yp = try pointer(Float.self, y, op, n)
            let per = b * c * d
            parallelChunks(a, grain: max(1, (1 << 15) / per)) { r in
                attrib_transpose12_f32(xp + r.lowerBound * per, yp + r.lowerBound * per, r.count, b, c, d)
            }
            return
        }
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n), yp = try pointer(T.self, y, op, n)
            // One (i, k, j) row of d elements per step, in y order.
            parallelChunks(a * c * b, grain: max(1, (1 << 15) / d)) { r in
                for row in r {
                    let j = row % b, t = row / b, k = t % c, i = t / c
                    (yp + row * d).update(from: xp + ((i * b + j) * c + k) * d, count: d)
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }

    public func copyBox(n0: Int, n1: Int, n2: Int, x: BufferView, xStride0: Int, xStride1: Int,
                        y: BufferView, yStride0: Int, yStride1: Int) throws {
        let op = "copyBox"
        try AttribError.requirePositive(op, ["n0": n0, "n1": n1, "n2": n2])
        for (name, s) in [("xStride0", xStride0), ("xStride1", xStride1), ("yStride0", yStride0), ("yStride1", yStride1)] where s < 0 {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(s) is negative")
        }
        let xb = try buffer(x, op), yb = try buffer(y, op)
        guard xb.dtype == yb.dtype else {
            throw AttribError.invalidArgument(op: op, detail: "source is \(xb.dtype), destination \(yb.dtype)")
        }
        try x.require((n0 - 1) * xStride0 + (n1 - 1) * xStride1 + n2, op, "source")
        try y.require((n0 - 1) * yStride0 + (n1 - 1) * yStride1 + n2, op, "destination")
        let s = xb.dtype.size
        let xp = xb.pointer + x.offset * s, yp = yb.pointer + y.offset * s
        for i in 0..<n0 {
            for j in 0..<n1 {
                (yp + (i * yStride0 + j * yStride1) * s).copyMemory(from: xp + (i * xStride0 + j * xStride1) * s, byteCount: n2 * s)
            }
        }
    }
}
