import Attrib
import Foundation
import Testing

/// The graph executor: a Sequential model run as a graph gives its numbers bit for bit
/// (the layers are the ops), gradients of a residual graph against finite differences,
/// the hooks (capture, replace, stop-gradient) against what they mean, and every kind of
/// bad graph an error naming the node.
@Suite struct GraphTests {
    static func weights(_ shape: [Int], seed: UInt64, on device: any Device = cpu, dtype: DType = .float64) throws -> Tensor {
        try Tensor(randomValues(shape.reduce(1, *), seed: seed), shape: shape, dtype: dtype, on: device)
    }

    /// x → Linear → Tanh → Linear → (+ x) → Linear: a residual MLP, the kind of graph a
    /// chain cannot express. Values: "x", "h1", "a1", "h2", "r", "y".
    static func residualMLP(on device: any Device = cpu, dtype: DType = .float64) throws -> Graph {
        let d = 6
        let l1 = try Linear(weight: weights([8, d], seed: 1, on: device, dtype: dtype), bias: weights([8], seed: 2, on: device, dtype: dtype))
        let l2 = try Linear(weight: weights([d, 8], seed: 3, on: device, dtype: dtype), bias: nil)
        let l3 = try Linear(weight: weights([3, d], seed: 4, on: device, dtype: dtype), bias: weights([3], seed: 5, on: device, dtype: dtype))
        return try Graph(inputs: [("x", ValueType([d], dtype))], nodes: [
            GraphNode("fc1", LayerOp(l1), inputs: ["x"], output: "h1"),
            GraphNode("act", LayerOp(ActivationLayer(.tanh)), inputs: ["h1"], output: "a1"),
            GraphNode("fc2", LayerOp(l2), inputs: ["a1"], output: "h2"),
            GraphNode("skip", BinaryGraphOp(.add), inputs: ["h2", "x"], output: "r"),
            GraphNode("head", LayerOp(l3), inputs: ["r"], output: "y"),
        ], outputs: ["y"])
    }

    @Test("a Sequential model as a graph: outputs and input gradients bitwise the layers' own, on every device",
          arguments: ["digits-mlp", "digits-cnn"])
    func sequentialBitwise(_ name: String) throws {
        for device in [cpu as any Device] + openCLDevices.map({ $0 as any Device }) {
            let model = try Sequential.load(fixturePath("../../Models/" + name), on: device)
            let x = try NPY.tensor(fixturePath("../../Models/digits-data/test_inputs.npy"), on: device).rows(0..<5)
            let xs = try model.checkInput(x)
            // The layers' unfused path: a trace keeping activations, a backward with a visitor.
            let trace = try model.trace(xs)
            let dy = try Tensor(randomValues(trace.output.count, seed: 3), shape: trace.output.shape, dtype: .float32, on: device)
            let want = try model.backward(trace, upstream: dy) { _, _ in }

            let exec = GraphExecutor(try model.graph())
            let out = exec.graph.outputs[0]
            let run = try exec.forward(["input": xs], gradientsFor: ["input"])
            try expectBitwise(run[out]!, trace.output, "\(name) outputs on \(device.info.id)")
            let g = try exec.backward(run, upstream: [out: dy], wrt: ["input"])
            try expectBitwise(g["input"]!, want, "\(name) input gradient on \(device.info.id)")
        }
    }

    @Test("activation → tiling average pooling fused as a graph rewrite: bitwise the unfused graph and Sequential's fused trace, on every device")
    func activationPoolFusion() throws {
        for device in [cpu as any Device] + openCLDevices.map({ $0 as any Device }) {
            let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: device)
            let x = try model.checkInput(NPY.tensor(fixturePath("../../Models/digits-data/test_inputs.npy"), on: device).rows(0..<6))
            let plain = GraphExecutor(try model.graph()), fused = model.sweepExecutor
            // GELU → AvgPool2d twice: two nodes fewer, named after the pools.
            #expect(fused.graph.nodes.count == plain.graph.nodes.count - 2)
            #expect(fused.graph.nodes.filter { $0.op is ActivationAvgPoolGraphOp }.map(\.name) == ["2", "5"])
            let out = plain.graph.outputs[0]
            let (rp, rf) = (try plain.forward(["input": x], gradientsFor: ["input"]), try fused.forward(["input": x], gradientsFor: ["input"]))
            try expectBitwise(rf[out]!, rp[out]!, "fused outputs on \(device.info.id)")
            let dy = try Tensor(randomValues(rp[out]!.count, seed: 5), shape: rp[out]!.shape, dtype: .float32, on: device)
            let gp = try plain.backward(rp, upstream: [out: dy], wrt: ["input"])["input"]!
            let gf = try fused.backward(rf, upstream: [out: dy], wrt: ["input"])["input"]!
            try expectBitwise(gf, gp, "fused input gradient on \(device.info.id)")
            // Sequential's own fused path (keepActivations: false, no visitor).
            let t = try model.trace(x, keepActivations: false)
            try expectBitwise(gf, try model.backward(t, upstream: dy), "fused graph against Sequential's fused trace on \(device.info.id)")
        }
        // A hooked activation is not fused away.
        let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu)
        #expect(try model.graph().fusingActivationPools(keeping: ["1"]).nodes.count == model.layers.count - 1)
    }

    @Test("residual graph: gradients at the input and at an inner value against central finite differences (Float64)")
    func residualFiniteDifferences() throws {
        let exec = GraphExecutor(try Self.residualMLP())
        let n = 2, d = 6
        let x = randomValues(n * d, seed: 7)
        let dy = randomValues(n * 3, seed: 8)
        let run = try exec.forward(["x": Tensor(x, shape: [n, d], on: cpu)], gradientsFor: ["x", "a1"])
        let g = try exec.backward(run, upstream: ["y": Tensor(dy, shape: [n, 3], on: cpu)], wrt: ["x", "a1"])
        // L = Σ dy ⊙ y. h = 1e-6: truncation h²·|L‴|/6 and rounding u·|L|/h both below 1e-9
        // for values of order 1, so 1e-7·(1 + |g|) separates a right gradient from a wrong one.
        func loss(_ feeds: [String: Tensor], replace: [String: Tensor] = [:]) throws -> Double {
            let y = try exec.forward(feeds, hooks: .init(replace: replace))["y"]!.doubles()
            return zip(y, dy).reduce(0) { $0 + $1.0 * $1.1 }
        }
        let h = 1e-6
        var fdX: [Double] = []
        for i in x.indices {
            var p = x, m = x
            p[i] += h; m[i] -= h
            fdX.append((try loss(["x": Tensor(p, shape: [n, d], on: cpu)]) - loss(["x": Tensor(m, shape: [n, d], on: cpu)])) / (2 * h))
        }
        let gx = try g["x"]!.doubles()
        expectClose(gx, fdX, bound: { 1e-7 * (1 + abs(fdX[$0])) }, "∂L/∂x")
        // The inner value a1 through replacement: perturb a1 itself.
        let a1 = try exec.forward(["x": Tensor(x, shape: [n, d], on: cpu)], hooks: .init(capture: ["a1"]))["a1"]!.doubles()
        var fdA: [Double] = []
        for i in a1.indices {
            var p = a1, m = a1
            p[i] += h; m[i] -= h
            let feeds = ["x": try Tensor(x, shape: [n, d], on: cpu)]
            fdA.append((try loss(feeds, replace: ["a1": Tensor(p, shape: [n, 8], on: cpu)])
                        - loss(feeds, replace: ["a1": Tensor(m, shape: [n, 8], on: cpu)])) / (2 * h))
        }
        expectClose(try g["a1"]!.doubles(), fdA, bound: { 1e-7 * (1 + abs(fdA[$0])) }, "∂L/∂a1")
    }

    @Test("hooks: capture, replace (patching) and stop-gradient (GradDrop) do what they mean")
    func hooks() throws {
        let exec = GraphExecutor(try Self.residualMLP())
        let n = 3, d = 6
        let clean = try Tensor(randomValues(n * d, seed: 21), shape: [n, d], on: cpu)
        let corrupt = try Tensor(randomValues(n * d, seed: 22), shape: [n, d], on: cpu)
        // Capture: a1 equals tanh(fc1(x)) computed by hand from the captured h1.
        let cap = try exec.forward(["x": clean], hooks: .init(capture: ["h1", "a1"]))
        // The CPU backend's tanh and libm's agree to a few ulp; |a1| < 1, so 1e-15 is about 9 ulp.
        expectClose(try cap["a1"]!.doubles(), try cap["h1"]!.doubles().map { tanh($0) }, bound: { _ in 1e-15 }, "a1 = tanh(h1)")
        // Replace r (everything the head reads) with the corrupt run's r: the output is the corrupt output.
        let cr = try exec.forward(["x": corrupt], hooks: .init(capture: ["r"]))
        let patched = try exec.forward(["x": clean], hooks: .init(replace: ["r": cr["r"]!]))
        expectEqual(try patched["y"]!.doubles(), try cr["y"]!.doubles(), "patched r gives the corrupt output")
        // …and no gradient reaches x through a replaced value.
        let pr = try exec.forward(["x": clean], hooks: .init(replace: ["r": cr["r"]!]), gradientsFor: ["x"])
        let up = try Tensor(randomValues(n * 3, seed: 23), shape: [n, 3], on: cpu)
        #expect(try exec.backward(pr, upstream: ["y": up], wrt: ["x"])["x"]!.doubles().allSatisfy { $0 == 0 })
        // Stop-gradient at h2 (the MLP branch): only the skip path is left, so ∂L/∂x = ∂L/∂r,
        // which the unstopped backward also returns.
        let run = try exec.forward(["x": clean], gradientsFor: ["x", "r"])
        let full = try exec.backward(run, upstream: ["y": up], wrt: ["x", "r"])
        let stopped = try exec.backward(run, upstream: ["y": up], wrt: ["x", "r"], stopGradient: ["h2"])
        expectEqual(try stopped["x"]!.doubles(), try full["r"]!.doubles(), "∂L/∂x with the branch stopped = ∂L/∂r")
        let fx = try full["x"]!.doubles(), sx = try stopped["x"]!.doubles()
        #expect(zip(fx, sx).contains { $0 != $1 }, "the branch carries gradient when not stopped")
        // The gradient at a stopped value is zero; values after it are untouched.
        let atStop = try exec.backward(run, upstream: ["y": up], wrt: ["r"], stopGradient: ["r"])
        #expect(try atStop["r"]!.doubles().allSatisfy { $0 == 0 })
        expectEqual(try stopped["r"]!.doubles(), try full["r"]!.doubles(), "∂L/∂r is not changed by a stop before it")
    }

    @Test("running from a cut: feeding an inner value runs only what lies after it, and equals replacing it")
    func cut() throws {
        let exec = GraphExecutor(try Self.residualMLP())
        let x = try Tensor(randomValues(12, seed: 31), shape: [2, 6], on: cpu)
        let a1 = try Tensor(randomValues(16, seed: 32), shape: [2, 8], on: cpu)
        let up = try Tensor(randomValues(6, seed: 33), shape: [2, 3], on: cpu)
        // The skip reads x, so x and a1 together make a cut; fc1 and act do not run.
        let fromCut = try exec.forward(["x": x, "a1": a1], gradientsFor: ["a1"])
        let replaced = try exec.forward(["x": x], hooks: .init(replace: ["a1": a1]), gradientsFor: ["a1"])
        expectEqual(try fromCut["y"]!.doubles(), try replaced["y"]!.doubles(), "outputs from the cut")
        expectEqual(try exec.backward(fromCut, upstream: ["y": up], wrt: ["a1"])["a1"]!.doubles(),
                    try exec.backward(replaced, upstream: ["y": up], wrt: ["a1"])["a1"]!.doubles(), "∂L/∂a1 from the cut")
        // Without x the skip cannot run: the error names the missing input.
        #expect(throws: AttribError.invalidArgument(op: "Graph.forward", detail: "graph input \"x\" ([6] float64) is not fed")) {
            try exec.forward(["a1": a1])
        }
        // Asking for an inner value runs only the nodes before it.
        let h1 = try exec.forward(["x": x], outputs: ["h1"])
        #expect(Set(h1.values.keys) == ["h1"] && h1["h1"]!.shape == [2, 8])
    }

    @Test("The CPU's default budget: 1 GiB, or two rows per thread where a row is larger than 1 GiB / (2 · threads) and twice that is available")
    func cpuDefaultBudget() {
        let gib = 1 << 30
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 5200, threads: 2, available: 16 * gib) == gib, "a small row: 1 GiB")
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: gib / 4, threads: 2, available: 16 * gib) == gib, "two rows per thread fit 1 GiB")
        // ViT-B/16's estimated row, 593 MB: two rows per thread.
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 593_075_264, threads: 2, available: 16 * gib) == 4 * 593_075_264)
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 593_075_264, threads: 8, available: 32 * gib) == 16 * 593_075_264)
        // Not where the host lacks twice that, nor where its memory is unknown.
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 593_075_264, threads: 8, available: 16 * gib) == gib)
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 593_075_264, threads: 2, available: nil) == gib)
        // One thread: two rows of 3 GiB.
        #expect(ChunkPlan.cpuDefaultBudget(bytesPerRow: 3 * gib, threads: 1, available: 16 * gib) == 6 * gib)
    }

    @Test("batch plans from the graph: the bundled models' bytes per row as the layer-by-layer estimate gave them, and any graph plans")
    func chunkPlans() throws {
        // Float32 bytes written per row from each start layer (`touched`), as ChunkPlan computed
        // them from the layers before it read the graph: the CPU backend sizes batches to its
        // cache by these, so the bundled models' batches are unchanged.
        let touched = ["digits-mlp": [5200, 4688, 4432, 2896, 1616, 848], "digits-cnn": [60240, 58960, 46672, 34384, 14928, 8784, 2640, 1616]]
        // The peaks the memory budget is divided by. From the input of the CNN, the first
        // convolution's im2col workspace (1·9·8·8 elements and its gradient: 4,608 bytes) no
        // longer adds to the second's, the larger, which alone counts, now with that
        // convolution's output transposed beside it (2 × 32·4·4 elements: 4,096 bytes):
        // 60,240 − 4,608 + 4,096 = 59,728, and +4,096 from every cut before the second
        // convolution. After it, nothing changes.
        let peak = ["digits-mlp": [5200, 4688, 4432, 2896, 1616, 848], "digits-cnn": [59728, 63056, 50768, 38480, 14928, 8784, 2640, 1616]]
        // Forward only: the fed input twice, and the values alive at the worst node with its
        // output and workspace (every value is freed after its last reader).
        let forward = ["digits-mlp": (peak: 1536, touched: 2344), "digits-cnn": (peak: 24064, touched: 37928)]
        for (name, bytes) in peak {
            let m = try Sequential.load(fixturePath("../../Models/" + name), on: cpu)
            let cuts: [String?] = [nil] + (0..<(m.layers.count - 1)).map { String($0) }
            let plans = cuts.map { ChunkPlan.make(for: m, cut: $0, budget: 1 << 30) }
            #expect(plans.map(\.bytesPerRow) == bytes, "\(name)")
            // Without a budget, the rows the cache allows for the bytes written: as before.
            for ((cut, t), p) in zip(zip(cuts, touched[name]!), bytes) {
                #expect(ChunkPlan.make(for: m, cut: cut).rows == ChunkPlan.cacheSized((1 << 30) / p, bytesPerRow: t, on: cpu), "\(name) cut \(cut ?? "input") rows")
            }
            let f = forward[name]!
            #expect(SobolAttribution.forwardPlan(for: m, budget: 1 << 30).bytesPerRow == f.peak, "\(name) forward")
            #expect(SobolAttribution.forwardPlan(for: m).rows == ChunkPlan.cacheSized((1 << 30) / f.peak, bytesPerRow: f.touched, on: cpu), "\(name) forward rows")
        }
        // A graph no layer chain can express: GPT-2 at T = 7 and T = 14 tokens. Its attention
        // patterns grow as T², so doubling T more than doubles a row.
        let gpt2 = try DecoderModel.load(fixturePath("gpt2/tiny"), on: cpu)
        let (p7, p14) = (ChunkPlan.make(for: try gpt2.graph(tokens: 7), backward: true, on: cpu, dtype: .float32, budget: 1 << 20),
                         ChunkPlan.make(for: try gpt2.graph(tokens: 14), backward: true, on: cpu, dtype: .float32, budget: 1 << 20))
        #expect(p14.bytesPerRow > 2 * p7.bytesPerRow && p7.rows == (1 << 20) / p7.bytesPerRow, "\(p7) \(p14)")
    }

    @Test("memory: a forward-only run keeps no inner value; elements per row from the graph")
    func memoryPlan() throws {
        let g = try Self.residualMLP()
        // Per row: x 6, h1 8, a1 8, h2 6, r 6, y 3 values. Forward: 2 per start value, and the
        // values alive at the worst node: at the Tanh, h1 (read by it) and a1, 16 (h1 is freed
        // before fc2, a1 before the add): 12 + 16 = 28; every output written: 12 + 31 = 43.
        // Backward: 3 per start value, 2 per output, and Tanh's kept f′ (8): 18 + 62 + 8 = 88,
        // all kept until the backward. The largest single value is 8.
        #expect(g.rowElements(backward: false) == (28, 8, 43))
        #expect(g.rowElements(backward: true) == (88, 8, 88))
        // From the cut at a1: fc2, skip and head only (the skip's other input x not counted).
        let fromA1 = 3 * 8 + 2 * (6 + 6 + 3)
        #expect(g.rowElements(from: ["a1"], backward: true) == (fromA1, 8, fromA1))
        let run = try GraphExecutor(g).forward(["x": Tensor(randomValues(12, seed: 1), shape: [2, 6], on: cpu)])
        #expect(Set(run.values.keys) == ["y"], "a forward-only run returns the outputs and keeps no inner value")
    }

    @Test("bad graphs: each an error naming the node")
    func badGraphs() throws {
        let lin = LayerOp(try Linear(weight: Self.weights([4, 6], seed: 1), bias: nil))
        let x = [("x", ValueType([6], .float64))]
        func message(_ f: () throws -> Graph) -> String {
            do { _ = try f(); return "no error" } catch { return "\(error)" }
        }
        let cycle = message { try Graph(inputs: x, nodes: [
            GraphNode("a", BinaryGraphOp(.add), inputs: ["x", "vb"], output: "va"),
            GraphNode("b", BinaryGraphOp(.add), inputs: ["va", "x"], output: "vb"),
        ], outputs: ["vb"]) }
        #expect(cycle.contains("cycle") && cycle.contains("a (Add)") && cycle.contains("b (Add)"), "\(cycle)")
        let dangling = message { try Graph(inputs: x, nodes: [GraphNode("fc", lin, inputs: ["z"], output: "y")], outputs: ["y"]) }
        #expect(dangling.contains("node fc (Linear) reads \"z\""), "\(dangling)")
        let shape = message { try Graph(inputs: [("x", ValueType([5], .float64))], nodes: [GraphNode("fc", lin, inputs: ["x"], output: "y")], outputs: ["y"]) }
        #expect(shape.contains("node fc (Linear(6→4))") && shape.contains("[5]"), "\(shape)")
        let twice = message { try Graph(inputs: x, nodes: [GraphNode("p", lin, inputs: ["x"], output: "y"), GraphNode("q", lin, inputs: ["x"], output: "y")], outputs: ["y"]) }
        #expect(twice.contains("node p") && twice.contains("node q"), "\(twice)")
        let arity = message { try Graph(inputs: x, nodes: [GraphNode("s", BinaryGraphOp(.add), inputs: ["x"], output: "y")], outputs: ["y"]) }
        #expect(arity.contains("node s (Add) has 1 inputs; Add takes 2"), "\(arity)")
        let add = message { try Graph(inputs: x, nodes: [GraphNode("fc", lin, inputs: ["x"], output: "h"), GraphNode("s", BinaryGraphOp(.add), inputs: ["h", "x"], output: "y")], outputs: ["y"]) }
        #expect(add.contains("node s (Add)") && add.contains("[4]") && add.contains("[6]"), "\(add)")
        let output = message { try Graph(inputs: x, nodes: [GraphNode("fc", lin, inputs: ["x"], output: "y")], outputs: ["logits"]) }
        #expect(output.contains("\"logits\""), "\(output)")
    }

    @Test("feeding errors: a wrong per-sample shape names both shapes; an unknown hook name is refused")
    func feedErrors() throws {
        let exec = GraphExecutor(try Self.residualMLP())
        let wrong = try Tensor(randomValues(12, seed: 1), shape: [2, 2, 3], on: cpu)
        #expect(throws: AttribError.shapeMismatch(op: "Graph.forward", detail: "input \"x\" has shape [2, 2, 3]; the model takes [N] + [6]")) {
            try exec.forward(["x": wrong])
        }
        let x = try Tensor(randomValues(12, seed: 1), shape: [2, 6], on: cpu)
        #expect(throws: AttribError.self) { try exec.forward(["x": x], hooks: .init(capture: ["nope"])) }
        let run = try exec.forward(["x": x], gradientsFor: ["a1"])
        #expect(throws: AttribError.self) { try exec.backward(run, upstream: [:], wrt: ["x"]) }
    }
}
