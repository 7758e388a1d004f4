import AttribCore

/// The checks every OpenCL op makes on its operands before a launch.
extension OpenCLDevice {
    /// One operand: a view, the elements it must hold, and whether it holds Int32 indices.
    struct Operand {
        let view: BufferView, extent: Int, index: Bool
        init(_ view: BufferView, _ extent: Int, index: Bool = false) { self.view = view; self.extent = extent; self.index = index }
    }

    /// The float dtype shared by the non-index operands and their buffers, after
    /// checking each view holds its extent, index operands are Int32, and every
    /// element index fits the kernels' 32-bit arithmetic.
    func checkedOperands(_ op: String, _ operands: [Operand]) throws -> (DType, [CLBuffer]) {
        var buffers: [CLBuffer] = []
        var dtype: DType?
        for (i, o) in operands.enumerated() {
            let b = try clBuffer(o.view, op)
            try o.view.require(o.extent, op, "operand \(i)")
            guard o.view.offset + o.extent <= Int(Int32.max) else {
                throw AttribError.tooLarge(op: op, detail: "operand \(i) spans elements up to \(o.view.offset + o.extent), beyond the 32-bit indexing of the OpenCL kernels; split the batch")
            }
            if o.index {
                guard b.dtype == .int32 else {
                    throw AttribError.invalidArgument(op: op, detail: "operand \(i) is \(b.dtype), expected int32 indices")
                }
            } else if let t = dtype, t != b.dtype {
                throw AttribError.invalidArgument(op: op, detail: "operands mix \(t) and \(b.dtype)")
            } else {
                dtype = b.dtype
            }
            buffers.append(b)
        }
        guard let dtype, dtype.isFloatingPoint else {
            throw AttribError.unsupportedDType(op: op, dtype: dtype ?? .int32, device: info.summary)
        }
        return (dtype, buffers)
    }

    /// The same for views that all hold floats: (view, extent) pairs.
    func checkedOperands(_ op: String, _ views: [(BufferView, Int)]) throws -> (DType, [CLBuffer]) {
        try checkedOperands(op, views.map { Operand($0.0, $0.1) })
    }
}
