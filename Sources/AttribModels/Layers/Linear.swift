import AttribCore
import Synchronization

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
    /// Products of few rows per direction (key true: forward, on Wᵀ; false: backward, on W)
    /// so far, then the weight packed for them (CPUDevice.gemmSmallRows; nil: the device
    /// does not pack it).
    private enum SmallRows { case seen(Int), packed(SmallRowsOperand?) }
    private let smallRows = Mutex<[Bool: SmallRows]>([:])
    /// The few-row product in each direction that packs the weight; the ones before it run
    /// through OpenBLAS. Why not the first: packing the wide MLP's 4096 × 4096 (both
    /// directions, with the page faults of the new copy) took about 90 ms, and a one-input
    /// sweep at m = 64 is about 45 ms that packing saves 3 ms of, so a single sweep ran 2.8×
    /// slower when it packed. From the 32nd on, a process that keeps calling recovers it.
    public static var smallRowsPackAfter: Int { 32 }

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
        let y = try smallRowsProduct(x, rows: rows, forward: true) ?? x.reshaped([rows, inFeatures]).matmul(weightTransposed)
        if let bias { try y.addBias(bias) }
        return (try y.reshaped(outShape), Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let rows = dy.count / outFeatures
        // [rows, out] · [out, in] → [rows, in]
        let dx = try smallRowsProduct(dy, rows: rows, forward: false) ?? dy.reshaped([rows, outFeatures]).matmul(weight)
        return try dx.reshaped(saved.input.shape)
    }

    /// x·Wᵀ (forward) or x·W for few rows on the CPU backend in Float32 (an IG path of one
    /// input through a wide layer), on the weight packed once (CPUDevice.gemmSmallRows):
    /// OpenBLAS packs it on every call, a fifth of a 66-row product's time. Only for layers
    /// of at least 512 × 512, where the packing pays, and from the `smallRowsPackAfter`th
    /// such product in each direction on; nil (OpenBLAS) elsewhere.
    private func smallRowsProduct(_ x: Tensor, rows: Int, forward: Bool) throws -> Tensor? {
        guard rows <= CPUDevice.smallRowsLimit, let cpu = weight.device as? CPUDevice, weight.dtype == .float32,
              x.dtype == .float32, inFeatures >= 512, outFeatures >= 512 else { return nil }
        let packed: SmallRowsOperand? = try smallRows.withLock { state in
            switch state[forward] ?? .seen(0) {
            case .packed(let p): return p
            case .seen(let calls) where calls + 1 < Self.smallRowsPackAfter:
                state[forward] = .seen(calls + 1)
                return nil
            case .seen:
                let p = forward ? try cpu.packForSmallRows(weightTransposed.storage, k: inFeatures, n: outFeatures)
                                : try cpu.packForSmallRows(weight.storage, k: outFeatures, n: inFeatures)
                state[forward] = .packed(p)
                return p
            }
        }
        guard let packed else { return nil }
        let y = try Tensor(shape: [rows, packed.n], dtype: .float32, on: cpu)     // every element written
        return try cpu.gemmSmallRows(m: rows, x: x.storage, packed, y: y.storage) ? y : nil
    }
}
