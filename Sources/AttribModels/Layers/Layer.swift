import AttribCore

/// One layer of a model, in llm.c's style: `forward` returns its output and
/// what `backward` will need (kept explicitly, nothing hidden), and
/// `backward` maps the gradient at the output to the gradient at the input.
///
/// Shapes: a batch is [N] + the layer's per-sample shape. Attribution needs
/// gradients with respect to inputs and activations, not weights, so
/// backward computes input gradients only.
public protocol Layer: AnyObject, Sendable {
    /// A short description, e.g. "Linear(64→128)".
    var description: String { get }
    /// The per-sample output shape for a per-sample input shape, or an error naming the mismatch.
    func outputShape(_ input: [Int]) throws -> [Int]
    /// y = f(x) for a batch, and the tensors backward needs.
    func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved)
    /// dL/dx from dL/dy and what forward saved.
    func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor
}

/// What a forward pass keeps for the backward pass: the input, the output,
/// and any extra tensors (argmax indices, layer-norm statistics).
public struct Saved: Sendable {
    public var input: Tensor
    public var output: Tensor
    public var extra: [Tensor] = []
    public init(input: Tensor, output: Tensor, extra: [Tensor] = []) {
        self.input = input; self.output = output; self.extra = extra
    }
}

extension Layer {
    /// Throws unless the per-sample input shape is `expected`.
    func expectInput(_ input: [Int], _ expected: [Int]) throws {
        guard input == expected else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), expected \(expected)")
        }
    }
}

extension Tensor {
    /// The per-sample shape (without the batch dimension).
    public var sampleShape: [Int] { Array(shape.dropFirst()) }
    /// The batch size.
    public var batchSize: Int { shape[0] }
}
