import ArgumentParser
import Attrib
import FoundationEssentials

/// `attrib layer-ig`: Integrated Gradients at an inner value of an ONNX model, for text models
/// whose inputs are token ids (Captum's LayerIntegratedGradients on the embeddings).
struct LayerIGCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layer-ig",
        abstract: "Layer Integrated Gradients on a token-id ONNX model (BERT-style): per-token scores at the embedding output.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model: a .onnx file or a directory with model.onnx (and tokenizer.json or vocab.txt, to show the tokens).") var model: String
    @Option(help: "Token ids as .npy, [N, T] (int or whole-number float).") var inputs: String?
    @Option(help: "Token ids of one input, comma-separated; several inputs separated by ';' (all of the model's length).") var tokens: String?
    @Option(name: .customLong("text"), help: "Text of one input (repeat for several), tokenized with the model directory's tokenizer.json, or its vocab.txt as BERT's, special tokens included, then padded with [PAD] to the model's length.") var texts: [String] = []
    @Option(help: "The value to attribute at (an ONNX value name). Default: the embedding output (the first embedding, its added position and token-type embeddings and their LayerNorm).") var layer: String?
    @Option(help: "The baseline's token id at every position (Captum's usual baseline: the pad token). Default: the pad token of the model directory's tokenizer ([PAD] or <pad>: 1 for RoBERTa's), else 0.") var baselineToken: Int32?
    @Option(help: "Target class for every input, or 'predicted' (default).") var target = "predicted"
    @Option(help: "Integration steps m.") var steps = 64
    @Option(help: "Rule: riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gauss_legendre.") var method = "gauss_legendre"
    @Option(help: "Output directory (default out/layer-ig).") var out: String?
    /// --batch (a cap on rows per device batch, which are otherwise sized from device memory: a
    /// BERT-base row at 128 tokens takes about 180 MB with its backward), --limit, --resume,
    /// --chunk, --shard, --force, --json, --quiet.
    @OptionGroup var sweep: SweepOptions

    func validate() throws {
        guard IntegrationRule(name: method) != nil else { throw ValidationError("unknown --method '\(method)'") }
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        if target != "predicted", Int(target) == nil { throw ValidationError("--target must be a class index or 'predicted'") }
        if [inputs != nil, tokens != nil, !texts.isEmpty].filter({ $0 }).count != 1 {
            throw ValidationError("give one of --inputs IDS.npy, --tokens or --text")
        }
    }

    /// A sweep (ShardedSweep) over units of inputs: several devices and processes share it,
    /// each unit is saved as it finishes, Ctrl-C keeps the finished ones and --resume runs the
    /// rest. Text models are large (BERT-base: about 5 input·steps a second on 2 cores), so a
    /// long sweep needs all three.
    func run() throws {
        let dir = out ?? "out/layer-ig"
        if !sweep.resume, !mergeOnlyMode, !FileManager.default.fileExists(atPath: dir + "/.attrib-sweep/run.json") {
            try OutputDirectory.prepare(dir, explicit: out != nil, force: sweep.force || out == nil)
        }
        guard ONNXModel.isONNX(model) else { throw ValidationError("layer-ig takes an ONNX model (a .onnx file or a directory with model.onnx)") }
        let launch = try LaunchEnvironment.detect(ProcessInfo.processInfo.environment, shard: sweep.shard)
        let devices = try global.selectedDevices(launch: launch)
        let models = try devices.map { d -> TokenModel in
            let g = try ONNXModel.load(ONNXModel.file(at: model), on: d, dtype: .float32).graph
            guard let m = try TokenModel(g, file: ONNXModel.file(at: model)) else {
                throw AttribError.io(path: ONNXModel.file(at: model), detail: "layer-ig needs one token-id (integer) input and one output; this model has inputs \(g.inputs.map { "\($0.name): \($0.type)" }) and outputs \(g.outputs)")
            }
            return m
        }
        let m = models[0]
        let per = m.perInput, shape = m.shape
        guard let layer = layer ?? m.graph.embeddingOutput() else {
            throw AttribError.io(path: m.file, detail: "no embedding reads the input; give --layer with the name of the value to attribute at")
        }
        let baselineToken = try self.baselineToken ?? padToken() ?? 0
        // The ids, [n, T].
        var ids: [Int32] = []
        if let path = inputs {
            ids = try m.readIDs(path)
        } else if let list = tokens {
            for (k, part) in list.split(separator: ";").enumerated() {
                let v = part.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
                guard v.allSatisfy({ $0 != nil }), v.count == per else {
                    throw ValidationError("--tokens input \(k): \(v.count) comma-separated ids; the model takes \(per) (shape \(shape))")
                }
                ids += v.map { $0! }
            }
        }
        if !texts.isEmpty { ids = try encodeTexts(per: per) }
        var n = ids.count / per
        if let limit = sweep.batching.limit, limit < n { n = limit; ids = Array(ids.prefix(n * per)) }
        guard n >= 1 else { throw ValidationError("no inputs") }
        let classes = m.classes, fixedTarget = Int(target)
        if let t = fixedTarget, t < 0 || t >= classes { throw ValidationError("--target \(t) is not one of the model's \(classes) classes") }
        let lig = try LayerIntegratedGradients(rule: IntegrationRule(name: method)!, steps: steps, batchRows: sweep.batching.batch)
        let d = m.graph.types[layer]?.count ?? 1
        var files = ["model": model]
        if let p = inputs { files["inputs"] = p }
        let s = try ShardedSweep(command: "layer-ig", out: dir, explicitOut: out != nil, options: sweep, items: n,
                                 unitSize: WorkUnits.defaultSize(rowsPerItem: steps, valuesPerItem: d),
                                 files: files, contentChecked: ["--model", "--inputs"])
        installInterruptHandler()
        // The path runs on the graph with its slices moved early (a classifier's last block
        // then computes the [CLS] row only), the attributed layer kept.
        let execs = try models.map { GraphExecutor(try $0.graph.selectingRowsEarly(keeping: [layer])) }
        let workers = devices.indices.map { k in
            let device = devices[k], tm = models[k], exec = execs[k]
            return SweepWorker(device: device.info.summary) { range, control in
                let unitIDs = Array(ids[(range.lowerBound * per)..<(range.upperBound * per)])
                // Without --target, each input's top class, from the forward the path runs anyway.
                let r = try lig.attribute(exec, input: tm.input, layer: layer, output: tm.output, ids: unitIDs,
                                          baselineIDs: [Int32](repeating: baselineToken, count: unitIDs.count),
                                          count: range.count, targets: fixedTarget.map { Array(repeating: $0, count: range.count) },
                                          device: device, control: control)
                var o = UnitOutput(items: r.completedInputs, interrupted: r.interrupted, rowsEvaluated: r.rowsEvaluated)
                o.arrays["attributions"] = .float32(r.attributions.map { Float($0) }, shape: r.shape)
                o.arrays["token_scores"] = .float64(r.tokenScores, shape: r.tokenShape)
                o.arrays["deltas"] = .float64(r.deltas, shape: [r.completedInputs])
                o.arrays["targets"] = .int32(r.targets.map { Int32($0) }, shape: [r.completedInputs])
                o.meta["plan"] = .array([.int(r.plan.rows), .int(r.plan.bytesPerRow), .int(r.plan.budgetBytes)])
                o.meta["seconds"] = .double(r.seconds)
                return o
            }
        }
        let outcome = try s.execute(workers: workers)
        guard let units = outcome.units else { s.reportUnassembled(outcome, json: sweep.json); return }
        guard !units.isEmpty, let a = LoadedUnit.concatenated(units, "attributions"), let sc = LoadedUnit.concatenated(units, "token_scores"),
              let dl = LoadedUnit.concatenated(units, "deltas"), let tg = LoadedUnit.concatenated(units, "targets") else {
            throw AttribError.io(path: s.dir.root, detail: outcome.interrupted ? "interrupted before any input was finished; nothing to save" : "the sweep's units hold no attributions")
        }
        let done = tg.shape[0], targets = tg.values.map { Int($0) }, deltas = dl.values, scores = sc.values
        let plan = units[0].meta["plan"]?.array?.compactMap(\.int) ?? [0, 0, 0]
        let seconds = ShardedSweep.wallSeconds(outcome.stats)
        try NPY.write(a.values.map { Float($0) }, shape: a.shape, to: dir + "/attributions.npy")
        try NPY.write(scores, shape: sc.shape, to: dir + "/token_scores.npy")
        let vocab = try TokenVocabulary.load(directory: ONNXModel.directory(at: model))
        let labels = try ONNXModel.attributionLabels(at: model)
        let perInput = scores.count / max(done, 1)
        var entries: [JSONValue] = []
        for i in 0..<done {
            let row = (0..<perInput).map { j -> JSONValue in
                let id = Int(ids[i * per + j])
                var o: [String: JSONValue] = ["id": .int(id), "score": .double(scores[i * perInput + j])]
                if let t = vocab?[id] { o["token"] = .string(t) }
                return .object(o)
            }
            entries.append(.object(["input": .int(i), "target": .int(targets[i]), "delta": .double(deltas[i]), "tokens": .array(row)]))
        }
        var summary: [String: JSONValue] = [
            "method": .string("layer-ig"), "model": .string(model), "device": .string(devices.map(\.info.summary).joined(separator: "; ")), "layer": .string(layer),
            "baselineToken": .int(Int(baselineToken)), "steps": .int(steps), "rule": .string(method), "inputs": .int(done),
            "interrupted": .bool(outcome.interrupted), "completedInputs": .int(done), "inputsRequested": .int(n),
            "seconds": .double(seconds), "maxAbsDelta": .double(deltas.map(abs).max() ?? 0),
            "rowsPerBatch": .int(plan[0]), "bytesPerRow": .int(plan[1]), "memoryBudgetBytes": .int(plan[2]),
            "scores": .string("per token: the attribution summed over the layer's last axis"), "perInput": .array(entries),
            "files": .array([.string(dir + "/attributions.npy"), .string(dir + "/token_scores.npy"), .string(dir + "/summary.json")]),
        ]
        summary.merge(AttributionOptions.sweepSummary(s)) { a, _ in a }
        let data = try prettyJSON(summary)
        try OutputDirectory.write(data, to: dir + "/summary.json")
        if !outcome.interrupted { try s.finish() }
        // An interrupted sweep saved what it finished, and exits as Ctrl-C does (130) so scripts notice.
        defer { if outcome.interrupted { AttributionOptions.exitInterrupted(saved: "units", in: dir) } }
        if sweep.json { print(String(decoding: data, as: UTF8.self)); return }
        print("layer-ig at \(layer) on \(devices.map(\.info.summary).joined(separator: "; ")): \(done) input(s), \(steps) steps, \(fixed(seconds, 2)) s; max |delta| = \(sci(deltas.map(abs).max() ?? 0))")
        print("batches of \(plan[0]) rows (about \(plan[1] >> 20) MiB each, budget \(plan[2] >> 20) MiB)")
        if outcome.interrupted { print("interrupted: \(done) of \(n) inputs finished") }
        for i in 0..<min(done, 5) {
            print("input \(i), target \(AttributionOptions.className(targets[i], labels)):")
            for j in 0..<perInput {
                let id = Int(ids[i * per + j])
                print("  \(pad(String(j), 4)) \(pad(vocab?[id] ?? "#\(id)", 16)) \(sci(scores[i * perInput + j]))")
            }
        }
        if done > 5 { print("… \(done - 5) more inputs in summary.json") }
        for f in ["attributions.npy", "token_scores.npy", "summary.json"] { print("  wrote \(dir)/\(f)") }
    }

    /// The pad token's id in the model directory's tokenizer, where it has one.
    func padToken() throws -> Int32? {
        guard let tok = try HFTokenizer.forTextModel(directory: ONNXModel.directory(at: model)) else { return nil }
        return tok.id(for: "[PAD]") ?? tok.id(for: "<pad>")
    }

    /// The --text inputs as ids, each the model's length: its tokenizer's ids with special tokens,
    /// padded with [PAD] (the exported model has no attention mask, so the padding is part of
    /// what it reads: as when PyTorch runs the same padded ids). Longer texts are an error.
    func encodeTexts(per: Int) throws -> [Int32] {
        let dir = ONNXModel.directory(at: model)
        guard let tok = try HFTokenizer.forTextModel(directory: dir) else {
            throw AttribError.io(path: dir, detail: "--text needs the model's tokenizer: tokenizer.json, or BERT's vocab.txt, beside model.onnx")
        }
        let pad = tok.id(for: "[PAD]") ?? tok.id(for: "<pad>") ?? baselineToken ?? 0
        var ids: [Int32] = []
        for (k, text) in texts.enumerated() {
            let t = tok.encode(text)
            guard t.count <= per else {
                throw ValidationError("--text \(k) is \(t.count) tokens (special tokens included, \(tok.source)); the model takes \(per)")
            }
            ids += t + [Int32](repeating: pad, count: per - t.count)
        }
        return ids
    }
}
