import AttribCore

/// Token ids → rows of a table. Weight [num, dim]; input [N, T] of Int32
/// ids → output [N, T, dim]. Ids are not differentiable: backward returns the
/// gradient with respect to the looked-up rows (the embedding output), which
/// is where attribution over tokens starts.
public final class Embedding: Layer, @unchecked Sendable {
    public let weight: Tensor
    public init(weight: Tensor) throws {
        guard weight.rank == 2 else {
            throw AttribError.shapeMismatch(op: "Embedding", detail: "weight has shape \(weight.shape), expected [num_embeddings, dim]")
        }
        self.weight = weight
    }
    public var description: String { "Embedding(\(weight.shape[0])×\(weight.shape[1]))" }
    public func outputShape(_ input: [Int]) throws -> [Int] { input + [weight.shape[1]] }

    /// Embeds host token ids (checked against the table).
    public func forward(ids: [Int32], shape: [Int]) throws -> Tensor {
        guard ids.count == shape.reduce(1, *) else {
            throw AttribError.shapeMismatch(op: description, detail: "\(ids.count) ids for shape \(shape)")
        }
        return try weight.gatherRows(IndexTensor(ids, on: weight.device)).reshaped(shape + [weight.shape[1]])
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        // Ids arrive as Int32, or as whole-number floats from a .npy file; they are read
        // back to check the range (ids come from the host, so this costs one small copy).
        let ids: [Int32] = x.dtype == .int32 ? try x.int32s() : try x.doubles().enumerated().map { i, v in
            guard v == v.rounded(), abs(v) < 2e9 else {
                throw AttribError.invalidArgument(op: description, detail: "input element \(i) is \(v), not a token id")
            }
            return Int32(v)
        }
        let y = try forward(ids: ids, shape: x.shape)
        return (y, Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor { dy }
}
