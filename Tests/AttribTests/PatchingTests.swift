import Attrib
import Foundation
import Testing

/// Activation patching, AtP and AtP* on the tiny GPT-2 fixture (Tests/Fixtures/gpt2/tiny) and on
/// hand-built models: exact patching against hand-patched forwards, AtP against the first-order
/// formula from downloaded activations and gradients, the QK-fix key kernel against a direct O(T³)
/// recomputation, a saturated head AtP misses and the QK fix finds, a cancellation GradDrop recovers,
/// OpenCL against CPU, and bad input.
@Suite struct PatchingTests {
    static let dir = fixturePath("gpt2/tiny")
    static let clean: [Int32] = [1, 7, 22, 3, 9, 41, 13, 5]
    static let corrupt: [Int32] = [1, 7, 30, 3, 9, 44, 13, 5]
    static let metric = TokenMetric.logitDifference(target: [3], contrast: [11])

    // MARK: exact patching

    @Test("Exact patching of every node of each granularity equals a forward with the activation replaced by hand")
    func exactPatching() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64)
        let pair = PromptPair(clean: Self.clean, corrupt: Self.corrupt)
        let t = Self.clean.count
        let allPoints = Set((0..<2).flatMap { l in [HookKind.attnZ, .attnQ, .attnK, .attnV, .mlpPost].map { HookPoint($0, layer: l) } })
        let cleanRun = try model.forward([Self.clean], cache: allPoints)
        let corruptRun = try model.forward([Self.corrupt], cache: allPoints)
        let base = try Self.metric.evaluate(model.forward([Self.clean], logitPositions: .last).logits).values[0]
        for g in ComponentGranularity.allCases {
            let exact = try ActivationPatching.effects(model, pair: pair, metric: Self.metric, granularity: g, batchSize: 7)
            let nodes = exact.nodes
            #expect(exact.scores.count == nodes.count)
            // Every node for the coarse sets, a spread of nodes for the per-position neurons.
            let check = g == .neuronPositions ? Array(stride(from: 0, to: nodes.count, by: 37)) : Array(0..<nodes.count)
            var want: [Double] = []
            for i in check {
                let n = nodes[i]
                // The whole hook point replaced by a host-built tensor: clean values with the node's
                // entries taken from the corrupt run.
                var patches: [ActivationPatch] = []
                let kinds: [HookKind] = g == .heads ? [.attnZ] : g == .headPositions ? [.attnQ, .attnK, .attnV] : [.mlpPost]
                for k in kinds {
                    let p = HookPoint(k, layer: n.layer)
                    var v = try cleanRun.cache[p]!.doubles()
                    let cv = try corruptRun.cache[p]!.doubles()
                    let shape = cleanRun.cache[p]!.shape
                    for e in v.indices {
                        let inNode: Bool
                        if k == .mlpPost {
                            let pos = e / shape[2], f = e % shape[2]
                            inNode = f == n.neuron! && (n.position == nil || n.position == pos)
                        } else {
                            let pos = e / (shape[2] * shape[3]), h = (e / shape[3]) % shape[2]
                            inNode = h == n.head! && (n.position == nil || n.position == pos)
                        }
                        if inNode { v[e] = cv[e] }
                    }
                    patches.append(ActivationPatch(row: 0, node: NodeSlice(p), source: try Tensor(v, shape: shape, dtype: .float64, on: cpu)))
                }
                let run = try model.forward([Self.clean], patches: patches, logitPositions: .last)
                want.append(try Self.metric.evaluate(run.logits).values[0] - base)
            }
            expectClose(check.map { exact.scores[$0] }, want, bound: { _ in 1e-10 }, "exact \(g.rawValue)")
            #expect(exact.scores.contains { abs($0) > 1e-6 }, "\(g.rawValue): some node has an effect")
            _ = t
        }
    }

    // MARK: AtP

    @Test("AtP equals (n(corrupt) − n(clean))·∂L/∂n from downloaded activations and gradients")
    func atpFirstOrder() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64)
        let pair = PromptPair(clean: Self.clean, corrupt: Self.corrupt)
        let c = model.config, t = Self.clean.count
        let points = Set((0..<2).flatMap { l in [HookKind.attnZ, .attnQ, .attnK, .attnV, .mlpPost].map { HookPoint($0, layer: l) } })
        let g = try model.gradients([Self.clean], metric: Self.metric, nodes: points, logitPositions: .all)
        let cr = try model.forward([Self.corrupt], cache: points)
        func host(_ k: HookKind, _ l: Int) throws -> (d: [Double], g: [Double]) {
            let p = HookPoint(k, layer: l)
            let a = try g.run.cache[p]!.doubles(), b = try cr.cache[p]!.doubles()
            return (zip(b, a).map { $0 - $1 }, try g.gradients.nodes[p]!.doubles())
        }
        for gran in ComponentGranularity.allCases {
            let est = try AtP.estimate(model, pair: pair, metric: Self.metric, granularity: gran)
            var want: [Double] = []
            for l in 0..<c.nLayer {
                switch gran {
                case .heads:
                    let (d, gg) = try host(.attnZ, l)
                    for h in 0..<c.nHead {
                        var s = 0.0
                        for p in 0..<t { for i in 0..<c.headDim { let e = (p * c.nHead + h) * c.headDim + i; s += d[e] * gg[e] } }
                        want.append(s)
                    }
                case .headPositions:
                    let parts = try [HookKind.attnQ, .attnK, .attnV].map { try host($0, l) }
                    for h in 0..<c.nHead { for p in 0..<t {
                        var s = 0.0
                        for (d, gg) in parts { for i in 0..<c.headDim { let e = (p * c.nHead + h) * c.headDim + i; s += d[e] * gg[e] } }
                        want.append(s)
                    } }
                case .neurons:
                    let (d, gg) = try host(.mlpPost, l)
                    for f in 0..<c.nInner { want.append((0..<t).reduce(0.0) { $0 + d[$1 * c.nInner + f] * gg[$1 * c.nInner + f] }) }
                case .neuronPositions:
                    let (d, gg) = try host(.mlpPost, l)
                    want += zip(d, gg).map { $0 * $1 }
                }
            }
            expectClose(est.scores, want, bound: { _ in 1e-12 }, "AtP \(gran.rawValue)")
            #expect(est.backwardPasses == 1)
        }
    }

    // MARK: the QK-fix key kernel

    /// Σ_{t ≥ s} Σ_s' (softmax(x_t + Δ_ts·e_s)_s' − softmax(x_t)_s')·g_ts', directly: O(T³) per head.
    static func directKeyEffects(_ x: [Double], _ d: [Double], _ g: [Double], n: Int, t: Int) -> [Double] {
        func softmax(_ v: [Double]) -> [Double] {
            let m = v.max()!, e = v.map { exp($0 - m) }, s = e.reduce(0, +)
            return e.map { $0 / s }
        }
        var out = [Double](repeating: 0, count: n * t)
        for b in 0..<n {
            for s in 0..<t {
                var acc = 0.0
                for r in s..<t {
                    let row = Array(x[(b * t + r) * t..<(b * t + r) * t + r + 1])
                    var patched = row
                    patched[s] += d[(b * t + r) * t + s]
                    let a = softmax(row), ap = softmax(patched)
                    for j in 0...r { acc += (ap[j] - a[j]) * g[(b * t + r) * t + j] }
                }
                out[b * t + s] = acc
            }
        }
        return out
    }

    @Test("AtP of many pairs in batches gives each pair its own estimate, on every device; the batches are runs of one length and stackable metrics")
    func atpBatched() throws {
        // Six pairs: five of 8 tokens (one with a log-probability metric, one with a custom
        // metric that cannot stack) and one of 6 tokens between them.
        var pairs: [PromptPair] = [], metrics: [TokenMetric] = []
        for k in 0..<4 {
            var c = Self.clean, r = Self.corrupt
            c[3] = Int32(3 + 5 * k); r[6] = Int32(20 + k)
            pairs.append(PromptPair(clean: c, corrupt: r))
            metrics.append(.logitDifference(target: [3 + k], contrast: [11 + 2 * k]))
        }
        pairs.insert(PromptPair(clean: Array(Self.clean.prefix(6)), corrupt: Array(Self.corrupt.prefix(6))), at: 2)
        metrics.insert(.logitDifference(target: [5], contrast: [9]), at: 2)
        pairs.append(PromptPair(clean: Self.clean, corrupt: Self.corrupt)); metrics.append(.logProbability(token: [4]))
        let plan = AtP.batches(pairs: pairs, metrics: metrics, batchSize: { _ in 3 })
        #expect(plan == [0..<2, 2..<3, 3..<5, 5..<6], "\(plan)")
        // A log-probability metric does not stack with logit differences; two of them do.
        #expect(TokenMetric.stacked([metrics[0], metrics[5]]) == nil)
        #expect(TokenMetric.stacked([.logProbability(token: [1]), .logProbability(token: [2])]) != nil)
        #expect(TokenMetric.stacked([.custom({ ($0, $0) }), .custom({ ($0, $0) })]) == nil)
        // Float64 on the CPU: the products of a batch round as the single prompt's within a few
        // ulps of the largest term (1e-12 of the largest score). Float32 on OpenCL against the
        // CPU: the parity bound of openCLMatchesCPU (2e-4 of the largest score).
        let devices: [any Device] = [cpu] + openCLDevices
        for device in devices {
            let model = try DecoderModel.load(Self.dir, on: device, dtype: device === cpu ? .float64 : .float32)
            for g in [ComponentGranularity.heads, .neuronPositions] {
                let batched = try AtP.estimate(model, pairs: pairs, metrics: metrics, granularity: g, batchSize: 3)
                #expect(batched.count == pairs.count)
                for (k, b) in batched.enumerated() {
                    let one = try AtP.estimate(model, pair: pairs[k], metric: metrics[k], granularity: g)
                    let scale = max(one.scores.map(abs).max() ?? 1, 1e-3)
                    expectClose(b.scores, one.scores, bound: { _ in (device === cpu ? 1e-12 : 2e-4) * scale }, "\(device.id) \(g.rawValue) pair \(k)")
                    #expect(abs(b.cleanMetric - one.cleanMetric) <= 1e-4 * max(1, abs(one.cleanMetric)))
                    #expect(abs(b.corruptMetric - one.corruptMetric) <= 1e-4 * max(1, abs(one.corruptMetric)))
                    #expect(b.nodes.tokens == pairs[k].clean.count)
                }
                // Different pairs give different scores: a batch that gave every prompt row 0's
                // gradient would fail above, this guards against a fixture where they coincide.
                #expect(batched[0].scores != batched[1].scores)
            }
        }
        // Pairs and metrics of different counts are refused.
        let model = try DecoderModel.load(Self.dir, on: cpu)
        #expect(throws: AttribError.self) { try AtP.estimate(model, pairs: pairs, metrics: Array(metrics.dropLast()), granularity: .heads) }
    }

    @Test("AtP* of a batch of pairs gives each pair its own result (scores, signed, per-drop), every granularity and device")
    func atpStarBatched() throws {
        var pairs: [PromptPair] = [], targets: [Int] = [], contrasts: [Int] = []
        for k in 0..<3 {
            var c = Self.clean, r = Self.corrupt
            c[4] = Int32(9 + 7 * k); r[2] = Int32(30 + 3 * k)
            pairs.append(PromptPair(clean: c, corrupt: r)); targets.append(3 + k); contrasts.append(11 - k)
        }
        let stacked = TokenMetric.logitDifference(target: targets, contrast: contrasts)
        let devices: [any Device] = [cpu] + openCLDevices
        for device in devices {
            let model = try DecoderModel.load(Self.dir, on: device, dtype: device === cpu ? .float64 : .float32)
            for g in ComponentGranularity.allCases {
                for star in [AtPStar(), AtPStar(qkFix: false, gradDrop: true), AtPStar(gradDrop: false)] {
                    let batched = try star.estimate(model, pairs: pairs, metric: stacked, granularity: g)
                    #expect(batched.count == pairs.count)
                    for (k, b) in batched.enumerated() {
                        let one = try star.estimate(model, pair: pairs[k], metric: .logitDifference(target: [targets[k]], contrast: [contrasts[k]]), granularity: g)
                        // Float64 on the CPU: a batch's products round as one prompt's, within
                        // a few ulps (1e-12 of the largest score); Float32 on OpenCL: the
                        // parity bound of openCLMatchesCPU (2e-4).
                        let bound = device === cpu ? 1e-12 : 2e-4
                        let scale = max(one.signed.map(abs).max() ?? 1, 1e-3)
                        let what = "\(device.id) \(g.rawValue) qk \(star.qkFix) gd \(star.gradDrop != nil) pair \(k)"
                        expectClose(b.scores.scores, one.scores.scores, bound: { _ in bound * scale }, what)
                        expectClose(b.signed, one.signed, bound: { _ in bound * scale }, what + " signed")
                        #expect(b.perDrop.count == one.perDrop.count, "\(what)")
                        for (x, y) in zip(b.perDrop, one.perDrop) { expectClose(x, y, bound: { _ in bound * scale }, what + " per drop") }
                        #expect(b.scores.backwardPasses == one.scores.backwardPasses)
                    }
                    #expect(batched[0].signed != batched[1].signed)
                }
            }
        }
        let model = try DecoderModel.load(Self.dir, on: cpu)
        expectAttribError(["one length"]) {
            _ = try AtPStar().estimate(model, pairs: [pairs[0], PromptPair(clean: Array(Self.clean.prefix(5)), corrupt: Array(Self.corrupt.prefix(5)))],
                                       metric: .logitDifference(target: [3, 4], contrast: [11, 10]), granularity: .heads)
        }
    }

    @Test("QK-fix key kernel equals the direct O(T³) recomputation, stays finite for |Δ| up to 1e4, and matches methods.md's formula")
    func keyKernel() throws {
        let n = 3, t = 9
        for (scaleX, scaleD) in [(1.0, 1.0), (20.0, 5.0), (60.0, 400.0), (5.0, 1e4)] {
            let x = randomValues(n * t * t, seed: 1).map { $0 * scaleX }
            let d = randomValues(n * t * t, seed: 2).map { $0 * scaleD }
            let g = randomValues(n * t * t, seed: 3)
            let want = Self.directKeyEffects(x, d, g, n: n, t: t)
            for device in [cpu as any Device] + openCLDevices {
                for dtype in dtypes(device) {
                    func up(_ v: [Double]) throws -> Tensor { try Tensor(v, shape: [n, t, t], dtype: dtype, on: device) }
                    let got = try up(x).atpKeyEffects(delta: try up(d), grad: try up(g)).doubles()
                    #expect(got.allSatisfy { $0.isFinite }, "\(device.id) \(dtype) finite at scales \(scaleX), \(scaleD)")
                    // Float32 inputs are rounded; the reference uses the same rounded inputs.
                    let ref = dtype == .float64 ? want : Self.directKeyEffects(x.map { Double(Float($0)) }, d.map { Double(Float($0)) },
                                                                              g.map { Double(Float($0)) }, n: n, t: t)
                    let tol = dtype == .float64 ? 1e-11 : 2e-4 * max(1, scaleX / 10)
                    expectClose(got, ref, bound: { _ in tol }, "\(device.id) \(dtype) key effects at scales \(scaleX), \(scaleD)")
                }
            }
        }
        // methods.md's form (1/Z − 1)·G_t + A_ts(e^Δ − 1)/Z·g_ts where it does not overflow.
        let x = randomValues(n * t * t, seed: 4), d = randomValues(n * t * t, seed: 5), g = randomValues(n * t * t, seed: 6)
        var formula = [Double](repeating: 0, count: n * t)
        for b in 0..<n { for r in 0..<t {
            let row = (0...r).map { x[(b * t + r) * t + $0] }
            let m = row.max()!, e = row.map { exp($0 - m) }, sum = e.reduce(0, +), a = e.map { $0 / sum }
            let gr = (0...r).map { g[(b * t + r) * t + $0] }
            let G = zip(a, gr).reduce(0.0) { $0 + $1.0 * $1.1 }
            for s in 0...r {
                let delta = d[(b * t + r) * t + s], z = 1 + a[s] * expm1(delta)
                formula[b * t + s] += (1 / z - 1) * G + a[s] * expm1(delta) / z * gr[s]
            }
        } }
        let got = try Tensor(x, shape: [n, t, t], dtype: .float64, on: cpu)
            .atpKeyEffects(delta: try Tensor(d, shape: [n, t, t], dtype: .float64, on: cpu), grad: try Tensor(g, shape: [n, t, t], dtype: .float64, on: cpu))
        expectClose(try got.doubles(), formula, bound: { _ in 1e-12 }, "kernel vs methods.md formula")
    }

    @Test("AtP*'s query and key terms on the tiny GPT-2 equal a direct recomputation from its cached q, k and ∂L/∂A")
    func qkFixOnModel() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64)
        let c = model.config, t = Self.clean.count, h = c.nHead, dh = c.headDim
        let pair = PromptPair(clean: Self.clean, corrupt: Self.corrupt)
        let star = try AtPStar(gradDrop: false).estimate(model, pair: pair, metric: Self.metric, granularity: .headPositions)
        let points = Set((0..<2).flatMap { l in [HookKind.attnQ, .attnK, .attnV, .attnPattern].map { HookPoint($0, layer: l) } })
        let g = try model.gradients([Self.clean], metric: Self.metric, nodes: points)
        let cr = try model.forward([Self.corrupt], cache: points)
        var want: [Double] = []
        for l in 0..<2 {
            func v(_ r: DecoderRun, _ k: HookKind) throws -> [Double] { try r.cache[HookPoint(k, layer: l)]!.doubles() }
            let q = try v(g.run, .attnQ), k = try v(g.run, .attnK), qn = try v(cr, .attnQ), kn = try v(cr, .attnK)
            let vc = try v(g.run, .attnV), vn = try v(cr, .attnV)
            let gA = try g.gradients.nodes[HookPoint(.attnPattern, layer: l)]!.doubles()
            let gV = try g.gradients.nodes[HookPoint(.attnV, layer: l)]!.doubles()
            func dot(_ a: [Double], _ i: Int, _ b: [Double], _ j: Int) -> Double {
                (0..<dh).reduce(0.0) { $0 + a[i * dh + $1] * b[j * dh + $1] } / Double(dh).squareRoot()
            }
            func softmax(_ v: [Double]) -> [Double] { let m = v.max()!, e = v.map { exp($0 - m) }, s = e.reduce(0, +); return e.map { $0 / s } }
            for hd in 0..<h {
                // Rows of (position, head) vectors: index pos·H + head.
                func row(_ qq: [Double], _ kk: [Double], _ r: Int, patchKey: Int? = nil) -> [Double] {
                    (0...r).map { s in dot(qq, r * h + hd, (s == patchKey ? kn : kk), s * h + hd) }
                }
                for p in 0..<t {
                    // Query at p.
                    let a = softmax(row(q, k, p)), ap = softmax(row(qn, k, p))
                    var eff = (0...p).reduce(0.0) { $0 + (ap[$1] - a[$1]) * gA[(hd * t + p) * t + $1] }
                    // Key at p: every row r ≥ p.
                    for r in p..<t {
                        let a = softmax(row(q, k, r)), ap = softmax(row(q, k, r, patchKey: p))
                        eff += (0...r).reduce(0.0) { $0 + (ap[$1] - a[$1]) * gA[(hd * t + r) * t + $1] }
                    }
                    // Value at p.
                    eff += (0..<dh).reduce(0.0) { $0 + (vn[(p * h + hd) * dh + $1] - vc[(p * h + hd) * dh + $1]) * gV[(p * h + hd) * dh + $1] }
                    want.append(eff)
                }
            }
        }
        expectClose(star.signed, want, bound: { _ in 1e-11 }, "AtP* head-position q + k + v terms")
        // A head node patches all of its q, k, v: the corrupt z itself, so AtP* scores it by AtP on z.
        let heads = try AtPStar(gradDrop: false).estimate(model, pair: pair, metric: Self.metric, granularity: .heads)
        let atp = try AtP.estimate(model, pair: pair, metric: Self.metric, granularity: .heads)
        #expect(heads.signed == atp.scores, "AtP* heads = AtP on z")
    }

    // MARK: hand-built models

    /// Writes a GPT-2 with the given weights (HF names; missing ones are zeros, LayerNorm gains 1).
    static func buildModel(_ name: String, layers: Int, d: Int, inner: Int, vocab: Int, positions: Int,
                           _ set: (inout [String: [Double]]) -> Void) throws -> DecoderModel {
        let dir = NSTemporaryDirectory() + "attrib-atp-\(name)-\(getpid())"
        try FileHelpers.makeDirectory(dir)
        defer { FileHelpers.remove(dir) }
        var w: [String: [Double]] = [:]
        var shapes: [String: [Int]] = ["wte.weight": [vocab, d], "wpe.weight": [positions, d], "ln_f.weight": [d], "ln_f.bias": [d]]
        for l in 0..<layers {
            let p = "h.\(l)."
            for (k, s) in [("ln_1.weight", [d]), ("ln_1.bias", [d]), ("ln_2.weight", [d]), ("ln_2.bias", [d]),
                           ("attn.c_attn.weight", [d, 3 * d]), ("attn.c_attn.bias", [3 * d]), ("attn.c_proj.weight", [d, d]),
                           ("attn.c_proj.bias", [d]), ("mlp.c_fc.weight", [d, inner]), ("mlp.c_fc.bias", [inner]),
                           ("mlp.c_proj.weight", [inner, d]), ("mlp.c_proj.bias", [d])] { shapes[p + k] = s }
        }
        for (k, s) in shapes { w[k] = [Double](repeating: k.hasSuffix("ln_1.weight") || k.hasSuffix("ln_2.weight") || k == "ln_f.weight" ? 1 : 0, count: s.reduce(1, *)) }
        set(&w)
        try SafeTensorsWriter.write(shapes.keys.sorted().map { ($0, shapes[$0]!, w[$0]!, .F64) }, to: dir + "/model.safetensors")
        try FileHelpers.write("""
        {"model_type": "gpt2", "n_layer": \(layers), "n_head": 1, "n_embd": \(d), "n_positions": \(positions), "vocab_size": \(vocab), "n_inner": \(inner), "layer_norm_epsilon": 1e-5}
        """, dir + "/config.json")
        return try DecoderModel.load(dir, on: cpu, dtype: .float64)
    }

    @Test("A saturated head: AtP's key gradient misses the node, the QK fix finds it")
    func saturatedAttention() throws {
        // Tokens A=0, B=1 (key markers), C=2 (query), D=3, E=4 (metric). Residual dims: 0 = A, 1 = B,
        // 2 = C, 3-5 = positions 0-2, 6/7 = the metric's output direction, 8/9 = ±10 at every position
        // (so every LayerNorm divides by about the same σ and stays near-linear).
        let d = 10
        let model = try Self.buildModel("saturated", layers: 1, d: d, inner: 4, vocab: 5, positions: 3) { w in
            func set(_ k: String, _ i: Int, _ j: Int, _ cols: Int, _ v: Double) { w[k]![i * cols + j] = v }
            set("wte.weight", 0, 0, d, 10); set("wte.weight", 1, 1, d, 10); set("wte.weight", 2, 2, d, 1)
            set("wte.weight", 3, 6, d, 1); set("wte.weight", 4, 7, d, 1)
            for p in 0..<3 { set("wpe.weight", p, 3 + p, d, 1); set("wpe.weight", p, 8, d, 10); set("wpe.weight", p, 9, d, -10) }
            let a = "h.0.attn.c_attn.weight"
            set(a, 2, 0, 3 * d, 15)            // q = 15·ln[C] along head dim 0
            set(a, 0, d + 0, 3 * d, 15)        // k = 15·ln[A] along head dim 0: query C saturates on key A
            set(a, 3, 2 * d + 1, 3 * d, 1); set(a, 4, 2 * d + 1, 3 * d, -1); set(a, 5, 2 * d + 1, 3 * d, -1)   // v: position 0 vs the rest
            set("h.0.attn.c_proj.weight", 1, 6, d, 10); set("h.0.attn.c_proj.weight", 1, 7, d, -10)
        }
        let pair = PromptPair(clean: [0, 1, 2], corrupt: [1, 1, 2])
        let metric = TokenMetric.logitDifference(target: [3], contrast: [4])
        let exact = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .headPositions)
        let atp = try AtP.estimate(model, pair: pair, metric: metric, granularity: .headPositions)
        let star = try AtPStar().estimate(model, pair: pair, metric: metric, granularity: .headPositions)
        let node = 0                                   // L0H0@0: the key that moves
        let pattern = try model.forward([pair.clean], cache: [HookPoint(.attnPattern, layer: 0)]).cache[HookPoint(.attnPattern, layer: 0)]!.doubles()
        #expect(pattern[6] > 1 - 1e-6, "row 2 saturates on key 0: \(pattern[6])")
        #expect(abs(exact.scores[node]) > 0.05, "the node matters: exact \(exact.scores[node])")
        #expect(abs(atp.scores[node]) < 0.01 * abs(exact.scores[node]), "AtP misses it: \(atp.scores[node]) vs exact \(exact.scores[node])")
        #expect(abs(star.scores.scores[node] - abs(exact.scores[node])) < 0.35 * abs(exact.scores[node]),
                "AtP* finds it: \(star.scores.scores[node]) vs exact \(exact.scores[node])")
        #expect(star.scores.ranking().first == node)
        print("saturated head: exact \(exact.scores[node]), AtP \(atp.scores[node]), AtP* \(star.scores.scores[node]) (signed \(star.signed[node]))")
    }

    /// A 2-layer model where neuron L0N0 writes the metric direction (direct effect) and feeds L1N0,
    /// which writes it back with weight −c (indirect effect); L1N0 is linear at the clean prompt and off
    /// at the patched value, so its linearisation is wrong.
    static func cancellationModel(_ c: Double) throws -> DecoderModel {
        let d = 8
        // Dims: (0, 4) = the input feature ±s, (1, 5) = r written by L0N0, (2, 6) = the metric's o,
        // (3, 7) = ±10 (so the LayerNorms divide by about the same σ and stay near-linear).
        return try buildModel("cancel", layers: 2, d: d, inner: 4, vocab: 4, positions: 1) { w in
            func set(_ k: String, _ i: Int, _ j: Int, _ cols: Int, _ v: Double) { w[k]![i * cols + j] = v }
            for (tok, s) in [(0, 1.0), (1, -1.0)] {
                set("wte.weight", tok, 0, d, s); set("wte.weight", tok, 4, d, -s); set("wte.weight", tok, 3, d, 10); set("wte.weight", tok, 7, d, -10)
            }
            set("wte.weight", 2, 2, d, 1); set("wte.weight", 2, 6, d, -1)
            set("wte.weight", 3, 2, d, -1); set("wte.weight", 3, 6, d, 1)
            set("h.0.mlp.c_fc.weight", 0, 0, 4, 10); w["h.0.mlp.c_fc.bias"]![0] = 1
            for (j, v) in [(1, 1.0), (5, -1.0), (2, 1.0), (6, -1.0)] { set("h.0.mlp.c_proj.weight", 0, j, d, v) }
            // L1N0: linear at the clean prompt (pre ≈ 0.75), off once L0N0 is patched (pre ≈ −2.9).
            set("h.1.mlp.c_fc.weight", 1, 0, 4, 5); w["h.1.mlp.c_fc.bias"]![0] = -2
            for (j, v) in [(2, -c), (6, c)] { set("h.1.mlp.c_proj.weight", 0, j, d, v) }
        }
    }

    @Test("Cancelling direct and indirect effects: AtP ≈ 0, GradDrop recovers the node")
    func gradDropCancellation() throws {
        let pair = PromptPair(clean: [0], corrupt: [1])
        let metric = TokenMetric.logitDifference(target: [2], contrast: [3])
        func atp(_ c: Double) throws -> Double {
            try AtP.estimate(Self.cancellationModel(c), pair: pair, metric: metric, granularity: .neurons).scores[0]
        }
        // c where the first-order direct and indirect terms cancel, by bisection.
        var lo = 0.0, hi = 8.0
        let sLo = try atp(lo)
        #expect(sLo * (try atp(hi)) < 0, "the indirect path can cancel the direct one")
        for _ in 0..<50 { let mid = (lo + hi) / 2; if (try atp(mid)) * sLo > 0 { lo = mid } else { hi = mid } }
        let model = try Self.cancellationModel((lo + hi) / 2)
        let exact = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .neurons)
        let plain = try AtP.estimate(model, pair: pair, metric: metric, granularity: .neurons)
        let star = try AtPStar().estimate(model, pair: pair, metric: metric, granularity: .neurons)
        #expect(abs(exact.scores[0]) > 0.1, "L0N0 matters: exact \(exact.scores[0])")
        #expect(abs(plain.scores[0]) < 1e-6, "AtP cancels: \(plain.scores[0])")
        #expect(star.scores.scores[0] > 0.3 * abs(exact.scores[0]), "GradDrop recovers: \(star.scores.scores[0]) vs exact \(exact.scores[0])")
        print("cancellation: exact \(exact.scores[0]), AtP \(plain.scores[0]), AtP* \(star.scores.scores[0]); L1N0 exact \(exact.scores[4]) AtP* \(star.scores.scores[4])")
        #expect(star.perDrop.count == 2 && star.perDrop[0][0] == 0, "dropping the node's own layer gives 0")
    }

    // MARK: false negatives, devices, bad input

    @Test("False-negative diagnostic: verified effects are exact, the bound is Clopper–Pearson")
    func falseNegatives() throws {
        #expect(abs(FalseNegativeCheck.clopperPearsonUpper(successes: 0, trials: 20, confidence: 0.95) - (1 - pow(0.05, 1.0 / 20))) < 1e-12)
        // x = 2 of n = 20 at 95%: 0.28262 (scipy beta.ppf(0.95, 3, 18)).
        #expect(abs(FalseNegativeCheck.clopperPearsonUpper(successes: 2, trials: 20, confidence: 0.95) - 0.282619) < 1e-5)
        let model = try DecoderModel.load(Self.dir, on: cpu, dtype: .float64)
        let pair = PromptPair(clean: Self.clean, corrupt: Self.corrupt)
        let star = try AtPStar().estimate(model, pair: pair, metric: Self.metric, granularity: .neurons)
        let r = try FalseNegativeCheck.run(model, pair: pair, metric: Self.metric, granularity: .neurons, scores: star.scores.scores,
                                           topK: 10, samples: 40, seed: 7)
        let exact = try ActivationPatching.effects(model, pair: pair, metric: Self.metric, granularity: .neurons)
        #expect(r.verified.count == 50 && r.sampled == 40 && r.population == 256 - 10 && r.unverified == 206)
        for (i, e) in r.verified { #expect(abs(e - exact.scores[i]) < 1e-12) }
        let x = r.verified.suffix(40).filter { abs($0.effect) > r.threshold }.count
        #expect(r.exceedances == x && r.upperBound >= Double(x) / 40 && r.upperBound <= 1)
        let again = try FalseNegativeCheck.run(model, pair: pair, metric: Self.metric, granularity: .neurons, scores: star.scores.scores,
                                               topK: 10, samples: 40, seed: 7)
        #expect(again.verified.map(\.index) == r.verified.map(\.index), "seeded")
    }

    @Test("OpenCL AtP, AtP* and exact patching match the CPU backend")
    func openCLMatchesCPU() throws {
        let pair = PromptPair(clean: Self.clean, corrupt: Self.corrupt)
        let ref = try DecoderModel.load(Self.dir, on: cpu)
        for device in openCLDevices {
            let model = try DecoderModel.load(Self.dir, on: device)
            for g in ComponentGranularity.allCases {
                let a = try AtPStar().estimate(model, pair: pair, metric: Self.metric, granularity: g).scores.scores
                let b = try AtPStar().estimate(ref, pair: pair, metric: Self.metric, granularity: g).scores.scores
                let scale = max(b.map(abs).max() ?? 1, 1e-3)
                expectClose(a, b, bound: { _ in 2e-4 * scale }, "\(device.id) AtP* \(g.rawValue)")
                let pa = try AtP.estimate(model, pair: pair, metric: Self.metric, granularity: g).scores
                let pb = try AtP.estimate(ref, pair: pair, metric: Self.metric, granularity: g).scores
                expectClose(pa, pb, bound: { _ in 2e-4 * scale }, "\(device.id) AtP \(g.rawValue)")
            }
            let ea = try ActivationPatching.effects(model, pair: pair, metric: Self.metric, granularity: .heads).scores
            let eb = try ActivationPatching.effects(ref, pair: pair, metric: Self.metric, granularity: .heads).scores
            expectClose(ea, eb, bound: { _ in 1e-4 }, "\(device.id) exact heads")
        }
    }

    @Test("Bad input: unequal prompt lengths, unknown granularity, token ids out of range, bad diagnostic arguments")
    func badInput() throws {
        let model = try DecoderModel.load(Self.dir, on: cpu)
        let short = PromptPair(clean: Self.clean, corrupt: Array(Self.corrupt.dropLast()))
        expectAttribError(["8 tokens", "7", "equal length"]) { _ = try AtP.estimate(model, pair: short, metric: Self.metric, granularity: .heads) }
        expectAttribError(["equal length"]) { _ = try AtPStar().estimate(model, pair: short, metric: Self.metric, granularity: .heads) }
        expectAttribError(["equal length"]) { _ = try ActivationPatching.effects(model, pair: short, metric: Self.metric, granularity: .heads) }
        expectAttribError(["unknown node granularity", "layers", "heads, head-positions"]) { _ = try ComponentGranularity(name: "layers") }
        let bad = PromptPair(clean: Self.clean, corrupt: Self.corrupt.dropLast() + [50])
        expectAttribError(["token id 50", "vocabulary 0..<50"]) { _ = try AtP.estimate(model, pair: bad, metric: Self.metric, granularity: .neurons) }
        expectAttribError(["token 99"]) {
            _ = try AtPStar().estimate(model, pair: PromptPair(clean: Self.clean, corrupt: Self.corrupt),
                                       metric: .logitDifference(target: [99], contrast: [1]), granularity: .heads)
        }
        expectAttribError(["top K = 0"]) {
            _ = try FalseNegativeCheck.run(model, pair: PromptPair(clean: Self.clean, corrupt: Self.corrupt), metric: Self.metric,
                                           granularity: .heads, scores: [Double](repeating: 0, count: 8), topK: 0, samples: 2)
        }
        let x = try Tensor.zeros([2, 3, 3], on: cpu)
        expectAttribError(["delta", "must match"]) { _ = try x.atpKeyEffects(delta: try Tensor.zeros([2, 3, 2], on: cpu), grad: x) }
    }
}
