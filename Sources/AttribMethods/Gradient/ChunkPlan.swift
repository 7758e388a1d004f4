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

    public init(rows: Int, bytesPerRow: Int, budgetBytes: Int) {
        self.rows = rows; self.bytesPerRow = bytesPerRow; self.budgetBytes = budgetBytes
    }

    /// Plans for a model on its device. `budget` overrides the default: half of an
    /// OpenCL device's global memory (the driver and other buffers need the rest), and on the
    /// CPU backend 1 GiB, or two rows per thread where that is more (`cpuDefaultBudget`). No
    /// single activation may exceed the device's largest allocation.
    ///
    /// On the CPU backend, without an explicit budget, a batch is further kept to
    /// CPUDevice.batchWorkingSetBytes of activations (a quarter of the last-level cache),
    /// but never below `cpuMinimumRowsPerThread` rows per worker thread: every op then
    /// streams its operands from cache, not memory. Measured on the digits models
    /// (2 cores, 32 MiB L3), IG ran 2× (CNN) and 2.5× (MLP) faster in batches of 256
    /// and 2,048 rows than in the 20,000 and 290,000 rows that fill 1 GiB.
    public static let cpuMinimumRowsPerThread = 256
    /// Plans a gradient sweep of a model from `cut` (nil: its input; else the value where a
    /// fused path starts, such as `Graph.firstAffine`'s output).
    public static func make(for model: any AttributionModel, cut: String? = nil, cap: Int? = nil, budget: Int? = nil) -> ChunkPlan {
        make(for: model.forwardExecutor.graph, from: cut.map { [$0] }, backward: true,
             on: model.device, dtype: model.dtype, cap: cap, budget: budget)
    }

    /// Plans batches of any graph on a device: a pass from the values `from` (nil: the graph
    /// inputs), with a backward or forward only (Graph.rowElements).
    public static func make(for graph: Graph, from start: Set<String>? = nil, backward: Bool, on device: any Device,
                            dtype: DType, cap: Int? = nil, budget: Int? = nil) -> ChunkPlan {
        let info = device.info, size = dtype.size
        let (perRow, largest, touched) = graph.rowElements(from: start, backward: backward)
        let bytes = perRow * size
        let defaultBudget: Int = device is CPUDevice ? cpuDefaultBudget(bytesPerRow: bytes, threads: info.blas?.threads ?? 1)
            : info.globalMemoryBytes / 2
        let total: Int = budget ?? defaultBudget
        var rows = max(1, total / max(bytes, 1))
        rows = min(rows, max(1, Int(Double(info.maxAllocationBytes) * 0.9) / max(largest * size, 1)))
        // The OpenCL kernels index with 32-bit ints.
        rows = min(rows, Int(Int32.max) / max(largest, 1))
        // The cache holds what a batch writes, not just its peak.
        if budget == nil { rows = cacheSized(rows, bytesPerRow: touched * size, on: device) }
        if let cap { rows = min(rows, max(1, cap)) }
        return ChunkPlan(rows: rows, bytesPerRow: bytes, budgetBytes: total)
    }

    /// The CPU backend's default budget: 1 GiB, or two rows per worker thread where that is more
    /// and the host has twice it available. Why: a model whose row takes more than 1 GiB / threads
    /// (ViT-B/16: 593 MB estimated) would otherwise run batches of a row or two, each product
    /// then reading its whole weight for one or two images' tokens. ViT-B/16 IG (4 inputs,
    /// m = 32, 2 threads, 2-core VM), rows a batch: 1 → 3.19–3.22 input·steps/s (peak 1.31 GiB),
    /// 2 → 3.38–3.39 (1.27 GiB), 4 → 3.55–3.57 (1.59 GiB), 6 → 3.61 (2.27 GiB), 8 → 3.55–3.70
    /// (2.36 GiB): two a thread takes most of the gain for the memory.
    /// `available` is read only where two rows per thread exceed 1 GiB, so the plans of the
    /// models that fit (nearly all) do not read /proc/meminfo, nor vary with it between calls.
    public static func cpuDefaultBudget(bytesPerRow: Int, threads: Int, available: @autoclosure () -> Int? = HostMemory.availableBytes()) -> Int {
        let base = 1 << 30, twoPerThread = 2 * bytesPerRow * max(1, threads)
        guard twoPerThread > base, let available = available(), twoPerThread <= available / 2 else { return base }
        return twoPerThread
    }

    /// Rows cut to the CPU's cache working set (see `make`); unchanged on other devices.
    public static func cacheSized(_ rows: Int, bytesPerRow: Int, on device: any Device) -> Int {
        guard device is CPUDevice else { return rows }
        // At least cpuMinimumRowsPerThread per thread: each thread's block of a product
        // packs the whole weight for its own rows, and below that it reuses the packing
        // too few times to run at the BLAS rate (the wide MLP lost 10% at 64 rows; the
        // digits CNN, on 2 threads, ran at a median 145k input·steps/s in batches of 512
        // and 1,024 rows against 115k in batches of 256).
        let threads = device.info.blas?.threads ?? 1
        return min(rows, max(cpuMinimumRowsPerThread * max(1, threads), CPUDevice.batchWorkingSetBytes / max(bytesPerRow, 1)))
    }
}
