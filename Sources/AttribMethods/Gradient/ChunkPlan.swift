import AttribCore
import AttribModels

/// How many rows (inputs × steps, or inputs × samples) one device batch holds:
/// sized from the device's memory and the model's activations, capped by the
/// user's --batch. A sweep of any size then runs in bounded memory.
public struct ChunkPlan: Sendable, Codable {
    /// Rows per device batch.
    public var rows: Int
    /// Estimated device bytes per row (activations kept for backward, gradients, inputs).
    public var bytesPerRow: Int
    /// The memory budget the rows were sized from.
    public var budgetBytes: Int

    /// Plans for a model on its device. `budget` overrides the default: half of an
    /// OpenCL device's global memory (the driver and other buffers need the rest), and
    /// 1 GiB on the CPU backend, past which larger batches only cost cache misses.
    /// No single activation may exceed the device's largest allocation.
    public static func make(for model: Sequential, startLayer: Int = 0, cap: Int? = nil, budget: Int? = nil) -> ChunkPlan {
        let info = model.device.info, size = model.dtype.size
        var perRow = 0, largest = model.inputSize
        var shape = startLayer == 0 ? model.inputShape : model.shapes[startLayer - 1]
        perRow += 3 * shape.reduce(1, *)                  // interpolated input, its gradient, a spare
        for i in startLayer..<model.layers.count {
            let out = model.shapes[i].reduce(1, *)
            perRow += 2 * out                                // saved output and its gradient
            if let conv = model.layers[i] as? Conv2d {
                let cols = conv.inChannels * conv.kernel[0] * conv.kernel[1] * model.shapes[i][1] * model.shapes[i][2]
                perRow += 2 * cols                           // im2col matrix and its gradient
                largest = max(largest, cols)
            }
            if model.layers[i] is Pool2d { perRow += out }   // argmax indices
            largest = max(largest, out)
            shape = model.shapes[i]
        }
        let bytes = perRow * size
        let defaultBudget: Int = model.device is CPUDevice ? 1 << 30 : info.globalMemoryBytes / 2
        let total: Int = budget ?? defaultBudget
        var rows = max(1, total / max(bytes, 1))
        rows = min(rows, max(1, Int(Double(info.maxAllocationBytes) * 0.9) / max(largest * size, 1)))
        // The OpenCL kernels index with 32-bit ints.
        rows = min(rows, Int(Int32.max) / max(largest, 1))
        if let cap { rows = min(rows, max(1, cap)) }
        return ChunkPlan(rows: rows, bytesPerRow: bytes, budgetBytes: total)
    }
}
