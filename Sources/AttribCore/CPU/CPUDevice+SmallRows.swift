#if canImport(Glibc)
import Glibc
#endif
import CVecMath
import Synchronization

/// A Float32 operand B [k, n] packed once for products with few rows (CVecMath/smallrows_gemm.c).
public final class SmallRowsOperand: @unchecked Sendable {
    public let k: Int, n: Int
    let data: UnsafeMutableRawPointer
    init(k: Int, n: Int, data: UnsafeMutableRawPointer) { self.k = k; self.n = n; self.data = data }
    deinit { data.deallocate() }
    var floats: UnsafeMutablePointer<Float> { data.assumingMemoryBound(to: Float.self) }
}

extension CPUDevice {
    /// Rows up to which a product runs on a packed operand rather than through OpenBLAS,
    /// which packs B on every call: measured on 4096 × 4096 (2 threads, median of 16 paired
    /// rounds), 1.55× OpenBLAS at 6 rows, 1.27× at 30, 1.19× at 66, 1.03× at 128.
    public static var smallRowsLimit: Int { 128 }

    /// Whether layers should run their few-row products on packed operands (Linear does where
    /// this holds). The kernel is AVX2 (8 lanes): it beat OpenBLAS's AVX2 kernels above, but
    /// where OpenBLAS runs AVX-512 kernels (SkylakeX, Cooperlake, SapphireRapids) their 16
    /// lanes win, so there it is not preferred: AtP on a GPT-2-small shape (T = 64, 3 pairs,
    /// Emerald Rapids VM, SkylakeX kernels) took 272 ms a pair with it and 244 ms without.
    /// ATTRIB_SMALL_ROWS=0 or 1 overrides the rule (for A/B runs). The kernel itself still runs
    /// wherever AVX2 and FMA are present (packForSmallRows, gemmSmallRows).
    public static let smallRowsPreferred: Bool = {
        if let v = getenv("ATTRIB_SMALL_ROWS") { return String(cString: v) != "0" }
        return !HostSIMD.avx512BLASCores.contains(OpenBLASCore.name.lowercased())
    }()

    /// b [k, n] (Float32, row-major) packed for `gemmSmallRows`, or nil where that does not
    /// run (another dtype, n not a multiple of 16, no AVX2 and FMA). Costs one pass over b.
    public func packForSmallRows(_ b: BufferView, k: Int, n: Int) throws -> SmallRowsOperand? {
        let blocks = Int(attrib_sgemm_small_rows_k_blocks(k))
        return try packed(b, k: k, n: n, "packForSmallRows") { bp, packed in
            parallelChunks(blocks, grain: 1) { r in attrib_sgemm_small_rows_pack_f32(bp, n, k, n, r.lowerBound, r.upperBound, packed) }
        }
    }

    /// B = Wᵀ [k, n] packed for `gemmSmallRows` straight from W [n, k] (Float32, row-major),
    /// the same form `packForSmallRows` makes of a stored Wᵀ; nil where that does not run.
    /// Costs one pass over W, as a plain transpose does.
    public func packTransposedForSmallRows(_ w: BufferView, k: Int, n: Int) throws -> SmallRowsOperand? {
        try packed(w, k: k, n: n, "packTransposedForSmallRows") { wp, packed in
            parallelChunks(n / 16, grain: 4) { r in attrib_sgemm_small_rows_pack_transposed_f32(wp, k, k, n, r.lowerBound, r.upperBound, packed) }
        }
    }

    /// A new packed operand of k × n floats filled by `fill(source, packed)`, or nil where the
    /// packed product does not run (another dtype, n not a multiple of 16, no AVX2 and FMA).
    private func packed(_ source: BufferView, k: Int, n: Int, _ op: String,
                        fill: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) throws -> SmallRowsOperand? {
        guard try buffer(source, op).dtype == .float32, k > 0, n > 0 else { return nil }
        let count = Int(attrib_sgemm_small_rows_packed_count(k, n))                       // 0: no AVX2 and FMA, or n not 16·j
        guard count > 0 else { return nil }
        let sp = try pointer(Float.self, source, op, k * n)
        let data = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.size, alignment: 64)
        fill(sp, data.assumingMemoryBound(to: Float.self))
        return SmallRowsOperand(k: k, n: n, data: data)
    }

    /// y [m, n] = x [m, k] · B for a packed B, its column panels shared among the worker
    /// threads; false, with nothing written, where it does not run (m above
    /// `smallRowsLimit`, another dtype).
    public func gemmSmallRows(m: Int, x: BufferView, _ b: SmallRowsOperand, y: BufferView) throws -> Bool {
        let op = "gemmSmallRows"
        guard m >= 1, m <= Self.smallRowsLimit, try buffer(y, op).dtype == .float32 else { return false }
        let xp = try pointer(Float.self, x, op, m * b.k), yp = try pointer(Float.self, y, op, m * b.n)
        let packed = UnsafePointer(b.floats)
        let failed = Atomic<Bool>(false)
        // Column blocks per worker, edges on multiples of 16: whole panels of the packed B.
        let columns = { (r: Range<Int>) in
            if attrib_sgemm_small_rows_f32(xp, b.k, m, b.k, packed, b.n, r.lowerBound / 16, r.upperBound / 16, yp, b.n) == 0 {
                failed.store(true, ordering: .relaxed)
            }
        }
        if !CPUKernels<Float>.inBlocks(b.n, workers: Self.threadCount, columns) { columns(0..<b.n) }
        if failed.load(ordering: .relaxed) {
            throw AttribError.invalidArgument(op: op, detail: "\(info.id) could not run \(m) × \(b.k) × \(b.n) on a packed operand (no memory for the packed rows)")
        }
        return true
    }
}
