// The CPU backend's mask ops (upsampling, inpainting / amplitude perturbation):
// the same arithmetic, in the same order, as Kernels/sobol.cl (which turns off
// FP contraction), so the two backends agree bit for bit with nearest masks.

extension CPUDevice {
    public func maskUpsample(_ mode: MaskUpsampling, m: Int, mc: Int, gh: Int, gw: Int, h: Int, w: Int,
                             masks: BufferView, y: BufferView) throws {
        let op = "maskUpsample"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: mc, gh: gh, gw: gw, h: h, w: w)
        func run<T: CPUScalar>(_: T.Type) throws {
            let mp = try pointer(T.self, masks, op, g.maskCount), yp = try pointer(T.self, y, op, g.outputCount)
            let plane = h * w
            parallelChunks(m * mc * plane) { r in
                for e in r {
                    let p = e / plane, q = e - p * plane
                    yp[e] = MaskSampler.value(mp + p * gh * gw, gh, gw, h, w, q / w, q % w, mode)
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }

    public func maskPerturb(_ kind: MaskPerturbation, _ mode: MaskUpsampling, m: Int, mc: Int, c: Int, gh: Int, gw: Int,
                            h: Int, w: Int, masks: BufferView, x: BufferView, base: BufferView, baseStep: Int,
                            sigma: Double, y: BufferView) throws {
        let op = "maskPerturb"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: c, gh: gh, gw: gw, h: h, w: w)
        let baseExtent = try g.baseExtent(kind, baseStep: baseStep, op: op)
        func run<T: CPUScalar>(_: T.Type) throws {
            let mp = try pointer(T.self, masks, op, g.maskCount), yp = try pointer(T.self, y, op, g.outputCount)
            let xp = try pointer(T.self, x, op, g.imageCount)
            let bp = try pointer(T.self, base, op, baseExtent)
            let s = T(sigma), plane = h * w, image = c * plane
            parallelChunks(g.outputCount) { r in
                for e in r {
                    let k = e / image, j = e - k * image
                    let ci = j / plane, q = j - ci * plane
                    let mv = MaskSampler.value(mp + (k * mc + (mc == 1 ? 0 : ci)) * gh * gw, gh, gw, h, w, q / w, q % w, mode)
                    let xv = xp[j]
                    switch kind {
                    case .inpainting:
                        let b = bp[j * baseStep]
                        let t1 = xv * mv, t2 = (1 - mv) * b
                        yp[e] = t1 + t2
                    case .amplitude:
                        let t = xv * (mv - 0.5)
                        yp[e] = t * s
                    }
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }
}

/// The mask value at a pixel, as `mask_value` in Kernels/sobol.cl.
enum MaskSampler {
    @inline(__always)
    static func value<T: CPUScalar>(_ mk: UnsafeMutablePointer<T>, _ gh: Int, _ gw: Int, _ h: Int, _ w: Int,
                                    _ iy: Int, _ ix: Int, _ mode: MaskUpsampling) -> T {
        if mode == .nearest { return mk[(iy * gh) / h * gw + (ix * gw) / w] }
        let py = max(0, (2 * iy + 1) * gh - h), px = max(0, (2 * ix + 1) * gw - w)
        let y0 = py / (2 * h), x0 = px / (2 * w)
        let ly = T(py - y0 * 2 * h) / T(2 * h), lx = T(px - x0 * 2 * w) / T(2 * w)
        let y1 = min(y0 + 1, gh - 1), x1 = min(x0 + 1, gw - 1)
        let top = (1 - lx) * mk[y0 * gw + x0] + lx * mk[y0 * gw + x1]
        let bot = (1 - lx) * mk[y1 * gw + x0] + lx * mk[y1 * gw + x1]
        return (1 - ly) * top + ly * bot
    }
}
