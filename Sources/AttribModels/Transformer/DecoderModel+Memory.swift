import AttribCore

extension DecoderModel {
    /// Bytes one prompt row of a forward without backward holds at its peak, estimated from the
    /// shapes: a block's live values (residual, norms, q/k/v and their per-head copies, z, the
    /// MLP's three [T, F] values) plus the attention's three [H, T, T] values (raw scores,
    /// scaled scores, pattern), doubled for the patched copies and the values of the block
    /// before that are still referenced; plus the last position's logits.
    public func forwardBytesPerRow(tokens t: Int) -> Int {
        dtype.size * (2 * blockElementsPerRow(tokens: t) + config.vocabSize)
    }

    /// Elements of one block's live values for one prompt row (see `forwardBytesPerRow`).
    func blockElementsPerRow(tokens t: Int) -> Int {
        let c = config
        let perToken = 6 * c.nEmbd + 4 * c.nInner + 4 * c.nHead * c.headDim + 4 * c.nKVHead * c.headDim
        return t * perToken + 3 * c.nHead * t * t
    }

    /// Bytes one prompt row of a forward kept for its backward holds at the backward's peak:
    /// every block's values (the backward reads them all), one block's gradients, and the last
    /// position's logits with their gradient. GPT-2 small at T = 64: about 81 MB.
    public func backwardBytesPerRow(tokens t: Int) -> Int {
        dtype.size * ((config.nLayer + 2) * blockElementsPerRow(tokens: t) + 2 * config.vocabSize)
    }

    /// Prompts per batched forward-and-backward (AtP's clean run beside its corrupt forward) at
    /// `tokens` tokens: a quarter of the memory budget of `patchingBatchRows` over the two runs'
    /// bytes per row, at least 1 and at most 64 (64 prompts of 64 tokens already give the
    /// products 4096 rows).
    public func gradientBatchRows(tokens t: Int) -> Int {
        var budget = device.info.globalMemoryBytes
        if device is CPUDevice, let host = HostMemory.availableBytes() { budget = min(budget, host) }
        return max(1, min(64, budget / 4 / max(1, backwardBytesPerRow(tokens: t) + forwardBytesPerRow(tokens: t))))
    }

    /// Rows per batched forward of exact patching at `tokens` tokens, from the device's memory:
    /// a quarter of it (of the host's available memory for the CPU backend, whichever is less)
    /// over `forwardBytesPerRow`, at least 1 and at most 256 (past that the products gain nothing).
    /// At T = 2048 on SmolLM2 this is a few rows where a fixed 32 would need tens of GB.
    public func patchingBatchRows(tokens t: Int) -> Int {
        var budget = device.info.globalMemoryBytes
        if device is CPUDevice, let host = HostMemory.availableBytes() { budget = min(budget, host) }
        return max(1, min(256, budget / 4 / max(1, forwardBytesPerRow(tokens: t))))
    }
}
