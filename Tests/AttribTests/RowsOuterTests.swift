import Attrib
import Testing

/// Images rows outermost ([N, H, C, W]) through a CNN's banded convolutions and fused
/// GELU + pooling (Sequential+RowsOuter.swift), which IG takes after a fused first layer
/// on the CPU backend. Every op computes the same values in the same order as in NCHW,
/// so everything here is held to bitwise equality with the NCHW path.
@Suite struct RowsOuterTests {
    static func digitsCNN(_ dtype: DType = .float32, on device: any Device = cpu) throws -> Sequential {
        try Sequential.load(fixturePath("../../Models/digits-cnn"), on: device, dtype: dtype)
    }

    /// GELU, pooling, a banded convolution without bias on an oblong image, GELU,
    /// pooling, and a Flatten that ends the model: the span to the very last layer.
    static func oblongStack() throws -> Sequential {
        let (c, oc) = (3, 4)
        let conv = try Conv2d(weight: Tensor(randomValues(oc * c * 9, seed: 41), shape: [oc, c, 3, 3], dtype: .float32, on: cpu),
                              bias: nil, stride: [1, 1], padding: [1, 1])
        return try Sequential(layers: [ActivationLayer(.geluErf), try Pool2d(max: false, kernel: [2, 2], stride: [2, 2]), conv,
                                       ActivationLayer(.geluErf), try Pool2d(max: false, kernel: [2, 2], stride: [2, 2]), Flatten()],
                              inputShape: [c, 8, 12], device: cpu)
    }

    @Test("Where a rows-outer span is taken: after the digits CNN's first layer on the CPU in Float32, nowhere else")
    func spans() throws {
        let model = try Self.digitsCNN()
        #expect(model.rowsOuterSpan(from: 1) == 6, "GELU, pool, banded conv, GELU, pool up to the Flatten")
        #expect(model.rowsOuterSpan(from: 3) == 6)
        #expect(model.rowsOuterSpan(from: 0) == nil, "the first convolution (1×8×8) does not run by bands")
        #expect(model.rowsOuterSpan(from: 4) == nil, "no convolution left in the span")
        #expect(model.rowsOuterSpan(from: 7) == nil, "after the Flatten")
        #expect(try Self.digitsCNN(.float64).rowsOuterSpan(from: 1) == nil, "Float64 does not fuse GELU with pooling")
        for device in openCLDevices {
            #expect(try Self.digitsCNN(on: device).rowsOuterSpan(from: 1) == nil, "\(device.id): no bands on OpenCL devices")
        }
        #expect(try Self.oblongStack().rowsOuterSpan(from: 0) == 5)
    }

    @Test("traceRowsOuter and its backward equal the NCHW trace and backward, bitwise", arguments: [false, true])
    func traceMatches(_ oblong: Bool) throws {
        let model = oblong ? try Self.oblongStack() : try Self.digitsCNN()
        let start = oblong ? 0 : 1, layers = start..<model.layers.count
        let inShape = start == 0 ? model.inputShape : model.shapes[start - 1]       // [C, H, W]
        let n = 5, x = randomValues(n * inShape.reduce(1, *), seed: 42, -3, 3)
        let nchw = try Tensor(x, shape: [n] + inShape, dtype: .float32, on: cpu)
        let plain = try model.trace(nchw, layers: layers, keepActivations: false)
        let rows = try model.traceRowsOuter(nchw.transposed12(), layers: layers)
        #expect(rows.rowsOuterEnd == model.rowsOuterSpan(from: start) && plain.rowsOuterEnd == nil)
        try expectBitwise(rows.output, plain.output, "outputs")
        let up = try Tensor(randomValues(plain.output.count, seed: 43), shape: plain.output.shape, dtype: .float32, on: cpu)
        let gPlain = try model.backward(plain, upstream: up, layers: layers)
        let gRows = try model.backward(rows, upstream: up, layers: layers)
        #expect(gRows.shape == [n, inShape[1], inShape[0], inShape[2]], "the input gradient comes back rows-outer")
        try expectBitwise(gRows.transposed12(), gPlain, "input gradients")
    }

    @Test("IG on the digits CNN: rows-outer and NCHW give bitwise the same attributions and deltas")
    func integratedGradientsMatch() throws {
        let model = try Self.digitsCNN()
        let x = try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles()
        let n = 6, targets = (0..<n).map { [$0 % 10, ($0 + 3) % 10] }
        func run(_ rowsOuter: Bool, cap: Int?) throws -> AttributionResult {
            var ig = IntegratedGradients(rule: .gaussLegendre, steps: 24, batchCap: cap)
            ig.rowsOuter = rowsOuter
            return try ig.attribute(model, inputs: Array(x.prefix(n * 64)), count: n, baseline: .zero, targets: targets)
        }
        // Whole inputs per batch, and one input's steps split over batches.
        for cap in [nil, 10] as [Int?] {
            let (a, b) = (try run(true, cap: cap), try run(false, cap: cap))
            #expect(a.attributions.map(\.bitPattern) == b.attributions.map(\.bitPattern), "attributions, batch cap \(cap.map(String.init) ?? "none")")
            #expect(a.deltas?.map(\.bitPattern) == b.deltas?.map(\.bitPattern), "deltas, batch cap \(cap.map(String.init) ?? "none")")
        }
    }

    @Test("traceRowsOuter names a range that does not start a span and an input not held rows-outer; its backward refuses a visitor")
    func badInput() throws {
        let model = try Self.digitsCNN()
        let x = try Tensor.zeros([2, 1, 8, 8], dtype: .float32, on: cpu)
        expectAttribError(["traceRowsOuter", "0..<8", "rows-outer span"]) { _ = try model.traceRowsOuter(x, layers: 0..<8) }
        let nchw = try Tensor.zeros([2, 16, 8, 8], dtype: .float32, on: cpu)
        expectAttribError(["traceRowsOuter", "[2, 16, 8, 8]", "[N, 8, 16, 8]"]) { _ = try model.traceRowsOuter(nchw, layers: 1..<8) }
        // A rows-outer trace keeps no activations, so a backward that visits them is refused.
        let trace = try model.traceRowsOuter(nchw.transposed12(), layers: 1..<8)
        let up = try Tensor.zeros(trace.output.shape, dtype: .float32, on: cpu)
        expectAttribError(["backward", "rows-outer"]) { _ = try model.backward(trace, upstream: up, layers: 1..<8) { _, _ in } }
    }
}
