@testable import AttribCore
@testable import AttribMethods
import Attrib
import AttribONNX
import Glibc
import Synchronization
import Testing

/// Thread tiles (CPUDevice.eachTile, IntegratedGradients.threadTiles): each thread takes a
/// share of a batch's inputs through the whole graph, with every loop and product inside
/// on that thread.
///
/// Tolerances, tiles against every op split over the threads: the same ops on the same rows,
/// except that each product runs over other blocks of rows (one tile's rows instead of half a
/// batch's), and OpenBLAS may round a row differently at a block's edge. A product of depth
/// K ≤ 256 then moves by at most about √K·u of its terms' size in practice, u = 2⁻²⁴ (Float32)
/// or 2⁻⁵³ (Float64); through the two to three products of these MLPs, summed over m
/// steps, 1e-5 of the largest attribution in Float32 and 1e-12 in Float64 hold that with
/// room, while an input run in the wrong tile, twice or not at all moves attributions by
/// their own size.
@Suite struct ThreadTileTests {
    static var threads: Int { CPUDevice.shared.info.blas?.threads ?? 1 }

    @Test("eachTile: results in order, a loop inside a tile runs on the tile's own thread, and a tile's error is rethrown")
    func eachTile() throws {
        let threadsSeen = Mutex<[Int: Set<UInt>]>([:])
        let squares = try CPUDevice.eachTile(5) { i -> Int in
            let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
            // A loop of many chunks, which outside a tile would spread over the workers (or,
            // with the pool busy, over Dispatch's threads): each chunk lasts a millisecond, so
            // that other threads take some.
            parallelChunks(1 << 20, grain: 1 << 10) { _ in
                usleep(1000)
                let t = UInt(bitPattern: Int(bitPattern: pthread_self()))
                threadsSeen.withLock { $0[i, default: []].insert(t) }
            }
            threadsSeen.withLock { $0[i, default: []].insert(me) }
            #expect(ParallelNesting.inside, "tile \(i): loops inside do not know they run in a tile")
            return i * i
        }
        #expect(squares == [0, 1, 4, 9, 16])
        #expect(!ParallelNesting.inside, "the flag outlived the tiles")
        threadsSeen.withLock { seen in
            for i in 0..<5 { #expect(seen[i]?.count == 1, "tile \(i)'s loop ran on \(seen[i]?.count ?? 0) threads") }
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) { _ = try CPUDevice.eachTile(4) { i -> Int in if i == 2 { throw Boom() }; return i } }
    }

    /// IG with thread tiles and without, on one model and a set of methods.
    func compare(_ model: any AttributionModel, inputs x: [Double], count n: Int, targets: [[Int]], dtype: DType, _ what: String,
                 density: PathDensity? = nil) throws {
        var ig = IntegratedGradients(rule: .gaussLegendre, steps: 16, density: density)
        #expect(ig.runsInThreadTiles(model, count: n) == (Self.threads > 1), "\(what): tiles \(Self.threads > 1 ? "not " : "")used")
        let tiled = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
        ig.threadTiles = false
        #expect(!ig.runsInThreadTiles(model, count: n))
        let split = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
        let scale = split.attributions.map(abs).max() ?? 0
        #expect(scale > 0)
        let tol = (dtype == .float32 ? 1e-5 : 1e-12) * scale
        expectClose(tiled.attributions, split.attributions, bound: { _ in tol }, what)
        expectClose(tiled.deltas ?? [], split.deltas ?? [], bound: { _ in tol * 64 }, what + " deltas")   // a sum over the 64 features
        #expect(tiled.shape == split.shape && tiled.completedInputs == n)
    }

    @Test("IG in thread tiles equals IG with every op split over the threads: an MLP (one and two targets, PS-IG) and a residual MLP whose input has a side reader")
    func integratedGradients() throws {
        let n = 9   // tiles of 5 and 4 inputs on 2 threads
        let x = randomValues(n * 64, seed: 11, 0, 1)
        for dtype in [DType.float32, .float64] {
            let mlp = try Sequential.load(fixturePath("unlike/tanh-mlp"), on: cpu, dtype: dtype)
            let one = (0..<n).map { [$0 % 10] }, two = (0..<n).map { [$0 % 10, ($0 + 3) % 10] }
            try compare(mlp, inputs: x, count: n, targets: one, dtype: dtype, "tanh-mlp \(dtype)")
            try compare(mlp, inputs: x, count: n, targets: two, dtype: dtype, "tanh-mlp, two targets, \(dtype)")
            try compare(mlp, inputs: x, count: n, targets: one, dtype: dtype, "tanh-mlp PS-IG \(dtype)", density: .beta(2, 5))
            let res = try ONNXModel.attributionModel(at: fixturePath("onnx/resmlp/model.onnx"), on: cpu, dtype: dtype)
            try compare(res, inputs: x, count: n, targets: one, dtype: dtype, "resmlp \(dtype)")
        }
    }

    @Test("The sampling methods' sweep (SmoothGrad, Expected Gradients, Gradient × Input) in thread tiles equals it with every op split: sums of multiplied gradients and of squares")
    func sampleSweep() throws {
        let (n, samples) = (7, 5)
        for dtype in [DType.float32, .float64] {
            let mlp = try Sequential.load(fixturePath("unlike/tanh-mlp"), on: cpu, dtype: dtype)
            let res = try ONNXModel.attributionModel(at: fixturePath("onnx/resmlp/model.onnx"), on: cpu, dtype: dtype)
            for (name, model) in [("tanh-mlp", mlp as any AttributionModel), ("resmlp", res)] {
                let points = randomValues(n * samples * 64, seed: 21, 0, 1), scales = randomValues(n * samples * 64, seed: 22)
                func rows(_ v: [Double]) -> (Chunk) throws -> [Double] { { c in Array(v[c.inputs.lowerBound * samples * 64..<c.inputs.upperBound * samples * 64]) } }
                var sweep = SampleSweep(model: model, n: n, samples: samples, targets: (0..<n).map { [$0 % 10, 9 - $0 % 10] },
                                        plan: ChunkPlan.make(for: model), control: SweepControl(), points: rows(points),
                                        multipliers: rows(scales), weights: randomValues(samples, seed: 23, 0, 1), squares: true)
                #expect(threadTiles(chunks(n: n, m: samples, rows: sweep.plan.rows)[0], steps: samples, on: cpu).count == min(Self.threads, n))
                let tiled = try sweep.run()
                sweep.threadTiles = false
                let split = try sweep.run()
                #expect(tiled.completed == n && split.completed == n)
                for t in 0..<2 {
                    for (a, b, what) in [(tiled.sums[t], split.sums[t], "sums"), (tiled.squareSums![t], split.squareSums![t], "squares")] {
                        let want = try b.doubles(), scale = want.map(abs).max() ?? 0
                        #expect(scale > 0)
                        expectClose(try a.doubles(), want, bound: { _ in (dtype == .float32 ? 1e-5 : 1e-12) * scale }, "\(name) \(dtype) target \(t) \(what)")
                    }
                }
            }
        }
    }

    @Test("Thread tiles apply on the CPU backend's graph path only: not on OpenCL, not with one input a batch")
    func whereTilesApply() throws {
        let mlp = try Sequential.load(fixturePath("unlike/tanh-mlp"), on: cpu)
        let ig = IntegratedGradients(rule: .gaussLegendre, steps: 16)
        #expect(!ig.runsInThreadTiles(mlp, count: 1), "one input: nothing to share out")
        var capped = ig
        capped.batchCap = 18   // one input's 16 steps and its two ends a batch
        #expect(!capped.runsInThreadTiles(mlp, count: 8))
        for device in openCLDevices {
            #expect(!ig.runsInThreadTiles(try Sequential.load(fixturePath("unlike/tanh-mlp"), on: device), count: 8), "\(device.info.id)")
        }
    }
}
