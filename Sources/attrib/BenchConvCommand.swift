import ArgumentParser
import Attrib
import FoundationEssentials

/// `attrib bench conv`: a convolution's forward and input gradient, as a sweep runs them, per
/// shape: NCHW as the device's Conv2d runs it (on the CPU im2col + OpenBLAS, a product per
/// image for 1×1; grouped and depthwise ones as GroupedConv2d runs them) and, where the device offers it, channels-last (the CPU's oneDNN), each in
/// ms per call, GFLOP/s and share of the device's FP32 peak.
struct BenchConv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv",
        abstract: "Convolution forward and input gradient per shape: NCHW against channels-last (the CPU's oneDNN), GFLOP/s and share of peak.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Comma-separated shapes CxHxW-OCkK[sS][pP][gG]: input channels and image, output channels, kernel, stride (1), padding (0), groups (1), e.g. 64x56x56-64k3s1p1,256x56x56-64k1 (ResNet-50's) or 96x28x28-96k5s2p2g96 (depthwise).")
    var shapes = "64x56x56-64k3s1p1,256x56x56-64k1,64x56x56-256k1,128x28x28-128k3s1p1,512x28x28-128k1,256x14x14-256k3s1p1,1024x14x14-256k1,512x7x7-512k3s1p1"
    @Option(help: "Images per call.") var images = 4
    @Option(help: "Seconds of timed calls per measurement (at least).") var seconds = 0.5

    struct Shape { let c, h, w, oc, k, s, p, g: Int }

    static func parse(_ item: Substring) throws -> Shape {
        let halves = item.split(separator: "-")
        let image = halves.first?.lowercased().split(separator: "x").compactMap { Int($0) } ?? []
        guard halves.count == 2, image.count == 3, image.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("bad shape '\(item)' in --shapes; use CxHxW-OCkK[sS][pP][gG], e.g. 64x56x56-64k3s1p1")
        }
        // "64k3s1p1g1": numbers after the letters k, s, p, g; the first number is OC.
        var fields: [Character: Int] = [:], key: Character = "o", digits = ""
        for ch in halves[1].lowercased() + "." {
            if ch.isNumber { digits.append(ch); continue }
            guard let v = Int(digits), fields[key] == nil, "kspg.".contains(ch) else {
                throw ValidationError("bad shape '\(item)' in --shapes; use CxHxW-OCkK[sS][pP][gG], e.g. 64x56x56-64k3s1p1")
            }
            fields[key] = v; key = ch; digits = ""
        }
        guard let oc = fields["o"], let k = fields["k"], oc >= 1, k >= 1 else {
            throw ValidationError("bad shape '\(item)' in --shapes: it needs output channels and a kernel (64k3)")
        }
        let g = fields["g"] ?? 1
        guard g >= 1, image[0] % g == 0, oc % g == 0 else {
            throw ValidationError("bad shape '\(item)' in --shapes: \(g) groups must divide the input channels (\(image[0])) and the output channels (\(oc))")
        }
        return Shape(c: image[0], h: image[1], w: image[2], oc: oc, k: k, s: max(1, fields["s"] ?? 1), p: fields["p"] ?? 0, g: g)
    }

    func run() throws {
        let device = try global.selectedDevice()
        let list = try shapes.split(separator: ",").map(Self.parse)
        guard images >= 1 else { throw ValidationError("--images must be at least 1") }
        let peak = device.info.fp32PeakGFLOPS
        print("\(device.info.id): \(device.info.name), \(images) images a call, Float32; FP32 peak \(peak.map { fixed($0, 0) + " GFLOP/s" } ?? "unknown")")
        if device is CPUDevice { print("convolutions: \(CPUDevice.convolutionLibrary)") }
        print("\(pad("shape", 24)) \(pad("pass", 15)) \(pad("NCHW ms", 9)) \(pad("GFLOP/s", 8)) \(pad("NHWC ms", 9)) \(pad("GFLOP/s", 8)) \(pad("NHWC ÷ NCHW", 11))")
        var seed: UInt64 = 1
        func values(_ n: Int) -> [Double] {
            (0..<n).map { _ in seed = seed &* 6364136223846793005 &+ 1442695040888963407; return Double(seed >> 11) / Double(1 << 53) * 2 - 1 }
        }
        for sh in list {
            let n = images, (oh, ow) = ((sh.h + 2 * sh.p - sh.k) / sh.s + 1, (sh.w + 2 * sh.p - sh.k) / sh.s + 1)
            guard oh >= 1, ow >= 1 else { throw ValidationError("shape \(sh): the kernel is larger than the padded image") }
            let cg = sh.c / sh.g                                                          // input channels per group
            let scale = 1 / Double(cg * sh.k * sh.k)
            let weight = try Tensor(values(sh.oc * cg * sh.k * sh.k).map { $0 * scale }, shape: [sh.oc, cg, sh.k, sh.k], dtype: .float32, on: device)
            let bias = try Tensor(values(sh.oc), shape: [sh.oc], dtype: .float32, on: device)
            let conv: any Layer = sh.g == 1 ? try Conv2d(weight: weight, bias: bias, stride: [sh.s, sh.s], padding: [sh.p, sh.p])
                : try GroupedConv2d(weight: weight, bias: bias, groups: sh.g, stride: [sh.s, sh.s], padding: [sh.p, sh.p])
            let x = try Tensor(values(n * sh.c * sh.h * sh.w), shape: [n, sh.c, sh.h, sh.w], dtype: .float32, on: device)
            let dy = try Tensor(values(n * sh.oc * oh * ow), shape: [n, sh.oc, oh, ow], dtype: .float32, on: device)
            let flops = 2.0 * Double(n * sh.oc * oh * ow) * Double(cg * sh.k * sh.k)
            let (_, saved) = try conv.forward(x)
            let nchw = (forward: try time { _ = try conv.forward(x) }, backward: try time { _ = try conv.backward(dy, saved) })
            var nhwc: (forward: Double, backward: Double)?
            if device.offersChannelsLastConvolution(dtype: .float32) {
                let prepared = PreparedWeights()
                let xl = try Tensor(values(x.count), shape: [n, sh.h, sh.w, sh.c], dtype: .float32, on: device)
                let dyl = try Tensor(values(dy.count), shape: [n, oh, ow, sh.oc], dtype: .float32, on: device)
                let f = { _ = try xl.conv2dChannelsLast(weight: weight, bias: bias, stride: Size2D(sh.s, sh.s), padding: Size2D(sh.p, sh.p), groups: sh.g, prepared: prepared) }
                let b = { _ = try dyl.conv2dInputGradientChannelsLast(weight: weight, imageShape: xl.shape, stride: Size2D(sh.s, sh.s),
                                                                      padding: Size2D(sh.p, sh.p), groups: sh.g, prepared: prepared) }
                nhwc = (try time(f), try time(b))
            }
            let name = "\(sh.c)x\(sh.h)x\(sh.w)-\(sh.oc)k\(sh.k)s\(sh.s)p\(sh.p)" + (sh.g > 1 ? "g\(sh.g)" : "")
            for (pass, a, b) in [("forward", nchw.forward, nhwc?.forward), ("input gradient", nchw.backward, nhwc?.backward)] {
                func rate(_ t: Double) -> String {
                    let g = flops / t / 1e9
                    return fixed(g, 0) + (peak.map { " (\(fixed(100 * g / $0, 0))%)" } ?? "")
                }
                print("\(pad(name, 24)) \(pad(pass, 15)) \(pad(fixed(a * 1e3, 2), 9)) \(pad(rate(a), 8)) \(pad(b.map { fixed($0 * 1e3, 2) } ?? "-", 9)) \(pad(b.map(rate) ?? "-", 8)) \(pad(b.map { fixed($0 / a, 2) + "×" } ?? "-", 11))")
            }
        }
        /// Seconds per call: one call to warm up, then calls until `seconds` have passed; the mean.
        func time(_ body: () throws -> Void) throws -> Double {
            try body(); try device.synchronize()
            let clock = ContinuousClock(), start = clock.now
            var calls = 0
            repeat { try body(); calls += 1; try device.synchronize() } while (clock.now - start).seconds < seconds
            return (clock.now - start).seconds / Double(calls)
        }
    }
}
