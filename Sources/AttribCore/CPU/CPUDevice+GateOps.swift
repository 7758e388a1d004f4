import CVecMath

// Channels-last squeeze-and-excitation gates on the CPU backend: Float32 in one pass each way
// (CVecMath/gate.c), a sample per task. Float64 declines (the op's products then run it).
extension CPUDevice {
    public func gateMultiply(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, y: BufferView) throws -> Bool {
        let op = "gateMultiply", plane = rows * cols
        guard try buffer(y, op).dtype == .float32 else { return false }
        let (pa, ps, py) = (try pointer(Float.self, a, op, n * plane), try pointer(Float.self, s, op, n * cols), try pointer(Float.self, y, op, n * plane))
        parallelChunks(n, grain: 1) { r in
            for b in r { attrib_gate_mul_f32(pa + b * plane, ps + b * cols, py + b * plane, rows, cols) }
        }
        return true
    }

    public func gateMultiplyBackward(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, dy: BufferView,
                                     da: BufferView?, ds: BufferView?) throws -> Bool {
        let op = "gateMultiplyBackward", plane = rows * cols
        guard try buffer(dy, op).dtype == .float32 else { return false }
        let (pa, ps, pg) = (try pointer(Float.self, a, op, n * plane), try pointer(Float.self, s, op, n * cols), try pointer(Float.self, dy, op, n * plane))
        let pda = try da.map { try pointer(Float.self, $0, op, n * plane) }, pds = try ds.map { try pointer(Float.self, $0, op, n * cols) }
        parallelChunks(n, grain: 1) { r in
            for b in r {
                attrib_gate_mul_backward_f32(pa + b * plane, ps + b * cols, pg + b * plane, pda.map { $0 + b * plane }, pds.map { $0 + b * cols }, rows, cols)
            }
        }
        return true
    }
}
