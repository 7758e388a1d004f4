import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as an .onnx file, through ONNXModel.load and, when a classifier
/// graph loads, one forward pass.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzONNX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let path = FuzzFiles.write(data, size, "model.onnx")
    guard let m = try? ONNXModel.attributionModel(at: path, on: CPUDevice.shared), m.inputSize <= 1 << 16,
          let x = try? Tensor([Double](repeating: 0.5, count: m.inputSize), shape: [1] + m.inputShape, dtype: m.dtype, on: CPUDevice.shared)
    else { return 0 }
    _ = try? m.outputs(x)
    return 0
}

runFuzzer(fuzzONNX)
