import Attrib
import Testing

/// GPT-2 built as a graph (DecoderModel.graph) against the PyTorch references of the tiny
/// fixture (Tests/Fixtures/gpt2/make_gpt2_fixtures.py) that DecoderModel itself is held to:
/// logits, every hook's gradient, and GradDrop as stop-gradients at a block's two outputs.
/// On the CPU backend in Float64 and Float32 and on every OpenCL device in Float32.
@Suite struct GPT2GraphTests {
    typealias T = TransformerTests

    static func check(_ device: any Device, _ dtype: DType, _ label: String) throws {
        let model = try DecoderModel.load(T.dir, on: device, dtype: dtype)
        let clean = try T.tokens("tokens_clean")
        let (b, t) = (clean.count, clean[0].count)
        let exec = GraphExecutor(try model.graph(tokens: t))
        let tokens = try Tensor(indices: clean.flatMap { $0 }, shape: [b, t], on: device)
        let names = T.nodeNames.flatMap { name, kind in (0..<2).map { (name, $0, HookPoint(kind, layer: $0).name) } }
        let wrt = Set(names.map(\.2) + ["hook_pos_embed_sum"])
        let run = try exec.forward(["tokens": tokens], gradientsFor: wrt)
        // Same bound as DecoderModel's own test (T.bound): products of K ≤ 128 terms, two blocks.
        let tol = T.bound(dtype)
        let logits = run["logits"]!
        #expect(T.relativeError(try logits.doubles(), try T.ref("logits_clean")) <= tol, "\(label) logits")
        let (values, upstream) = try T.logitDiff.evaluate(logits)
        #expect(T.relativeError(values, try T.ref("metric_clean")) <= tol, "\(label) metric")
        // No stop, then GradDrop of each layer: a zero gradient at its attn_out and mlp_out.
        let drops: [(String, Set<String>)] = (0..<2).map { l in
            ("drop\(l).", Set([HookPoint(.attnOut, layer: l).name, HookPoint(.mlpOut, layer: l).name]))
        }
        for (prefix, stop) in [("", Set<String>())] + drops {
            let g = try exec.backward(run, upstream: ["logits": upstream], wrt: wrt, stopGradient: stop)
            #expect(T.relativeError(try g["hook_pos_embed_sum"]!.doubles(), try T.ref(prefix + "grad.embed")) <= tol, "\(label) \(prefix)∂L/∂embeddings")
            for (name, l, hook) in names {
                let got = try g[hook]!.doubles(), want = try T.ref("\(prefix)grad.\(name).\(l)")
                let err = want.allSatisfy { $0 == 0 } ? (got.allSatisfy { $0 == 0 } ? 0 : .infinity) : T.relativeError(got, want)
                #expect(err <= tol, "\(label) \(prefix)∂L/∂\(hook): \(err)")
            }
        }
    }

    @Test("GPT-2 as a graph matches PyTorch on the CPU backend: logits, metric, every hook's gradient, GradDrop (Float64 1e-10, Float32 1e-4)")
    func cpuBackend() throws {
        try Self.check(cpu, .float64, "cpu f64")
        try Self.check(cpu, .float32, "cpu f32")
    }

    @Test("GPT-2 as a graph matches PyTorch on every OpenCL device (Float32 1e-4)")
    func openCL() throws {
        for d in openCLDevices { try Self.check(d, .float32, d.info.id) }
    }

    @Test("patching through the graph: z replaced by the corrupt run's equals the corrupt hook's effect in DecoderModel")
    func patchingAgrees() throws {
        let model = try DecoderModel.load(T.dir, on: cpu, dtype: .float64)
        let clean = try T.tokens("tokens_clean"), corrupt = try T.tokens("tokens_corrupt")
        let (b, t) = (clean.count, clean[0].count)
        let exec = GraphExecutor(try model.graph(tokens: t, lastPositionOnly: true))
        let z = HookPoint(.attnZ, layer: 1)
        let c = try exec.forward(["tokens": Tensor(indices: corrupt.flatMap { $0 }, shape: [b, t], on: cpu)], hooks: .init(capture: [z.name]))
        let patched = try exec.forward(["tokens": Tensor(indices: clean.flatMap { $0 }, shape: [b, t], on: cpu)],
                                       hooks: .init(replace: [z.name: c[z.name]!]))
        // DecoderModel with every row's whole z of layer 1 patched from the corrupt run.
        let cz = try model.forward(corrupt, cache: [z]).cache[z]!
        let patches = (0..<b).map { ActivationPatch(row: $0, node: NodeSlice(z), source: cz, sourceRow: $0) }
        let want = try model.forward(clean, patches: patches, logitPositions: .last).logits
        #expect(patched["logits"]!.shape == [b, 1, model.config.vocabSize])
        // Float64, the same ops in the same order but for the scale (alpha inside the product
        // in DecoderModel, a separate pass here): differences of a few ulp of the logits.
        expectClose(try patched["logits"]!.doubles(), try want.doubles(), bound: { _ in 1e-12 }, "patched logits")
    }
}
