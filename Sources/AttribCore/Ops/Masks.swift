// Masks for perturbation-based attribution (Sobol attribution, deletion and
// insertion curves): upsampling a batch of low-resolution masks, and applying
// them, upsampled on the fly, to an input. Raw ops in Device.swift; kernels in
// Kernels/sobol.cl and CPU/CPUDevice+SobolOps.swift.

/// How a low-resolution mask is brought to the input's size.
public enum MaskUpsampling: Int32, Sendable, CaseIterable {
    /// torch `interpolate(mode="nearest")`: source index ⌊dst·g/size⌋.
    case nearest = 0
    /// torch `interpolate(mode="bilinear", align_corners=False)`.
    case bilinear = 1
}

/// How a mask M perturbs an input x (Fel et al.'s reference perturbation functions).
public enum MaskPerturbation: Int32, Sendable, CaseIterable {
    /// x·M + (1 − M)·x₀ (x₀ a constant, or a per-input tensor such as a blurred x).
    case inpainting = 0
    /// x·(M − ½)·σ.
    case amplitude = 1
}


/// The sizes of one mask op, checked once for both backends: masks [m, mc, gh, gw],
/// images [c, h, w], output [m, c or mc, h, w].
public struct MaskGeometry: Sendable, Equatable {
    public let m: Int, mc: Int, c: Int, gh: Int, gw: Int, h: Int, w: Int
    public var maskCount: Int { m * mc * gh * gw }
    public var imageCount: Int { c * h * w }
    public var outputCount: Int { m * c * h * w }

    /// The elements a perturbation reads from its baseline view: the image (baseStep 1), one
    /// value (baseStep 0), or none (amplitude); any other step is an error naming it.
    public func baseExtent(_ kind: MaskPerturbation, baseStep: Int, op: String) throws -> Int {
        guard baseStep == 0 || baseStep == 1 else {
            throw AttribError.invalidArgument(op: op, detail: "baseStep is \(baseStep); 1 (a baseline per element) or 0 (one value)")
        }
        return kind == .inpainting ? (baseStep == 1 ? imageCount : 1) : 0
    }

    /// `c` is the image's channel count (for upsampling alone, pass c = mc).
    public init(op: String, m: Int, mc: Int, c: Int, gh: Int, gw: Int, h: Int, w: Int) throws {
        try AttribError.requirePositive(op, ["masks": m, "mask channels": mc, "channels": c, "grid height": gh,
                                             "grid width": gw, "height": h, "width": w])
        guard mc == 1 || mc == c else {
            throw AttribError.shapeMismatch(op: op, detail: "masks have \(mc) planes for an input of \(c) channels; give 1 (shared) or \(c) (one per channel)")
        }
        // The kernels compute (2·dst + 1)·g and m·c·h·w in 32-bit ints.
        var total = 1
        for f in [m, c, h, w] {
            let (p, o) = total.multipliedReportingOverflow(by: f)
            guard !o, p <= Int(Int32.max) else {
                throw AttribError.tooLarge(op: op, detail: "\(m) masks × [\(c), \(h), \(w)] exceeds the 32-bit indexing of the kernels; split the batch")
            }
            total = p
        }
        guard (2 * h + 1) * gh <= Int(Int32.max), (2 * w + 1) * gw <= Int(Int32.max), m * mc * gh * gw <= Int(Int32.max) else {
            throw AttribError.tooLarge(op: op, detail: "grid [\(gh), \(gw)] to [\(h), \(w)] exceeds the 32-bit index arithmetic of the kernels")
        }
        self.m = m; self.mc = mc; self.c = c; self.gh = gh; self.gw = gw; self.h = h; self.w = w
    }
}

extension Tensor {
    /// Masks self [m, mc, gh, gw] upsampled to [m, mc, height, width].
    public func upsampledMasks(height: Int, width: Int, mode: MaskUpsampling = .nearest) throws -> Tensor {
        let op = "upsampleMasks"
        try checkCompatible(op, [])
        guard rank == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "masks have shape \(shape), expected [m, channels, grid height, grid width]")
        }
        let g = try MaskGeometry(op: op, m: shape[0], mc: shape[1], c: shape[1], gh: shape[2], gw: shape[3], h: height, w: width)
        let out = try like([g.m, g.mc, height, width])
        try device.maskUpsample(mode, m: g.m, mc: g.mc, gh: g.gh, gw: g.gw, h: height, w: width, masks: storage, y: out.storage)
        return out
    }

    /// For one input self [c, h, w] (or [1, c, h, w]) and masks [m, mc, gh, gw] (mc = 1 or c):
    /// the batch [m, c, h, w] of perturbed inputs. `baseline` (inpainting only) is x₀: a tensor
    /// with self's element count (e.g. a blurred input), or one value [1] for a constant.
    public func maskPerturbed(masks: Tensor, _ perturbation: MaskPerturbation, baseline: Tensor? = nil,
                              sigma: Double = 1, mode: MaskUpsampling = .nearest) throws -> Tensor {
        let (c, h, w) = try imageSize("maskPerturb")
        let out = try like([masks.shape.first ?? 1, c, h, w])
        try maskPerturb(masks: masks, perturbation, baseline: baseline, sigma: sigma, mode: mode, into: out)
        return out
    }

    /// `maskPerturbed`, written into `out` (any tensor of m·c·h·w elements, such as rows of a batch).
    public func maskPerturb(masks: Tensor, _ perturbation: MaskPerturbation, baseline: Tensor? = nil,
                            sigma: Double = 1, mode: MaskUpsampling = .nearest, into out: Tensor) throws {
        let op = "maskPerturb"
        let (c, h, w) = try imageSize(op)
        try checkCompatible(op, [("masks", masks), ("output", out)] + (baseline.map { [("baseline", $0)] } ?? []))
        guard masks.rank == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "masks have shape \(masks.shape), expected [m, 1 or \(c), grid height, grid width]")
        }
        let g = try MaskGeometry(op: op, m: masks.shape[0], mc: masks.shape[1], c: c, gh: masks.shape[2], gw: masks.shape[3], h: h, w: w)
        guard out.count == g.outputCount else {
            throw AttribError.shapeMismatch(op: op, detail: "output has shape \(out.shape) (\(out.count) values), expected [\(g.m), \(c), \(h), \(w)]")
        }
        guard sigma.isFinite else { throw AttribError.invalidArgument(op: op, detail: "sigma is \(sigma); it must be finite") }
        var base = storage, step = 0
        if perturbation == .inpainting {
            guard let b = baseline else {
                throw AttribError.invalidArgument(op: op, detail: "inpainting needs a baseline x₀: a tensor of \(count) values or one value [1]")
            }
            guard b.count == count || b.count == 1 else {
                throw AttribError.shapeMismatch(op: op, detail: "baseline has shape \(b.shape), expected \(count) values (the input's \(shape)) or one value")
            }
            base = b.storage; step = b.count == 1 ? 0 : 1
        }
        try device.maskPerturb(perturbation, mode, m: g.m, mc: g.mc, c: c, gh: g.gh, gw: g.gw, h: h, w: w,
                               masks: masks.storage, x: storage, base: base, baseStep: step, sigma: sigma, y: out.storage)
    }

    /// (c, h, w) of an image [c, h, w] or a batch of one [1, c, h, w].
    private func imageSize(_ op: String) throws -> (Int, Int, Int) {
        if rank == 3 { return (shape[0], shape[1], shape[2]) }
        if rank == 4, shape[0] == 1 { return (shape[1], shape[2], shape[3]) }
        throw AttribError.shapeMismatch(op: op, detail: "input has shape \(shape), expected one image [c, h, w] or [1, c, h, w]")
    }
}
