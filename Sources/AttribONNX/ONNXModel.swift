import AttribCore
import AttribModels
import FoundationEssentials
import SwiftProtobuf

/// An ONNX model as a graph the executor runs: the graph's values keep the file's tensor
/// names (so hooks name them as Netron and onnxruntime do), its ops are the engine's. The
/// first dimension of every graph input is the batch.
///
/// What is read: opsets 13 to 21 of the default domain; the ops in `supportedOps`, each
/// attribute checked (one the engine does not implement is an error, never dropped);
/// BatchNormalization folded into the convolution before it; initializers and Constant
/// nodes inline (float, double, int32, int64). An op outside the set is an error naming the
/// node, its op type and the opset, and listing the set.
public struct ONNXModel: Sendable {
    public let graph: Graph
    public let path: String
    /// The default domain's opset the file imports.
    public let opset: Int

    public static let opsets = 13...21
    public static let supportedOps: [String] = [
        "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "Div", "Dropout", "Equal", "Erf",
        "Expand", "Flatten", "Gather", "GatherElements", "Gelu", "Gemm", "GlobalAveragePool", "Greater", "HardSigmoid", "HardSwish", "Identity", "LayerNormalization",
        "Less", "LogSoftmax", "MatMul", "MaxPool", "Mod", "Mul", "Neg", "Not", "Pad", "Pow", "ReduceMean", "Range", "Relu", "Reshape", "Shape", "Sigmoid", "Slice",
        "Softmax", "Softplus", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze", "Where",
    ]

    public static func load(_ path: String, on device: any Device, dtype: DType = .float32) throws -> ONNXModel {
        let model = try parse(path)
        guard model.hasGraph else { throw AttribError.io(path: path, detail: "the model holds no graph") }
        var opset: Int?
        for o in model.opsetImport {
            if o.domain.isEmpty || o.domain == "ai.onnx" { opset = Int(o.version) }
        }
        guard let opset else { throw AttribError.io(path: path, detail: "the model imports no opset of the default domain") }
        guard opsets.contains(opset) else {
            throw AttribError.io(path: path, detail: "opset \(opset) is not supported (\(opsets.lowerBound) to \(opsets.upperBound) are)")
        }
        var builder = ONNXGraphBuilder(file: path, opset: opset, device: device, dtype: dtype)
        let graph = try builder.build(model.graph)
        return ONNXModel(graph: graph, path: path, opset: opset)
    }

    /// The file's ModelProto. Its own function so that the file's bytes are released once
    /// parsed: the tensors keep their own copies (a model's size less at the peak of a load).
    private static func parse(_ path: String) throws -> Onnx_ModelProto {
        guard let data = readFileData(path) else {
            throw AttribError.io(path: path, detail: "cannot read the ONNX file (missing or unreadable)")
        }
        do { return try Onnx_ModelProto(serializedBytes: data) } catch {
            throw AttribError.io(path: path, detail: "not a readable ONNX model (protobuf: \(error))")
        }
    }
}
