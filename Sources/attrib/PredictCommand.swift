#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Attrib

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Class probabilities and the predicted class per input.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model: a directory with config.json + model.safetensors, a .onnx file, or a directory with model.onnx (and labels.json or labels.txt).") var model: String
    @Option(help: "Inputs: .npy of shape [N] + the model's input shape (or [N, its element count]; token ids for a text model), or PNG images (a .png file or a directory of them), resized and normalised with the model's preprocessing.json.") var inputs: String
    @OptionGroup var batching: BatchOptions
    @Flag(help: "Print JSON.") var json = false

    struct Prediction: Encodable {
        var index: Int
        var predicted: Int
        var label: String?
        var probabilities: [Double]
    }

    /// A token-id ONNX model (BERT-style): its softmax over the logits, from ids in a .npy.
    func runTokenModel(_ m: TokenModel, _ device: any Device) throws {
        let ids = try m.readIDs(inputs, limit: batching.limit)
        let n = ids.count / m.perInput, width = m.classes
        let logits = try m.logits(ids, rows: batching.batch ?? 64, on: device)
        let labels = try ONNXModel.attributionLabels(at: model)
        let probs = try Tensor(logits, shape: [n, width], dtype: .float64, on: CPUDevice.shared).softmax().doubles()
        let predictions = (0..<n).map { i -> Prediction in
            let p = Array(probs[(i * width)..<((i + 1) * width)])
            let best = p.indices.max { p[$0] < p[$1] }!
            return Prediction(index: i, predicted: best, label: labels?[best], probabilities: p)
        }
        try show(predictions, labels)
    }

    func show(_ predictions: [Prediction], _ labels: [String]?) throws {
        if json { try printJSON(predictions); return }
        for p in predictions {
            let top = p.probabilities.enumerated().sorted { $0.element > $1.element }.prefix(3)
                .map { "\(labels?[$0.offset] ?? String($0.offset)): \(fixed($0.element, 3))" }.joined(separator: "  ")
            print("\(pad(String(p.index), 5)) → \(pad(p.label ?? String(p.predicted), 4))  [\(top)]")
        }
    }

    func run() throws {
        let device = try global.selectedDevice()
        let net: any AttributionModel
        if ONNXModel.isONNX(model) {
            // Loaded once, then run as what its inputs say: token ids or samples.
            let onnx = try ONNXModel.load(ONNXModel.file(at: model), on: device, dtype: .float32)
            if let m = try TokenModel(onnx.graph, file: ONNXModel.file(at: model)) { return try runTokenModel(m, device) }
            net = try ONNXModel.attributionModel(onnx, at: model, on: device)
        } else {
            net = try loadAttributionModel(model, on: device)
        }
        let (n, values, _) = try readInputs(inputs, model: model, net: net, limit: batching.limit)
        // In device batches sized like every forward-only sweep's (--batch caps them).
        let rows = SobolAttribution.forwardPlan(for: net, cap: batching.batch).rows, d = net.inputSize
        var outputs: [Double] = []
        for lo in stride(from: 0, to: n, by: rows) {
            let k = min(rows, n - lo)
            outputs += try net.outputs(Tensor(Array(values[(lo * d)..<((lo + k) * d)]), shape: [k] + net.inputShape, dtype: net.dtype, on: device)).doubles()
        }
        let out = try Tensor(outputs, shape: [n] + net.outputShape, dtype: .float64, on: CPUDevice.shared)
        // Probabilities: the model's own if it ends in (log-)softmax, else softmax of its outputs.
        let last = net.finalSoftmax
        let probs = try (last == nil ? out.reshaped([out.batchSize, out.count / out.batchSize]).softmax() : out).doubles()
        let width = out.count / out.batchSize
        var predictions: [Prediction] = []
        for i in 0..<out.batchSize {
            var p = Array(probs[i * width..<(i + 1) * width])
            if last?.log == true { p = p.map { exp($0) } }
            let best = p.indices.max { p[$0] < p[$1] }!
            predictions.append(Prediction(index: i, predicted: best, label: net.labels?[best], probabilities: p))
        }
        try show(predictions, net.labels)
    }
}
