import AttribCore
import Synchronization

/// y = x·Wᵀ + b. Weight [out, in] (PyTorch's layout), bias [out].
/// Input [N, in] → output [N, out]; inputs of higher rank [N, …, in] are
/// treated as rows of `in` features.
///
/// Besides W the layer keeps one copy of the weight made at construction, so that the
/// forward product reads Wᵀ without a transposed operand:
/// - in general Wᵀ [in, out] stored plainly (`weightTransposed`): x·Wᵀ and dy·W are both
///   untransposed products. A transposed operand is read across rows, which costs OpenCL
///   kernels on CPUs several times the time (the tuner's NT/TN figures).
/// - on the CPU backend, for a wide layer in Float32 (both sides ≥ 512, out a multiple of 16,
///   AVX2 and FMA), Wᵀ packed for few-row products instead (CPUDevice.gemmSmallRows): x·Wᵀ
///   for up to `CPUDevice.smallRowsLimit` rows (one input's IG path) runs on it from the first
///   call, and products of more rows read W through OpenBLAS's transposed operand, which
///   OpenBLAS packs anyway (1024 × 4096 → 4096: NT 1.01× NN's time on the 2-core VM). The same
///   memory and the same one pass over W at construction as the plain copy.
public final class Linear: Layer, @unchecked Sendable {
    public let weight: Tensor
    /// Wᵀ [in, out], made once at construction; nil where `forwardPacked` replaces it.
    public let weightTransposed: Tensor?
    /// Wᵀ packed for few-row products, made once at construction (see above), or nil.
    private let forwardPacked: SmallRowsOperand?
    public let bias: Tensor?
    public let inFeatures: Int, outFeatures: Int
    /// Backward products of few rows so far, then W packed for them (nil: the device does
    /// not pack it).
    private enum SmallRows { case seen(Int), packed(SmallRowsOperand?) }
    private let backwardRows = Mutex<SmallRows>(.seen(0))
    /// The few-row backward product that packs W; the ones before it run through OpenBLAS.
    /// Why not the first: packing W makes a second copy of it (64 MB for the wide MLP's
    /// 4096 × 4096), and the sweep that packs took 78–87 ms against 42–50 ms for the others on
    /// the 2-core VM (the new copy's page faults most of it), while a 66-row product on the
    /// packed W saves 3–5 ms of OpenBLAS's; a process that keeps calling recovers it.
    public static var smallRowsPackAfter: Int { 32 }

    /// Whether this layer runs few-row products on its weight packed (where `packsWide`).
    private let packFewRows: Bool

    /// `packFewRows`: run few-row products on a packed weight where the layer is wide, the
    /// CPU's rule by default (`CPUDevice.smallRowsPreferred`); the tests pass true to hold the
    /// packed path to OpenBLAS's on every host.
    ///
    /// `transposed`: Wᵀ [in, out] where the caller holds it already (an ONNX MatMul's weight is
    /// stored so): the layer keeps or packs it instead of transposing W again. Its values must
    /// be W's; it is kept as given.
    public init(weight: Tensor, bias: Tensor?, packFewRows: Bool? = nil, transposed: Tensor? = nil) throws {
        self.packFewRows = packFewRows ?? CPUDevice.smallRowsPreferred
        guard weight.rank == 2 else {
            throw AttribError.shapeMismatch(op: "Linear", detail: "weight has shape \(weight.shape), expected [out, in]")
        }
        if let b = bias, b.shape != [weight.shape[0]] {
            throw AttribError.shapeMismatch(op: "Linear", detail: "bias has shape \(b.shape), expected [\(weight.shape[0])]")
        }
        if let t = transposed, t.shape != [weight.shape[1], weight.shape[0]] || t.dtype != weight.dtype || t.device !== weight.device {
            throw AttribError.shapeMismatch(op: "Linear", detail: "the transposed weight is \(t.shape) \(t.dtype) on \(t.device.info.id), expected [\(weight.shape[1]), \(weight.shape[0])] \(weight.dtype) on \(weight.device.info.id)")
        }
        self.weight = weight; self.bias = bias
        outFeatures = weight.shape[0]; inFeatures = weight.shape[1]
        if weight.dtype.isStorageOnly {
            // Kept at 16 bits only: blocks of rows are widened where a product reads them.
            if let b = bias, b.dtype != .float32 {
                throw AttribError.shapeMismatch(op: "Linear", detail: "bias is \(b.dtype); a \(weight.dtype) weight computes in float32, so the bias must be float32")
            }
            forwardPacked = nil; weightTransposed = nil
        } else if self.packFewRows, Self.packsWide(weight), let cpu = weight.device as? CPUDevice,
           // From a given Wᵀ the packing reads rows in order; from W, across them.
           let packed = try Self.packed(weight, transposed: transposed, on: cpu) {
            forwardPacked = packed; weightTransposed = nil
        } else if let transposed {
            forwardPacked = nil; weightTransposed = transposed
        } else {
            // Wᵀ kept beside W (twice the weight's memory) because the product on it is faster:
            // BERT-base layer IG on the CPU backend (4 inputs, m = 32) took 21.9–22.0 s with it
            // and 24.7–25.2 s with x·Wᵀ on W alone (peak RSS 1.60 against 1.24 GB). Models too
            // large for two copies load 16-bit weights (isStorageOnly above), which keep one.
            forwardPacked = nil; weightTransposed = try weight.transposed01()
        }
    }

    /// Wᵀ packed for few-row products, from the given Wᵀ where there is one.
    private static func packed(_ w: Tensor, transposed: Tensor?, on cpu: CPUDevice) throws -> SmallRowsOperand? {
        let (out, inn) = (w.shape[0], w.shape[1])
        if let t = transposed { return try cpu.packForSmallRows(t.storage, k: inn, n: out) }
        return try cpu.packTransposedForSmallRows(w.storage, k: inn, n: out)
    }

    /// A weight whose few-row products run on a packed copy: Float32 on the CPU backend, both
    /// sides at least 512 (smaller layers' products are too short for the packing to pay).
    private static func packsWide(_ w: Tensor) -> Bool {
        w.device is CPUDevice && w.dtype == .float32 && w.shape[0] >= 512 && w.shape[1] >= 512
    }

    public var description: String { "Linear(\(inFeatures)→\(outFeatures)\(weight.dtype.isStorageOnly ? ", \(weight.dtype) weight" : ""))" }

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
        let y: Tensor
        var biased = false
        if weight.dtype.isStorageOnly { y = try forwardHalfWeight(x.reshaped([rows, inFeatures])) }
        else if let few = try smallRowsForward(x, rows: rows) { y = few; biased = true }
        else if let weightTransposed { y = try x.reshaped([rows, inFeatures]).matmul(weightTransposed) }
        else { y = try x.reshaped([rows, inFeatures]).matmul(weight, transposeOther: true) }    // Wᵀ kept packed only
        if let bias, !biased { try y.addBias(bias) }
        return (try y.reshaped(outShape), Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        try inputGradient(dy, inputShape: saved.input.shape)
    }

    /// ∂L/∂x from ∂L/∂y alone: x·Wᵀ + b is linear in x, so its input gradient reads neither x nor
    /// y, and a graph keeps neither for it (LayerGraphOp saves the shape only; on GPT-2 small that
    /// is 9 of each token's 23 thousand kept values per block).
    public func inputGradient(_ dy: Tensor, inputShape: [Int]) throws -> Tensor {
        let rows = dy.count / outFeatures
        // [rows, out] · [out, in] → [rows, in]
        let dx = weight.dtype.isStorageOnly ? try backwardHalfWeight(dy.reshaped([rows, outFeatures]))
            : try smallRowsBackward(dy, rows: rows) ?? dy.reshaped([rows, outFeatures]).matmul(weight)
        return try dx.reshaped(inputShape)
    }

    /// x·Wᵀ + b for few rows on the packed Wᵀ (CPUDevice.gemmSmallRows, the bias added as the
    /// product stores its rows) where the layer keeps one; nil (the plain product) elsewhere.
    private func smallRowsForward(_ x: Tensor, rows: Int) throws -> Tensor? {
        guard let packed = forwardPacked, rows <= CPUDevice.smallRowsLimit, x.dtype == .float32,
              let cpu = weight.device as? CPUDevice, bias.map({ $0.dtype == .float32 }) ?? true else { return nil }
        let y = try Tensor(shape: [rows, outFeatures], dtype: .float32, on: cpu)     // every element written
        return try cpu.gemmSmallRows(m: rows, x: x.storage, packed, y: y.storage, bias: bias?.storage) ? y : nil
    }

    /// dy·W for few rows on the CPU backend in Float32 (an IG path of one input back through
    /// a wide layer), on W packed once (CPUDevice.gemmSmallRows): OpenBLAS packs it on every
    /// call, a fifth of a 66-row product's time. From the `smallRowsPackAfter`th such product
    /// on; nil (OpenBLAS) before it and elsewhere.
    private func smallRowsBackward(_ dy: Tensor, rows: Int) throws -> Tensor? {
        guard rows <= CPUDevice.smallRowsLimit, packFewRows, Self.packsWide(weight), dy.dtype == .float32,
              let cpu = weight.device as? CPUDevice else { return nil }
        let packed: SmallRowsOperand? = try backwardRows.withLock { state in
            switch state {
            case .packed(let p): return p
            case .seen(let calls) where calls + 1 < Self.smallRowsPackAfter:
                state = .seen(calls + 1)
                return nil
            case .seen:
                let p = try cpu.packForSmallRows(weight.storage, k: outFeatures, n: inFeatures)
                state = .packed(p)
                return p
            }
        }
        guard let packed else { return nil }
        let dx = try Tensor(shape: [rows, packed.n], dtype: .float32, on: cpu)     // every element written
        return try cpu.gemmSmallRows(m: rows, x: dy.storage, packed, y: dx.storage) ? dx : nil
    }
}
