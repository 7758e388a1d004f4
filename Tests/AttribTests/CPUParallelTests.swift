@testable import AttribCore
import Dispatch
import Synchronization
import Testing

/// The CPU backend's own machinery: the spinning worker pool behind every
/// parallel loop, the GEMM split over it, and the buffer pool.
@Suite struct CPUParallelTests {
    /// Counts how often each index of 0..<n was visited.
    final class Visits: @unchecked Sendable {
        let counts: UnsafeMutablePointer<Int>
        let n: Int
        init(_ n: Int) { self.n = n; counts = .allocate(capacity: max(n, 1)); counts.initialize(repeating: 0, count: max(n, 1)) }
        deinit { counts.deallocate() }
        var allOnce: Bool { (0..<n).allSatisfy { counts[$0] == 1 } }
    }

    @Test("parallelChunks visits every index exactly once, over hundreds of jobs of every size")
    func everyIndexOnce() {
        var rng = SplitMix64(seed: 7)
        for job in 0..<500 {
            let n = job < 50 ? job : 1 + Int(rng.next() % 50_000)
            let v = Visits(n)
            // Chunks write disjoint ranges, so the plain increments do not race.
            parallelChunks(n, grain: 1 + Int(rng.next() % 4096)) { r in for i in r { v.counts[i] += 1 } }
            #expect(v.allOnce, "job \(job), n = \(n)")
            if !v.allOnce { return }
        }
    }

    @Test("nested loops and loops from several threads at once finish, each index once (the pool hands them to Dispatch)")
    func nestedAndConcurrent() {
        let outer = 16, inner = 20_000
        let v = Visits(outer * inner)
        parallelChunks(outer, grain: 1) { r in
            for o in r { parallelChunks(inner, grain: 1024) { ir in for i in ir { v.counts[o * inner + i] += 1 } } }
        }
        #expect(v.allOnce)
        let failures = Atomic<Int>(0), jobs = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<20 {
                let local = Visits(inner)
                parallelChunks(inner, grain: 512) { r in for i in r { local.counts[i] += 1 } }
                if !local.allOnce { failures.add(1, ordering: .relaxed) }
                jobs.add(1, ordering: .relaxed)
            }
        }
        #expect(jobs.load(ordering: .relaxed) == 160)
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    @Test("a GEMM split into blocks over the workers equals the same GEMM in one call, every transpose and both split axes",
          arguments: [(3, 700, 129), (700, 5, 64), (257, 259, 33), (64, 64, 1)])
    func gemmSplit(_ shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomValues(m * k, seed: 11), b = randomValues(k * n, seed: 12), c0 = randomValues(m * n, seed: 13)
            func run(workers: Int) throws -> [Double] {
                let at = try Tensor(a, shape: [m * k], on: cpu), bt = try Tensor(b, shape: [k * n], on: cpu)
                let ct = try Tensor(c0, shape: [m * n], on: cpu)
                let g = GEMMArguments(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.75, a: at.storage, lda: tA ? m : k,
                                      b: bt.storage, ldb: tB ? k : n, beta: 0.5, c: ct.storage, ldc: n)
                let p = { (t: Tensor) in (t.storage.buffer as! CPUBuffer).typed(Double.self, 0) }
                CPUKernels<Double>.split(g, p(at), p(bt), p(ct), workers: workers)
                return try ct.doubles()
            }
            let whole = try run(workers: 1)
            for workers in [2, 3, 5] {
                // Each element is the same dot product in both runs; OpenBLAS may block K differently
                // per call size, so allow the dot's rounding: 2·k·u·(|α|Σ|ab| + |β c|) ≤ 2·k·u·(k + 1).
                expectClose(try run(workers: workers), whole, bound: { _ in 2 * Double(k + 1) * Double(k) * 0x1p-53 },
                            "m \(m) n \(n) k \(k) tA \(tA) tB \(tB), \(workers) blocks")
            }
        }
    }

    @Test("buffer pool: a freed block is reused for the same size; past its capacity the least recently used sizes are freed, only as many blocks as needed")
    func bufferPool() {
        let pool = CPUBufferPool(capacity: 1 << 20)
        let a = pool.take(4096)
        pool.give(a, 4096)
        #expect(pool.cachedBytes == 4096)
        let b = pool.take(4096)
        #expect(a == b, "same-size block reused")
        #expect(pool.cachedBytes == 0)
        let quarter = 1 << 18
        let q = (0..<3).map { _ in pool.take(quarter) }
        let half = pool.take(2 * quarter)
        for p in q { pool.give(p, quarter) }                     // 3/4 MiB cached, the quarters last used
        pool.give(half, 2 * quarter)                             // a quarter over capacity: the half is newest, so one quarter goes
        #expect(pool.cachedBytes == 2 * quarter + 2 * quarter)
        #expect(pool.take(2 * quarter) == half, "the block just given back is kept")
        #expect(pool.cachedBytes == 2 * quarter)
        pool.give(half, 2 * quarter)
        let huge = pool.take(2 << 20)                            // larger than the capacity: evicts nothing, freed when given back
        pool.give(huge, 2 << 20)
        #expect(pool.cachedBytes == 4 * quarter)
        // A miss that would pass the capacity frees the least recently used size first (the
        // quarter: the half was taken since), and no more than it needs.
        let other = pool.take(2 * quarter - 4096)
        #expect(pool.cachedBytes == 2 * quarter)
        pool.give(other, 2 * quarter - 4096); pool.give(b, 4096)
        #expect(pool.cachedBytes == 4 * quarter)
        #expect(pool.take(2 * quarter) == half, "the half survived both")
        pool.trim()
        #expect(pool.cachedBytes == 0)
    }

    @Test("A warning when OpenBLAS picked kernels older than the CPU, naming the OPENBLAS_CORETYPE that fits")
    func blasCoreWarning() throws {
        let avx2: Set<String> = ["sse2", "avx", "avx2", "fma"], avx512 = avx2.union(["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"])
        // The GPU host seen here: OpenBLAS 0.3.21 did not know its Xeon and chose Prescott.
        let w = try #require(HostSIMD.blasCoreWarning(core: "Prescott", flags: avx512))
        #expect(w.contains("Prescott") && w.contains("OPENBLAS_CORETYPE=SkylakeX"))
        #expect(HostSIMD.blasCoreWarning(core: "Core2", flags: avx2)?.contains("OPENBLAS_CORETYPE=Haswell") == true)
        #expect(HostSIMD.blasCoreWarning(core: "Haswell", flags: avx2) == nil)
        #expect(HostSIMD.blasCoreWarning(core: "Zen", flags: avx2) == nil)
        #expect(HostSIMD.blasCoreWarning(core: "SkylakeX", flags: avx512) == nil)
        #expect(HostSIMD.blasCoreWarning(core: "Prescott", flags: ["sse2"]) == nil, "an old CPU gets old kernels: no warning")
        // SkylakeX's kernels need the AVX-512 subsets they use: AVX-512F alone gets Haswell's.
        #expect(HostSIMD.fittingBLASCore(core: "Prescott", flags: avx2.union(["avx512f"])) == "Haswell")
        #expect(HostSIMD.fittingBLASCore(core: "Prescott", flags: avx512) == "SkylakeX")
        #expect(HostSIMD.fittingBLASCore(core: "Cooperlake", flags: avx512) == nil)
    }

    /// Where OpenBLAS picks kernels older than the CPU (Debian 12's 0.3.21 on the Xeons seen
    /// here: Prescott's SSE3 kernels, ~4.6× slower products), the CLI restarts itself with
    /// OPENBLAS_CORETYPE set; on a CPU the library knows it changes nothing. Either way `attrib
    /// devices` then shows no BLAS warning. ATTRIB_KEEP_BLAS_CORE=1 keeps the library's choice.
    @Test("the CLI runs OpenBLAS kernels that fit the CPU, restarting itself with OPENBLAS_CORETYPE where the library chose older ones")
    func cliBLASKernels() throws {
        let clean = ["OPENBLAS_CORETYPE", "ATTRIB_KEEP_BLAS_CORE", "ATTRIB_BLAS_CORE_DETECTED"]
        let r = try runAttrib(["devices"], unsetting: clean)
        #expect(r.status == 0, "\(r.stderr)")
        let kernels = try #require(r.stdout.split(separator: "\n").first { $0.contains("BLAS kernels") }, "\(r.stdout)")
        #expect(!r.stdout.contains("BLAS warning"), "\(r.stdout)")
        let kept = try runAttrib(["devices"], environment: ["ATTRIB_KEEP_BLAS_CORE": "1"], unsetting: Array(clean.dropFirst(2)) + ["OPENBLAS_CORETYPE"])
        let keptLine = try #require(kept.stdout.split(separator: "\n").first { $0.contains("BLAS kernels") })
        #expect(!keptLine.contains("set by attrib"))
        // The library's own choice differs from the one in use exactly when attrib set it.
        #expect(kernels.contains("set by attrib") == (kept.stdout.contains("BLAS warning")), "\(kernels) / \(keptLine)")
    }
}
