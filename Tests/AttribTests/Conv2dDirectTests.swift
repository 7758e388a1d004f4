import Attrib
import Testing

/// The direct 3×3, stride-1, padding-1 convolution of small images held rows-outer
/// (Device.conv3x3RowsOuter, CVecMath/conv3x3.c) and the Conv2d layer's use of it in
/// place of the banded products (Conv2d+Direct.swift). Held to the naive convolution,
/// to the bands, and to itself across batch groupings.
@Suite struct Conv2dDirectTests {
    typealias Case = ConvPoolNormTests.Case

    static func case3x3(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Case { Case(n, c, h, w, k: (3, 3), s: (1, 1), p: (1, 1)) }

    /// The kernel's edge cases: one row and one column (both edges in one block), blocks
    /// of 4 columns with a tail of 1–3, an odd count of output channels (a last block of
    /// one), tiles of 8 images with a partial last tile, and the digits CNN's 16 → 32 on 4×4.
    static let opCases: [(Case, oc: Int)] = [
        (case3x3(17, 3, 1, 1), 5), (case3x3(9, 2, 1, 6), 4), (case3x3(8, 4, 2, 9), 3),
        (case3x3(17, 16, 4, 4), 32), (case3x3(3, 5, 7, 5), 6), (case3x3(10, 3, 6, 13), 2),
    ]

    /// The FMA chain of k terms after the bias errs by at most k·u·Σ|terms| to first
    /// order (each product exact inside its FMA, each addition one rounding of a partial
    /// sum no larger than Σ|terms|); ×2 for higher order.
    static func bound(_ terms: Int, _ mag: [Double]) -> (Int) -> Double {
        let u = DType.float32.unitRoundoff
        return { 2 * Double(terms + 1) * u * mag[$0] }
    }

    /// On an AVX-512 CPU the op runs tiles of 16 images (conv_lanes_body.h at 16 lanes); each lane sums in the same
    /// order as the 8-lane tiles, so the two give the same bits. (Where there is no AVX-512 both
    /// runs take 8-lane tiles, and the test says so.)
    @Test("16-image tiles (AVX-512) give bitwise the images of 8-image tiles, on every edge case")
    func tileWidths() throws {
        guard cpu.offersConv3x3RowsOuter(dtype: .float32) else { return }
        #expect(CPUDevice.conv3x3TileLanes == (HostSIMD.fp32FlopsPerCycle()?.flops == 64 ? 16 : 8))
        for (k, (g, oc)) in (Self.opCases + [(Self.case3x3(37, 16, 8, 8), 16)]).enumerated() {
            let seed = UInt64(700 + 10 * k)
            let xr = try Tensor(randomValues(g.n * g.h * g.c * g.w, seed: seed, -2, 2), shape: [g.n, g.h, g.c, g.w], dtype: .float32, on: cpu)
            let wt = try Tensor(randomValues(oc * g.c * 9, seed: seed + 1), shape: [oc, g.c, 3, 3], dtype: .float32, on: cpu)
            let b = try Tensor(randomValues(oc, seed: seed + 2), shape: [oc], dtype: .float32, on: cpu)
            func run(lanes: Int) throws -> [UInt32] {
                CPUDevice.capConv3x3TileLanes(lanes)
                defer { CPUDevice.capConv3x3TileLanes(16) }
                let y = try Tensor(shape: [g.n, g.h, oc, g.w], dtype: .float32, on: cpu)
                #expect(try cpu.conv3x3RowsOuter(n: g.n, c: g.c, h: g.h, w: g.w, oc: oc, x: xr.storage, weight: wt.storage, bias: b.storage, y: y.storage))
                return try y.doubles().map { Float($0).bitPattern }
            }
            #expect(try run(lanes: 16) == run(lanes: 8), "\(g.testDescription) oc \(oc)")
        }
    }

    @Test("conv3x3RowsOuter equals the naive convolution, with and without bias, and gives bitwise the same images however the batch is split")
    func opMatchesNaive() throws {
        #expect(cpu.offersConv3x3RowsOuter(dtype: .float32) == HostSIMD.hasAVX2FMA, "offered with AVX2 and FMA")
        #expect(!cpu.offersConv3x3RowsOuter(dtype: .float64))
        guard cpu.offersConv3x3RowsOuter(dtype: .float32) else { return }
        for (k, (g, oc)) in Self.opCases.enumerated() {
            let seed = UInt64(400 + 10 * k)
            let x = randomValues(g.n * g.c * g.h * g.w, seed: seed, -2, 2), wt = randomValues(oc * g.c * 9, seed: seed + 1)
            let b = randomValues(oc, seed: seed + 2)
            let xr = try Tensor(x, shape: g.shape, dtype: .float32, on: cpu).transposed12()           // [n, h, c, w]
            let wtT = try Tensor(wt, shape: [oc, g.c, 3, 3], dtype: .float32, on: cpu), bT = try Tensor(b, shape: [oc], dtype: .float32, on: cpu)
            // The reference from the Float32-rounded operands, so that only the sum's error is measured.
            let (xs, ws, bs) = (try xr.transposed12().doubles(), try wtT.doubles(), try bT.doubles())
            for withBias in [true, false] {
                let (yRef, mag) = ConvPoolNormTests.refConv(xs, ws, withBias ? bs : [Double](repeating: 0, count: oc), oc: oc, g)
                let y = try Tensor(shape: [g.n, g.h, oc, g.w], dtype: .float32, on: cpu)
                #expect(try cpu.conv3x3RowsOuter(n: g.n, c: g.c, h: g.h, w: g.w, oc: oc, x: xr.storage, weight: wtT.storage,
                                                 bias: withBias ? bT.storage : nil, y: y.storage))
                let what = "\(g.testDescription) oc \(oc) bias \(withBias)"
                expectClose(try y.transposed12().doubles(), yRef, bound: Self.bound(g.c * 9, mag), "\(what): direct vs naive")

                // Images [0, 5) and [5, n) apart (5 is not a multiple of the 8 lanes), and one at a time.
                let split = try Tensor(shape: y.shape, dtype: .float32, on: cpu)
                let (din, dout) = (g.h * g.c * g.w, g.h * oc * g.w)
                for (lo, hi) in [(0, min(5, g.n)), (min(5, g.n), g.n)] + (0..<min(g.n, 3)).map({ ($0, $0 + 1) }) where lo < hi {
                    let part = try Tensor(shape: [hi - lo, g.h, oc, g.w], dtype: .float32, on: cpu)
                    #expect(try cpu.conv3x3RowsOuter(n: hi - lo, c: g.c, h: g.h, w: g.w, oc: oc,
                                                     x: BufferView(xr.storage.buffer, offset: xr.storage.offset + lo * din),
                                                     weight: wtT.storage, bias: withBias ? bT.storage : nil, y: part.storage))
                    let got = try part.doubles().map { Float($0).bitPattern }
                    let want = try y.doubles()[(lo * dout)..<(hi * dout)].map { Float($0).bitPattern }
                    #expect(got == Array(want), "\(what): images \(lo)..<\(hi) on their own")
                    if hi - lo > 1 || g.n == 1 { try cpu.copy(n: (hi - lo) * dout, x: part.storage, y: BufferView(split.storage.buffer, offset: lo * dout)) }
                }
                try expectBitwise(split, y, "\(what): the batch in two parts")
            }
        }
    }

    @Test("conv3x3RowsOuter names a buffer too small for its shape and a zero extent")
    func opBadInput() throws {
        guard cpu.offersConv3x3RowsOuter(dtype: .float32) else { return }
        let x = try Tensor.zeros([2, 4, 3, 4], dtype: .float32, on: cpu), wt = try Tensor.zeros([5, 3, 3, 3], dtype: .float32, on: cpu)
        let y = try Tensor.zeros([2, 4, 5, 4], dtype: .float32, on: cpu)
        expectAttribError(["conv3x3RowsOuter"]) {
            _ = try cpu.conv3x3RowsOuter(n: 3, c: 3, h: 4, w: 4, oc: 5, x: x.storage, weight: wt.storage, bias: nil, y: y.storage)
        }
        expectAttribError(["conv3x3RowsOuter", "output channels"]) {
            _ = try cpu.conv3x3RowsOuter(n: 2, c: 3, h: 4, w: 4, oc: 0, x: x.storage, weight: wt.storage, bias: nil, y: y.storage)
        }
    }

    /// Shapes that run by bands (H·W ≤ 36, bands reading ≤ 75% of the dense map's row blocks),
    /// so the direct kernel replaces them: one column, blocks of 4 with tails, the digits case.
    static let layerCases: [Case] = [
        case3x3(11, 3, 4, 1), case3x3(9, 2, 4, 6), case3x3(10, 2, 4, 9), case3x3(7, 3, 5, 7), case3x3(13, 16, 4, 4),
    ]

    @Test("Conv2d runs small 3×3 stride-1 padding-1 images directly on the CPU in Float32, forward and backward within the sum's bound of the naive convolution and of the bands", arguments: layerCases)
    func layerMatchesBandsAndNaive(_ g: Case) throws {
        guard cpu.offersConv3x3RowsOuter(dtype: .float32) else { return }
        let oc = 6
        let x = randomValues(g.n * g.c * g.h * g.w, seed: 501), wt = randomValues(oc * g.c * 9, seed: 502), b = randomValues(oc, seed: 503)
        let dy = randomValues(g.n * oc * g.oh * g.ow, seed: 504)
        let layer = try Conv2d(weight: Tensor(wt, shape: [oc, g.c, 3, 3], dtype: .float32, on: cpu),
                               bias: Tensor(b, shape: [oc], dtype: .float32, on: cpu), stride: [1, 1], padding: [1, 1])
        let inShape = [g.c, g.h, g.w]
        #expect(layer.convolvesDirectly(inputShape: inShape), "\(g.testDescription) should run directly")
        #expect(try layer.bandCount(inputShape: inShape) == g.oh, "\(g.testDescription): the bands it replaces")
        let xt = try Tensor(x, shape: g.shape, dtype: .float32, on: cpu), up = try Tensor(dy, shape: [g.n, oc, g.oh, g.ow], dtype: .float32, on: cpu)
        let (xs, ws, bs, dys) = (try xt.doubles(), try layer.weight.doubles(), try layer.bias!.doubles(), try up.doubles())
        let (yRef, yMag) = ConvPoolNormTests.refConv(xs, ws, bs, oc: oc, g)
        let (dxRef, dxMag) = Conv2dUnrolledTests.refBackward(dys, ws, oc: oc, g)
        let (y, saved) = try layer.forward(xt)
        let dx = try layer.backward(up, saved)
        let what = g.testDescription
        // Forward: c·9 taps at most per output; backward: oc·9 per input pixel.
        expectClose(try y.doubles(), yRef, bound: Self.bound(g.c * 9, yMag), "\(what): direct forward vs naive")
        expectClose(try dx.doubles(), dxRef, bound: Self.bound(oc * 9, dxMag), "\(what): direct backward vs naive")

        // The rows-outer form is the same kernel: bitwise the NCHW layer between transposes.
        try expectBitwise(layer.forwardRowsOuter(xt.transposed12(), inputShape: inShape).transposed12(), y, "\(what): rows-outer forward")
        try expectBitwise(layer.backwardRowsOuter(up.transposed12(), inputShape: inShape).transposed12(), dx, "\(what): rows-outer backward")

        // The bands, on a fresh layer with the direct kernel off. The bands sum more terms
        // (their zeros add no error): forward C·W·3 + 1 per output, backward at most three
        // bands of OC·W terms plus one addition each, within (OC·W + 1)·3.
        let banded = try Conv2d(weight: layer.weight, bias: layer.bias, stride: [1, 1], padding: [1, 1])
        banded.directSmallImages = false
        #expect(!banded.convolvesDirectly(inputShape: inShape))
        let (y2, saved2) = try banded.forward(xt)
        let dx2 = try banded.backward(up, saved2)
        let (kf, kb) = (g.c * g.w * 3, (oc * g.w + 1) * 3)
        expectClose(try y.doubles(), try y2.doubles(), bound: { Self.bound(g.c * 9, yMag)($0) + Self.bound(kf, yMag)($0) }, "\(what): direct vs bands forward")
        expectClose(try dx.doubles(), try dx2.doubles(), bound: { Self.bound(oc * 9, dxMag)($0) + Self.bound(kb, dxMag)($0) }, "\(what): direct vs bands backward")
    }

    @Test("Only 3×3 stride-1 padding-1 layers on images that run by bands, in Float32 on the CPU, run directly")
    func whereDirect() throws {
        func layer(_ k: Int, stride: Int, padding: Int, _ dtype: DType = .float32, on device: any Device = cpu) throws -> Conv2d {
            try Conv2d(weight: Tensor(randomValues(4 * 2 * k * k, seed: 9), shape: [4, 2, k, k], dtype: dtype, on: device),
                       bias: nil, stride: [stride, stride], padding: [padding, padding])
        }
        let direct = cpu.offersConv3x3RowsOuter(dtype: .float32)
        #expect(try layer(3, stride: 1, padding: 1).convolvesDirectly(inputShape: [2, 4, 4]) == direct)
        #expect(try !layer(3, stride: 1, padding: 1).convolvesDirectly(inputShape: [2, 8, 8]), "64 pixels > 4·9: im2col, no bands")
        #expect(try !layer(3, stride: 1, padding: 1).convolvesDirectly(inputShape: [2, 1, 4]), "one output row: no bands")
        #expect(try !layer(3, stride: 2, padding: 1).convolvesDirectly(inputShape: [2, 6, 6]))
        #expect(try !layer(3, stride: 1, padding: 0).convolvesDirectly(inputShape: [2, 5, 5]))
        #expect(try !layer(5, stride: 1, padding: 2).convolvesDirectly(inputShape: [2, 6, 6]))
        #expect(try !layer(3, stride: 1, padding: 1, .float64).convolvesDirectly(inputShape: [2, 4, 4]))
        let off = try layer(3, stride: 1, padding: 1)
        off.directSmallImages = false
        #expect(!off.convolvesDirectly(inputShape: [2, 4, 4]))
        for device in openCLDevices {
            #expect(try !layer(3, stride: 1, padding: 1, on: device).convolvesDirectly(inputShape: [2, 4, 4]), "\(device.id)")
        }
    }
}
