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
    @Option(help: "The baseline's token id at every position (Captum's usual baseline: the pad token).") var baselineToken: Int32 = 0
    @Option(help: "Target class for every input, or 'predicted' (default).") var target = "predicted"
    @Option(help: "Integration steps m.") var steps = 64
    @Option(help: "Rule: riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gauss_legendre.") var method = "gauss_legendre"
    @Option(help: "Cap on rows (input × step) per device batch (batches are otherwise sized from device memory: a BERT-base row at 128 tokens takes about 180 MB with its backward).") var batch: Int?
    @Option(help: "Output directory (default out/layer-ig).") var out: String?
    @Flag(help: "Overwrite an --out directory that already holds results.") var force = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func validate() throws {
        guard IntegrationRule(name: method) != nil else { throw ValidationError("unknown --method '\(method)'") }
        guard steps >= 1, (batch ?? 1) >= 1 else { throw ValidationError("--steps and --batch must be at least 1") }
        if target != "predicted", Int(target) == nil { throw ValidationError("--target must be a class index or 'predicted'") }
        if [inputs != nil, tokens != nil, !texts.isEmpty].filter({ $0 }).count != 1 {
            throw ValidationError("give one of --inputs IDS.npy, --tokens or --text")
        }
    }

    func run() throws {
        let dir = out ?? "out/layer-ig"
        try OutputDirectory.prepare(dir, explicit: out != nil, force: force || out == nil)
        let device = try global.selectedDevice()
        guard ONNXModel.isONNX(model) else { throw ValidationError("layer-ig takes an ONNX model (a .onnx file or a directory with model.onnx)") }
        guard let m = try TokenModel.load(model, on: device) else {
            let g = try ONNXModel.load(ONNXModel.file(at: model), on: device, dtype: .float32).graph
            throw AttribError.io(path: ONNXModel.file(at: model), detail: "layer-ig needs one token-id (integer) input and one output; this model has inputs \(g.inputs.map { "\($0.name): \($0.type)" }) and outputs \(g.outputs)")
        }
        let per = m.perInput, shape = m.shape
        guard let layer = layer ?? m.graph.embeddingOutput() else {
            throw AttribError.io(path: m.file, detail: "no embedding reads the input; give --layer with the name of the value to attribute at")
        }
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
        let n = ids.count / per
        guard n >= 1 else { throw ValidationError("no inputs") }
        let classes = m.classes
        let targets: [Int]
        if let t = Int(target) {
            guard t >= 0, t < classes else { throw ValidationError("--target \(t) is not one of the model's \(classes) classes") }
            targets = Array(repeating: t, count: n)
        } else {
            let logits = try m.logits(ids, rows: n, on: device)
            targets = (0..<n).map { i in (0..<classes).max { logits[i * classes + $0] < logits[i * classes + $1] }! }
        }
        let r = try LayerIntegratedGradients(rule: IntegrationRule(name: method)!, steps: steps, batchRows: batch)
            .attribute(m.exec, input: m.input, layer: layer, output: m.output, ids: ids, baselineIDs: [Int32](repeating: baselineToken, count: ids.count),
                       count: n, targets: targets, device: device)
        try NPY.write(r.attributions.map { Float($0) }, shape: r.shape, to: dir + "/attributions.npy")
        try NPY.write(r.tokenScores, shape: r.tokenShape, to: dir + "/token_scores.npy")
        let vocab = try TokenVocabulary.load(directory: ONNXModel.directory(at: model))
        let labels = try ONNXModel.attributionLabels(at: model)
        let perInput = r.tokenScores.count / n
        var entries: [JSONValue] = []
        for i in 0..<n {
            let row = (0..<perInput).map { j -> JSONValue in
                let id = Int(ids[i * per + j])
                var o: [String: JSONValue] = ["id": .int(id), "score": .double(r.tokenScores[i * perInput + j])]
                if let t = vocab?[id] { o["token"] = .string(t) }
                return .object(o)
            }
            entries.append(.object(["input": .int(i), "target": .int(targets[i]), "delta": .double(r.deltas[i]), "tokens": .array(row)]))
        }
        let summary: [String: JSONValue] = [
            "method": .string("layer-ig"), "model": .string(model), "device": .string(device.info.summary), "layer": .string(layer),
            "baselineToken": .int(Int(baselineToken)), "steps": .int(steps), "rule": .string(method), "inputs": .int(n),
            "seconds": .double(r.seconds), "maxAbsDelta": .double(r.deltas.map(abs).max() ?? 0),
            "rowsPerBatch": .int(r.plan.rows), "bytesPerRow": .int(r.plan.bytesPerRow), "memoryBudgetBytes": .int(r.plan.budgetBytes),
            "scores": .string("per token: the attribution summed over the layer's last axis"), "perInput": .array(entries),
            "files": .array([.string(dir + "/attributions.npy"), .string(dir + "/token_scores.npy"), .string(dir + "/summary.json")]),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(summary)
        try OutputDirectory.write(data, to: dir + "/summary.json")
        if json { print(String(decoding: data, as: UTF8.self)); return }
        print("layer-ig at \(layer) on \(device.info.summary): \(n) input(s), \(steps) steps, \(fixed(r.seconds, 2)) s; max |delta| = \(sci(r.deltas.map(abs).max() ?? 0))")
        print("batches of \(r.plan.rows) rows (about \(r.plan.bytesPerRow >> 20) MiB each, budget \(r.plan.budgetBytes >> 20) MiB)")
        for i in 0..<min(n, 5) {
            print("input \(i), target \(AttributionOptions.className(targets[i], labels)):")
            for j in 0..<perInput {
                let id = Int(ids[i * per + j])
                print("  \(pad(String(j), 4)) \(pad(vocab?[id] ?? "#\(id)", 16)) \(sci(r.tokenScores[i * perInput + j]))")
            }
        }
        if n > 5 { print("… \(n - 5) more inputs in summary.json") }
        for f in ["attributions.npy", "token_scores.npy", "summary.json"] { print("  wrote \(dir)/\(f)") }
    }

    /// The --text inputs as ids, each the model's length: its tokenizer's ids with special tokens,
    /// padded with [PAD] (the exported model has no attention mask, so the padding is part of
    /// what it reads: as when PyTorch runs the same padded ids). Longer texts are an error.
    func encodeTexts(per: Int) throws -> [Int32] {
        let dir = ONNXModel.directory(at: model)
        guard let tok = try HFTokenizer.forTextModel(directory: dir) else {
            throw AttribError.io(path: dir, detail: "--text needs the model's tokenizer: tokenizer.json, or BERT's vocab.txt, beside model.onnx")
        }
        let pad = tok.id(for: "[PAD]") ?? tok.id(for: "<pad>") ?? baselineToken
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
