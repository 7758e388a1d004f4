import AttribCore

/// The activations of a decoder block that can be cached, differentiated and patched
/// (TransformerLens names). Shapes for a batch of B prompts of T tokens, D = n_embd,
/// H query heads and H_kv key/value heads of d_h each, F = n_inner:
///
/// | kind | name | shape |
/// | --- | --- | --- |
/// | residPre | blocks.l.hook_resid_pre | [B, T, D] (block input; layer 0: token + position embeddings) |
/// | attnQ | blocks.l.attn.hook_q | [B, T, H, d_h] (before RoPE, as TransformerLens) |
/// | attnK, attnV | blocks.l.attn.hook_k/v | [B, T, H_kv, d_h] (k before RoPE) |
/// | attnRotQ, attnRotK | blocks.l.attn.hook_rot_q/k | q, k after RoPE (RoPE models only) |
/// | attnPattern | blocks.l.attn.hook_pattern | [B, H, T, T] (query t, key s; 0 for s > t) |
/// | attnZ | blocks.l.attn.hook_z | [B, T, H, d_h] (Σ_s A_ts·v_s per head, before c_proj) |
/// | attnOut | blocks.l.hook_attn_out | [B, T, D] (c_proj output + bias) |
/// | residMid | blocks.l.hook_resid_mid | [B, T, D] (residPre + attnOut; not with a parallel residual) |
/// | mlpPre | blocks.l.mlp.hook_pre | [B, T, F] (before the activation; the gate of a gated MLP) |
/// | mlpPreLinear | blocks.l.mlp.hook_pre_linear | [B, T, F] (a gated MLP's up projection) |
/// | mlpPost | blocks.l.mlp.hook_post | [B, T, F] (act(pre), times pre_linear when gated: the neurons) |
/// | mlpOut | blocks.l.hook_mlp_out | [B, T, D] |
/// | residPost | blocks.l.hook_resid_post | [B, T, D] (residMid + mlpOut; = residPre of l + 1) |
public enum HookKind: String, CaseIterable, Sendable, Hashable {
    case residPre = "hook_resid_pre"
    case attnQ = "attn.hook_q", attnK = "attn.hook_k", attnV = "attn.hook_v"
    case attnRotQ = "attn.hook_rot_q", attnRotK = "attn.hook_rot_k"
    case attnPattern = "attn.hook_pattern"
    case attnZ = "attn.hook_z"
    case attnOut = "hook_attn_out"
    case residMid = "hook_resid_mid"
    case mlpPre = "mlp.hook_pre", mlpPreLinear = "mlp.hook_pre_linear", mlpPost = "mlp.hook_post"
    case mlpOut = "hook_mlp_out"
    case residPost = "hook_resid_post"

    /// q, k, v, z: [B, T, H, d_h].
    public var isPerHead: Bool { [.attnQ, .attnK, .attnV, .attnZ, .attnRotQ, .attnRotK].contains(self) }
    /// k, v and rotated k: one entry per key/value head.
    public var isPerKVHead: Bool { self == .attnK || self == .attnV || self == .attnRotK }
}

/// One hook point: a kind at a layer, e.g. `HookPoint(.attnZ, layer: 3)` ("blocks.3.attn.hook_z").
public struct HookPoint: Hashable, Sendable, CustomStringConvertible {
    public let kind: HookKind
    public let layer: Int
    public init(_ kind: HookKind, layer: Int) { self.kind = kind; self.layer = layer }

    /// "blocks.<layer>.<kind>", TransformerLens's name.
    public var name: String { "blocks.\(layer).\(kind.rawValue)" }
    public var description: String { name }

    /// Parses "blocks.<layer>.<kind>".
    public init(name: String) throws {
        let parts = name.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blocks", let l = Int(parts[1]), let k = HookKind(rawValue: parts[2]) else {
            throw AttribError.invalidArgument(op: "HookPoint", detail: "\"\(name)\" is not a hook name; expected blocks.<layer>.<kind> with kind one of \(HookKind.allCases.map(\.rawValue))")
        }
        self.init(k, layer: l)
    }

    /// The shape of this node for a batch of `batch` prompts of `tokens` tokens.
    public func shape(batch: Int, tokens: Int, config c: DecoderConfig) -> [Int] {
        [batch] + rowShape(tokens: tokens, config: c)
    }

    /// The shape per prompt (without the batch dimension).
    public func rowShape(tokens t: Int, config c: DecoderConfig) -> [Int] {
        switch kind {
        case .attnQ, .attnZ, .attnRotQ: return [t, c.nHead, c.headDim]
        case .attnK, .attnV, .attnRotK: return [t, c.nKVHead, c.headDim]
        case .attnPattern: return [c.nHead, t, t]
        case .mlpPre, .mlpPreLinear, .mlpPost: return [t, c.nInner]
        case .residPre, .attnOut, .residMid, .mlpOut, .residPost: return [t, c.nEmbd]
        }
    }
}

/// A node: a hook point narrowed to one head, one position and/or one index of its last
/// dimension (nil = all). `position` is the token (the query for a pattern); `index` is the
/// element of d_h (q, k, v, z), the key position (pattern), the neuron (mlpPre, mlpPost) or
/// the residual dimension (residual-width nodes). `head` applies to per-head nodes and the
/// pattern only. E.g. head 3's output at every position: `NodeSlice(.init(.attnZ, layer: 2), head: 3)`.
public struct NodeSlice: Hashable, Sendable, CustomStringConvertible {
    public var point: HookPoint
    public var head: Int?
    public var position: Int?
    public var index: Int?
    public init(_ point: HookPoint, head: Int? = nil, position: Int? = nil, index: Int? = nil) {
        self.point = point; self.head = head; self.position = position; self.index = index
    }

    public var description: String {
        var s = point.name
        if let head { s += " head \(head)" }
        if let position { s += " position \(position)" }
        if let index { s += " index \(index)" }
        return s
    }

    /// The slice as a box of the node's per-row array seen as [A0, A1, A2] (row-major):
    /// (sizes, offset of the first element within a row, strides of axes 0 and 1; axis 2 has stride 1).
    /// Checks the layer, head, position and index against the model and the sequence length.
    func box(tokens t: Int, config c: DecoderConfig) throws -> (n: (Int, Int, Int), offset: Int, strides: (Int, Int)) {
        let op = "NodeSlice"
        guard (0..<c.nLayer).contains(point.layer) else {
            throw AttribError.indexOutOfRange(op: op, detail: "\(self): layer \(point.layer) of a model with \(c.nLayer) layers")
        }
        guard c.hookKinds.contains(point.kind) else {
            throw AttribError.invalidArgument(op: op, detail: "\(self): a \(c.family.rawValue) model has no \(point.kind.rawValue)")
        }
        let heads = point.kind.isPerKVHead ? c.nKVHead : c.nHead
        // Axis sizes and which selector picks along each axis.
        let dims: (Int, Int, Int), sel: (Int?, Int?, Int?)
        switch point.kind {
        case .attnQ, .attnK, .attnV, .attnZ, .attnRotQ, .attnRotK: dims = (t, heads, c.headDim); sel = (position, head, index)
        case .attnPattern: dims = (c.nHead, t, t); sel = (head, position, index)
        default:
            guard head == nil else {
                throw AttribError.invalidArgument(op: op, detail: "\(self): \(point.kind) has no heads")
            }
            dims = (t, 1, [.mlpPre, .mlpPreLinear, .mlpPost].contains(point.kind) ? c.nInner : c.nEmbd); sel = (position, nil, index)
        }
        for (name, v, size) in [("head", head, heads), ("position", position, t), ("index", index, point.kind == .attnPattern ? t : dims.2)] {
            if let v, !(0..<size).contains(v) {
                throw AttribError.indexOutOfRange(op: op, detail: "\(self): \(name) \(v) is outside 0..<\(size)")
            }
        }
        if point.kind == .attnPattern, let p = position, let k = index, k > p {
            throw AttribError.invalidArgument(op: op, detail: "\(self): key \(k) is after query \(p), a masked (always 0) entry")
        }
        let strides = (dims.1 * dims.2, dims.2)
        let n = (sel.0 == nil ? dims.0 : 1, sel.1 == nil ? dims.1 : 1, sel.2 == nil ? dims.2 : 1)
        let offset = (sel.0 ?? 0) * strides.0 + (sel.1 ?? 0) * strides.1 + (sel.2 ?? 0)
        return (n, offset, strides)
    }
}

/// One patch of a patched forward: in batch row `row`, the values of `node` are replaced by
/// those at the same place in row `sourceRow` of `source`, a tensor of the node's hook point
/// from another run (e.g. `run.cache[point]` of a corrupted prompt: [Bs] + the node's row shape).
public struct ActivationPatch: @unchecked Sendable {
    public var row: Int
    public var node: NodeSlice
    public var source: Tensor
    public var sourceRow: Int
    public init(row: Int, node: NodeSlice, source: Tensor, sourceRow: Int = 0) {
        self.row = row; self.node = node; self.source = source; self.sourceRow = sourceRow
    }
}
