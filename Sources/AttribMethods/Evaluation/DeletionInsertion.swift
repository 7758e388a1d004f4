import AttribCore
import AttribModels

/// Deletion and insertion curves (Petsiuk, Das & Saenko, "RISE: Randomized Input
/// Sampling for Explanation of Black-box Models", BMVC 2018), batched on the device.
///
/// Features are ranked by attribution, highest first (ties: lower index first). With F
/// features and K = `steps`, step k ∈ 0…K covers the first n_k = ⌊k·F/K⌋ of them
/// (K equal increments when K divides F, as RISE's fixed step):
/// - deletion: x_k = x with the covered features set to the substrate (default 0);
/// - insertion: x_k = the substrate (default 0; a blurred x with `.blur`) with the
///   covered features taken from x.
/// The curve is the target's probability, softmax(logits)[target] (or the output as
/// it comes with `applySoftmax = false`), at x_0 … x_K, and the AUC the trapezoid rule
/// over the fractions k/K ∈ [0, 1] (RISE's `auc`).
///
/// Maps must be full size: [h, w] per input (a pixel's features in every channel move
/// together) or [c, h, w] (every element on its own). Coarser maps (an s×s Sobol index
/// map) are resized first: `SobolResult.maps` is already at the input's size.
public struct DeletionInsertion: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case deletion, insertion }

    /// The values removed features take (deletion), or the start (insertion).
    public enum Substrate: Sendable, Equatable {
        case constant(Double)
        /// `cv2.blur(x, (k, k))` of each input (ImageResampling.boxBlur).
        case blur(kernelSize: Int)
    }

    public var kind: Kind
    public var steps: Int
    public var substrate: Substrate
    public var applySoftmax: Bool
    public var batchCap: Int?

    public init(kind: Kind, steps: Int = 32, substrate: Substrate = .constant(0), applySoftmax: Bool = true, batchCap: Int? = nil) {
        self.kind = kind; self.steps = steps; self.substrate = substrate
        self.applySoftmax = applySoftmax; self.batchCap = batchCap
    }

    /// The ranking of features by attribution: descending, ties by index.
    public static func order(_ map: [Double]) -> [Int] {
        map.indices.sorted { map[$0] != map[$1] ? map[$0] > map[$1] : $0 < $1 }
    }

    /// The trapezoid rule over K + 1 equally spaced values on [0, 1].
    public static func auc(_ curve: [Double]) -> Double {
        guard curve.count >= 2 else { return curve.first ?? 0 }
        var s = 0.0
        for k in 0..<(curve.count - 1) { s += (curve[k] + curve[k + 1]) / 2 }
        return s / Double(curve.count - 1)
    }

    /// Curves [inputs][K + 1] and AUCs for inputs (n × the model's [c, h, w]) and maps
    /// (n × h·w or n × c·h·w), one target per input.
    public func evaluate(model: any AttributionModel, inputs x: [Double], maps: [Double], targets: [Int],
                         control: SweepControl = SweepControl()) throws -> CurveResult {
        let op = "DeletionInsertion"
        guard model.inputShape.count == 3 else {
            throw AttribError.shapeMismatch(op: op, detail: "the model's input shape is \(model.inputShape); deletion and insertion need images [c, h, w]")
        }
        let (c, h, w) = (model.inputShape[0], model.inputShape[1], model.inputShape[2])
        let n = targets.count, size = c * h * w
        try checkInputs(x, n: n, model: model)
        _ = try checkTargets(targets.map { [$0] }, n: n, model: model)
        let mc: Int
        if maps.count == n * h * w { mc = 1 } else if maps.count == n * size { mc = c } else {
            throw AttribError.shapeMismatch(op: op, detail: "\(maps.count) map values for \(n) inputs of [\(c), \(h), \(w)]; give full-size maps of \(h)×\(w) or \(c)×\(h)×\(w) per input (resize coarser maps to the input first)")
        }
        let features = mc * h * w
        guard steps >= 1, steps <= features else {
            throw AttribError.invalidArgument(op: op, detail: "steps = \(steps); it must be between 1 and the \(features) features")
        }
        if let bad = maps.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.invalidArgument(op: op, detail: "map \(bad / features) has a non-finite value at feature \(bad % features)")
        }
        let device = model.device, dtype = model.dtype, classes = model.outputShape.reduce(1, *)
        let perInput = steps + 1
        let inputTensor = try Tensor(x, shape: [n, c, h, w], dtype: dtype, on: device)
        let base: Tensor
        switch substrate {
        case .constant(let v):
            guard v.isFinite else { throw AttribError.invalidArgument(op: op, detail: "substrate \(v) is not finite") }
            base = try Tensor([v], shape: [1], dtype: dtype, on: device)
        case .blur(let k):
            var b = [Double](); b.reserveCapacity(x.count)
            for i in 0..<n { b += try ImageResampling.boxBlur(Array(x[i * size ..< (i + 1) * size]), channels: c, height: h, width: w, kernelSize: k) }
            base = try Tensor(b, shape: [n, c, h, w], dtype: dtype, on: device)
        }
        let orders = (0..<n).map { Self.order(Array(maps[$0 * features ..< ($0 + 1) * features])) }
        let plan = SobolAttribution.forwardPlan(for: model, cap: batchCap)
        let total = n * perInput
        var curve = [Double](repeating: 0, count: total)
        var done = 0, interrupted = false
        while done < total {
            let rows = min(plan.rows, total - done)
            // Binary keep-masks at full resolution for the rows of this batch.
            var keep = [Double](repeating: 0, count: rows * features)
            for row in 0..<rows {
                let g = done + row, i = g / perInput, k = g % perInput
                let covered = k * features / steps
                let m = row * features
                if kind == .deletion {
                    for f in 0..<features { keep[m + f] = 1 }
                    for f in orders[i].prefix(covered) { keep[m + f] = 0 }
                } else {
                    for f in orders[i].prefix(covered) { keep[m + f] = 1 }
                }
            }
            let masks = try Tensor(keep, shape: [rows, mc, h, w], dtype: dtype, on: device)
            let batch = try Tensor(shape: [rows, c, h, w], dtype: dtype, on: device)
            var r = done
            while r < done + rows {
                let i = r / perInput, len = min(perInput - r % perInput, done + rows - r)
                let b = base.shape[0] == n && base.rank == 4 ? try base.rows(i..<(i + 1)) : base
                try inputTensor.rows(i..<(i + 1)).maskPerturb(masks: try masks.rows((r - done)..<(r - done + len)), .inpainting,
                                                             baseline: b, into: try batch.rows((r - done)..<(r - done + len)))
                r += len
            }
            var out = try model.outputs(batch).reshaped([rows, classes])
            if applySoftmax { out = try out.softmax() }
            let values = try out.doubles()
            for row in 0..<rows { curve[done + row] = values[row * classes + targets[(done + row) / perInput]] }
            done += rows
            control.progress(done, total)
            if done < total, control.shouldStop() { interrupted = true; break }
        }
        let completed = done / perInput
        let curves = (0..<completed).map { Array(curve[$0 * perInput ..< ($0 + 1) * perInput]) }
        return CurveResult(kind: kind, fractions: (0...steps).map { Double($0) / Double(steps) },
                           curves: curves, aucs: curves.map(Self.auc), interrupted: interrupted)
    }
}

/// Curves of `DeletionInsertion.evaluate`.
public struct CurveResult: Sendable {
    public var kind: DeletionInsertion.Kind
    /// k/K for k = 0…K.
    public var fractions: [Double]
    /// Per finished input, the score at each fraction.
    public var curves: [[Double]]
    /// Per finished input, the trapezoid area under its curve.
    public var aucs: [Double]
    public var interrupted: Bool

    public init(kind: DeletionInsertion.Kind, fractions: [Double], curves: [[Double]], aucs: [Double], interrupted: Bool) {
        self.kind = kind; self.fractions = fractions; self.curves = curves; self.aucs = aucs; self.interrupted = interrupted
    }
}
