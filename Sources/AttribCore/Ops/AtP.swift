// AtP*'s QK fix for keys (Kramár et al. 2024; ../shared/specs/methods.md), as a device op:
//   scores.atpKeyEffects(delta:grad:)   [n, T, T] × 3 → [n, T]
// For each head b and key s, the linearised-through-A effect on the metric of patching key s:
// every query row t ≥ s changes one logit by Δ_ts, its softmax is recomputed exactly, and the
// change of A is dotted with ∂L/∂A. Methods.md writes a row's change as
//   (1/Z − 1)·G_t + A_ts(e^Δ − 1)/Z·g_ts,   G_t = Σ_s' A_ts'·g_ts',  Z = 1 + A_ts(e^Δ − 1),
// which overflows for large positive Δ and cancels when A_ts ≈ 1. With ℓ_ts the log-odds of key s
// in row t (x_ts − log Σ_{s'≠s} e^{x_ts'}) and ḡ_ts the softmax-weighted mean of g over the row's
// other keys, the same quantity is
//   (σ(ℓ_ts + Δ_ts) − σ(ℓ_ts))·(g_ts − ḡ_ts)
// (A'_ts = σ(ℓ + Δ); every other entry scales by 1/Z, so the change is (A'_ts − A_ts)·g_ts minus
// (A'_ts − A_ts)·ḡ_ts), bounded for every Δ. The log-sum-exp over "all but s" is taken from
// per-row statistics: for s ≠ argmax the argmax's term (1 after shifting by the max) keeps
// Σ − e^{x_s−m} ≥ 1, so the subtraction is benign; for the argmax itself the sums over the other
// keys are accumulated separately, shifted by their own maximum. O(T) per row, O(T²) per head.

extension Tensor {
    /// AtP*'s QK-fix key effects (see the file comment): self = clean attention scores q·kᵀ/√d_h
    /// [n, T, T] (unmasked; entries s > t are ignored), `delta` = q·(k_patched − k)ᵀ/√d_h [n, T, T],
    /// `grad` = ∂L/∂A [n, T, T]. Returns [n, T]: per head, the effect of patching each key.
    public func atpKeyEffects(delta: Tensor, grad: Tensor) throws -> Tensor {
        let op = "atpKeyEffects"
        try checkCompatible(op, [("delta", delta), ("grad", grad)])
        guard rank == 3, shape[1] == shape[2] else {
            throw AttribError.shapeMismatch(op: op, detail: "scores have shape \(shape), expected [n, T, T]")
        }
        guard delta.shape == shape, grad.shape == shape else {
            throw AttribError.shapeMismatch(op: op, detail: "delta \(delta.shape) and grad \(grad.shape) must match the scores \(shape)")
        }
        let out = try like([shape[0], shape[1]])
        try device.atpKeyEffects(n: shape[0], t: shape[1], scores: storage, delta: delta.storage, grad: grad.storage, y: out.storage)
        return out
    }
}
