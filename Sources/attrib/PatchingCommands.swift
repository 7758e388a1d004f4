import ArgumentParser
import Attrib
import FoundationEssentials

/// What `attrib patch`, `attrib atp` and `attrib atp-star` take.
struct PatchingOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @Option(help: "Decoder model: a Hugging Face directory (config.json + model.safetensors or shards; gpt2, llama, qwen2, mistral, gemma, gpt_neox) or a llama.cpp .gguf file (docs/llm.md).") var model: String
    @Option(help: "Clean prompt text (needs the model's tokenizer files).") var clean: String?
    @Option(help: "Clean prompt as comma-separated token ids.") var cleanTokens: String?
    @Option(help: "Corrupt prompt text (same length in tokens as the clean one).") var corrupt: String?
    @Option(help: "Corrupt prompt as comma-separated token ids.") var corruptTokens: String?
    @Option(help: "Prompt pairs as JSON: a list of {clean, corrupt, answers: [A, B]} (text or id lists), or {\"pairs\": [...]} with clean_ids/corrupt_ids/clean_answer_id/corrupt_answer_id (Models/induction-2l/prompts.json).") var pairs: String?
    @Option(help: "Metric: logit-diff:A,B (token ids or single-token strings) or logprob:T. Default with --pairs: each pair's answers.") var metric: String?
    @Option(help: "Nodes: heads, head-positions, neurons, neuron-positions.") var nodes = "heads"
    @Option(help: "Rows of the table.") var top = 20
    @Option(help: "attrib patch only: patch the nodes of these layers (comma-separated) and report NaN for the others; exact patching of every neuron of a 30-layer model is hours per pair.") var layers: String?
    @Flag(help: "Use Float64.") var fp64 = false
    @Option(help: "Storage of the weight matrices and embeddings: float32, bf16 or f16 (half the bytes; products still in Float32, docs/llm.md). Default: the arithmetic's type.") var dtype: DType?
    @Option(help: "Output directory (default out/METHOD, replaced on every run; an --out that holds results needs --force).") var out: String?
    @OptionGroup var sweep: SweepOptions
    /// The first N pairs of --pairs (--limit).
    var limit: Int? { sweep.batching.limit }
    /// Rows per batched patched forward: --batch, else what fits the device's memory at the prompt length.
    var batch: Int? { sweep.batching.batch }
    var json: Bool { sweep.json }
    @Flag(help: "Do not prepend the BOS token (<|endoftext|>) to text prompts. By default it is prepended, as TransformerLens does (prepend_bos=True), unless the text already starts with it; token-id prompts are used as given.") var noBos = false

    struct Job { var pair: PromptPair; var metric: TokenMetric; var label: String }

    func validate() throws {
        _ = try granularity()
        if let m = metric, !m.hasPrefix("logit-diff:"), !m.hasPrefix("logprob:") {
            throw ValidationError("unknown --metric '\(m)'; use logit-diff:A,B or logprob:T")
        }
    }

    func granularity() throws -> ComponentGranularity {
        do { return try ComponentGranularity(name: nodes) } catch { throw ValidationError("\(error)") }
    }

    /// The model's tokenizer (a .gguf file's own, tokenizer.json, or vocab.json + merges.txt):
    /// nil where it has none (token ids only); a broken file is its own error, naming it, not
    /// "text needs a tokenizer".
    func tokenizer() throws -> (any PromptTokenizer)? { try promptTokenizer(forModel: model) }

    func ids(_ text: String?, _ list: String?, _ what: String, _ tok: (any PromptTokenizer)?) throws -> [Int32] {
        switch (text, list) {
        case (let s?, nil):
            guard let tok else { throw ValidationError("--\(what) needs a tokenizer (tokenizer.json, or vocab.json + merges.txt, in \(model); a .gguf carries its own); give --\(what)-tokens instead") }
            return try encodePrompt(s, tok)
        case (nil, let l?):
            let parts = l.split(separator: ",").map { String($0.filter { $0 != " " }) }
            let v = parts.compactMap { Int32($0) }
            guard v.count == parts.count, !v.isEmpty else { throw ValidationError("--\(what)-tokens must be comma-separated integers, got '\(l)'") }
            return v
        case (nil, nil): throw ValidationError("give --\(what) or --\(what)-tokens (or --pairs)")
        default: throw ValidationError("give --\(what) or --\(what)-tokens, not both")
        }
    }

    /// A text prompt's ids, with the BOS token first unless --no-bos or the text starts with it.
    /// GPT-2's is <|endoftext|> (TransformerLens prepends it); a tokenizer.json or GGUF
    /// tokenizer's is the one its own template adds, and one that adds none (SmolLM2) gets none.
    func encodePrompt(_ s: String, _ tok: any PromptTokenizer) throws -> [Int32] {
        let ids = try tok.encodeText(s)
        guard !noBos else { return ids }
        guard let bos = tok.beginningOfSequenceID else {
            if tok is GPT2Tokenizer {
                throw AttribError.io(path: tok.source, detail: "has no \(GPT2Tokenizer.endOfText) token to prepend to text prompts; give --no-bos to use them as they are")
            }
            return ids
        }
        return ids.first == bos ? ids : [bos] + ids
    }

    func token(_ s: String, _ tok: (any PromptTokenizer)?) throws -> Int {
        if let i = Int(s) { return i }
        if let tok, let ids = try? tok.encodeText(s), ids.count == 1 { return Int(ids[0]) }
        throw ValidationError("'\(s)' is not a token id or a single-token string")
    }

    func parseMetric(_ spec: String, _ tok: (any PromptTokenizer)?) throws -> TokenMetric {
        let (kind, arg) = spec.split(separator: ":", maxSplits: 1).map(String.init).splitFirst
        switch kind {
        case "logit-diff":
            let p = (arg ?? "").split(separator: ",").map(String.init)
            guard p.count == 2 else { throw ValidationError("--metric logit-diff:A,B needs two tokens, got '\(spec)'") }
            return .logitDifference(target: [try token(p[0], tok)], contrast: [try token(p[1], tok)])
        case "logprob":
            guard let a = arg else { throw ValidationError("--metric logprob:T needs a token") }
            return .logProbability(token: [try token(a, tok)])
        default: throw ValidationError("unknown --metric '\(spec)'; use logit-diff:A,B or logprob:T")
        }
    }

    /// The prompt pairs and their metrics, text tokenized by `tok` (the model's `tokenizer()`).
    func jobs(_ tok: (any PromptTokenizer)?) throws -> [Job] {
        guard let path = pairs else {
            guard let m = metric else { throw ValidationError("give --metric (logit-diff:A,B or logprob:T)") }
            return [Job(pair: PromptPair(clean: try ids(clean, cleanTokens, "clean", tok), corrupt: try ids(corrupt, corruptTokens, "corrupt", tok)),
                        metric: try parseMetric(m, tok), label: "pair 0")]
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw AttribError.io(path: path, detail: "cannot read the pairs file") }
        let entries = try PromptPairFile.entries(data, path: path)
        var out: [Job] = []
        for (i, e) in entries.prefix(limit ?? entries.count).enumerated() {
            func prompt(_ ids: [Int32]?, _ v: PromptPairFile.TextOrIDs?, _ what: String) throws -> [Int32] {
                if let ids { return ids }
                switch v {
                case .ids(let x)?: return x
                case .text(let s)?:
                    guard let tok else { throw AttribError.io(path: path, detail: "pair \(i): text prompts need a tokenizer in \(model)") }
                    return try encodePrompt(s, tok)
                case nil: throw AttribError.io(path: path, detail: "pair \(i) has no \(what) prompt")
                }
            }
            let pair = PromptPair(clean: try prompt(e.clean_ids, e.clean, "clean"), corrupt: try prompt(e.corrupt_ids, e.corrupt, "corrupt"))
            let m: TokenMetric
            if let spec = metric { m = try parseMetric(spec, tok) }
            else if let a = e.clean_answer_id, let b = e.corrupt_answer_id { m = .logitDifference(target: [a], contrast: [b]) }
            else if let ans = e.answers, ans.count == 2 { m = .logitDifference(target: [try token(ans[0].string, tok)], contrast: [try token(ans[1].string, tok)]) }
            else { throw AttribError.io(path: path, detail: "pair \(i) has no answers; give --metric") }
            out.append(Job(pair: pair, metric: m, label: "pair \(i)"))
        }
        guard !out.isEmpty else { throw AttribError.io(path: path, detail: "no pairs") }
        return out
    }

    func load() throws -> (DecoderModel, any Device) {
        let device = try global.selectedDevice()
        return (try forNodes(DecoderModel.load(model: model, on: device, dtype: fp64 ? .float64 : .float32, weights: dtype)), device)
    }

    /// The model the nodes need: for head-position nodes on a grouped-query model, its
    /// ungrouped form (each query head its own key and value, as TransformerLens's
    /// ungroup_grouped_query_attention), whose logits are the same.
    func forNodes(_ m: DecoderModel) throws -> DecoderModel {
        try granularity() == .headPositions ? m.ungrouped() : m
    }
}

/// Which method a patching command runs.
enum PatchingMethod: String { case patch, atp, atpStar = "atp-star" }

/// What one prompt pair gave: its scores, its summary entry, the lines printed for it, and the
/// comparison figures the summary averages.
struct PairOutcome: Codable {
    var scores: [Double]
    var shape: [Int]
    var entry: [String: JSONValue]
    /// The table (and comparison lines) printed when the pair is shown.
    var shownLines: [String]
    /// Lines printed even when the pair is not shown (the false-negative diagnostic).
    var alwaysLines: [String]
    var seconds: Double
    var exactSeconds: Double
    var rho: Double?
    var recall: Double?
    var compareK: Int
    var extrapolated: Double?
}

/// Runs a method on one pair.
func patchPair(_ method: PatchingMethod, _ o: PatchingOptions, model: DecoderModel, device: any Device, tok: (any PromptTokenizer)?, job: PatchingOptions.Job,
               granularity g: ComponentGranularity, compare: Bool, verify: Int, samples: Int, seed: UInt64, timeExact: Int, noQK: Bool,
               gradDrop: GradDropRule?, batched: ComponentScores? = nil) throws -> PairOutcome {
    let scores: ComponentScores
    do {
        switch method {
        case _ where batched != nil: scores = batched!
        case .patch:
            var only: [Int]? = nil
            if let spec = o.layers {
                let wanted = Set(try parseList(spec, "--layers", minimum: 0))
                guard !wanted.isEmpty else { throw ValidationError("--layers must be comma-separated layer numbers, got '\(spec)'") }
                let nodes = try ComponentNodeSet(g, config: model.config, tokens: job.pair.clean.count)
                if let bad = wanted.first(where: { $0 >= model.config.nLayer }) {
                    throw ValidationError("--layers \(bad): the model has layers 0..<\(model.config.nLayer)")
                }
                only = (0..<nodes.count).filter { wanted.contains(nodes.layer(of: $0)) }
            }
            scores = try ActivationPatching.effects(model, pair: job.pair, metric: job.metric, granularity: g, only: only, batchSize: o.batch)
        case .atp: scores = try AtP.estimate(model, pair: job.pair, metric: job.metric, granularity: g)
        case .atpStar: scores = try AtPStar(qkFix: !noQK, gradDrop: gradDrop).estimate(model, pair: job.pair, metric: job.metric, granularity: g).scores
        }
    } catch let e as AttribError {
        // Which pair (and from which file) a prompt or metric error belongs to.
        throw AttribError.invalidArgument(op: o.pairs.map { "\($0), \(job.label)" } ?? job.label, detail: "\(e)")
    }
    let kind = ScoreKind(method)
    var out = PairOutcome(scores: scores.scores, shape: scores.nodes.shape, entry: [:], shownLines: [], alwaysLines: [], seconds: scores.seconds,
                          exactSeconds: 0, rho: nil, recall: nil, compareK: 0, extrapolated: nil)
    var entry: [String: JSONValue] = ["label": .string(job.label), "tokens": .int(job.pair.clean.count), "seconds": .double(scores.seconds),
                                      "cleanMetric": .double(scores.cleanMetric), "corruptMetric": .double(scores.corruptMetric),
                                      "backwardPasses": .int(scores.backwardPasses), "sharedPrefix": .int(scores.sharedPrefix)]
    let order = scores.ranking()
    entry["top"] = .array(order.prefix(o.top).map { .object(["node": .string(scores.nodes[$0].description), "score": .double(scores.scores[$0])]) })
    var compareLines: [String] = []
    if compare && method != .patch {
        let exact = try ActivationPatching.effects(model, pair: job.pair, metric: job.metric, granularity: g, batchSize: o.batch)
        out.exactSeconds = exact.seconds
        let topK = RankAgreement.defaultK(nodes: scores.nodes.count)
        out.compareK = topK
        let rho = RankAgreement.spearman(scores.scores, exact.scores), rec = RankAgreement.recall(truth: exact.scores, estimate: scores.scores, k: topK)
        let ranks = RankAgreement.ranksOfTrueTop(truth: exact.scores, estimate: scores.scores, k: topK)
        out.rho = rho; out.recall = rec
        entry["spearman"] = .double(rho); entry["recallTopK"] = .double(rec); entry["k"] = .int(topK); entry["exactSeconds"] = .double(exact.seconds)
        entry["trueTopK"] = .array(ranks.map { .object(["node": .string(scores.nodes[$0.node].description), "exact": .double(exact.scores[$0.node]),
                                                        "score": .double(scores.scores[$0.node]), "rank": .int($0.rank)]) })
        compareLines.append("  vs exact patching: Spearman ρ(|score|, |effect|) = \(fixed(rho, 3)), recall of the true top \(topK) = \(fixed(rec, 3)); the true top \(topK) and the rank this estimate gives each (of \(scores.nodes.count)):")
        for r in ranks {
            compareLines.append("    \(pad(scores.nodes[r.node].description, 14)) exact \(pad(sci(exact.scores[r.node]), 11)) score \(pad(sci(scores.scores[r.node]), 11)) rank \(r.rank)")
        }
    }
    if timeExact > 0 {
        // Exact patching of a subsample, timed and extrapolated to every node.
        let n = scores.nodes.count, m = min(timeExact, n)
        let stride = max(1, n / m)
        let only = Array(Swift.stride(from: 0, to: n, by: stride).prefix(m))
        let ex = try ActivationPatching.effects(model, pair: job.pair, metric: job.metric, granularity: g, only: only, batchSize: o.batch)
        let full = ex.seconds / Double(only.count) * Double(n)
        out.extrapolated = full
        entry["exactSubsample"] = .int(only.count); entry["exactSubsampleSeconds"] = .double(ex.seconds); entry["exactExtrapolatedSeconds"] = .double(full)
    }
    if verify > 0 {
        let r = try FalseNegativeCheck.run(model, pair: job.pair, metric: job.metric, granularity: g, scores: scores.scores,
                                           topK: min(verify, scores.nodes.count), samples: samples, seed: seed, batchSize: o.batch)
        let missed = r.missed(scores: scores.scores)
        entry["falseNegatives"] = .object(["topK": .int(r.topK), "sampled": .int(r.sampled), "population": .int(r.population),
                                           "unverified": .int(r.unverified), "threshold": .double(r.threshold),
                                           "exceedances": .int(r.exceedances), "upperBound95": .double(r.upperBound),
                                           "missedBound": .double(r.missedBound), "seconds": .double(r.seconds),
                                           "missed": .array(missed.map { .object(["node": .string(scores.nodes[$0.index].description),
                                                                                  "exact": .double($0.effect), "score": .double(scores.scores[$0.index]),
                                                                                  "rank": .int($0.rank)]) }),
                                           "statement": .string(r.statement(nodeCount: scores.nodes.count))])
        var lines = ["\(job.label): \(r.statement(nodeCount: scores.nodes.count))"]
        for m in missed {
            lines.append("  MISSED \(pad(scores.nodes[m.index].description, 14)) exact effect \(pad(sci(m.effect), 11)) estimate \(pad(sci(scores.scores[m.index]), 11)) rank \(m.rank) of \(scores.nodes.count)")
        }
        compareLines += lines
        out.alwaysLines = lines
    }
    out.entry = entry
    let text = tok.flatMap { try? $0.decode(job.pair.clean) }.map { " \"\($0)\"" } ?? ""
    out.shownLines = ["\(method.rawValue) \(g.rawValue) on \(device.info.summary), \(job.label)\(text): L(clean) = \(fixed(scores.cleanMetric, 4)), L(corrupt) = \(fixed(scores.corruptMetric, 4)), \(fixed(scores.seconds, 3)) s",
                      "  \(pad("rank", 5)) \(pad("node", 14)) \(kind.header)"]
    for (r, i) in order.prefix(o.top).enumerated() { out.shownLines.append("  \(pad(String(r + 1), 5)) \(pad(scores.nodes[i].description, 14)) \(sci(scores.scores[i]))") }
    out.shownLines += compareLines
    return out
}

/// Runs a method over every pair as a sweep of units of pairs (ShardedSweep: several devices,
/// several processes, --resume), prints the top nodes, writes scores.npy, heads.png and summary.json.
func runPatching(_ method: PatchingMethod, _ o: PatchingOptions, compare: Bool = false, verify: Int = 0, samples: Int = 0,
                 seed: UInt64 = 0, timeExact: Int = 0, noQK: Bool = false, gradDrop: GradDropRule? = .default) throws {
    let g = try o.granularity()
    let tok = try o.tokenizer()
    let jobs = try o.jobs(tok)
    let launch = try LaunchEnvironment.detect(ProcessInfo.processInfo.environment, shard: o.sweep.shard)
    let devices = try o.global.selectedDevices(launch: launch)
    let models = try devices.map { try o.forNodes(DecoderModel.load(model: o.model, on: $0, dtype: o.fp64 ? .float64 : .float32, weights: o.dtype)) }
    let model = models[0], device = devices[0]
    // Every id the tokenizer makes must be a row of the model's embedding.
    if let tok, tok.vocabSize > model.config.vocabSize {
        throw AttribError.io(path: tok.source, detail: "the tokenizer has \(tok.vocabSize) tokens but the model's vocab_size is \(model.config.vocabSize) (config.json): they are not one model's files")
    }
    let dir = o.out ?? "out/\(method.rawValue)"
    if !o.sweep.resume, !mergeOnlyMode, !FileManager.default.fileExists(atPath: dir + "/.attrib-sweep/run.json") {
        try OutputDirectory.prepare(dir, explicit: o.out != nil, force: o.sweep.force)
    }
    var files = ["model": o.model]
    if let p = o.pairs { files["pairs"] = p }
    // A unit of pairs: exact patching of one pair runs every node, so one pair is already many rows.
    let sweep = try ShardedSweep(command: method.rawValue, out: dir, explicitOut: o.out != nil, options: o.sweep, items: jobs.count,
                                 unitSize: method == .patch || compare || verify > 0 ? 1 : 8,
                                 files: files, contentChecked: ["--model", "--pairs"], itemName: "pairs")
    installInterruptHandler()
    let workers = zip(devices, models).map { d, m in
        SweepWorker(device: d.info.summary) { range, control in
            var out = UnitOutput(items: 0)
            var outcomes: [JSONValue] = []
            // AtP and AtP* run a unit's pairs as batches (AtP.batches); where a batch fails, its
            // pairs run one at a time below, so the error names the pair.
            var batched: [Int: ComponentScores] = [:]
            if method != .patch, !compare, verify == 0, range.count > 1, !control.shouldStop() {
                let unit = Array(range)
                let pairs = unit.map { jobs[$0].pair }, metrics = unit.map { jobs[$0].metric }
                let plan = AtP.batches(pairs: pairs, metrics: metrics, batchSize: { o.batch ?? m.gradientBatchRows(tokens: $0) })
                for r in plan where r.count > 1 {
                    let stacked = TokenMetric.stacked(Array(metrics[r]))!
                    let scores: [ComponentScores]? = method == .atp
                        ? try? AtP.estimate(m, pairs: Array(pairs[r]), metrics: Array(metrics[r]), granularity: g, batchSize: r.count)
                        : try? AtPStar(qkFix: !noQK, gradDrop: gradDrop).estimate(m, pairs: Array(pairs[r]), metric: stacked, granularity: g).map(\.scores)
                    for (k, s) in zip(r, scores ?? []) { batched[unit[k]] = s }
                }
            }
            for k in range {
                if control.shouldStop() { out.interrupted = true; break }
                let p = try patchPair(method, o, model: m, device: d, tok: tok, job: jobs[k], granularity: g, compare: compare, verify: verify,
                                      samples: samples, seed: seed, timeExact: timeExact, noQK: noQK, gradDrop: gradDrop, batched: batched[k])
                out.arrays["scores_\(k)"] = .float64(p.scores, shape: p.shape)
                var q = p
                q.scores = []
                outcomes.append(.string(String(decoding: try JSONEncoder().encode(q), as: UTF8.self)))
                out.items += 1
                control.progress(k - range.lowerBound + 1, range.count)
            }
            out.meta["pairs"] = .array(outcomes)
            return out
        }
    }
    let outcome = try sweep.execute(workers: workers)
    guard let units = outcome.units else { sweep.reportUnassembled(outcome, json: o.json); return }
    var all: [Double] = [], perPair: [JSONValue] = [], shape: [Int] = [], shapes: [[Int]] = []
    var seconds = 0.0, exactSeconds = 0.0
    var rhos: [Double] = [], recalls: [Double] = []
    var extrapolated: [Double] = []
    var compareK = 0
    let kind = ScoreKind(method)
    var k = 0
    for unit in units {
        for item in unit.meta["pairs"]?.array ?? [] {
            guard let text = item.string, var p = try? JSONDecoder().decode(PairOutcome.self, from: Data(text.utf8)), let a = unit.arrays["scores_\(k)"] else {
                throw AttribError.io(path: sweep.dir.state, detail: "pair \(k)'s outcome is missing from its unit")
            }
            p.scores = a.doubles()
            seconds += p.seconds; exactSeconds += p.exactSeconds
            if let r = p.rho { rhos.append(r) }
            if let r = p.recall { recalls.append(r) }
            if let e = p.extrapolated { extrapolated.append(e) }
            compareK = max(compareK, p.compareK)
            shape = p.shape; shapes.append(p.shape)
            all += p.scores
            perPair.append(.object(p.entry))
            let shown = !o.json && (k == 0 || jobs.count <= 3)
            if shown { p.shownLines.forEach { print($0) } } else if !o.json { p.alwaysLines.forEach { print($0) } }
            k += 1
        }
    }
    guard k > 0 else { throw AttribError.io(path: dir, detail: "interrupted before any pair was finished; nothing to save") }
    let finishedJobs = Array(jobs.prefix(k))
    _ = (model, device)
    var written = [dir + "/summary.json"]
    if Set(shapes).count == 1 {
        try NPY.write(all, shape: [finishedJobs.count] + shape, to: dir + "/scores.npy")
        written.append(dir + "/scores.npy")
    } else {
        // Per-position nodes of pairs of different lengths: one file per pair.
        var at = 0
        for (k, s) in shapes.enumerated() {
            let n = s.reduce(1, *)
            try NPY.write(Array(all[at..<at + n]), shape: s, to: dir + "/scores_\(k).npy")
            at += n
        }
        written.append(dir + "/scores_<pair>.npy (\(shapes.count) files)")
    }
    if g == .heads {
        let per = shape.reduce(1, *)
        let mean = (0..<per).map { i in (0..<finishedJobs.count).reduce(0.0) { $0 + all[$1 * per + i] } / Double(finishedJobs.count) }
        // One diverging map for patch, atp and atp-star (magnitudes use its red half), scaled to
        // the largest |value|: a grid of a few dozen heads has no outliers to clip.
        var opts = Heatmap.Options(colorMap: .diverging, layout: .heatmap, percentile: 100)
        opts.minShortSide = 24 * shape[0] < 160 ? 160 : 128
        let r = try Heatmap.render(attribution: mean, shape: shape, options: opts)
        let what = finishedJobs.count == 1 ? finishedJobs[0].label : "the mean over \(finishedJobs.count) pairs (the table above shows \(finishedJobs[0].label))"
        let annotation = Heatmap.Annotation(
            title: ["\(method.rawValue): \(kind == .signed ? "signed score" : "|score|, a magnitude >= 0"), per head", what],
            rowLabels: (0..<shape[0]).map { "L\($0)" }, columnLabels: (0..<shape[1]).map { "H\($0)" },
            rowAxis: "layer", columnAxis: "head",
            colorBarLabel: kind == .signed ? "change of the metric (signed)" : "|estimated change of the metric|",
            notes: ["the bar's ends are the largest |value|"])
        try Heatmap.annotate(r, mapHeight: shape[0], mapWidth: shape[1], annotation).image.write(to: dir + "/heads.png")
        written.append(dir + "/heads.png (\(finishedJobs.count == 1 ? finishedJobs[0].label : "mean over \(finishedJobs.count) pairs"))")
    }
    var summary: [String: JSONValue] = [
        "method": .string(method.rawValue), "scoreKind": .string(kind.rawValue), "scoreMeaning": .string(kind.meaning), "nodes": .string(g.rawValue), "nodeCount": .int(shape.reduce(1, *)), "shape": .array(shape.map { .int($0) }),
        "device": .string(devices.map(\.info.summary).joined(separator: ", ")), "model": .string(o.model), "pairs": .int(finishedJobs.count), "bosPrepended": .bool(!o.noBos),
        "interrupted": .bool(outcome.interrupted),
        "seconds": .double(seconds), "secondsPerPair": .double(seconds / Double(finishedJobs.count)), "perPair": .array(perPair),
        "outDir": .string(dir), "files": .array(written.map { .string($0) }),
    ]
    if !rhos.isEmpty {
        summary["meanSpearman"] = .double(rhos.reduce(0, +) / Double(rhos.count))
        summary["meanRecallTopK"] = .double(recalls.reduce(0, +) / Double(recalls.count))
        summary["k"] = .int(compareK)
        summary["exactSeconds"] = .double(exactSeconds)
    }
    if !extrapolated.isEmpty {
        let ex = extrapolated.reduce(0, +) / Double(extrapolated.count)
        summary["exactExtrapolatedSecondsPerPair"] = .double(ex)
        summary["speedup"] = .double(ex / (seconds / Double(finishedJobs.count)))
    }
    summary.merge(AttributionOptions.sweepSummary(sweep)) { a, _ in a }
    let data = try prettyJSON(summary)
    try OutputDirectory.write(data, to: dir + "/summary.json")
    if !outcome.interrupted { try sweep.finish() }
    defer { if outcome.interrupted { AttributionOptions.exitInterrupted(saved: "pairs", in: dir) } }
    if o.json { print(String(decoding: data, as: UTF8.self)); return }
    print("\(finishedJobs.count) pair(s), \(shape.reduce(1, *)) \(g.rawValue) nodes: \(fixed(seconds / Double(finishedJobs.count), 3)) s per pair")
    if !rhos.isEmpty {
        print("vs exact patching: mean Spearman ρ(|score|, |effect|) = \(fixed(rhos.reduce(0, +) / Double(rhos.count), 3)), mean recall of the true top \(compareK) (K = min(10, nodes/4)) = \(fixed(recalls.reduce(0, +) / Double(recalls.count), 3)) (exact: \(fixed(exactSeconds / Double(finishedJobs.count), 3)) s per pair)")
    }
    if !extrapolated.isEmpty {
        let ex = extrapolated.reduce(0, +) / Double(extrapolated.count)
        print("exact patching of all nodes (extrapolated from a timed subsample): \(fixed(ex, 1)) s per pair; speed-up \(fixed(ex / (seconds / Double(finishedJobs.count)), 1))×")
    }
    for f in written { print("  wrote \(f)") }
}

struct PatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "patch",
        abstract: "Exact activation patching: L(clean | do(n ← n(corrupt))) − L(clean) for every node.")
    @OptionGroup var options: PatchingOptions
    func run() throws { try runPatching(.patch, options) }
}

struct AtPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "atp",
        abstract: "Attribution patching (AtP): (n(corrupt) − n(clean))·∂L/∂n for every node from two forwards and one backward.")
    @OptionGroup var options: PatchingOptions
    @Flag(help: "Also run exact patching: Spearman ρ, recall of the true top K (K = min(10, nodes/4)) and the rank the estimate gives each of them.") var compare = false
    @Option(help: "Time exact patching of N nodes per pair and extrapolate to all nodes.") var timeExact = 0
    func run() throws { try runPatching(.atp, options, compare: compare, timeExact: timeExact) }
}

struct AtPStarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "atp-star",
        abstract: "AtP*: AtP with the QK fix for attention and GradDrop; optionally the false-negative diagnostic.")
    @OptionGroup var options: PatchingOptions
    @Flag(help: "Also run exact patching: Spearman ρ, recall of the true top K (K = min(10, nodes/4)) and the rank the estimate gives each of them.") var compare = false
    @Option(help: "Time exact patching of N nodes per pair and extrapolate to all nodes.") var timeExact = 0
    @Option(help: "False-negative diagnostic: verify the top K nodes by exact patching (0: off).") var verify = 0
    @Option(help: "False-negative diagnostic: random nodes verified beyond the top K.") var samples = 100
    @Flag(help: "Without the QK fix (AtP + GradDrop).") var noQkFix = false
    @Option(help: ArgumentHelp("""
        How GradDrop's per-layer estimates ĉ_l become a score: floor (default) = max(|ĉ|, (1/(L−1))·Σ_l |ĉ_l|);         paper = (1/(L−1))·Σ_l |ĉ_l| exactly as Kramár et al. 2024; max = max(|ĉ|, max_l |ĉ_l|); off = |ĉ| (no GradDrop).         The paper's mean collapses on shallow models: a layer-0 node whose effect runs through the one later layer scores ≈ 0         (Models/induction-2l's true top head ranked last); floor keeps GradDrop's lift for cancelled nodes and never scores         a node below its AtP magnitude. Scores are magnitudes (≥ 0) under every rule.
        """, valueName: "rule")) var gradDrop = GradDropRule.default.rawValue
    @Flag(help: "Without GradDrop (AtP + QK fix): the same as --grad-drop off.") var noGradDrop = false
    func validate() throws {
        guard gradDrop == "off" || GradDropRule(rawValue: gradDrop) != nil else {
            throw ValidationError("unknown --grad-drop '\(gradDrop)'; use floor, paper, max or off")
        }
    }

    func run() throws {
        let rule: GradDropRule? = noGradDrop || gradDrop == "off" ? nil : GradDropRule(rawValue: gradDrop)!
        try runPatching(.atpStar, options, compare: compare, verify: verify, samples: samples, seed: options.sweep.seed, timeExact: timeExact,
                        noQK: noQkFix, gradDrop: rule)
    }
}

/// Whether a patching command's scores carry a sign: patch and atp are signed effects on the
/// metric; atp-star's are magnitudes (GradDrop sums |ĉ_l|), so a large atp-star score says a
/// node matters, not in which direction. Said in the table header, summary.json and heads.png.
enum ScoreKind: String {
    case signed, magnitude
    init(_ m: PatchingMethod) { self = m == .atpStar ? .magnitude : .signed }
    var header: String { self == .signed ? "score (signed)" : "|score| (magnitude, ≥ 0)" }
    var meaning: String {
        self == .signed ? "signed change of the metric: L(clean with the node patched) − L(clean), exact or first-order"
                        : "magnitude of the node's estimated effect (≥ 0; the sign is not estimated)"
    }
}
