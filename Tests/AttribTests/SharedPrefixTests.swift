import Attrib
import Foundation
import Testing

/// A forward that takes a shared prefix's keys and values from another run and computes only
/// the positions after it (`DecoderModel.forward(_:cache:sharing:)`), against the whole
/// prompt's forward, on every decoder family (learned positions, RoPE, grouped and multi-query
/// KV, a sliding window shorter than the prompt, parallel residual), and AtP with and without it.
@Suite struct SharedPrefixTests {
    static let err = TransformerTests.relativeError

    /// Same device and dtype, the same products with fewer rows: Float64 rounds each sum in a
    /// few ulps of its largest term (1e-12 of the largest value); Float32 sums of K ≤ 256 terms
    /// round to about K·2⁻²⁴ ≈ 1.5e-5 of the largest term per product, through two blocks: 1e-4.
    static func bound(_ dtype: DType) -> Double { dtype == .float64 ? 1e-12 : 1e-4 }

    /// The model at `dir` on every device: Float64 on the CPU, Float32 on each OpenCL device.
    static func onEveryDevice(_ dir: String) throws -> [DecoderModel] {
        try ([cpu as any Device] + openCLDevices).map { try DecoderModel.load(dir, on: $0, dtype: $0 === cpu ? .float64 : .float32) }
    }

    /// Pairs whose corrupt prompt i is clean prompt i with its token at `firsts[i]` changed.
    static func pairs(_ clean: [[Int32]], differingAt firsts: [Int], vocabulary v: Int) -> [PromptPair] {
        clean.enumerated().map { i, c in
            var r = c
            r[firsts[i]] = (r[firsts[i]] + 1) % Int32(v)
            return PromptPair(clean: c, corrupt: r)
        }
    }

    /// Every hook point of every layer, and the corrupt prompts: prompt 0 changed at positions
    /// p and T − 1, prompt 1 at p + 1, so the batch shares exactly p tokens.
    static func setup(_ model: DecoderModel, _ clean: [[Int32]], prefix p: Int) -> (points: Set<HookPoint>, corrupt: [[Int32]]) {
        let c = model.config
        let points = Set((0..<c.nLayer).flatMap { l in c.hookKinds.map { HookPoint($0, layer: l) } })
        var corrupt = clean
        let v = Int32(c.vocabSize)
        corrupt[0][p] = (corrupt[0][p] + 1) % v
        corrupt[0][clean[0].count - 1] = (corrupt[0][clean[0].count - 1] + 3) % v
        corrupt[1][p + 1] = (corrupt[1][p + 1] + 2) % v
        return (points, corrupt)
    }

    /// The cache and last logits of `corrupt` run from `clean`'s prefix against its whole run.
    static func check(_ model: DecoderModel, clean: [[Int32]], prefix p: Int, _ what: String) throws {
        let (points, corrupt) = setup(model, clean, prefix: p)
        #expect(SharedPrefix.commonLength(corrupt, clean) == p, "\(what): common prefix")
        let source = try model.forward(clean, cache: points.union(model.keyValuePoints))
        let shared = try model.forward(corrupt, cache: points, sharing: SharedPrefix(length: p, tokens: clean, cache: source.cache))
        let whole = try model.forward(corrupt, cache: points, logitPositions: .last)
        let b = bound(model.dtype)
        let e = err(try shared.logits.doubles(), try whole.logits.doubles())
        #expect(shared.logits.shape == whole.logits.shape && e <= b, "\(what) p = \(p) logits: \(e)")
        for point in points {
            let got = shared.cache[point]!, want = whole.cache[point]!
            let e = err(try got.doubles(), try want.doubles())
            #expect(got.shape == want.shape && e <= b, "\(what) p = \(p) \(point.name): \(e)")
        }
    }

    @Test("The shared-prefix forward gives the whole forward's logits and every hook point, every family, prefixes 1, T/2 and T − 2, every device")
    func everyFamily() throws {
        let root = DecoderFamilyTests.root
        for family in DecoderFamilyTests.families {
            let clean = try DecoderFamilyTests.tokens(DecoderFamilyTests.reference(family), "tokens_clean")   // [2, 10]
            let t = clean[0].count
            for model in try Self.onEveryDevice(root + "/" + family) {
                for p in [1, t / 2, t - 2] { try Self.check(model, clean: clean, prefix: p, "\(family) \(model.device.info.id) \(model.dtype)") }
            }
        }
        // GPT-2 (learned positions) on the tiny fixture, Float32 on the CPU too.
        let clean = [PatchingTests.clean, PatchingTests.clean.reversed()]
        for dtype in [DType.float64, .float32] {
            let model = try DecoderModel.load(PatchingTests.dir, on: cpu, dtype: dtype)
            for p in [1, 3, 6] { try Self.check(model, clean: clean, prefix: p, "gpt2 cpu \(dtype)") }
        }
    }

    @Test("AtP with the corrupt run from the shared prefix equals AtP with it whole: heads and neurons, GPT-2 and Llama, every device")
    func atpSharesPrefix() throws {
        for (dir, name) in [(PatchingTests.dir, "gpt2"), (DecoderFamilyTests.root + "/llama", "llama")] {
            let clean: [[Int32]] = name == "gpt2" ? [PatchingTests.clean, PatchingTests.clean.reversed(), PatchingTests.clean]
                : try DecoderFamilyTests.tokens(DecoderFamilyTests.reference("llama"), "tokens_clean")   // [2, 10]
            let t = clean[0].count
            for model in try Self.onEveryDevice(dir) {
                let dtype = model.dtype, device = model.device
                // Pairs that differ first at 2, at T − 1, at T/2 (GPT-2's third): one batch shares 2 tokens.
                let pairs = Self.pairs(clean, differingAt: [2, t - 1, t / 2], vocabulary: model.config.vocabSize)
                let metrics = pairs.indices.map { TokenMetric.logitDifference(target: [3 + $0], contrast: [11]) }
                for g in [ComponentGranularity.heads, .neurons] {
                    let shared = try AtP.estimate(model, pairs: pairs, metrics: metrics, granularity: g, batchSize: 3, sharePrefix: true)
                    let whole = try AtP.estimate(model, pairs: pairs, metrics: metrics, granularity: g, batchSize: 3, sharePrefix: false)
                    for k in pairs.indices {
                        let scale = max(whole[k].scores.map(abs).max() ?? 1, 1e-3)
                        expectClose(shared[k].scores, whole[k].scores, bound: { _ in Self.bound(dtype) * scale },
                                    "\(name) \(device.info.id) \(g.rawValue) pair \(k)")
                        #expect(abs(shared[k].corruptMetric - whole[k].corruptMetric) <= Self.bound(dtype) * max(1, abs(whole[k].corruptMetric)))
                        #expect(abs(shared[k].cleanMetric - whole[k].cleanMetric) <= Self.bound(dtype) * max(1, abs(whole[k].cleanMetric)))
                    }
                    // The corrupt prompts differ from the clean ones: the scores are not all zero.
                    #expect(shared.contains { $0.scores.contains { $0 != 0 } })
                }
            }
        }
    }

    @Test("AtP* with the corrupt run from the shared prefix equals AtP* with it whole: heads and head-positions (the QK fix reads the corrupt pattern, q and k), GPT-2 and GPT-NeoX (RoPE), every device")
    func atpStarSharesPrefix() throws {
        for (dir, name) in [(PatchingTests.dir, "gpt2"), (DecoderFamilyTests.root + "/gpt_neox", "gpt_neox")] {
            let clean: [[Int32]] = name == "gpt2" ? [PatchingTests.clean, PatchingTests.clean.reversed()]
                : try DecoderFamilyTests.tokens(DecoderFamilyTests.reference("gpt_neox"), "tokens_clean")   // [2, 10]
            let t = clean[0].count
            for model in try Self.onEveryDevice(dir) {
                let dtype = model.dtype, device = model.device
                let pairs = Self.pairs(clean, differingAt: [t / 2, t - 2], vocabulary: model.config.vocabSize)
                let metric = TokenMetric.logitDifference(target: [3, 4], contrast: [11, 12])
                for g in [ComponentGranularity.heads, .headPositions] {
                    var on = AtPStar(), off = AtPStar()
                    on.sharePrefix = true; off.sharePrefix = false
                    let shared = try on.estimate(model, pairs: pairs, metric: metric, granularity: g)
                    let whole = try off.estimate(model, pairs: pairs, metric: metric, granularity: g)
                    for k in pairs.indices {
                        let scale = max(whole[k].signed.map(abs).max() ?? 1, 1e-3)
                        let what = "\(name) \(device.info.id) \(g.rawValue) pair \(k)"
                        expectClose(shared[k].scores.scores, whole[k].scores.scores, bound: { _ in Self.bound(dtype) * scale }, what)
                        expectClose(shared[k].signed, whole[k].signed, bound: { _ in Self.bound(dtype) * scale }, what + " signed")
                    }
                    #expect(shared.contains { $0.signed.contains { $0 != 0 } })
                }
            }
        }
    }

    @Test("Patched rows from a one-prompt shared prefix equal the whole patched forward: slices before, across and after the prefix, the pattern's queries, every device")
    func patchedRows() throws {
        for model in try Self.onEveryDevice(PatchingTests.dir) {
            let dtype = model.dtype, device = model.device
            let clean = PatchingTests.clean, t = clean.count, p = 4
            var corrupt = clean
            corrupt[p] = 30; corrupt[t - 1] = 44
            let points = Set((0..<2).flatMap { l in model.config.hookKinds.map { HookPoint($0, layer: l) } })
            let source = try model.forward([clean], cache: points.union(model.keyValuePoints), logitPositions: .last)
            let prefix = SharedPrefix(length: p, tokens: [clean], cache: source.cache)
            let corruptRun = try model.forward([corrupt], cache: points, sharing: prefix)
            let slices: [NodeSlice] = [
                NodeSlice(HookPoint(.attnZ, layer: 0), head: 1),                           // every position: clipped to p…
                NodeSlice(HookPoint(.attnZ, layer: 1), head: 0, position: p + 1),
                NodeSlice(HookPoint(.mlpPost, layer: 0), position: 1, index: 3),            // below p: no change
                NodeSlice(HookPoint(.mlpPost, layer: 1), position: t - 1),
                NodeSlice(HookPoint(.attnPattern, layer: 1), head: 2),                      // every query of a head
                NodeSlice(HookPoint(.attnPattern, layer: 0), head: 1, position: p + 2, index: 1),
                NodeSlice(HookPoint(.attnV, layer: 0), position: p),
                NodeSlice(HookPoint(.residPre, layer: 1)),
            ]
            let patches = slices.enumerated().map { r, n in ActivationPatch(row: r, node: n, source: corruptRun.cache[n.point]!) }
            let rows = Array(repeating: clean, count: slices.count)
            let shared = try model.forward(rows, cache: [HookPoint(.attnZ, layer: 1)], sharing: prefix, patches: patches)
            let whole = try model.forward(rows, cache: [HookPoint(.attnZ, layer: 1)], patches: patches, logitPositions: .last)
            let e = Self.err(try shared.logits.doubles(), try whole.logits.doubles())
            #expect(e <= Self.bound(dtype), "\(device.info.id) patched logits: \(e)")
            let z = Self.err(try shared.cache[HookPoint(.attnZ, layer: 1)]!.doubles(), try whole.cache[HookPoint(.attnZ, layer: 1)]!.doubles())
            #expect(z <= Self.bound(dtype), "\(device.info.id) patched z: \(z)")
            // The patches changed the rows: the logits are not all the clean prompt's.
            let cleanLogits = try source.logits.doubles(), v = cleanLogits.count
            let got = try shared.logits.doubles()
            #expect((0..<slices.count).contains { r in Self.err(Array(got[r * v..<(r + 1) * v]), cleanLogits) > 1e-3 })
            // Exact patching of every node, from the prefix and whole.
            let pair = PromptPair(clean: clean, corrupt: corrupt)
            for g in [ComponentGranularity.heads, .headPositions, .neuronPositions] {
                let a = try ActivationPatching.effects(model, pair: pair, metric: PatchingTests.metric, granularity: g, sharePrefix: true)
                let b = try ActivationPatching.effects(model, pair: pair, metric: PatchingTests.metric, granularity: g, sharePrefix: false)
                let scale = max(b.scores.map(abs).max() ?? 1, 1e-3)
                expectClose(a.scores, b.scores, bound: { _ in Self.bound(dtype) * scale }, "\(device.info.id) exact \(g.rawValue)")
                #expect(abs(a.corruptMetric - b.corruptMetric) <= Self.bound(dtype) * max(1, abs(b.corruptMetric)))
            }
        }
    }

    @Test("The common prefix of two batches; bad shared prefixes are refused, naming the prompt, position or hook point")
    func badPrefixes() throws {
        #expect(SharedPrefix.commonLength([[1, 2, 3, 4]], [[1, 2, 3, 4]]) == 3)        // at least the last position is computed
        #expect(SharedPrefix.commonLength([[1, 2, 3, 4], [1, 9, 3, 4]], [[1, 2, 3, 5], [1, 2, 3, 4]]) == 1)
        #expect(SharedPrefix.commonLength([[7, 2]], [[1, 2]]) == 0)
        #expect(SharedPrefix.commonLength([[1, 2]], [[1, 2], [1, 2]]) == 0)            // different batch sizes
        let model = try DecoderModel.load(PatchingTests.dir, on: cpu)
        let clean = [PatchingTests.clean]
        let points: Set<HookPoint> = [HookPoint(.attnZ, layer: 0)]
        let source = try model.forward(clean, cache: points.union(model.keyValuePoints))
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        var corrupt = clean
        corrupt[0][2] = 30
        let inside = message { _ = try model.forward(corrupt, cache: points, sharing: SharedPrefix(length: 4, tokens: clean, cache: source.cache)) }
        #expect(inside.contains("prompt 0") && inside.contains("position 2"), "\(inside)")
        let none = message { _ = try model.forward(clean, cache: points, sharing: SharedPrefix(length: 0, tokens: clean, cache: source.cache)) }
        #expect(none.contains("shared prefix of 0"), "\(none)")
        let all = message { _ = try model.forward(clean, cache: points, sharing: SharedPrefix(length: 8, tokens: clean, cache: source.cache)) }
        #expect(all.contains("shared prefix of 8"), "\(all)")
        let noKV = try model.forward(clean, cache: points)
        let missing = message { _ = try model.forward(corrupt, cache: points, sharing: SharedPrefix(length: 2, tokens: clean, cache: noKV.cache)) }
        #expect(missing.contains("cached no") && missing.contains("blocks."), "\(missing)")
        let mlp = HookPoint(.mlpPost, layer: 1)
        let unsourced = message { _ = try model.forward(corrupt, cache: [mlp], sharing: SharedPrefix(length: 2, tokens: clean, cache: source.cache)) }
        #expect(unsourced.contains(mlp.name), "\(unsourced)")
    }
}
