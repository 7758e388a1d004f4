import Attrib
import AttribONNX
import Foundation
import Testing

/// A Hugging Face text classifier exported to ONNX (Tests/Fixtures/onnx/tinybert, made by
/// make_text_fixtures.py): token-id inputs, embeddings looked up by Gather, the exporter's
/// position and token-type ids and attention mask folded at load; logits against PyTorch and
/// layer IG on the embeddings' output against Captum's LayerIntegratedGradients.
@Suite struct TextModelTests {
    static func array(_ file: String) throws -> NPYArray { try NPY.read(fixturePath("onnx/tinybert/\(file).npy")) }
    static var layer: String {
        get throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/tinybert/meta.json")))
            return (try JSONSerialization.jsonObject(with: data) as! [String: Any])["layer"] as! String
        }
    }

    @Test("logits against PyTorch (Float64 1e-6: the exporter folded constants in float32; Float32 1e-5), on every device")
    func logits() throws {
        let ids = try Self.array("ids").int32s(), logits = try Self.array("logits").doubles()
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(fixturePath("onnx/tinybert/model.onnx"), on: device, dtype: dtype)
            #expect(m.graph.inputs.count == 1 && m.graph.inputs[0].type.dtype == .int32, "the ids are the one input; the rest folded")
            let out = try GraphExecutor(m.graph).forward(["input_ids": Tensor(indices: ids, shape: [4, 16], on: device)])["logits"]!.doubles()
            let tol = dtype == .float64 ? 1e-6 : 1e-5
            #expect(GradientMethodTests.rel(out, logits) <= tol, "\(device.id) \(dtype): \(GradientMethodTests.rel(out, logits))")
        }
    }

    @Test("layer IG on the embeddings' output against Captum's LayerIntegratedGradients (Float64 1e-6, Float32 1e-4: GradientMethodTests' bounds), on every device")
    func layerIG() throws {
        let ids = try Self.array("ids").int32s(), targets = try Self.array("targets").int32s().map(Int.init)
        let lig = try Self.array("lig").doubles(), delta = try Self.array("lig_delta").doubles()
        let layer = try Self.layer
        for (device, dtype) in GradientMethodTests.configurations {
            let m = try ONNXModel.load(fixturePath("onnx/tinybert/model.onnx"), on: device, dtype: dtype)
            let r = try LayerIntegratedGradients(rule: .gaussLegendre, steps: 16, batchRows: 24)
                .attribute(GraphExecutor(m.graph), input: "input_ids", layer: layer, output: "logits", ids: ids,
                           baselineIDs: [Int32](repeating: 0, count: ids.count), count: 4, targets: targets, device: device)
            let tol = GradientMethodTests.tolerance(dtype)
            #expect(r.shape == [4, 16, 32] && r.tokenShape == [4, 16])
            #expect(GradientMethodTests.rel(r.attributions, lig) <= tol, "\(device.id) \(dtype): \(GradientMethodTests.rel(r.attributions, lig))")
            for i in 0..<4 { #expect(abs(r.deltas[i] - delta[i]) <= tol * 10, "delta \(i) on \(device.id) \(dtype): \(r.deltas[i]) vs \(delta[i])") }
            // A token's score is its row summed over the hidden dimension.
            #expect(abs(r.tokenScores[5] - lig[(5 * 32)..<(6 * 32)].reduce(0, +)) <= tol * 10)
        }
    }

    @Test("layer IG refuses a value the graph does not have, an input that is not one, and bad targets")
    func badArguments() throws {
        let m = try ONNXModel.load(fixturePath("onnx/tinybert/model.onnx"), on: cpu, dtype: .float64)
        let e = GraphExecutor(m.graph), lig = LayerIntegratedGradients(steps: 4)
        let ids = [Int32](repeating: 1, count: 16), zero = [Int32](repeating: 0, count: 16)
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "input_ids", layer: "nope", output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [0], device: cpu) }
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "logits", layer: try Self.layer, output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [0], device: cpu) }
        #expect(throws: AttribError.self) { try lig.attribute(e, input: "input_ids", layer: try Self.layer, output: "logits", ids: ids, baselineIDs: zero, count: 1, targets: [3], device: cpu) }
    }
}
