import Attrib
import Testing

/// Models unlike the bundled ones (Tests/Fixtures/unlike/make_unlike_fixtures.py): a ReLU and
/// max-pooling CNN, a Tanh MLP, and a CNN of 5×5 stride-2 convolutions with Sigmoid and global
/// average pooling; and issue 22's fields (dilated, grouped and depthwise convolutions, padded
/// max and average pooling with and without count_include_pad); and issue 24's bn-cnn, whose
/// BatchNorms export_torch.py folded and whose Dropouts it dropped, against the original
/// module's outputs; each against PyTorch's logits
/// and Captum's IG, on the CPU backend in
/// Float64 and Float32 and on every OpenCL device. They run the graph executor's general path
/// (none of them has the bundled CNN's GELU → average pooling shape).
@Suite struct UnlikeModelTests {
    static let models = ["relu-cnn", "tanh-mlp", "s2-cnn", "fields-cnn", "fields-avg", "bn-cnn", "fields-ceil"]

    @Test("logits and Integrated Gradients match PyTorch and Captum (Float64 1e-6, Float32 1e-4: GradientMethodTests' bounds)",
          arguments: models)
    func againstCaptum(_ name: String) throws {
        let dir = fixturePath("unlike/" + name)
        let x = try NPY.read(dir + "/inputs.npy").doubles()
        let targets = try NPY.read(dir + "/targets.npy").int32s().map { [Int($0)] }
        let (logits, ig, delta) = (try NPY.read(dir + "/logits.npy").doubles(), try NPY.read(dir + "/ig.npy").doubles(),
                                   try NPY.read(dir + "/ig_delta.npy").doubles())
        for (device, dtype) in GradientMethodTests.configurations {
            let model = try Sequential.load(dir, on: device, dtype: dtype)
            let tol = GradientMethodTests.tolerance(dtype)
            let out = try model.forward(Tensor(x, shape: [targets.count] + model.inputShape, dtype: dtype, on: device)).doubles()
            #expect(GradientMethodTests.rel(out, logits) <= tol, "\(name) logits on \(device.id) \(dtype): \(GradientMethodTests.rel(out, logits))")
            let r = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(model, inputs: x, count: targets.count,
                                                                                      baseline: .zero, targets: targets)
            #expect(GradientMethodTests.rel(r.attributions, ig) <= tol, "\(name) IG on \(device.id) \(dtype): \(GradientMethodTests.rel(r.attributions, ig))")
            // A delta is a difference of sums of 64 attributions and two outputs: the outputs' scale.
            for i in targets.indices { #expect(abs(r.deltas![i] - delta[i]) <= tol * 10, "\(name) delta \(i) on \(device.id) \(dtype)") }
        }
    }
}
