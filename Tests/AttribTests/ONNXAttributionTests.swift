import Attrib
import AttribONNX
import Foundation
import Testing

/// The attribution methods on ONNX files (issue 16's "methods take any graph", issue 17's
/// `--model x.onnx`): IG against Captum on the PyTorch model the file came from, saliency
/// against PyTorch's input gradients, the fused first affine layer found on any graph by rule
/// (Conv-first CNNs fuse; so does the residual MLP, whose skip add reads the input too), and the CLI.
@Suite struct ONNXAttributionTests {
    static func path(_ name: String) -> String { fixturePath("onnx/\(name)/model.onnx") }
    static func array(_ name: String, _ file: String) throws -> [Double] { try NPY.read(fixturePath("onnx/\(name)/\(file).npy")).doubles() }

    @Test("IG on the ONNX file matches Captum's on the PyTorch model (Float64 1e-6, Float32 1e-4: GradientMethodTests' bounds), on every device",
          arguments: ["resmlp", "bncnn", "fieldcnn", "tinyresnet", "tinymobilenet", "tinyvit", "tvvit", "tinydensenet", "tinyswin", "tinymobilenetv2",
                      // The other exports of the same modules (ONNXTests): the same references.
                      "tvvit/raw", "tvvit/dynamo", "tinyresnet/dynamo", "tinymobilenet/dynamo", "tinydensenet/dynamo", "tinymobilenetv2/dynamo"])
    func igAgainstCaptum(_ file: String) throws {
        let name = String(file.split(separator: "/")[0])
        let x = try Self.array(name, "inputs"), targets = try Self.array(name, "targets").map { [Int($0)] }
        let ig = try Self.array(name, "ig"), delta = try Self.array(name, "ig_delta")
        for (device, dtype) in GradientMethodTests.configurations {
            let model = try ONNXModel.attributionModel(at: Self.path(file), on: device, dtype: dtype)
            let tol = GradientMethodTests.tolerance(dtype)
            let r = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(model, inputs: x, count: targets.count,
                                                                                      baseline: .zero, targets: targets)
            #expect(GradientMethodTests.rel(r.attributions, ig) <= tol, "\(file) IG on \(device.id) \(dtype): \(GradientMethodTests.rel(r.attributions, ig))")
            #expect(r.fused, "\(name): fused first layer \(r.fused)")
            for i in targets.indices { #expect(abs(r.deltas![i] - delta[i]) <= tol * 10, "\(name) delta \(i) on \(device.id) \(dtype)") }
        }
    }

    @Test("fused and unfused IG agree on a Conv-first ONNX CNN (to rounding: the same sums in another order)")
    func fusedMatchesUnfused() throws {
        let x = try Self.array("bncnn", "inputs"), targets = try Self.array("bncnn", "targets").map { [Int($0)] }
        let model = try ONNXModel.attributionModel(at: Self.path("bncnn"), on: cpu, dtype: .float64)
        let a = try IntegratedGradients(steps: 24).attribute(model, inputs: x, count: 4, baseline: .constant(0.3), targets: targets)
        let b = try IntegratedGradients(steps: 24, fuseFirstLayer: false).attribute(model, inputs: x, count: 4, baseline: .constant(0.3), targets: targets)
        #expect(a.fused && !b.fused)
        #expect(GradientMethodTests.rel(a.attributions, b.attributions) < 1e-12)
    }

    @Test("fused and unfused IG agree on the residual MLP, whose skip add reads the input beside the first Linear (Float64, to rounding)")
    func fusedWithSideReaders() throws {
        let x = try Self.array("resmlp", "inputs"), targets = try Self.array("resmlp", "targets").map { [Int($0)] }
        let model = try ONNXModel.attributionModel(at: Self.path("resmlp"), on: cpu, dtype: .float64)
        #expect(model.forwardExecutor.graph.firstAffine()?.sideReaders == true)
        for baseline in [Baseline.zero, .constant(0.3)] {
            let a = try IntegratedGradients(steps: 24).attribute(model, inputs: x, count: 4, baseline: baseline, targets: targets)
            let b = try IntegratedGradients(steps: 24, fuseFirstLayer: false).attribute(model, inputs: x, count: 4, baseline: baseline, targets: targets)
            #expect(a.fused && !b.fused)
            // The skip add's share: without it the attributions miss the input's direct path.
            #expect(GradientMethodTests.rel(a.attributions, b.attributions) < 1e-12, "\(GradientMethodTests.rel(a.attributions, b.attributions))")
            for i in 0..<4 { #expect(abs(a.deltas![i] - b.deltas![i]) < 1e-12) }
        }
    }

    @Test("the signed gradient on the ONNX file is PyTorch's input gradient (Float64: ONNXTests' bound)", arguments: ["resmlp", "bncnn", "fieldcnn", "tinyresnet", "tinymobilenet", "tinyvit", "tvvit", "tinydensenet", "tinyswin", "tinymobilenetv2"])
    func saliency(_ name: String) throws {
        let x = try Self.array(name, "inputs"), targets = try Self.array(name, "targets").map { [Int($0)] }
        let model = try ONNXModel.attributionModel(at: Self.path(name), on: cpu, dtype: .float64)
        let r = try GradientMethods.plain(.signedGradient, model, inputs: x, count: 4, targets: targets)
        let err = GradientMethodTests.rel(r.attributions, try Self.array(name, "input_grads"))
        #expect(err < (try ONNXTests.float64Tolerance(name)), "\(name): \(err)")
    }

    @Test("Graph.firstAffine: through Flatten and Reshape to the first Linear/Conv2d; the input's other readers are side readers; none where a value on the way is read twice or is an output")
    func firstAffineRule() throws {
        let mlp = try Sequential.load(fixturePath("../../Models/digits-mlp"), on: cpu)
        let f = try #require(mlp.forwardExecutor.graph.firstAffine())
        #expect(f.layer is Linear && f.output == "1" && f.layerInput == "0", "digits-mlp: Flatten then Linear")
        #expect(try ONNXModel.attributionModel(at: Self.path("bncnn"), on: cpu).forwardExecutor.graph.firstAffine()?.layer is Conv2d)
        #expect(f.sideReaders == false)
        let res = try #require(try ONNXModel.attributionModel(at: Self.path("resmlp"), on: cpu).forwardExecutor.graph.firstAffine(),
                               "the skip add reads the input too: a side reader, not a reason to decline")
        #expect(res.layer is Linear && res.sideReaders)
        // A Flatten whose output is also a graph output cannot be cut past.
        let lin = try Linear(weight: Tensor(randomValues(12, seed: 1), shape: [3, 4], on: cpu), bias: nil)
        let g = try Graph(inputs: [("x", ValueType([2, 2], .float32))],
                          nodes: [GraphNode("flat", LayerOp(Flatten()), inputs: ["x"], output: "f"),
                                  GraphNode("fc", LayerOp(lin), inputs: ["f"], output: "y")], outputs: ["y", "f"])
        #expect(g.firstAffine() == nil)
        let g2 = try Graph(inputs: [("x", ValueType([2, 2], .float32))],
                           nodes: [GraphNode("flat", LayerOp(Flatten()), inputs: ["x"], output: "f"),
                                   GraphNode("fc", LayerOp(lin), inputs: ["f"], output: "y")], outputs: ["y"])
        #expect(g2.firstAffine()?.output == "y")
    }

    @Test("the CLI takes a .onnx file or a directory with model.onnx and labels.txt: predict and ig run, labels are read, a graph with two outputs is refused")
    func cli() throws {
        let dir = try cliTempDir("onnxdir")
        try FileManager.default.copyItem(atPath: Self.path("bncnn"), toPath: dir + "/model.onnx")
        try (0..<10).map { "class-\($0)" }.joined(separator: "\n").write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        let inputs = fixturePath("onnx/bncnn/inputs.npy")
        let p = try runAttrib(["predict", "--model", dir, "--inputs", inputs, "--json"])
        #expect(p.status == 0, "\(p.stderr)")
        #expect(p.stdout.contains("\"label\" : \"class-"), "\(p.stdout)")
        let ig = try runAttrib(["ig", "--model", Self.path("fieldcnn"), "--inputs", inputs, "--steps", "8", "--json", "--out", try cliTempDir("onnxig")]).json()
        #expect(ig["completedInputs"] as? Int == 4 && ig["fusedFirstLayer"] as? Bool == true)
        // RGB inputs: Sobol's maps are [1, H, W] per input, drawn over the [3, H, W] image (this
        // indexed the maps by the input's size and trapped before).
        let rgb = fixturePath("onnx/tinyresnet/inputs.npy"), sob = try cliTempDir("onnxsobol")
        let s = try runAttrib(["sobol", "--model", Self.path("tinyresnet"), "--inputs", rgb, "--grid", "4", "--designs", "8", "--out", sob])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: sob + "/heatmaps").count == 4)
        let sal = try runAttrib(["saliency", "--model", Self.path("tinyresnet"), "--inputs", rgb, "--out", try cliTempDir("onnxsal")])
        #expect(sal.status == 0, "\(sal.stderr)")
        try "a\nb".write(toFile: dir + "/labels.txt", atomically: true, encoding: .utf8)
        let bad = try runAttrib(["predict", "--model", dir, "--inputs", inputs])
        #expect(bad.status != 0 && bad.stderr.contains("2 labels for 10 outputs"), "\(bad.stderr)")
    }

    @Test("attrib bench model takes ONNX files: the sweep's forward and backward timed per batch; a token-id model is refused by name")
    func benchModel() throws {
        let r = try runAttrib(["bench", "model", "--model", Self.path("tinyresnet"), "--batches", "1,3", "--seconds", "0.05", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r.stdout)")
        #expect(rows.map { $0["batch"] as? Int } == [1, 3])
        #expect(rows.allSatisfy { ($0["samplesPerSecond"] as? Double ?? 0) > 0 && ($0["repetitions"] as? Int ?? 0) >= 1 })
        let bert = try runAttrib(["bench", "model", "--model", fixturePath("onnx/tinybert/model.onnx"), "--batches", "1"])
        #expect(bert.status != 0 && bert.stderr.contains("input_ids"), "\(bert.stderr)")
    }
}
