/// A per-channel affine map along one axis: an inference BatchNormalization that no
/// convolution absorbs (DenseNet's norms before each convolution, MaxViT's), in either layout.
extension Tensor {
    /// self ⊙ scale + shift along `axis` (self's shape[axis] = C = scale.count = shift.count),
    /// broadcast over every other axis: self's shape. shift nil: the product alone (the map's
    /// input gradient is dy scaled so). One pass (Device.channelAffine).
    public func channelAffine(scale: Tensor, shift: Tensor?, axis: Int) throws -> Tensor {
        let op = "channel affine"
        try checkCompatible(op, [("scale", scale)] + (shift.map { [("shift", $0)] } ?? []))
        guard axis >= 0, axis < rank else {
            throw AttribError.shapeMismatch(op: op, detail: "axis \(axis) of a tensor of shape \(shape)")
        }
        let c = shape[axis]
        guard scale.count == c, scale.rank == 1, shift.map({ $0.count == c && $0.rank == 1 }) ?? true else {
            throw AttribError.shapeMismatch(op: op, detail: "scale \(scale.shape) and shift \(shift?.shape ?? []) need [\(c)] (axis \(axis) of \(shape))")
        }
        let y = try like(shape)                                                        // every element written
        guard count > 0 else { return y }
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        try device.channelAffine(outer: outer, channels: c, inner: inner, x: storage, scale: scale.storage, shift: shift?.storage, y: y.storage)
        return y
    }
}
