// Activation functions and their backward on Tensors.

extension Tensor {
    /// f(self) as a new tensor.
    public func activated(_ kind: Activation) throws -> Tensor {
        let out = try like(shape)
        try activate(kind, into: out)
        return out
    }

    public func activate(_ kind: Activation, into out: Tensor) throws {
        try checkCompatible("activation(\(kind))", [("output", out)])
        try checkSameShape("activation(\(kind))", "output", out)
        try device.activation(kind, n: count, x: storage, y: out.storage)
    }

    /// f(self) and f′(self) from one pass, where the device computes them together more
    /// cheaply (see Device.activationWithDerivative); nil where it does not.
    public func activatedWithDerivative(_ kind: Activation) throws -> (y: Tensor, derivative: Tensor)? {
        let y = try like(shape), d = try like(shape)
        guard try device.activationWithDerivative(kind, n: count, x: storage, y: y.storage, derivative: d.storage) else { return nil }
        return (y, d)
    }

    /// dy ⊙ f′(self), self being the forward input.
    public func activationBackward(_ kind: Activation, upstream dy: Tensor) throws -> Tensor {
        let op = "activationBackward(\(kind))"
        try checkCompatible(op, [("upstream gradient", dy)])
        try checkSameShape(op, "upstream gradient", dy)
        let dx = try like(shape)
        try device.activationBackward(kind, n: count, x: storage, dy: dy.storage, dx: dx.storage)
        return dx
    }
}
