import Attrib
import Foundation
import Testing

/// Decoder families against transformers: Llama (llama3 RoPE scaling, grouped KV, tied),
/// Qwen2 (qkv bias), Mistral (multi-query, sliding window shorter than the prompt), Gemma
/// (head_dim ≠ D/H, GeGLU, √D embeddings, 1 + w RMSNorm), GPT-NeoX (parallel residual, partial
/// rotary, fused qkv). Fixtures: Tests/Fixtures/llm/make_llm_fixtures.py (tiny random models
/// saved by transformers, references in float64).
@Suite struct DecoderFamilyTests {
    static let families = ["llama", "qwen2", "mistral", "gemma", "gpt_neox"]
    static var root: String { ProcessInfo.processInfo.environment["ATTRIB_LLM_FIXTURES"] ?? fixturePath("llm") }

    /// Float32: two blocks of products of K ≤ 256 terms, softmax and RMSNorm on random weights,
    /// and RoPE in transformers' float32 angles against the float64 reference's exact ones:
    /// 1e-4 normwise, as GPT-2's. Float64: the reference is float64 throughout (the fixture
    /// script replaces transformers' float32 RMSNorm, softmax and RoPE by float64 ones), so the
    /// bound is rounding in double over the same chains: 1e-10.
    static func bound(_ dtype: DType) -> Double { dtype == .float64 ? 1e-10 : 1e-4 }

    static func reference(_ family: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: root + "/" + family + "/reference.safetensors")
    }
    static func tokens(_ ref: SafeTensorsFile, _ name: String) throws -> [[Int32]] {
        let ids = try ref.int32s(name), t = try ref.entry(name).shape[1]
        return stride(from: 0, to: ids.count, by: t).map { Array(ids[$0..<($0 + t)]) }
    }
    static func metric(_ ref: SafeTensorsFile) throws -> TokenMetric {
        let m = try ref.int32s("metric_tokens").map(Int.init)
        return .logitDifference(target: [m[0], m[2]], contrast: [m[1], m[3]])
    }
    static let err = TransformerTests.relativeError

    /// Logits, the metric, and the gradients of the metric at the embeddings and at every
    /// hook the reference holds (q, k, v before RoPE, pattern, z, resid_pre, mlp_post).
    static func check(_ family: String, _ device: any Device, _ dtype: DType) throws {
        let ref = try reference(family)
        let model = try DecoderModel.load(root + "/" + family, on: device, dtype: dtype)
        let clean = try tokens(ref, "tokens_clean")
        let e = err(try model.logits(clean).doubles(), try ref.doubles("logits_clean"))
        #expect(e <= bound(dtype), "\(family) \(device.info.id) \(dtype) logits: \(e)")
        let kinds: [String: HookKind] = ["q": .attnQ, "k": .attnK, "v": .attnV, "pattern": .attnPattern, "z": .attnZ,
                                         "resid_pre": .residPre, "mlp_post": .mlpPost]
        let points = Set(kinds.values.flatMap { k in (0..<2).map { HookPoint(k, layer: $0) } })
        let g = try model.gradients(clean, metric: metric(ref), nodes: points)
        #expect(err(g.values, try ref.doubles("metric_clean")) <= bound(dtype), "\(family) metric")
        #expect(err(try g.gradients.embeddings.doubles(), try ref.doubles("grad.embed")) <= bound(dtype), "\(family) ∂L/∂embeddings")
        for (name, kind) in kinds {
            for l in 0..<2 {
                let e = err(try g.gradients.nodes[HookPoint(kind, layer: l)]!.doubles(), try ref.doubles("grad.\(name).\(l)"))
                #expect(e <= bound(dtype), "\(family) \(device.info.id) \(dtype) ∂L/∂\(name).\(l): \(e)")
            }
        }
    }

    @Test("logits equal transformers' on the CPU backend (Float64 1e-9, Float32 1e-4)", arguments: families)
    func cpuLogits(_ family: String) throws {
        try Self.check(family, cpu, .float64)
        try Self.check(family, cpu, .float32)
    }

    @Test("logits equal transformers' on every OpenCL device (Float32 1e-4)", arguments: families)
    func openCLLogits(_ family: String) throws {
        for d in openCLDevices { try Self.check(family, d, .float32) }
    }

    @Test("sharded weights (model.safetensors.index.json) load to the same model as one file")
    func sharded() throws {
        let ref = try Self.reference("llama")
        let model = try DecoderModel.load(Self.root + "/llama-sharded", on: cpu, dtype: .float64)
        #expect(Self.err(try model.logits(Self.tokens(ref, "tokens_clean")).doubles(), try ref.doubles("logits_clean")) <= 1e-10)
    }

    @Test("exact patching and AtP equal PyTorch's hooks on a tiny Llama (grouped KV) and a tiny GPT-NeoX (parallel, partial rotary)",
          arguments: ["llama", "gpt_neox"])
    func patching(_ family: String) throws {
        let ref = try Self.reference(family)
        let model = try DecoderModel.load(Self.root + "/" + family, on: cpu, dtype: .float64)
        let clean = try Self.tokens(ref, "tokens_clean"), corrupt = try Self.tokens(ref, "tokens_corrupt")
        let m = try ref.int32s("metric_tokens").map(Int.init)
        let c = model.config
        for b in 0..<2 {
            let pair = PromptPair(clean: clean[b], corrupt: corrupt[b])
            let metric = TokenMetric.logitDifference(target: [m[2 * b]], contrast: [m[2 * b + 1]])
            func row(_ key: String, _ per: Int) throws -> [Double] { Array(try ref.doubles(key)[(b * 2 * per)..<((b + 1) * 2 * per)]) }
            // Float64 throughout, differences of metrics of O(1): 1e-9 absolute-relative.
            let heads = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .heads).scores
            #expect(Self.err(heads, try row("patch.z", c.nHead)) <= 1e-9, "\(family) row \(b) patch z")
            let neurons = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .neurons, batchSize: 64).scores
            #expect(Self.err(neurons, try row("patch.mlp_post", c.nInner)) <= 1e-9, "\(family) row \(b) patch neurons")
            #expect(Self.err(try AtP.estimate(model, pair: pair, metric: metric, granularity: .heads).scores, try row("atp.z", c.nHead)) <= 1e-9)
            #expect(Self.err(try AtP.estimate(model, pair: pair, metric: metric, granularity: .neurons).scores, try row("atp.mlp_post", c.nInner)) <= 1e-9)
            // One key/value head's k (before RoPE) at every position.
            let source = try model.forward([pair.corrupt], cache: [HookPoint(.attnK, layer: 0), HookPoint(.attnK, layer: 1)]).cache
            let kNodes = (0..<2).flatMap { l in (0..<c.nKVHead).map { NodeSlice(HookPoint(.attnK, layer: l), head: $0) } }
            let kEffects = try model.patchingEffects(clean: pair.clean, metric: metric, nodes: kNodes, source: source)
            #expect(Self.err(kEffects, try row("patch.k", c.nKVHead)) <= 1e-9, "\(family) row \(b) patch k")
        }
    }

    /// AtP*'s QK fix on head-position nodes of a RoPE model (GPT-NeoX: partial rotary) against a
    /// brute force that recomputes every patched softmax row from the rotated q and k: node (h, t)
    /// = query term Σ_s (softmax(q'_t·K)_s − A_ts)·∂L/∂A_ts + key term Σ_{t' ≥ t} (row t' with k_t
    /// replaced, re-softmaxed − A_t')·∂L/∂A_t' + value term Δv_t·∂L/∂v_t. And on head nodes of a
    /// grouped-KV Llama, AtP* without GradDrop is AtP on z (patching a whole head gives the corrupt
    /// z, exact in the softmax already).
    /// AtP*'s head-position scores (QK fix, no GradDrop) by brute force: every patched softmax
    /// row recomputed with the corrupt query at the node's position, or the corrupt key there,
    /// the change in the pattern times the metric's gradient there, plus the value's term.
    /// Needs k and v per query head ([T, H, d_h]): a multi-head model, or an ungrouped one.
    static func qkBruteForce(_ model: DecoderModel, clean: [Int32], corrupt: [Int32], metric: TokenMetric) throws -> [Double] {
        let c = model.config, (h, dh, layers) = (c.nHead, c.headDim, c.nLayer)
        let t = clean.count
        let points = Set((0..<layers).flatMap { l in [HookKind.attnRotQ, .attnRotK, .attnV, .attnPattern].map { HookPoint($0, layer: l) } })
        let cr = try model.forward([corrupt], cache: points).cache
        let g = try model.gradients([clean], metric: metric, nodes: points, logitPositions: .all)
        func host(_ cache: [HookPoint: Tensor], _ k: HookKind, _ l: Int) throws -> [Double] { try cache[HookPoint(k, layer: l)]!.doubles() }
        let scale = 1 / Double(dh).squareRoot()
        var want = [Double](repeating: 0, count: layers * h * t)
        for l in 0..<layers {
            let q = try host(g.run.cache, .attnRotQ, l), k = try host(g.run.cache, .attnRotK, l), v = try host(g.run.cache, .attnV, l)
            let qn = try host(cr, .attnRotQ, l), kn = try host(cr, .attnRotK, l), vn = try host(cr, .attnV, l)
            let a = try host(g.run.cache, .attnPattern, l)
            let gA = try g.gradients.nodes[HookPoint(.attnPattern, layer: l)]!.doubles()
            let gv = try g.gradients.nodes[HookPoint(.attnV, layer: l)]!.doubles()        // [T, H, d_h]
            func dot(_ x: [Double], _ i: Int, _ y: [Double], _ j: Int) -> Double { (0..<dh).reduce(0) { $0 + x[i + $1] * y[j + $1] } }
            // Softmax of row tq of head hd with the query from `query` and key s from keys(s).
            func row(_ hd: Int, _ tq: Int, query: [Double], keys: (Int) -> [Double]) -> [Double] {
                let s = (0...tq).map { sk in scale * dot(query, (tq * h + hd) * dh, keys(sk), (sk * h + hd) * dh) }
                let mx = s.max()!, e = s.map { Foundation.exp($0 - mx) }, z = e.reduce(0, +)
                return e.map { $0 / z }
            }
            func change(_ p: [Double], _ hd: Int, _ tq: Int) -> Double {
                let base = (hd * t + tq) * t
                return (0...tq).reduce(0.0) { $0 + (p[$1] - a[base + $1]) * gA[base + $1] }
            }
            for hd in 0..<h {
                for pos in 0..<t {
                    var total = change(row(hd, pos, query: qn) { _ in k }, hd, pos)                       // query at pos
                    for tq in pos..<t { total += change(row(hd, tq, query: q) { $0 == pos ? kn : k }, hd, tq) }   // key at pos
                    total += (0..<dh).reduce(0.0) { $0 + (vn[(pos * h + hd) * dh + $1] - v[(pos * h + hd) * dh + $1]) * gv[(pos * h + hd) * dh + $1] }
                    want[(l * h + hd) * t + pos] = total
                }
            }
        }
        return want
    }

    @Test("AtP* QK fix on RoPE head-positions equals a brute force over every patched softmax; on heads it is AtP on z")
    func qkFix() throws {
        let ref = try Self.reference("gpt_neox")
        let model = try DecoderModel.load(Self.root + "/gpt_neox", on: cpu, dtype: .float64)
        let clean = try Self.tokens(ref, "tokens_clean")[0], corrupt = try Self.tokens(ref, "tokens_corrupt")[0]
        let m = try ref.int32s("metric_tokens").map(Int.init)
        let metric = TokenMetric.logitDifference(target: [m[0]], contrast: [m[1]])
        let got = try AtPStar(qkFix: true, gradDrop: nil).estimate(model, pair: PromptPair(clean: clean, corrupt: corrupt), metric: metric,
                                                                   granularity: .headPositions).signed
        let want = try Self.qkBruteForce(model, clean: clean, corrupt: corrupt, metric: metric)
        // Float64, the same sums in another order: 1e-9.
        #expect(Self.err(got, want) <= 1e-9, "\(got) vs \(want)")

        let llama = try DecoderModel.load(Self.root + "/llama", on: cpu, dtype: .float64)
        let lref = try Self.reference("llama")
        let pair = PromptPair(clean: try Self.tokens(lref, "tokens_clean")[0], corrupt: try Self.tokens(lref, "tokens_corrupt")[0])
        let star = try AtPStar(qkFix: true, gradDrop: nil).estimate(llama, pair: pair, metric: metric, granularity: .heads).signed
        #expect(star == (try AtP.estimate(llama, pair: pair, metric: metric, granularity: .heads).scores))
    }

    /// Head-position nodes on a grouped-query model run on its ungrouped form (each query head
    /// its own copy of its key and value: TransformerLens's ungroup_grouped_query_attention).
    @Test("grouped-query head-positions: the ungrouped Llama has the grouped one's logits, and AtP*'s QK fix on it equals the brute force; the grouped model refuses the nodes, naming ungrouped()")
    func groupedQKFix() throws {
        let lref = try Self.reference("llama")
        let llama = try DecoderModel.load(Self.root + "/llama", on: cpu, dtype: .float64)
        #expect(llama.config.nKVHead < llama.config.nHead)
        let u = try llama.ungrouped()
        #expect(u.config.nKVHead == u.config.nHead && u.config.nHead == llama.config.nHead)
        let clean = try Self.tokens(lref, "tokens_clean")[0], corrupt = try Self.tokens(lref, "tokens_corrupt")[0]
        // The same products (each repeated key row computes the same values), summed in other
        // orders only where BLAS blocks the wider k and v products differently: Float64 1e-12.
        #expect(Self.err(try u.logits([clean]).doubles(), try llama.logits([clean]).doubles()) <= 1e-12)
        let m = try lref.int32s("metric_tokens").map(Int.init)
        let metric = TokenMetric.logitDifference(target: [m[0]], contrast: [m[1]])
        let pair = PromptPair(clean: clean, corrupt: corrupt)
        let got = try AtPStar(qkFix: true, gradDrop: nil).estimate(u, pair: pair, metric: metric, granularity: .headPositions).signed
        let want = try Self.qkBruteForce(u, clean: clean, corrupt: corrupt, metric: metric)
        #expect(Self.err(got, want) <= 1e-9, "\(got) vs \(want)")
        expectAttribError(["ungrouped()", "key/value heads"]) {
            _ = try AtP.estimate(llama, pair: pair, metric: metric, granularity: .headPositions)
        }
        #expect(try llama.ungrouped().ungrouped().config.nKVHead == llama.config.nHead)
    }

    @Test("bad input: a truncated shard, a tensor missing from the index, an unknown config field or RoPE type, unequal prompt lengths")
    func badInput() throws {
        func copy(_ name: String) throws -> String {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-llm-\(UUID().uuidString)").path
            try FileManager.default.copyItem(atPath: Self.root + "/" + name, toPath: dir)
            return dir
        }
        let sharded = try copy("llama-sharded")
        let shard = sharded + "/model-00002-of-00003.safetensors"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: shard))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: shard))
        expectAttribError([shard, "truncated"]) { _ = try DecoderModel.load(sharded, on: cpu) }

        let missing = try copy("llama-sharded")
        let indexURL = URL(fileURLWithPath: missing + "/model.safetensors.index.json")
        var index = try JSONSerialization.jsonObject(with: Data(contentsOf: indexURL)) as! [String: Any]
        var map = index["weight_map"] as! [String: String]
        map["model.layers.1.mlp.up_proj.weight"] = nil
        index["weight_map"] = map
        try JSONSerialization.data(withJSONObject: index).write(to: indexURL)
        expectAttribError(["model.layers.1.mlp.up_proj.weight", "missing from the index"]) { _ = try DecoderModel.load(missing, on: cpu) }

        for (key, value, fragment) in [("attn_logit_softcapping", 30.0 as Any, "\"attn_logit_softcapping\""),
                                       ("rope_parameters", ["rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0] as Any, "rope_type \"yarn\"")] {
            let dir = try copy("llama")
            let url = URL(fileURLWithPath: dir + "/config.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            json[key] = value
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            expectAttribError([dir + "/config.json", fragment]) { _ = try DecoderModel.load(dir, on: cpu) }
        }
        let model = try DecoderModel.load(Self.root + "/llama", on: cpu)
        expectAttribError(["prompt 1 has 3 tokens", "equal lengths"]) { _ = try model.logits([[1, 2], [1, 2, 3]]) }
        expectAttribError(["head-position nodes", "4 query heads sharing 2"]) {
            _ = try AtP.estimate(model, pair: PromptPair(clean: [1, 2], corrupt: [1, 3]), metric: .logitDifference(target: [1], contrast: [2]), granularity: .headPositions)
        }
    }

    @Test("exact patching's default batch follows the device's memory: fewer rows for longer prompts, never 0")
    func batchRowsFromMemory() throws {
        let model = try DecoderModel.load(Self.root + "/llama", on: cpu)
        let short = model.patchingBatchRows(tokens: 10), long = model.patchingBatchRows(tokens: 64)
        #expect(short >= long && long >= 1 && short <= 256)
        // The estimate grows with T² through the attention's [H, T, T] values.
        #expect(model.forwardBytesPerRow(tokens: 64) > 16 * model.forwardBytesPerRow(tokens: 4))
        // Same numbers with any batch: the memory-derived default and one row per forward.
        let ref = try Self.reference("llama")
        let pair = PromptPair(clean: try Self.tokens(ref, "tokens_clean")[0], corrupt: try Self.tokens(ref, "tokens_corrupt")[0])
        let metric = TokenMetric.logitDifference(target: [3], contrast: [11])
        let a = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .heads).scores
        let b = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: .heads, batchSize: 1).scores
        #expect(Self.err(a, b) <= 1e-5, "\(a) vs \(b)")
    }

    @Test("GradDrop from a block's output gradient (backwardBelow) equals the full backward with the block's contributions stopped, every family and layer")
    func gradDropBelow() throws {
        for family in Self.families {
            var c = try DecoderConfig.read(Self.root + "/" + family + "/config.json")
            c.nLayer = 4
            let model = try DecoderModel.random(c, seed: 5, on: cpu, dtype: .float64)
            let tokens: [[Int32]] = [[1, 5, 9, 2, 7, 3], [4, 4, 8, 1, 6, 2]]
            let metric = TokenMetric.logitDifference(target: [3, 6], contrast: [2, 9])
            let run = try model.forward(tokens, keepForBackward: true, logitPositions: .last)
            let (_, upstream) = try metric.evaluate(run.logits)
            let kinds = c.hookKinds.filter { $0 != .residPost }
            let all = Set((0..<4).flatMap { l in kinds.map { HookPoint($0, layer: l) } })
            let plain = try model.backward(run, upstream: upstream, nodes: Set((1..<4).map { HookPoint(.residPost, layer: $0) })).nodes
            for d in 1..<4 {
                let below = all.filter { $0.layer < d }
                let full = try model.backward(run, upstream: upstream, nodes: below, gradDrop: [d]).nodes
                let fast = try model.backwardBelow(run, layer: d, residualGradient: plain[HookPoint(.residPost, layer: d)]!, nodes: below)
                for p in below {
                    let a = try fast[p]!.doubles(), b = try full[p]!.doubles()
                    // Float64, the same products in the same order below d: equal to rounding.
                    #expect(Self.err(a, b) <= 1e-12, "\(family) drop \(d) \(p)")
                }
                // Dropping changes the gradients below (else the check above proves nothing).
                let undropped = try model.backward(run, upstream: upstream, nodes: below).nodes
                #expect(try below.contains { try undropped[$0]!.doubles() != full[$0]!.doubles() }, "\(family) drop \(d)")
            }
            #expect(throws: AttribError.self) { try model.backwardBelow(run, layer: 2, residualGradient: plain[HookPoint(.residPost, layer: 2)]!, nodes: [HookPoint(.attnZ, layer: 2)]) }
            #expect(throws: AttribError.self) { try model.backwardBelow(run, layer: 0, residualGradient: plain[HookPoint(.residPost, layer: 1)]!, nodes: []) }
        }
    }

    @Test("random-weight decoders (bench lm --random): any family's config, finite logits, the same weights on every build")
    func randomWeights() throws {
        for family in Self.families {
            let c = try DecoderConfig.read(Self.root + "/" + family + "/config.json")
            let a = try DecoderModel.random(c, seed: 3, on: cpu), b = try DecoderModel.random(c, seed: 3, on: cpu)
            let la = try a.logits([[1, 2, 3]]).doubles(), lb = try b.logits([[1, 2, 3]]).doubles()
            #expect(la.count == 3 * c.vocabSize && la.allSatisfy(\.isFinite) && la == lb, "\(family)")
            #expect(try DecoderModel.random(c, seed: 4, on: cpu).logits([[1, 2, 3]]).doubles() != la, "\(family): the seed changes the weights")
        }
        expectAttribError(["GPT-2 configs are not supported"]) {
            _ = try DecoderModel.random(DecoderConfig(nLayer: 1, nHead: 1, nEmbd: 4, nPositions: 4, vocabSize: 4), on: cpu)
        }
    }

    /// The GGUF loader against the same float64 references: tiny Llama (llama.cpp's q/k row
    /// order, Llama 3 RoPE as rope_freqs divisors, tied) and Qwen2 (biases, no permutation)
    /// written as llama.cpp lays them out (Tests/Fixtures/gguf/make_decoder_ggufs.py), F32.
    @Test("GGUF decoders (llama with permuted q/k and rope_freqs, qwen2 with biases, gemma with 1 + w norms, gptneox with regrouped qkv) equal the Hugging Face references",
          arguments: ["llama", "qwen2", "gemma", "gpt_neox"])
    func ggufDecoders(_ family: String) throws {
        let ref = try Self.reference(family)
        let clean = try Self.tokens(ref, "tokens_clean")
        for dtype in [DType.float64, .float32] {
            let model = try DecoderModel.load(model: fixturePath("gguf/\(family).gguf"), on: cpu, dtype: dtype)
            let hf = try DecoderConfig.read(Self.root + "/" + family + "/config.json"), c = model.config
            #expect(c.nKVHead == hf.nKVHead && c.nInner == hf.nInner && c.tiedEmbeddings == hf.tiedEmbeddings && c.qkvBias == hf.qkvBias
                    && c.outputBias == hf.outputBias && Float(c.layerNormEpsilon) == Float(hf.layerNormEpsilon), "\(family) config from metadata (GGUF stores eps as Float32)")
            #expect(c.headDim == hf.headDim && c.norm == hf.norm && c.activation == hf.activation && c.parallelResidual == hf.parallelResidual
                    && c.embeddingScale == hf.embeddingScale && c.mlpBias == hf.mlpBias && c.gatedMLP == hf.gatedMLP, "\(family) architecture from the metadata")
            let e = Self.err(try model.logits(clean).doubles(), try ref.doubles("logits_clean"))
            // Float64: llama's rope_freqs divisors and eps are stored in Float32, so θ carries ~6e-8
            // relative error (measured 4e-9 on the logits; qwen2, with no divisors, 2e-14): 1e-7.
            // Float32: as the Hugging Face path, 1e-4.
            #expect(e <= (dtype == .float64 ? 1e-7 : 1e-4), "\(family) \(dtype): \(e)")
        }
    }
}
