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
    /// The widest kernel the packed products have on this CPU: 16 lanes (AVX-512), 8 (AVX2 and
    /// FMA), 0 (none).
    public static let packedKernelLanes = Int(attrib_sgemm_packed_lanes())

    /// Rows up to which a product runs on a packed operand rather than through OpenBLAS, which
    /// packs B on every call, for the kernel of `lanes` lanes. Measured on the 2-core VM
    /// (Emerald Rapids, OpenBLAS's SkylakeX kernels), one thread, B out of cache:
    /// - AVX-512 (16 lanes): 1.41× OpenBLAS at 16 rows of 768 × 3072, 1.24× at 66 of 768 × 768,
    ///   1.14× at 197 of 768 × 3072 (a ViT-B/16 image), 1.03× at 394, 0.98× at 591. With B in
    ///   cache (GEMMBench, 2 threads): 1.05–1.13× at 128–197 rows, 0.985× at 256 of 784 × 1024,
    ///   0.95× at 512 of 512 × 512. So 256: at 384 rows the gain was within noise, and it cost
    ///   memory, the backward's packed copy of every weight (BERT-base layer IG, 3 rows of 128
    ///   tokens a batch: 5.12 input·steps/s and 1.86 GiB peak with it, 5.45 and 1.51 GiB before).
    /// - AVX2 (8 lanes), 2 threads against OpenBLAS's AVX2 kernels, 4096 × 4096: 1.55× at 6
    ///   rows, 1.27× at 30, 1.19× at 66, 1.03× at 128: 128.
    public static func smallRowsLimit(lanes: Int) -> Int { lanes >= 16 ? 256 : 128 }

    /// `smallRowsLimit(lanes:)` of this CPU's widest kernel.
    public static var smallRowsLimit: Int { smallRowsLimit(lanes: packedKernelLanes) }

    /// Whether layers should run their products on packed operands (Linear does where this
    /// holds). Where the CPU has AVX-512 the 16-lane kernel runs, and it beats OpenBLAS's
    /// AVX-512 kernels up to `smallRowsLimit` rows (above). The 8-lane kernel beats OpenBLAS's
    /// AVX2 kernels, but not its AVX-512 ones (AtP on a GPT-2-small shape, T = 64, took 272 ms a
    /// pair with it and 244 ms without), so on a CPU with AVX2 alone it is preferred unless
    /// OpenBLAS runs AVX-512 kernels. ATTRIB_SMALL_ROWS=0 or 1 overrides the rule (for A/B runs).
    public static let smallRowsPreferred: Bool = {
        if let v = getenv("ATTRIB_SMALL_ROWS") { return String(cString: v) != "0" }
        return packedKernelLanes >= 16 || !HostSIMD.avx512BLASCores.contains(OpenBLASCore.name.lowercased())
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

    /// y [m, n] = x [m, k] · B (+ bias [n] on every row) for a packed B, its column panels
    /// shared among the worker threads, by the kernel of `lanes` lanes (this CPU's widest by
    /// default); false, with nothing written, where it does not run (m above `smallRowsLimit`
    /// for those lanes, a kernel this CPU lacks, another dtype).
    public func gemmSmallRows(m: Int, x: BufferView, _ b: SmallRowsOperand, y: BufferView, bias: BufferView? = nil,
                              lanes: Int = CPUDevice.packedKernelLanes) throws -> Bool {
        let op = "gemmSmallRows"
        guard m >= 1, m <= Self.smallRowsLimit(lanes: lanes), lanes == 8 || lanes == 16, lanes <= Self.packedKernelLanes,
              try buffer(y, op).dtype == .float32 else { return false }
        let xp = try pointer(Float.self, x, op, m * b.k), yp = try pointer(Float.self, y, op, m * b.n)
        let bp = try bias.map { try pointer(Float.self, $0, op, b.n) }
        let packed = UnsafePointer(b.floats)
        let failed = Atomic<Bool>(false)
        // Column blocks per worker, edges on multiples of 16: whole panels of the packed B.
        let columns = { (r: Range<Int>) in
            if attrib_sgemm_small_rows_f32(xp, b.k, m, b.k, packed, b.n, r.lowerBound / 16, r.upperBound / 16, yp, b.n,
                                           bp.map { UnsafePointer($0) }, Int32(lanes)) == 0 {
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
