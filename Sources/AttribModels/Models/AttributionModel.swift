import AttribCore

/// What the attribution methods need of a model: one input of a fixed per-sample shape, one
/// output, a device and a float type, and the model as a graph the executor runs (`forward`
/// for plain passes, `sweep` with the rewrites that apply when no inner value is hooked).
/// `Sequential` and `GraphModel` (any graph: ONNX files, …) are two.
///
/// Fast paths are rules on the graph (`Graph.firstAffine`), so they apply to every model;
/// the few that remain Sequential-specific (the CPU backend's rows-outer and whole-path CNN
/// sweeps) are looked up with `as? Sequential` and are only a speed difference.
public protocol AttributionModel: AnyObject, Sendable {
    /// Per-sample input and output shapes.
    var inputShape: [Int] { get }
    var outputShape: [Int] { get }
    /// Class names, one per output, where the model has them.
    var labels: [String]? { get }
    var device: any Device { get }
    var dtype: DType { get }
    /// The graph as written: what `forward` runs.
    var forwardExecutor: GraphExecutor { get }
    /// The graph with the rewrites for gradient sweeps (the same numbers, faster).
    var sweepExecutor: GraphExecutor { get }
    /// The graph with the rewrites for forward-only passes (`Graph.forForwards`): what
    /// `outputs` runs (predict, Sobol, deletion curves).
    var forwardSweepExecutor: GraphExecutor { get }
}

extension AttributionModel {
    public var inputSize: Int { inputShape.reduce(1, *) }
    public var outputCount: Int { outputShape.reduce(1, *) }
    /// The name of the graph's input value (the executors' feed key).
    public var inputName: String { forwardExecutor.graph.inputs[0].name }
    public var outputName: String { forwardExecutor.graph.outputs[0] }

    /// The softmax or log-softmax the model ends in, if it does (its outputs are then
    /// (log-)probabilities already).
    public var finalSoftmax: SoftmaxLayer? {
        let g = forwardExecutor.graph
        guard let i = g.producer[outputName] else { return nil }
        return (g.nodes[i].op as? LayerOp)?.layer as? SoftmaxLayer
    }

    /// Outputs [N] + outputShape for a batch whose samples hold the input's element count.
    public func outputs(_ x: Tensor) throws -> Tensor {
        guard x.device === device else {
            throw AttribError.deviceMismatch(op: "model input", detail: "inputs on \(x.device.info.id), model on \(device.info.id)")
        }
        guard x.rank >= 2, x.count / x.batchSize == inputSize else {
            throw AttribError.shapeMismatch(op: "model input", detail: "inputs have shape \(x.shape); the model takes [N] + \(inputShape) (\(inputSize) values per input)")
        }
        let exec = forwardSweepExecutor
        return try exec.forward([inputName: try x.reshaped([x.batchSize] + inputShape)])[outputName]!
    }
}

extension Sequential: AttributionModel {}

/// A model that is any graph with one input and one output (an ONNX file's, a hand-built
/// one): the attribution methods run on it as on a Sequential.
public final class GraphModel: AttributionModel, @unchecked Sendable {
    public let inputShape: [Int]
    public let outputShape: [Int]
    public let labels: [String]?
    public let device: any Device
    public let dtype: DType
    public let forwardExecutor: GraphExecutor
    public let sweepExecutor: GraphExecutor
    public let forwardSweepExecutor: GraphExecutor
    /// Where it came from (a file), for messages.
    public let source: String

    public init(_ graph: Graph, labels: [String]? = nil, device: any Device, dtype: DType, source: String) throws {
        guard graph.inputs.count == 1, graph.outputs.count == 1 else {
            throw AttribError.invalidArgument(op: source, detail: "the graph has \(graph.inputs.count) inputs (\(graph.inputs.map(\.name).joined(separator: ", "))) and \(graph.outputs.count) outputs (\(graph.outputs.joined(separator: ", "))); attribution of a classifier needs one of each")
        }
        let input = graph.inputs[0]
        guard input.type.dtype == dtype else {
            throw AttribError.invalidArgument(op: source, detail: "input '\(input.name)' is \(input.type.dtype); the gradient methods need a \(dtype) input (token-id models take layer attribution)")
        }
        let out = graph.types[graph.outputs[0]]!
        if let labels, labels.count != out.count {
            throw AttribError.shapeMismatch(op: source, detail: "\(labels.count) labels for \(out.count) outputs (output '\(graph.outputs[0])' is \(out.shape))")
        }
        inputShape = input.type.shape; outputShape = out.shape
        self.labels = labels; self.device = device; self.dtype = dtype; self.source = source
        // Forwards (predict, Sobol, deletion curves, IG's ends) on the graph with its slices
        // moved early, the first affine layer's output (IG's cut, fed directly) kept.
        forwardExecutor = GraphExecutor(try graph.selectingRowsEarly(keeping: Set(graph.firstAffine().map { [$0.output] } ?? [])))
        sweepExecutor = GraphExecutor(try graph.forSweeps(on: device, dtype: dtype))
        forwardSweepExecutor = GraphExecutor(try graph.forForwards(on: device, dtype: dtype))
    }
}
