import AttribCore

extension DecoderConfig {
    /// Floating-point operations of one forward of a prompt of `tokens` tokens with logits at
    /// every position, counting a multiply-add as 2: the products (q, k, v, o, the MLP's two or
    /// three, the unembedding) and attention's two [T, T] products per head as computed (the
    /// full square: the causal mask is applied after the scores, not skipped). Norms, RoPE,
    /// softmax and activations are O(T·D) and left out. The figure a forward's speed is divided
    /// by to give its useful FLOP/s.
    public func forwardFLOPs(tokens t: Int) -> Double {
        let (d, f, v) = (Double(nEmbd), Double(nInner), Double(vocabSize))
        let (q, kv) = (Double(nHead * headDim), Double(nKVHead * headDim))
        let perToken = 2 * d * (q + 2 * kv) + 2 * q * d + Double(gatedMLP ? 3 : 2) * 2 * d * f
        let attention = 2 * 2 * Double(nHead) * Double(t) * Double(t) * Double(headDim)
        return Double(nLayer) * (Double(t) * perToken + attention) + Double(t) * 2 * d * v
    }
}
