import AttribCore
import AttribModels

/// The engine under the sampling methods (Saliency, SmoothGrad, Expected
/// Gradients, GradientSHAP, stochastic PS-IG): n inputs × s samples, row
/// i·s + k holding a host-built point; gradients toward each target, reduced on
/// the device to Σₖ cₖ·(mᵢₖ ⊙ gᵢₖ) per input (m an optional per-row multiplier)
/// and, when asked, Σₖ cₖ·gᵢₖ².
struct SampleSweep {
    var model: any AttributionModel
    var n: Int
    var samples: Int
    var targets: [[Int]]
    var plan: ChunkPlan
    var control: SweepControl
    /// The rows of a chunk, [chunk.rows] × input size, input-major.
    var points: (Chunk) throws -> [Double]
    /// Per-row multipliers of the gradient (same layout), or nil for plain gradients.
    var multipliers: ((Chunk) throws -> [Double])? = nil
    /// cₖ per sample.
    var weights: [Double]
    var squares = false
    /// Run batches in thread tiles where they apply (`threadTiles`); off, every op is split
    /// over the threads. The same sums to rounding.
    var threadTiles = threadTilesByDefault
    /// Take the graph's Linear head as its weight rows (`Graph.linearHead`, as IG does): the
    /// forward stops at its input, where the upstream gradient is the targets' rows. Bitwise the
    /// same gradients; off, the head runs forward and back.
    var gatherHead = headRowsByDefault

    struct Output {
        var sums: [Tensor]            // per target, [n] + input shape
        var squareSums: [Tensor]?
        var completed: Int
        var rows: Int
        var interrupted: Bool
    }

    func run() throws -> Output {
        let device = model.device, dtype = model.dtype, classes = model.outputShape.reduce(1, *)
        let tCount = targets[0].count
        let sums = try (0..<tCount).map { _ in try Tensor.zeros([n] + model.inputShape, dtype: dtype, on: device) }
        let sq = squares ? try (0..<tCount).map { _ in try Tensor.zeros([n] + model.inputShape, dtype: dtype, on: device) } : nil
        let weightT = try Tensor(weights, shape: [samples], dtype: dtype, on: device)
        var completed = 0, rows = 0, interrupted = false
        let exec = model.sweepExecutor, outputName = exec.graph.outputs[0]
        let inputName = model.inputName
        let head = gatherHead ? exec.graph.linearHead(fed: [inputName]) : nil
        /// One batch, its sums added into the rows of its inputs.
        func batch(_ c: Chunk) throws {
            let x = try Tensor(try points(c), shape: [c.rows] + model.inputShape, dtype: dtype, on: device)
            let mult = try multipliers.map { try Tensor(try $0(c), shape: [c.rows] + model.inputShape, dtype: dtype, on: device) }
            let run = try exec.forward([inputName: x], outputs: head.map { [$0.input] }, gradientsFor: [inputName])
            for t in 0..<tCount {
                let g: Tensor
                if let head {
                    // Each row's target's weight row, [rows, in], at the head's input.
                    let index = c.inputs.flatMap { i in [Int32](repeating: Int32(targets[i][t]), count: c.steps.count) }
                    let up = try head.linear.weight.gatherRows(IndexTensor(index, on: device))
                    g = try exec.backward(run, upstream: [head.input: up], wrt: [inputName])[inputName]!
                } else {
                    let output = run[outputName]!
                    let upstream = try oneHotUpstream(targets, target: t, inputs: c.inputs, perInput: c.steps.count, classes: classes, dtype: dtype, device: device)
                    g = try exec.backward(run, upstream: [outputName: upstream.reshaped(output.shape)], wrt: [inputName])[inputName]!
                }
                let w = try weightT.rows(c.steps)
                try sums[t].rows(c.inputs).axpy(1, (mult.map { try $0.multiplying(g) } ?? g).pathWeightedSum(weights: w))
                if let sq { try sq[t].rows(c.inputs).axpy(1, g.multiplying(g).pathWeightedSum(weights: w)) }
            }
        }
        for c in chunks(n: n, m: samples, rows: plan.rows) {
            if control.shouldStop() { interrupted = true; break }
            let tiles = self.threadTiles ? AttribMethods.threadTiles(c, steps: samples, on: device) : [c]
            if tiles.count > 1 { _ = try CPUDevice.eachTile(tiles.count) { try batch(tiles[$0]) } } else { try batch(c) }
            rows += c.rows
            if c.completesInputs { completed = c.inputs.upperBound }
            control.progress(rows, n * samples)
        }
        return Output(sums: sums, squareSums: sq, completed: completed, rows: rows, interrupted: interrupted)
    }
}
