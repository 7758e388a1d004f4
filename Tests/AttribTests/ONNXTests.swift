import Attrib
import AttribONNX
import SwiftProtobuf
import Foundation
import Testing

/// ONNX models exported by PyTorch (Tests/Fixtures/onnx/make_onnx_fixtures.py) as graphs:
/// logits and input gradients against PyTorch in float64 on the CPU backend (Float64 and
/// Float32) and every OpenCL device; the residual MLP's hooks (capture, replace, stop-gradient,
/// an inner gradient) against PyTorch's hooks by the file's value names; BatchNormalization
/// folded; malformed and unsupported files refused with the node named.
@Suite struct ONNXTests {
    static func array(_ dir: String, _ name: String) throws -> [Double] { try NPY.read(fixturePath("onnx/\(dir)/\(name).npy")).doubles() }
    static func meta(_ dir: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/\(dir)/meta.json")))) as! [String: Any]
    }

    /// Float64 against PyTorch's float64: 1e-10, except for files the exporter constant-folded
    /// (meta.json; the dynamo exporter's optimizer always folds BatchNormalization): their convolution weights are w·γ/√(σ² + ε) rounded to float32 (relative error
    /// ≤ u₃₂ ≈ 6e-8 each), while PyTorch's float64 reference folds nothing; a few such layers
    /// stay within 1e-6.
    static func float64Tolerance(_ name: String, file: String = "model.onnx") throws -> Double {
        try meta(name)["exporter_constant_folding"] as? Bool == true || file.hasPrefix("dynamo/") ? 1e-6 : 1e-10
    }

    /// ∂F_target/∂(value) for every row: a one-hot upstream at the logits.
    static func gradients(_ exec: GraphExecutor, _ run: GraphExecutor.Run, targets: [Int], wrt: String, stop: Set<String> = []) throws -> Tensor {
        let logits = run["logits"]!
        var up = [Double](repeating: 0, count: logits.count)
        for (i, t) in targets.enumerated() { up[i * 10 + t] = 1 }
        return try exec.backward(run, upstream: ["logits": Tensor(up, shape: logits.shape, dtype: logits.dtype, on: logits.device)],
                                 wrt: [wrt], stopGradient: stop)[wrt]!
    }

    @Test("logits and input gradients match PyTorch (Float64 1e-10, 1e-6 for exporter-folded files; Float32 1e-5: a few layers of ≤ 64-term sums)",
          arguments: ["resmlp", "bncnn", "fieldcnn", "tinyresnet", "tinymobilenet", "tinyvit", "tvvit", "tinydensenet", "tinyswin", "tinymobilenetv2"])
    func againstPyTorch(_ name: String) throws { try Self.checkAgainstPyTorch(name, file: "model.onnx") }

    /// torch.onnx.export(dynamo=True)'s files of the same modules: no Shape arithmetic around
    /// the batch (a Reshape's -1 holds it), ReduceMean for adaptive pooling, a bool mask, weights
    /// as external data; torchvision's ViT with its attention moving the batch axis.
    @Test("the same models as the dynamo exporter writes them: logits and input gradients match PyTorch (the same bounds)",
          arguments: ["resmlp", "bncnn", "fieldcnn", "tinyresnet", "tinymobilenet", "tinyvit", "tvvit", "tinydensenet", "tinymobilenetv2"])
    func dynamoExporter(_ name: String) throws { try Self.checkAgainstPyTorch(name, file: "dynamo/model.onnx") }

    static func checkAgainstPyTorch(_ name: String, file: String) throws {
        let x = try Self.array(name, "inputs"), targets = try Self.array(name, "targets").map { Int($0) }
        let (logits, grads) = (try Self.array(name, "logits"), try Self.array(name, "input_grads"))
        for (device, dtype) in GradientMethodTests.configurations {
            let model = try ONNXModel.load(fixturePath("onnx/\(name)/\(file)"), on: device, dtype: dtype)
            #expect(!model.graph.nodes.contains { $0.op.kind == "BatchNormalization" })
            let exec = GraphExecutor(model.graph)
            let shape = [targets.count] + model.graph.inputs[0].type.shape
            let run = try exec.forward(["input": Tensor(x, shape: shape, dtype: dtype, on: device)], gradientsFor: ["input"])
            let tol = dtype == .float64 ? try Self.float64Tolerance(name, file: file) : 1e-5
            let out = try run["logits"]!.doubles()
            #expect(GradientMethodTests.rel(out, logits) <= tol, "\(name)/\(file) logits on \(device.id) \(dtype): \(GradientMethodTests.rel(out, logits))")
            let g = try Self.gradients(exec, run, targets: targets, wrt: "input").doubles()
            #expect(GradientMethodTests.rel(g, grads) <= tol, "\(name)/\(file) input gradients on \(device.id) \(dtype): \(GradientMethodTests.rel(g, grads))")
        }
    }

    /// nn.MultiheadAttention computes on [L, N, E] and folds the heads into the batch; the
    /// builder follows the moved batch (ONNXBatchLayout.swift), so the graph keeps it first and
    /// the file gives PyTorch's numbers.
    @Test("torchvision's ViT as the TorchScript exporter writes it (attention moving the batch axis): logits and input gradients match PyTorch")
    func batchMovingAttention() throws {
        try Self.checkAgainstPyTorch("tvvit", file: "raw/model.onnx")
        // Every value of the graph holds the batch first: its transposes act within a sample.
        let g = try ONNXModel.load(fixturePath("onnx/tvvit/raw/model.onnx"), on: cpu).graph
        #expect(g.nodes.contains { $0.op is TransposeGraphOp }, "the attention's per-sample transposes are there")
    }

    @Test("a moved batch that reaches an op which cannot follow it, or an output, is an error naming the node and the layout")
    func movedBatchErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-moved-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let raw = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/tvvit/raw/model.onnx"))))
        let t = raw.graph.node.firstIndex { $0.opType == "Transpose" && $0.name.contains("self_attention") }!
        let moved = raw.graph.node[t].output[0]
        // The [L, N, E] value as the graph's output.
        var m = raw
        m.graph.output[0].name = moved
        try Data(m.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: dir + "/out.onnx"))
        expectAttribError([dir + "/out.onnx", "graph output '\(moved)'", "batch dimension at ONNX axis 1"]) { _ = try ONNXModel.load(dir + "/out.onnx", on: cpu) }
        // An op the layout rule does not cover reading it: the in-projection's MatMul made a Sqrt.
        m = raw
        let p = m.graph.node.firstIndex { $0.opType == "MatMul" && $0.input.first == moved }!
        m.graph.node[p].opType = "Sqrt"
        m.graph.node[p].input = [moved]
        try Data(m.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: dir + "/op.onnx"))
        expectAttribError([dir + "/op.onnx", "node '\(m.graph.node[p].name)' (Sqrt) reads '\(moved)'", "at ONNX axis 1", "Sqrt is not one of those"]) {
            _ = try ONNXModel.load(dir + "/op.onnx", on: cpu)
        }
    }

    @Test("hooks by ONNX value names against PyTorch's hooks: capture, replace, stop-gradient, an inner gradient (Float64 1e-12)")
    func hooks() throws {
        let meta = try Self.meta("resmlp")
        let (tanh, fc2) = (meta["capture"] as! String, meta["stop"] as! String)
        let model = try ONNXModel.load(fixturePath("onnx/resmlp/model.onnx"), on: cpu, dtype: .float64)
        let exec = GraphExecutor(model.graph)
        let x = try Self.array("resmlp", "inputs"), targets = try Self.array("resmlp", "targets").map { Int($0) }
        let xt = try Tensor(x, shape: [4, 64], on: cpu)
        let run = try exec.forward(["input": xt], hooks: .init(capture: [tanh]), gradientsFor: ["input", tanh])
        expectClose(try run[tanh]!.doubles(), try Self.array("resmlp", "capture"), bound: { _ in 1e-12 }, "captured \(tanh)")
        // Replace: the Tanh output of the inputs in reverse order.
        let flipped = try Tensor(stride(from: 3, through: 0, by: -1).flatMap { x[($0 * 64)..<(($0 + 1) * 64)] }, shape: [4, 64], on: cpu)
        let corrupt = try exec.forward(["input": flipped], hooks: .init(capture: [tanh]))[tanh]!
        let patched = try exec.forward(["input": xt], hooks: .init(replace: [tanh: corrupt]))["logits"]!.doubles()
        expectClose(patched, try Self.array("resmlp", "patched"), bound: { _ in 1e-12 }, "logits with \(tanh) replaced")
        let stopped = try Self.gradients(exec, run, targets: targets, wrt: "input", stop: [fc2]).doubles()
        expectClose(stopped, try Self.array("resmlp", "stopped_grads"), bound: { _ in 1e-12 }, "input gradients with \(fc2) stopped")
        let inner = try Self.gradients(exec, run, targets: targets, wrt: tanh).doubles()
        expectClose(inner, try Self.array("resmlp", "inner_grads"), bound: { _ in 1e-12 }, "gradient at \(tanh)")
    }

    @Test("malformed and unsupported files: a clear error naming the file and the node, never a crash")
    func badFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/resmlp/model.onnx")))
        func message(_ bytes: Data) -> String {
            let p = dir + "/m.onnx"
            _ = FileManager.default.createFile(atPath: p, contents: bytes)
            do { _ = try ONNXModel.load(p, on: cpu); return "no error" } catch { return "\(error)" }
        }
        // Truncated: the protobuf ends inside a field.
        let truncated = message(good.prefix(good.count / 2))
        #expect(truncated.contains("m.onnx") && truncated.contains("not a readable ONNX model"), "\(truncated)")
        #expect(message(Data()).contains("holds no graph"))
        // An op outside the set: rename Tanh's op type in place (same length keeps the protobuf valid).
        // (The node and value names contain "Tanh" too, so they change with it.)
        let renamed = message(Self.replacing(good, "Tanh", "Tanz"))
        #expect(renamed.contains("node '/act/Tanz' has op type Tanz (opset 17)") && renamed.contains("supported: Abs, Add"), "\(renamed)")
        // A missing initializer: the weight the first Gemm reads renamed, so nothing provides it.
        let missing = message(Self.replacing(good, "fc1.weight", "fc1.wEight", occurrence: 1))
        #expect(missing.contains("/fc1/Gemm") && missing.contains("input 'fc1.weight' must be a constant"), "\(missing)")
    }

    /// Issue 22 for ONNX: an attribute an op does not implement is refused, naming the file,
    /// the node, its op type and the attribute; an unknown attribute too. (The implemented
    /// ones, dilations, group and pads, are fieldcnn's numbers against PyTorch above.)
    @Test("ONNX attributes: unsupported values and unknown attributes refused, naming the node and the attribute")
    func attributes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-attr-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = try Onnx_ModelProto(serializedBytes: Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/fieldcnn/model.onnx"))))
        func attribute(_ name: String, int i: Int? = nil, string s: String? = nil) -> Onnx_AttributeProto {
            var a = Onnx_AttributeProto()
            a.name = name
            if let i { a.type = .int; a.i = Int64(i) }
            if let s { a.type = .string; a.s = Data(s.utf8) }
            return a
        }
        let cases: [(op: String, Onnx_AttributeProto, [String])] = [
            ("MaxPool", attribute("ceil_mode", int: 2), ["(MaxPool)", "ceil_mode = 2; 0 or 1 is needed"]),
            ("Conv", attribute("auto_pad", string: "SAME_UPPER"), ["(Conv)", "auto_pad"]),
            ("Relu", attribute("alpha", int: 2), ["(Relu)", "attribute alpha is not supported"]),
            ("AveragePool", attribute("ceil_mode", int: -1), ["(AveragePool)", "ceil_mode"]),
        ]
        for (k, (op, attr, fragments)) in cases.enumerated() {
            var m = good
            guard let i = m.graph.node.firstIndex(where: { $0.opType == op }) else { Issue.record("no \(op) node"); continue }
            m.graph.node[i].attribute.removeAll { $0.name == attr.name }
            m.graph.node[i].attribute.append(attr)
            let p = dir + "/m\(k).onnx"
            try Data(m.serializedBytes() as [UInt8]).write(to: URL(fileURLWithPath: p))
            expectAttribError([p, "node '\(m.graph.node[i].name)'"] + fragments) { _ = try ONNXModel.load(p, on: cpu) }
        }
    }

    /// `bytes` with the `occurrence`-th (0-based; nil: every) appearance of `a` replaced by `b` (same length).
    static func replacing(_ bytes: Data, _ a: String, _ b: String, occurrence: Int? = nil) -> Data {
        var d = [UInt8](bytes)
        let (pa, pb) = (Array(a.utf8), Array(b.utf8))
        var seen = 0
        var i = 0
        while i + pa.count <= d.count {
            if Array(d[i..<(i + pa.count)]) == pa {
                if occurrence == nil || occurrence == seen { d.replaceSubrange(i..<(i + pa.count), with: pb) }
                seen += 1
                i += pa.count
            } else { i += 1 }
        }
        return Data(d)
    }

    /// Initializers in an external file (Tests/Fixtures/onnx/make_external_fixture.py: resmlp
    /// re-saved with save_as_external_data): the same logits as the inline file, bitwise; a
    /// location outside the model's directory, a missing file and a length past the end are errors.
    @Test("external-data initializers load like inline ones; bad locations, missing files and short files are refused")
    func externalData() throws {
        let inline = try ONNXModel.load(fixturePath("onnx/resmlp/model.onnx"), on: cpu, dtype: .float64)
        let external = try ONNXModel.load(fixturePath("onnx/external/model.onnx"), on: cpu, dtype: .float64)
        let x = try Self.array("resmlp", "inputs"), n = try Self.array("resmlp", "targets").count
        func logits(_ m: ONNXModel) throws -> [Double] {
            try GraphExecutor(m.graph).forward(["input": Tensor(x, shape: [n] + m.graph.inputs[0].type.shape, on: cpu)])["logits"]!.doubles()
        }
        #expect(try logits(external) == logits(inline))
        // Edited copies of the model file: the location, or the file's length.
        let src = try Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/external/model.onnx")))
        let bin = try Data(contentsOf: URL(fileURLWithPath: fixturePath("onnx/external/weights.bin")))
        for (label, model, weights, fragment) in [
            ("outside", Self.replacing(src, "weights.bin", "../ights.bi"), bin, "outside the model's directory"),
            ("missing", Self.replacing(src, "weights.bin", "weights.bix"), bin, "weights.bix"),
            ("short", src, bin.prefix(bin.count - 8), "past the end")] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-ext-\(label)-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try model.write(to: URL(fileURLWithPath: dir + "/model.onnx"))
            try weights.write(to: URL(fileURLWithPath: dir + "/weights.bin"))
            expectAttribError([dir + "/model.onnx", "external data", fragment]) { _ = try ONNXModel.load(dir + "/model.onnx", on: cpu) }
        }
    }
}
