import Attrib
import AttribONNX
import Foundation
import Testing

/// Text classifiers of the encoder families beyond BERT, exported to ONNX
/// (Tests/Fixtures/onnx/encoders, make_encoder_fixtures.py): RoBERTa's position ids computed
/// from the ids at run time (integer ops on the host), ALBERT's gelu_new (Pow and Tanh fused
/// into one GELU), MPNet's relative-position buckets and ModernBERT's rotary tables (folded at
/// load), DeBERTa-v2's masked attention (Where), ModernBERT's Split. Logits against PyTorch
/// and layer IG on the embeddings' output against Captum's LayerIntegratedGradients, baseline
/// the pad token, on every device.
@Suite struct EncoderFamilyTests {
    static let families = ["roberta", "albert", "mpnet", "deberta", "modernbert"]
    static func path(_ name: String, _ file: String) -> String { fixturePath("onnx/encoders/\(name)/\(file)") }
    static func array(_ name: String, _ file: String) throws -> NPYArray { try NPY.read(path(name, "\(file).npy")) }
    static func meta(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path(name, "meta.json")))) as! [String: Any]
    }

    @Test("logits against PyTorch (Float64 1e-6: the exporter folded constants in float32; Float32 1e-5), on every device", arguments: families)
    func logits(_ name: String) throws {
        let ids = try Self.array(name, "ids").int32s(), logits = try Self.array(name, "logits").doubles()
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(Self.path(name, "model.onnx"), on: device, dtype: dtype)
            #expect(m.graph.inputs.count == 1 && m.graph.inputs[0].type.dtype == .int32)
            let out = try GraphExecutor(m.graph).forward(["input_ids": Tensor(indices: ids, shape: [4, 16], on: device)])["logits"]!.doubles()
            let tol = dtype == .float64 ? 1e-6 : 1e-5
            #expect(GradientMethodTests.rel(out, logits) <= tol, "\(name) on \(device.id) \(dtype): \(GradientMethodTests.rel(out, logits))")
        }
    }

    @Test("layer IG on the embeddings' output against Captum's (Float64 1e-6, Float32 1e-4: GradientMethodTests' bounds), baseline the pad token, on every device",
          arguments: families)
    func layerIG(_ name: String) throws {
        let ids = try Self.array(name, "ids").int32s(), targets = try Self.array(name, "targets").int32s().map(Int.init)
        let ligArray = try Self.array(name, "lig"), delta = try Self.array(name, "lig_delta").doubles()
        let lig = try ligArray.doubles()
        let meta = try Self.meta(name)
        let (layer, pad) = (meta["layer"] as! String, Int32(meta["pad"] as! Int))
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(Self.path(name, "model.onnx"), on: device, dtype: dtype)
            let r = try LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, batchRows: 24)
                .attribute(GraphExecutor(m.graph), input: "input_ids", layer: layer, output: "logits", ids: ids,
                           baselineIDs: [Int32](repeating: pad, count: ids.count), count: 4, targets: targets, device: device)
            let tol = GradientMethodTests.tolerance(dtype)
            #expect(r.shape == ligArray.shape)
            #expect(GradientMethodTests.rel(r.attributions, lig) <= tol, "\(name) on \(device.id) \(dtype): \(GradientMethodTests.rel(r.attributions, lig))")
            for i in 0..<4 { #expect(abs(r.deltas[i] - delta[i]) <= tol * 10, "\(name) delta \(i) on \(device.id) \(dtype): \(r.deltas[i]) vs \(delta[i])") }
        }
    }

    @Test("the rewrites these files need: RoBERTa's and MPNet's position ids as integer ops, ALBERT's gelu_new as one GELU (no Pow left), DeBERTa's Where as products")
    func rewrites() throws {
        func kinds(_ name: String) throws -> [String] { try ONNXModel.load(Self.path(name, "model.onnx"), on: cpu).graph.nodes.map(\.op.kind) }
        #expect(try kinds("roberta").contains("Integer"))
        #expect(try kinds("mpnet").contains("Integer"))
        let albert = try ONNXModel.load(Self.path("albert", "model.onnx"), on: cpu).graph
        #expect(!albert.nodes.contains { $0.op is PowGraphOp })
        #expect(albert.nodes.filter { (($0.op as? LayerOp)?.layer as? ActivationLayer)?.kind == .geluTanh }.count == 2)
        #expect(!(try kinds("deberta")).contains("Where"))
    }

    @Test("the default layer is each family's embeddings' output (the module Captum attributes at)", arguments: families)
    func defaultLayer(_ name: String) throws {
        let m = try ONNXModel.load(Self.path(name, "model.onnx"), on: cpu)
        #expect(m.graph.embeddingOutput() == (try Self.meta(name))["layer"] as? String)
    }

    /// RoBERTa's pad token is 1: with a tokenizer beside the file whose [PAD] is 1, `attrib
    /// layer-ig` takes it as the baseline without being told, and with the default layer gives
    /// Captum's token scores (whose baseline was the pad token).
    @Test("attrib layer-ig on RoBERTa: the baseline defaults to the tokenizer's pad token (1), the layer to the embeddings' output; Captum's token scores")
    func cliPadDefault() throws {
        let d = try cliTempDir("layerig-roberta")
        defer { try? FileManager.default.removeItem(atPath: d) }
        let model = d + "/roberta"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.path("roberta", "model.onnx"), toPath: model + "/model.onnx")
        let vocab = ["[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"] + (5..<100).map { "w\($0)" }
        try (vocab.joined(separator: "\n") + "\n").write(toFile: model + "/vocab.txt", atomically: true, encoding: .utf8)
        let r = try runAttrib(["layer-ig", "--model", model, "--inputs", Self.path("roberta", "ids.npy"), "--steps", "16", "--out", d + "/out", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let s = try r.json()
        #expect(s["baselineToken"] as? Int == 1)
        #expect(s["layer"] as? String == (try Self.meta("roberta"))["layer"] as? String)
        let scores = try NPY.read(d + "/out/token_scores.npy").doubles(), lig = try Self.array("roberta", "lig").doubles()
        let captum = (0..<64).map { t in lig[(t * 32)..<((t + 1) * 32)].reduce(0, +) }
        // Float32 through the model: GradientMethodTests' 1e-4 of the largest score.
        #expect(GradientMethodTests.rel(scores, captum) <= 1e-4, "\(GradientMethodTests.rel(scores, captum))")
    }
}
