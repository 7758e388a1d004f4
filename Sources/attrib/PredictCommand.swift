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
    func runTokenModel(_ device: any Device) throws -> Bool {
        guard ONNXModel.isONNX(model) else { return false }
        let file = model.hasSuffix(".onnx") ? model : model + "/model.onnx"
        let g = try ONNXModel.load(file, on: device, dtype: .float32).graph
        guard g.inputs.count == 1, g.inputs[0].type.dtype == .int32, g.outputs.count == 1 else { return false }
        let shape = g.inputs[0].type.shape, per = shape.reduce(1, *)
        let a = try NPY.read(inputs, rows: batching.limit)
        let ids = try a.int32s()
        guard a.count % per == 0, Array(a.shape.dropFirst()) == shape || a.shape.dropFirst().reduce(1, *) == per else {
            throw AttribError.shapeMismatch(op: inputs, detail: "ids have shape \(a.shape); the model takes [N] + \(shape)")
        }
        let n = ids.count / per, exec = GraphExecutor(g), output = g.outputs[0], width = g.types[output]!.count
        let rows = batching.batch ?? 64
        var logits: [Double] = []
        for lo in stride(from: 0, to: n, by: rows) {
            let k = min(rows, n - lo)
            logits += try exec.forward([g.inputs[0].name: Tensor(indices: Array(ids[(lo * per)..<((lo + k) * per)]), shape: [k] + shape, on: device)])[output]!.doubles()
        }
        let labels = try ONNXModel.attributionLabels(at: model)
        let probs = try Tensor(logits, shape: [n, width], dtype: .float64, on: CPUDevice.shared).softmax().doubles()
        let predictions = (0..<n).map { i -> Prediction in
            let p = Array(probs[(i * width)..<((i + 1) * width)])
            let best = p.indices.max { p[$0] < p[$1] }!
            return Prediction(index: i, predicted: best, label: labels?[best], probabilities: p)
        }
        try show(predictions, labels)
        return true
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
        if try runTokenModel(device) { return }
        let net = try loadAttributionModel(model, on: device)
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
