import Attrib
import Testing

/// Models against PyTorch fixtures (Tests/Fixtures/torch/make_fixtures.py), OpenCL
/// against CPU on whole models, and the bundled digits models.
@Suite struct ModelTests {
    static let fixtures = ["mlp", "cnn", "zoo"]

    /// max |got − want| / max |want|: a normwise relative error, since single entries
    /// of a gradient can be arbitrarily close to zero.
    static func relativeError(_ got: [Double], _ want: [Double]) -> Double {
        var d = 0.0, m = 0.0
        for i in want.indices { d = max(d, abs(got[i] - want[i])); m = max(m, abs(want[i])) }
        return got.count == want.count ? d / max(m, .leastNormalMagnitude) : .infinity
    }

    /// Runs a fixture on a device: outputs, input gradient and the gradient at layer 1's output.
    static func run(_ name: String, on device: any Device, dtype: DType) throws -> (logits: [Double], input: [Double], hidden: [Double]) {
        let dir = fixturePath("torch/" + name)
        let model = try Sequential.load(dir, on: device, dtype: dtype)
        let x = try NPY.tensor(dir + "/inputs.npy", dtype: dtype, on: device)
        let targets = try NPY.read(dir + "/targets.npy").int32s().map(Int.init)
        let g = try model.gradients(x, objective: .classIndex(targets), activationLayers: [1])
        return (try g.outputs.doubles(), try g.input.doubles(), try g.activations[1]!.doubles())
    }

    static func reference(_ name: String, _ file: String) throws -> [Double] {
        try NPY.read(fixturePath("torch/\(name)/\(file).npy")).doubles()
    }

    @Test("CPU backend matches PyTorch: Float64 to 1e-12, Float32 to 1e-5", arguments: fixtures)
    func pytorchCPU(_ name: String) throws {
        let (l64, g64, h64) = try Self.run(name, on: cpu, dtype: .float64)
        let logits = try Self.reference(name, "logits"), grads = try Self.reference(name, "input_grads"), hidden = try Self.reference(name, "hidden_grads")
        // Float64 on both sides from the same Float32 weights: only summation order differs.
        #expect(Self.relativeError(l64, logits) <= 1e-12, "\(name) logits f64")
        #expect(Self.relativeError(g64, grads) <= 1e-12, "\(name) input gradients f64")
        #expect(Self.relativeError(h64, hidden) <= 1e-12, "\(name) hidden gradients f64")
        let (l32, g32, h32) = try Self.run(name, on: cpu, dtype: .float32)
        #expect(Self.relativeError(l32, logits) <= 1e-5, "\(name) logits f32: \(Self.relativeError(l32, logits))")
        #expect(Self.relativeError(g32, grads) <= 1e-5, "\(name) input gradients f32: \(Self.relativeError(g32, grads))")
        #expect(Self.relativeError(h32, hidden) <= 1e-5, "\(name) hidden gradients f32: \(Self.relativeError(h32, hidden))")
    }

    /// OpenCL in Float32 against PyTorch's Float64 reference and the CPU backend. Each layer's
    /// dot products of length K add at most γ_K ≈ K·u of relative error, forward and
    /// backward, so the bound is 2·u·ΣK over the layers (×2 for comparing two Float32 runs);
    /// at least 1e-5, the CPU backend's own bound.
    @Test("OpenCL matches PyTorch and the CPU backend on whole models", arguments: fixtures)
    func pytorchOpenCL(_ name: String) throws {
        let model = try Sequential.load(fixturePath("torch/" + name), on: cpu)
        let sumK = model.layers.reduce(0) { acc, l in
            if let lin = l as? Linear { return acc + lin.inFeatures }
            if let conv = l as? Conv2d { return acc + conv.inChannels * conv.kernel[0] * conv.kernel[1] }
            if let ln = l as? LayerNormLayer { return acc + ln.gamma.count }
            return acc + 8
        }
        let bound = max(1e-5, 4 * Double(sumK) * DType.float32.unitRoundoff)
        let logits = try Self.reference(name, "logits"), grads = try Self.reference(name, "input_grads")
        let (lc, gc, hc) = try Self.run(name, on: cpu, dtype: .float32)
        for device in openCLDevices {
            let (l, g, h) = try Self.run(name, on: device, dtype: .float32)
            #expect(Self.relativeError(l, logits) <= bound, "\(device.id) \(name) logits vs PyTorch")
            #expect(Self.relativeError(g, grads) <= bound, "\(device.id) \(name) input gradients vs PyTorch")
            #expect(Self.relativeError(l, lc) <= 2 * bound, "\(device.id) \(name) logits vs cpu")
            #expect(Self.relativeError(g, gc) <= 2 * bound, "\(device.id) \(name) input gradients vs cpu")
            #expect(Self.relativeError(h, hc) <= 2 * bound, "\(device.id) \(name) hidden gradients vs cpu")
            if device.supports(.float64) {
                let (l64, g64, _) = try Self.run(name, on: device, dtype: .float64)
                #expect(Self.relativeError(l64, logits) <= 1e-12, "\(device.id) \(name) logits f64")
                #expect(Self.relativeError(g64, grads) <= 1e-12, "\(device.id) \(name) input gradients f64")
            }
        }
    }

    @Test("The digits models classify the held-out split as trained (≥ 95%), on every device")
    func digits() throws {
        let labels = try NPY.read(fixturePath("../../Models/digits-data/test_labels.npy")).int32s()
        for name in ["digits-mlp", "digits-cnn"] {
            for device in [cpu as any Device] + openCLDevices {
                let model = try Sequential.load(fixturePath("../../Models/" + name), on: device)
                let x = try NPY.tensor(fixturePath("../../Models/digits-data/test_inputs.npy"), on: device)
                let out = try model.forward(x).doubles()
                let classes = model.outputShape[0]
                var correct = 0
                for i in labels.indices {
                    let row = out[i * classes..<(i + 1) * classes]
                    if row.firstIndex(of: row.max()!)! - i * classes == Int(labels[i]) { correct += 1 }
                }
                let accuracy = Double(correct) / Double(labels.count)
                #expect(accuracy >= 0.95, "\(name) on \(device.id): \(accuracy)")
            }
        }
    }

    @Test("Bad input: wrong input shape, wrong device, target out of range, config that does not match the weights")
    func badInput() throws {
        let dir = fixturePath("torch/mlp")
        let model = try Sequential.load(dir, on: cpu)
        #expect(throws: AttribError.self) { try model.forward(Tensor.zeros([2, 21], on: cpu)) }
        do {
            _ = try model.forward(Tensor.zeros([2, 21], on: cpu))
        } catch let e as AttribError {
            #expect(e.description.contains("[2, 21]") && e.description.contains("[20]"), "\(e)")
        }
        do {
            _ = try model.gradients(Tensor.zeros([2, 20], on: cpu), objective: .classIndex([0, 5]))
            Issue.record("target 5 of a 5-class model was accepted")
        } catch let e as AttribError {
            #expect(e.description.contains("5") && e.description.contains("input 1"), "\(e)")
        }
        if let d = openCLDevices.first {
            #expect(throws: AttribError.self) { try model.forward(Tensor.zeros([2, 20], on: d)) }
        }
        // A config whose layer sizes disagree with the weights, and one that leaves tensors unused.
        let tmp = "/tmp/attrib-test-\(UInt64.random(in: 0...UInt64.max))"
        try FileHelpers.makeDirectory(tmp)
        defer { FileHelpers.remove(tmp) }
        try FileHelpers.copy(dir + "/model.safetensors", tmp + "/model.safetensors")
        let good = try FileHelpers.read(dir + "/config.json")
        try FileHelpers.write(good.replacingFirst("\"out_features\": 32", with: "\"out_features\": 33"), tmp + "/config.json")
        expectAttribError(["0.weight", "[33, 20]", "[32, 20]"]) { _ = try Sequential.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("{\"type\": \"Tanh\"}", with: "{\"type\": \"Tanh\"}, {\"type\": \"Mystery\"}"), tmp + "/config.json")
        expectAttribError(["config.json", "Mystery"]) { _ = try Sequential.load(tmp, on: cpu) }
        try FileHelpers.write(good.replacingFirst("\"bias\": true", with: "\"bias\": false"), tmp + "/config.json")
        expectAttribError(["0.bias", "not used"]) { _ = try Sequential.load(tmp, on: cpu) }
        expectAttribError(["no-such-dir/config.json"]) { _ = try Sequential.load(tmp + "/no-such-dir", on: cpu) }
    }
}
