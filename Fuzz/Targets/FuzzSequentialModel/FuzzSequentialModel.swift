import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as a Sequential model's config.json, beside the digits CNN's
/// weights (copied once), through Sequential.load and, when it loads, one forward pass.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSequentialModel(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    Weights.once
    FuzzFiles.write(data, size, "config.json")
    guard let m = try? Sequential.load(FuzzFiles.directory(), on: CPUDevice.shared),
          m.inputSize <= 1 << 16, let x = try? Tensor(.zeros(m.inputSize), shape: [1] + m.inputShape, dtype: m.dtype, on: CPUDevice.shared)
    else { return 0 }
    _ = try? m.forward(x)
    return 0
}

enum Weights {
    static let once: Void = FuzzFiles.copy("Models/digits-cnn/model.safetensors", as: "model.safetensors")
}

extension Array where Element == Double {
    static func zeros(_ n: Int) -> [Double] { [Double](repeating: 0, count: n) }
}

runFuzzer(fuzzSequentialModel)
