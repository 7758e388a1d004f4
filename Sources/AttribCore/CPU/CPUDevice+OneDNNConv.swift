import CConvDNNL
import FoundationEssentials
import Synchronization

// Float32 convolutions of channels-last images on the CPU backend, through oneDNN
// (CConvDNNL/conv_dnnl.c says why). Sweep graphs hold the values between their convolutions
// channels-last where this is offered (Graph+ChannelsLast.swift).

extension CPUDevice {
    /// Whether Float32 convolutions go to oneDNN: its CPU engine starts, and ATTRIB_ONEDNN is
    /// not 0 (0: the graphs stay NCHW and run im2col + OpenBLAS, to compare the two).
    public static let oneDNNConvolution: Bool =
        ProcessInfo.processInfo.environment["ATTRIB_ONEDNN"] != "0" && attrib_dnnl_available() != 0

    public func offersChannelsLastConvolution(dtype: DType) -> Bool { dtype == .float32 && Self.oneDNNConvolution }

    /// What runs the CPU's Float32 convolutions of real-sized images, for `attrib devices`.
    public static var convolutionLibrary: String {
        if oneDNNConvolution { return "oneDNN \(String(cString: attrib_dnnl_version())), channels-last (ATTRIB_ONEDNN=0: im2col + BLAS)" }
        return ProcessInfo.processInfo.environment["ATTRIB_ONEDNN"] == "0" ? "im2col + BLAS (ATTRIB_ONEDNN=0)" : "im2col + BLAS (oneDNN's CPU engine did not start)"
    }

    public func conv2dChannelsLast(_ g: Window2D, oc: Int, groups: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   y: BufferView, prepared: PreparedWeights?) throws -> Bool {
        try oneDNNConvolution("conv2dChannelsLast", backward: false, g, oc: oc, groups: groups, input: x, weight: weight, bias: bias,
                              output: y, prepared: prepared)
    }

    public func conv2dInputGradientChannelsLast(_ g: Window2D, oc: Int, groups: Int, dy: BufferView, weight: BufferView,
                                                dx: BufferView, prepared: PreparedWeights?) throws -> Bool {
        try oneDNNConvolution("conv2dInputGradientChannelsLast", backward: true, g, oc: oc, groups: groups, input: dy, weight: weight, bias: nil,
                              output: dx, prepared: prepared)
    }

    /// Runs the convolution (forward: input x, output y; backward: input dy, output dx) on
    /// oneDNN. The images are split over the worker threads, one single-threaded call each on
    /// its share (conv_dnnl.c: why not OpenMP's threads). The weight in the kernel's layout
    /// comes from `prepared` (made there on first use), or without it is reordered for this
    /// call alone. False where oneDNN declines this geometry; an error naming the op where a
    /// call fails.
    private func oneDNNConvolution(_ op: String, backward: Bool, _ g: Window2D, oc: Int, groups: Int, input: BufferView, weight: BufferView,
                                   bias: BufferView?, output: BufferView, prepared: PreparedWeights?) throws -> Bool {
        guard Self.oneDNNConvolution, try buffer(input, op).dtype == .float32, groups >= 1, g.c % groups == 0, oc % groups == 0 else { return false }
        let wCount = oc * (g.c / groups) * g.kh * g.kw                          // [oc, c/groups, kh, kw]
        let inImage = backward ? g.outH * g.outW * oc : g.h * g.w * g.c           // elements per image
        let outImage = backward ? g.h * g.w * g.c : g.outH * g.outW * oc
        // oneDNN's sizes are Int32-safe here where an image and the weight are (its dims are 64-bit).
        guard [inImage, outImage, wCount, g.n].allSatisfy({ $0 <= Int(Int32.max) }) else { return false }
        let inp = try pointer(Float.self, input, op, g.n * inImage), outp = try pointer(Float.self, output, op, g.n * outImage)
        let wp = try pointer(Float.self, weight, op, wCount)
        let bp = try bias.map { UnsafePointer(try pointer(Float.self, $0, op, oc)) }
        func primitive(_ n: Int) -> OpaquePointer? {
            attrib_dnnl_conv_get(backward ? 1 : 0, bp == nil ? 0 : 1, Int32(n), Int32(g.c), Int32(g.h), Int32(g.w), Int32(oc),
                                 Int32(g.kh), Int32(g.kw), Int32(g.strideH), Int32(g.strideW), Int32(g.padH), Int32(g.padW),
                                 Int32(g.outH), Int32(g.outW), Int32(groups))
        }
        // Images per call: an equal share per worker; inside a thread tile, all on this thread.
        let workers = ParallelNesting.inside ? 1 : min(Self.threadCount, g.n)
        let share = (g.n + workers - 1) / workers, calls = (g.n + share - 1) / share, last = g.n - (calls - 1) * share
        guard let full = primitive(share), let tail = last == share ? full : primitive(last),
              attrib_dnnl_conv_same_weights(full, tail) != 0 else { return false }
        // The weight as the kernel reads it: as stored, or a copy in its layout, the layer's kept
        // copy or, without one, a copy for this call alone (alive until the calls have run).
        let copies = prepared ?? PreparedWeights()
        var w = UnsafeRawPointer(wp)
        let bytes = attrib_dnnl_conv_weight_bytes(full)
        if bytes > 0 {
            guard let copy = copies.copy(key: full, bytes: bytes, same: { attrib_dnnl_conv_same_weights($0, full) != 0 },
                                         fill: { attrib_dnnl_conv_reorder_weights(full, wp, $0) != 0 }) else {
                throw AttribError.invalidArgument(op: op, detail: "oneDNN could not reorder the weight [\(oc), \(g.c / groups), \(g.kh), \(g.kw)] (out of memory?)")
            }
            w = copy
        }
        let failed = Atomic<Bool>(false)
        withExtendedLifetime(copies) {
            parallelEach(calls) { i in
                let first = i * share
                if attrib_dnnl_conv_run(i == calls - 1 ? tail : full, inp + first * inImage, w, bp, outp + first * outImage, 1) == 0 {
                    failed.store(true, ordering: .relaxed)
                }
            }
        }
        guard !failed.load(ordering: .relaxed) else {
            throw AttribError.invalidArgument(op: op, detail: "oneDNN failed on \(g.n) images [\(g.h), \(g.w), \(g.c)] → [\(g.outH), \(g.outW), \(oc)] (out of memory for its scratchpad?)")
        }
        return true
    }
}
