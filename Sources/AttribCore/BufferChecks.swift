// Memory-safety checks every backend runs before touching a buffer: a raw op
// given a view too short for its sizes throws instead of reading past the end.

extension BufferView {
    /// Throws unless `elements` elements starting at the offset lie inside the buffer.
    public func require(_ elements: Int, _ op: String, _ name: String) throws {
        guard offset >= 0, elements >= 0, offset + elements <= buffer.count else {
            throw AttribError.invalidArgument(op: op, detail: "\(name) needs elements \(offset)..<\(offset + elements) of a buffer of \(buffer.count)")
        }
    }
}

extension GEMMArguments {
    /// Checks sizes, leading dimensions and that every matrix of every batch entry lies inside its buffer.
    public func validate() throws {
        let op = "gemm"
        guard m >= 1, n >= 1, k >= 1, batch >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "m = \(m), n = \(n), k = \(k), batch = \(batch): all must be ≥ 1")
        }
        // Stored shapes (rows × cols) of A, B and C.
        let (ar, ac) = transA ? (k, m) : (m, k)
        let (br, bc) = transB ? (n, k) : (k, n)
        for (name, cols, ld) in [("lda", ac, lda), ("ldb", bc, ldb), ("ldc", n, ldc)] where ld < cols {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(ld) is less than the \(cols) columns it spans")
        }
        for (name, s) in [("strideA", strideA), ("strideB", strideB), ("strideC", strideC)] where s < 0 {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(s) is negative")
        }
        try a.require((batch - 1) * strideA + (ar - 1) * lda + ac, op, "A")
        try b.require((batch - 1) * strideB + (br - 1) * ldb + bc, op, "B")
        try c.require(extentC, op, "C")
    }

    /// Elements of A's buffer the product reads from its offset on (a view laid out as A
    /// must hold as many).
    public var extentA: Int { (batch - 1) * strideA + ((transA ? k : m) - 1) * lda + (transA ? m : k) }
    /// Elements of C's buffer the product writes from its offset on.
    public var extentC: Int { (batch - 1) * strideC + (m - 1) * ldc + n }

    /// Checks the epilogue's views against the product: β = 0, a bias of n, a derivative
    /// laid out as C and only with an activation, a multiplier laid out as A.
    public func validate(_ e: GEMMEpilogue) throws {
        let op = "gemm epilogue"
        guard beta == 0 else {
            throw AttribError.invalidArgument(op: op, detail: "beta = \(beta); a fused epilogue overwrites C (beta must be 0)")
        }
        if e.derivative != nil, e.activation == nil {
            throw AttribError.invalidArgument(op: op, detail: "a derivative output needs an activation")
        }
        try e.bias?.require(n, op, "bias")
        try e.derivative?.require(extentC, op, "derivative")
        try e.multiplierA?.require(extentA, op, "multiplier of A")
    }
}
