import AttribCore

/// y = x·Wᵀ + b. Weight [out, in] (PyTorch's layout), bias [out].
/// Input [N, in] → output [N, out]; inputs of higher rank [N, …, in] are
/// treated as rows of `in` features.
///
/// The weight is also kept transposed, [in, out], so that forward and backward
/// are both plain (untransposed) products: x·Wᵀ as x·(Wᵀ stored), dy·W as is. A
/// transposed operand is read across rows, which costs OpenCL kernels on CPUs
/// several times the time (the tuner's NT/TN figures); the copy costs memory once.
public final class Linear: Layer, @unchecked Sendable {
    public let weight: Tensor
    /// Wᵀ [in, out], made once at construction.
    public let weightTransposed: Tensor
    public let bias: Tensor?
    public let inFeatures: Int, outFeatures: Int

    public init(weight: Tensor, bias: Tensor?) throws {
        guard weight.rank == 2 else {
            throw AttribError.shapeMismatch(op: "Linear", detail: "weight has shape \(weight.shape), expected [out, in]")
        }
        if let b = bias, b.shape != [weight.shape[0]] {
            throw AttribError.shapeMismatch(op: "Linear", detail: "bias has shape \(b.shape), expected [\(weight.shape[0])]")
        }
        self.weight = weight; self.bias = bias
        outFeatures = weight.shape[0]; inFeatures = weight.shape[1]
        weightTransposed = try weight.transposed01()
    }

    public var description: String { "Linear(\(inFeatures)→\(outFeatures))" }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.last == inFeatures else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), its last dimension must be \(inFeatures)")
        }
        return input.dropLast() + [outFeatures]
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        let outShape = try [x.batchSize] + outputShape(x.sampleShape)
        let rows = x.count / inFeatures
        // [rows, in] · [in, out] → [rows, out]
        let y = try x.reshaped([rows, inFeatures]).matmul(weightTransposed)
        if let bias { try y.addBias(bias) }
        return (try y.reshaped(outShape), Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let rows = dy.count / outFeatures
        // [rows, out] · [out, in] → [rows, in]
        return try dy.reshaped([rows, outFeatures]).matmul(weight).reshaped(saved.input.shape)
    }
}
