import Attrib
import Foundation
import Testing

/// GPT-2 against PyTorch (Tests/Fixtures/gpt2/make_gpt2_fixtures.py: a tiny GPT-2 with
/// random weights saved by transformers, references computed in float64 by a functional
/// forward checked against transformers), OpenCL against CPU, the attention ops on every
/// device, exact patching against PyTorch's hand-patched forwards, GradDrop against
/// PyTorch's detached blocks, and bad input.
@Suite struct TransformerTests {
    static let dir = fixturePath("gpt2/tiny")
    static let reference = try! SafeTensorsFile(path: dir + "/reference.safetensors")
    static let nodeNames = ["q": HookKind.attnQ, "k": .attnK, "v": .attnV, "pattern": .attnPattern, "z": .attnZ,
                            "attn_out": .attnOut, "resid_mid": .residMid, "mlp_pre": .mlpPre, "mlp_post": .mlpPost,
                            "mlp_out": .mlpOut, "resid_post": .residPost]

    static func ref(_ name: String) throws -> [Double] { try reference.doubles(name) }
    static func tokens(_ name: String) throws -> [[Int32]] {
        let v = try reference.int32s(name), t = try reference.entry(name).shape[1]
        return stride(from: 0, to: v.count, by: t).map { Array(v[$0..<($0 + t)]) }
    }
    static func metricTokens() throws -> (target: [Int], contrast: [Int]) {
        let m = try reference.int32s("metric_tokens").map(Int.init)
        return (stride(from: 0, to: m.count, by: 2).map { m[$0] }, stride(from: 1, to: m.count, by: 2).map { m[$0] })
    }
    static var logitDiff: TokenMetric {
        get throws { let (a, b) = try metricTokens(); return .logitDifference(target: a, contrast: b) }
    }
    static var allPoints: Set<HookPoint> {
        Set((0..<2).flatMap { l in HookKind.allCases.filter { ![.mlpPreLinear, .attnRotQ, .attnRotK].contains($0) }.map { HookPoint($0, layer: l) } })
    }

    /// max |got − want| / max |want| (normwise: single gradient entries can be ~0).
    static func relativeError(_ got: [Double], _ want: [Double]) -> Double {
        guard got.count == want.count else { return .infinity }
        var d = 0.0, m = 0.0
        for i in want.indices { d = max(d, abs(got[i] - want[i])); m = max(m, abs(want[i])) }
        return d / max(m, .leastNormalMagnitude)
    }

    /// Float32 bound: the longest chains of products here are K ≤ 128 terms, a few per block
    /// and 2 blocks, forward and backward; 1e-4 leaves room for the softmax/LayerNorm
    /// conditioning of random weights. Float64: the same in double.
    static func bound(_ dtype: DType) -> Double { dtype == .float64 ? 1e-10 : 1e-4 }

    /// Logits, metric and every node gradient against PyTorch on one device and dtype.
    static func checkAgainstPyTorch(_ device: any Device, _ dtype: DType, _ label: String) throws {
        let model = try DecoderModel.load(dir, on: device, dtype: dtype)
        let clean = try tokens("tokens_clean")
        let tol = bound(dtype)
        let g = try model.gradients(clean, metric: logitDiff, nodes: allPoints, logitPositions: .all)
        let e = relativeError(try g.run.logits.doubles(), try ref("logits_clean"))
        #expect(e <= tol, "\(label) logits: \(e)")
        #expect(relativeError(g.values, try ref("metric_clean")) <= tol, "\(label) metric")
        #expect(relativeError(try g.gradients.embeddings.doubles(), try ref("grad.embed")) <= tol, "\(label) ∂L/∂embeddings")
        for (name, kind) in nodeNames {
            for l in 0..<2 {
                let p = HookPoint(kind, layer: l)
                let got = try #require(g.gradients.nodes[p]), want = try ref("grad.\(name).\(l)")
                #expect(got.shape == p.shape(batch: 2, tokens: 7, config: model.config))
                let err = relativeError(try got.doubles(), want)
                #expect(err <= tol, "\(label) ∂L/∂\(p): \(err)")
            }
        }
        // Only the last position's logits: same gradients.
        let gl = try model.gradients(clean, metric: logitDiff, nodes: [HookPoint(.attnPattern, layer: 0)], logitPositions: .last)
        #expect(gl.run.logits.shape == [2, 1, 50])
        #expect(relativeError(try gl.gradients.embeddings.doubles(), try ref("grad.embed")) <= tol, "\(label) .last ∂L/∂embeddings")
        // Log-probability metric.
        let lpTokens = try reference.int32s("logprob_tokens").map(Int.init)
        let lp = try model.gradients(clean, metric: .logProbability(token: lpTokens), nodes: [HookPoint(.attnPattern, layer: 0), HookPoint(.attnPattern, layer: 1)])
        #expect(relativeError(lp.values, try ref("lp.value")) <= tol, "\(label) log-prob values")
        #expect(relativeError(try lp.gradients.embeddings.doubles(), try ref("lp.grad.embed")) <= tol, "\(label) log-prob ∂/∂embeddings")
        for l in 0..<2 {
            let got = try lp.gradients.nodes[HookPoint(.attnPattern, layer: l)]!.doubles()
            #expect(relativeError(got, try ref("lp.grad.pattern.\(l)")) <= tol, "\(label) log-prob ∂/∂pattern \(l)")
        }
        // GradDrop of each layer against PyTorch with that block's outputs detached.
        for drop in 0..<2 {
            let gd = try model.gradients(clean, metric: logitDiff, nodes: allPoints, gradDrop: [drop])
            #expect(relativeError(try gd.gradients.embeddings.doubles(), try ref("drop\(drop).grad.embed")) <= tol, "\(label) GradDrop \(drop) embeddings")
            for (name, kind) in nodeNames {
                for l in 0..<2 {
                    let got = try gd.gradients.nodes[HookPoint(kind, layer: l)]!.doubles(), want = try ref("drop\(drop).grad.\(name).\(l)")
                    let err = want.allSatisfy { $0 == 0 } ? (got.allSatisfy { $0 == 0 } ? 0 : .infinity) : relativeError(got, want)
                    #expect(err <= tol, "\(label) GradDrop \(drop) ∂L/∂\(name).\(l): \(err)")
                }
            }
        }
    }

    @Test("CPU GPT-2 matches PyTorch: logits, metrics, every node gradient, GradDrop (Float64 1e-10, Float32 1e-4)")
    func pytorchCPU() throws {
        try Self.checkAgainstPyTorch(cpu, .float64, "cpu f64")
        try Self.checkAgainstPyTorch(cpu, .float32, "cpu f32")
    }

    @Test("OpenCL GPT-2 matches PyTorch and the CPU backend")
    func pytorchOpenCL() throws {
        let clean = try Self.tokens("tokens_clean")
        let cpuModel = try DecoderModel.load(Self.dir, on: cpu)
        let c = try cpuModel.gradients(clean, metric: Self.logitDiff, nodes: Self.allPoints, logitPositions: .all)
        for device in openCLDevices {
            for dtype in dtypes(device) { try Self.checkAgainstPyTorch(device, dtype, "\(device.id) \(dtype)") }
            let model = try DecoderModel.load(Self.dir, on: device)
            let g = try model.gradients(clean, metric: Self.logitDiff, nodes: Self.allPoints, logitPositions: .all)
            #expect(Self.relativeError(try g.run.logits.doubles(), try c.run.logits.doubles()) <= 2e-5, "\(device.id) logits vs cpu")
            #expect(Self.relativeError(try g.gradients.embeddings.doubles(), try c.gradients.embeddings.doubles()) <= 1e-4, "\(device.id) embeddings vs cpu")
            for p in Self.allPoints {
                #expect(Self.relativeError(try g.gradients.nodes[p]!.doubles(), try c.gradients.nodes[p]!.doubles()) <= 1e-4, "\(device.id) \(p) vs cpu")
            }
        }
    }

    @Test("Attention ops: transpose12, copyBox and causalSoftmax on every device against the CPU and by definition")
    func attentionOps() throws {
        // Each of the CPU's Float32 copies: rows of 4 (the banded convolution's image rows),
        // of 2 (a rows-outer Flatten) and other short rows (an inline loop), and long ones
        // (memcpy), over enough batches to be split across threads, by definition.
        for device in [cpu as any Device] + openCLDevices {
            for (a, b, c, d) in [(300, 16, 4, 4), (300, 2, 32, 2), (200, 3, 5, 5), (40, 3, 2, 17)] {
                let xs = randomValues(a * b * c * d, seed: 12)
                let y = try Tensor(xs, shape: [a, b, c, d], dtype: .float32, on: device).transposed12().doubles()
                var want = [Double](repeating: 0, count: xs.count)
                for i in 0..<a { for j in 0..<b { for k in 0..<c { for l in 0..<d {
                    want[((i * c + k) * b + j) * d + l] = Double(Float(xs[((i * b + j) * c + k) * d + l]))
                } } } }
                expectEqual(y, want, "\(device.id) transpose12 of [\(a), \(b), \(c), \(d)]")
            }
        }
        let (a, b, c, d) = (2, 3, 4, 5)
        let xs = randomValues(a * b * c * d, seed: 11)
        for device in [cpu as any Device] + openCLDevices {
            for dtype in dtypes(device) {
                let x = try Tensor(xs, shape: [a, b, c, d], dtype: dtype, on: device)
                let y = try x.transposed12()
                #expect(y.shape == [a, c, b, d])
                let yv = try y.doubles(), xv = try x.doubles()
                var want = [Double](repeating: 0, count: xs.count)
                for i in 0..<a { for j in 0..<b { for k in 0..<c { for l in 0..<d {
                    want[((i * c + k) * b + j) * d + l] = xv[((i * b + j) * c + k) * d + l]
                } } } }
                expectEqual(yv, want, "\(device.id) \(dtype) transpose12")
                expectEqual(try y.transposed12().doubles(), xv, "\(device.id) \(dtype) transpose12 twice")
                // Box: rows 1..2 of each [b, c·d] slab, 3 elements from column 2.
                let dst = try Tensor.zeros([a, b, c * d], dtype: dtype, on: device)
                try dst.copyBox((a, 2, 3), from: x, sourceOffset: c * d + 2, sourceStrides: (b * c * d, c * d), offset: c * d + 2, strides: (b * c * d, c * d))
                let dv = try dst.doubles()
                for i in 0..<a { for j in 0..<b { for k in 0..<(c * d) {
                    let e = (i * b + j) * c * d + k
                    let inBox = (1...2).contains(j) && (2..<5).contains(k)
                    #expect(dv[e] == (inBox ? xv[e] : 0), "\(device.id) copyBox element \(e)")
                } } }
                // Causal softmax: row t is the softmax of its first t + 1 entries, zeros after.
                let t = 6
                let s = try Tensor(randomValues(3 * t * t, seed: 5, -4, 4), shape: [3, t, t], dtype: dtype, on: device)
                let p = try s.causalSoftmax().doubles(), sv = try s.doubles()
                var pw = [Double](repeating: 0, count: sv.count)
                for r in 0..<(3 * t) {
                    let i = r % t, row = sv[(r * t)..<(r * t + i + 1)], m = row.max()!
                    let z = row.reduce(0) { $0 + exp($1 - m) }
                    for j in 0...i { pw[r * t + j] = exp(sv[r * t + j] - m) / z }
                }
                let tol = dtype == .float64 ? 1e-15 : 1e-6
                expectClose(p, pw, bound: { _ in tol }, "\(device.id) \(dtype) causalSoftmax")
                #expect((0..<(3 * t)).allSatisfy { r in ((r % t + 1)..<t).allSatisfy { p[r * t + $0] == 0 } }, "masked entries are exactly 0")
            }
        }
    }

    @Test("Exact activation patching of every node of a kind matches PyTorch's hand-patched forwards")
    func patching() throws {
        for (device, dtype) in [(cpu as any Device, DType.float64), (cpu, .float32)] + openCLDevices.map({ ($0 as any Device, DType.float32) }) {
            let model = try DecoderModel.load(Self.dir, on: device, dtype: dtype)
            let clean = try Self.tokens("tokens_clean"), corrupt = try Self.tokens("tokens_corrupt")
            let source = try model.forward(corrupt, cache: Self.allPoints).cache
            let (ta, tb) = try Self.metricTokens()
            let (nl, nh, t, f) = (2, 4, 7, 128)
            let groups: [(String, [NodeSlice])] = [
                ("z", (0..<nl).flatMap { l in (0..<nh).map { NodeSlice(HookPoint(.attnZ, layer: l), head: $0) } }),
                ("q", (0..<nl).flatMap { l in (0..<nh).map { NodeSlice(HookPoint(.attnQ, layer: l), head: $0) } }),
                ("k", (0..<nl).flatMap { l in (0..<nh).map { NodeSlice(HookPoint(.attnK, layer: l), head: $0) } }),
                ("v", (0..<nl).flatMap { l in (0..<nh).map { NodeSlice(HookPoint(.attnV, layer: l), head: $0) } }),
                ("pattern", (0..<nl).flatMap { l in (0..<nh).map { NodeSlice(HookPoint(.attnPattern, layer: l), head: $0) } }),
                ("resid_pre", (0..<nl).flatMap { l in (0..<t).map { NodeSlice(HookPoint(.residPre, layer: l), position: $0) } }),
                ("attn_out", (0..<nl).flatMap { l in (0..<t).map { NodeSlice(HookPoint(.attnOut, layer: l), position: $0) } }),
                ("mlp_post1", (0..<f).map { NodeSlice(HookPoint(.mlpPost, layer: 1), index: $0) }),
                ("z_single", [NodeSlice(HookPoint(.attnZ, layer: 1), head: 2, position: 4, index: 3)]),
            ]
            for (name, nodes) in groups {
                let want = try Self.ref("patch.\(name)")    // [B, nodes]
                let scale = max(want.map(abs).max()!, 1e-3)
                for b in 0..<2 {
                    let metric = TokenMetric.logitDifference(target: [ta[b]], contrast: [tb[b]])
                    let got = try model.patchingEffects(clean: clean[b], metric: metric, nodes: nodes, source: source, sourceRow: b, batchSize: 5)
                    let w = Array(want[(b * nodes.count)..<((b + 1) * nodes.count)])
                    let tol = (dtype == .float64 ? 1e-10 : 2e-4) * scale
                    expectClose(got, w, bound: { _ in tol }, "\(device.id) \(dtype) patch \(name) prompt \(b)")
                }
            }
            // Patching a node with its own clean value changes nothing, and a patched run's
            // cache holds the source's values in the box and the clean ones elsewhere.
            let cleanCache = try model.forward([clean[0]], cache: Self.allPoints).cache
            let same = try model.patchingEffects(clean: clean[0], metric: Self.logitDiff.firstOnly, nodes: [NodeSlice(HookPoint(.residMid, layer: 0))], source: cleanCache)
            #expect(abs(same[0]) <= (dtype == .float64 ? 1e-12 : 1e-5))
            let point = HookPoint(.attnZ, layer: 0)
            let run = try model.forward([clean[0], clean[0]], cache: [point], patches: [ActivationPatch(row: 1, node: NodeSlice(point, head: 1, position: 3), source: source[point]!, sourceRow: 0)])
            // Against an unpatched run of the same batch (same products, so bitwise).
            let unpatched = try model.forward([clean[0], clean[0]], cache: [point]).cache[point]!
            let z = try run.cache[point]!.doubles(), zc = try unpatched.doubles(), zs = try source[point]!.doubles()
            let rowSize = t * nh * 8
            for i in 0..<rowSize {
                let (pos, head) = (i / (nh * 8), (i / 8) % nh)
                #expect(z[i] == zc[i])
                #expect(z[rowSize + i] == (pos == 3 && head == 1 ? zs[i] : zc[rowSize + i]))
            }
        }
    }

    @Test("A patched node passes no gradient to what computed it; GradDrop of a block equals detaching it")
    func patchedBackward() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64)
        let clean = try Self.tokens("tokens_clean")
        let point = HookPoint(.residMid, layer: 1)
        let cache = try model.forward(clean, cache: [point]).cache
        // Patch the whole residMid of layer 1 (with its own values): the forward is unchanged, and
        // nothing before it gets a gradient except through... nothing: every path crosses residMid 1.
        let patches = (0..<2).map { ActivationPatch(row: $0, node: NodeSlice(point), source: cache[point]!, sourceRow: $0) }
        let run = try model.forward(clean, cache: [point], patches: patches, keepForBackward: true)
        let (_, up) = try Self.logitDiff.evaluate(run.logits)
        let g = try model.backward(run, upstream: up, nodes: [point, HookPoint(.residPre, layer: 1)])
        #expect(try g.embeddings.doubles().allSatisfy { $0 == 0 })
        #expect(try g.nodes[HookPoint(.residPre, layer: 1)]!.doubles().allSatisfy { $0 == 0 })
        #expect(Self.relativeError(try g.nodes[point]!.doubles(), try Self.ref("grad.resid_mid.1")) <= 1e-10)
        // GradDrop of every layer: the embedding gradient is the direct path through ln_f only.
        let all = try model.gradients(clean, metric: Self.logitDiff, nodes: [HookPoint(.residPost, layer: 1)], gradDrop: [0, 1])
        expectClose(try all.gradients.embeddings.doubles(), try all.gradients.nodes[HookPoint(.residPost, layer: 1)]!.doubles(),
                    bound: { _ in 0 }, "GradDrop of every block: ∂/∂embeddings = ∂/∂resid_post")
    }

    @Test("Loading: HF names with or without the transformer. prefix, tied lm_head accepted")
    func loading() throws {
        let tmp = "/tmp/attrib-gpt2-\(UInt64.random(in: 0...UInt64.max))"
        try FileHelpers.makeDirectory(tmp)
        defer { FileHelpers.remove(tmp) }
        let file = try SafeTensorsFile(path: Self.dir + "/model.safetensors")
        var items: [SafeTensorsWriter.Item] = []
        for n in file.names {
            let short = n.hasPrefix("transformer.") ? String(n.dropFirst("transformer.".count)) : n
            items.append((short, try file.entry(n).shape, try file.doubles(n), .F32))
            if short == "wte.weight" { items.append(("lm_head.weight", try file.entry(n).shape, try file.doubles(n), .F32)) }
        }
        items.append(("h.0.attn.bias", [1, 1, 16, 16], [Double](repeating: 1, count: 256), .F32))
        try SafeTensorsWriter.write(items, to: tmp + "/model.safetensors")
        try FileHelpers.copy(Self.dir + "/config.json", tmp + "/config.json")
        let clean = try Self.tokens("tokens_clean")
        let a = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64).logits(clean).doubles()
        let b = try DecoderModel.load(tmp, on: cpu, dtype: .float64).logits(clean).doubles()
        expectEqual(b, a, "unprefixed copy")
        #expect(HookPoint(.attnZ, layer: 3).name == "blocks.3.attn.hook_z")
        #expect(try HookPoint(name: "blocks.1.mlp.hook_post") == HookPoint(.mlpPost, layer: 1))
    }

    @Test("Bad input: token id out of range, too long, unequal lengths, bad nodes, configs that do not match the weights")
    func badInput() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu)
        expectAttribError(["token id 50", "prompt 1", "position 2", "0..<50"]) { _ = try model.logits([[1, 2, 3], [4, 5, 50]]) }
        expectAttribError(["-1", "prompt 0", "position 0"]) { _ = try model.logits([[-1]]) }
        expectAttribError(["17 tokens", "n_positions = 16"]) { _ = try model.logits([[Int32](repeating: 1, count: 17)]) }
        expectAttribError(["prompt 1 has 2 tokens", "prompt 0 has 3"]) { _ = try model.logits([[1, 2, 3], [1, 2]]) }
        expectAttribError(["empty"]) { _ = try model.logits([]) }
        let src = try model.forward([[1, 2, 3]], cache: [HookPoint(.attnZ, layer: 0)]).cache[HookPoint(.attnZ, layer: 0)]!
        expectAttribError(["head 4", "0..<4"]) {
            _ = try model.forward([[1, 2, 3]], patches: [ActivationPatch(row: 0, node: NodeSlice(HookPoint(.attnZ, layer: 0), head: 4), source: src)])
        }
        expectAttribError(["layer 2"]) {
            _ = try model.forward([[1, 2, 3]], patches: [ActivationPatch(row: 0, node: NodeSlice(HookPoint(.attnZ, layer: 2)), source: src)])
        }
        expectAttribError(["source has shape [1, 3, 4, 8]", "[4, 4, 8]"]) {
            _ = try model.forward([[1, 2, 3, 4]], patches: [ActivationPatch(row: 0, node: NodeSlice(HookPoint(.attnZ, layer: 0)), source: src)])
        }
        expectAttribError(["keepForBackward"]) {
            let run = try model.forward([[1, 2, 3]])
            _ = try model.backward(run, upstream: run.logits)
        }
        expectAttribError(["target token 50", "0..<50"]) { _ = try TokenMetric.logProbability(token: [50]).evaluate(model.logits([[1]])) }

        let tmp = "/tmp/attrib-gpt2-bad-\(UInt64.random(in: 0...UInt64.max))"
        try FileHelpers.makeDirectory(tmp)
        defer { FileHelpers.remove(tmp) }
        try FileHelpers.copy(Self.dir + "/model.safetensors", tmp + "/model.safetensors")
        let good = try FileHelpers.read(Self.dir + "/config.json")
        try FileHelpers.write(good.replacingFirst("\"n_embd\": 32", with: "\"n_embd\": 36"), tmp + "/config.json")
        expectAttribError(["h.0.attn.c_attn.weight", "[32, 96]", "[36, 108]"]) { _ = try DecoderModel.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"vocab_size\": 50", with: "\"vocab_size\": 51"), tmp + "/config.json")
        expectAttribError(["wte.weight", "[50, 32]", "[51, 32]"]) { _ = try DecoderModel.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"n_layer\": 2", with: "\"n_layer\": 3"), tmp + "/config.json")
        expectAttribError(["h.2.", "missing"]) { _ = try DecoderModel.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"n_layer\": 2", with: "\"n_layer\": 1"), tmp + "/config.json")
        expectAttribError(["h.1.", "not used", "does not match"]) { _ = try DecoderModel.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"n_head\": 4", with: "\"n_head\": 5"), tmp + "/config.json")
        expectAttribError(["n_embd = 32", "n_head = 5"]) { _ = try DecoderModel.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"gelu_new\"", with: "\"relu\""), tmp + "/config.json")
        expectAttribError(["activation_function", "relu"]) { _ = try DecoderModel.load(tmp, on: cpu) }
    }
}

extension TokenMetric {
    /// The metric for the first prompt only (one token per list).
    var firstOnly: TokenMetric {
        if case let .logitDifference(a, b) = self { return .logitDifference(target: [a[0]], contrast: [b[0]]) }
        return self
    }
}
