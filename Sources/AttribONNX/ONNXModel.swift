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
/// BatchNormalization folded into the convolution or Linear before it (elsewhere one pass per
/// channel); shape arithmetic and any op whose inputs are all constants folded at load;
/// arithmetic on token ids as integer ops on the host; initializers and Constant nodes inline
/// or external (float, double, int32, int64, bool). An op outside the set is an error naming the
/// node, its op type and the opset, and listing the set.
public struct ONNXModel: Sendable {
    public let graph: Graph
    public let path: String
    /// The default domain's opset the file imports.
    public let opset: Int

    public static let opsets = 13...21
    public static let supportedOps: [String] = [
        "Abs", "Add", "And", "AveragePool", "BatchNormalization", "Cast", "Ceil", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "Cos", "CumSum",
        "Div", "Dropout", "Equal", "Erf", "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "Gelu", "Gemm", "GlobalAveragePool",
        "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "Identity", "IsNaN", "LayerNormalization", "Less", "LessOrEqual", "Log", "LogSoftmax", "MatMul", "Max", "MaxPool", "Min",
        "Mod", "Mul", "Neg", "Not", "Or", "Pad", "Pow", "Range", "Reciprocal", "ReduceMean", "Relu", "Reshape", "Round", "ScatterND", "Shape",
        "Sigmoid", "Sign", "Sin", "Slice", "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Trilu", "Unsqueeze", "Where",
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
