import AttribCore

/// y = x·scale[c] + shift[c] along one per-sample axis (the channel): an inference
/// BatchNormalization that no convolution or linear layer absorbs, γ/√(σ² + ε) and
/// β − μ·γ/√(σ² + ε) (DenseNet's norm before each convolution, a BatchNorm1d on features).
/// axis 0 of [C, H, W] channels-first, axis 2 of [H, W, C] channels-last (the stretches of
/// Graph+ChannelsLast.swift), axis 0 of [C]. The constants are weights: no gradient is formed
/// for them; the input's is dy·scale[c]. Nothing is kept for the backward.
public struct ChannelAffineGraphOp: GraphOp, @unchecked Sendable {
    /// [C] each.
    public let scale: Tensor, shift: Tensor
    /// The channel axis within a sample's shape.
    public let axis: Int
    public init(scale: Tensor, shift: Tensor, axis: Int) { self.scale = scale; self.shift = shift; self.axis = axis }

    public var kind: String { "ChannelAffine" }
    public var description: String { "ChannelAffine(\(scale.count) channels, axis \(axis))" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        guard x.dtype == scale.dtype else {
            throw AttribError.shapeMismatch(op: description, detail: "input is \(x.dtype), the constants \(scale.dtype)")
        }
        guard axis < x.shape.count, x.shape[axis] == scale.count else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample is \(x.shape); axis \(axis) must hold the \(scale.count) channels")
        }
        return x
    }

    /// The same map on the channels-last twin of a [C, H, W] value ([H, W, C]: the last axis).
    public var channelsLast: ChannelAffineGraphOp { ChannelAffineGraphOp(scale: scale, shift: shift, axis: 2) }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        (try inputs[0].channelAffine(scale: scale, shift: shift, axis: axis + 1), OpSaved())
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try dy.channelAffine(scale: scale, shift: nil, axis: axis + 1) : nil]
    }
}
